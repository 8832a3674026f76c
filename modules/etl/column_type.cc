#include "column_type.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "telekern/strings.h"

namespace telekern::etl {
namespace {

bool strip(std::string& text, std::string_view wrapper) {
  if (text.rfind(wrapper, 0) == 0 && text.size() > wrapper.size() + 1 &&
      text[wrapper.size()] == '(' && text.back() == ')') {
    text = text.substr(wrapper.size() + 1, text.size() - wrapper.size() - 2);
    return true;
  }
  return false;
}

std::array<int, 2> parse_version(const std::string& version) {
  std::array<int, 2> out{0, 0};
  size_t dot = version.find('.');
  if (dot == std::string::npos) return {1000, 0};
  std::from_chars(version.data(), version.data() + dot, out[0]);
  std::from_chars(version.data() + dot + 1, version.data() + version.size(), out[1]);
  return out;
}

bool at_least(const std::array<int, 2>& version, int major, int minor) {
  return version[0] > major || (version[0] == major && version[1] >= minor);
}

}  // namespace

ServerProfile ServerProfile::for_version(const std::string& version) {
  ServerProfile profile;
  profile.version = version;
  auto v = parse_version(version);
  if (v[0] == 0) return profile;
  profile.datetime64 = at_least(v, 20, 1);
  profile.ip_types = at_least(v, 19, 3);
  profile.low_cardinality = at_least(v, 19, 1);
  profile.decimal = at_least(v, 19, 1);
  profile.bool_type = at_least(v, 21, 12);
  profile.codecs = at_least(v, 19, 10);
  profile.ttl = at_least(v, 19, 6);
  profile.now64 = at_least(v, 20, 1);
  return profile;
}

ColumnType ColumnType::parse(const std::string& declared) {
  ColumnType type;
  type.declared = declared;
  std::string inner = declared;
  strip(inner, "LowCardinality");
  if (strip(inner, "Array")) {
    type.array = true;
    strip(inner, "LowCardinality");
    type.element_nullable = strip(inner, "Nullable");
    strip(inner, "LowCardinality");
  } else {
    type.nullable = strip(inner, "Nullable");
    strip(inner, "LowCardinality");
  }
  auto starts = [&](std::string_view prefix) { return inner.rfind(prefix, 0) == 0; };
  if (starts("UInt")) {
    type.base = BaseType::kUInt;
    type.bits = std::atoi(inner.c_str() + 4);
  } else if (starts("Int")) {
    type.base = BaseType::kInt;
    type.bits = std::atoi(inner.c_str() + 3);
  } else if (starts("Float")) {
    type.base = BaseType::kFloat;
  } else if (starts("Decimal")) {
    type.base = BaseType::kDecimal;
  } else if (starts("DateTime") || starts("Date")) {
    type.base = BaseType::kDateTime;
    type.subsecond = starts("DateTime64");
  } else if (inner == "IPv4") {
    type.base = BaseType::kIPv4;
  } else if (inner == "IPv6") {
    type.base = BaseType::kIPv6;
  } else if (inner == "Bool") {
    type.base = BaseType::kBool;
  }
  return type;
}

std::string ColumnType::render(const ServerProfile& profile) const {
  std::string text = declared;
  if (!profile.low_cardinality) {
    // LowCardinality(X) -> X, wherever it appears.
    for (size_t at; (at = text.find("LowCardinality(")) != std::string::npos;) {
      int depth = 0;
      size_t end = at + 14;
      for (; end < text.size(); ++end) {
        if (text[end] == '(') ++depth;
        if (text[end] == ')' && --depth == 0) break;
      }
      text = text.substr(0, at) + text.substr(at + 15, end - at - 15) + text.substr(end + 1);
    }
  }
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size())
      text.replace(at, from.size(), to);
  };
  if (!profile.datetime64) {
    replace_all("DateTime64(3, 'UTC')", "DateTime('UTC')");
    replace_all("DateTime64(3)", "DateTime");
  }
  if (!profile.ip_types) {
    replace_all("IPv4", "String");
    replace_all("IPv6", "String");
  }
  if (!profile.decimal) {
    replace_all("Decimal(8, 6)", "Float64");
    replace_all("Decimal(9, 6)", "Float64");
  }
  if (!profile.bool_type) replace_all("Bool", "UInt8");
  return text;
}

const ColumnDef* TableSchema::column(std::string_view name) const {
  for (const auto& column : columns)
    if (column.name == name) return &column;
  return nullptr;
}

