// The proxy's produce lanes against a scripted upstream broker that can hold
// its answers: while a lane waits for two answered messages, the produces
// that arrive queue in the proxy and go to a broker that accepts batches in
// one batch message; a broker that does not say so, or a proxy with
// produce_stream_window 0, sends every produce in a message of its own.
// Either way each client gets its own answer.
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "telekern/proxy/v1/proxy.grpc.pb.h"
#include "tests/integration/broker/broker_client.h"

namespace telekern::testing {
namespace {

namespace pv1 = telekern::proxy::v1;

// A broker's ProduceStream that answers every request with consecutive
// offsets per partition, says `accepts_batch` or not, and answers nothing
// while held. It records how many produces each message carried.
class ScriptedBroker final : public bv1::Broker::Service {
 public:
  explicit ScriptedBroker(bool accepts_batch) : accepts_batch_(accepts_batch) {}

  grpc::Status ProduceStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<bv1::ProduceResponse, bv1::ProduceRequest>* stream) override {
    bv1::ProduceRequest message;
    while (stream->Read(&message)) {
      std::unique_lock lock(mutex_);
      messages_.push_back(std::max(message.batch_size(), 1));
      batched_ += message.batch_size() > 0;
      changed_.notify_all();
      changed_.wait(lock, [&] { return !held_ || context->IsCancelled(); });
      bv1::ProduceResponse answer;
      answer.set_accepts_batch(accepts_batch_);
      if (message.batch_size() == 0) {
        answer_locked(message, &answer);
      } else {
        for (const auto& one : message.batch()) answer_locked(one, answer.add_batch());
      }
      lock.unlock();
      if (!stream->Write(answer)) break;
    }
    return grpc::Status::OK;
  }

  void hold(bool held) {
    std::lock_guard lock(mutex_);
    held_ = held;
    changed_.notify_all();
  }
  // Produces per message, in arrival order.
  std::vector<int> messages() {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  int batched() {
    std::lock_guard lock(mutex_);
    return batched_;
  }

 private:
  void answer_locked(const bv1::ProduceRequest& request, bv1::ProduceResponse* answer) {
    answer->set_sequence(request.sequence());
    auto* append = answer->add_appends();
    append->set_partition(request.partition());
    append->set_first_offset(next_offset_[request.partition()]);
    append->set_count(static_cast<uint32_t>(request.records_size()));
    next_offset_[request.partition()] += request.records_size();
  }

  const bool accepts_batch_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  std::vector<int> messages_;
  int batched_ = 0;
  std::map<uint32_t, uint64_t> next_offset_;
};

// The scripted broker on a loopback port and a proxy telekernd with one lane
// in front of it, healthy before the test goes on.
struct LaneCase {
  bool accepts_batch;  // the upstream says so
  int window;          // produce_stream_window
  const char* name;
};

class LaneBatchTest : public ::testing::TestWithParam<LaneCase> {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<ScriptedBroker>(GetParam().accepts_batch);
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(broker_.get());
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_ && port > 0);
    server_->GetHealthCheckService()->SetServingStatus("telekern.broker.v1.Broker", true);
    address_ = "127.0.0.1:" + std::to_string(port);
    TelekerndOptions options;
    options.modules_dir = modules_dir();
    options.load = {"proxy"};
    options.config_yaml =
        "modules:\n  proxy:\n    upstreams: [" + address_ +
        "]\n    health_interval: 300ms\n    health_timeout: 200ms\n    produce_streams: 1\n" +
        "    produce_stream_window: " + std::to_string(GetParam().window) + "\n";
    proxy_ = std::make_unique<Telekernd>(options);
    ASSERT_TRUE(proxy_->ready()) << proxy_->log();
    admin_ = pv1::Proxy::NewStub(proxy_->channel());
    ASSERT_TRUE(wait_for([&] { return upstream().health() == pv1::UPSTREAM_HEALTH_HEALTHY; }, 10s))
        << proxy_->log();
  }

  void TearDown() override {
    if (broker_) broker_->hold(false);
    proxy_.reset();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 2s);
  }

  pv1::Upstream upstream() {
    pv1::ListUpstreamsResponse response;
    auto status = admin_->ListUpstreams(context().get(), {}, &response);
    return status.ok() && response.upstreams_size() == 1 ? response.upstreams(0) : pv1::Upstream();
  }

  // The proxy's counter `name` for this upstream (0 when absent).
  double lane_metric(const std::string& name) {
    auto [code, metrics] = proxy_->http_get("/metrics");
    EXPECT_EQ(code, 200);
    std::istringstream lines(metrics);
    std::string series = name + "{upstream=\"" + address_ + "\"} ";
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(series, 0) == 0) return std::stod(line.substr(series.size()));
    }
    return 0;
  }

  std::unique_ptr<ScriptedBroker> broker_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::unique_ptr<Telekernd> proxy_;
  std::unique_ptr<pv1::Proxy::Stub> admin_;
};

