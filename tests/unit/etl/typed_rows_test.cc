// Typed rows: processors convert input values once, the RowBinary encoder
// writes them without parsing text. Checked against the fragment path (each
// value rendered as its JSON fragment and parsed by the encoder, as rows were
// encoded before typed values) for every column type of the built-in tables,
// on an 18.16 server's fallback types and a modern server's.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstring>

#include "processor.h"
#include "row_binary.h"
#include "tables.h"

namespace telekern::etl {
namespace {

const ServerProfile kOld = ServerProfile::for_version("18.16.1");
const ServerProfile kModern = ServerProfile::for_version("24.3.1");

// Input values a producer may send for a column of `type` (all convertible).
std::vector<std::string> inputs_for(const ColumnType& type) {
  std::vector<std::string> scalars;
  switch (type.base) {
    case BaseType::kString:
      scalars = {R"("esnet")", R"("a \"quoted\" \u00fc \\ text")", "42", R"("")"};
      break;
    case BaseType::kUInt:
      scalars = {"258", R"("17")", "3.6", "true", "0", "4294967295"};
      break;
    case BaseType::kInt:
      scalars = {"-2", "258", R"("-17")", "2.5"};
      break;
    case BaseType::kFloat:
      scalars = {"1.5", "64496", R"("0.25")", "-0.000001", "1e21"};
      break;
    case BaseType::kDecimal:
      scalars = {"37.87", "-122.419416", R"("12.3456785")", "5", "0.0000005"};
      break;
    case BaseType::kDateTime:
      scalars = {"1733050000",
                 "1733050000123",
                 R"("2024-12-01T10:00:00.123Z")",
                 "1733050000.5",
                 R"("2024-12-01 10:00:00")",
                 "1733050000.9996"};
      break;
    case BaseType::kIPv4:
      scalars = {R"("192.0.2.1")"};
      break;
    case BaseType::kIPv6:
      scalars = {R"("198.51.100.7")", R"("2001:db8::1")"};
      break;
    case BaseType::kBool:
      scalars = {"true", "false", "1", R"("true")"};
      break;
  }
  std::vector<std::string> out;
  if (type.array) {
    out.push_back("null");
    out.push_back(scalars.front());  // a scalar where a list is expected
    std::string list = "[";
    for (const auto& scalar : scalars) list += (list.size() > 1 ? "," : "") + scalar;
    out.push_back(list + "]");
    if (type.element_nullable) out.push_back("[null," + scalars.front() + "]");
    out.push_back("[]");
  } else {
    out = scalars;
    if (type.nullable) out.push_back("null");
  }
  return out;
}

// The row with each typed value replaced by its JSON fragment.
Row as_fragments(const Row& typed) {
  Row out;
  out.table = typed.table;
  for (const auto& cell : typed.cells) out.add_json(cell.name, typed.json(cell.value));
  return out;
}

std::string encode(const TableSchema& schema, const ServerProfile& profile,
                   const std::vector<const Row*>& rows) {
  auto encoder = RowBinaryEncoder::create(schema, profile);
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  if (!encoder.ok()) return "";
  std::string out;
  auto columns = encoder->encode(rows, out);
  EXPECT_TRUE(columns.ok()) << columns.status();
  return out;
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int value : values) out += static_cast<char>(value);
  return out;
}

template <typename T>
std::string little(T value) {
  return std::string(reinterpret_cast<const char*>(&value), sizeof value);
}

class TypedRows : public ::testing::TestWithParam<bool> {
 protected:
  const ServerProfile& profile() const { return GetParam() ? kModern : kOld; }
};

TEST_P(TypedRows, EveryColumnTypeEncodesAsItsJsonFragmentDoes) {
  simdjson::dom::parser parser;
  for (const auto& schema :
       {flow_edge_schema(), if_traffic_schema(), if_sap_queue_schema(), if_port_queue_schema(),
        meta_if_schema(), kafka_messages_schema(), dead_letter_schema()}) {
    // Row i gives each column its i-th input (cycling), so every input of
    // every type appears and rows differ.
    std::vector<Row> typed(6);
    size_t converted = 0;
    for (const auto& column : schema.columns) {
      if (!column.default_expr.empty()) continue;  // filled by the server
      ColumnType type = ColumnType::parse(column.type);
      auto inputs = inputs_for(type);
      for (size_t r = 0; r < typed.size(); ++r) {
        const std::string& input = inputs[r % inputs.size()];
        auto document = parser.parse(input);
        ASSERT_FALSE(document.error()) << input;
        Value value;
        auto status = convert_value(document.value_unsafe(), type, profile(), typed[r], value);
        ASSERT_TRUE(status.ok()) << schema.name << "." << column.name << " " << input << ": "
                                 << status;
        typed[r].add(column.name, value);
        ++converted;
      }
    }
    ASSERT_GT(converted, 0u);
    std::vector<Row> fragments;
    std::vector<const Row*> typed_rows, fragment_rows;
    for (const auto& row : typed) fragments.push_back(as_fragments(row));
    for (size_t r = 0; r < typed.size(); ++r) {
      typed_rows.push_back(&typed[r]);
      fragment_rows.push_back(&fragments[r]);
      EXPECT_EQ(typed[r].json(), fragments[r].json());
    }
    std::string from_typed = encode(schema, profile(), typed_rows);
    std::string from_fragments = encode(schema, profile(), fragment_rows);
    EXPECT_FALSE(from_typed.empty()) << schema.name;
    EXPECT_EQ(from_typed, from_fragments) << schema.name << " on " << profile().version;
  }
}

TEST_P(TypedRows, FlowProcessorRowsEncodeAsTheirFragmentsDo) {
  auto processor = make_builtin_processor("FlowProcessor", BuiltinSettings{});
  ASSERT_TRUE(processor.ok());
  (*processor)->prepare();
  BuildContext context;
  context.profile = profile();
  simdjson::dom::parser parser;
  std::vector<Row> rows;
  for (const char* message : {
           R"({"start": 1733050000, "end": 1733050060.25,
               "policy": {"originator": "esnet", "level": "tlp:amber", "scopes": ["esnet", "x"]},
               "meta": {"src_ip": "198.51.100.7", "dst_ip": "2001:db8::7", "src_port": 1024,
                        "dst_port": 443, "src_asn": 64496, "dst_asn": 64511, "protocol": "tcp",
                        "sensor_id": "flow-1", "router": {"ip": "192.0.2.1", "name": "rtr0"},
                        "bgp": {"as_path": [64496, 64500], "comms": ["64496:100"],
                                "as_hop0_padding": 2, "as_hop1_padding": "3"},
                        "mpls": {"labels": [16001], "exp0": 5},
                        "src_location": {"latitude": 37.87, "longitude": -122.27},
                        "device_info": {"location": {"lat": "38.5", "lon": 1}},
                        "app_port": 443, "src_as_name": "ESNET"},
               "values": {"num_bits": 8000, "num_packets": 10, "duration": 60.0}})",
           R"({"start": "2024-12-01T10:00:00.5Z", "end": 1733050060123,
               "meta": {"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "src_port": 1, "dst_port": 2,
                        "src_asn": 3, "dst_asn": 4, "ip_version": 4, "dscp": null}})"}) {
    auto document = parser.parse(std::string(message));
    ASSERT_FALSE(document.error());
    auto status = (*processor)->build(document.value_unsafe(), Message{}, context, rows);
    ASSERT_TRUE(status.ok()) << status;
  }
  ASSERT_EQ(rows.size(), 2u);
  std::vector<Row> fragments;
  for (const auto& row : rows) fragments.push_back(as_fragments(row));
  EXPECT_EQ(encode(flow_edge_schema(), profile(), {&rows[0], &rows[1]}),
            encode(flow_edge_schema(), profile(), {&fragments[0], &fragments[1]}));
  std::string json = rows[0].json();
  EXPECT_NE(json.find(R"("bgp_as_path":[64496,64500])"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("bgp_as_path_padding":[2,3])"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("mpls_exp":[5])"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("policy_scopes":["esnet","x"])"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("src_as_name":"ESNET")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("duration":60.0)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("ifin_ref":null)"), std::string::npos) << json;
  std::string second = rows[1].json();
  EXPECT_NE(second.find(R"("src_as_name":"unknown")"), std::string::npos) << second;
  EXPECT_NE(second.find(R"("app_port":0)"), std::string::npos) << second;
  EXPECT_NE(second.find(R"("dscp":null)"), std::string::npos) << second;
  EXPECT_NE(second.find(R"("bgp_as_path":[])"), std::string::npos) << second;
}

