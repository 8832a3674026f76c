// EngineBinding::client_stream: a client stream consumed by a loop on a
// session thread, over a real in-process gRPC server.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <thread>

#include "telekern/service/engine_binding.h"
#include "telekern/testing/v1/upload.grpc.pb.h"
#include "tests/support/loopback_grpc_server.h"

namespace telekern {
namespace {

using namespace std::chrono_literals;
namespace tv1 = telekern::testing::v1;

// An engine whose loops can be held at a gate, to stall reading.
struct UploadEngine {
  absl::Status submit(std::function<void()> work) {
    work();
    return absl::OkStatus();
  }
  std::mutex mutex;
  std::condition_variable_any changed;
  bool open_gate = true;
  int loops_in_read = 0;  // loops waiting at the gate
  std::atomic<int> loops_ended{0};
  absl::Status fail_with = absl::OkStatus();
};

class UploadService final : public tv1::Upload::CallbackService {
 public:
  grpc::ServerReadReactor<tv1::ConcatRequest>* Concat(grpc::CallbackServerContext* context,
                                                      tv1::ConcatResponse* response) override {
    return binding.client_stream<tv1::ConcatRequest>(
        context, response,
        [](UploadEngine& engine, StreamReader<tv1::ConcatRequest>& reader, tv1::ConcatResponse& out,
           std::stop_token stop) -> absl::Status {
          tv1::ConcatRequest request;
          bool first = true;
          while (reader.read(request)) {
            if (first) out.set_name(request.name());
            first = false;
            out.mutable_data()->append(request.data());
            out.set_messages(out.messages() + 1);
            std::unique_lock lock(engine.mutex);
            ++engine.loops_in_read;
            engine.changed.notify_all();
            engine.changed.wait(lock, stop, [&] { return engine.open_gate; });
            --engine.loops_in_read;
          }
          ++engine.loops_ended;
          if (stop.stop_requested()) return absl::CancelledError("stopped");
          return engine.fail_with;
        });
  }
  EngineBinding<UploadEngine> binding{"upload"};
};

class ClientStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_.binding.attach(engine_);
    server_ = std::make_unique<telekern::testing::LoopbackGrpcServer>(
        [&](grpc::ServerBuilder& builder) { builder.RegisterService(&service_); });
    ASSERT_TRUE(server_->started());
    stub_ = tv1::Upload::NewStub(server_->channel());
  }
  void TearDown() override {
    service_.binding.detach();
    server_.reset();
  }
  // Waits (bounded) until `count` loops are held at the gate.
  bool held(int count) {
    std::unique_lock lock(engine_->mutex);
    return engine_->changed.wait_for(lock, 10s, [&] { return engine_->loops_in_read >= count; });
  }

  std::shared_ptr<UploadEngine> engine_ = std::make_shared<UploadEngine>();
  UploadService service_;
  std::unique_ptr<telekern::testing::LoopbackGrpcServer> server_;
  std::unique_ptr<tv1::Upload::Stub> stub_;
};

TEST_F(ClientStreamTest, LoopSeesEveryMessageInOrderAndAnswersOnce) {
  grpc::ClientContext context;
  tv1::ConcatResponse response;
  auto writer = stub_->Concat(&context, &response);
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    tv1::ConcatRequest request;
    if (i == 0) request.set_name("numbers");
    request.set_data(std::to_string(i) + ",");
    expected += request.data();
    ASSERT_TRUE(writer->Write(request));
  }
  ASSERT_TRUE(writer->WritesDone());
  auto status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.name(), "numbers");
  EXPECT_EQ(response.messages(), 2000u);
  EXPECT_EQ(response.data(), expected);
}

TEST_F(ClientStreamTest, EmptyStreamAndLoopErrorsReachTheClient) {
  {
    grpc::ClientContext context;
    tv1::ConcatResponse response;
    auto writer = stub_->Concat(&context, &response);
    ASSERT_TRUE(writer->WritesDone());
    ASSERT_TRUE(writer->Finish().ok());
    EXPECT_EQ(response.messages(), 0u);
  }
  engine_->fail_with = absl::InvalidArgumentError("chunk 1: not CSV");
  grpc::ClientContext context;
  tv1::ConcatResponse response;
  auto writer = stub_->Concat(&context, &response);
  tv1::ConcatRequest request;
  request.set_data("x");
  ASSERT_TRUE(writer->Write(request));
  writer->WritesDone();
  auto status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "chunk 1: not CSV");
}

// While the loop does not read, the client cannot run ahead without bound:
// its writes stall once gRPC's flow-control windows are full, far short of
// the 64 MiB it tries to send.
TEST_F(ClientStreamTest, AStalledLoopHoldsTheClientBack) {
  {
    std::lock_guard lock(engine_->mutex);
    engine_->open_gate = false;
  }
  grpc::ClientContext context;
  tv1::ConcatResponse response;
  auto writer = stub_->Concat(&context, &response);
  std::atomic<int> written{0};
  std::thread client([&] {
    tv1::ConcatRequest request;
    request.set_data(std::string(1 << 20, 'x'));
    for (int i = 0; i < 64; ++i) {
      if (!writer->Write(request)) return;
      ++written;
    }
    writer->WritesDone();
  });
  ASSERT_TRUE(held(1));
  // The loop has taken one message; whatever the client wrote beyond that
  // sits in flow-control windows (a few MiB), not in an unbounded queue.
  // Cancelling the call is the only way the stalled client gets out.
  std::this_thread::sleep_for(200ms);  // let the client fill what it can; no assertion on time
  EXPECT_LT(written.load(), 64) << "every write completed although the loop read one message";
  context.TryCancel();
  client.join();
  {
    std::lock_guard lock(engine_->mutex);
    engine_->open_gate = true;
  }
  engine_->changed.notify_all();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ClientStreamTest, EndStreamsEndsAStalledLoopWithUnavailable) {
  {
    std::lock_guard lock(engine_->mutex);
    engine_->open_gate = false;
  }
  grpc::ClientContext context;
  tv1::ConcatResponse response;
  auto writer = stub_->Concat(&context, &response);
  tv1::ConcatRequest request;
  request.set_data("x");
  ASSERT_TRUE(writer->Write(request));
  ASSERT_TRUE(held(1));
  // The module is asked to stop: the loop's stop token fires, its next
  // read() returns false although the client never half-closed.
  service_.binding.end_streams();
  auto status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(status.error_message(), "upload module is stopping; retry");
  EXPECT_EQ(engine_->loops_ended.load(), 1);
}

TEST_F(ClientStreamTest, DetachWaitsForTheLoopAndLaterCallsAreRefused) {
  {
    std::lock_guard lock(engine_->mutex);
    engine_->open_gate = false;
  }
  grpc::ClientContext context;
  tv1::ConcatResponse response;
  auto writer = stub_->Concat(&context, &response);
  tv1::ConcatRequest request;
  request.set_data("x");
  ASSERT_TRUE(writer->Write(request));
  ASSERT_TRUE(held(1));
  service_.binding.detach();  // returns once the loop ended
  EXPECT_EQ(engine_->loops_ended.load(), 1);
  auto status = writer->Finish();
  EXPECT_FALSE(status.ok());

  grpc::ClientContext again;
  auto refused = stub_->Concat(&again, &response);
  refused->WritesDone();
  status = refused->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "upload module is stopping; retry");
}

}  // namespace
}  // namespace telekern
