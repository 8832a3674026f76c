#include "kernel/http/openapi.h"

#include <nlohmann/json.hpp>
#include <set>

#include "kernel/http/json_errors.h"
#include "telekern/options/v1/options.pb.h"
#include "telekern/strings.h"

namespace telekern::kernel::http {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using nlohmann::json;

template <typename D>
std::string comment_of(const D& descriptor) {
  google::protobuf::SourceLocation location;
  if (!descriptor.GetSourceLocation(&location)) return "";
  return std::string(trim(location.leading_comments + location.trailing_comments));
}

std::string ref(const std::string& full_name) { return "#/components/schemas/" + full_name; }

class SchemaBuilder {
 public:
  explicit SchemaBuilder(json& schemas) : schemas_(schemas) {}

  json field_type(const FieldDescriptor& field) {
    json type;
    switch (field.cpp_type()) {
      case FieldDescriptor::CPPTYPE_BOOL:
        type = {{"type", "boolean"}};
        break;
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_UINT32:
        type = {{"type", "integer"}, {"format", "int32"}};
        break;
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT64:
        // The protobuf JSON mapping writes 64-bit integers as strings.
        type = {{"type", "string"}, {"format", "int64"}};
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
      case FieldDescriptor::CPPTYPE_DOUBLE:
        type = {{"type", "number"}};
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        type = field.type() == FieldDescriptor::TYPE_BYTES
                   ? json{{"type", "string"}, {"format", "byte"}}
                   : json{{"type", "string"}};
        break;
      case FieldDescriptor::CPPTYPE_ENUM:
        type = {{"$ref", ref(field.enum_type()->full_name())}};
        add_enum(*field.enum_type());
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        type = message_type(*field.message_type());
        break;
    }
    if (field.is_map()) {
      return {{"type", "object"},
              {"additionalProperties", field_type(*field.message_type()->map_value())}};
    }
    if (field.is_repeated()) return {{"type", "array"}, {"items", type}};
    return type;
  }

  json message_type(const Descriptor& type) {
    const std::string& name = type.full_name();
    if (name == "google.protobuf.Timestamp") return {{"type", "string"}, {"format", "date-time"}};
    if (name == "google.protobuf.Duration") {
      return {{"type", "string"}, {"description", "seconds with an s suffix, e.g. \"1.5s\""}};
    }
    if (name == "google.protobuf.Empty") return {{"type", "object"}};
    if (type.file()->package() == "google.protobuf") return json::object();
    add_message(type);
    return {{"$ref", ref(name)}};
  }

  void add_message(const Descriptor& type) {
    if (schemas_.contains(type.full_name())) return;
    json& schema = schemas_[type.full_name()];
    schema = {{"type", "object"}, {"properties", json::object()}};
    if (auto text = comment_of(type); !text.empty()) schema["description"] = text;
    for (int i = 0; i < type.field_count(); ++i) {
      const auto* field = type.field(i);
      json property = field_type(*field);
      if (auto text = comment_of(*field); !text.empty()) {
        property = property.contains("$ref") ? json{{"allOf", {property}}} : property;
        property["description"] = text;
      }
      schemas_[type.full_name()]["properties"][field->json_name()] = property;
    }
  }

  void add_enum(const EnumDescriptor& type) {
    if (schemas_.contains(type.full_name())) return;
    json values = json::array();
    for (int i = 0; i < type.value_count(); ++i) values.push_back(type.value(i)->name());
    schemas_[type.full_name()] = {{"type", "string"}, {"enum", values}};
  }

