// RowBinary bytes for the types a modern server gets (the 18.16 ones are
// checked against a real server in the integration tests).
#include "row_binary.h"

#include <gtest/gtest.h>

namespace telekern::etl {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int value : values) out += static_cast<char>(value);
  return out;
}

absl::StatusOr<std::string> encode_one(const std::string& type, const std::string& fragment,
                                       const ServerProfile& profile = ServerProfile::modern()) {
  TableSchema schema;
  schema.name = "t";
  schema.columns = {{"c", type, "", ""}};
  auto encoder = RowBinaryEncoder::create(schema, profile);
  if (!encoder.ok()) return encoder.status();
  Row row;
  row.add_json(schema.columns[0].name, fragment);
  std::string out;
  auto columns = encoder->encode({&row}, out);
  if (!columns.ok()) return columns.status();
  return out;
}

TEST(RowBinary, EncodesModernTypes) {
  EXPECT_EQ(*encode_one("Nullable(UInt32)", "null"), bytes({1}));
  EXPECT_EQ(*encode_one("Nullable(UInt32)", "258"), bytes({0, 2, 1, 0, 0}));
  EXPECT_EQ(*encode_one("Int16", "-2"), bytes({0xfe, 0xff}));
  EXPECT_EQ(*encode_one("LowCardinality(Nullable(String))", R"("a\"b")"),
            bytes({0, 3, 'a', '"', 'b'}));
  EXPECT_EQ(*encode_one("Array(Nullable(UInt8))", "[1,null]"), bytes({2, 0, 1, 1}));
  EXPECT_EQ(*encode_one("Array(String)", "[]"), bytes({0}));
  // 2024-12-01 10:00:00.123 UTC = 1733047200123 ms.
  int64_t millis = 1733047200123;
  std::string expected(reinterpret_cast<const char*>(&millis), 8);
  EXPECT_EQ(*encode_one("DateTime64(3, 'UTC')", R"("2024-12-01 10:00:00.123")"), expected);
  uint32_t seconds = 1733047200;
  EXPECT_EQ(*encode_one("DateTime('UTC')", R"("2024-12-01 10:00:00")"),
            std::string(reinterpret_cast<const char*>(&seconds), 4));
  EXPECT_EQ(*encode_one("Nullable(IPv4)", R"("192.0.2.1")"), bytes({0, 1, 2, 0, 192}));
  auto v6 = encode_one("IPv6", R"("198.51.100.7")");  // v4 text into IPv6: mapped
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->substr(10), bytes({0xff, 0xff, 198, 51, 100, 7}));
  int32_t scaled = 37870000;  // Decimal(9, 6)
  EXPECT_EQ(*encode_one("Nullable(Decimal(9, 6))", "37.87"),
            bytes({0}) + std::string(reinterpret_cast<const char*>(&scaled), 4));
  EXPECT_EQ(*encode_one("Bool", "true"), bytes({1}));
  // 18.16: Decimal falls back to Float64.
  double value = 37.87;
  EXPECT_EQ(*encode_one("Decimal(9, 6)", "37.87", ServerProfile::for_version("18.16.1")),
            std::string(reinterpret_cast<const char*>(&value), 8));
}

TEST(RowBinary, NamesWhatItCannotCarry) {
  auto status = encode_one("UInt32", R"("abc")").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("column c"), std::string::npos) << status;
  EXPECT_EQ(encode_one("Enum8('a' = 1)", "1").status().code(), absl::StatusCode::kUnimplemented);
}

TEST(RowBinary, LeavesUnfilledDefaultColumnsToTheServer) {
  TableSchema schema;
  schema.name = "t";
  schema.columns = {{"a", "UInt8", "", ""}, {"ts", "DateTime", "now()", ""}};
  auto encoder = RowBinaryEncoder::create(schema, ServerProfile::modern());
  ASSERT_TRUE(encoder.ok());
  Row filled, unfilled;
  filled.add_json(schema.columns[0].name, "1");
  filled.add_json(schema.columns[1].name, "\"1970-01-01 00:00:01\"");
  unfilled.add_json(schema.columns[0].name, "2");
  std::string out;
  EXPECT_EQ(*encoder->encode({&unfilled}, out), "`a`");
  EXPECT_EQ(out, bytes({2}));
  EXPECT_EQ(encoder->encode({&filled, &unfilled}, out).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace telekern::etl