INSTANTIATE_TEST_SUITE_P(Servers, TypedRows, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Modern" : "ClickHouse18"; });

// Exact bytes of the types whose layout depends on the server's version.
TEST(TypedRowsBytes, FallbackTypes) {
  auto one = [](const std::string& declared, const std::string& input,
                const ServerProfile& profile) {
    TableSchema schema;
    schema.name = "t";
    schema.columns = {{"c", declared, "", ""}};
    simdjson::dom::parser parser;
    Row row;
    Value value;
    auto status = convert_value(parser.parse(input).value_unsafe(), ColumnType::parse(declared),
                                profile, row, value);
    EXPECT_TRUE(status.ok()) << status;
    row.add(schema.columns[0].name, value);
    return encode(schema, profile, {&row});
  };
  // DateTime64(3) on a modern server; DateTime (seconds) on 18.16.
  EXPECT_EQ(one("DateTime64(3, 'UTC')", "1733047200.123", kModern), little<int64_t>(1733047200123));
  EXPECT_EQ(one("DateTime64(3, 'UTC')", "1733047200.123", kOld), little<uint32_t>(1733047200));
  EXPECT_EQ(one("DateTime64(3, 'UTC')", R"("2024-12-01T10:00:00.999Z")", kOld),
            little<uint32_t>(1733047200));
  // LowCardinality is the plain type on the wire, and gone on 18.16 alike.
  EXPECT_EQ(one("LowCardinality(Nullable(String))", R"("ab")", kModern), bytes({0, 2, 'a', 'b'}));
  EXPECT_EQ(one("LowCardinality(Nullable(String))", "null", kOld), bytes({1}));
  EXPECT_EQ(one("Array(LowCardinality(Nullable(String)))", R"(["a",null])", kOld),
            bytes({2, 0, 1, 'a', 1}));
  EXPECT_EQ(one("Array(LowCardinality(String))", R"("a")", kModern), bytes({1, 1, 'a'}));
  EXPECT_EQ(one("Array(Nullable(UInt32))", "[1,null,258]", kOld),
            bytes({3, 0, 1, 0, 0, 0, 1, 0, 2, 1, 0, 0}));
  // IPv6: 16 bytes on a modern server (v4 text mapped), a String on 18.16.
  auto v6 = one("Nullable(IPv6)", R"("198.51.100.7")", kModern);
  EXPECT_EQ(v6.substr(0, 1), bytes({0}));
  EXPECT_EQ(v6.substr(11), bytes({0xff, 0xff, 198, 51, 100, 7}));
  EXPECT_EQ(one("Nullable(IPv6)", R"("198.51.100.7")", kOld), bytes({0, 12}) + "198.51.100.7");
  // Decimal(9, 6) scaled on a modern server, Float64 on 18.16.
  EXPECT_EQ(one("Nullable(Decimal(9, 6))", "37.87", kModern),
            bytes({0}) + little<int32_t>(37870000));
  EXPECT_EQ(one("Nullable(Decimal(9, 6))", "37.87", kOld), bytes({0}) + little<double>(37.87));
  EXPECT_EQ(one("Nullable(UInt64)", R"("17")", kOld), bytes({0}) + little<uint64_t>(17));
  EXPECT_EQ(one("UInt16", "2.5", kOld), little<uint16_t>(3));
}

TEST(TypedRowsBytes, NullIntoNonNullableAndBadValuesNameTheColumn) {
  TableSchema schema;
  schema.name = "t";
  schema.columns = {{"n", "UInt32", "", ""}, {"s", "String", "", ""}};
  Row row;
  row.add(schema.columns[0].name, Value::null());  // JSONEachRow's default: 0
  row.add_string(schema.columns[1].name, "x");
  EXPECT_EQ(encode(schema, kOld, {&row}), little<uint32_t>(0) + bytes({1, 'x'}));
  Row bad;
  bad.add_string(schema.columns[0].name, "abc");
  auto encoder = RowBinaryEncoder::create(schema, kOld);
  ASSERT_TRUE(encoder.ok());
  std::string out;
  auto status = encoder->encode({&bad}, out).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("column n"), std::string::npos) << status;
}

