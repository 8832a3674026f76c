// The telekern driver: telekern::stream against the embedded broker (in
// process or telekern://), a proxy in front of brokers, or Kafka (kafka://).
#include <grpcpp/client_context.h>

#include "driver.h"
#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/channel.h"
#include "telekern/status.h"
#include "telekern/stream.h"
#include "telekern/strings.h"

namespace telekern::bench {
namespace {

class StreamProducer final : public DriverProducer {
 public:
  StreamProducer(std::unique_ptr<stream::Producer> producer, std::string topic)
      : producer_(std::move(producer)), topic_(std::move(topic)) {}

  absl::Status send_batch(const std::vector<Message>& batch) override {
    for (const auto& message : batch) {
      stream::Record record;
      record.topic = topic_;
      record.key = message.key;
      record.value = message.payload;
      if (auto status = producer_->send(std::move(record)); !status.ok()) return status;
    }
    return producer_->flush(std::chrono::seconds(30));
  }

 private:
  std::unique_ptr<stream::Producer> producer_;
  std::string topic_;
};

class StreamConsumer final : public DriverConsumer {
 public:
  explicit StreamConsumer(std::unique_ptr<stream::Consumer> consumer)
      : consumer_(std::move(consumer)) {}

  absl::Status poll(std::vector<std::string>& out, size_t max,
                    std::chrono::milliseconds timeout) override {
    auto records = consumer_->poll(max, timeout);
    if (!records.ok()) return records.status();
    for (auto& record : *records) out.push_back(std::move(record.value));
    if (records->empty()) return absl::OkStatus();
    return consumer_->commit(*records);
  }

 private:
  std::unique_ptr<stream::Consumer> consumer_;
};

class StreamDriver final : public Driver {
 public:
  StreamDriver(DriverSpec spec, stream::StreamConfig config)
      : spec_(std::move(spec)), config_(std::move(config)) {}

  absl::Status create_topic(const std::string& topic, uint32_t partitions) override {
    if (spec_.kind == DriverKind::kKafka) return absl::OkStatus();  // broker-side auto-create
    auto channel = broker_channel();
    if (!channel.ok()) return channel.status();
    auto stub = broker::v1::Broker::NewStub(*channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    broker::v1::CreateTopicRequest request;
    request.set_topic(topic);
    request.set_partitions(partitions);
    broker::v1::CreateTopicResponse response;
    auto status = stub->CreateTopic(&context, request, &response);
    if (status.ok()) created_.push_back(topic);
    if (status.ok() || status.error_code() == grpc::StatusCode::ALREADY_EXISTS)
      return absl::OkStatus();
    return absl::Status(
        from_grpc(status).code(),
        str_cat("create topic '", topic, "' on ", describe(), ": ", status.error_message()));
  }

  absl::StatusOr<std::unique_ptr<DriverProducer>> producer(const std::string& topic) override {
    auto producer = stream::make_producer(config_);
    if (!producer.ok()) return producer.status();
    return std::make_unique<StreamProducer>(std::move(*producer), topic);
  }

  absl::StatusOr<std::unique_ptr<DriverConsumer>> consumer(
      const std::string& topic, const std::string& subscription) override {
    stream::ConsumerOptions options;
    options.group = subscription;
    options.topics = {topic};
    options.start = stream::StartFrom::kEarliest;
    auto consumer = stream::make_consumer(config_, options);
    if (!consumer.ok()) return consumer.status();
    return std::make_unique<StreamConsumer>(std::move(*consumer));
  }

  void cleanup() override {
    if (spec_.kind == DriverKind::kKafka) return;
    auto channel = broker_channel();
    if (!channel.ok()) return;
    auto stub = broker::v1::Broker::NewStub(*channel);
    for (const auto& topic : created_) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      broker::v1::DeleteTopicRequest request;
      request.set_topic(topic);
      broker::v1::DeleteTopicResponse response;
      (void)stub->DeleteTopic(&context, request, &response);
    }
  }

 private:
  std::string describe() const {
    return config_.channel ? std::string("the in-process broker") : config_.transport;
  }

  absl::StatusOr<std::shared_ptr<grpc::Channel>> broker_channel() {
    if (config_.channel) return config_.channel;
    std::string_view address = config_.transport;
    bool tls = address.starts_with("telekerns://");
    address.remove_prefix(tls ? 12 : 11);
    ChannelOptions options;
    options.target = std::string(address);
    options.tls = tls;
    options.api_key = config_.api_key;
    return make_channel(options);
  }

  DriverSpec spec_;
  stream::StreamConfig config_;
  std::vector<std::string> created_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> make_stream_driver(const DriverSpec& spec,
                                                           const DriverEnvironment& environment) {
  stream::StreamConfig config;
  config.client_id = "telekern-bench";
  if (spec.transport.empty()) {
    if (!environment.broker_channel)
      return absl::FailedPreconditionError(
          "the telekern driver needs a transport (telekern://HOST:PORT) when no broker module "
          "is loaded in this daemon");
    config.channel = environment.broker_channel;
    config.transport = "telekern://in-process";
  } else {
    config.transport = spec.transport;
  }
  if (spec.kind == DriverKind::kKafka) {
    // Consumers fetch as soon as data is there (librdkafka waits up to 500 ms
    // by default, which shows as end-to-end latency); the YAML may override.
    config.extra_properties = {{"fetch.wait.max.ms", "10"}};
    config.extra_properties.insert(config.extra_properties.end(), spec.kafka_properties.begin(),
                                   spec.kafka_properties.end());
  }
  return std::make_unique<StreamDriver>(spec, std::move(config));
}

}  // namespace telekern::bench
