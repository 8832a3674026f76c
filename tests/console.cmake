# The web console (web/): frontend unit tests (vitest), a check that the
# built bundle names no external URL, and end-to-end tests in Debian's
# chromium (playwright-core) against a real telekernd serving the bundle.
# Screenshots go to build/test-artifacts/console.
telekern_add_test(telekern_console_files_tests LABEL unit
  SOURCES unit/console/console_files_test.cc
  DEPS telekern_kernel_core telekern_test_support)
# The kernel's report tickets (how a new tab opens a module's HTML report).
telekern_add_test(telekern_console_report_tickets_tests LABEL unit
  SOURCES unit/console/report_tickets_test.cc
  DEPS telekern_kernel_core)

set(TELEKERN_CONSOLE_ARTIFACTS ${PROJECT_BINARY_DIR}/test-artifacts/console)
set(telekern_vitest ${TELEKERN_WEB_SOURCE}/node_modules/vitest/vitest.mjs)

add_test(NAME telekern_console_unit_tests
  COMMAND ${NODE_EXECUTABLE} ${telekern_vitest} run --reporter=dot
  WORKING_DIRECTORY ${TELEKERN_WEB_SOURCE})
set_tests_properties(telekern_console_unit_tests PROPERTIES LABELS unit TIMEOUT 120)

# Types of the sources and tests (vitest and Vite strip them unchecked).
add_test(NAME telekern_console_typecheck
  COMMAND ${NODE_EXECUTABLE} ${TELEKERN_WEB_SOURCE}/node_modules/typescript/bin/tsc --noEmit
          -p ${TELEKERN_WEB_SOURCE})
set_tests_properties(telekern_console_typecheck PROPERTIES LABELS unit TIMEOUT 120)

add_test(NAME telekern_console_bundle_test
  COMMAND ${NODE_EXECUTABLE} ${TELEKERN_WEB_SOURCE}/tests/bundle/check_bundle.mjs ${TELEKERN_WEB_OUT})
set_tests_properties(telekern_console_bundle_test PROPERTIES LABELS unit TIMEOUT 60)

find_program(TELEKERN_CHROMIUM NAMES chromium chromium-browser)
add_test(NAME telekern_console_e2e_tests
  COMMAND ${CMAKE_COMMAND} -E env
          TELEKERND=$<TARGET_FILE:telekernd>
          TELEKERN_MODULES_DIR=${PROJECT_BINARY_DIR}/modules
          TELEKERN_WEB_DIR=${TELEKERN_WEB_OUT}
          TELEKERN_CHROMIUM=${TELEKERN_CHROMIUM}
          TELEKERN_ARTIFACTS=${TELEKERN_CONSOLE_ARTIFACTS}
          ${NODE_EXECUTABLE} ${telekern_vitest} run --config vitest.e2e.config.ts --reporter=verbose
  WORKING_DIRECTORY ${TELEKERN_WEB_SOURCE})
set_tests_properties(telekern_console_e2e_tests PROPERTIES LABELS integration TIMEOUT 300
  RUN_SERIAL FALSE)

# `make bench` runs every file of build/bench: the console's load budget
# (web/tests/bench) as a script there.
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/bench/telekern_console_bench
  CONTENT "#!/bin/sh
# The web console's load budget: compressed JavaScript and time to the first chart.
cd '${TELEKERN_WEB_SOURCE}' && exec env \\
  TELEKERND='$<TARGET_FILE:telekernd>' TELEKERN_MODULES_DIR='${PROJECT_BINARY_DIR}/modules' \\
  TELEKERN_WEB_DIR='${TELEKERN_WEB_OUT}' TELEKERN_CHROMIUM='${TELEKERN_CHROMIUM}' \\
  TELEKERN_ARTIFACTS='${PROJECT_BINARY_DIR}/bench-artifacts/console' \\
  '${NODE_EXECUTABLE}' '${telekern_vitest}' run --config vitest.bench.config.ts \"$@\"
"
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
add_dependencies(telekern_benchmarks telekern_web telekernd telekern_broker)
if(TARGET telekern_monitor)
  add_dependencies(telekern_benchmarks telekern_monitor)
endif()
