#include "pipeline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>

#include "declarative_processor.h"
#include "mapped_processor.h"
#include "tables.h"
#include "telekern/log.h"
#include "telekern/retry.h"
#include "telekern/stream.h"
#include "telekern/strings.h"

namespace telekern::etl {
namespace {

// How long a poll waits to find out whether the consumer is drained while the
// writer holds an open insert (a gap this long in a busy topic is rare).
constexpr std::chrono::milliseconds kDrainCheck{10};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= text.size()) {
    size_t comma = text.find(',', at);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(at, comma - at);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    at = comma + 1;
  }
  return out;
}

std::vector<std::string> list_of(const YAML::Node& node) {
  std::vector<std::string> out;
  if (!node) return out;
  if (node.IsScalar()) return split_list(node.as<std::string>());
  for (const auto& item : node) out.push_back(item.as<std::string>());
  return out;
}

std::chrono::milliseconds seconds(double value) {
  return std::chrono::milliseconds(static_cast<int64_t>(value * 1000));
}

std::chrono::milliseconds duration_of(const YAML::Node& node, std::chrono::milliseconds fallback) {
  if (!node) return fallback;
  std::string text = node.as<std::string>();
  auto parsed = parse_duration(text);
  if (parsed.ok()) return *parsed;
  return seconds(node.as<double>());
}

// The meta_if row of one Redis hash (metadata_export): typed columns, hash and ref.
class InterfaceMetadataRows final : public MappedProcessor {
 public:
  explicit InterfaceMetadataRows(const std::string& table) {
    schema_ = meta_if_schema();
    schema_.name = table;
    description_ = {"InterfaceMetadataProcessor", "Interface metadata hashes from Redis",
                    "metadata_export: every <redis_if_metadata_table>:<id> hash", table,
                    Store::kClickHouse};
    for (const auto& column : schema_.columns) {
      if (column.name == "ref" || column.name == "hash" || column.name == "insert_ts") continue;
      map(column.name, "/" + column.name);
    }
  }
  bool match(const simdjson::dom::element&) const override { return true; }
  absl::Status build(const simdjson::dom::element& document, const Message&, BuildContext& context,
                     std::vector<Row>& out) const override {
    Row row = new_row();
    if (auto status = fill(document, context, row); !status.ok()) return status;
    out.push_back(std::move(row));
    return absl::OkStatus();
  }
  void add(Row& row, const std::string& column, const std::string& text) const {
    put_string(column, text, row);
  }
};

uint64_t fnv1a(std::string_view text, uint64_t hash = 1469598103934665603ULL) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

}  // namespace

std::string_view type_name(PipelineType type) {
  switch (type) {
    case PipelineType::kClickHouse:
      return "clickhouse";
    case PipelineType::kMetadataExport:
      return "metadata_export";
    case PipelineType::kMetadataImport:
      return "metadata_import";
    case PipelineType::kJson:
      return "json";
  }
  return "clickhouse";
}

UnknownFields parse_unknown(const std::string& text) {
  if (text == "strict") return UnknownFields::kStrict;
  if (text == "default") return UnknownFields::kDefault;
  return UnknownFields::kSkip;
}

BuiltinSettings builtin_settings(const EtlOptions& o) {
  BuiltinSettings settings;
  settings.flow_table = o.clickhouse_flow_table;
  settings.if_traffic_table = o.clickhouse_if_traffic_table;
  settings.if_sap_queue_table = o.clickhouse_if_sap_queue_table;
  settings.if_port_queue_table = o.clickhouse_if_port_queue_table;
  settings.raw_kafka_table = o.clickhouse_raw_kafka_table;
  settings.if_metadata_table = o.clickhouse_if_metadata_table;
  settings.redis_if_metadata_table = o.redis_if_metadata_table;
  settings.redis_if_metadata_expires = o.redis_if_metadata_expires;
  settings.port_queues = {o.clickhouse_if_port_queue_min, o.clickhouse_if_port_queue_max};
  settings.sap_queues = {o.clickhouse_if_sap_queue_min, o.clickhouse_if_sap_queue_max};
  return settings;
}

PipelineType parse_type(const std::string& text) {
  if (text == "metadata_export") return PipelineType::kMetadataExport;
  if (text == "metadata_import") return PipelineType::kMetadataImport;
  if (text == "json") return PipelineType::kJson;
  return PipelineType::kClickHouse;
}

absl::StatusOr<PipelineSpec> parse_pipeline(const YAML::Node& node, const EtlOptions& o) {
  try {
    PipelineSpec spec;
    spec.name = node["name"].as<std::string>("");
    if (spec.name.empty()) return absl::InvalidArgumentError("a pipeline needs a name");
    std::string type = node["type"].as<std::string>("clickhouse");
    if (type != "clickhouse" && type != "metadata_export" && type != "metadata_import" &&
        type != "json")
      return absl::InvalidArgumentError(
          str_cat("pipeline ", spec.name, ": unknown type '", type,
                  "'; use clickhouse, metadata_import, metadata_export or json"));
    spec.type = parse_type(type);
    // A missing key of a const node is a zombie that throws on access: use an empty map.
    YAML::Node consumer = node["consumer"] && node["consumer"].IsMap()
                              ? YAML::Clone(node["consumer"])
                              : YAML::Node(YAML::NodeType::Map);
    spec.consumer = consumer["type"].as<std::string>(o.consumer);
    if (spec.consumer != "kafka" && spec.consumer != "broker")
      return absl::InvalidArgumentError(str_cat("pipeline ", spec.name, ": consumer.type '",
                                                spec.consumer, "' is not kafka or broker"));
    spec.topic = consumer["topic"].as<std::string>(o.kafka_topic);
    spec.group = consumer["group"].as<std::string>(o.kafka_consumer_group);
    spec.start = consumer["start"].as<std::string>(o.kafka_auto_offset_reset);
    spec.clickhouse_processors = list_of(node["processors"]);
    if (node["clickhouse_processors"])
      for (auto& name : list_of(node["clickhouse_processors"]))
        spec.clickhouse_processors.push_back(name);
    spec.redis_hash_processors = list_of(node["redis_hash_processors"]);
    for (auto& name : list_of(node["redis_processors"])) spec.redis_hash_processors.push_back(name);
    spec.batch_size = node["batch_size"].as<size_t>(o.clickhouse_batch_size);
    if (spec.batch_size == 0) return absl::InvalidArgumentError("batch_size must be at least 1");
    spec.batch_timeout = duration_of(node["batch_timeout"], seconds(o.clickhouse_batch_timeout));
    spec.flush_interval = duration_of(node["flush_interval"], seconds(o.clickhouse_flush_interval));
    int default_interval = spec.type == PipelineType::kMetadataExport
                               ? o.redis_consumer_update_interval
                               : o.clickhouse_consumer_update_interval;
    spec.interval = duration_of(node["interval"], std::chrono::seconds(default_interval));
    spec.tables = list_of(node["tables"]);
    spec.unknown = parse_unknown(node["unknown_fields"].as<std::string>(o.unknown_fields));
    spec.json_output = node["json_output"].as<std::string>(o.json_output);
    std::string format = node["insert_format"].as<std::string>(o.clickhouse_insert_format);
    if (format != "rowbinary" && format != "jsoneachrow")
      return absl::InvalidArgumentError(str_cat("pipeline ", spec.name, ": insert_format '", format,
                                                "' is not rowbinary or jsoneachrow"));
    spec.row_binary = format == "rowbinary";
    spec.insert_max_rows = node["insert_max_rows"].as<size_t>(o.clickhouse_insert_max_rows);
    spec.insert_max_bytes = node["insert_max_bytes"].as<size_t>(o.clickhouse_insert_max_bytes);
    spec.insert_max_age = duration_of(node["insert_max_age"], seconds(o.clickhouse_insert_max_age));
    spec.dead_letter_topic = node["dead_letter_topic"].as<std::string>(o.dead_letter_topic);
    if ((spec.type == PipelineType::kClickHouse || spec.type == PipelineType::kJson) &&
        spec.clickhouse_processors.empty() && spec.redis_hash_processors.empty())
      return absl::InvalidArgumentError(
          str_cat("pipeline ", spec.name, " has no processors; list them under processors:"));
    return spec;
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(str_cat("pipeline definition: ", error.what()));
  }
}

