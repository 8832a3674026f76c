# etl module: processors without servers; pipelines against clickhouse-server,
# redis-server, the embedded broker (telekernd) and a Kafka mock cluster.
telekern_add_test(telekern_etl_unit_tests LABEL unit
  SOURCES unit/etl/processors_test.cc unit/etl/row_binary_test.cc unit/etl/typed_rows_test.cc
  DEPS telekern_etl_engine)

telekern_add_test(telekern_etl_integration_tests LABEL integration
  SOURCES integration/etl/etl_test.cc
  DEPS telekern_etl_engine telekern_clickhouse_fixture telekern_redis_fixture telekern_kafka_mock
       telekern_test_support telekern_proto_broker PkgConfig::HIREDIS)
add_dependencies(telekern_etl_integration_tests telekernd telekern_broker)

telekern_add_test(telekern_etl_shell_tests LABEL integration
  SOURCES e2e/etl/etl_shell_test.cc
  DEPS telekern_test_support nlohmann_json::nlohmann_json)
add_dependencies(telekern_etl_shell_tests telekernd telekern_broker telekern_etl telesh)
