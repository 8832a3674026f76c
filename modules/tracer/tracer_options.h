// The tracer module's options, bound from `modules.tracer.*` (tracer_module.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kafka_fetch_options.h"
#include "telekern/kafka_security.h"

namespace telekern::tracer {

enum class SourceKind { kKafka, kBroker, kSsh, kExec };

struct TracerOptions {
  SourceKind default_source = SourceKind::kKafka;
  std::string kafka_brokers;
  std::vector<std::pair<std::string, std::string>> kafka_properties;
  // kafka.security_protocol, kafka.sasl_*, kafka.ssl_*: see kafka_security().
  std::string kafka_security_protocol;
  std::string kafka_sasl_mechanism;
  std::string kafka_sasl_username;
  std::string kafka_sasl_password;
  std::string kafka_ssl_ca_location;
  std::string kafka_ssl_certificate_location;
  std::string kafka_ssl_key_location;
  std::string kafka_ssl_key_password;
  // kafka.fetch_*: how a trace's consumers fetch (see KafkaFetchOptions).
  uint32_t kafka_fetch_max_bytes = 52428800;
  uint32_t kafka_max_partition_fetch_bytes = 8388608;
  uint32_t kafka_fetch_wait_max_ms = 10;
  uint32_t kafka_queued_max_messages_kbytes = 131072;
  bool kafka_batch_scan = true;
  std::string broker_address;  // empty: the broker module of this daemon
  std::chrono::milliseconds max_age{192LL * 3600 * 1000};
  uint32_t max_parallel = 4;
  std::chrono::milliseconds timeout{15000};
  std::chrono::milliseconds request_timeout{10000};
  std::string output_dir = "trace_output";
  uint32_t max_stored_traces = 100;
  uint64_t max_events = 1000000;
  uint32_t max_concurrent_traces = 2;
  std::chrono::milliseconds progress_interval{500};
  // ssh/exec sources: Kubernetes defaults and command templates.
  std::string kube_namespace = "default";
  std::string kafka_pod = "deployment/kafka";
  std::string kafka_container;
  std::string kafka_broker_in_cluster = "kafka:9092";
  std::string templates_list_topics;
  std::string templates_consume;
  std::string templates_offsets;
  std::string ssh_known_hosts;  // default <data_dir>/ssh/known_hosts
  std::string ssh_key_dir;      // default <data_dir>/ssh
  std::string ssh_password_env = "TELEKERN_TRACER_SSH_PASSWORD";

  KafkaFetchOptions kafka_fetch() const {
    return {.fetch_max_bytes = static_cast<int>(kafka_fetch_max_bytes),
            .max_partition_fetch_bytes = static_cast<int>(kafka_max_partition_fetch_bytes),
            .fetch_wait_max_ms = static_cast<int>(kafka_fetch_wait_max_ms),
            .queued_max_messages_kbytes = static_cast<int>(kafka_queued_max_messages_kbytes),
            .batch_scan = kafka_batch_scan};
  }

  KafkaSecurity kafka_security() const {
    return {.protocol = kafka_security_protocol,
            .sasl_mechanism = kafka_sasl_mechanism,
            .username = kafka_sasl_username,
            .password = kafka_sasl_password,
            .ca_file = kafka_ssl_ca_location,
            .cert_file = kafka_ssl_certificate_location,
            .key_file = kafka_ssl_key_location,
            .key_password = kafka_ssl_key_password};
  }
};

}  // namespace telekern::tracer
