// The etl module's options, bound from `modules.etl.*` (etl_config.cc). The
// flat keys are the seed's environment variables, lower-cased, with the same
// defaults; they configure the `default` pipeline (pipeline_type) and are the
// defaults of every pipeline under `pipelines:`.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <string>
#include <vector>

#include "telekern/config_map.h"
#include "telekern/stream.h"

namespace telekern::etl {

struct EtlOptions {
  bool debug = false;
  // ClickHouse
  std::string clickhouse_host = "localhost";
  int clickhouse_port = 8123;
  std::string clickhouse_database = "default";
  std::string clickhouse_username = "default";
  std::string clickhouse_password;
  bool clickhouse_secure = false;
  std::string clickhouse_flow_table = "flow_edge";
  std::string clickhouse_if_traffic_table = "if_traffic";
  std::string clickhouse_if_sap_queue_table = "if_sap_queue";
  std::string clickhouse_if_port_queue_table = "if_port_queue";
  std::string clickhouse_raw_kafka_table = "raw_kafka_messages";
  std::string clickhouse_if_metadata_table = "meta_if";
  std::string clickhouse_dead_letter_table = "etl_dead_letter";
  int clickhouse_batch_size = 1000;
  double clickhouse_batch_timeout = 30.0;
  double clickhouse_flush_interval = 0.1;
  std::string clickhouse_insert_format = "rowbinary";
  int clickhouse_insert_max_rows = 100000;
  int clickhouse_insert_max_bytes = 33554432;
  double clickhouse_insert_max_age = 5.0;
  std::string dead_letter_topic;
  int clickhouse_consumer_update_interval = -1;
  std::string clickhouse_consumer_tables;
  std::string clickhouse_cacher_tables;
  bool clickhouse_metadata_force_update = false;
  int clickhouse_if_port_queue_min = 1;
  int clickhouse_if_port_queue_max = 16;
  int clickhouse_if_sap_queue_min = 1;
  int clickhouse_if_sap_queue_max = 16;
  // Kafka
  std::string kafka_bootstrap_servers = "localhost:9092";
  std::string kafka_topic = "metranova_flow";
  std::string kafka_consumer_group = "ch-writer-group";
  std::string kafka_ssl_ca_location = "/app/certificates/ca-cert";
  std::string kafka_ssl_certificate_location = "/app/certificates/client-cert";
  std::string kafka_ssl_key_location = "/app/certificates/client-key";
  std::string kafka_ssl_key_password;
  std::string kafka_security_protocol;
  std::string kafka_sasl_mechanism;
  std::string kafka_sasl_username;
  std::string kafka_sasl_password;
  std::string kafka_auto_offset_reset = "latest";
  bool kafka_enable_auto_commit = true;
  int kafka_auto_commit_interval_ms = 5000;
  int kafka_session_timeout_ms = 30000;
  int kafka_heartbeat_interval_ms = 10000;
  int kafka_max_poll_interval_ms = 300000;
  int kafka_fetch_min_bytes = 1;
  int kafka_fetch_max_bytes = 52428800;
  std::string kafka_ssl_endpoint_identification_algorithm = "https";
  // Redis
  std::string redis_host = "localhost";
  int redis_port = 6379;
  int redis_db = 0;
  std::string redis_password;
  int redis_consumer_update_interval = -1;
  std::string redis_consumer_tables;
  std::string redis_if_metadata_table = "meta_if_cache";
  int redis_if_metadata_expires = 86400;
  // The seed's docker-compose settings: a pipeline named "default".
  std::string pipeline_type;
  std::string clickhouse_processors;
  std::string redis_processors;
  std::string redis_hash_processors;
  // telekern additions
  std::string consumer = "kafka";  // kafka | broker: transport of the default pipeline
  std::string unknown_fields = "skip";
  std::string pipelines_dir;
  YAML::Node pipelines;   // list of pipeline definitions
  YAML::Node processors;  // list of declarative processor definitions
  std::string json_output = "-";
  stream::StreamConfig stream;  // the embedded broker's address for consumer: broker
};

// The keys with defaults, descriptions and checks.
ConfigMap<EtlOptions> etl_config();

}  // namespace telekern::etl
