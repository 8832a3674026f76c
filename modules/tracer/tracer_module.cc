// Registers the tracer module: its config (bound to TracerOptions), the
// engine, the sources a request may choose, and telekern.tracer.v1.Tracer.
#include <fmt/format.h>

#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>

#include "broker_source.h"
#include "command_source.h"
#include "kafka_source.h"
#include "telekern/configured_module.h"
#include "telekern/strings.h"
#include "trace_engine.h"
#include "tracer_options.h"
#include "tracer_service.h"

namespace telekern::tracer {
namespace {

// "" (unset) or one of `allowed`.
FieldCheck<std::string> empty_or_one_of(std::vector<std::string> allowed) {
  return [check = one_of(allowed)](const std::string& value) {
    return value.empty() ? absl::OkStatus() : check(value);
  };
}

ConfigMap<TracerOptions> tracer_config() {
  using O = TracerOptions;
  ConfigMap<O> map;
  map.choice(
         "default_source", &O::default_source, "kafka",
         "Source of a request that names none: kafka, broker (the embedded broker), ssh or exec",
         {{"kafka", SourceKind::kKafka},
          {"broker", SourceKind::kBroker},
          {"ssh", SourceKind::kSsh},
          {"exec", SourceKind::kExec}})
      .key("kafka_brokers", &O::kafka_brokers, "",
           "Kafka bootstrap servers host:port,... (KomniTrace's --kafka-broker); a request may "
           "name its own")
      .key("kafka.properties", &O::kafka_properties, "",
           "Map of further librdkafka properties, passed through (after the typed keys)")
      .key("kafka.security_protocol", &O::kafka_security_protocol, "",
           "plaintext, ssl, sasl_plaintext or sasl_ssl (librdkafka's security.protocol); empty = "
           "plaintext",
           empty_or_one_of({"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"}))
      .key("kafka.sasl_mechanism", &O::kafka_sasl_mechanism, "",
           "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with a sasl_* protocol; empty = PLAIN)",
           empty_or_one_of({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}))
      .key("kafka.sasl_username", &O::kafka_sasl_username, "", "SASL user")
      .secret("kafka.sasl_password", &O::kafka_sasl_password, "SASL password")
      .key("kafka.ssl_ca_location", &O::kafka_ssl_ca_location, "",
           "PEM CA bundle verifying the brokers (ssl, sasl_ssl); empty = system roots")
      .key("kafka.ssl_certificate_location", &O::kafka_ssl_certificate_location, "",
           "PEM client certificate (mutual TLS)")
      .key("kafka.ssl_key_location", &O::kafka_ssl_key_location, "", "PEM client private key")
      .secret("kafka.ssl_key_password", &O::kafka_ssl_key_password,
              "Password of an encrypted client key")
      .key("kafka.fetch_max_bytes", &O::kafka_fetch_max_bytes, "52428800",
           "Most bytes one fetch response carries (librdkafka's fetch.max.bytes)",
           between<uint32_t>(1024, 2147483135))
      .key("kafka.max_partition_fetch_bytes", &O::kafka_max_partition_fetch_bytes, "8388608",
           "Most bytes per partition in one fetch (max.partition.fetch.bytes; librdkafka's "
           "default is 1 MiB, a scan wants full fetches)",
           between<uint32_t>(1, 1000000000))
      .key("kafka.fetch_wait_max_ms", &O::kafka_fetch_wait_max_ms, "10",
           "How long a broker may hold a fetch that found nothing (fetch.wait.max.ms; "
           "librdkafka's default is 500: a trace knows where each partition ends)",
           between<uint32_t>(0, 300000))
      .key("kafka.batch_scan", &O::kafka_batch_scan, "true",
           "Read record batches straight from the partition leaders (plaintext, "
           "read_uncommitted; none, gzip, lz4 or zstd batches) and match in them; false = every "
           "record through librdkafka's consumer")
      .key("kafka.queued_max_messages_kbytes", &O::kafka_queued_max_messages_kbytes, "131072",
           "KiB of fetched records a consumer may hold ahead of the scan "
           "(queued.max.messages.kbytes)",
           between<uint32_t>(1, 2097151))
      .key("broker_address", &O::broker_address, "",
           "host:port of a telekernd serving telekern.broker.v1.Broker; empty = this daemon's "
           "broker module")
      .key("max_age", &O::max_age, "192h",
           "Oldest event looked at when a request gives no max_age (--max-age; 0 = all history)")
      .key("max_parallel", &O::max_parallel, "4",
           "Consumers (kafka: each reads a balanced share of the partitions of every topic) or "
           "topics scanned at once when a request gives none (--max-parallel)",
           between<uint32_t>(1, 256))
      .key("timeout", &O::timeout, "15s",
           "Consumer inactivity timeout when a request gives none (--timeout)", positive_duration())
      .key("request_timeout", &O::request_timeout, "10s",
           "Deadline of one metadata, watermark or offset lookup", positive_duration())
      .key("output_dir", &O::output_dir, "trace_output",
           "Where outputs go (--output-dir): <output_dir>/<trace id>/; relative to the module's "
           "data dir")
      .key("max_stored_traces", &O::max_stored_traces, "100",
           "Finished traces kept for ListTraces/GetTrace (oldest removed first)",
           at_least<uint32_t>(1))
      .key("max_events", &O::max_events, "1000000",
           "Most matched events one trace keeps; more mark it incomplete", at_least<uint64_t>(1))
      .key("max_concurrent_traces", &O::max_concurrent_traces, "2",
           "Traces running at once; more are refused with RESOURCE_EXHAUSTED",
           at_least<uint32_t>(1))
      .key("progress_interval", &O::progress_interval, "500ms",
           "How often a running trace streams progress", positive_duration())
      .key("namespace", &O::kube_namespace, "default",
           "Kubernetes namespace of the ssh/exec sources (--namespace)")
      .key("kafka_pod", &O::kafka_pod, "deployment/kafka",
           "Kafka pod selector of the ssh/exec sources (--kafka-pod)")
      .key("kafka_container", &O::kafka_container, "",
           "Kafka container of the ssh/exec sources (--kafka-container)")
      .key("kafka_broker_in_cluster", &O::kafka_broker_in_cluster, "kafka:9092",
           "Broker address the in-pod Kafka tools use (KomniTrace's --kafka-broker default)")
      .key("templates.list_topics", &O::templates_list_topics, std::string(kDefaultListTopics),
           "Command listing topics (ssh/exec sources)")
      .key("templates.consume", &O::templates_consume, std::string(kDefaultConsume),
           "Command printing a topic's records, one per line, tab-separated: CreateTime:<ms>, "
           "Partition:<n>, Offset:<n>, key, value")
      .key("templates.offsets", &O::templates_offsets, std::string(kDefaultOffsets),
           "Command printing topic:partition:high_watermark lines")
      .key("ssh.known_hosts", &O::ssh_known_hosts, "",
           "known_hosts file checked for the ssh source; empty = <data_dir>/ssh/known_hosts")
      .key("ssh.key_dir", &O::ssh_key_dir, "",
           "Where ssh_setup_keys keeps generated keys; empty = <data_dir>/ssh")
      .key("ssh.password_env", &O::ssh_password_env, "TELEKERN_TRACER_SSH_PASSWORD",
           "Environment variable read for the SSH password when a request gives none");
  return map;
}

// A request's Kafka security fields as settings ("" where not given).
KafkaSecurity request_security(const v1::KafkaSecurity& request) {
  KafkaSecurity out;
  switch (request.protocol()) {
    case v1::KAFKA_SECURITY_PROTOCOL_PLAINTEXT:
      out.protocol = "plaintext";
      break;
    case v1::KAFKA_SECURITY_PROTOCOL_SSL:
      out.protocol = "ssl";
      break;
    case v1::KAFKA_SECURITY_PROTOCOL_SASL_PLAINTEXT:
      out.protocol = "sasl_plaintext";
      break;
    case v1::KAFKA_SECURITY_PROTOCOL_SASL_SSL:
      out.protocol = "sasl_ssl";
      break;
    default:
      break;
  }
  switch (request.sasl_mechanism()) {
    case v1::SASL_MECHANISM_PLAIN:
      out.sasl_mechanism = "PLAIN";
      break;
    case v1::SASL_MECHANISM_SCRAM_SHA_256:
      out.sasl_mechanism = "SCRAM-SHA-256";
      break;
    case v1::SASL_MECHANISM_SCRAM_SHA_512:
      out.sasl_mechanism = "SCRAM-SHA-512";
      break;
    default:
      break;
  }
  out.username = request.username();
  out.password = request.password();
  out.ca_file = request.ca_file();
  out.cert_file = request.cert_file();
  out.key_file = request.key_file();
  out.key_password = request.key_password();
  return out;
}

// Broker groups the tracer uses: one per running trace, reused by later
// traces (each trace resets the group's offsets), so traces do not pile up
// groups against the broker's max_groups quotas.
class GroupSlots {
 public:
  // A free slot; the engine runs at most max_concurrent_traces traces.
  uint32_t take() {
    std::lock_guard lock(mutex_);
    for (uint32_t slot = 0;; ++slot) {
      if (used_.insert(slot).second) return slot;
    }
  }
  void give_back(uint32_t slot) {
    std::lock_guard lock(mutex_);
    used_.erase(slot);
  }

