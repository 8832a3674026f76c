// HTTP request -> protobuf request and protobuf response -> JSON for the
// gateway: the JSON body, path bindings and query parameters fill the
// method's input message by the protobuf JSON mapping. Pure functions over
// descriptors (no I/O), so the fuzz target drives them directly.
#pragma once

#include <absl/status/statusor.h>
#include <google/protobuf/message.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace telekern::kernel::http {

struct HttpRequestParts {
  std::string_view body;
  std::string_view content_type;
  std::vector<std::pair<std::string, std::string>> path_bindings;  // field path -> value
  std::multimap<std::string, std::string> query;
};

struct BodyRule {
  std::string body = "*";  // "" no body, "*" the whole message, else a field name
  std::vector<std::string> ignored_query_parameters;
  std::string request_defaults;  // JSON object of fields the body and query may override
};

// A new message of `type` (from the generated factory) filled from `parts`.
// INVALID_ARGUMENT names the field or parameter and what was expected.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> transcode_request(
    const google::protobuf::Descriptor& type, const HttpRequestParts& parts, const BodyRule& rule);

// The query parameters of a request target ("/p?a=1&b=x%20y"), URL-decoded.
// (httplib's Request::params also holds form-encoded body fields, which curl
// -d sends for any body.)
std::multimap<std::string, std::string> parse_query(std::string_view target);

// One message per non-empty line of an NDJSON body (client-streaming methods).
absl::StatusOr<std::vector<std::unique_ptr<google::protobuf::Message>>> transcode_ndjson(
    const google::protobuf::Descriptor& type, const HttpRequestParts& parts);

// The protobuf JSON mapping of `message` (lowerCamelCase names, defaults printed).
std::string message_to_json(const google::protobuf::Message& message);

}  // namespace telekern::kernel::http
