// The tracer's pure parts: matching (substring, scopes, JSON field), event
// types, consume-line parsing, template expansion, the time axis, SVGs, how
// partitions are shared among consumers, and the consumers' settings.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <map>
#include <set>

#include "command_source.h"
#include "kafka_batch_fetch.h"
#include "kafka_source.h"
#include "matcher.h"
#include "scan_groups.h"
#include "time_axis.h"
#include "tracer_options.h"
#include "views.h"

namespace telekern::tracer {
namespace {

RecordView record(std::string_view key, std::string_view value) {
  RecordView r;
  r.key = key;
  r.value = value;
  return r;
}

TEST(MatcherTest, SubstringOverKeyValueAndHeadersByScope) {
  DeviceMatcher any("dev-7f3a", MatchScope::kAny, "");
  EXPECT_TRUE(any.matches(record("", "x dev-7f3a y")));
  EXPECT_TRUE(any.matches(record("dev-7f3a", "")));
  EXPECT_FALSE(any.matches(record("dev-7f3", "dev-7f")));
  auto with_header = record("", "");
  with_header.headers.emplace_back("device", "dev-7f3a");
  EXPECT_TRUE(any.matches(with_header));
  DeviceMatcher key_only("dev-7f3a", MatchScope::kKey, "");
  EXPECT_FALSE(key_only.matches(record("", "dev-7f3a")));
  EXPECT_TRUE(key_only.matches(record("dev-7f3a", "")));
  DeviceMatcher value_only("dev-7f3a", MatchScope::kValue, "");
  EXPECT_FALSE(value_only.matches(with_header));
}

TEST(MatcherTest, JsonFieldMustEqualTheIdExactly) {
  DeviceMatcher field("dev-7f3a", MatchScope::kAny, "device.id");
  EXPECT_TRUE(field.matches(record("", R"({"device":{"id":"dev-7f3a"}})")));
  EXPECT_FALSE(field.matches(record("", R"({"device":{"id":"dev-7f3a9"}})")));
  EXPECT_FALSE(field.matches(record("", R"({"other":"dev-7f3a"})")));
  EXPECT_FALSE(field.matches(record("", "not json dev-7f3a")));
  DeviceMatcher number("12345", MatchScope::kAny, "id");
  EXPECT_TRUE(number.matches(record("", R"({"id": 12345})")));
  EXPECT_FALSE(number.matches(record("", R"({"id": 123456})")));
}

TEST(MatcherTest, EventTypeFromTypeLikeFields) {
  EXPECT_EQ(event_type_of(R"({"type":"boot"})"), "boot");
  EXPECT_EQ(event_type_of(R"({"event":"login","x":1})"), "login");
  EXPECT_EQ(event_type_of("plain"), "");
}

TEST(CommandLineTest, ParsesConsoleConsumerAndKcatLines) {
  RecordView r;
  ASSERT_TRUE(parse_record_line(
      "CreateTime:1700000000123\tPartition:2\tOffset:41\tkey-1\t{\"a\":\"b\tc\"}", r));
  EXPECT_EQ(r.timestamp_ms, 1700000000123);
  EXPECT_EQ(r.partition, 2);
  EXPECT_EQ(r.offset, 41);
  EXPECT_EQ(r.key, "key-1");
  EXPECT_EQ(r.value, "{\"a\":\"b\tc\"}");
  RecordView plain;
  ASSERT_TRUE(parse_record_line("just a value", plain));
  EXPECT_EQ(plain.value, "just a value");
  EXPECT_EQ(plain.offset, -1);
  RecordView empty;
  EXPECT_FALSE(parse_record_line("", empty));
}

TEST(CommandLineTest, TemplatesExpandKnownPlaceholdersOnly) {
  CommandSource source("exec", make_local_runner(), {},
                       {{"namespace", "ns"}, {"pod", "pod/kafka-0"}});
  EXPECT_EQ(source.expand("kubectl exec -n {namespace} {pod} -- x {topic} awk '{print $1}'",
                          {{"topic", "t"}}),
            "kubectl exec -n ns pod/kafka-0 -- x t awk '{print $1}'");
}

TEST(TimeAxisTest, NonLinearCompressesLongGapsAndMarksThem) {
  // A burst, three days of nothing, another burst.
  std::vector<int64_t> times;
  for (int i = 0; i < 10; ++i) times.push_back(1000 * i);
  for (int i = 0; i < 10; ++i) times.push_back(3LL * 86400000 + 1000 * i);
  TimeAxis linear(times, false), nonlinear(times, true);
  EXPECT_LT(linear.position(9000), 0.01);    // the first burst is squeezed into a pixel
  EXPECT_GT(nonlinear.position(9000), 0.2);  // and spread out here
  ASSERT_EQ(nonlinear.gaps().size(), 1u);
  EXPECT_EQ(nonlinear.gaps()[0].to_ms - nonlinear.gaps()[0].from_ms, 3LL * 86400000 - 9000);
  EXPECT_TRUE(linear.gaps().empty());
  for (size_t i = 1; i < times.size(); ++i)
    EXPECT_LT(nonlinear.position(times[i - 1]), nonlinear.position(times[i]));
  EXPECT_EQ(human_duration(3LL * 86400000 + 4 * 3600000), "3d 4h");
}

TEST(ViewsTest, SvgTextIsEscaped) {
  std::vector<v1::Event> events(2);
  events[0].set_topic("a<b&c");
  events[0].mutable_timestamp()->set_seconds(1000);
  events[1].set_topic("other");
  events[1].mutable_timestamp()->set_seconds(5000);
  TimeAxis axis({1000000, 5000000}, true);
  std::string svg = swimlane_svg(events, axis);
  EXPECT_NE(svg.find("a&lt;b&amp;c"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_NE(flow_svg(events).find("marker-end"), std::string::npos);  // one transition a -> other
}

ScanUnit topic_plan(const std::string& topic, std::vector<int64_t> records) {
  ScanUnit unit{topic, {}};
  for (size_t i = 0; i < records.size(); ++i)
    unit.partitions.push_back({static_cast<int32_t>(i), 0, 0, records[i]});
  return unit;
}

TEST(ScanGroupsTest, SharesEveryPartitionOnceAmongAtMostTheGroupsBalancedByRecords) {
  std::vector<ScanUnit> plans;
  for (int t = 0; t < 10; ++t)
    plans.push_back(topic_plan("topic-" + std::to_string(t), {1000, 1000, 1000, 1000}));
  plans.push_back(topic_plan("big", {9000, 1}));
  auto groups = group_partitions(plans, 4);
  ASSERT_EQ(groups.size(), 4u);
  std::set<std::pair<std::string, int32_t>> seen;
  std::vector<int64_t> load;
  for (const auto& group : groups) {
    ASSERT_EQ(group.units.size(), group.plan_index.size());
    int64_t records = 0;
    std::set<std::string> topics;
    for (size_t u = 0; u < group.units.size(); ++u) {
      const auto& unit = group.units[u];
      EXPECT_EQ(unit.topic, plans[group.plan_index[u]].topic);
      EXPECT_TRUE(topics.insert(unit.topic).second) << "a topic twice in one group";
      EXPECT_TRUE(
          std::is_sorted(unit.partitions.begin(), unit.partitions.end(),
                         [](const auto& a, const auto& b) { return a.partition < b.partition; }));
      for (const auto& partition : unit.partitions) {
        EXPECT_TRUE(seen.insert({unit.topic, partition.partition}).second);
        records += records_to_scan(partition);
      }
    }
    EXPECT_GT(topics.size(), 1u) << "a consumer reads several topics";
    load.push_back(records);
  }
  EXPECT_EQ(seen.size(), 42u);
  // 49,001 records: the 9,000-record partition alone, the rest within one partition of even.
  auto [least, most] = std::minmax_element(load.begin(), load.end());
  EXPECT_EQ(*most, 13000);
  EXPECT_LE(*most - *least, 1000 + 1) << "unbalanced";
}

TEST(ScanGroupsTest, FewerPartitionsThanGroupsAndUnknownPartitions) {
  auto groups = group_partitions({topic_plan("a", {10, 10}), ScanUnit{"lines", {}}}, 8);
  ASSERT_EQ(groups.size(), 3u);  // the topic without known partitions alone, then one per partition
  EXPECT_EQ(groups[0].units[0].topic, "lines");
  EXPECT_TRUE(groups[0].units[0].partitions.empty());
  EXPECT_EQ(groups[1].units[0].partitions.size(), 1u);
  EXPECT_EQ(groups[2].units[0].partitions.size(), 1u);
  EXPECT_TRUE(group_partitions({}, 4).empty());
  // A max_age that skipped everything leaves zero records: still scanned (to report the end).
  auto empty = group_partitions({topic_plan("old", {0, 0, 0})}, 2);
  size_t partitions = 0;
  for (const auto& group : empty) partitions += group.units[0].partitions.size();
  EXPECT_EQ(partitions, 3u);
}

TEST(KafkaSettingsTest, FetchSettingsReachLibrdkafkaAndPropertiesWin) {
  TracerOptions options;  // the module's defaults
  KafkaSourceOptions kafka;
  kafka.brokers = "127.0.0.1:1";
  kafka.fetch = options.kafka_fetch();
  kafka.properties = {{"fetch.wait.max.ms", "25"}};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [name, value] : consumer_settings(kafka))
    ASSERT_EQ(rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error),
              RD_KAFKA_CONF_OK)
        << name << "=" << value << ": " << error;
  // librdkafka accepts the combination (it checks fetch sizes against receive.message.max.bytes).
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error);
  ASSERT_NE(consumer, nullptr) << error;
  auto get = [&](const char* name) {
    char value[256];
    size_t size = sizeof value;
    EXPECT_EQ(rd_kafka_conf_get(rd_kafka_conf(consumer), name, value, &size), RD_KAFKA_CONF_OK);
    return std::string(value);
  };
  EXPECT_EQ(get("fetch.max.bytes"), "52428800");
  EXPECT_EQ(get("max.partition.fetch.bytes"), "8388608");
  EXPECT_EQ(get("queued.max.messages.kbytes"), "131072");
  EXPECT_EQ(get("fetch.wait.max.ms"), "25");  // kafka.properties come last
  rd_kafka_destroy(consumer);

