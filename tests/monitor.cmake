# The monitor module: engine unit tests (fake clock, real SQLite) and the
# integration test (telekernd with broker + monitor, a real Prometheus).
telekern_add_test(telekern_monitor_unit_tests LABEL unit
  SOURCES unit/monitor/alert_book_test.cc unit/monitor/monitor_engine_test.cc
          unit/monitor/proc_sampler_test.cc
  DEPS telekern_monitor_engine telekern_test_support)

telekern_add_library(telekern_prometheus_fixture SOURCES support/prometheus_server.cc
  INCLUDES ${PROJECT_SOURCE_DIR} DEPS telekern_test_support PkgConfig::HTTPLIB)

telekern_add_test(telekern_monitor_integration_tests LABEL integration
  SOURCES integration/monitor/monitor_test.cc
  DEPS telekern_test_support telekern_prometheus_fixture telekern_stream telekern_proto_monitor
       nlohmann_json::nlohmann_json)
add_dependencies(telekern_monitor_integration_tests telekernd telekern_broker telekern_monitor)
