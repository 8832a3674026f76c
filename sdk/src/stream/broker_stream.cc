// telekern::stream over the embedded broker (telekern.broker.v1.Broker):
// batched, pipelined Produce calls, and one LOG-mode Consume stream per topic
// that reconnects with backoff and resumes from the group's committed offsets.
#include <grpcpp/create_channel.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/channel.h"
#include "telekern/log.h"
#include "telekern/proto_time.h"
#include "telekern/retry.h"
#include "telekern/status.h"
#include "telekern/stream.h"
#include "telekern/strings.h"

namespace telekern::stream {
namespace {

namespace bv1 = telekern::broker::v1;

constexpr size_t kMaxBatch = 1000;
constexpr int kMaxInFlight = 8;

// The module's in-process channel when one was handed over, else a channel
// to `address` carrying the configured API key (and TLS for telekerns://).
absl::StatusOr<std::shared_ptr<grpc::Channel>> broker_channel(const StreamConfig& config,
                                                              const std::string& address,
                                                              bool tls) {
  if (config.channel) return config.channel;
  ChannelOptions options;
  options.target = address;
  options.tls = tls;
  options.ca_file = config.tls_ca_file;
  options.cert_file = config.tls_cert_file;
  options.key_file = config.tls_key_file;
  options.api_key = config.api_key;
  options.max_receive_bytes = 64 * 1024 * 1024;
  return make_channel(options);
}

class BrokerProducer final : public Producer {
 public:
  BrokerProducer(StreamConfig config, std::shared_ptr<grpc::Channel> channel)
      : config_(std::move(config)), stub_(bv1::Broker::NewStub(std::move(channel))) {
    // kMaxInFlight senders each make one blocking Produce call at a time: the
    // calls are pipelined without the callback API's completion queue.
    for (int i = 0; i < kMaxInFlight; ++i) {
      senders_.emplace_back([this](std::stop_token stop) { send_loop(stop); });
    }
  }

  ~BrokerProducer() override {
    (void)flush(std::chrono::seconds(5));
    for (auto& sender : senders_) sender.request_stop();
    {
      // Calls still waiting (a daemon that never answers or cannot be
      // reached) are cut short rather than holding the destructor up.
      std::lock_guard lock(mutex_);
      for (auto* context : in_flight_) context->TryCancel();
    }
    changed_.notify_all();
    senders_.clear();  // joins
  }

  absl::Status send(Record record) override {
    if (record.topic.empty()) return absl::InvalidArgumentError("record has no topic");
    std::unique_lock lock(mutex_);
    auto& batch = pending_[{record.topic, record.partition}];
    bv1::Record* out = batch.add_records();
    out->set_key(std::move(record.key));
    out->set_value(std::move(record.value));
    for (auto& [name, value] : record.headers) {
      auto* header = out->add_headers();
      header->set_key(std::move(name));
      header->set_value(std::move(value));
    }
    if (record.timestamp.time_since_epoch().count() != 0)
      *out->mutable_timestamp() = to_timestamp(record.timestamp);
    if (static_cast<size_t>(batch.records_size()) >= kMaxBatch) {
      auto request = std::move(batch);
      request.set_topic(record.topic);
      if (record.partition >= 0) request.set_partition(static_cast<uint32_t>(record.partition));
      pending_.erase({record.topic, record.partition});
      enqueue(lock, std::move(request));
    }
    return absl::OkStatus();
  }

  absl::Status flush(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [where, batch] : pending) {
      if (batch.records_size() == 0) continue;
      batch.set_topic(where.first);
      if (where.second >= 0) batch.set_partition(static_cast<uint32_t>(where.second));
      enqueue(lock, std::move(batch));
    }
    if (!changed_.wait_for(lock, timeout, [&] { return queue_.empty() && sending_ == 0; })) {
      return absl::DeadlineExceededError(str_cat(queue_.size() + sending_,
                                                 " produce calls still unanswered after ",
                                                 timeout.count(), " ms"));
    }
    absl::Status first = first_error_;
    first_error_ = absl::OkStatus();
    return first;
  }

 private:
  // Queues a batch, waiting while kMaxInFlight batches are already queued.
  void enqueue(std::unique_lock<std::mutex>& lock, bv1::ProduceRequest request) {
    changed_.wait(lock, [&] { return queue_.size() < static_cast<size_t>(kMaxInFlight); });
    queue_.push_back(std::move(request));
    changed_.notify_all();
  }

