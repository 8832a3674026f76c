// DCGM CSV rows: header mapping, parsing, validation, record round trip, rates.
#include "telemetry_point.h"

#include <gtest/gtest.h>

#include "collector_engine.h"

namespace telekern::collector {
namespace {

TEST(TelemetryPoint, ParsesADcgmRowWithTheSeedHeader) {
  auto columns = CsvColumns::from_header(kCsvHeader);
  ASSERT_TRUE(columns.ok()) << columns.status();
  auto point = columns->parse(
      "2025-07-18T20:42:34Z,DCGM_FI_DEV_GPU_TEMP,3,nvidia3,GPU-abc,NVIDIA H100 80GB HBM3,"
      "host-1,trainer,pod-1,ml,61.5,\"driver=\"\"535\"\"\"");
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_EQ(point->metric_name, "DCGM_FI_DEV_GPU_TEMP");
  EXPECT_EQ(point->gpu_id, "3");
  EXPECT_EQ(point->model_name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(point->hostname, "host-1");
  EXPECT_EQ(point->namespace_name, "ml");
  EXPECT_DOUBLE_EQ(point->value, 61.5);
  EXPECT_EQ(point->labels_raw, "driver=\"535\"");
  EXPECT_EQ(format_time(point->time), "2025-07-18T20:42:34Z");
  EXPECT_EQ(point->gpu_key(), "GPU-abc");
}

TEST(TelemetryPoint, HeaderOrderAndSpellingMayVary) {
  auto columns = CsvColumns::from_header("value,Metric_Name,UUID,timestamp,hostname");
  ASSERT_TRUE(columns.ok()) << columns.status();
  auto point = columns->parse("7,DCGM_FI_DEV_SM_CLOCK,GPU-1,1752868800000,h");
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_EQ(format_time(point->time), "2025-07-18T20:00:00Z");  // epoch milliseconds
  EXPECT_EQ(point->uuid, "GPU-1");
  auto missing = CsvColumns::from_header("timestamp,gpu_id,value");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("metric_name"), std::string::npos);
}

TEST(TelemetryPoint, RejectsBadRowsWithTheReason) {
  auto columns = *CsvColumns::from_header(kCsvHeader);
  auto reason = [&](const std::string& line) {
    return std::string(columns.parse(line).status().message());
  };
  EXPECT_NE(reason("2025-07-18T20:42:34Z,M,0,d,u,m,h,c,p,n,abc,").find("'abc' is not a number"),
            std::string::npos);
  EXPECT_NE(reason("2025-07-18T20:42:34Z,M,0,d").find("4 columns, the header 12"),
            std::string::npos);
  EXPECT_NE(reason("noon,M,0,d,u,m,h,c,p,n,1,").find("not RFC 3339"), std::string::npos);
  EXPECT_NE(reason("2025-07-18T20:42:34Z,bad name,0,d,u,m,h,c,p,n,1,").find("not a metric name"),
            std::string::npos);
  EXPECT_NE(reason("2025-07-18T20:42:34Z,M,,,,m,h,c,p,n,1,").find("names no GPU"),
            std::string::npos);
  EXPECT_NE(reason("2025-07-18T20:42:34Z,M,0,d,u,m,h,c,p,n,inf,").find("not finite"),
            std::string::npos);
}

TEST(TelemetryPoint, RecordRoundTripsExactly) {
  TelemetryPoint point;
  point.time = *parse_time("2025-07-18T20:42:34.123456789Z");
  point.metric_name = "DCGM_FI_DEV_POWER_USAGE";
  point.gpu_id = "1";
  point.uuid = "GPU-x";
  point.hostname = "h, with comma";
  point.value = 0.1 + 0.2;
  point.labels_raw = "a=\"b\"";
  auto back = decode_record(encode_record(point));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->time, point.time);
  EXPECT_EQ(back->hostname, point.hostname);
  EXPECT_EQ(back->value, point.value);
  EXPECT_EQ(back->labels_raw, point.labels_raw);
}

TEST(Rate, ParsesUnits) {
  EXPECT_DOUBLE_EQ(*parse_rate("1000/s"), 1000);
  EXPECT_DOUBLE_EQ(*parse_rate("600/m"), 10);
  EXPECT_DOUBLE_EQ(*parse_rate("50"), 50);
  EXPECT_FALSE(parse_rate("fast").ok());
  EXPECT_FALSE(parse_rate("5/d").ok());
}

}  // namespace
}  // namespace telekern::collector
