# The monitor module: engine unit tests (fake clock, real SQLite) and the
# integration test (telekernd with broker + monitor, a real Prometheus).
telekern_add_test(telekern_monitor_unit_tests LABEL unit
  SOURCES unit/monitor/alert_book_test.cc unit/monitor/monitor_engine_test.cc
          unit/monitor/proc_sampler_test.cc unit/monitor/monitor_config_test.cc
          unit/monitor/agent_test.cc unit/monitor/sqlite_migration_test.cc
          unit/monitor/watch_hub_test.cc
  DEPS telekern_monitor_engine telekern_test_support)

telekern_add_library(telekern_prometheus_fixture SOURCES support/prometheus_server.cc
  INCLUDES ${PROJECT_SOURCE_DIR} DEPS telekern_test_support PkgConfig::HTTPLIB)

telekern_add_test(telekern_monitor_integration_tests LABEL integration
  SOURCES integration/monitor/monitor_test.cc
  DEPS telekern_test_support telekern_prometheus_fixture telekern_stream telekern_proto_monitor
       nlohmann_json::nlohmann_json)
add_dependencies(telekern_monitor_integration_tests telekernd telekern_broker telekern_monitor)

telekern_add_library(telekern_postgres_fixture SOURCES support/postgres_server.cc
  INCLUDES ${PROJECT_SOURCE_DIR} DEPS telekern_test_support)

telekern_add_test(telekern_monitor_store_tests LABEL integration
  SOURCES integration/monitor/store_test.cc integration/monitor/kafka_transport_test.cc
  DEPS telekern_monitor_engine telekern_postgres_fixture telekern_kafka_mock telekern_test_support)

telekern_add_test(telekern_monitor_shell_tests LABEL integration
  SOURCES e2e/monitor/monitor_shell_test.cc
  DEPS telekern_test_support telekern_stream telekern_proto_monitor)
add_dependencies(telekern_monitor_shell_tests telekernd telekern_broker telekern_monitor telesh)

# Module-provided users in the kernel's Login (the monitor's users).
telekern_add_test(telekern_login_provider_tests LABEL unit
  SOURCES unit/kernel/login_providers_test.cc
  DEPS telekern_kernel_core telekern_test_support)

telekern_add_test(telekern_monitor_login_tests LABEL integration
  SOURCES integration/monitor/monitor_login_test.cc
  DEPS telekern_test_support telekern_proto_monitor telekern_proto_broker telekern_proto_kernel
       nlohmann_json::nlohmann_json PkgConfig::HTTPLIB)
add_dependencies(telekern_monitor_login_tests telekernd telekern_broker telekern_monitor)
