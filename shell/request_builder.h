// Turns command-line words into request messages: positionals named by the
// cli option, `--field value` for every other field (`--a.b` for nested,
// repeated flags for repeated fields), plus the call options every command takes.
#pragma once

#include <absl/status/statusor.h>
#include <google/protobuf/message.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace telekern::shell {

struct CallRequest {
  // One message for unary and server-streaming calls; one per --json (or per
  // line of --json-file) for client- and bidi-streaming calls.
  std::vector<std::unique_ptr<google::protobuf::Message>> messages;
  std::optional<std::chrono::milliseconds> timeout;  // --timeout
};

// Flags every command takes besides its request fields.
inline const std::vector<std::string> kCallFlags = {"json", "json-file", "timeout"};

// `prototype` gives the request type; `positionals` are request field names.
absl::StatusOr<CallRequest> build_request(const google::protobuf::Message& prototype,
                                          const std::vector<std::string>& positionals,
                                          const std::vector<std::string>& args,
                                          bool client_streaming);

// The field a flag names: "interval_ms", "interval-ms" and "intervalMs" all
// name interval_ms; "a.b" walks into message fields. Returns the message that
// holds the field (created in `root` as needed) and the field.
absl::StatusOr<std::pair<google::protobuf::Message*, const google::protobuf::FieldDescriptor*>>
resolve_flag(google::protobuf::Message& root, const std::string& flag);

// Every flag a request type takes, as completion candidates: "name", "a.b", ...
std::vector<std::string> flag_names(const google::protobuf::Descriptor* type);

// The field a (possibly dotted) flag names, without creating anything.
const google::protobuf::FieldDescriptor* find_flag_field(const google::protobuf::Descriptor* type,
                                                         const std::string& flag);

}  // namespace telekern::shell
