// The collector over the Kafka transport (librdkafka's mock cluster hosted by
// this test, a real Kafka protocol): the same module config with
// stream.transport kafka://..., ingest -> topic -> collector group -> the
// default SQLite store -> API, and the stream tests' other transport.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/kafka_mock_cluster.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {
namespace {

using nlohmann::json;

TEST(CollectorKafkaTest, IngestThroughKafkaIsQueryable) {
  KafkaMockCluster kafka(3);
  ASSERT_TRUE(kafka.ok());
  kafka.create_topic("telemetry", 4);
  Telekernd daemon(
      {.config_yaml = "modules:\n  collector:\n    batch_age: 100ms\n    consumers: 2\n"
                      "    stream:\n      transport: kafka://" +
                      kafka.bootstraps() + "\n",
       .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules",
       .load = {"collector"}});
  ASSERT_TRUE(daemon.ready()) << daemon.log();
  auto address = daemon.http_address();
  httplib::Client client("127.0.0.1", std::stoi(address.substr(address.rfind(':') + 1)));
  client.set_read_timeout(60, 0);

  std::string csv =
      "timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,"
      "value,labels_raw\n";
  for (int step = 0; step < 10; ++step)
    for (int g = 0; g < 4; ++g)
      csv += std::to_string(1752868800 + step * 10) + ",DCGM_FI_DEV_GPU_TEMP," + std::to_string(g) +
             ",nvidia" + std::to_string(g) + ",GPU-kafka-" + std::to_string(g) +
             ",H100,kafka-host,c,p,ns," + std::to_string(50 + step) + ",\n";
  auto reply = client.Post("/rpc/telekern.collector.v1.Collector/IngestCsv",
                           json{{"csv", csv}}.dump(), "application/json");
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->status, 200) << reply->body;
  EXPECT_EQ(json::parse(reply->body).value("rowsPublished", "0"), "40") << reply->body;

  // Every GPU's 10 points come back from the store (consumer groups on the
  // mock cluster take a few seconds to form).
  for (int g = 0; g < 4; ++g) {
    std::string body;
    EXPECT_TRUE(wait_for(
        [&] {
          auto got = client.Get("/api/v1/gpus/GPU-kafka-" + std::to_string(g) +
                                "/telemetry?start=2025-07-18T20:00:00Z&end=2025-07-18T21:00:00Z");
          body = got ? got->body : "";
          return got && got->status == 200 &&
                 json::parse(got->body, nullptr, false).value("count", 0) == 10;
        },
        std::chrono::seconds(60)))
        << "GPU-kafka-" << g << ": " << body << "\n"
        << daemon.log();
  }
}

}  // namespace
}  // namespace telekern::testing
