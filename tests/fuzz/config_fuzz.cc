// Config text as an operator may write it: YAML that parses is validated
// against a schema with every key type; validation never throws or crashes,
// and a config it accepts shows as YAML that reads back to the same values.
#include <yaml-cpp/yaml.h>

#include "telekern/config.h"
#include "tests/fuzz/fuzz_target.h"

namespace {
using namespace telekern;

// yaml-cpp does not promise to print control characters or invalid UTF-8 so
// that they read back the same; the round-trip property covers printable text.
bool printable(const std::string& text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

const ConfigSchema& schema() {
  static const ConfigSchema keys = {
      {"name", ConfigType::kString, "x", "a string"},
      {"token", ConfigType::kSecret, "", "a secret"},
      {"count", ConfigType::kInt, "3", "an int"},
      {"enabled", ConfigType::kBool, "false", "a bool"},
      {"ratio", ConfigType::kDouble, "0.5", "a double"},
      {"every", ConfigType::kDuration, "1s", "a duration"},
      {"hosts", ConfigType::kStringList, "", "a list"},
      {"extra", ConfigType::kNode, "", "any yaml"},
      {"nested.level", ConfigType::kString, "info", "a dotted key"},
  };
  return keys;
}
}  // namespace

std::vector<std::string> telekern_fuzz_seeds() {
  return {"name: a\ncount: 7\nenabled: true\nratio: 0.25\nevery: 250ms\nhosts: [a, b]\n",
          "nested:\n  level: debug\nextra: {x: [1, 2]}\n",
          "count: many\n",
          "unknown: 1\n",
          "every: -5m\n",
          "[1, 2]\n",
          "hosts: {a: b}\n"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  YAML::Node node;
  try {
    node = YAML::Load(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const YAML::Exception&) {
    return 0;  // not YAML: the loader reports it with its line
  }
  auto config = validate_config(schema(), node, {"fuzz.yaml", "", {}});
  bool all_printable = true;
  if (config.ok()) {
    for (const char* key : {"name", "token", "nested.level"}) {
      all_printable = all_printable && printable(config->get_string(key));
    }
    for (const auto& host : config->get_string_list("hosts")) {
      all_printable = all_printable && printable(host);
    }
    all_printable = all_printable && printable(YAML::Dump(config->get_node("extra")));
  }
  if (config.ok() && all_printable) {
    // Shown and read back, every value is the same (the text may differ in
    // YAML style once: an empty default list prints in block style).
    auto again = validate_config(schema(), YAML::Load(config->to_yaml(false)), {"again", "", {}});
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->get_string("name") == config->get_string("name"));
    FUZZ_CHECK(again->get_string("token") == config->get_string("token"));
    FUZZ_CHECK(again->get_int("count") == config->get_int("count"));
    FUZZ_CHECK(again->get_bool("enabled") == config->get_bool("enabled"));
    FUZZ_CHECK(again->get_double("ratio") == config->get_double("ratio"));
    FUZZ_CHECK(again->get_duration("every") == config->get_duration("every"));
    FUZZ_CHECK(again->get_string_list("hosts") == config->get_string_list("hosts"));
    FUZZ_CHECK(again->get_string("nested.level") == config->get_string("nested.level"));
    auto third = validate_config(schema(), YAML::Load(again->to_yaml(false)), {"third", "", {}});
    FUZZ_CHECK(third.ok());
    FUZZ_CHECK(third->to_yaml(false) == again->to_yaml(false));
  }
  return 0;
}