std::optional<absl::StatusOr<PipelineSpec>> default_pipeline(const EtlOptions& o) {
  if (o.pipeline_type.empty()) return std::nullopt;
  YAML::Node node(YAML::NodeType::Map);
  node["name"] = "default";
  node["type"] = o.pipeline_type;
  node["processors"] = o.clickhouse_processors;
  node["redis_hash_processors"] = o.redis_hash_processors;
  node["redis_processors"] = o.redis_processors;
  return parse_pipeline(node, o);
}

absl::StatusOr<std::vector<std::unique_ptr<Processor>>> make_processors(
    const std::vector<std::string>& names, const PipelineEnvironment& environment) {
  std::vector<std::unique_ptr<Processor>> out;
  auto settings = builtin_settings(environment.options);
  for (const auto& name : names) {
    bool found = false;
    if (environment.declarative && environment.declarative.IsSequence()) {
      for (const auto& definition : environment.declarative) {
        if (definition["name"].as<std::string>("") != name) continue;
        auto processor = make_declarative_processor(definition);
        if (!processor.ok()) return processor.status();
        out.push_back(std::move(*processor));
        found = true;
        break;
      }
    }
    if (found) continue;
    auto processor = make_builtin_processor(name, settings);
    if (!processor.ok()) return processor.status();
    out.push_back(std::move(*processor));
  }
  return out;
}

Pipeline::Pipeline(PipelineSpec spec, std::shared_ptr<const PipelineEnvironment> environment)
    : spec_(std::move(spec)), environment_(std::move(environment)) {
  dead_letter_schema_ = dead_letter_schema();
  dead_letter_schema_.name = environment_->options.clickhouse_dead_letter_table;
  auto* metrics = environment_->metrics;
  if (metrics) {
    messages_metric_ = &metrics->counter(
        "telekern_etl_messages_total", "Messages processed, by pipeline and processor (or outcome)",
        {"pipeline", "processor"});
    rows_metric_ = &metrics->counter("telekern_etl_rows_written_total",
                                     "Rows written, by pipeline and table", {"pipeline", "table"});
    errors_metric_ =
        &metrics->counter("telekern_etl_errors_total", "Errors and rejected messages by reason",
                          {"pipeline", "reason"});
    batches_metric_ = &metrics->counter("telekern_etl_batches_total",
                                        "Batches written and committed", {"pipeline"});
    inserts_metric_ =
        &metrics->counter("telekern_etl_inserts_total",
                          "ClickHouse INSERT requests the server accepted", {"pipeline", "table"});
    batch_rows_metric_ =
        &metrics->histogram("telekern_etl_batch_rows", "Rows per written batch", {"pipeline"},
                            {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000});
    writer_latency_metric_ = &metrics->histogram("telekern_etl_writer_latency_seconds",
                                                 "Time of one writer call", {"pipeline", "writer"});
    pending_metric_ =
        &metrics->gauge("telekern_etl_pending_messages",
                        "Messages consumed but not yet written and committed", {"pipeline"});
    offset_metric_ =
        &metrics->gauge("telekern_etl_committed_offset", "Last committed offset per partition",
                        {"pipeline", "topic", "partition"});
    lag_metric_ = &metrics->gauge(
        "telekern_etl_consumer_lag",
        "Records on a consumed partition not yet committed by the pipeline's group (high "
        "watermark - committed offset)",
        {"pipeline", "partition"});
  }
}

Pipeline::~Pipeline() { stop(); }

std::vector<const Processor*> Pipeline::processors() const {
  std::vector<const Processor*> out;
  for (const auto& processor : processors_) out.push_back(processor.get());
  return out;
}

