// A librdkafka mock cluster in a process of its own, so a benchmark's clients
// (the tracer, kcat) do not share its CPU with the brokers serving them.
//
//   telekern_kafka_mock_server BROKERS TOPIC:PARTITIONS...
//
// Prints "bootstrap HOST:PORT,..." once the topics exist, then serves until killed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/support/kafka_mock_cluster.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s BROKERS TOPIC:PARTITIONS...\n", argv[0]);
    return 2;
  }
  telekern::testing::KafkaMockCluster cluster(std::atoi(argv[1]));
  if (!cluster.ok()) {
    std::fprintf(stderr, "cannot start the mock cluster\n");
    return 1;
  }
  for (int i = 2; i < argc; ++i) {
    std::string spec = argv[i];
    auto colon = spec.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "topic '%s': expected TOPIC:PARTITIONS\n", argv[i]);
      return 2;
    }
    cluster.create_topic(spec.substr(0, colon), std::atoi(spec.c_str() + colon + 1));
  }
  std::printf("bootstrap %s\n", cluster.bootstraps().c_str());
  std::fflush(stdout);
  for (;;) pause();
}
