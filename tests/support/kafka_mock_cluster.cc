#include "tests/support/kafka_mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

namespace telekern::testing {

KafkaMockCluster::KafkaMockCluster(int brokers) {
  char error[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof error);
  host_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (host_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return;
  }
  cluster_ = rd_kafka_mock_cluster_new(host_, brokers);
}

KafkaMockCluster::~KafkaMockCluster() {
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
  if (host_) rd_kafka_destroy(host_);
}

std::string KafkaMockCluster::bootstraps() const {
  return cluster_ ? rd_kafka_mock_cluster_bootstraps(cluster_) : "";
}

void KafkaMockCluster::create_topic(const std::string& topic, int partitions, int replication) {
  rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, replication);
}

void KafkaMockCluster::set_broker_down(int broker_id, bool down) {
  if (down) {
    rd_kafka_mock_broker_set_down(cluster_, broker_id);
  } else {
    rd_kafka_mock_broker_set_up(cluster_, broker_id);
  }
}

void KafkaMockCluster::set_partition_leader(const std::string& topic, int partition,
                                            int broker_id) {
  rd_kafka_mock_partition_set_leader(cluster_, topic.c_str(), partition, broker_id);
}

}  // namespace telekern::testing
