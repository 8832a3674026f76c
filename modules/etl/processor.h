// A processor turns one input message into rows: match() says whether it
// takes the message, build() makes the rows (possibly none, possibly one
// per queue). Built-in processors carry MetrANOVA's message shapes;
// declarative ones are defined wholly in YAML (declarative_processor.h).
#pragma once

#include <absl/status/status.h>
#include <simdjson.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "column_type.h"
#include "row.h"

namespace telekern::etl {

// What to do with input fields no column takes, and with values that do
// not convert to their column's type.
enum class UnknownFields {
  kStrict,   // reject the message (dead-letter table, with the reason)
  kSkip,     // drop the field or value, count it
  kDefault,  // unconvertible values get the column's default; unknown fields are counted
};

// Metadata refs used to enrich rows (e.g. interface id -> meta_if ref).
class RefLookup {
 public:
  virtual ~RefLookup() = default;
  // The ref for `id` in `table`, or nullopt when unknown.
  virtual std::optional<std::string> lookup(std::string_view table, std::string_view id) = 0;
};

struct BuildContext {
  ServerProfile profile;
  RefLookup* refs = nullptr;  // may be null: refs stay null
  UnknownFields unknown = UnknownFields::kSkip;
  // Counts of dropped fields and defaulted values, by reason (metrics).
  std::function<void(std::string_view reason)> count;
};

struct ProcessorDescription {
  std::string name;
  std::string description;
  std::string matches;
  std::string table;
  Store store = Store::kClickHouse;
};

class Processor {
 public:
  virtual ~Processor() = default;
  virtual const ProcessorDescription& describe() const = 0;
  // The table it writes (ClickHouse processors), or nullptr (Redis).
  virtual const TableSchema* schema() const = 0;
  virtual bool match(const simdjson::dom::element& document) const = 0;
  // Computes ahead what build() would otherwise work out and cache on first
  // use, so that build() may afterwards run on several threads at once (the
  // pipeline's build lanes). Called once, before any build().
  virtual void prepare() {}
  // Appends the rows for `document`; an error rejects the message with its reason.
  virtual absl::Status build(const simdjson::dom::element& document, const Message& message,
                             BuildContext& context, std::vector<Row>& out) const = 0;
};

// Queue numbers a queue processor looks at (the seed's *_QUEUE_MIN/MAX).
struct QueueRange {
  int min = 1;
  int max = 16;
};

// Table names and settings of the built-in processors (the seed's keys).
struct BuiltinSettings {
  std::string flow_table = "flow_edge";
  std::string if_traffic_table = "if_traffic";
  std::string if_sap_queue_table = "if_sap_queue";
  std::string if_port_queue_table = "if_port_queue";
  std::string raw_kafka_table = "raw_kafka_messages";
  std::string if_metadata_table = "meta_if";
  std::string redis_if_metadata_table = "meta_if_cache";
  int64_t redis_if_metadata_expires = 86400;
  QueueRange port_queues;
  QueueRange sap_queues;
};

// The built-in processor named `name` ("InterfaceTrafficProcessor", or the
// seed's dotted class path ending in it); NOT_FOUND lists the known names.
absl::StatusOr<std::unique_ptr<Processor>> make_builtin_processor(const std::string& name,
                                                                  const BuiltinSettings& settings);
// Every built-in processor name.
std::vector<std::string> builtin_processor_names();

// Helpers shared by processors.
// The value at a JSON pointer ("/meta/id"), or nullopt when absent or null.
std::optional<simdjson::dom::element> find(const simdjson::dom::element& document,
                                           std::string_view pointer);
// Dotted path ("meta.id") -> JSON pointer ("/meta/id").
std::string to_pointer(std::string_view dotted);

}  // namespace telekern::etl
