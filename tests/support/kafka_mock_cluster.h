// A Kafka cluster speaking the real protocol on loopback, hosted in this
// process by librdkafka's rdkafka_mock; reachable by any Kafka client while
// the object lives.
#pragma once

#include <memory>
#include <string>

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace telekern::testing {

class KafkaMockCluster {
 public:
  explicit KafkaMockCluster(int brokers = 3);
  ~KafkaMockCluster();
  KafkaMockCluster(const KafkaMockCluster&) = delete;
  KafkaMockCluster& operator=(const KafkaMockCluster&) = delete;

  bool ok() const { return cluster_ != nullptr; }
  // "127.0.0.1:port,127.0.0.1:port,..."
  std::string bootstraps() const;
  void create_topic(const std::string& topic, int partitions, int replication = 1);
  void set_broker_down(int broker_id, bool down);
  // Moves the leadership of a partition (clients asking the old leader get NOT_LEADER).
  void set_partition_leader(const std::string& topic, int partition, int broker_id);

 private:
  rd_kafka_s* host_ = nullptr;  // the client handle that owns the mock cluster
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
};

}  // namespace telekern::testing