absl::Status Pipeline::start() {
  const auto& o = environment_->options;
  std::vector<std::string> names = spec_.clickhouse_processors;
  names.insert(names.end(), spec_.redis_hash_processors.begin(), spec_.redis_hash_processors.end());
  if ((spec_.type == PipelineType::kClickHouse || spec_.type == PipelineType::kJson) &&
      names.empty())
    return absl::InvalidArgumentError(str_cat(
        "pipeline ", spec_.name,
        " has no processors; set clickhouse_processors (CLICKHOUSE_PROCESSORS) or list them"));
  auto processors = make_processors(names, *environment_);
  if (!processors.ok()) return processors.status();
  processors_ = std::move(*processors);
  for (auto& processor : processors_) processor->prepare();  // builds may then run in parallel
  processor_metrics_.clear();
  for (const auto& processor : processors_) {
    keeps_raw_ = keeps_raw_ || processor->describe().name == "RawKafkaProcessor";
    processor_metrics_.push_back(
        messages_metric_ ? &messages_metric_->with({spec_.name, processor->describe().name})
                         : nullptr);
  }
  for (auto& lane : lanes_) lane.tally.assign(processors_.size(), 0);
  clickhouse_ = std::make_unique<ClickHouse>(ClickHouseOptions{
      o.clickhouse_host, o.clickhouse_port, o.clickhouse_database, o.clickhouse_username,
      o.clickhouse_password, o.clickhouse_secure, std::chrono::milliseconds(30000)});
  redis_ = std::make_unique<RedisClient>(
      RedisOptions{o.redis_host, o.redis_port, o.redis_db, o.redis_password});
  cachers_ =
      std::make_unique<Cachers>(spec_.type == PipelineType::kJson ? nullptr : clickhouse_.get(),
                                redis_.get(), split_list(o.clickhouse_cacher_tables));
  context_.refs = cachers_.get();
  context_.unknown = spec_.unknown;
  context_.count = [this](std::string_view reason) { count_error(reason); };
  started_at_ = std::chrono::steady_clock::now();
  set_state(PipelineState::kRunning);
  thread_ = std::jthread([this](std::stop_token stop) {
    switch (spec_.type) {
      case PipelineType::kClickHouse:
      case PipelineType::kJson:
        run_stream(stop);
        break;
      case PipelineType::kMetadataExport:
        run_metadata_export(stop);
        break;
      case PipelineType::kMetadataImport:
        run_metadata_import(stop);
        break;
    }
  });
  return absl::OkStatus();
}

void Pipeline::stop() {
  if (stopped_.exchange(true)) return;
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
  std::lock_guard lock(mutex_);
  if (counters_.state != PipelineState::kFailed) counters_.state = PipelineState::kStopped;
}

PipelineCounters Pipeline::counters() const {
  std::lock_guard lock(mutex_);
  PipelineCounters out = counters_;
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
  if (elapsed > 0) {
    out.messages_per_second = static_cast<double>(out.messages) / elapsed;
    out.rows_per_second = static_cast<double>(out.rows_written) / elapsed;
  }
  return out;
}

void Pipeline::set_state(PipelineState state) {
  std::lock_guard lock(mutex_);
  counters_.state = state;
}

void Pipeline::count_error(std::string_view reason) {
  {
    std::lock_guard lock(mutex_);
    ++counters_.errors;
    ++counters_.errors_by_reason[std::string(reason)];
  }
  if (errors_metric_) errors_metric_->with({spec_.name, std::string(reason)}).inc();
}

void Pipeline::fail(std::string_view reason, const absl::Status& status) {
  count_error(reason);
  std::lock_guard lock(mutex_);
  counters_.last_error = std::string(status.message());
  counters_.last_error_time = std::chrono::system_clock::now();
}

bool Pipeline::sleep_for(std::stop_token stop, std::chrono::milliseconds duration) {
  std::mutex mutex;
  std::condition_variable_any wake;
  std::unique_lock lock(mutex);
  return !wake.wait_for(lock, stop, duration, [] { return false; }) && !stop.stop_requested();
}

const TableSchema* Pipeline::schema_of(const std::string& table) const {
  if (table == dead_letter_schema_.name) return &dead_letter_schema_;
  for (const auto& processor : processors_)
    if (processor->schema() && processor->schema()->name == table) return processor->schema();
  return nullptr;
}

void Pipeline::dead_letter(const Message& message, std::string_view processor,
                           std::string_view reason, Batch& batch) {
  if (!spec_.dead_letter_topic.empty()) {
    stream::Record record;
    record.topic = spec_.dead_letter_topic;
    record.key = message.key;
    record.value = message.value;
    record.headers = {{"etl-pipeline", spec_.name},
                      {"etl-processor", std::string(processor)},
                      {"etl-reason", std::string(reason)},
                      {"etl-topic", message.topic},
                      {"etl-partition", std::to_string(message.partition)},
                      {"etl-offset", std::to_string(message.offset)}};
    batch.dead_letters.push_back(std::move(record));
    return;
  }
  Row row;
  row.table = dead_letter_schema_.name;
  auto text = [&row](std::string_view value) { return row.string(value); };
  const auto& columns =
      dead_letter_schema_
          .columns;  // timestamp pipeline processor reason topic partition offset key value
  row.add(columns[1].name, text(spec_.name));
  row.add(columns[2].name, text(processor));
  row.add(columns[3].name, text(reason));
  row.add(columns[4].name, text(message.topic));
  row.add(columns[5].name, Value::signed_integer(message.partition));
  row.add(columns[6].name, Value::signed_integer(message.offset));
  row.add(columns[7].name, message.key.empty() ? Value::null() : text(message.key));
  row.add(columns[8].name, text(message.value));
  batch.rows.push_back(std::move(row));
}

void Pipeline::fold_tally() {
  std::lock_guard lock(mutex_);
  for (auto& lane : lanes_) {
    counters_.messages += lane.messages;
    lane.messages = 0;
    for (size_t i = 0; i < processors_.size(); ++i) {
      if (lane.tally[i] == 0) continue;
      counters_.messages_by_processor[processors_[i]->describe().name] += lane.tally[i];
      lane.tally[i] = 0;
    }
  }
}

void Pipeline::process_all(std::vector<Message>& messages, Batch& batch, WorkQueue* helpers) {
  // Below this many messages a lane, a hand-off costs more than it saves.
  constexpr size_t kPerLane = 32;
  size_t lanes = std::min(kBuildLanes, messages.size() / kPerLane);
  if (!helpers || lanes < 2) {
    for (const auto& message : messages) process(message, batch, lanes_[0]);
    return;
  }
  // Lane 0 (this thread) takes the first share, the helpers one share each.
  size_t share = (messages.size() + lanes - 1) / lanes;
  std::vector<Batch> parts(lanes);
  std::vector<std::promise<void>> done(lanes);
  std::vector<std::future<void>> finished;
  for (size_t lane = 1; lane < lanes; ++lane) {
    size_t from = lane * share, to = std::min(messages.size(), from + share);
    finished.push_back(done[lane].get_future());
    bool queued = helpers->try_submit([&, lane, from, to] {
      for (size_t i = from; i < to; ++i) process(messages[i], parts[lane], lanes_[lane]);
      done[lane].set_value();
    });
    if (!queued) {  // not expected (one job per helper): build it here
      for (size_t i = from; i < to; ++i) process(messages[i], parts[lane], lanes_[0]);
      done[lane].set_value();
    }
  }
  for (size_t i = 0; i < std::min(share, messages.size()); ++i)
    process(messages[i], batch, lanes_[0]);
  for (auto& future : finished) future.wait();
  for (size_t lane = 1; lane < lanes; ++lane) {
    auto& part = parts[lane];
    batch.rows.insert(batch.rows.end(), std::make_move_iterator(part.rows.begin()),
                      std::make_move_iterator(part.rows.end()));
    batch.dead_letters.insert(batch.dead_letters.end(),
                              std::make_move_iterator(part.dead_letters.begin()),
                              std::make_move_iterator(part.dead_letters.end()));
  }
}