std::string TableSchema::ddl(const std::string& database, const ServerProfile& profile) const {
  std::string out = str_cat("CREATE TABLE IF NOT EXISTS `", database, "`.`", name, "` (\n");
  for (size_t i = 0; i < columns.size(); ++i) {
    const auto& column = columns[i];
    str_append(out, "  `", column.name, "` ", ColumnType::parse(column.type).render(profile));
    if (!column.default_expr.empty()) {
      std::string expr = column.default_expr;
      if (!profile.now64 && expr == "now64()") expr = "now()";
      str_append(out, " DEFAULT ", expr);
    }
    if (!column.codec.empty() && profile.codecs) str_append(out, " CODEC(", column.codec, ")");
    out += i + 1 < columns.size() ? ",\n" : "\n";
  }
  str_append(out, ")\nENGINE = ", engine, "\n");
  if (!partition_by.empty()) str_append(out, "PARTITION BY ", partition_by, "\n");
  str_append(out, "ORDER BY ", order_by.empty() ? "tuple()" : order_by, "\n");
  if (!ttl.empty() && profile.ttl) str_append(out, "TTL ", ttl, "\n");
  out += "SETTINGS index_granularity = 8192";
  return out;
}

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string format_datetime(double epoch_seconds, bool millis) {
  auto whole = static_cast<time_t>(std::floor(epoch_seconds));
  int ms = static_cast<int>(std::llround((epoch_seconds - static_cast<double>(whole)) * 1000));
  if (ms >= 1000) {
    ++whole;
    ms -= 1000;
  }
  std::tm tm{};
  gmtime_r(&whole, &tm);
  char buffer[40];
  if (millis) {
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  } else {
    std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &tm);
  }
  return buffer;
}

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

absl::Status mismatch(const element& value, const ColumnType& type) {
  return absl::InvalidArgumentError(
      str_cat("value ", simdjson::minify(value).substr(0, 80), " is not a ", type.declared));
}

// Parses an ISO-8601 / "YYYY-MM-DD hh:mm:ss[.fff][Z]" string to epoch seconds.
bool parse_time_text(std::string_view text, double& seconds) {
  int year, month, day, hour = 0, minute = 0;
  double second = 0;
  std::string copy(text);
  if (std::sscanf(copy.c_str(), "%d-%d-%d%*c%d:%d:%lf", &year, &month, &day, &hour, &minute,
                  &second) < 3) {
    double number;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc() || end != text.data() + text.size()) return false;
    seconds = number > 1e11 ? number / 1000 : number;
    return true;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  seconds = static_cast<double>(timegm(&tm)) + second;
  return true;
}