 private:
  json& schemas_;
};

std::string role_text(options::v1::Role role) {
  switch (role) {
    case options::v1::ROLE_PUBLIC:
      return "public";
    case options::v1::ROLE_VIEWER:
      return "viewer";
    case options::v1::ROLE_OPERATOR:
      return "operator";
    default:
      return "admin";
  }
}

json error_responses() {
  json responses;
  for (auto code : {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::UNAUTHENTICATED,
                    grpc::StatusCode::PERMISSION_DENIED, grpc::StatusCode::NOT_FOUND,
                    grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::UNAVAILABLE}) {
    responses[std::to_string(http_status_for(code))] = {
        {"description", std::string(status_code_name(code))},
        {"content",
         {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
  }
  responses["default"] = {
      {"description", "any other gRPC status, mapped as in the README"},
      {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
  return responses;
}

json operation(const google::protobuf::MethodDescriptor& method, SchemaBuilder& schemas,
               const Route* route) {
  auto role = method.options().HasExtension(options::v1::min_role)
                  ? method.options().GetExtension(options::v1::min_role)
                  : options::v1::ROLE_ADMIN;
  json op;
  op["operationId"] = route ? str_cat(method.service()->name(), "_", method.name(), "_rest")
                            : str_cat(method.service()->name(), "_", method.name());
  op["tags"] = {method.service()->full_name()};
  std::string summary = comment_of(method);
  op["summary"] = summary.empty() ? method.name() : summary;
  op["x-min-role"] = role_text(role);
  op["description"] =
      str_cat("gRPC method /", method.service()->full_name(), "/", method.name(), "; needs role ",
              role_text(role), ".",
              method.server_streaming() ? " Server stream: Server-Sent Events with Accept: "
                                          "text/event-stream, else NDJSON."
                                        : "",
              method.client_streaming() ? " Client stream: NDJSON body." : "");
  if (role != options::v1::ROLE_PUBLIC) {
    op["security"] = {{{"apiKey", json::array()}}, {{"bearer", json::array()}}};
  } else {
    op["security"] = json::array({json::object()});
  }
  json output = schemas.message_type(*method.output_type());
  json success_content = method.server_streaming()
                             ? json{{"text/event-stream", {{"schema", {{"type", "string"}}}}},
                                    {"application/x-ndjson", {{"schema", output}}}}
                             : json{{"application/json", {{"schema", output}}}};
  if (route && route->response_body != nullptr) {
    success_content = json{
        {route->response_content_type, {{"schema", {{"type", "string"}, {"format", "binary"}}}}}};
  }
  op["responses"] = error_responses();
  op["responses"]["200"] = {{"description", "OK"}, {"content", success_content}};

  json input = schemas.message_type(*method.input_type());
  if (!route) {
    op["requestBody"] = {{"required", false},
                         {"content",
                          {{method.client_streaming() ? "application/x-ndjson" : "application/json",
                            {{"schema", input}}}}}};
    return op;
  }
  json parameters = json::array();
  std::set<std::string> bound;
  for (const auto& segment : route->segments) {
    if (!segment.binding) continue;
    bound.insert(segment.text);
    parameters.push_back({{"name", segment.text},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
  }
  if (route->body == "*") {
    op["requestBody"] = {{"content", {{"application/json", {{"schema", input}}}}}};
  } else if (!route->body.empty()) {
    bound.insert(route->body);
    const auto* field = method.input_type()->FindFieldByName(route->body);
    json schema = field ? schemas.field_type(*field) : json::object();
    op["requestBody"] = {{"description", str_cat("the request's `", route->body, "` field")},
                         {"content", {{"*/*", {{"schema", schema}}}}}};
  }
  if (route->body != "*") {
    const auto& type = *method.input_type();
    for (int i = 0; i < type.field_count(); ++i) {
      const auto* field = type.field(i);
      if (bound.contains(field->name())) continue;
      if (field->type() == FieldDescriptor::TYPE_MESSAGE &&
          field->message_type()->file()->package() != "google.protobuf") {
        continue;
      }
      json parameter{
          {"name", field->name()}, {"in", "query"}, {"schema", schemas.field_type(*field)}};
      if (auto text = comment_of(*field); !text.empty()) parameter["description"] = text;
      parameters.push_back(parameter);
    }
  }
  for (const auto& ignored : route->ignored_query_parameters) {
    parameters.push_back({{"name", ignored},
                          {"in", "query"},
                          {"description", "accepted for compatibility and ignored"},
                          {"schema", {{"type", "string"}}}});
  }
  if (!parameters.empty()) op["parameters"] = parameters;
  return op;
}

std::string openapi_path(const Route& route) {
  std::string path;
  for (const auto& segment : route.segments) {
    path += "/";
    path += segment.binding ? str_cat("{", segment.text, "}") : segment.text;
  }
  return path.empty() ? "/" : path;
}

}  // namespace

std::string openapi_json(const RouteTable& routes, const std::string& version) {
  json document;
  document["openapi"] = "3.0.3";
  document["info"] = {
      {"title", "telekernd HTTP gateway"},
      {"version", version},
      {"description",
       "Every RPC of every loaded service as POST /rpc/<package.Service>/<Method> with a "
       "protobuf-JSON body, plus the REST routes services declare with "
       "(telekern.options.v1.http). Errors are {code, status, message}."}};
  json schemas = json::object();
  schemas["Error"] = {{"type", "object"},
                      {"properties",
                       {{"code", {{"type", "integer"}, {"description", "gRPC status code"}}},
                        {"status", {{"type", "string"}, {"description", "gRPC status name"}}},
                        {"message", {{"type", "string"}}}}}};
  SchemaBuilder builder(schemas);
  json paths = json::object();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const auto& name : routes.services()) {
    if (name.starts_with("grpc.")) continue;  // health and reflection speak gRPC only
    const auto* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      paths[str_cat("/rpc/", name, "/", method->name())]["post"] =
          operation(*method, builder, nullptr);
    }
  }
  for (const auto& route : routes.routes()) {
    paths[openapi_path(route)][to_lower(route.verb)] = operation(*route.method, builder, &route);
  }
  document["paths"] = paths;
  document["components"] = {
      {"schemas", schemas},
      {"securitySchemes",
       {{"apiKey", {{"type", "apiKey"}, {"in", "header"}, {"name", "X-API-Key"}}},
        {"bearer",
         {{"type", "http"},
          {"scheme", "bearer"},
          {"description", "a JWT from Login (POST /api/auth/login) or an API key"}}}}}};
  return document.dump(2, ' ', false, json::error_handler_t::replace);
}

const std::string& api_docs_page() {
  static const std::string page = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>telekernd API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:70em;padding:1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em;border-bottom:1px solid #ccc}
details{border:1px solid #ddd;border-radius:4px;margin:.3em 0;padding:.3em .6em}
summary{cursor:pointer}code,pre,textarea{font:12px ui-monospace,monospace}
.verb{display:inline-block;width:4.5em;font-weight:bold}.role{color:#666;float:right}
textarea{width:100%;height:6em}pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em}
input{font:inherit}
</style></head><body>
<h1>telekernd HTTP gateway</h1>
<p>Generated from the loaded services (<a href="/api/openapi.json">/api/openapi.json</a>).
Credentials for "try": <input id="key" placeholder="API key or JWT" size="40"></p>
<div id="api">loading /api/openapi.json ...</div>
<script>
"use strict";
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const kid of kids) node.append(kid);
  return node;
};
async function tryIt(verb, path, body, out) {
  const key = document.getElementById("key").value.trim();
  const headers = {"Content-Type": "application/json"};
  if (key) headers[key.includes(".") ? "Authorization" : "X-API-Key"] =
      key.includes(".") ? "Bearer " + key : key;
  out.textContent = "...";
  try {
    const response = await fetch(path, {method: verb, headers,
        body: verb === "GET" || verb === "DELETE" ? undefined : body});
    out.textContent = response.status + " " + response.statusText + "\n" + await response.text();
  } catch (error) { out.textContent = String(error); }
}
fetch("/api/openapi.json").then(r => r.json()).then(doc => {
  const root = document.getElementById("api");
  root.textContent = "";
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths))
    for (const [verb, op] of Object.entries(ops))
      (byTag[op.tags[0]] ||= []).push([verb.toUpperCase(), path, op]);
  for (const [tag, ops] of Object.entries(byTag)) {
    root.append(el("h2", {}, tag));
    for (const [verb, path, op] of ops) {
      const body = el("textarea", {}, "{}");
      const out = el("pre");
      const target = el("input", {value: path, size: 60});
      const button = el("button", {}, "try");
      button.onclick = () => tryIt(verb, target.value, body.value, out);
      root.append(el("details", {},
          el("summary", {}, el("span", {class: "verb"}, verb), el("code", {}, path),
             el("span", {class: "role"}, "role: " + op["x-min-role"])),
          el("p", {}, op.summary || ""), el("p", {}, op.description || ""),
          el("p", {}, "path and query: ", target), body, button, out));
    }
  }
}).catch(error => { document.getElementById("api").textContent = String(error); });
</script></body></html>
)html";
  return page;
}

}  // namespace telekern::kernel::http