void Pipeline::process(const Message& message, Batch& batch, BuildLane& lane) {
  ++lane.messages;
  auto parsed = lane.parser.parse(message.value);
  if (parsed.error()) {
    count_error("invalid_json");
    if (messages_metric_) messages_metric_->with({spec_.name, "invalid_json"}).inc();
    dead_letter(message, "", str_cat("invalid JSON: ", simdjson::error_message(parsed.error())),
                batch);
    return;
  }
  simdjson::dom::element document = parsed.value_unsafe();
  bool matched = false;
  for (size_t index = 0; index < processors_.size(); ++index) {
    const auto& processor = processors_[index];
    if (!processor->match(document)) continue;
    const auto& name = processor->describe().name;
    if (name != "RawKafkaProcessor") matched = true;
    size_t before = batch.rows.size();
    auto status = processor->build(document, message, context_, batch.rows);
    if (!status.ok()) {
      batch.rows.resize(before);
      count_error("build_failed");
      dead_letter(message, name, std::string(status.message()), batch);
      continue;
    }
    ++lane.tally[index];  // counters: folded in once per poll (fold_tally)
    if (processor_metrics_[index]) processor_metrics_[index]->inc();
  }
  if (!matched) {
    count_error("no_processor_matched");
    if (messages_metric_) messages_metric_->with({spec_.name, "unmatched"}).inc();
    if (!keeps_raw_) dead_letter(message, "", "no processor matched", batch);
  }
}

absl::StatusOr<Pipeline::Encoded> Pipeline::encode_clickhouse(const std::string& table,
                                                              const std::vector<const Row*>& rows) {
  const TableSchema* schema = schema_of(table);
  if (schema) {
    if (auto status = clickhouse_->ensure_table(*schema); !status.ok()) return status;
  }
  Encoded out;
  if (schema && spec_.row_binary) {
    auto encoder = encoders_.find(table);
    if (encoder == encoders_.end()) {
      auto profile = clickhouse_->profile();
      if (!profile.ok()) return profile.status();
      encoder = encoders_.emplace(table, RowBinaryEncoder::create(*schema, *profile)).first;
      if (!encoder->second.ok())
        environment_->logger->info("pipeline {}: table {} goes as JSONEachRow: {}", spec_.name,
                                   table, encoder->second.status().message());
    }
    if (encoder->second.ok()) {
      out.body.reserve(rows.size() * 128);
      auto columns = encoder->second->encode(rows, out.body);
      if (columns.ok()) {
        out.columns = std::move(*columns);
        out.row_binary = true;
        return out;
      }
      // Rows that fill a DEFAULT column only in part (JSONEachRow says that per row),
      // or a value RowBinary cannot carry: this batch goes as JSONEachRow.
      environment_->logger->debug("pipeline {}: batch for {} goes as JSONEachRow: {}", spec_.name,
                                  table, columns.status().message());
      out.body.clear();
    }
  }
  out.body.reserve(rows.size() * 256);
  for (const Row* row : rows) {
    row->append_json(out.body);
    out.body += '\n';
  }
  return out;
}

absl::Status Pipeline::write_clickhouse(const std::string& table,
                                        const std::vector<const Row*>& rows) {
  auto encoded = encode_clickhouse(table, rows);
  if (!encoded.ok()) return encoded.status();
  auto status = clickhouse_->insert(table, encoded->columns, encoded->row_binary, encoded->body);
  if (status.ok() && inserts_metric_) inserts_metric_->with({spec_.name, table}).inc();
  return status;
}

absl::Status Pipeline::write_redis(const std::vector<const Row*>& rows) {
  std::vector<RedisHash> hashes;
  for (const Row* row : rows) {
    RedisHash hash{str_cat(row->table, ":", row->key), {}, row->expires_seconds};
    for (const auto& [name, value] : row->cells) {
      if (value.kind == Value::Kind::kNull) continue;
      hash.fields.emplace_back(std::string(name), row->plain_text(value));
    }
    hashes.push_back(std::move(hash));
  }
  return redis_->write_hashes(hashes);
}

absl::Status Pipeline::write_json(const std::vector<const Row*>& rows) {
  std::string out;
  for (const Row* row : rows) {
    out += "{\"table\":";
    append_json_string(out, row->table);
    out += ",\"row\":";
    row->append_json(out);
    out += "}\n";
  }
  if (spec_.json_output == "-") {
    environment_->logger->info("pipeline {}: {}", spec_.name, out);
    return absl::OkStatus();
  }
  std::ofstream file(spec_.json_output, std::ios::app);
  file << out;
  file.flush();
  if (!file) return absl::UnavailableError(str_cat("cannot write ", spec_.json_output));
  return absl::OkStatus();
}

absl::Status Pipeline::write_dead_letters(const std::vector<stream::Record>& records) {
  if (!dead_letter_producer_) {
    auto made = stream::make_producer(stream_config_);
    if (!made.ok()) return made.status();
    dead_letter_producer_ = std::move(*made);
  }
  for (const auto& record : records) {
    auto status = dead_letter_producer_->send(record);
    if (absl::IsResourceExhausted(status)) {  // local queue full: drain it, then once more
      (void)dead_letter_producer_->flush(std::chrono::seconds(10));
      status = dead_letter_producer_->send(record);
    }
    if (!status.ok()) return status;
  }
  // Acknowledged before the batch's offsets are committed.
  return dead_letter_producer_->flush(std::chrono::seconds(10));
}

void Pipeline::update_lag(stream::Consumer& consumer) {
  auto partitions = consumer.lag(std::chrono::milliseconds(1000));
  if (!partitions.ok()) return;  // next time; the last figures stay
  std::lock_guard lock(mutex_);
  counters_.lag_by_partition.clear();
  counters_.consumer_lag = 0;
  for (const auto& partition : *partitions) {
    auto lag = static_cast<uint64_t>(partition.lag());
    counters_.lag_by_partition[str_cat(partition.topic, "/", partition.partition)] = lag;
    counters_.consumer_lag += lag;
    if (lag_metric_)
      lag_metric_->with({spec_.name, std::to_string(partition.partition)})
          .set(static_cast<double>(lag));
  }
}

