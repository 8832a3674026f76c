#include "matcher.h"

#include <simdjson.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

namespace telekern::tracer {

DeviceMatcher::DeviceMatcher(std::string device_id, MatchScope scope, std::string field)
    : device_id_(std::move(device_id)), scope_(scope) {
  if (!field.empty()) {
    pointer_ = "/" + field;
    std::replace(pointer_.begin(), pointer_.end(), '.', '/');
  }
  auto searcher = std::make_shared<std::boyer_moore_horspool_searcher<std::string::const_iterator>>(
      device_id_.begin(), device_id_.end());
  search_ = [searcher, size = device_id_.size()](std::string_view haystack) {
    if (haystack.size() < size) return false;
    return std::search(haystack.begin(), haystack.end(), *searcher) != haystack.end();
  };
}

DeviceMatcher::~DeviceMatcher() = default;

bool DeviceMatcher::contains(std::string_view haystack) const {
  return !device_id_.empty() && search_(haystack);
}

bool DeviceMatcher::field_equals(std::string_view json) const {
  simdjson::padded_string padded(json);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document document;
  if (parser.iterate(padded).get(document)) return false;
  simdjson::ondemand::value value;
  if (document.at_pointer(pointer_).get(value)) return false;
  simdjson::ondemand::json_type type;
  if (value.type().get(type)) return false;
  if (type == simdjson::ondemand::json_type::string) {
    std::string_view text;
    if (value.get_string().get(text)) return false;
    return text == device_id_;
  }
  if (type == simdjson::ondemand::json_type::number) {
    std::string_view raw = value.raw_json_token();
    while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n')) raw.remove_suffix(1);
    return raw == device_id_;
  }
  return false;
}

bool DeviceMatcher::matches(const RecordView& record) const {
  if (!pointer_.empty()) {
    // The substring test is the cheap filter; the field decides.
    return contains(record.value) && field_equals(record.value);
  }
  switch (scope_) {
    case MatchScope::kKey:
      return contains(record.key);
    case MatchScope::kValue:
      return contains(record.value);
    case MatchScope::kHeaders:
      break;
    case MatchScope::kAny:
      if (contains(record.key) || contains(record.value)) return true;
      break;
  }
  for (const auto& [key, value] : record.headers) {
    if (contains(value) || contains(key)) return true;
  }
  return false;
}

std::string event_type_of(std::string_view value) {
  if (value.empty() || value.front() != '{') return {};
  auto json = nlohmann::json::parse(value, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return {};
  for (const char* name : {"event_type", "eventType", "type", "event"}) {
    auto it = json.find(name);
    if (it != json.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

}  // namespace telekern::tracer
