# The tracer module's tests (modules/tracer): engine against a Kafka mock
# cluster, the daemon with the broker source, telesh commands, sshd.
telekern_add_test(telekern_tracer_integration_tests LABEL integration
  SOURCES integration/tracer/tracer_kafka_test.cc
  DEPS telekern_tracer_engine telekern_kafka_mock telekern_test_support)