TEST(TypedRowsJson, RendersAsJsonEachRowAndRedisText) {
  Row row;
  row.add_string("s", "a\"b");
  row.add("i", Value::signed_integer(-3));
  row.add("u", Value::unsigned_integer(18446744073709551615ULL));
  row.add("d", Value::number(0.5));
  row.add("t", Value::datetime(1733047200.123, true));
  row.add("t0", Value::datetime(1733047200.123, false));
  size_t begin = row.begin_array();
  row.push_item(row.string("x"));
  row.push_item(Value::null());
  row.add("a", row.end_array(begin));
  row.add_json("f", R"({"k":1})");
  row.add("n", Value::null());
  EXPECT_EQ(row.json(),
            R"({"s":"a\"b","i":-3,"u":18446744073709551615,"d":0.5,)"
            R"("t":"2024-12-01 10:00:00.123","t0":"2024-12-01 10:00:00","a":["x",null],)"
            R"("f":{"k":1},"n":null})");
  EXPECT_EQ(row.plain_text(row.cells[0].value), "a\"b");
  EXPECT_EQ(row.plain_text(row.cells[6].value), R"(["x",null])");
  Row fragment;
  fragment.add_json("q", R"("quoted")");
  EXPECT_EQ(fragment.plain_text(fragment.cells[0].value), "quoted");
}

}  // namespace
}  // namespace telekern::etl