absl::Status Pipeline::flush(Batch& batch, std::stop_token stop, bool once) {
  if (batch.rows.empty() && batch.dead_letters.empty()) return absl::OkStatus();
  std::map<std::string, std::vector<const Row*>> by_table;
  std::vector<const Row*> redis_rows;
  for (const auto& row : batch.rows) {
    if (row.store == Store::kRedis)
      redis_rows.push_back(&row);
    else
      by_table[row.table].push_back(&row);
  }
  auto timed = [&](const char* writer, const std::function<absl::Status()>& call) {
    auto begin = std::chrono::steady_clock::now();
    auto status = call();
    if (writer_latency_metric_)
      writer_latency_metric_->with({spec_.name, writer})
          .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    return status;
  };
  auto attempt = [&]() -> absl::Status {
    for (const auto& [table, rows] : by_table) {
      if (batch.written_tables.count(table)) continue;
      auto status = spec_.type == PipelineType::kJson
                        ? timed("json", [&] { return write_json(rows); })
                        : timed("clickhouse", [&] { return write_clickhouse(table, rows); });
      if (!status.ok()) return status;
      batch.written_tables.insert(table);
      {
        std::lock_guard lock(mutex_);
        counters_.rows_written += rows.size();
        counters_.rows_by_table[table] += rows.size();
      }
      if (rows_metric_)
        rows_metric_->with({spec_.name, table}).inc(static_cast<double>(rows.size()));
    }
    if (!redis_rows.empty() && !batch.redis_written) {
      auto status = spec_.type == PipelineType::kJson
                        ? timed("json", [&] { return write_json(redis_rows); })
                        : timed("redis", [&] { return write_redis(redis_rows); });
      if (!status.ok()) return status;
      batch.redis_written = true;
      std::lock_guard lock(mutex_);
      counters_.rows_written += redis_rows.size();
      counters_.rows_by_table[str_cat("redis:", redis_rows.front()->table)] += redis_rows.size();
    }
    if (!batch.dead_letters.empty() && !batch.dead_letters_written) {
      auto status =
          timed("dead_letter_topic", [&] { return write_dead_letters(batch.dead_letters); });
      if (!status.ok()) return status;
      batch.dead_letters_written = true;
      std::lock_guard lock(mutex_);
      counters_.rows_by_table[str_cat("topic:", spec_.dead_letter_topic)] +=
          batch.dead_letters.size();
    }
    return absl::OkStatus();
  };
  auto status = with_retry(attempt, stop, once);
  if (!status.ok()) return status;
  {
    std::lock_guard lock(mutex_);
    ++counters_.batches;
    counters_.batch_rows_max = std::max<uint64_t>(counters_.batch_rows_max, batch.rows.size());
  }
  if (batches_metric_) batches_metric_->with({spec_.name}).inc();
  if (batch_rows_metric_)
    batch_rows_metric_->with({spec_.name}).observe(static_cast<double>(batch.rows.size()));
  return absl::OkStatus();
}

absl::Status Pipeline::with_retry(const std::function<absl::Status()>& attempt,
                                  std::stop_token stop, bool once) {
  Backoff backoff(BackoffPolicy{std::chrono::milliseconds(100), std::chrono::milliseconds(5000),
                                2.0, once ? 1 : 0});
  auto status = retry(
      [&]() -> absl::Status {
        auto result = attempt();
        // Every store failure is retried: no row of an acknowledged batch is dropped.
        if (!result.ok() && !is_retryable(result)) return absl::UnavailableError(result.message());
        return result;
      },
      backoff, stop,
      [&](int number, const absl::Status& error) {
        set_state(PipelineState::kRetrying);
        fail("write_failed", error);
        if (number == 1 || number % 10 == 0)
          environment_->logger->warn("pipeline {}: write failed (attempt {}), retrying: {}",
                                     spec_.name, number, error.message());
      });
  if (status.ok()) set_state(PipelineState::kRunning);
  return status;
}

absl::Status Pipeline::stream_batch(Batch& batch, InsertStreams& streams,
                                    std::vector<Message>& held, std::stop_token stop, bool once) {
  std::map<std::string, std::vector<const Row*>> by_table;
  for (const auto& row : batch.rows)
    if (row.store != Store::kRedis) by_table[row.table].push_back(&row);
  for (const auto& [table, rows] : by_table) {
    if (batch.written_tables.count(table)) continue;  // appended by an earlier attempt
    Encoded encoded;
    auto status = with_retry(
        [&]() -> absl::Status {
          auto made = encode_clickhouse(table, rows);  // creating the table needs the server
          if (!made.ok()) return made.status();
          encoded = std::move(*made);
          return absl::OkStatus();
        },
        stop, once);
    if (!status.ok()) return status;
    if (!streams.fits(table, encoded.columns, encoded.row_binary)) {
      // Another column list (or JSONEachRow) for this table: end what is open first.
      if (auto closed = close_streams(streams, held, stop, once); !closed.ok()) return closed;
    }
    streams.append(table, encoded.columns, encoded.row_binary, encoded.body, rows.size());
    batch.written_tables.insert(table);
  }
  // Redis hashes and the dead-letter topic: written now, as an unstreamed batch's.
  return flush(batch, stop, once);
}

absl::Status Pipeline::close_streams(InsertStreams& streams, std::vector<Message>& held,
                                     std::stop_token stop, bool once) {
  auto begin = std::chrono::steady_clock::now();
  auto status = with_retry(
      [&] {
        return streams.close([&](const std::string& table, size_t rows) {
          {
            std::lock_guard lock(mutex_);
            counters_.rows_written += rows;
            counters_.rows_by_table[table] += rows;
          }
          if (rows_metric_) rows_metric_->with({spec_.name, table}).inc(static_cast<double>(rows));
          if (inserts_metric_) inserts_metric_->with({spec_.name, table}).inc();
        });
      },
      stop, once);
  if (writer_latency_metric_)
    writer_latency_metric_->with({spec_.name, "clickhouse"})
        .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
  if (!status.ok()) return status;
  std::lock_guard lock(writer_mutex_);
  for (auto& message : held) written_.push_back(std::move(message));
  held.clear();
  writing_ = 0;
  writer_wake_.notify_all();
  return status;
}

