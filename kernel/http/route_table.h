// The gateway's REST routes: every (telekern.options.v1.http) rule of the
// services loaded now, built from the generated descriptor pool and rebuilt
// whenever the set of loaded services changes.
#pragma once

#include <absl/status/statusor.h>
#include <google/protobuf/descriptor.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace telekern::kernel::http {

struct PathSegment {
  std::string text;      // the literal, or the bound field path ("topic", "a.b")
  bool binding = false;  // "{field}" in the template
};

// "/v1/topics/{topic}" -> segments; errors name the template and the problem.
absl::StatusOr<std::vector<PathSegment>> parse_path_template(std::string_view path_template);

struct Route {
  std::string verb;  // GET, POST, PUT, DELETE or PATCH
  std::string path_template;
  std::vector<PathSegment> segments;
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::string body;  // "" none, "*" the whole request, else a field name
  std::vector<std::string> ignored_query_parameters;
  std::string request_defaults;  // JSON object, may be empty
  // A string/bytes response field sent as the raw HTTP body ("" = JSON).
  const google::protobuf::FieldDescriptor* response_body = nullptr;
  std::string response_content_type;
  std::string response_file_name;
};

struct RouteMatch {
  const Route* route = nullptr;
  std::vector<std::pair<std::string, std::string>> bindings;  // field path -> segment
};

class RouteTable {
 public:
  // Routes of `services` (full names) found in the generated pool; a rule
  // that cannot be used is skipped and described in `problems`.
  static RouteTable build(const std::vector<std::string>& services,
                          std::vector<std::string>* problems = nullptr);

  // The route for `verb` and `path`; nullopt when none. `other_verbs` gets the
  // verbs that would match the path (for 405).
  std::optional<RouteMatch> match(std::string_view verb, std::string_view path,
                                  std::vector<std::string>* other_verbs = nullptr) const;
  bool serves(const std::string& service) const { return services_.contains(service); }
  const std::set<std::string>& services() const { return services_; }
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::set<std::string> services_;
  std::vector<Route> routes_;
};

}  // namespace telekern::kernel::http
