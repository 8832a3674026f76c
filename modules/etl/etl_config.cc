#include "etl_options.h"
#include "telekern/strings.h"

namespace telekern::etl {

ConfigMap<EtlOptions> etl_config() {
  using O = EtlOptions;
  ConfigMap<O> m;
  m.key("debug", &O::debug, "false", "Enable debug logging (DEBUG)")
      .key("clickhouse_host", &O::clickhouse_host, "localhost",
           "ClickHouse server hostname (CLICKHOUSE_HOST)")
      .key("clickhouse_port", &O::clickhouse_port, "8123", "ClickHouse HTTP port (CLICKHOUSE_PORT)",
           between(1, 65535))
      .key("clickhouse_database", &O::clickhouse_database, "default",
           "ClickHouse database name (CLICKHOUSE_DATABASE)")
      .key("clickhouse_username", &O::clickhouse_username, "default",
           "ClickHouse username (CLICKHOUSE_USERNAME)")
      .secret("clickhouse_password", &O::clickhouse_password,
              "ClickHouse password (CLICKHOUSE_PASSWORD)")
      .key("clickhouse_secure", &O::clickhouse_secure, "false",
           "Use HTTPS to ClickHouse (CLICKHOUSE_SECURE)")
      .key("clickhouse_flow_table", &O::clickhouse_flow_table, "flow_edge",
           "Flow data table (CLICKHOUSE_FLOW_TABLE)")
      .key("clickhouse_if_traffic_table", &O::clickhouse_if_traffic_table, "if_traffic",
           "Interface traffic table (CLICKHOUSE_IF_TRAFFIC_TABLE)")
      .key("clickhouse_if_sap_queue_table", &O::clickhouse_if_sap_queue_table, "if_sap_queue",
           "SAP queue table (CLICKHOUSE_IF_SAP_QUEUE_TABLE)")
      .key("clickhouse_if_port_queue_table", &O::clickhouse_if_port_queue_table, "if_port_queue",
           "Port queue table (CLICKHOUSE_IF_PORT_QUEUE_TABLE)")
      .key("clickhouse_raw_kafka_table", &O::clickhouse_raw_kafka_table, "raw_kafka_messages",
           "Raw Kafka messages table (CLICKHOUSE_RAW_KAFKA_TABLE)")
      .key("clickhouse_if_metadata_table", &O::clickhouse_if_metadata_table, "meta_if",
           "Interface metadata table (CLICKHOUSE_IF_METADATA_TABLE)")
      .key("clickhouse_dead_letter_table", &O::clickhouse_dead_letter_table, "etl_dead_letter",
           "Rejected and unmatched messages with the reason")
      .key("clickhouse_batch_size", &O::clickhouse_batch_size, "1000",
           "Rows per batch, the unit handed to the writer and committed; rows per insert when "
           "clickhouse_insert_max_rows is 0 (CLICKHOUSE_BATCH_SIZE)",
           at_least(1))
      .key("clickhouse_batch_timeout", &O::clickhouse_batch_timeout, "30.0",
           "Seconds before a partial batch is written (CLICKHOUSE_BATCH_TIMEOUT)", at_least(0.001))
      .key("clickhouse_flush_interval", &O::clickhouse_flush_interval, "0.1",
           "Seconds between flush checks: the consumer's poll wait (CLICKHOUSE_FLUSH_INTERVAL)",
           at_least(0.001))
      .key("clickhouse_insert_format", &O::clickhouse_insert_format, "rowbinary",
           "Insert format: rowbinary (smaller, no JSON parsing on the server) | jsoneachrow; a "
           "table with a type RowBinary cannot carry uses JSONEachRow",
           one_of({"rowbinary", "jsoneachrow"}))
      .key("clickhouse_insert_max_rows", &O::clickhouse_insert_max_rows, "100000",
           "Most rows one streamed INSERT carries over several batches; 0 = one plain INSERT "
           "per batch",
           at_least(0))
      .key("clickhouse_insert_max_bytes", &O::clickhouse_insert_max_bytes, "33554432",
           "Most body bytes one streamed INSERT carries (kept until the server accepts them)",
           at_least(1))
      .key("clickhouse_insert_max_age", &O::clickhouse_insert_max_age, "5.0",
           "Seconds a streamed INSERT stays open at most; it also ends as soon as the consumer "
           "has nothing more",
           at_least(0.001))
      .key("clickhouse_consumer_update_interval", &O::clickhouse_consumer_update_interval, "-1",
           "Seconds between metadata_import runs; -1 = once (CLICKHOUSE_CONSUMER_UPDATE_INTERVAL)")
      .key("clickhouse_consumer_tables", &O::clickhouse_consumer_tables, "",
           "Comma-separated tables metadata_import reads; empty = the interface metadata table "
           "(CLICKHOUSE_CONSUMER_TABLES)")
      .key("clickhouse_cacher_tables", &O::clickhouse_cacher_tables, "",
           "Comma-separated ClickHouse tables cached locally for ref lookups "
           "(CLICKHOUSE_CACHER_TABLES)")
      .key("clickhouse_metadata_force_update", &O::clickhouse_metadata_force_update, "false",
           "metadata_export writes every hash, even unchanged ones "
           "(CLICKHOUSE_METADATA_FORCE_UPDATE)")
      .key("clickhouse_if_port_queue_min", &O::clickhouse_if_port_queue_min, "1",
           "Lowest port queue number (CLICKHOUSE_IF_PORT_QUEUE_MIN)", between(0, 255))
      .key("clickhouse_if_port_queue_max", &O::clickhouse_if_port_queue_max, "16",
           "Highest port queue number (CLICKHOUSE_IF_PORT_QUEUE_MAX)", between(0, 255))
      .key("clickhouse_if_sap_queue_min", &O::clickhouse_if_sap_queue_min, "1",
           "Lowest SAP queue number (CLICKHOUSE_IF_SAP_QUEUE_MIN)", between(0, 255))
      .key("clickhouse_if_sap_queue_max", &O::clickhouse_if_sap_queue_max, "16",
           "Highest SAP queue number (CLICKHOUSE_IF_SAP_QUEUE_MAX)", between(0, 255))
      .key("kafka_bootstrap_servers", &O::kafka_bootstrap_servers, "localhost:9092",
           "Kafka broker addresses (KAFKA_BOOTSTRAP_SERVERS)")
      .key("kafka_topic", &O::kafka_topic, "metranova_flow", "Topic to consume (KAFKA_TOPIC)")
      .key("kafka_consumer_group", &O::kafka_consumer_group, "ch-writer-group",
           "Consumer group (KAFKA_CONSUMER_GROUP)")
      .key("kafka_ssl_ca_location", &O::kafka_ssl_ca_location, "/app/certificates/ca-cert",
           "CA certificate, used with an ssl security protocol (KAFKA_SSL_CA_LOCATION)")
      .key("kafka_ssl_certificate_location", &O::kafka_ssl_certificate_location,
           "/app/certificates/client-cert", "Client certificate (KAFKA_SSL_CERTIFICATE_LOCATION)")
      .key("kafka_ssl_key_location", &O::kafka_ssl_key_location, "/app/certificates/client-key",
           "Client key (KAFKA_SSL_KEY_LOCATION)")
      .secret("kafka_ssl_key_password", &O::kafka_ssl_key_password,
              "Client key password (KAFKA_SSL_KEY_PASSWORD)")
      .key("kafka_security_protocol", &O::kafka_security_protocol, "",
           "plaintext | ssl | sasl_plaintext | sasl_ssl (empty = plaintext)")
      .key("kafka_sasl_mechanism", &O::kafka_sasl_mechanism, "",
           "PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512")
      .key("kafka_sasl_username", &O::kafka_sasl_username, "", "SASL username")
      .secret("kafka_sasl_password", &O::kafka_sasl_password, "SASL password")
      .key("kafka_auto_offset_reset", &O::kafka_auto_offset_reset, "latest",
           "Where a group without offsets starts: earliest | latest (KAFKA_AUTO_OFFSET_RESET)",
           one_of({"earliest", "latest"}))
      .key("kafka_enable_auto_commit", &O::kafka_enable_auto_commit, "true",
           "Commit offsets (always only after every writer of the batch succeeded); false = never "
           "commit (KAFKA_ENABLE_AUTO_COMMIT)")
      .key("kafka_auto_commit_interval_ms", &O::kafka_auto_commit_interval_ms, "5000",
           "Longest time written offsets wait to be committed (KAFKA_AUTO_COMMIT_INTERVAL_MS)",
           at_least(0))
      .key("kafka_session_timeout_ms", &O::kafka_session_timeout_ms, "30000",
           "Group session timeout (KAFKA_SESSION_TIMEOUT_MS)", at_least(1))
      .key("kafka_heartbeat_interval_ms", &O::kafka_heartbeat_interval_ms, "10000",
           "Heartbeat interval (KAFKA_HEARTBEAT_INTERVAL_MS)", at_least(1))
      .key("kafka_max_poll_interval_ms", &O::kafka_max_poll_interval_ms, "300000",
           "Max poll interval (KAFKA_MAX_POLL_INTERVAL_MS)", at_least(1))
      .key("kafka_fetch_min_bytes", &O::kafka_fetch_min_bytes, "1",
           "Minimum fetch bytes (KAFKA_FETCH_MIN_BYTES)", at_least(1))
      .key("kafka_fetch_max_bytes", &O::kafka_fetch_max_bytes, "52428800",
           "Maximum fetch bytes (KAFKA_FETCH_MAX_BYTES)", at_least(1))
      .key("kafka_ssl_endpoint_identification_algorithm",
           &O::kafka_ssl_endpoint_identification_algorithm, "https",
           "SSL endpoint verification: https | none (KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM)")
      .key("redis_host", &O::redis_host, "localhost", "Redis hostname (REDIS_HOST)")
      .key("redis_port", &O::redis_port, "6379", "Redis port (REDIS_PORT)", between(1, 65535))
      .key("redis_db", &O::redis_db, "0", "Redis database number (REDIS_DB)", at_least(0))
      .secret("redis_password", &O::redis_password, "Redis password (REDIS_PASSWORD)")
      .key("redis_consumer_update_interval", &O::redis_consumer_update_interval, "-1",
           "Seconds between metadata_export runs; -1 = once (REDIS_CONSUMER_UPDATE_INTERVAL)")
      .key("redis_consumer_tables", &O::redis_consumer_tables, "",
           "Comma-separated hash prefixes metadata_export reads; empty = redis_if_metadata_table "
           "(REDIS_CONSUMER_TABLES)")
      .key("redis_if_metadata_table", &O::redis_if_metadata_table, "meta_if_cache",
           "Interface metadata hash prefix (REDIS_IF_METADATA_TABLE)")
      .key("redis_if_metadata_expires", &O::redis_if_metadata_expires, "86400",
           "Interface metadata expiry in seconds (REDIS_IF_METADATA_EXPIRES)", at_least(0))
      .key("pipeline_type", &O::pipeline_type, "",
           "Type of the `default` pipeline: clickhouse | metadata_import | metadata_export | json; "
           "empty = none (PIPELINE_TYPE)",
           one_of({"", "clickhouse", "metadata_import", "metadata_export", "json"}))
      .key("clickhouse_processors", &O::clickhouse_processors, "",
           "Comma-separated ClickHouse processors of the default pipeline (CLICKHOUSE_PROCESSORS)")
      .key("redis_processors", &O::redis_processors, "",
           "Comma-separated Redis processors of the default pipeline (REDIS_PROCESSORS)")
      .key("redis_hash_processors", &O::redis_hash_processors, "",
           "Comma-separated Redis hash processors of the default pipeline (REDIS_HASH_PROCESSORS)")
      .key("consumer", &O::consumer, "kafka",
           "Transport of the default pipeline: kafka (kafka_bootstrap_servers) or broker "
           "(stream.transport)",
           one_of({"kafka", "broker"}))
      .key("unknown_fields", &O::unknown_fields, "skip",
           "Unknown input fields and unconvertible values: strict (reject to the dead-letter "
           "table) | skip (drop, count) | default (column default)",
           one_of({"strict", "skip", "default"}))
      .key("dead_letter_topic", &O::dead_letter_topic, "",
           "Topic for records that fail parsing or building (original key and payload; reason "
           "in headers), on the consumer's transport; empty = the dead-letter table")
      .key("pipelines_dir", &O::pipelines_dir, "",
           "Directory of pipeline definitions, one YAML file each")
      .key("pipelines", &O::pipelines, "[]", "Pipeline definitions (see README)")
      .key("processors", &O::processors, "[]",
           "Declarative processors defined in YAML (see README)")
      .key("json_output", &O::json_output, "-",
           "Where json pipelines write rows: a file path, or - for the log")
      .nest("stream.", &O::stream, stream::stream_config_map())
      .rule({"clickhouse_if_port_queue_min", "clickhouse_if_port_queue_max"},
            [](const O& o) -> absl::Status {
              if (o.clickhouse_if_port_queue_min <= o.clickhouse_if_port_queue_max)
                return absl::OkStatus();
              return absl::InvalidArgumentError(
                  "clickhouse_if_port_queue_min exceeds clickhouse_if_port_queue_max");
            })
      .rule({"clickhouse_if_sap_queue_min", "clickhouse_if_sap_queue_max"},
            [](const O& o) -> absl::Status {
              if (o.clickhouse_if_sap_queue_min <= o.clickhouse_if_sap_queue_max)
                return absl::OkStatus();
              return absl::InvalidArgumentError(
                  "clickhouse_if_sap_queue_min exceeds clickhouse_if_sap_queue_max");
            })
      .rule({"pipelines"}, [](const O& o) -> absl::Status {
        if (!o.pipelines || o.pipelines.IsNull()) return absl::OkStatus();
        if (!o.pipelines.IsSequence())
          return absl::InvalidArgumentError("pipelines must be a list of definitions");
        for (const auto& p : o.pipelines) {
          if (!p.IsMap() || !p["name"] || !p["type"])
            return absl::InvalidArgumentError(
                "every pipeline needs a name and a type (clickhouse, metadata_import, "
                "metadata_export, json)");
          std::string type = p["type"].as<std::string>();
          if (type != "clickhouse" && type != "metadata_import" && type != "metadata_export" &&
              type != "json")
            return absl::InvalidArgumentError(
                str_cat("pipeline ", p["name"].as<std::string>(), ": unknown type '", type,
                        "'; use clickhouse, metadata_import, metadata_export or json"));
        }
        return absl::OkStatus();
      });
  return m;
}

}  // namespace telekern::etl