void Pipeline::run_writer(std::stop_token stop) {
  const bool streaming = spec_.type == PipelineType::kClickHouse && spec_.insert_max_rows > 0;
  InsertStreams streams(clickhouse_.get());
  std::vector<Message> held;  // offsets of the batches in open inserts, in order
  for (;;) {
    std::optional<Batch> batch;
    bool closing = false;
    bool idle = false;
    {
      std::unique_lock lock(writer_mutex_);
      auto ready = [&] {
        return queued_.has_value() || writer_closing_ || (!streams.empty() && idle_);
      };
      // With inserts open, wake up now and then: they close by age, or because a stream broke.
      if (streams.empty())
        writer_wake_.wait(lock, ready);
      else
        writer_wake_.wait_for(lock, spec_.flush_interval, ready);
      if (queued_) {
        batch = std::move(*queued_);
        queued_.reset();
        writing_ = held.size() + batch->messages.size();
      }
      closing = writer_closing_ && !batch;
      idle = idle_;
    }
    writer_wake_.notify_all();
    if (batch && !streaming) {
      absl::Status status = absl::CancelledError("an earlier batch was not written");
      if (!writer_failed_) {
        // Stopping: one last attempt for what is held; else retry until written or stopped.
        status = stop.stop_requested() ? flush(*batch, std::stop_token{}, true)
                                       : flush(*batch, stop, false);
        if (!status.ok() && stop.stop_requested()) status = flush(*batch, std::stop_token{}, true);
      }
      std::lock_guard lock(writer_mutex_);
      writing_ = 0;
      if (status.ok()) {
        for (auto& message : batch->messages) written_.push_back(std::move(message));
      } else {
        // Not written, so not committed; a later batch's offsets would skip it.
        writer_failed_ = true;
      }
      writer_wake_.notify_all();
      continue;
    }
    if (batch) {
      absl::Status status = absl::CancelledError("an earlier batch was not written");
      if (!writer_failed_) {
        status = stop.stop_requested()
                     ? stream_batch(*batch, streams, held, std::stop_token{}, true)
                     : stream_batch(*batch, streams, held, stop, false);
        if (!status.ok() && stop.stop_requested())
          status = stream_batch(*batch, streams, held, std::stop_token{}, true);
      }
      if (!status.ok()) {
        // Not written, so never committed, and no later batch either.
        std::lock_guard lock(writer_mutex_);
        writer_failed_ = true;
        held.clear();
        writing_ = 0;
        writer_wake_.notify_all();
        continue;
      }
      for (auto& message : batch->messages) held.push_back(std::move(message));
    }
    if (streams.empty()) {
      // Nothing for ClickHouse in these batches: their other writes are done.
      if (!held.empty()) (void)close_streams(streams, held, stop, true);
      if (closing) return;
      continue;
    }
    bool full = streams.rows() >= spec_.insert_max_rows ||
                streams.bytes() >= spec_.insert_max_bytes || streams.failed();
    bool old = std::chrono::steady_clock::now() - streams.opened_at() >= spec_.insert_max_age;
    // The consumer is drained: waiting would only delay these rows.
    if (!(full || old || idle || closing || stop.stop_requested())) continue;
    auto status = stop.stop_requested() ? close_streams(streams, held, std::stop_token{}, true)
                                        : close_streams(streams, held, stop, false);
    if (!status.ok() && stop.stop_requested())
      status = close_streams(streams, held, std::stop_token{}, true);
    if (!status.ok()) {
      std::lock_guard lock(writer_mutex_);
      writer_failed_ = true;
      held.clear();
      writing_ = 0;
      writer_wake_.notify_all();
    }
    if (closing) return;
  }
}

void Pipeline::hand_off(Batch batch) {
  std::unique_lock lock(writer_mutex_);
  writer_wake_.wait(lock, [&] { return !queued_.has_value(); });
  queued_ = std::move(batch);
  idle_ = false;
  lock.unlock();
  writer_wake_.notify_all();
}

std::vector<Message> Pipeline::take_written() {
  std::lock_guard lock(writer_mutex_);
  return std::exchange(written_, {});
}

size_t Pipeline::in_writer() const {
  std::lock_guard lock(writer_mutex_);
  return writing_ + (queued_ ? queued_->messages.size() : 0) + written_.size();
}

