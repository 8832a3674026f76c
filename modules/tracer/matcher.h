// Decides whether a record belongs to the device: a substring search over
// key, value and headers (Boyer-Moore-Horspool, the pattern prepared once),
// optionally confirmed by a JSON field that must equal the id exactly, so
// ids sharing a prefix (abc1 vs abc12) are not false positives.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "record.h"

namespace telekern::tracer {

enum class MatchScope { kAny, kKey, kValue, kHeaders };

class DeviceMatcher {
 public:
  // `field`: dotted JSON path (device.id) checked in the value; empty = substring only.
  DeviceMatcher(std::string device_id, MatchScope scope, std::string field);
  ~DeviceMatcher();
  DeviceMatcher(const DeviceMatcher&) = delete;
  DeviceMatcher& operator=(const DeviceMatcher&) = delete;

  bool matches(const RecordView& record) const;
  bool contains(std::string_view haystack) const;
  // True when `json` has the field and it equals the device id (string or number).
  bool field_equals(std::string_view json) const;

 private:
  std::string device_id_;
  MatchScope scope_;
  std::string pointer_;  // JSON pointer of the field, "/device/id"
  using Searcher = std::function<bool(std::string_view)>;
  Searcher search_;
};

// The value of a type-like field ("type", "event", "event_type", "eventType")
// when `value` is a JSON object; empty otherwise.
std::string event_type_of(std::string_view value);

}  // namespace telekern::tracer
