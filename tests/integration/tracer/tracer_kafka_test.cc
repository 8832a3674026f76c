// The tracer engine against a Kafka cluster speaking the real protocol
// (librdkafka's mock cluster, 3 brokers): the events found are exactly those
// the test produced (checked by topic, partition and offset), max_age seeks
// by timestamp, topic filters, max_messages, and the coverage ends at the
// high watermarks.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kafka_source.h"
#include "telekern/proto_time.h"
#include "tests/integration/tracer/tracer_data.h"
#include "tests/support/kafka_mock_cluster.h"
#include "tests/support/process.h"
#include "trace_engine.h"

namespace telekern::tracer {
namespace {

using testing::EventKey;

class Collect final : public TraceObserver {
 public:
  bool progress(const v1::Progress& progress) override {
    progress_messages++;
    last = progress;
    return true;
  }
  bool event(const v1::Event& event) override {
    streamed.insert({event.topic(), static_cast<int32_t>(event.partition()), event.offset()});
    return true;
  }
  int progress_messages = 0;
  v1::Progress last;
  std::set<EventKey> streamed;
};

class TracerKafkaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new telekern::testing::KafkaMockCluster(3);
    ASSERT_TRUE(cluster_->ok());
    for (const auto& topic : testing::default_topics())
      cluster_->create_topic(topic.name, topic.partitions);
    records_ = new std::vector<testing::ProducedRecord>(
        testing::make_records(testing::default_topics(), std::chrono::hours(24 * 10)));
    ASSERT_TRUE(testing::produce(cluster_->bootstraps(), *records_));
  }
  static void TearDownTestSuite() {
    delete records_;
    delete cluster_;
  }

  void SetUp() override {
    TracerOptions options;
    options.kafka_brokers = cluster_->bootstraps();
    options.progress_interval = std::chrono::milliseconds(50);
    auto logger =
        std::make_shared<spdlog::logger>("tracer", std::make_shared<spdlog::sinks::null_sink_mt>());
    engine_ = std::make_unique<TraceEngine>(
        options, dir_.path(),
        [](const v1::TraceDeviceRequest& request,
           const ScanLimits& limits) -> absl::StatusOr<std::unique_ptr<TraceSource>> {
          KafkaSourceOptions kafka;
          kafka.brokers =
              request.kafka_brokers().empty() ? cluster_->bootstraps() : request.kafka_brokers();
          kafka.read_committed = limits.read_committed;
          kafka.fetch.batch_scan = batch_scan_;
          auto source = KafkaSource::create(kafka);
          if (!source.ok()) return source.status();
          return std::unique_ptr<TraceSource>(std::move(*source));
        },
        logger, nullptr);
  }

  v1::TraceDeviceRequest request() const {
    v1::TraceDeviceRequest request;
    request.set_device_id(testing::kDevice);
    request.mutable_max_age()->set_seconds(0);   // all history
    request.mutable_timeout()->set_seconds(60);  // a missed watermark would show as an error
    return request;
  }

  static std::set<EventKey> found(const v1::GetTraceResponse& trace) {
    std::set<EventKey> out;
    for (const auto& event : trace.events())
      out.insert({event.topic(), static_cast<int32_t>(event.partition()), event.offset()});
    return out;
  }

  v1::GetTraceResponse stored(const v1::Summary& summary) {
    v1::GetTraceRequest get;
    get.set_trace_id(summary.trace_id());
    auto trace = engine_->get_trace(get);
    EXPECT_TRUE(trace.ok()) << trace.status();
    return trace.ok() ? *trace : v1::GetTraceResponse();
  }

  static telekern::testing::KafkaMockCluster* cluster_;
  static std::vector<testing::ProducedRecord>* records_;
  static inline bool batch_scan_ = true;
  telekern::testing::TempDir dir_;
  std::unique_ptr<TraceEngine> engine_;
};

telekern::testing::KafkaMockCluster* TracerKafkaTest::cluster_ = nullptr;
std::vector<testing::ProducedRecord>* TracerKafkaTest::records_ = nullptr;