absl::Status convert_scalar(const element& value, const ColumnType& type,
                            const ServerProfile& profile, bool nullable, Row& row, Value& out) {
  element_type kind = value.type();
  if (kind == element_type::NULL_VALUE) {
    if (nullable) {
      out = Value::null();
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(str_cat("null for non-nullable ", type.declared));
  }
  switch (type.base) {
    case BaseType::kString:
    case BaseType::kIPv4:
    case BaseType::kIPv6: {
      if (kind == element_type::STRING) {
        std::string_view text = value.get_string().value_unsafe();
        if (type.base == BaseType::kIPv6 && profile.ip_types && text.find('.') != text.npos &&
            text.find(':') == text.npos) {
          out = row.string("::ffff:");
          row.text += text;
          out.size = static_cast<uint32_t>(row.text.size() - out.offset);
        } else {
          out = row.string(text);
        }
      } else if (type.base == BaseType::kString) {
        out = row.string(simdjson::minify(value));
      } else {
        return mismatch(value, type);
      }
      return absl::OkStatus();
    }
    case BaseType::kUInt:
    case BaseType::kInt: {
      if (kind == element_type::UINT64) {
        out = Value::unsigned_integer(value.get_uint64().value_unsafe());
        return absl::OkStatus();
      }
      if (kind == element_type::INT64) {
        int64_t number = value.get_int64().value_unsafe();
        if (type.base == BaseType::kUInt && number < 0) return mismatch(value, type);
        out = Value::signed_integer(number);
        return absl::OkStatus();
      }
      if (kind == element_type::DOUBLE) {
        double number = value.get_double().value_unsafe();
        if (type.base == BaseType::kUInt && number < 0) return mismatch(value, type);
        out = Value::signed_integer(std::llround(number));
        return absl::OkStatus();
      }
      if (kind == element_type::BOOL) {
        out = Value::signed_integer(value.get_bool().value_unsafe() ? 1 : 0);
        return absl::OkStatus();
      }
      if (kind == element_type::STRING) {
        std::string_view text = value.get_string().value_unsafe();
        long long number;
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (error != std::errc() || end != text.data() + text.size() ||
            (type.base == BaseType::kUInt && number < 0))
          return mismatch(value, type);
        out = Value::signed_integer(number);
        return absl::OkStatus();
      }
      return mismatch(value, type);
    }
    case BaseType::kFloat:
    case BaseType::kDecimal: {
      if (kind == element_type::UINT64) {
        out = Value::unsigned_integer(value.get_uint64().value_unsafe());
        return absl::OkStatus();
      }
      if (kind == element_type::INT64) {
        out = Value::signed_integer(value.get_int64().value_unsafe());
        return absl::OkStatus();
      }
      if (kind == element_type::DOUBLE) {
        out = Value::number(value.get_double().value_unsafe());
        return absl::OkStatus();
      }
      if (kind == element_type::STRING) {
        std::string_view text = value.get_string().value_unsafe();
        double number;
        auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(number))
          return mismatch(value, type);
        out = Value::number(number);
        return absl::OkStatus();
      }
      return mismatch(value, type);
    }
    case BaseType::kDateTime: {
      double seconds = 0;
      if (kind == element_type::UINT64 || kind == element_type::INT64 ||
          kind == element_type::DOUBLE) {
        seconds = value.get_double().value_unsafe();
        if (kind != element_type::DOUBLE) seconds = static_cast<double>(value.get_int64().value());
        if (seconds > 1e11) seconds /= 1000;  // epoch milliseconds
      } else if (kind != element_type::STRING ||
                 !parse_time_text(value.get_string().value_unsafe(), seconds)) {
        return mismatch(value, type);
      }
      out = Value::datetime(seconds, profile.datetime64 && type.subsecond);
      return absl::OkStatus();
    }
    case BaseType::kBool: {
      bool flag;
      if (kind == element_type::BOOL) {
        flag = value.get_bool().value_unsafe();
      } else if (kind == element_type::STRING) {
        std::string_view text = value.get_string().value_unsafe();
        if (text == "true" || text == "1")
          flag = true;
        else if (text == "false" || text == "0")
          flag = false;
        else
          return mismatch(value, type);
      } else if (kind == element_type::UINT64 || kind == element_type::INT64) {
        flag = value.get_int64().value_unsafe() != 0;
      } else {
        return mismatch(value, type);
      }
      out = profile.bool_type ? Value::boolean(flag) : Value::signed_integer(flag ? 1 : 0);
      return absl::OkStatus();
    }
  }
  return mismatch(value, type);
}

}  // namespace

absl::Status convert_value(const element& value, const ColumnType& type,
                           const ServerProfile& profile, Row& row, Value& out) {
  if (!type.array) return convert_scalar(value, type, profile, type.nullable, row, out);
  size_t begin = row.begin_array();
  absl::Status status;
  if (value.type() == element_type::ARRAY) {
    for (element item : array_of(value.get_array())) {
      Value converted;
      status = convert_scalar(item, type, profile, type.element_nullable, row, converted);
      if (!status.ok()) break;
      row.push_item(converted);
    }
  } else if (value.type() != element_type::NULL_VALUE) {
    // A scalar where a list is expected: a list of one.
    Value converted;
    status = convert_scalar(value, type, profile, type.element_nullable, row, converted);
    if (status.ok()) row.push_item(converted);
  }
  out = row.end_array(begin);
  return status;
}

absl::Status encode_value(const element& value, const ColumnType& type,
                          const ServerProfile& profile, std::string& out) {
  Row row;
  Value converted;
  auto status = convert_value(value, type, profile, row, converted);
  if (status.ok()) row.append_json(converted, out);
  return status;
}

Value default_value(const ColumnType& type) {
  Value out;
  if (type.array) {
    out.kind = Value::Kind::kArray;  // no items: nothing in a row
    return out;
  }
  if (type.nullable) return out;
  switch (type.base) {
    case BaseType::kString:
    case BaseType::kIPv4:
    case BaseType::kIPv6:
      out.kind = Value::Kind::kString;  // empty: nothing in a row
      return out;
    case BaseType::kDateTime:
      return Value::datetime(0, false);
    default:
      return Value::signed_integer(0);
  }
}

}  // namespace telekern::etl
