// EngineBinding::polled_stream over a real in-process gRPC server: a waiting
// stream woken inside an InlineStepScope runs its step on the waking thread
// (no hand-off to a step thread); woken without one, a step thread runs it.
// A stream that waits after every message keeps one timer, not one a wait,
// and a wait still ends by its time without a wake.
#include <gtest/gtest.h>

#include <condition_variable>
#include <thread>

#include "telekern/service/engine_binding.h"
#include "telekern/service/inline_step_scope.h"
#include "telekern/testing/v1/echo.grpc.pb.h"
#include "tests/support/loopback_grpc_server.h"

namespace telekern {
namespace {

using namespace std::chrono_literals;
namespace tv1 = telekern::testing::v1;

// Hands out `available` numbered items; a stream with nothing to send leaves
// its waker here and waits far longer than any test runs.
struct CountEngine {
  absl::Status submit(std::function<void()> work) {
    work();
    return absl::OkStatus();
  }
  std::mutex mutex;
  std::condition_variable changed;
  uint32_t available = 0;
  std::chrono::milliseconds wait_for = 60s;  // how long a stream with nothing to send waits
  StepWaker wake;                            // of the stream waiting now
  std::thread::id sent_by;                   // the thread whose step wrote the last item
};

// The waker of the stream once it waits (bounded), taken out of the engine.
StepWaker waker_of_waiting_stream(CountEngine& engine) {
  std::unique_lock lock(engine.mutex);
  engine.changed.wait_for(lock, 10s, [&] { return static_cast<bool>(engine.wake); });
  return std::exchange(engine.wake, nullptr);
}

class CountService final : public tv1::Echo::CallbackService {
 public:
  grpc::ServerWriteReactor<tv1::CountResponse>* Count(grpc::CallbackServerContext* context,
                                                      const tv1::CountRequest* request) override {
    using Step = StreamStep<tv1::CountResponse>;
    return binding.polled_stream<tv1::CountResponse>(
        context, [total = request->count()](CountEngine& engine) {
          return [&engine, total, sent = 0u](const StepWaker& wake, std::stop_token) mutable {
            std::lock_guard lock(engine.mutex);
            if (sent == total) return Step::done(absl::OkStatus());
            if (sent < engine.available) {
              tv1::CountResponse response;
              response.set_index(sent++);
              engine.sent_by = std::this_thread::get_id();
              return Step::write(std::move(response));
            }
            engine.wake = wake;
            engine.changed.notify_all();
            return Step::wait(std::chrono::steady_clock::now() + engine.wait_for);
          };
        });
  }
  EngineBinding<CountEngine> binding{"count"};
};

// The same stream served on a scheduler the test can look into.
class TimedCountService final : public tv1::Echo::CallbackService {
 public:
  explicit TimedCountService(std::shared_ptr<CountEngine> engine) : engine_(std::move(engine)) {}
  grpc::ServerWriteReactor<tv1::CountResponse>* Count(grpc::CallbackServerContext* context,
                                                      const tv1::CountRequest* request) override {
    using Step = StreamStep<tv1::CountResponse>;
    return PolledStream<tv1::CountResponse>::start(
        context, sessions_, scheduler,
        [engine = engine_, total = request->count(), sent = 0u](const StepWaker& wake,
                                                                std::stop_token) mutable {
          std::lock_guard lock(engine->mutex);
          if (sent == total) return Step::done(absl::OkStatus());
          if (sent < engine->available) {
            tv1::CountResponse response;
            response.set_index(sent++);
            return Step::write(std::move(response));
          }
          engine->wake = wake;
          engine->changed.notify_all();
          return Step::wait(std::chrono::steady_clock::now() + engine->wait_for);
        });
  }
  StepScheduler scheduler{2};