  void send_loop(std::stop_token stop) {
    while (true) {
      bv1::ProduceRequest request;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, stop, [&] { return !queue_.empty(); });
        if (queue_.empty()) return;  // stopped
        request = std::move(queue_.front());
        queue_.pop_front();
        ++sending_;
      }
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      context.set_wait_for_ready(true);
      {
        std::lock_guard lock(mutex_);
        if (stop.stop_requested()) context.TryCancel();
        in_flight_.insert(&context);
      }
      bv1::ProduceResponse response;
      grpc::Status status = stub_->Produce(&context, request, &response);
      std::lock_guard lock(mutex_);
      in_flight_.erase(&context);
      if (!status.ok() && first_error_.ok()) {
        first_error_ = absl::Status(
            static_cast<absl::StatusCode>(status.error_code()),
            str_cat("produce to topic '", request.topic(), "' failed: ", status.error_message()));
      }
      --sending_;
      changed_.notify_all();
    }
  }

  StreamConfig config_;
  std::unique_ptr<bv1::Broker::Stub> stub_;
  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::map<std::pair<std::string, int32_t>, bv1::ProduceRequest> pending_;
  std::deque<bv1::ProduceRequest> queue_;
  std::set<grpc::ClientContext*> in_flight_;
  int sending_ = 0;
  absl::Status first_error_;
  std::vector<std::jthread> senders_;  // last: stopped and joined first
};

class BrokerConsumer final : public Consumer {
 public:
  BrokerConsumer(StreamConfig config, std::shared_ptr<grpc::Channel> channel,
                 ConsumerOptions options)
      : config_(std::move(config)),
        options_(std::move(options)),
        stub_(bv1::Broker::NewStub(std::move(channel))),
        log_(make_logger("stream")) {
    for (const auto& topic : options_.topics) {
      readers_.emplace_back([this, topic](std::stop_token stop) { read_topic(topic, stop); });
    }
  }

