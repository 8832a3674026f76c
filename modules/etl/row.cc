#include "row.h"

#include <simdjson.h>

#include <charconv>

#include "column_type.h"

namespace telekern::etl {

Value Row::string(std::string_view value) {
  Value out;
  out.kind = Value::Kind::kString;
  out.offset = text.size();
  out.size = static_cast<uint32_t>(value.size());
  text.append(value.data(), value.size());
  return out;
}

Value Row::json_fragment(std::string_view fragment) {
  if (fragment == "null") return Value::null();
  if (fragment == "[]") return end_array(items.size());
  Value out = string(fragment);
  out.kind = Value::Kind::kJson;
  return out;
}

Value Row::end_array(size_t begin) const {
  Value out;
  out.kind = Value::Kind::kArray;
  out.offset = begin;
  out.size = static_cast<uint32_t>(items.size() - begin);
  return out;
}

void Row::append_json(const Value& value, std::string& out) const {
  char buffer[32];
  switch (value.kind) {
    case Value::Kind::kNull:
      out += "null";
      return;
    case Value::Kind::kInt: {
      auto end = std::to_chars(buffer, buffer + sizeof buffer, value.integer).ptr;
      out.append(buffer, end);
      return;
    }
    case Value::Kind::kUInt: {
      auto end = std::to_chars(buffer, buffer + sizeof buffer, value.unsigned_value()).ptr;
      out.append(buffer, end);
      return;
    }
    case Value::Kind::kDouble: {
      // simdjson's own formatting: the text simdjson::minify gave the input.
      char* end = simdjson::internal::to_chars(buffer, nullptr, value.real);
      out.append(buffer, end);
      return;
    }
    case Value::Kind::kBool:
      out += value.integer ? "true" : "false";
      return;
    case Value::Kind::kString:
      append_json_string(out, text_of(value));
      return;
    case Value::Kind::kDateTime:
      append_json_string(out, format_datetime(value.real, value.millis));
      return;
    case Value::Kind::kArray: {
      out += '[';
      const Value* item = items_of(value);
      for (uint32_t i = 0; i < value.size; ++i) {
        if (i > 0) out += ',';
        append_json(item[i], out);
      }
      out += ']';
      return;
    }
    case Value::Kind::kJson:
      out += text_of(value);
      return;
  }
}

std::string Row::json(const Value& value) const {
  std::string out;
  append_json(value, out);
  return out;
}

std::string Row::plain_text(const Value& value) const {
  if (value.kind == Value::Kind::kString) return std::string(text_of(value));
  if (value.kind == Value::Kind::kDateTime) return format_datetime(value.real, value.millis);
  if (value.kind == Value::Kind::kJson && value.size > 0 && text_of(value).front() == '"') {
    simdjson::dom::parser parser;
    auto parsed = parser.parse(std::string(text_of(value)));
    if (!parsed.error() && parsed.value_unsafe().is_string())
      return std::string(parsed.value_unsafe().get_string().value_unsafe());
  }
  return json(value);
}

std::string Row::json() const {
  std::string out;
  append_json(out);
  return out;
}

void Row::append_json(std::string& out) const {
  out += '{';
  bool first = true;
  for (const auto& cell : cells) {
    if (!first) out += ',';
    first = false;
    out += '"';
    out += cell.name;
    out += "\":";
    append_json(cell.value, out);
  }
  out += '}';
}

}  // namespace telekern::etl
