// One pipeline: a consumer, its processors and writers, on its own thread.
// clickhouse/json pipelines consume messages, build rows and write them in
// batches; offsets are committed only after every writer of the batch
// succeeded, and a failing writer is retried with backoff while consumption
// waits. metadata_export/metadata_import move metadata between Redis and
// ClickHouse on an interval.
#pragma once

#include <simdjson.h>
#include <spdlog/logger.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "cachers.h"
#include "clickhouse.h"
#include "etl_options.h"
#include "processor.h"
#include "redis_client.h"
#include "telekern/metrics.h"

namespace telekern::etl {

enum class PipelineType { kClickHouse, kMetadataExport, kMetadataImport, kJson };
enum class PipelineState { kRunning, kRetrying, kStopped, kFailed };

std::string_view type_name(PipelineType type);

struct PipelineSpec {
  std::string name;
  PipelineType type = PipelineType::kClickHouse;
  std::string consumer = "kafka";  // kafka | broker
  std::string topic;
  std::string group;
  std::string start = "latest";  // earliest | latest
  std::vector<std::string> clickhouse_processors;
  std::vector<std::string> redis_hash_processors;
  size_t batch_size = 1000;
  std::chrono::milliseconds batch_timeout{30000};
  std::chrono::milliseconds flush_interval{100};
  std::chrono::milliseconds interval{-1};  // metadata pipelines; negative = once
  std::vector<std::string> tables;         // metadata pipelines
  UnknownFields unknown = UnknownFields::kSkip;
  std::string json_output = "-";
};

// A definition from YAML (one entry of `pipelines:`), defaults from `options`.
absl::StatusOr<PipelineSpec> parse_pipeline(const YAML::Node& node, const EtlOptions& options);
// The `default` pipeline of the seed's flat keys, when pipeline_type is set.
std::optional<absl::StatusOr<PipelineSpec>> default_pipeline(const EtlOptions& options);
BuiltinSettings builtin_settings(const EtlOptions& options);
UnknownFields parse_unknown(const std::string& text);

struct PipelineCounters {
  uint64_t messages = 0;
  uint64_t rows_written = 0;
  uint64_t batches = 0;
  uint64_t errors = 0;
  uint64_t pending = 0;
  uint64_t batch_rows_max = 0;
  double messages_per_second = 0;
  double rows_per_second = 0;
  std::map<std::string, uint64_t> rows_by_table;
  std::map<std::string, uint64_t> messages_by_processor;
  std::map<std::string, uint64_t> errors_by_reason;
  std::map<std::string, uint64_t> pending_by_partition;
  std::string last_error;
  std::chrono::system_clock::time_point last_error_time{};
  PipelineState state = PipelineState::kRunning;
};

// What every pipeline shares: options, metrics, logger, declarative processors.
struct PipelineEnvironment {
  EtlOptions options;
  MetricsRegistry* metrics = nullptr;
  std::shared_ptr<spdlog::logger> logger;
  YAML::Node declarative;  // list of processor definitions
};

// The processors named in a spec: built-in names or declarative definitions.
absl::StatusOr<std::vector<std::unique_ptr<Processor>>> make_processors(
    const std::vector<std::string>& names, const PipelineEnvironment& environment);

class Pipeline {
 public:
  Pipeline(PipelineSpec spec, std::shared_ptr<const PipelineEnvironment> environment);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Builds processors and starts the thread; an error means it never ran.
  absl::Status start();
  // Flushes what it holds (one attempt), commits what was written, joins. Idempotent.
  void stop();

  const PipelineSpec& spec() const { return spec_; }
  PipelineCounters counters() const;
  std::vector<const Processor*> processors() const;

 private:
  void run_stream(std::stop_token stop);
  void run_metadata_export(std::stop_token stop);
  void run_metadata_import(std::stop_token stop);
  // Processes one message into pending rows (or the dead-letter rows).
  void process(const Message& message);
  void dead_letter(const Message& message, std::string_view processor, std::string_view reason);
  // Writes every pending row, retrying until success or `stop`.
  absl::Status flush(std::stop_token stop, bool once);
  absl::Status write_clickhouse(const std::string& table, const std::vector<const Row*>& rows);
  absl::Status write_redis(const std::vector<const Row*>& rows);
  absl::Status write_json(const std::vector<const Row*>& rows);
  void fail(std::string_view reason, const absl::Status& status);
  void set_state(PipelineState state);
  void count_error(std::string_view reason);
  bool sleep_for(std::stop_token stop, std::chrono::milliseconds duration);
  const TableSchema* schema_of(const std::string& table) const;

  PipelineSpec spec_;
  std::shared_ptr<const PipelineEnvironment> environment_;
  std::vector<std::unique_ptr<Processor>> processors_;
  TableSchema dead_letter_schema_;
  bool keeps_raw_ = false;  // a RawKafkaProcessor keeps every message already
  std::unique_ptr<ClickHouse> clickhouse_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<Cachers> cachers_;
  BuildContext context_;
  simdjson::dom::parser parser_;

  // Pending batch (pipeline thread only).
  std::vector<Row> rows_;
  std::vector<Message> messages_;
  std::set<std::string> written_tables_;  // tables of this batch already written
  bool redis_written_ = false;

  mutable std::mutex mutex_;
  PipelineCounters counters_;
  std::chrono::steady_clock::time_point started_at_;

  CounterFamily* messages_metric_ = nullptr;
  CounterFamily* rows_metric_ = nullptr;
  CounterFamily* errors_metric_ = nullptr;
  CounterFamily* batches_metric_ = nullptr;
  HistogramFamily* batch_rows_metric_ = nullptr;
  HistogramFamily* writer_latency_metric_ = nullptr;
  GaugeFamily* pending_metric_ = nullptr;
  GaugeFamily* offset_metric_ = nullptr;

  std::jthread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace telekern::etl
