# The SDK's streamed HTTP POST (the etl's streamed ClickHouse inserts).
telekern_add_test(telekern_http_streamed_post_tests LABEL unit
  SOURCES unit/sdk/http_streamed_post_test.cc
  DEPS telekern_http_writer PkgConfig::HTTPLIB)
