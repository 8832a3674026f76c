#include "kernel/http/route_table.h"

#include "telekern/options/v1/options.pb.h"
#include "telekern/strings.h"

namespace telekern::kernel::http {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 1;  // after the leading '/'
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

bool valid_field_path(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<PathSegment>> parse_path_template(std::string_view path_template) {
  if (path_template.empty() || path_template.front() != '/') {
    return absl::InvalidArgumentError(
        str_cat("path template '", path_template, "' must start with '/'"));
  }
  std::vector<PathSegment> segments;
  for (std::string_view part : split_path(path_template)) {
    if (part.starts_with("{")) {
      if (!part.ends_with("}")) {
        return absl::InvalidArgumentError(
            str_cat("path template '", path_template, "': '", part, "' lacks its closing '}'"));
      }
      std::string_view field = part.substr(1, part.size() - 2);
      if (field.ends_with("=*")) field.remove_suffix(2);
      if (!valid_field_path(field)) {
        return absl::InvalidArgumentError(str_cat("path template '", path_template, "': '", part,
                                                  "' must be {field} or {field=*}"));
      }
      segments.push_back({std::string(field), true});
    } else {
      if (part.find_first_of("{}*") != std::string_view::npos) {
        return absl::InvalidArgumentError(str_cat("path template '", path_template, "': segment '",
                                                  part, "' mixes a literal with a binding"));
      }
      segments.push_back({std::string(part), false});
    }
  }
  return segments;
}

RouteTable RouteTable::build(const std::vector<std::string>& services,
                             std::vector<std::string>* problems) {
  RouteTable table;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const auto& name : services) {
    table.services_.insert(name);
    const auto* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      if (!method->options().HasExtension(options::v1::http)) continue;
      const auto& rule = method->options().GetExtension(options::v1::http);
      Route route;
      route.method = method;
      switch (rule.pattern_case()) {
        case options::v1::HttpRule::kGet:
          route.verb = "GET";
          route.path_template = rule.get();
          break;
        case options::v1::HttpRule::kPost:
          route.verb = "POST";
          route.path_template = rule.post();
          break;
        case options::v1::HttpRule::kPut:
          route.verb = "PUT";
          route.path_template = rule.put();
          break;
        case options::v1::HttpRule::kDelete:
          route.verb = "DELETE";
          route.path_template = rule.delete_();
          break;
        case options::v1::HttpRule::kPatch:
          route.verb = "PATCH";
          route.path_template = rule.patch();
          break;
        default:
          if (problems)
            problems->push_back(str_cat(method->full_name(), ": http rule without a verb"));
          continue;
      }
      auto segments = parse_path_template(route.path_template);
      if (!segments.ok()) {
        if (problems)
          problems->push_back(str_cat(method->full_name(), ": ", segments.status().message()));
        continue;
      }
      route.segments = std::move(*segments);
      route.body = rule.body();
      route.ignored_query_parameters.assign(rule.ignored_query_parameters().begin(),
                                            rule.ignored_query_parameters().end());
      route.request_defaults = rule.request_defaults();
      if (!rule.response_body().empty()) {
        using google::protobuf::FieldDescriptor;
        const auto* field = method->output_type()->FindFieldByName(rule.response_body());
        if (field == nullptr || field->is_repeated() ||
            (field->type() != FieldDescriptor::TYPE_STRING &&
             field->type() != FieldDescriptor::TYPE_BYTES) ||
            method->client_streaming()) {
          if (problems)
            problems->push_back(str_cat(
                method->full_name(), ": response_body \"", rule.response_body(),
                "\" must name a string or bytes field of ", method->output_type()->full_name(),
                " on a unary or server-streaming method"));
          continue;
        }
        route.response_body = field;
        route.response_content_type =
            !rule.response_content_type().empty()           ? rule.response_content_type()
            : field->type() == FieldDescriptor::TYPE_STRING ? "text/plain; charset=utf-8"
                                                            : "application/octet-stream";
        route.response_file_name = rule.response_file_name();
      }
      table.routes_.push_back(std::move(route));
    }
  }
  return table;
}

std::optional<RouteMatch> RouteTable::match(std::string_view verb, std::string_view path,
                                            std::vector<std::string>* other_verbs) const {
  if (path.empty() || path.front() != '/') return std::nullopt;
  auto parts = split_path(path);
  std::optional<RouteMatch> found;
  for (const auto& route : routes_) {
    if (route.segments.size() != parts.size()) continue;
    RouteMatch candidate{&route, {}};
    bool matches = true;
    for (size_t i = 0; i < parts.size() && matches; ++i) {
      const auto& segment = route.segments[i];
      if (segment.binding) {
        if (parts[i].empty()) matches = false;
        candidate.bindings.emplace_back(segment.text, std::string(parts[i]));
      } else if (segment.text != parts[i]) {
        matches = false;
      }
    }
    if (!matches) continue;
    if (route.verb != verb) {
      if (other_verbs) other_verbs->push_back(route.verb);
      continue;
    }
    // Literal segments win over bindings: keep the match with fewer bindings.
    if (!found || candidate.bindings.size() < found->bindings.size()) found = std::move(candidate);
  }
  return found;
}

}  // namespace telekern::kernel::http
