// Where a trace reads records from. A source lists topics, plans each topic
// into scan units (a Kafka partition, or a whole topic for the broker and
// the command sources) with the offsets each partition starts and must stop
// at, and scans one unit at a time; the engine runs up to max_parallel units
// at once and does the matching and the bookkeeping.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

#include "record.h"

namespace telekern::tracer {

// One partition's plan and, once scanned, what the scan covered.
struct PartitionPlan {
  int32_t partition = -1;
  int64_t low = -1;    // first offset stored
  int64_t start = -1;  // first offset to scan (after the max_age seek); -1 = from the beginning
  int64_t stop = -1;   // high watermark (or last stable offset); -1 = unknown, stop on inactivity
};

struct ScanUnit {
  std::string topic;
  // Empty for a command source: partitions appear as records arrive.
  std::vector<PartitionPlan> partitions;
};

struct ScanLimits {
  int64_t since_ms = 0;  // oldest timestamp wanted; 0 = all history
  std::chrono::milliseconds inactivity{15000};
  bool skip_offsets = false;
  bool read_committed = false;
  uint64_t max_messages = 0;  // per topic; 0 = unlimited
};

// Receives the records of one unit; called from the scanning thread.
class UnitSink {
 public:
  virtual ~UnitSink() = default;
  // False: stop scanning this unit (max_messages reached or the trace stops).
  virtual bool record(const RecordView& record) = 0;
  // The partition reached its stop offset (`stop` when it was learnt while
  // scanning, e.g. the last stable offset from an end-of-partition event).
  virtual void reached_end(int32_t partition, int64_t stop) = 0;
  // The partition could not be read to its end.
  virtual void failed(int32_t partition, std::string error) = 0;
  // Next offset of a partition, for progress while nothing matches.
  virtual void position(int32_t partition, int64_t next_offset) = 0;
};

class TraceSource {
 public:
  virtual ~TraceSource() = default;
  virtual std::string name() const = 0;
  virtual absl::StatusOr<std::vector<std::string>> list_topics() = 0;
  virtual absl::StatusOr<ScanUnit> plan(const std::string& topic, const ScanLimits& limits) = 0;
  // Plans several topics; a source that can ask for all of them at once
  // (kafka: one metadata and one offsets request per broker) overrides it.
  virtual std::vector<absl::StatusOr<ScanUnit>> plan_topics(const std::vector<std::string>& topics,
                                                            const ScanLimits& limits) {
    std::vector<absl::StatusOr<ScanUnit>> plans;
    for (const auto& topic : topics) plans.push_back(plan(topic, limits));
    return plans;
  }
  // True when a unit may hold any subset of a topic's partitions (kafka);
  // otherwise a unit is always a whole topic.
  virtual bool per_partition() const { return false; }
  // Scans `unit` until each partition reaches its stop offset, the sink
  // refuses, the inactivity timeout passes or `stop` is requested. Errors of
  // single partitions go to the sink; an error return fails the whole unit.
  virtual absl::Status scan(const ScanUnit& unit, const ScanLimits& limits, UnitSink& sink,
                            std::stop_token stop) = 0;
  // Scans units of different topics together (per_partition sources: one
  // consumer reads them all); sinks[i] receives units[i]. An error return
  // fails every unit. By default one after another.
  virtual absl::Status scan_together(const std::vector<ScanUnit>& units, const ScanLimits& limits,
                                     const std::vector<UnitSink*>& sinks, std::stop_token stop) {
    for (size_t i = 0; i < units.size(); ++i) {
      if (auto status = scan(units[i], limits, *sinks[i], stop); !status.ok()) return status;
    }
    return absl::OkStatus();
  }
};

}  // namespace telekern::tracer