bv1::ProduceRequest produce(uint64_t sequence) {
  bv1::ProduceRequest request;
  request.set_topic("lanes");
  request.set_partition(static_cast<uint32_t>(sequence % 2));
  request.set_sequence(sequence);
  request.add_records()->set_value("v" + std::to_string(sequence));
  request.add_records()->set_value("w" + std::to_string(sequence));
  return request;
}

TEST_P(LaneBatchTest, ProducesQueuedBehindUnansweredMessagesGoTogetherToABrokerThatTakesBatches) {
  bool batches = GetParam().accepts_batch && GetParam().window > 0;
  auto stub = bv1::Broker::NewStub(proxy_->channel());
  // The first answer tells the lane whether the broker takes batches.
  bv1::ProduceResponse first;
  auto status = stub->Produce(context().get(), produce(100), &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(first.sequence(), 100u);
  EXPECT_FALSE(first.accepts_batch()) << "the lane's own field reached the client";

  constexpr int kProduces = 10;
  broker_->hold(true);
  std::vector<bv1::ProduceResponse> answers(kProduces);
  std::vector<grpc::Status> statuses(kProduces);
  std::vector<std::thread> clients;
  for (int i = 0; i < kProduces; ++i) {
    clients.emplace_back([&, i] {
      auto own = bv1::Broker::NewStub(proxy_->channel());
      statuses[i] = own->Produce(context().get(), produce(i), &answers[i]);
    });
  }
  // Every produce reached the proxy; the lane waits on the held broker.
  bool all_in = wait_for([&] { return upstream().in_flight() == kProduces; }, 10s);
  broker_->hold(false);
  for (auto& client : clients) client.join();
  ASSERT_TRUE(all_in) << "in flight: " << upstream().in_flight();

  std::map<uint32_t, std::vector<std::pair<uint64_t, uint32_t>>> appends;  // offset, count
  for (int i = 0; i < kProduces; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_message();
    EXPECT_EQ(answers[i].sequence(), static_cast<uint64_t>(i));
    EXPECT_FALSE(answers[i].accepts_batch());
    EXPECT_EQ(answers[i].batch_size(), 0);
    ASSERT_EQ(answers[i].appends_size(), 1) << i;
    EXPECT_EQ(answers[i].appends(0).partition(), static_cast<uint32_t>(i % 2));
    appends[answers[i].appends(0).partition()].emplace_back(answers[i].appends(0).first_offset(),
                                                            answers[i].appends(0).count());
  }
  // Each produce got its own two offsets: no answer went to the wrong client.
  for (auto& [partition, list] : appends) {
    std::sort(list.begin(), list.end());
    for (size_t k = 0; k < list.size(); ++k) {
      EXPECT_EQ(list[k].second, 2u);
      EXPECT_EQ(list[k].first, (partition == 0 ? 2u : 0u) + 2 * k) << "partition " << partition;
    }
  }

  auto messages = broker_->messages();
  int carried = 0;
  for (int count : messages) carried += count;
  EXPECT_EQ(carried, kProduces + 1);
  std::ostringstream shape;
  for (int count : messages) shape << count << " ";
  if (batches) {
    // The first produce, then at most two messages unanswered; the rest
    // queued and went in one batch (a produce counted in flight just before
    // it queued may follow in one more).
    EXPECT_LE(messages.size(), 5u) << shape.str();
    EXPECT_GE(*std::max_element(messages.begin(), messages.end()), kProduces / 2) << shape.str();
    EXPECT_GE(broker_->batched(), 1);
  } else {
    EXPECT_EQ(messages.size(), static_cast<size_t>(kProduces + 1)) << shape.str();
    EXPECT_EQ(broker_->batched(), 0) << "a batch went out with batching off or not accepted";
  }
  EXPECT_EQ(lane_metric("telekern_proxy_lane_messages_total"), messages.size());
  EXPECT_EQ(lane_metric("telekern_proxy_lane_produces_total"), kProduces + 1);
}

// A client's own ProduceRequest.batch is refused, not forwarded (the broker
// would answer sequences the proxy never sent).
TEST_P(LaneBatchTest, AClientBatchIsRefused) {
  bv1::ProduceRequest request;
  *request.add_batch() = produce(1);
  request.set_topic("lanes");
  request.set_partition(0);
  auto stub = bv1::Broker::NewStub(proxy_->channel());
  bv1::ProduceResponse answer;
  auto status = stub->Produce(context().get(), request, &answer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("batch"), std::string::npos) << status.error_message();
  EXPECT_TRUE(broker_->messages().empty());
}

INSTANTIATE_TEST_SUITE_P(Lanes, LaneBatchTest,
                         ::testing::Values(LaneCase{true, 2, "BrokerAcceptsBatches"},
                                           LaneCase{false, 2, "BrokerTakesNoBatches"},
                                           LaneCase{true, 0, "WindowZeroSendsNoBatches"}),
                         [](const ::testing::TestParamInfo<LaneCase>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace telekern::testing
