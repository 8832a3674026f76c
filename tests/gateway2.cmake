# The HTTP endpoint's GuardedServer: keep-alive requests served back to back,
# slow clients handed back to the gate, answers written whole.
telekern_add_test(telekern_http_guarded_server_tests LABEL unit
  SOURCES unit/kernel/guarded_server_test.cc
  DEPS telekern_kernel_core)
