# The broker engine opened and reopened as a whole (modules/broker/broker.h):
# dead-letter history across a restart, record-size limit, missing partitions,
# and the SDK's inline step scope the produce path wakes consumers in.
telekern_add_test(telekern_broker_engine_tests LABEL unit
  SOURCES unit/broker/broker_engine_test.cc
  DEPS telekern_broker_engine telekern_test_support)

# The SDK's polled streams (EngineBinding::polled_stream) with InlineStepScope,
# over a real in-process gRPC server.
telekern_add_test(telekern_polled_stream_unit_tests LABEL unit
  SOURCES unit/sdk/polled_stream_test.cc
  DEPS telekern_sdk telekern_proto_testing telekern_test_support)

# EngineBinding::pipelined_stream: quick items on the reading gRPC thread,
# arrival order kept, over a real gRPC server.
telekern_add_test(telekern_pipelined_stream_unit_tests LABEL unit
  SOURCES unit/sdk/pipelined_stream_test.cc
  DEPS telekern_sdk telekern_test_support)
