// The tracer's pure parts: matching (substring, scopes, JSON field), event
// types, consume-line parsing, template expansion, the time axis, SVGs.
#include <gtest/gtest.h>

#include "command_source.h"
#include "matcher.h"
#include "time_axis.h"
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

}  // namespace
}  // namespace telekern::tracer
