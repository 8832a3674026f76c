# The bench module's tests (the project's own benchmarks are in tests/bench/).
telekern_add_test(telekern_bench_unit_tests LABEL unit
  SOURCES unit/bench/hdr_histogram_test.cc unit/bench/workload_test.cc
  DEPS telekern_bench_engine)
target_compile_definitions(telekern_bench_unit_tests PRIVATE
  TELEKERN_BENCH_TESTDATA="${PROJECT_SOURCE_DIR}/modules/bench/testdata")

telekern_add_test(telekern_bench_integration_tests LABEL integration
  SOURCES integration/bench/bench_test.cc
  DEPS telekern_bench_engine telekern_test_support telekern_redis_fixture telekern_nats_fixture
       telekern_kafka_mock telekern_proto_bench)
add_dependencies(telekern_bench_integration_tests telekernd telekern_broker telekern_bench)

# The bench module's own costs (histogram record, load generator ceiling); `make bench`.
add_executable(telekern_bench_module_bench EXCLUDE_FROM_ALL bench/bench_module_bench.cc)
target_link_libraries(telekern_bench_module_bench PRIVATE telekern_bench_engine)
set_target_properties(telekern_bench_module_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
telekern_warnings(telekern_bench_module_bench)
add_dependencies(telekern_benchmarks telekern_bench_module_bench)

telekern_add_test(telekern_bench_shell_tests LABEL integration
  SOURCES e2e/bench/bench_shell_test.cc
  DEPS telekern_test_support nlohmann_json::nlohmann_json)
add_dependencies(telekern_bench_shell_tests telekernd telekern_broker telekern_bench telesh)