 private:
  std::mutex mutex_;
  std::set<uint32_t> used_;
};

class TracerModule final : public ConfiguredModule<TracerOptions> {
 public:
  TracerModule()
      : ConfiguredModule({"tracer", "1.0.0",
                          "finds every event of one device id across the topics of a Kafka "
                          "cluster, the embedded broker or a remote Kafka over SSH; timeline, "
                          "reports and proof of coverage"},
                         tracer_config()) {}

  absl::Status start(ModuleContext& context, TracerOptions options) override {
    data_dir_ = context.data_dir();
    auto sources = [this, &context](
                       const v1::TraceDeviceRequest& request,
                       const ScanLimits& limits) -> absl::StatusOr<std::unique_ptr<TraceSource>> {
      const TracerOptions& o = engine_->options();
      SourceKind kind = o.default_source;
      switch (request.source()) {
        case v1::SOURCE_KAFKA:
          kind = SourceKind::kKafka;
          break;
        case v1::SOURCE_BROKER:
          kind = SourceKind::kBroker;
          break;
        case v1::SOURCE_SSH:
          kind = SourceKind::kSsh;
          break;
        case v1::SOURCE_EXEC:
          kind = SourceKind::kExec;
          break;
        default:
          break;
      }
      switch (kind) {
        case SourceKind::kKafka: {
          KafkaSourceOptions kafka;
          kafka.brokers =
              request.kafka_brokers().empty() ? o.kafka_brokers : request.kafka_brokers();
          auto security = kafka_security_properties(
              o.kafka_security().merged_with(request_security(request.kafka_security())));
          if (!security.ok()) return security.status();
          kafka.properties = std::move(*security);
          kafka.properties.insert(kafka.properties.end(), o.kafka_properties.begin(),
                                  o.kafka_properties.end());
          kafka.fetch = o.kafka_fetch();
          kafka.request_timeout = o.request_timeout;
          kafka.read_committed = limits.read_committed;
          auto source = KafkaSource::create(std::move(kafka));
          if (!source.ok()) return source.status();
          return std::unique_ptr<TraceSource>(std::move(*source));
        }
        case SourceKind::kBroker: {
          auto channel = o.broker_address.empty() ? context.channel("telekern.broker.v1.Broker")
                                                  : context.channel_to(o.broker_address);
          if (!channel)
            return absl::FailedPreconditionError(
                "no broker: load the broker module or set modules.tracer.broker_address");
          uint32_t slot = group_slots_->take();
          return std::unique_ptr<TraceSource>(std::make_unique<BrokerSource>(
              channel, fmt::format("telekern-tracer-{}", slot), o.request_timeout,
              [slots = group_slots_, slot] { slots->give_back(slot); }));
        }
        case SourceKind::kSsh:
        case SourceKind::kExec:
          return make_command_source(kind, request, o, data_dir_, limits);
      }
      return absl::InvalidArgumentError("unknown source");
    };
    if (options.default_source == SourceKind::kKafka && options.kafka_brokers.empty()) {
      context.logger()->info(
          "no kafka_brokers configured: kafka traces name their brokers in the request; the "
          "broker, ssh and exec sources need none");
    }
    engine_ =
        std::make_shared<TraceEngine>(std::move(options), context.data_dir(), std::move(sources),
                                      context.logger(), &context.metrics());
    service_.serve(engine_, context.stop_token());
    return absl::OkStatus();
  }

  std::vector<ServiceBinding> services() override { return {bind_service<v1::Tracer>(service_)}; }

  ModuleHealth health() const override {
    auto engine = engine_;
    // No configured kafka_brokers is a choice, not a fault: requests name
    // their brokers or use the other sources, so the module serves (and the
    // daemon's /ready stays green on embedded defaults).
    if (!engine) return {HealthState::kNotServing, "not started"};
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
  TracerService service_;
  std::shared_ptr<GroupSlots> group_slots_ = std::make_shared<GroupSlots>();
  std::shared_ptr<TraceEngine> engine_;
  std::filesystem::path data_dir_;
};

}  // namespace
}  // namespace telekern::tracer

TELEKERN_MODULE(telekern::tracer::TracerModule)
