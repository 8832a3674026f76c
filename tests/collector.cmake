# The collector module's tests (issue 14).
telekern_add_test(telekern_collector_unit_tests LABEL unit
  SOURCES unit/collector/telemetry_point_test.cc unit/collector/csv_test.cc
          unit/collector/chunked_lines_test.cc unit/collector/replay_stamps_test.cc
  DEPS telekern_collector_engine telekern_csv)

telekern_add_test(telekern_collector_integration_tests LABEL integration
  SOURCES integration/collector/collector_test.cc integration/collector/collector_kafka_test.cc
  DEPS telekern_test_support telekern_influxdb_fixture telekern_kafka_mock nlohmann_json::nlohmann_json
       PkgConfig::HTTPLIB telekern_proto_collector)
add_dependencies(telekern_collector_integration_tests telekernd telekern_broker telekern_collector)

telekern_add_test(telekern_collector_shell_tests LABEL integration
  SOURCES e2e/collector/collector_shell_test.cc
  DEPS telekern_test_support telekern_influxdb_fixture nlohmann_json::nlohmann_json)
add_dependencies(telekern_collector_shell_tests telekernd telekern_broker telekern_collector telesh)

# The SDK pieces the collector added (HTTP writer, SQLite helper).
telekern_add_test(telekern_collector_sdk_unit_tests LABEL unit
  SOURCES unit/sdk/http_writer_test.cc unit/sdk/sqlite_test.cc
  DEPS telekern_http_writer telekern_sqlite PkgConfig::HTTPLIB)

# telekern::stream's Consumer::lag() on both transports (the collector's and
# the etl's consumer-lag metrics).
telekern_add_test(telekern_stream_lag_tests LABEL integration
  SOURCES integration/stream/stream_lag_test.cc
  DEPS telekern_stream telekern_kafka_mock telekern_test_support telekern_proto_broker)
add_dependencies(telekern_stream_lag_tests telekernd telekern_broker)

# The SDK's client-stream helper (EngineBinding::client_stream).
telekern_add_test(telekern_client_stream_unit_tests LABEL unit
  SOURCES unit/sdk/client_stream_test.cc
  DEPS telekern_sdk telekern_proto_testing telekern_test_support)
