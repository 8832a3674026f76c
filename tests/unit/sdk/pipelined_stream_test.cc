// EngineBinding::pipelined_stream over a real gRPC server (a generic bidi
// method, requests and answers as raw bytes): an item `quick` accepts runs on
// the gRPC thread that read it when nothing is queued before it; any other
// item, and every item behind a queued one, runs on an engine thread; items
// are processed and answered in arrival order either way.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "telekern/service/engine_binding.h"
#include "telekern/work_queue.h"
#include "tests/support/loopback_grpc_server.h"

namespace telekern {
namespace {

using namespace std::chrono_literals;

std::string text(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  for (const auto& slice : slices)
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  return out;
}

grpc::ByteBuffer bytes(const std::string& value) {
  grpc::Slice slice(value);
  return grpc::ByteBuffer(&slice, 1);
}

// Items named "q..." are quick, "s..." are not; "s..." items wait until the
// test opens the gate, so later items queue behind them.
struct Engine {
  WorkQueue queue{1, 64};
  absl::Status submit(std::function<void()> work) {
    if (!queue.try_submit(std::move(work))) return absl::UnavailableError("queue full");
    return absl::OkStatus();
  }
  std::mutex mutex;
  std::condition_variable changed;
  bool gate_open = false;
  bool slow_started = false;
  std::vector<std::string> order;                  // items as processed
  std::map<std::string, std::thread::id> threads;  // item -> thread that processed it
  std::set<std::thread::id> engine_threads;
  std::set<std::string> read;  // items the stream has read
};

class PipelineService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return binding.pipelined_stream<grpc::ByteBuffer, grpc::ByteBuffer, std::string>(
        [this](const grpc::ByteBuffer& request) {
          auto item = text(request);
          auto engine = binding.engine();
          std::lock_guard lock(engine->mutex);
          engine->read.insert(item);
          engine->changed.notify_all();
          return item;
        },
        [](Engine& engine, std::string item, std::function<void(grpc::ByteBuffer)> answer) {
          std::unique_lock lock(engine.mutex);
          if (item[0] == 's') {
            engine.engine_threads.insert(std::this_thread::get_id());
            engine.slow_started = true;
            engine.changed.notify_all();
            engine.changed.wait_for(lock, 30s, [&] { return engine.gate_open; });
          }
          engine.order.push_back(item);
          engine.threads[item] = std::this_thread::get_id();
          lock.unlock();
          answer(bytes("ok:" + item));
        },
        [](const std::string& item, const absl::Status& status) {
          return bytes("refused:" + item + ":" + std::string(status.message()));
        },
        [](Engine&, const std::string& item) { return item[0] == 'q'; });
  }
  EngineBinding<Engine> binding{"pipeline"};
};

class PipelinedStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_.binding.attach(engine_);
    server_ = std::make_unique<telekern::testing::LoopbackGrpcServer>(
        [&](grpc::ServerBuilder& builder) { builder.RegisterCallbackGenericService(&service_); });
    ASSERT_TRUE(server_->started());
    stub_ = std::make_unique<grpc::GenericStub>(server_->channel());
  }
  void TearDown() override {
    {
      std::lock_guard lock(engine_->mutex);
      engine_->gate_open = true;
      engine_->changed.notify_all();
    }
    service_.binding.detach();
    server_.reset();
    engine_->queue.stop();
  }
  bool wait_until_read(const std::string& item) {
    std::unique_lock lock(engine_->mutex);
    return engine_->changed.wait_for(lock, 10s, [&] { return engine_->read.count(item) > 0; });
  }
  bool wait_for_slow_start() {
    std::unique_lock lock(engine_->mutex);
    return engine_->changed.wait_for(lock, 10s, [&] { return engine_->slow_started; });
  }
  void open_gate() {
    std::lock_guard lock(engine_->mutex);
    engine_->gate_open = true;
    engine_->changed.notify_all();
  }

  std::shared_ptr<Engine> engine_ = std::make_shared<Engine>();
  PipelineService service_;
  std::unique_ptr<telekern::testing::LoopbackGrpcServer> server_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

TEST_F(PipelinedStreamTest, QuickItemsRunOnTheReadingThreadUnlessQueuedBehindAnother) {
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  auto call = stub_->PrepareCall(&context, "/test.Pipeline/Run", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&] { return cq.Next(&tag, &ok) && ok; };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step());
  auto write = [&](const std::string& item) {
    call->Write(bytes(item), reinterpret_cast<void*>(2));
    return step();
  };
  auto read = [&] {
    grpc::ByteBuffer answer;
    call->Read(&answer, reinterpret_cast<void*>(3));
    return step() ? text(answer) : std::string("(stream ended)");
  };

  // Nothing queued: a quick item runs on the gRPC thread that read it.
  ASSERT_TRUE(write("q1"));
  EXPECT_EQ(read(), "ok:q1");
  // A slow item holds the engine thread; quick items behind it must queue.
  ASSERT_TRUE(write("s2"));
  ASSERT_TRUE(wait_for_slow_start());
  ASSERT_TRUE(write("q3"));
  ASSERT_TRUE(write("q4"));
  // The stream reads the next request only once the previous one is queued,
  // so a marker read means q3 and q4 wait behind s2. (The marker itself may
  // still run either way once the gate opens.)
  ASSERT_TRUE(write("qm"));
  ASSERT_TRUE(wait_until_read("qm"));
  open_gate();
  EXPECT_EQ(read(), "ok:s2");
  EXPECT_EQ(read(), "ok:q3");
  EXPECT_EQ(read(), "ok:q4");
  EXPECT_EQ(read(), "ok:qm");
  // Once the drain task has ended (the engine's one thread runs a marker
  // after it), quick items run on the reading thread again.
  std::promise<void> idle;
  ASSERT_TRUE(engine_->queue.try_submit([&] { idle.set_value(); }));
  ASSERT_EQ(idle.get_future().wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(write("q5"));
  EXPECT_EQ(read(), "ok:q5");
  call->WritesDone(reinterpret_cast<void*>(4));
  ASSERT_TRUE(step());
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_TRUE(status.ok()) << status.error_message();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }

  std::lock_guard lock(engine_->mutex);
  EXPECT_EQ(engine_->order, (std::vector<std::string>{"q1", "s2", "q3", "q4", "qm", "q5"}));
  ASSERT_EQ(engine_->engine_threads.size(), 1u);
  auto engine_thread = *engine_->engine_threads.begin();
  EXPECT_NE(engine_->threads["q1"], engine_thread) << "q1 waited for an engine thread";
  EXPECT_EQ(engine_->threads["q3"], engine_thread) << "q3 jumped the queue";
  EXPECT_EQ(engine_->threads["q4"], engine_thread) << "q4 jumped the queue";
  EXPECT_NE(engine_->threads["q5"], engine_thread) << "q5 waited for an engine thread";
}

}  // namespace
}  // namespace telekern
