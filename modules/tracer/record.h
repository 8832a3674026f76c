// One record read by a source, viewed without copying; the tracer copies
// only the records that match.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace telekern::tracer {

struct RecordView {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;  // 0 when the source gives none
  std::string_view key;
  std::string_view value;
  std::vector<std::pair<std::string_view, std::string_view>> headers;
};

}  // namespace telekern::tracer
