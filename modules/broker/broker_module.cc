// Registers the broker module: its config (bound to BrokerOptions), the
// engine's lifetime and the gRPC service.
#include <signal.h>

#include <functional>
#include <optional>
#include <stop_token>

#include "broker.h"
#include "broker_service.h"
#include "telekern/configured_module.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

ConfigMap<BrokerOptions> broker_config() {
  using O = BrokerOptions;
  ConfigMap<O> map;
  map.key("default_partitions", &O::default_partitions, "4",
          "Partitions of a topic created without a count (also auto-created ones)",
          at_least<uint32_t>(1))
      .key("max_partitions", &O::max_partitions, "64",
           "Most partitions a topic may have (create, add-partitions, produce to partition p)",
           at_least<uint32_t>(1))
      .key("auto_create_topics", &O::auto_create_topics, "true",
           "Produce or consume on an unknown topic creates it")
      .key("produce_grows_partitions", &O::produce_grows_partitions, "false",
           "Producing to partition p >= the topic's count grows the topic to p+1 (else "
           "INVALID_ARGUMENT)")
      .key("inline_produce", &O::inline_produce, "true",
           "A produce that only appends to the page cache (topic exists, batch <= 256 KiB, no "
           "segment roll due, partition not busy) runs on the gRPC thread that received it, "
           "skipping the hand-off to an engine thread; false queues every produce")
      .key("segment_bytes", &O::segment_bytes, "67108864",
           "Default segment size; a full segment is sealed and a new one started",
           between<uint64_t>(1024, 1ull << 30))
      .key("retention", &O::retention, "7d",
           "Default time retention: whole segments older than this are deleted (0 keeps forever)")
      .key("retention_bytes", &O::retention_bytes, "0",
           "Default size retention per partition (0 = unlimited)")
      .key("max_record_bytes", &O::max_record_bytes, "1048576",
           "Largest record (key + value + headers) a produce may carry", at_least<uint64_t>(1))
      .key("max_in_flight", &O::max_in_flight, "2000",
           "QUEUE mode: unacked deliveries per group and partition", at_least<uint32_t>(1))
      .key("visibility_timeout", &O::visibility_timeout, "30s",
           "QUEUE mode: an unacked delivery reappears after this")
      .key("max_deliveries", &O::max_deliveries, "5",
           "QUEUE mode: deliveries before a record moves to `<topic>.dlq`", at_least<uint32_t>(1))
      .key("nack_backoff", &O::nack_backoff, "[1s, 5s, 30s]",
           "QUEUE mode: redelivery delay after the 1st, 2nd, ... nack without a delay")
      .choice("default_durability", &O::default_durability, "fsync",
              "Produce durability when a request leaves it unset: none or fsync",
              {{"none", Durability::kNone}, {"fsync", Durability::kFsync}})
      .key("worker_threads", &O::worker_threads, "4",
           "Broker threads that run produce, ack and admin work", at_least<uint32_t>(1))
      .key("max_pending_requests", &O::max_pending_requests, "2000",
           "Requests waiting for a broker thread; more are refused with RESOURCE_EXHAUSTED",
           at_least<uint32_t>(1))
      .key("index_interval_bytes", &O::index_interval_bytes, "4096",
           "Bytes of log between two sparse index entries", at_least<uint32_t>(1))
      .key("retention_check_interval", &O::retention_check_interval, "30s",
           "How often retention runs", positive_duration())
      .key("flush_interval", &O::flush_interval, "1s",
           "How often group state and NONE-durability appends are fsynced", positive_duration())
      .key("max_open_files", &O::max_open_files, "0",
           "Descriptors the broker's files may hold; idle ones close, least recently used first "
           "(0 = half the process's open-file limit)")
      .key("file_idle_timeout", &O::file_idle_timeout, "60s",
           "A file descriptor no read or write used for this long is closed (the file reopens "
           "on its next use); 0 = close only under max_open_files")
      .key("max_topics", &O::max_topics, "10000",
           "Most topics (dead-letter topics included); more are refused with RESOURCE_EXHAUSTED",
           at_least<uint32_t>(1))
      .key("max_groups", &O::max_groups, "10000",
           "Most consumer groups over all topics; more are refused with RESOURCE_EXHAUSTED",
           at_least<uint32_t>(1))
      .key("max_groups_per_topic", &O::max_groups_per_topic, "1000",
           "Most consumer groups of one topic; more are refused with RESOURCE_EXHAUSTED",
           at_least<uint32_t>(1))
      .key("min_free_disk_bytes", &O::min_free_disk_bytes, "67108864",
           "Produce and topic creation are refused (RESOURCE_EXHAUSTED) while the data "
           "directory has less free space; reads, acks and commits go on (0 = no reserve)")
      .key("min_free_disk_percent", &O::min_free_disk_percent, "0",
           "Free-space reserve as a percent of the file system; the larger reserve applies",
           between<uint32_t>(0, 99))
      .rule({"max_groups_per_topic", "max_groups"},
            [](const O& options) -> absl::Status {
              if (options.max_groups_per_topic <= options.max_groups) return absl::OkStatus();
              return absl::InvalidArgumentError(str_cat(
                  "max_groups_per_topic=", options.max_groups_per_topic, " exceeds max_groups=",
                  options.max_groups, "; raise max_groups or lower max_groups_per_topic"));
            })
      .rule({"default_partitions", "max_partitions"}, [](const O& options) -> absl::Status {
        if (options.default_partitions <= options.max_partitions) return absl::OkStatus();
        return absl::InvalidArgumentError(
            str_cat("default_partitions=", options.default_partitions, " exceeds max_partitions=",
                    options.max_partitions, "; raise max_partitions or lower it"));
      });
  return map;
}

class BrokerModule final : public ConfiguredModule<BrokerOptions> {
 public:
  BrokerModule()
      : ConfiguredModule({"broker", "1.0.0",
                          "partitioned, durable message log with consumer groups (LOG and QUEUE "
                          "mode), acks, visibility timeouts and dead letters"},
                         broker_config()) {}

  absl::Status start(ModuleContext& context, BrokerOptions options) override {
    // A file size limit (RLIMIT_FSIZE) must fail the write with EFBIG, not kill the daemon.
    ::signal(SIGXFSZ, SIG_IGN);
    auto engine = Broker::open(options, context.data_dir(), context.logger(), &context.metrics());
    if (!engine.ok()) return engine.status();
    engine_ = std::move(*engine);
    // The kernel asks for a stop before it drains calls (reload, unload,
    // shutdown): Consume streams never end by themselves, so end them at once.
    service_.serve(engine_, context.stop_token());
    return absl::OkStatus();
  }

  std::vector<ServiceBinding> services() override { return {bind_service<v1::Broker>(service_)}; }

  ModuleHealth health() const override {
    if (!engine_) return {HealthState::kNotServing, "not started"};
    if (auto reason = engine_->degraded_reason()) return {HealthState::kDegraded, *reason};
    return {};
  }

  void stop() override {
    service_.withdraw();
    if (engine_) {
      engine_->shutdown();
      engine_.reset();
    }
  }

 private:
  BrokerService service_;
  std::shared_ptr<Broker> engine_;
};

}  // namespace
}  // namespace telekern::broker

TELEKERN_MODULE(telekern::broker::BrokerModule)
