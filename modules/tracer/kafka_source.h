// The kafka source: librdkafka directly, because the trace needs what
// telekern::stream does not give: watermarks per partition, offsets by
// timestamp (offsetsForTimes) and assignment of single partitions. Records
// are read by the batch scan (kafka_batch_fetch.h) when the connection
// allows it, else, and from wherever the batch scan stops, by a librdkafka
// consumer per scan group.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kafka_fetch_options.h"
#include "source.h"

struct rd_kafka_s;

namespace telekern::tracer {

struct KafkaScanState;  // kafka_source.cc

struct KafkaSourceOptions {
  std::string brokers;
  std::vector<std::pair<std::string, std::string>> properties;  // raw librdkafka settings
  KafkaFetchOptions fetch;
  std::chrono::milliseconds request_timeout{10000};
  bool read_committed = false;
};

// The librdkafka settings of a trace's consumers, in the order they are
// applied (`properties` last, so they win).
std::vector<std::pair<std::string, std::string>> consumer_settings(
    const KafkaSourceOptions& options);

class KafkaSource final : public TraceSource {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaSource>> create(KafkaSourceOptions options);
  ~KafkaSource() override;

  std::string name() const override { return "kafka"; }
  absl::StatusOr<std::vector<std::string>> list_topics() override;
  absl::StatusOr<ScanUnit> plan(const std::string& topic, const ScanLimits& limits) override;
  // All topics at once: one metadata request, then the low and high
  // watermarks (and offsets by time for max_age) of every partition in one
  // ListOffsets request per broker each.
  std::vector<absl::StatusOr<ScanUnit>> plan_topics(const std::vector<std::string>& topics,
                                                    const ScanLimits& limits) override;
  bool per_partition() const override { return true; }
  absl::Status scan(const ScanUnit& unit, const ScanLimits& limits, UnitSink& sink,
                    std::stop_token stop) override;
  // Records read by the batch scan so far; the others went through
  // librdkafka's consumer.
  uint64_t batch_scanned_records() const { return batch_scanned_.load(); }
  // One consumer, every partition of `units` assigned at once.
  absl::Status scan_together(const std::vector<ScanUnit>& units, const ScanLimits& limits,
                             const std::vector<UnitSink*>& sinks, std::stop_token stop) override;

 private:
  struct HandleDeleter {
    void operator()(rd_kafka_s* handle) const;
  };
  using Handle = std::unique_ptr<rd_kafka_s, HandleDeleter>;

  explicit KafkaSource(KafkaSourceOptions options) : options_(std::move(options)) {}
  absl::StatusOr<Handle> make_consumer();
  // A consumer from the idle pool (one per scanning thread at most).
  absl::StatusOr<Handle> take_consumer();
  void give_back(Handle consumer);
  // Offset and timestamp of the first record at or after `offset` (timestamp -1 at the end).
  absl::StatusOr<std::pair<int64_t, int64_t>> read_one(const std::string& topic, int32_t partition,
                                                       int64_t offset);
  absl::StatusOr<int64_t> search_by_time(const std::string& topic, int32_t partition, int64_t low,
                                         int64_t high, int64_t since_ms);

  // Where each partition's leader is, from the metadata plan_topics read.
  struct BrokerAddress {
    std::string host;
    int port = 0;
  };
  std::optional<BrokerAddress> leader_of(const std::string& topic, int32_t partition);
  bool can_scan_batches(const ScanLimits& limits) const;
  // Reads the scan's partitions with Fetch requests straight to their
  // leaders (kafka_batch_fetch.h) until each reaches its stop offset; a
  // partition it cannot go on with is left active, marked handed over, at
  // the offset it reached, for librdkafka's consumer.
  void scan_batches(KafkaScanState& scan, const ScanLimits& limits, std::stop_token stop);

  KafkaSourceOptions options_;
  Handle admin_;
  std::mutex metadata_mutex_;
  std::map<std::pair<std::string, int32_t>, int32_t> leaders_;  // (topic, partition) -> broker
  std::map<int32_t, BrokerAddress> brokers_;
  std::atomic<uint64_t> batch_scanned_{0};  // metadata, watermarks and offsets by time
  std::mutex mutex_;
  std::vector<Handle> idle_;
};

}  // namespace telekern::tracer
