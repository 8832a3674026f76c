// CSV lines as RFC 4180 writes them (fields separated by commas, a field in
// double quotes may hold commas and "" for a quote): splitting one line into
// fields and quoting a field for output. Shared by every module that reads or
// writes CSV (telemetry files, reject files, exports).
#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <string_view>
#include <vector>

namespace telekern::csv {

// The fields of one line (no trailing newline; a trailing '\r' is dropped).
// INVALID_ARGUMENT names the column of an unterminated quote or of text after
// a closing quote.
absl::StatusOr<std::vector<std::string>> split_line(std::string_view line);

// `field` as it goes into a line: quoted when it holds a comma, quote, CR or LF.
std::string quote(std::string_view field);
// Appends quote(field) to `line` without a temporary string (hot paths that
// build a line field by field).
void append_field(std::string& line, std::string_view field);

// The fields joined with commas, each quoted as needed.
std::string join_line(const std::vector<std::string>& fields);

}  // namespace telekern::csv