 private:
  std::shared_ptr<CountEngine> engine_;
  StreamSessions sessions_{"count is stopping"};
};

class PolledStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_.binding.attach(engine_);
    server_ = std::make_unique<telekern::testing::LoopbackGrpcServer>(
        [&](grpc::ServerBuilder& builder) { builder.RegisterService(&service_); });
    ASSERT_TRUE(server_->started());
    stub_ = tv1::Echo::NewStub(server_->channel());
  }
  void TearDown() override {
    service_.binding.detach();
    server_.reset();
  }
  StepWaker waiting_stream() { return waker_of_waiting_stream(*engine_); }
  // Makes one more item available and wakes the waiting stream.
  void offer_one(const StepWaker& wake) {
    {
      std::lock_guard lock(engine_->mutex);
      ++engine_->available;
    }
    wake();
  }
  std::thread::id sent_by() {
    std::lock_guard lock(engine_->mutex);
    return engine_->sent_by;
  }

  std::shared_ptr<CountEngine> engine_ = std::make_shared<CountEngine>();
  CountService service_;
  std::unique_ptr<telekern::testing::LoopbackGrpcServer> server_;
  std::unique_ptr<tv1::Echo::Stub> stub_;
};

TEST_F(PolledStreamTest, AStreamWokenInAnInlineScopeRunsItsStepOnTheWakingThread) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  tv1::CountRequest request;
  request.set_count(100);
  auto reader = stub_->Count(&context, request);
  tv1::CountResponse response;
  uint32_t next = 0;

  // Woken inside a scope: the step (and its write) runs here when the scope
  // ends. A wake that lands while the stream is still finishing the step that
  // handed out its waker is rerun by that step thread instead, so a few tries
  // are allowed; a stream never run here fails them all.
  bool ran_here = false;
  for (int attempt = 0; attempt < 20 && !ran_here; ++attempt) {
    auto wake = waiting_stream();
    ASSERT_TRUE(wake) << "the stream never waited";
    {
      InlineStepScope scope;
      offer_one(wake);
      EXPECT_NE(sent_by(), std::this_thread::get_id()) << "ran before the scope ended";
    }
    ran_here = sent_by() == std::this_thread::get_id();
    ASSERT_TRUE(reader->Read(&response));
    EXPECT_EQ(response.index(), next++);
  }
  EXPECT_TRUE(ran_here);

  // Woken without a scope: a step thread runs it.
  auto wake = waiting_stream();
  ASSERT_TRUE(wake) << "the stream never waited again";
  offer_one(wake);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.index(), next++);
  EXPECT_NE(sent_by(), std::this_thread::get_id());
  context.TryCancel();
  (void)reader->Finish();
}

TEST(PolledStreamTimers, AStreamWaitingAfterEveryMessageKeepsOneTimerAndWaitsEndByTheirTime) {
  auto engine = std::make_shared<CountEngine>();
  TimedCountService service(engine);
  telekern::testing::LoopbackGrpcServer server(
      [&](grpc::ServerBuilder& builder) { builder.RegisterService(&service); });
  ASSERT_TRUE(server.started());
  auto stub = tv1::Echo::NewStub(server.channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 30s);
  tv1::CountRequest request;
  request.set_count(1000);
  auto reader = stub->Count(&context, request);
  tv1::CountResponse response;
  auto waiting = [&] { return waker_of_waiting_stream(*engine); };

  // 200 messages, each followed by a 60 s wait that a new item cuts short.
  for (uint32_t i = 0; i < 200; ++i) {
    auto wake = waiting();
    ASSERT_TRUE(wake) << "the stream never waited";
    {
      std::lock_guard lock(engine->mutex);
      ++engine->available;
    }
    wake();
    ASSERT_TRUE(reader->Read(&response));
    ASSERT_EQ(response.index(), i);
  }
  auto wake = waiting();
  ASSERT_TRUE(wake);
  EXPECT_LE(service.scheduler.timers(), 2u) << "a timer left behind by every wait";

  // A shorter wait than the pending timer's gets a timer of its own: with an
  // item there but no wake, the step runs again once its 20 ms are over.
  {
    std::lock_guard lock(engine->mutex);
    engine->wait_for = 20ms;
  }
  wake();  // nothing to send: the step waits 20 ms
  ASSERT_TRUE(waiting());
  {
    std::lock_guard lock(engine->mutex);
    ++engine->available;  // no wake
  }
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.index(), 200u);
  context.TryCancel();
  (void)reader->Finish();
}

}  // namespace
}  // namespace telekern