  options.kafka_fetch_max_bytes = 200000000;
  options.kafka_max_partition_fetch_bytes = 1048576;
  options.kafka_fetch_wait_max_ms = 0;
  options.kafka_queued_max_messages_kbytes = 1024;
  kafka.fetch = options.kafka_fetch();
  std::map<std::string, std::string> settings;
  for (const auto& [name, value] : consumer_settings(kafka)) settings[name] = value;
  EXPECT_EQ(settings["fetch.max.bytes"], "200000000");
  EXPECT_EQ(settings["max.partition.fetch.bytes"], "1048576");
  EXPECT_EQ(settings["fetch.wait.max.ms"], "25");
  EXPECT_EQ(settings["queued.max.messages.kbytes"], "1024");
  // A response may be as big as a fetch: receive.message.max.bytes follows.
  EXPECT_GE(std::stoll(settings["receive.message.max.bytes"]), 200000000 + 512);
}

// Kafka wire bytes for hand-made record batches (v2, uncompressed).
void put_be(std::string& out, uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(value >> shift));
}
void put_varint(std::string& out, int64_t value) {
  auto zigzag = (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
  while (zigzag >= 0x80) {
    out.push_back(static_cast<char>(zigzag | 0x80));
    zigzag >>= 7;
  }
  out.push_back(static_cast<char>(zigzag));
}
std::string batch(int64_t base, int64_t base_time, const std::vector<std::string>& values,
                  int16_t attributes = 0, int32_t offset_step = 1) {
  std::string records;
  for (size_t i = 0; i < values.size(); ++i) {
    std::string record;
    record.push_back(0);                              // attributes
    put_varint(record, static_cast<int64_t>(i) * 5);  // timestamp delta
    put_varint(record, static_cast<int64_t>(i) * offset_step);
    put_varint(record, -1);  // no key
    put_varint(record, static_cast<int64_t>(values[i].size()));
    record += values[i];
    put_varint(record, 0);  // no headers
    put_varint(records, static_cast<int64_t>(record.size()));
    records += record;
  }
  std::string body;
  put_be(body, 0, 4);  // partition leader epoch
  body.push_back(2);   // magic
  put_be(body, 0, 4);  // crc
  put_be(body, static_cast<uint16_t>(attributes), 2);
  put_be(body, static_cast<uint32_t>((values.size() - 1) * offset_step), 4);
  put_be(body, static_cast<uint64_t>(base_time), 8);
  put_be(body, static_cast<uint64_t>(base_time), 8);
  put_be(body, static_cast<uint64_t>(-1), 8);  // producer id
  put_be(body, static_cast<uint16_t>(-1), 2);
  put_be(body, static_cast<uint32_t>(-1), 4);
  put_be(body, values.size(), 4);
  body += records;
  std::string out;
  put_be(out, static_cast<uint64_t>(base), 8);
  put_be(out, body.size(), 4);
  return out + body;
}

TEST(BatchWalkTest, RecordsFromAnOffsetSkippingControlBatchesGapsAndACutShortTail) {
  std::string bytes = batch(10, 1000, {"a", "b", "c"});  // offsets 10-12
  bytes += batch(13, 2000, {"commit"}, 0x20 | 0x10);     // a transaction marker at 13
  bytes += batch(14, 3000, {"d", "e"}, 0, 3);            // offsets 14 and 17 (compacted)
  std::string tail = batch(18, 4000, {"f"});
  bytes += tail.substr(0, tail.size() - 3);  // the broker cut the last batch
  std::string scratch;
  RecordView view;
  std::vector<std::pair<int64_t, std::string>> seen;
  std::vector<int64_t> times;
  auto walk = walk_batches(bytes, 11, scratch, view, [&](const RecordView& record) {
    seen.push_back({record.offset, std::string(record.value)});
    times.push_back(record.timestamp_ms);
    return true;
  });
  ASSERT_TRUE(walk.ok()) << walk.status();
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, std::string>>{
                      {11, "b"}, {12, "c"}, {14, "d"}, {17, "e"}}));
  EXPECT_EQ(times, (std::vector<int64_t>{1005, 1010, 3000, 3005}));
  EXPECT_EQ(walk->next, 18);  // after the last whole batch; the cut one is fetched again
  EXPECT_FALSE(walk->stopped);

  // Stopping early reports the offset after the last record taken.
  seen.clear();
  walk = walk_batches(bytes, 0, scratch, view, [&](const RecordView& record) {
    seen.push_back({record.offset, std::string(record.value)});
    return seen.size() < 2;
  });
  ASSERT_TRUE(walk.ok());
  EXPECT_TRUE(walk->stopped);
  EXPECT_EQ(walk->next, 12);

  // Snappy (codec 2) is left to librdkafka, named with its offset.
  walk = walk_batches(batch(30, 0, {"x"}, 2), 30, scratch, view,
                      [](const RecordView&) { return true; });
  EXPECT_EQ(walk.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(walk.status().message().find("offset 30"), std::string::npos);
}