void Pipeline::run_stream(std::stop_token stop) {
  const auto& o = environment_->options;
  stream::StreamConfig config = o.stream;
  if (spec_.consumer == "kafka") {
    config.transport = "kafka://" + o.kafka_bootstrap_servers;
    config.security_protocol = o.kafka_security_protocol;
    if (o.kafka_security_protocol.find("ssl") != std::string::npos) {
      config.ssl_ca_location = o.kafka_ssl_ca_location;
      config.ssl_certificate_location = o.kafka_ssl_certificate_location;
      config.ssl_key_location = o.kafka_ssl_key_location;
      config.ssl_key_password = o.kafka_ssl_key_password;
      config.ssl_endpoint_identification_algorithm = o.kafka_ssl_endpoint_identification_algorithm;
    }
    config.sasl_mechanism = o.kafka_sasl_mechanism;
    config.sasl_username = o.kafka_sasl_username;
    config.sasl_password = o.kafka_sasl_password;
    config.session_timeout_ms = o.kafka_session_timeout_ms;
    config.heartbeat_interval_ms = o.kafka_heartbeat_interval_ms;
    config.max_poll_interval_ms = o.kafka_max_poll_interval_ms;
    config.fetch_min_bytes = o.kafka_fetch_min_bytes;
    config.fetch_max_bytes = o.kafka_fetch_max_bytes;
  }
  config.client_id = str_cat("telekern-etl-", spec_.name);
  stream_config_ = config;
  if (spec_.consumer == "kafka") {
    // A fetch that finds nothing waits at the broker at most a flush interval
    // (librdkafka's default is 500 ms): a broker that does not answer it as
    // soon as records arrive (librdkafka's mock cluster) then delays a burst
    // by no more than a poll would. A fetch.wait.max.ms in
    // stream.kafka.properties wins.
    bool given = false;
    for (const auto& [name, value] : config.extra_properties)
      given = given || name == "fetch.wait.max.ms";
    if (!given)
      config.extra_properties.emplace_back(
          "fetch.wait.max.ms",
          std::to_string(std::clamp<int64_t>(spec_.flush_interval.count(), 1, 500)));
  }
  stream::ConsumerOptions consumer_options{
      spec_.group,
      {spec_.topic},
      spec_.start == "earliest" ? stream::StartFrom::kEarliest : stream::StartFrom::kLatest};
  std::unique_ptr<stream::Consumer> consumer;
  Backoff connect_backoff(BackoffPolicy{});
  for (int attempt = 1; !stop.stop_requested() && !consumer; ++attempt) {
    auto made = stream::make_consumer(config, consumer_options);
    if (made.ok()) {
      consumer = std::move(*made);
      break;
    }
    set_state(PipelineState::kRetrying);
    fail("consumer_failed", made.status());
    if (!sleep_for(stop, connect_backoff.delay(attempt))) return;
  }
  if (!consumer) return;
  // Rows are encoded for the server's types: learn its version first.
  for (int attempt = 1; spec_.type == PipelineType::kClickHouse && !stop.stop_requested();
       ++attempt) {
    auto profile = clickhouse_->profile();
    if (profile.ok()) {
      context_.profile = *profile;
      break;
    }
    set_state(PipelineState::kRetrying);
    fail("clickhouse_unavailable", profile.status());
    if (!sleep_for(stop, connect_backoff.delay(attempt))) return;
  }
  set_state(PipelineState::kRunning);

  const bool streaming = spec_.type == PipelineType::kClickHouse && spec_.insert_max_rows > 0;
  auto batch_started = std::chrono::steady_clock::now();
  auto last_commit = std::chrono::steady_clock::now();
  Backoff poll_backoff(BackoffPolicy{});
  int poll_failures = 0;
  auto commit_written = [&](bool force) {
    if (messages_.empty() || !o.kafka_enable_auto_commit) {
      if (!o.kafka_enable_auto_commit) messages_.clear();
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_commit < std::chrono::milliseconds(o.kafka_auto_commit_interval_ms) &&
        messages_.size() < spec_.batch_size * 10)
      return;
    std::vector<stream::Record> records;
    records.reserve(messages_.size());
    for (const auto& message : messages_) {
      stream::Record record;
      record.topic = message.topic;
      record.partition = message.partition;
      record.offset = message.offset;
      records.push_back(std::move(record));
    }
    auto status = consumer->commit(records);
    if (!status.ok()) {
      // Not committed: these messages come again (at-least-once); the rows are written.
      fail("commit_failed", status);
      return;
    }
    if (offset_metric_) {
      std::map<std::pair<std::string, int32_t>, int64_t> last;
      for (const auto& message : messages_) {
        auto& offset = last[{message.topic, message.partition}];
        offset = std::max(offset, message.offset);
      }
      for (const auto& [partition, offset] : last)
        offset_metric_->with({spec_.name, partition.first, std::to_string(partition.second)})
            .set(static_cast<double>(offset));
    }
    messages_.clear();
    last_commit = now;
  };
  Batch batch;  // being built: consumed messages and their rows
  // Messages of the batch being built, by partition: counted as they come
  // (walking the batch on every poll made building a big batch quadratic).
  std::map<std::pair<std::string, int32_t>, uint64_t> building;
  auto update_pending = [&] {
    std::lock_guard lock(mutex_);
    counters_.pending = batch.messages.size() + in_writer() + messages_.size();
    counters_.pending_by_partition.clear();
    for (const auto& [partition, count] : building)
      if (count > 0 && !batch.messages.empty())
        counters_.pending_by_partition[str_cat(partition.first, "/", partition.second)] = count;
    if (pending_metric_)
      pending_metric_->with({spec_.name}).set(static_cast<double>(counters_.pending));
  };
  auto collect_written = [&] {
    for (auto& message : take_written()) messages_.push_back(std::move(message));
  };
  {
    std::lock_guard lock(writer_mutex_);
    writer_closing_ = false;
    writer_failed_ = false;
  }
  std::jthread writer([this, stop](std::stop_token) { run_writer(stop); });
  // Builds half of a large poll's messages while this thread builds the other.
  WorkQueue build_helpers(kBuildLanes - 1, kBuildLanes - 1);
  // Lag asks the cluster (a round trip per partition): its own thread, so
  // consumption never waits on it. Joined before the consumer goes.
  std::jthread lag_watch([this, &consumer](std::stop_token lag_stop) {
    while (!lag_stop.stop_requested()) {
      update_lag(*consumer);
      if (!sleep_for(lag_stop, std::chrono::seconds(1))) break;
    }
  });

  while (!stop.stop_requested()) {
    size_t held = batch.messages.size();
    size_t room = spec_.batch_size > held ? spec_.batch_size - held : 1;
    auto wait = spec_.flush_interval;
    if (held == 0 && streaming) {
      // The writer holds an open insert and no batch is being built: a short
      // poll tells whether the consumer is drained, so the insert ends
      // without waiting out a whole flush interval.
      std::lock_guard lock(writer_mutex_);
      if (writing_ > 0 || queued_) wait = std::min(wait, kDrainCheck);
    }
    auto records = consumer->poll(std::min<size_t>(room, 10000), wait);
    if (!records.ok()) {
      fail("consume_failed", records.status());
      set_state(PipelineState::kRetrying);
      if (!sleep_for(stop, poll_backoff.delay(++poll_failures))) break;
      continue;
    }
    if (poll_failures > 0) {
      poll_failures = 0;
      set_state(PipelineState::kRunning);
    }
    if (!records->empty() && batch.messages.empty()) {
      batch_started = std::chrono::steady_clock::now();
      for (auto& [partition, count] : building) count = 0;
    }
    std::vector<Message> polled;
    polled.reserve(records->size());
    for (auto& record : *records) {
      auto counted = building.find({record.topic, record.partition});
      if (counted == building.end())
        building.emplace(std::make_pair(record.topic, record.partition), 1);
      else
        ++counted->second;
      polled.push_back(Message{std::move(record.topic), record.partition, record.offset,
                               std::move(record.key), std::move(record.value), record.timestamp});
    }
    process_all(polled, batch, &build_helpers);
    for (auto& message : polled) {
      message.value = std::string();
      message.key = std::string();
      batch.messages.push_back(std::move(message));
    }
    fold_tally();
    bool full = batch.rows.size() >= spec_.batch_size || batch.messages.size() >= spec_.batch_size;
    bool due = !batch.messages.empty() &&
               std::chrono::steady_clock::now() - batch_started >= spec_.batch_timeout;
    if (full || due) hand_off(std::exchange(batch, Batch{}));
    {
      // Drained for now: the writer ends its open inserts instead of waiting for more.
      std::lock_guard lock(writer_mutex_);
      idle_ = records->empty() && batch.messages.empty();
    }
    writer_wake_.notify_all();
    collect_written();
    commit_written(false);
    update_pending();
  }
  // Stopping: the writer makes one last attempt for what it holds and this
  // batch; only what was written is committed.
  if (!batch.messages.empty()) hand_off(std::exchange(batch, Batch{}));
  {
    std::lock_guard lock(writer_mutex_);
    writer_closing_ = true;
  }
  writer_wake_.notify_all();
  writer.join();
  collect_written();
  commit_written(true);
  update_pending();
  lag_watch.request_stop();
  lag_watch.join();
  update_lag(*consumer);
}