  ~BrokerConsumer() override {
    for (auto& reader : readers_) reader.request_stop();
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
      for (auto* context : contexts_) context->TryCancel();
    }
    changed_.notify_all();
    readers_.clear();  // joins
  }

  absl::StatusOr<std::vector<Record>> poll(size_t max_records,
                                           std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return !queue_.empty() || !fatal_.ok(); });
    if (queue_.empty() && !fatal_.ok()) return fatal_;
    std::vector<Record> records;
    while (!queue_.empty() && records.size() < max_records) {
      records.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    changed_.notify_all();  // room for the readers again
    return records;
  }

  absl::Status commit(const std::vector<Record>& processed) override {
    std::map<std::string, std::map<int32_t, int64_t>> next;
    for (const auto& record : processed) {
      auto& offset = next[record.topic][record.partition];
      offset = std::max(offset, record.offset + 1);
    }
    for (const auto& [topic, partitions] : next) {
      bv1::CommitRequest request;
      request.set_topic(topic);
      request.set_group(options_.group);
      // Every partition in `offsets`: brokers before this fix read the
      // single partition/offset pair only when `offsets` is empty.
      for (const auto& [partition, offset] : partitions) {
        auto* more = request.add_offsets();
        more->set_partition(static_cast<uint32_t>(partition));
        more->set_offset(static_cast<uint64_t>(offset));
      }
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      context.set_wait_for_ready(true);
      bv1::CommitResponse response;
      auto status = stub_->Commit(&context, request, &response);
      if (!status.ok()) {
        return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                            str_cat("commit for group '", options_.group, "' on topic '", topic,
                                    "' failed: ", status.error_message()));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<PartitionLag>> lag(std::chrono::milliseconds timeout) override {
    std::vector<PartitionLag> out;
    for (const auto& topic : options_.topics) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + timeout);
      bv1::DescribeTopicRequest request;
      request.set_topic(topic);
      bv1::DescribeTopicResponse response;
      auto status = stub_->DescribeTopic(&context, request, &response);
      if (!status.ok()) {
        return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                            str_cat("describing topic '", topic, "' for the lag of group '",
                                    options_.group, "': ", status.error_message()));
      }
      std::map<uint32_t, uint64_t> committed;
      for (const auto& group : response.groups()) {
        if (group.group() != options_.group) continue;
        for (const auto& partition : group.partitions())
          committed[partition.partition()] = partition.committed_offset();
      }
      for (const auto& partition : response.partitions()) {
        PartitionLag item;
        item.topic = topic;
        item.partition = static_cast<int32_t>(partition.partition());
        item.log_start = static_cast<int64_t>(partition.start_offset());
        item.high_watermark = static_cast<int64_t>(partition.end_offset());
        if (auto it = committed.find(partition.partition()); it != committed.end())
          item.committed = static_cast<int64_t>(it->second);
        out.push_back(std::move(item));
      }
    }
    return out;
  }

 private:
  static constexpr size_t kQueueLimit = 10'000;

  // Keeps a Consume stream open for `topic`, reconnecting with backoff; after
  // a reconnect the broker resumes from the group's committed offsets.
  void read_topic(const std::string& topic, std::stop_token stop) {
    Backoff backoff({std::chrono::milliseconds(100), std::chrono::seconds(5), 2.0, 0});
    int attempt = 0;
    while (!stop.stop_requested()) {
      grpc::ClientContext context;
      context.set_wait_for_ready(true);
      {
        std::lock_guard lock(mutex_);
        if (closing_) return;
        contexts_.push_back(&context);
      }
      bv1::ConsumeRequest request;
      request.set_topic(topic);
      request.set_group(options_.group);
      request.set_mode(bv1::GROUP_MODE_LOG);
      request.set_member(config_.client_id);
      request.set_start(options_.start == StartFrom::kEarliest ? bv1::START_POSITION_UNSPECIFIED
                                                               : bv1::START_POSITION_LATEST);
      request.set_max_batch(500);
      auto reader = stub_->Consume(&context, request);
      bv1::ConsumeResponse response;
      while (reader->Read(&response)) {
        attempt = 0;
        std::unique_lock lock(mutex_);
        changed_.wait(lock, stop, [&] { return queue_.size() < kQueueLimit; });
        if (stop.stop_requested()) break;
        for (const auto& consumed : response.records())
          queue_.push_back(to_record(topic, consumed));
        changed_.notify_all();
      }
      auto status = reader->Finish();
      {
        std::lock_guard lock(mutex_);
        std::erase(contexts_, &context);
      }
      if (stop.stop_requested()) return;
      if (!is_retryable(from_grpc(status)) && status.error_code() != grpc::StatusCode::CANCELLED) {
        std::lock_guard lock(mutex_);
        fatal_ = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                              str_cat("consuming topic '", topic, "': ", status.error_message()));
        changed_.notify_all();
        return;
      }
      log_->warn("consume stream for topic '{}' ended ({}); reconnecting", topic,
                 status.error_message());
      std::mutex sleep_mutex;
      std::condition_variable_any sleeper;
      std::unique_lock sleep_lock(sleep_mutex);
      sleeper.wait_for(sleep_lock, stop, backoff.delay(++attempt), [] { return false; });
    }
  }

  static Record to_record(const std::string& topic, const bv1::ConsumedRecord& consumed) {
    Record record;
    record.topic = topic;
    record.partition = static_cast<int32_t>(consumed.partition());
    record.offset = static_cast<int64_t>(consumed.offset());
    record.key = consumed.key();
    record.value = consumed.value();
    for (const auto& header : consumed.headers())
      record.headers.emplace_back(header.key(), header.value());
    if (consumed.has_timestamp()) record.timestamp = from_timestamp(consumed.timestamp());
    return record;
  }

  StreamConfig config_;
  ConsumerOptions options_;
  std::unique_ptr<bv1::Broker::Stub> stub_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::deque<Record> queue_;
  std::vector<grpc::ClientContext*> contexts_;
  absl::Status fatal_;
  bool closing_ = false;
  std::vector<std::jthread> readers_;  // last: joined first on destruction
};

}  // namespace

absl::StatusOr<std::unique_ptr<Producer>> make_broker_producer(const StreamConfig& config,
                                                               const std::string& address,
                                                               bool tls) {
  auto channel = broker_channel(config, address, tls);
  if (!channel.ok()) return channel.status();
  return std::make_unique<BrokerProducer>(config, std::move(*channel));
}

absl::StatusOr<std::unique_ptr<Consumer>> make_broker_consumer(const StreamConfig& config,
                                                               const std::string& address, bool tls,
                                                               const ConsumerOptions& options) {
  auto channel = broker_channel(config, address, tls);
  if (!channel.ok()) return channel.status();
  return std::make_unique<BrokerConsumer>(config, std::move(*channel), options);
}

}  // namespace telekern::stream