TEST(BatchWalkTest, FetchRequestAndResponseFraming) {
  std::string request = encode_fetch_request(7, {{"orders", {{3, 42}}}}, FetchLimits{});
  ASSERT_GE(request.size(), 4u);
  uint32_t size = (static_cast<unsigned char>(request[0]) << 24) |
                  (static_cast<unsigned char>(request[1]) << 16) |
                  (static_cast<unsigned char>(request[2]) << 8) |
                  static_cast<unsigned char>(request[3]);
  EXPECT_EQ(size, request.size() - 4);
  EXPECT_EQ(request.substr(4, 4), std::string("\x00\x01\x00\x04", 4));  // Fetch v4
  EXPECT_NE(request.find("orders"), std::string::npos);

  std::string response;
  put_be(response, 7, 4);  // correlation id
  put_be(response, 0, 4);  // throttle
  put_be(response, 1, 4);  // one topic
  put_be(response, 6, 2);
  response += "orders";
  put_be(response, 1, 4);  // one partition
  put_be(response, 3, 4);
  put_be(response, 0, 2);   // no error
  put_be(response, 99, 8);  // high watermark
  put_be(response, 99, 8);  // last stable offset
  put_be(response, 0, 4);   // no aborted transactions
  std::string records = batch(42, 0, {"v"});
  put_be(response, records.size(), 4);
  response += records;
  auto fetched = decode_fetch_response(response, 7);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  ASSERT_EQ(fetched->size(), 1u);
  EXPECT_EQ((*fetched)[0].topic, "orders");
  EXPECT_EQ((*fetched)[0].partition, 3);
  EXPECT_EQ((*fetched)[0].high_watermark, 99);
  EXPECT_EQ((*fetched)[0].records, records);
  EXPECT_FALSE(decode_fetch_response(response, 8).ok());  // another request's answer
  EXPECT_FALSE(decode_fetch_response(response.substr(0, response.size() - 5), 7).ok());
}

}  // namespace
}  // namespace telekern::tracer
