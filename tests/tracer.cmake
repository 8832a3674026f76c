# The tracer module's tests (modules/tracer): engine against a Kafka mock
# cluster, the daemon with the broker source, telesh commands, sshd.
telekern_add_test(telekern_tracer_integration_tests LABEL integration
  SOURCES integration/tracer/tracer_kafka_test.cc
  DEPS telekern_tracer_engine telekern_kafka_mock telekern_test_support)

telekern_add_test(telekern_tracer_daemon_tests LABEL integration
  SOURCES integration/tracer/tracer_daemon_test.cc
  DEPS telekern_sdk telekern_test_support telekern_proto_broker telekern_proto_tracer nlohmann_json::nlohmann_json)
add_dependencies(telekern_tracer_daemon_tests telekernd telekern_broker telekern_tracer telesh)

# One system user (its password set by each fixture) serves every sshd of
# these tests: they take turns.
telekern_add_test(telekern_tracer_ssh_tests LABEL integration RESOURCE_LOCK telekern_ssh_test_user
  SOURCES integration/tracer/tracer_ssh_test.cc
  DEPS telekern_tracer_engine telekern_kafka_mock telekern_ssh_fixture telekern_test_support)

# make bench: the tracer vs kcat | grep on the same mock-cluster data.
add_executable(telekern_tracer_bench EXCLUDE_FROM_ALL bench/tracer_bench.cc)
target_link_libraries(telekern_tracer_bench PRIVATE telekern_tracer_engine telekern_kafka_mock telekern_test_support)
target_include_directories(telekern_tracer_bench PRIVATE ${PROJECT_SOURCE_DIR})
set_target_properties(telekern_tracer_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
telekern_warnings(telekern_tracer_bench)
add_dependencies(telekern_benchmarks telekern_tracer_bench)

telekern_add_test(telekern_tracer_unit_tests LABEL unit
  SOURCES unit/tracer/tracer_unit_test.cc
  DEPS telekern_tracer_engine)

# telesh's trace command in a terminal (tmux): a bar per topic, the SSH password prompt.
telekern_add_test(telekern_tracer_tty_tests LABEL integration
  SOURCES e2e/tracer/tracer_tty_test.cc
  DEPS telekern_test_support)
add_dependencies(telekern_tracer_tty_tests telekernd telekern_tracer telesh)

# Kafka SASL/TLS settings (sdk/kafka_security.h) as librdkafka properties.
telekern_add_test(telekern_kafka_security_unit_tests LABEL unit
  SOURCES unit/tracer/kafka_security_test.cc
  DEPS telekern_sdk telekern_test_support PkgConfig::RDKAFKA)
# The bench's mock cluster runs in a process of its own.
add_executable(telekern_kafka_mock_server EXCLUDE_FROM_ALL bench/kafka_mock_server.cc)
target_link_libraries(telekern_kafka_mock_server PRIVATE telekern_kafka_mock)
target_include_directories(telekern_kafka_mock_server PRIVATE ${PROJECT_SOURCE_DIR})
# Not in build/bench: `make bench` runs every file there.
set_target_properties(telekern_kafka_mock_server PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench-support)
telekern_warnings(telekern_kafka_mock_server)
add_dependencies(telekern_tracer_bench telekern_kafka_mock_server)
target_compile_definitions(telekern_tracer_bench PRIVATE
  TELEKERN_KAFKA_MOCK_SERVER="$<TARGET_FILE:telekern_kafka_mock_server>")

telekern_add_test(telekern_tracer_batch_scan_tests LABEL integration
  SOURCES integration/tracer/kafka_batch_scan_test.cc
  DEPS telekern_tracer_engine telekern_kafka_mock telekern_test_support)