TEST_F(TracerKafkaTest, FindsExactlyTheRecordsHoldingTheIdAndCoversEveryPartition) {
  Collect collect;
  auto summary = engine_->trace(request(), collect, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto expected = testing::containing(*records_, testing::kDevice);
  ASSERT_GT(expected.size(), 100u);
  auto trace = stored(*summary);
  EXPECT_EQ(found(trace), expected);
  EXPECT_EQ(collect.streamed, expected);  // streamed as found
  EXPECT_GT(collect.progress_messages, 0);
  EXPECT_EQ(summary->matched(), expected.size());
  EXPECT_EQ(summary->scanned(), records_->size());
  EXPECT_TRUE(summary->complete()) << summary->DebugString();
  EXPECT_EQ(summary->topics_size(), 5);
  EXPECT_EQ(summary->partitions_size(), 4 + 4 + 3 + 4 + 2);
  for (const auto& partition : summary->partitions()) {
    EXPECT_TRUE(partition.reached_end()) << partition.DebugString();
    EXPECT_EQ(partition.error(), "");
    EXPECT_EQ(partition.start_offset(), partition.low_watermark());
    EXPECT_EQ(partition.end_offset(), partition.stop_offset()) << partition.DebugString();
  }
  // Time-sorted.
  for (int i = 1; i < trace.events_size(); ++i) {
    EXPECT_LE(from_timestamp(trace.events(i - 1).timestamp()),
              from_timestamp(trace.events(i).timestamp()));
  }
  // Outputs: the JSON holds every event, the SVGs parse as XML.
  std::filesystem::path dir = summary->output_dir();
  std::ifstream json_file(dir / (std::string("events_") + testing::kDevice + ".json"));
  auto json = nlohmann::json::parse(json_file);
  EXPECT_EQ(json["events"].size(), expected.size());
  EXPECT_EQ(json["events"][0]["value"].is_object() || json["events"][0]["value"].is_string(), true);
  std::string svgs;
  for (const char* view : {"timeline_", "swimlane_", "flow_", "compact_"}) {
    auto file = dir / (std::string(view) + testing::kDevice + ".svg");
    EXPECT_TRUE(std::filesystem::exists(file)) << file;
    svgs += " '" + file.string() + "'";
  }
  EXPECT_EQ(std::system(("python3 -c 'import sys, xml.etree.ElementTree as E; [E.parse(f) for f in "
                         "sys.argv[1:]]'" +
                         svgs)
                            .c_str()),
            0);
  EXPECT_TRUE(std::filesystem::exists(dir / "trace.log"));
}

TEST_F(TracerKafkaTest, AnyNumberOfConsumersFindsTheSameEventsAndCoversEveryPartition) {
  // max_parallel 1: one consumer reads all 17 partitions of the 5 topics;
  // 3: each reads a share of several topics; 32: one partition each.
  auto expected = testing::containing(*records_, testing::kDevice);
  for (uint32_t parallel : {1u, 3u, 32u}) {
    auto req = request();
    req.set_max_parallel(parallel);
    req.set_no_graphs(true);
    Collect collect;
    auto summary = engine_->trace(req, collect, {});
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(collect.streamed, expected) << "max_parallel " << parallel;
    EXPECT_EQ(summary->scanned(), records_->size()) << "max_parallel " << parallel;
    EXPECT_TRUE(summary->complete()) << summary->DebugString();
    EXPECT_EQ(collect.last.units_total(), std::min(parallel, 17u));
    for (const auto& partition : summary->partitions())
      EXPECT_EQ(partition.end_offset(), partition.stop_offset()) << partition.DebugString();
  }
}

TEST_F(TracerKafkaTest, WithoutTheBatchScanLibrdkafkaFindsTheSameEvents) {
  batch_scan_ = false;
  auto expected = testing::containing(*records_, testing::kDevice);
  for (uint32_t parallel : {1u, 4u}) {
    auto req = request();
    req.set_max_parallel(parallel);
    req.set_no_graphs(true);
    Collect collect;
    auto summary = engine_->trace(req, collect, {});
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(collect.streamed, expected) << "max_parallel " << parallel;
    EXPECT_EQ(summary->scanned(), records_->size());
    EXPECT_TRUE(summary->complete()) << summary->DebugString();
  }
  batch_scan_ = true;
}

TEST_F(TracerKafkaTest, JsonFieldMatchSkipsIdsSharingThePrefix) {
  auto req = request();
  req.add_topics("device-events");
  req.set_field("device.id");
  Collect collect;
  auto summary = engine_->trace(req, collect, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  std::set<EventKey> expected;
  for (const auto& r : *records_)
    if (r.topic == "device-events" && r.device == testing::kDevice)
      expected.insert({r.topic, r.partition, r.offset});
  auto with_decoys = testing::containing(*records_, testing::kDevice);
  std::erase_if(with_decoys, [](const EventKey& k) { return std::get<0>(k) != "device-events"; });
  ASSERT_GT(with_decoys.size(), expected.size());  // the decoy is there to be skipped
  EXPECT_EQ(found(stored(*summary)), expected);
  // Event types come from the JSON value.
  auto trace = stored(*summary);
  ASSERT_GT(trace.events_size(), 0);
  EXPECT_FALSE(trace.events(0).event_type().empty());
}

TEST_F(TracerKafkaTest, MaxAgeSeeksByTimestampAndRecordsTheSkippedRange) {
  auto req = request();
  req.mutable_max_age()->set_seconds(3 * 24 * 3600);
  Collect collect;
  auto summary = engine_->trace(req, collect, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  int64_t since = summary->since().seconds() * 1000 + summary->since().nanos() / 1000000;
  auto expected = testing::containing(*records_, testing::kDevice, since);
  EXPECT_EQ(found(stored(*summary)), expected);
  EXPECT_TRUE(summary->complete());
  uint64_t in_window = 0;
  for (const auto& r : *records_) in_window += r.timestamp_ms >= since;
  // Seeking skipped the old records instead of reading them.
  EXPECT_EQ(summary->scanned(), in_window);
  for (const auto& partition : summary->partitions()) {
    EXPECT_GT(partition.start_offset(), partition.low_watermark()) << partition.DebugString();
    EXPECT_EQ(partition.end_offset(), partition.stop_offset());
  }
}

TEST_F(TracerKafkaTest, TopicFilterSubstringAndRegex) {
  auto req = request();
  req.set_topic_filter("device");
  Collect collect;
  auto summary = engine_->trace(req, collect, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->topics_size(), 1);
  EXPECT_EQ(summary->topics(0).topic(), "device-events");

  req.set_topic_filter("^(audit-log|provision)$");
  req.set_topic_filter_regex(true);
  summary = engine_->trace(req, collect, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  std::set<std::string> topics;
  for (const auto& topic : summary->topics()) topics.insert(topic.topic());
  EXPECT_EQ(topics, (std::set<std::string>{"audit-log", "provision"}));
  auto expected = testing::containing(*records_, testing::kDevice);
  std::erase_if(expected, [](const EventKey& k) {
    return std::get<0>(k) != "audit-log" && std::get<0>(k) != "provision";
  });
  EXPECT_EQ(found(stored(*summary)), expected);
}

TEST_F(TracerKafkaTest, MaxMessagesLimitsEachTopicAndMarksTheTraceIncomplete) {
  auto req = request();
  req.set_max_messages(100);
  Collect collect;
  auto summary = engine_->trace(req, collect, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  for (const auto& topic : summary->topics()) EXPECT_EQ(topic.scanned(), 100u) << topic.topic();
  EXPECT_FALSE(summary->complete());
  bool named = false;
  for (const auto& reason : summary->incomplete_reasons())
    named |= reason.find("max_messages=100") != std::string::npos;
  EXPECT_TRUE(named) << summary->DebugString();
}

TEST_F(TracerKafkaTest, AMissingTopicIsListedAndTheTraceIncomplete) {
  auto req = request();
  req.add_topics("provision");
  req.add_topics("no-such-topic");
  Collect collect;
  auto summary = engine_->trace(req, collect, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_FALSE(summary->complete());
  bool listed = false;
  for (const auto& topic : summary->topics())
    if (topic.topic() == "no-such-topic") listed = !topic.error().empty();
  EXPECT_TRUE(listed) << summary->DebugString();
}

TEST_F(TracerKafkaTest, StoredTracesAreListedAndRerendered) {
  Collect collect;
  auto req = request();
  req.add_topics("provision");
  auto summary = engine_->trace(req, collect, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto list = engine_->list_traces({});
  ASSERT_TRUE(list.ok());
  ASSERT_GE(list->traces_size(), 1);
  EXPECT_EQ(list->traces(0).trace_id(), summary->trace_id());
  v1::RenderReportRequest render;
  render.set_trace_id(summary->trace_id());
  render.set_view(v1::VIEW_SWIMLANE);
  render.set_time_mapping(v1::TIME_MAPPING_LINEAR);
  auto files = engine_->render_report(render);
  ASSERT_TRUE(files.ok()) << files.status();
  bool swimlane = false;
  for (const auto& file : files->files()) swimlane |= file.find("swimlane_") != std::string::npos;
  EXPECT_TRUE(swimlane);
  v1::GetTraceRequest get;
  get.set_trace_id("../etc");
  EXPECT_FALSE(engine_->get_trace(get).ok());
}

}  // namespace
}  // namespace telekern::tracer
