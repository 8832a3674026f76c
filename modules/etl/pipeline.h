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
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "cachers.h"
#include "clickhouse.h"
#include "etl_options.h"
#include "insert_streams.h"
#include "processor.h"
#include "redis_client.h"
#include "row_binary.h"
#include "telekern/metrics.h"
#include "telekern/stream.h"
#include "telekern/work_queue.h"

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
  bool row_binary = true;  // insert_format: rowbinary | jsoneachrow
  // One streamed INSERT per table spans batches until it holds this many rows
  // or bytes, is this old, or the consumer is drained; 0 rows = an INSERT per batch.
  size_t insert_max_rows = 100000;
  size_t insert_max_bytes = 33554432;
  std::chrono::milliseconds insert_max_age{5000};
  // Records that fail parsing or building go here (through telekern::stream,
  // the consumer's transport) instead of the dead-letter table; empty = table.
  std::string dead_letter_topic;
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
  std::map<std::string, uint64_t> lag_by_partition;  // "topic/partition" -> records
  uint64_t consumer_lag = 0;
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

// One batch on its way to the stores: its rows, and the messages whose
// offsets may be committed once every writer took them.
struct Batch {
  std::vector<Row> rows;
  std::vector<Message> messages;         // keys and values dropped: offsets only
  std::set<std::string> written_tables;  // tables already written (a retry skips them)
  bool redis_written = false;
  std::vector<stream::Record> dead_letters;  // for the dead-letter topic
  bool dead_letters_written = false;
};

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
  // What one building thread keeps: its JSON parser and per-processor tallies.
  struct BuildLane {
    simdjson::dom::parser parser;
    std::vector<uint64_t> tally;  // messages built per processor, not yet folded
    uint64_t messages = 0;
  };
  // Processes one message into the rows of `batch` (or dead-letter rows).
  void process(const Message& message, Batch& batch, BuildLane& lane);
  // Processes `messages` into `batch`: a large poll is split between this
  // thread and the build helpers (processors are stateless; each lane has
  // its own parser and tallies).
  void process_all(std::vector<Message>& messages, Batch& batch, WorkQueue* helpers);
  // Adds the per-message tallies of process() to the counters (one lock per poll).
  void fold_tally();
  void dead_letter(const Message& message, std::string_view processor, std::string_view reason,
                   Batch& batch);
  // Writes every row of `batch`, retrying until success or `stop` (once: one attempt).
  absl::Status flush(Batch& batch, std::stop_token stop, bool once);
  // The writer stage of clickhouse/json pipelines: it inserts one batch while
  // the pipeline thread consumes and builds the next. hand_off() waits while a
  // batch is still queued (memory stays bounded by two batches, consumption
  // pauses while a store is down); written batches' messages come back
  // through take_written() to be committed by the consuming thread.
  void run_writer(std::stop_token stop);
  void hand_off(Batch batch);
  std::vector<Message> take_written();
  size_t in_writer() const;
  // Rows for `table` as an INSERT body: RowBinary when the table and rows
  // allow it, else JSONEachRow. Creates the table when missing.
  struct Encoded {
    std::string columns;  // RowBinary's column list
    bool row_binary = false;
    std::string body;
  };
  absl::StatusOr<Encoded> encode_clickhouse(const std::string& table,
                                            const std::vector<const Row*>& rows);
  absl::Status write_clickhouse(const std::string& table, const std::vector<const Row*>& rows);
  // Streaming writer (insert_max_rows > 0): the batch's ClickHouse rows go
  // into the open inserts, its other writes (Redis, dead-letter topic) are
  // made now; its offsets wait for close_streams().
  absl::Status stream_batch(Batch& batch, InsertStreams& streams, std::vector<Message>& held,
                            std::stop_token stop, bool once);
  // Ends the open inserts (retrying as flush() does, until `stop`), then
  // hands the held messages to take_written().
  absl::Status close_streams(InsertStreams& streams, std::vector<Message>& held,
                             std::stop_token stop, bool once);
  // `attempt` until it succeeds, with backoff, the state RETRYING and
  // write_failed counted meanwhile; one try when `once`.
  absl::Status with_retry(const std::function<absl::Status()>& attempt, std::stop_token stop,
                          bool once);
  absl::Status write_redis(const std::vector<const Row*>& rows);
  absl::Status write_json(const std::vector<const Row*>& rows);
  absl::Status write_dead_letters(const std::vector<stream::Record>& records);
  // Asks the group's position of the consumed partitions (consumer lag).
  void update_lag(stream::Consumer& consumer);
  void fail(std::string_view reason, const absl::Status& status);
  void set_state(PipelineState state);
  void count_error(std::string_view reason);
  bool sleep_for(std::stop_token stop, std::chrono::milliseconds duration);
  const TableSchema* schema_of(const std::string& table) const;

  PipelineSpec spec_;
  std::shared_ptr<const PipelineEnvironment> environment_;
  std::vector<std::unique_ptr<Processor>> processors_;
  TableSchema dead_letter_schema_;
  bool keeps_raw_ = false;                   // a RawKafkaProcessor keeps every message already
  std::vector<Counter*> processor_metrics_;  // per processors_ entry; null without metrics
  static constexpr size_t kBuildLanes = 2;   // 3 measured no faster on 2 cores
  BuildLane lanes_[kBuildLanes];             // [0] the pipeline thread, then its build helpers
  // RowBinary encoders by table (writer thread); an error: that table goes as JSONEachRow.
  std::map<std::string, absl::StatusOr<RowBinaryEncoder>> encoders_;
  std::unique_ptr<ClickHouse> clickhouse_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<Cachers> cachers_;
  BuildContext context_;
  simdjson::dom::parser parser_;

  // Written messages not yet committed (pipeline thread only).
  std::vector<Message> messages_;

  // Hand-off between the pipeline thread and the writer thread.
  mutable std::mutex writer_mutex_;
  std::condition_variable_any writer_wake_;
  std::optional<Batch> queued_;
  size_t writing_ = 0;           // messages of the batch being written
  bool writer_closing_ = false;  // no more batches come
  bool writer_failed_ = false;   // a batch could not be written before stop: write no later one
  bool idle_ = false;            // the consumer is drained and no batch is being built
  std::vector<Message> written_;

  mutable std::mutex mutex_;
  PipelineCounters counters_;
  std::chrono::steady_clock::time_point started_at_;

  CounterFamily* messages_metric_ = nullptr;
  CounterFamily* rows_metric_ = nullptr;
  CounterFamily* errors_metric_ = nullptr;
  CounterFamily* batches_metric_ = nullptr;
  CounterFamily* inserts_metric_ = nullptr;
  HistogramFamily* batch_rows_metric_ = nullptr;
  HistogramFamily* writer_latency_metric_ = nullptr;
  GaugeFamily* pending_metric_ = nullptr;
  GaugeFamily* offset_metric_ = nullptr;
  GaugeFamily* lag_metric_ = nullptr;

  stream::StreamConfig stream_config_;                      // the consumer's transport
  std::unique_ptr<stream::Producer> dead_letter_producer_;  // writer thread, made on first use

  std::jthread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace telekern::etl