void Pipeline::run_metadata_export(std::stop_token stop) {
  const auto& o = environment_->options;
  InterfaceMetadataRows builder(o.clickhouse_if_metadata_table);
  std::vector<std::string> prefixes =
      spec_.tables.empty() ? split_list(o.redis_consumer_tables) : spec_.tables;
  if (prefixes.empty()) prefixes = {o.redis_if_metadata_table};
  Backoff backoff(BackoffPolicy{});
  int failures = 0;
  while (!stop.stop_requested()) {
    auto run = [&]() -> absl::Status {
      auto profile = clickhouse_->profile();
      if (!profile.ok()) return profile.status();
      context_.profile = *profile;
      if (auto status = clickhouse_->ensure_table(*builder.schema()); !status.ok()) return status;
      std::set<std::string> existing;
      if (!o.clickhouse_metadata_force_update) {
        auto body = clickhouse_->query(
            str_cat("SELECT DISTINCT ref FROM `", builder.schema()->name, "` FORMAT TabSeparated"));
        if (!body.ok()) return body.status();
        size_t at = 0;
        while (at < body->size()) {
          size_t end = body->find('\n', at);
          if (end == std::string::npos) end = body->size();
          if (end > at) existing.insert(body->substr(at, end - at));
          at = end + 1;
        }
      }
      std::vector<Row> rows;
      for (const auto& prefix : prefixes) {
        auto keys = redis_->scan(prefix + ":*");
        if (!keys.ok()) return keys.status();
        for (const auto& key : *keys) {
          auto fields = redis_->hgetall(key);
          if (!fields.ok()) return fields.status();
          if (fields->empty()) continue;
          std::string json = "{";
          std::string content;
          for (const auto& [field, value] : *fields) {
            if (json.size() > 1) json += ',';
            append_json_string(json, field);
            json += ':';
            append_json_string(json, value);
            str_append(content, field, "=", value, "\n");
          }
          json += '}';
          std::string id = fields->count("id") ? fields->at("id") : key.substr(prefix.size() + 1);
          char hash[17];
          std::snprintf(hash, sizeof hash, "%016llx",
                        static_cast<unsigned long long>(fnv1a(content)));
          std::string ref = str_cat(id, "__", hash);
          if (existing.count(ref)) continue;
          auto parsed = parser_.parse(json);
          if (parsed.error()) continue;
          Message message;
          message.topic = "redis:" + key;
          size_t before = rows.size();
          auto built = builder.build(parsed.value_unsafe(), message, context_, rows);
          if (!built.ok()) {
            rows.resize(before);
            fail("build_failed", built);
            continue;
          }
          builder.add(rows.back(), "ref", ref);
          builder.add(rows.back(), "hash", hash);
          {
            std::lock_guard lock(mutex_);
            ++counters_.messages;
            ++counters_.messages_by_processor["InterfaceMetadataProcessor"];
          }
        }
      }
      if (rows.empty()) return absl::OkStatus();
      std::vector<const Row*> pointers;
      for (const auto& row : rows) pointers.push_back(&row);
      if (auto status = write_clickhouse(builder.schema()->name, pointers); !status.ok())
        return status;
      std::lock_guard lock(mutex_);
      counters_.rows_written += rows.size();
      counters_.rows_by_table[builder.schema()->name] += rows.size();
      ++counters_.batches;
      if (rows_metric_)
        rows_metric_->with({spec_.name, builder.schema()->name})
            .inc(static_cast<double>(rows.size()));
      return absl::OkStatus();
    };
    auto status = run();
    if (!status.ok()) {
      set_state(PipelineState::kRetrying);
      fail("export_failed", status);
      if (!sleep_for(stop, backoff.delay(++failures))) break;
      continue;
    }
    failures = 0;
    set_state(PipelineState::kRunning);
    if (spec_.interval.count() < 0) {
      // Once: done; idle until stopped.
      sleep_for(stop, std::chrono::hours(24 * 365));
      break;
    }
    if (!sleep_for(stop, spec_.interval)) break;
  }
}

void Pipeline::run_metadata_import(std::stop_token stop) {
  const auto& o = environment_->options;
  std::vector<std::string> tables =
      spec_.tables.empty() ? split_list(o.clickhouse_consumer_tables) : spec_.tables;
  if (tables.empty()) tables = {o.clickhouse_if_metadata_table};
  Backoff backoff(BackoffPolicy{});
  int failures = 0;
  while (!stop.stop_requested()) {
    auto run = [&]() -> absl::Status {
      for (const auto& table : tables) {
        auto body = clickhouse_->query(str_cat("SELECT id, argMax(ref, insert_ts) FROM `", table,
                                               "` GROUP BY id FORMAT TabSeparated"));
        if (!body.ok()) return body.status();
        RedisHash hash{table, {}, 0};
        size_t at = 0;
        while (at < body->size()) {
          size_t end = body->find('\n', at);
          if (end == std::string::npos) end = body->size();
          std::string_view line(body->data() + at, end - at);
          size_t tab = line.find('\t');
          if (tab != std::string_view::npos)
            hash.fields.emplace_back(std::string(line.substr(0, tab)),
                                     std::string(line.substr(tab + 1)));
          at = end + 1;
        }
        if (hash.fields.empty()) continue;
        if (auto status = redis_->write_hashes({hash}); !status.ok()) return status;
        std::lock_guard lock(mutex_);
        counters_.messages += hash.fields.size();
        counters_.rows_written += hash.fields.size();
        counters_.rows_by_table[str_cat("redis:", table)] += hash.fields.size();
        ++counters_.batches;
      }
      return absl::OkStatus();
    };
    auto status = run();
    if (!status.ok()) {
      set_state(PipelineState::kRetrying);
      fail("import_failed", status);
      if (!sleep_for(stop, backoff.delay(++failures))) break;
      continue;
    }
    failures = 0;
    set_state(PipelineState::kRunning);
    if (spec_.interval.count() < 0) {
      sleep_for(stop, std::chrono::hours(24 * 365));
      break;
    }
    if (!sleep_for(stop, spec_.interval)) break;
  }
}

}  // namespace telekern::etl
