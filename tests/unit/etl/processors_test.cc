// Processors, type fallbacks and DDL without any server.
#include <gtest/gtest.h>

#include "column_type.h"
#include "declarative_processor.h"
#include "etl_engine.h"
#include "tables.h"
#include "telekern/log.h"

namespace telekern::etl {
namespace {

TEST(ColumnType, FallsBackByServerVersion) {
  auto old = ServerProfile::for_version("18.16.1");
  EXPECT_FALSE(old.datetime64);
  EXPECT_EQ(ColumnType::parse("LowCardinality(Nullable(String))").render(old), "Nullable(String)");
  EXPECT_EQ(ColumnType::parse("DateTime64(3, 'UTC')").render(old), "DateTime('UTC')");
  EXPECT_EQ(ColumnType::parse("Nullable(IPv6)").render(old), "Nullable(String)");
  EXPECT_EQ(ColumnType::parse("Array(LowCardinality(Nullable(String)))").render(old),
            "Array(Nullable(String))");
  EXPECT_EQ(ColumnType::parse("Bool").render(old), "UInt8");
  auto modern = ServerProfile::for_version("24.3.1.2");
  EXPECT_EQ(ColumnType::parse("LowCardinality(Nullable(String))").render(modern),
            "LowCardinality(Nullable(String))");
  auto ddl = if_traffic_schema().ddl("db", old);
  EXPECT_EQ(ddl.find("CODEC"), std::string::npos);
  EXPECT_EQ(ddl.find("TTL"), std::string::npos);
  EXPECT_NE(if_traffic_schema().ddl("db", modern).find("CODEC(Delta,ZSTD)"), std::string::npos);
}

TEST(Processors, EveryReferenceColumnIsWritten) {
  EtlEngine engine(EtlOptions{}, nullptr, make_logger("etl-test"));
  auto rows = engine.dry_run("FlowProcessor", R"({"start": 1700000000, "end": 1700000060,
      "meta": {"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "src_port": 1, "dst_port": 2,
               "src_asn": 3, "dst_asn": 4}})",
                             "");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->rows.size(), 1u);
  for (const auto& column : flow_edge_schema().columns) {
    if (column.name == "insert_ts") continue;
    EXPECT_NE(rows->rows[0].json.find("\"" + column.name + "\":"), std::string::npos)
        << column.name;
  }
}

TEST(Processors, MissingRequiredFieldsAreRejectedWithTheReason) {
  EtlEngine engine(EtlOptions{}, nullptr, make_logger("etl-test"));
  auto result = engine.dry_run(
      "InterfaceTrafficProcessor",
      R"({"meta": {"id": "a::b", "device": "a"}, "values": {"in_bits": {"val": 1}}})", "");
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->matched);
  ASSERT_EQ(result->rejected.size(), 1u);
  EXPECT_EQ(result->rejected[0].second, "missing required field /start");
}

TEST(Processors, UnknownFieldPolicy) {
  std::string message = R"({"start": 1, "meta": {"id": "a::b", "device": "a"},
      "values": {"in_bits": {"val": 1}, "mystery": {"val": 2}, "out_bits": {"val": "x"}}})";
  EtlOptions strict;
  strict.unknown_fields = "strict";
  auto rejected = EtlEngine(strict, nullptr, make_logger("t"))
                      .dry_run("InterfaceTrafficProcessor", message, "");
  ASSERT_TRUE(rejected.ok());
  ASSERT_EQ(rejected->rejected.size(), 1u);
  EXPECT_EQ(rejected->rejected[0].second, "unknown field /values/mystery");
  EtlOptions lenient;
  lenient.unknown_fields = "default";
  auto kept = EtlEngine(lenient, nullptr, make_logger("t"))
                  .dry_run("InterfaceTrafficProcessor", message, "");
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->rows.size(), 1u);
  EXPECT_NE(kept->rows[0].json.find("\"out_bits\":null"), std::string::npos) << kept->rows[0].json;
  EXPECT_NE(kept->rows[0].json.find("\"name\":\"b\""), std::string::npos);
}

TEST(Processors, DeclarativeProcessorFromYaml) {
  EtlEngine engine(EtlOptions{}, nullptr, make_logger("etl-test"));
  auto result =
      engine.dry_run("", R"({"start": "2024-05-01T10:00:00Z", "meta": {"host": "h1", "kind": "cpu"},
      "values": {"load": {"val": "0.5"}}})",
                     R"yaml(
name: cpu_load
table: host_cpu
match: {has: [meta.host], equals: {meta.kind: cpu}}
order_by: [host]
columns:
  - {name: start_ts, path: start, type: "DateTime64(3, 'UTC')"}
  - {name: host, path: meta.host, type: String}
  - {name: load, path: values.load.val, type: Nullable(Float64)}
  - {name: cores, path: values.cores.val, type: UInt16, default: 1}
)yaml");
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->rows.size(), 1u);
  EXPECT_EQ(result->rows[0].table, "host_cpu");
  EXPECT_EQ(result->rows[0].json,
            R"({"start_ts":"2024-05-01 10:00:00.000","host":"h1","load":0.5,"cores":1})");
}

}  // namespace
}  // namespace telekern::etl
