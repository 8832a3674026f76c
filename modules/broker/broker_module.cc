// Registers the broker module: its config schema, the engine's lifetime and
// the gRPC service.
#include <signal.h>

#include <functional>
#include <optional>
#include <stop_token>

#include "broker.h"
#include "broker_service.h"
#include "telekern/config.h"
#include "telekern/module.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

absl::Status positive(const YAML::Node& node, std::string_view key) {
  if (node.as<int64_t>(0) <= 0)
    return absl::InvalidArgumentError(str_cat(key, " must be greater than 0"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::chrono::milliseconds>> parse_backoff(
    const std::vector<std::string>& steps) {
  std::vector<std::chrono::milliseconds> out;
  for (const auto& step : steps) {
    auto duration = parse_duration(trim(step));
    if (!duration.ok()) return duration.status();
    out.push_back(*duration);
  }
  return out;
}

ConfigSchema schema() {
  auto must_be_positive = [](std::string key) {
    return [key](const YAML::Node& node) { return positive(node, key); };
  };
  return {
      {"default_partitions", ConfigType::kInt, "4",
       "Partitions of a topic created without a count (also auto-created ones)",
       must_be_positive("default_partitions")},
      {"max_partitions", ConfigType::kInt, "64",
       "Most partitions a topic may have (create, add-partitions, produce to partition p)",
       must_be_positive("max_partitions")},
      {"auto_create_topics",
       ConfigType::kBool,
       "true",
       "Produce or consume on an unknown topic creates it",
       {}},
      {"produce_grows_partitions",
       ConfigType::kBool,
       "false",
       "Producing to partition p >= the topic's count grows the topic to p+1 (else "
       "INVALID_ARGUMENT)",
       {}},
      {"segment_bytes", ConfigType::kInt, "67108864",
       "Default segment size; a full segment is sealed and a new one started",
       [](const YAML::Node& node) -> absl::Status {
         auto value = node.as<int64_t>(0);
         if (value < 1024 || value > (1ll << 30))
           return absl::InvalidArgumentError("segment_bytes must be 1024..1073741824");
         return absl::OkStatus();
       }},
      {"retention",
       ConfigType::kDuration,
       "7d",
       "Default time retention: whole segments older than this are deleted (0 keeps forever)",
       {}},
      {"retention_bytes",
       ConfigType::kInt,
       "0",
       "Default size retention per partition (0 = unlimited)",
       {}},
      {"max_record_bytes", ConfigType::kInt, "1048576",
       "Largest record (key + value + headers) a produce may carry",
       must_be_positive("max_record_bytes")},
      {"max_in_flight", ConfigType::kInt, "2000",
       "QUEUE mode: unacked deliveries per group and partition", must_be_positive("max_in_flight")},
      {"visibility_timeout",
       ConfigType::kDuration,
       "30s",
       "QUEUE mode: an unacked delivery reappears after this",
       {}},
      {"max_deliveries", ConfigType::kInt, "5",
       "QUEUE mode: deliveries before a record moves to <topic>.dlq",
       must_be_positive("max_deliveries")},
      {"nack_backoff", ConfigType::kStringList, "[1s, 5s, 30s]",
       "QUEUE mode: redelivery delay after the 1st, 2nd, ... nack without a delay",
       [](const YAML::Node& node) -> absl::Status {
         std::vector<std::string> steps;
         for (const auto& item : node) steps.push_back(item.as<std::string>());
         return parse_backoff(steps).status();
       }},
      {"default_durability", ConfigType::kString, "fsync",
       "Produce durability when a request leaves it unset: none or fsync",
       [](const YAML::Node& node) -> absl::Status {
         auto value = node.as<std::string>("");
         if (value != "none" && value != "fsync") {
           return absl::InvalidArgumentError(
               str_cat("default_durability '", value, "' is not none or fsync"));
         }
         return absl::OkStatus();
       }},
      {"worker_threads", ConfigType::kInt, "4",
       "Broker threads that run produce, ack and admin work", must_be_positive("worker_threads")},
      {"max_pending_requests", ConfigType::kInt, "2000",
       "Requests waiting for a broker thread; more are refused with RESOURCE_EXHAUSTED",
       must_be_positive("max_pending_requests")},
      {"index_interval_bytes", ConfigType::kInt, "4096",
       "Bytes of log between two sparse index entries", must_be_positive("index_interval_bytes")},
      {"retention_check_interval", ConfigType::kDuration, "30s", "How often retention runs", {}},
      {"flush_interval",
       ConfigType::kDuration,
       "1s",
       "How often group state and NONE-durability appends are fsynced",
       {}},
  };
}

class BrokerModule final : public Module {
 public:
  ModuleInfo info() const override {
    return {"broker", "1.0.0",
            "partitioned, durable message log with consumer groups (LOG and QUEUE mode), acks, "
            "visibility timeouts and dead letters",
            schema()};
  }

  absl::Status start(ModuleContext& context) override {
    // A file size limit (RLIMIT_FSIZE) must fail the write with EFBIG, not kill the daemon.
    ::signal(SIGXFSZ, SIG_IGN);
    const auto& config = context.config();
    BrokerOptions options;
    options.default_partitions = static_cast<uint32_t>(config.get_int("default_partitions"));
    options.max_partitions = static_cast<uint32_t>(config.get_int("max_partitions"));
    options.auto_create_topics = config.get_bool("auto_create_topics");
    options.produce_grows_partitions = config.get_bool("produce_grows_partitions");
    options.segment_bytes = static_cast<uint64_t>(config.get_int("segment_bytes"));
    options.retention_ms = config.get_duration("retention").count();
    options.retention_bytes = static_cast<uint64_t>(config.get_int("retention_bytes"));
    options.max_record_bytes = static_cast<uint64_t>(config.get_int("max_record_bytes"));
    options.max_in_flight = static_cast<uint32_t>(config.get_int("max_in_flight"));
    options.visibility_timeout = config.get_duration("visibility_timeout");
    options.max_deliveries = static_cast<uint32_t>(config.get_int("max_deliveries"));
    auto backoff = parse_backoff(config.get_string_list("nack_backoff"));
    if (!backoff.ok()) return backoff.status();
    options.nack_backoff = *backoff;
    options.default_durability =
        config.get_string("default_durability") == "none" ? Durability::kNone : Durability::kFsync;
    options.worker_threads = static_cast<uint32_t>(config.get_int("worker_threads"));
    options.max_pending_requests = static_cast<uint32_t>(config.get_int("max_pending_requests"));
    options.index_interval_bytes = static_cast<uint32_t>(config.get_int("index_interval_bytes"));
    options.retention_check_interval = config.get_duration("retention_check_interval");
    options.flush_interval = config.get_duration("flush_interval");
    if (options.default_partitions > options.max_partitions) {
      return absl::InvalidArgumentError(
          str_cat("default_partitions=", options.default_partitions,
                  " exceeds max_partitions=", options.max_partitions));
    }
    auto engine = Broker::open(options, context.data_dir(), context.logger(), &context.metrics());
    if (!engine.ok()) return engine.status();
    engine_ = std::move(*engine);
    service_.attach(engine_);
    // The kernel asks for a stop before it drains calls (reload, unload,
    // shutdown): Consume streams never end by themselves, so end them at once
    // with UNAVAILABLE (clients reconnect and are held until the new instance
    // serves) instead of leaving them to be cut by the server's shutdown.
    stop_watch_.emplace(context.stop_token(), [this] { service_.end_streams(); });
    return absl::OkStatus();
  }

  std::vector<ServiceBinding> services() override { return {bind_service<v1::Broker>(service_)}; }

  ModuleHealth health() const override {
    if (!engine_) return {HealthState::kNotServing, "not started"};
    if (auto reason = engine_->degraded_reason()) return {HealthState::kDegraded, *reason};
    return {};
  }

  void stop() override {
    stop_watch_.reset();
    service_.detach();
    if (engine_) {
      engine_->shutdown();
      engine_.reset();
    }
  }

 private:
  BrokerService service_;
  std::shared_ptr<Broker> engine_;
  std::optional<std::stop_callback<std::function<void()>>> stop_watch_;
};

}  // namespace
}  // namespace telekern::broker

TELEKERN_MODULE(telekern::broker::BrokerModule)
