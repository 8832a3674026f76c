# The tracer module's tests (modules/tracer): engine against a Kafka mock
# cluster, the daemon with the broker source, telesh commands, sshd.
telekern_add_test(telekern_tracer_integration_tests LABEL integration
  SOURCES integration/tracer/tracer_kafka_test.cc
  DEPS telekern_tracer_engine telekern_kafka_mock telekern_test_support)

telekern_add_test(telekern_tracer_daemon_tests LABEL integration
  SOURCES integration/tracer/tracer_daemon_test.cc
  DEPS telekern_sdk telekern_test_support telekern_proto_broker telekern_proto_tracer nlohmann_json::nlohmann_json)
add_dependencies(telekern_tracer_daemon_tests telekernd telekern_broker telekern_tracer telesh)

telekern_add_test(telekern_tracer_ssh_tests LABEL integration
  SOURCES integration/tracer/tracer_ssh_test.cc
  DEPS telekern_tracer_engine telekern_kafka_mock telekern_ssh_fixture telekern_test_support)
