#include "broker_service.h"

#include <google/protobuf/util/time_util.h>

#include <deque>

#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

using google::protobuf::util::TimeUtil;

const grpc::Status kStopping(grpc::StatusCode::UNAVAILABLE, "broker module is stopping; retry");

int64_t to_ms(const google::protobuf::Timestamp& timestamp) {
  return TimeUtil::TimestampToMilliseconds(timestamp);
}
std::chrono::milliseconds to_ms(const google::protobuf::Duration& duration) {
  return std::chrono::milliseconds(TimeUtil::DurationToMilliseconds(duration));
}

Record from_proto(const v1::Record& in) {
  Record out;
  out.key = in.key();
  out.value = in.value();
  out.timestamp_ms = in.has_timestamp() ? to_ms(in.timestamp()) : 0;
  for (const auto& header : in.headers()) out.headers.push_back({header.key(), header.value()});
  return out;
}

std::optional<Durability> from_proto(v1::Durability durability) {
  switch (durability) {
    case v1::DURABILITY_NONE:
      return Durability::kNone;
    case v1::DURABILITY_FSYNC:
      return Durability::kFsync;
    default:
      return std::nullopt;
  }
}

std::optional<GroupMode> from_proto(v1::GroupMode mode) {
  switch (mode) {
    case v1::GROUP_MODE_LOG:
      return GroupMode::kLog;
    case v1::GROUP_MODE_QUEUE:
      return GroupMode::kQueue;
    default:
      return std::nullopt;
  }
}

StartPosition start_from_proto(v1::StartPosition start, uint64_t offset,
                               const google::protobuf::Timestamp& time) {
  StartPosition out;
  switch (start) {
    case v1::START_POSITION_EARLIEST:
      out.kind = StartKind::kEarliest;
      break;
    case v1::START_POSITION_LATEST:
      out.kind = StartKind::kLatest;
      break;
    case v1::START_POSITION_OFFSET:
      out.kind = StartKind::kOffset;
      out.offset = offset;
      break;
    case v1::START_POSITION_TIMESTAMP:
      out.kind = StartKind::kTimestamp;
      out.timestamp_ms = to_ms(time);
      break;
    default:
      break;
  }
  return out;
}

ProduceCall produce_call(const v1::ProduceRequest& request) {
  ProduceCall call;
  call.topic = request.topic();
  for (const auto& record : request.records()) call.records.push_back(from_proto(record));
  if (call.records.empty() && !request.value().empty()) {
    Record record;
    record.key = request.key();
    record.value = request.value();
    call.records.push_back(std::move(record));
  }
  if (request.has_partition()) call.partition = request.partition();
  call.durability = from_proto(request.durability());
  return call;
}

void to_proto(const std::vector<PartitionAppend>& appends, v1::ProduceResponse* response) {
  for (const auto& append : appends) {
    auto* out = response->add_appends();
    out->set_partition(append.partition);
    out->set_first_offset(append.first_offset);
    out->set_count(append.count);
  }
}

void to_proto(const TopicSpec& spec, v1::TopicConfig* out) {
  out->set_partitions(spec.partitions);
  *out->mutable_retention() = TimeUtil::MillisecondsToDuration(spec.retention_ms);
  out->set_retention_bytes(spec.retention_bytes);
  out->set_segment_bytes(spec.segment_bytes);
}

void to_proto(const GroupInfo& info, v1::GroupInfo* out) {
  out->set_group(info.name);
  out->set_topic(info.topic);
  out->set_mode(info.mode == GroupMode::kQueue ? v1::GROUP_MODE_QUEUE : v1::GROUP_MODE_LOG);
  for (const auto& partition : info.partitions) {
    auto* item = out->add_partitions();
    item->set_partition(partition.partition);
    item->set_committed_offset(partition.committed);
    item->set_lag(partition.lag);
    item->set_in_flight(partition.in_flight);
    item->set_member(partition.member);
  }
  for (const auto& member : info.members) out->add_members(member);
  out->set_lag(info.lag);
  out->set_in_flight(info.in_flight);
  out->set_dead_lettered(info.dead_lettered);
}

void to_proto(const TopicDescription& description, v1::DescribeTopicResponse* out) {
  out->set_topic(description.name);
  to_proto(description.spec, out->mutable_config());
  for (const auto& partition : description.partitions) {
    auto* item = out->add_partitions();
    item->set_partition(partition.partition);
    item->set_start_offset(partition.stats.start_offset);
    item->set_end_offset(partition.stats.end_offset);
    item->set_bytes(partition.stats.bytes);
    item->set_segments(partition.stats.segments);
  }
  for (const auto& group : description.groups) to_proto(group, out->add_groups());
  out->mutable_limits()->set_max_partitions(description.limits.max_partitions);
  out->mutable_limits()->set_max_record_bytes(description.limits.max_record_bytes);
  out->mutable_limits()->set_max_in_flight(description.limits.max_in_flight);
}

// The (partition, offset) pairs a request names: the list, or the shorthand fields.
template <typename Request>
std::vector<std::pair<uint32_t, uint64_t>> deliveries_of(const Request& request) {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  for (const auto& ref : request.deliveries()) out.emplace_back(ref.partition(), ref.offset());
  if (out.empty()) out.emplace_back(request.partition(), request.offset());
  return out;
}

}  // namespace

// One Consume stream: runs on its own thread, polls the group and writes
// through the reactor. The reactor only forwards events here, so the thread
// never touches a reactor that gRPC has already destroyed.
class ConsumeSession : public std::enable_shared_from_this<ConsumeSession> {
 public:
  class Reactor final : public grpc::ServerWriteReactor<v1::ConsumeResponse> {
   public:
    explicit Reactor(std::shared_ptr<ConsumeSession> session) : session_(std::move(session)) {}
    void OnWriteDone(bool ok) override { session_->on_write_done(ok); }
    void OnCancel() override { session_->on_cancel(); }
    void OnDone() override { delete this; }

   private:
    std::shared_ptr<ConsumeSession> session_;
  };

  ConsumeSession(grpc::CallbackServerContext* context, v1::ConsumeRequest request,
                 std::shared_ptr<Broker> engine)
      : context_(context), request_(std::move(request)), engine_(std::move(engine)) {}

  void set_reactor(Reactor* reactor) { reactor_ = reactor; }
  void set_id(uint64_t id) { id_ = id; }
  uint64_t id() const { return id_; }

  void on_write_done(bool ok) {
    std::lock_guard lock(mutex_);
    write_done_ = true;
    write_ok_ = ok;
    changed_.notify_all();
  }
  void on_cancel() {
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
      changed_.notify_all();
    }
    wake_.request_stop();  // the member leaves now, not at the next 200 ms wake-up
  }
  // Asks the stream to end (module stopping); safe from any thread. The call
  // (and its context) may be gone once Finish was called, so only before that.
  void cancel() {
    {
      std::lock_guard lock(mutex_);
      if (!finished_) context_->TryCancel();
    }
    on_cancel();
  }

  void run(std::stop_token stop, BrokerService* service) {
    std::stop_callback stopping(stop, [this] { wake_.request_stop(); });
    grpc::Status status = serve(stop);
    if (group_ && !member_.empty()) group_->leave(member_);
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
    }
    reactor_->Finish(status);
    service->session_finished(id_);
  }

 private:
  bool stopped(const std::stop_token& stop) {
    std::lock_guard lock(mutex_);
    return cancelled_ || stop.stop_requested() || engine_->stop_token().stop_requested();
  }

  // Writes one message and waits until gRPC is done with it.
  bool write(const v1::ConsumeResponse& response) {
    {
      std::lock_guard lock(mutex_);
      write_done_ = false;
    }
    reactor_->StartWrite(&response);
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return write_done_; });
    return write_ok_;
  }

  grpc::Status serve(const std::stop_token& stop) {
    const auto& request = request_;
    auto limits = engine_->limits();
    if (request.max_in_flight() > limits.max_in_flight) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          str_cat("max_in_flight=", request.max_in_flight(),
                                  " exceeds the broker's max_in_flight=", limits.max_in_flight));
    }
    if (request.group().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "consume needs a group (--group NAME)");
    }
    auto group = engine_->open_group(request.topic(), request.group(), from_proto(request.mode()));
    if (!group.ok()) return to_grpc(group.status());
    group_ = *group;
    MemberOptions options;
    options.name = request.member();
    options.start = start_from_proto(request.start(), request.start_offset(), request.start_time());
    if (request.has_visibility_timeout())
      options.visibility_timeout = to_ms(request.visibility_timeout());
    options.max_in_flight = request.max_in_flight();
    auto member = group_->join(options);
    if (!member.ok()) return to_grpc(member.status());
    member_ = *member;
    bool log_mode = group_->mode() == GroupMode::kLog;
    size_t batch = request.max_batch() == 0 ? 100 : request.max_batch();
    std::optional<std::chrono::milliseconds> idle_limit;
    if (request.has_wait()) idle_limit = to_ms(request.wait());
    auto last_activity = std::chrono::steady_clock::now();
    uint64_t delivered = 0;
    uint64_t seen_assignment = 0;
    bool first = true;
    const auto& topic = group_->topic();
    while (true) {
      if (stopped(stop)) {
        std::lock_guard lock(mutex_);
        return cancelled_ ? grpc::Status(grpc::StatusCode::CANCELLED, "consumer went away")
                          : kStopping;
      }
      v1::ConsumeResponse response;
      auto [partitions, version] = group_->assignment(member_);
      if (first) response.set_member(member_);
      if (version != seen_assignment) {
        seen_assignment = version;
        for (uint32_t partition : partitions) response.add_assigned_partitions(partition);
      }
      uint64_t topic_version = topic->version();
      size_t want = batch;
      if (request.max() > 0) want = std::min<uint64_t>(want, request.max() - delivered);
      auto deliveries = group_->poll(member_, want, Clock::now());
      if (!deliveries.ok()) return to_grpc(deliveries.status());
      std::map<uint32_t, uint64_t> next_offsets;
      for (auto& delivery : *deliveries) {
        auto* record = response.add_records();
        record->set_partition(delivery.partition);
        record->set_offset(delivery.record.offset);
        record->set_key(std::move(delivery.record.record.key));
        record->set_value(std::move(delivery.record.record.value));
        for (auto& header : delivery.record.record.headers) {
          auto* out = record->add_headers();
          out->set_key(std::move(header.key));
          out->set_value(std::move(header.value));
        }
        *record->mutable_timestamp() =
            TimeUtil::MillisecondsToTimestamp(delivery.record.record.timestamp_ms);
        record->set_delivery_attempt(delivery.attempt);
        next_offsets[delivery.partition] = delivery.record.offset + 1;
      }
      bool has_news =
          first || response.assigned_partitions_size() > 0 || response.records_size() > 0;
      first = false;
      if (has_news) {
        if (!write(response)) {
          return grpc::Status(grpc::StatusCode::CANCELLED, "consumer went away");
        }
      }
      if (response.records_size() > 0) {
        if (log_mode && request.auto_commit()) {
          for (const auto& [partition, offset] : next_offsets) {
            if (auto status = group_->commit(partition, offset); !status.ok())
              return to_grpc(status);
          }
        }
        delivered += static_cast<uint64_t>(response.records_size());
        last_activity = std::chrono::steady_clock::now();
        if (request.max() > 0 && delivered >= request.max()) return grpc::Status::OK;
        continue;
      }
      auto idle = std::chrono::steady_clock::now() - last_activity;
      if (idle_limit && idle >= *idle_limit) return grpc::Status::OK;
      auto timeout = std::chrono::milliseconds(200);
      if (idle_limit) {
        timeout = std::min(
            timeout, std::chrono::duration_cast<std::chrono::milliseconds>(*idle_limit - idle) +
                         std::chrono::milliseconds(1));
      }
      topic->wait_for_change(topic_version, timeout, wake_.get_token());
    }
  }

  grpc::CallbackServerContext* context_;
  v1::ConsumeRequest request_;
  std::shared_ptr<Broker> engine_;
  Reactor* reactor_ = nullptr;
  uint64_t id_ = 0;
  std::shared_ptr<ConsumerGroup> group_;
  std::string member_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool write_done_ = false;
  bool write_ok_ = true;
  bool cancelled_ = false;
  bool finished_ = false;  // Finish was called: the context may be gone
  // Requested when the client cancels or the service stops: ends the wait for records.
  std::stop_source wake_;
};

namespace {

// Pipelined produce. The requests of one stream are appended in arrival order
// (one drain task per stream runs on a broker thread at a time), so pipelining
// never reorders a partition; FSYNC answers come from the group commit, so
// answers are written in completion order, one write at a time. Reading pauses
// while kMaxQueuedRequests wait to be appended.
class ProduceStreamReactor final
    : public grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse> {
 public:
  explicit ProduceStreamReactor(std::shared_ptr<Broker> engine) : engine_(std::move(engine)) {
    reading_ = true;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    bool finish = false;
    bool start_drain = false;
    bool read_more = false;
    {
      std::lock_guard lock(mutex_);
      reading_ = false;
      if (!ok) {
        reading_done_ = true;
        finish = should_finish_locked();
      } else {
        ++pending_;
        queue_.push_back({request_.sequence(), produce_call(request_)});
        start_drain = !draining_;
        draining_ = true;
        read_more = queue_.size() < kMaxQueuedRequests;
        reading_ = read_more;
      }
    }
    if (finish) return Finish(grpc::Status::OK);
    if (start_drain) {
      auto submitted = engine_->submit([this] { drain(); });
      if (!submitted.ok()) refuse_queued(submitted);
    }
    if (read_more) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    {
      std::lock_guard lock(mutex_);
      outbox_.pop_front();
      if (!ok) broken_ = true;
      if (!outbox_.empty() && !broken_) {
        StartWrite(&outbox_.front());
      } else {
        writing_ = false;
        if (broken_) outbox_.clear();
        finish = should_finish_locked();
      }
    }
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  static constexpr size_t kMaxQueuedRequests = 64;

  struct Queued {
    uint64_t sequence = 0;
    ProduceCall call;
  };

  // Appends the queued requests one after another on this broker thread.
  void drain() {
    bool finish = false;
    while (true) {
      Queued next;
      bool resume_reading = false;
      {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
          draining_ = false;
          finish = should_finish_locked();
          break;
        }
        next = std::move(queue_.front());
        queue_.pop_front();
        if (!reading_ && !reading_done_ && queue_.size() < kMaxQueuedRequests)
          resume_reading = reading_ = true;
      }
      if (resume_reading) StartRead(&request_);
      engine_->produce(
          std::move(next.call),
          [this, sequence = next.sequence](ProduceResult result) { answer(sequence, result); });
    }
    if (finish) Finish(grpc::Status::OK);
  }

  // No broker thread took the drain: every queued request fails with `status`.
  void refuse_queued(const absl::Status& status) {
    std::deque<Queued> refused;
    {
      std::lock_guard lock(mutex_);
      refused.swap(queue_);
      draining_ = false;
    }
    for (const auto& queued : refused) answer(queued.sequence, status);
  }

  void answer(uint64_t sequence, const ProduceResult& result) {
    v1::ProduceResponse response;
    response.set_sequence(sequence);
    if (result.ok()) {
      to_proto(*result, &response);
    } else {
      response.set_error_code(static_cast<int32_t>(result.status().code()));
      response.set_error_message(std::string(result.status().message()));
    }
    bool finish = false;
    {
      std::lock_guard lock(mutex_);
      --pending_;
      if (!broken_) {
        outbox_.push_back(std::move(response));
        if (!writing_) {
          writing_ = true;
          StartWrite(&outbox_.front());
        }
      }
      finish = should_finish_locked();
    }
    // Finish is the last touch: OnDone may delete this as soon as it is called.
    if (finish) Finish(grpc::Status::OK);
  }

  bool should_finish_locked() {
    if (!reading_done_ || pending_ > 0 || writing_ || draining_ || finished_) return false;
    finished_ = true;
    return true;
  }

  std::shared_ptr<Broker> engine_;
  v1::ProduceRequest request_;
  std::mutex mutex_;
  std::deque<Queued> queue_;
  std::deque<v1::ProduceResponse> outbox_;
  size_t pending_ = 0;  // read, not yet answered
  bool reading_ = false;
  bool draining_ = false;
  bool writing_ = false;
  bool reading_done_ = false;
  bool broken_ = false;
  bool finished_ = false;
};

}  // namespace

BrokerService::BrokerService() = default;
BrokerService::~BrokerService() { detach(); }

void BrokerService::attach(std::shared_ptr<Broker> engine) {
  std::lock_guard lock(mutex_);
  engine_ = std::move(engine);
  stop_ = std::stop_source();
}

std::shared_ptr<Broker> BrokerService::engine() const {
  std::lock_guard lock(mutex_);
  return engine_;
}

void BrokerService::end_streams() {
  std::lock_guard lock(mutex_);
  stop_.request_stop();  // sessions wake from their wait and answer UNAVAILABLE
}

void BrokerService::detach() {
  std::map<uint64_t, std::shared_ptr<ConsumeSession>> sessions;
  std::map<uint64_t, std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stop_.request_stop();
    engine_.reset();
    sessions = sessions_;
  }
  for (auto& [_, session] : sessions) session->cancel();
  {
    std::lock_guard lock(mutex_);
    threads.swap(threads_);
  }
  for (auto& [_, thread] : threads) {
    if (thread.joinable()) thread.join();
  }
  std::lock_guard lock(mutex_);
  sessions_.clear();
  finished_.clear();
}

bool BrokerService::spawn(std::shared_ptr<ConsumeSession> session) {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mutex_);
    if (stop_.stop_requested()) return false;
    for (uint64_t id : finished_) {
      auto it = threads_.find(id);
      if (it != threads_.end()) {
        done.push_back(std::move(it->second));
        threads_.erase(it);
      }
    }
    finished_.clear();
    uint64_t id = ++next_session_;
    session->set_id(id);
    sessions_[id] = session;
    threads_[id] =
        std::thread([session, stop = stop_.get_token(), this] { session->run(stop, this); });
  }
  for (auto& thread : done) thread.join();
  return true;
}

void BrokerService::session_finished(uint64_t id) {
  std::lock_guard lock(mutex_);
  sessions_.erase(id);
  finished_.push_back(id);
}

template <typename Work>
grpc::ServerUnaryReactor* BrokerService::run_unary(grpc::CallbackServerContext* context,
                                                   Work work) {
  auto* reactor = context->DefaultReactor();
  auto engine = this->engine();
  if (!engine) {
    reactor->Finish(kStopping);
    return reactor;
  }
  auto submitted = engine->submit([reactor, engine, work = std::move(work)]() mutable {
    reactor->Finish(to_grpc(work(*engine)));
  });
  if (!submitted.ok()) reactor->Finish(to_grpc(submitted));
  return reactor;
}

grpc::ServerUnaryReactor* BrokerService::CreateTopic(grpc::CallbackServerContext* context,
                                                     const v1::CreateTopicRequest* request,
                                                     v1::CreateTopicResponse* response) {
  return run_unary(context, [request, response](Broker& engine) -> absl::Status {
    CreateTopicOptions options;
    options.partitions = request->partitions();
    if (request->has_retention()) options.retention_ms = to_ms(request->retention()).count();
    options.retention_bytes = request->retention_bytes();
    options.segment_bytes = request->segment_bytes();
    auto created = engine.create_topic(request->topic(), options);
    if (!created.ok()) return created.status();
    to_proto(created->spec, response->mutable_config());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::DeleteTopic(grpc::CallbackServerContext* context,
                                                     const v1::DeleteTopicRequest* request,
                                                     v1::DeleteTopicResponse*) {
  return run_unary(context,
                   [request](Broker& engine) { return engine.delete_topic(request->topic()); });
}

grpc::ServerUnaryReactor* BrokerService::ListTopics(grpc::CallbackServerContext* context,
                                                    const v1::ListTopicsRequest*,
                                                    v1::ListTopicsResponse* response) {
  return run_unary(context, [response](Broker& engine) {
    for (const auto& topic : engine.list_topics()) {
      auto* out = response->add_topics();
      out->set_topic(topic.name);
      out->set_partitions(topic.spec.partitions);
      out->set_bytes(topic.bytes);
      out->set_records(topic.records);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::DescribeTopic(grpc::CallbackServerContext* context,
                                                       const v1::DescribeTopicRequest* request,
                                                       v1::DescribeTopicResponse* response) {
  return run_unary(context, [request, response](Broker& engine) -> absl::Status {
    auto description = engine.describe_topic(request->topic());
    if (!description.ok()) return description.status();
    to_proto(*description, response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::AddPartitions(grpc::CallbackServerContext* context,
                                                       const v1::AddPartitionsRequest* request,
                                                       v1::AddPartitionsResponse* response) {
  return run_unary(context, [request, response](Broker& engine) -> absl::Status {
    auto count = engine.add_partitions(request->topic(), request->partitions());
    if (!count.ok()) return count.status();
    response->set_partitions(*count);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::Produce(grpc::CallbackServerContext* context,
                                                 const v1::ProduceRequest* request,
                                                 v1::ProduceResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto engine = this->engine();
  if (!engine) {
    reactor->Finish(kStopping);
    return reactor;
  }
  response->set_sequence(request->sequence());
  auto submitted = engine->submit([reactor, request, response, engine] {
    engine->produce(produce_call(*request), [reactor, response](ProduceResult result) {
      if (!result.ok()) return reactor->Finish(to_grpc(result.status()));
      to_proto(*result, response);
      reactor->Finish(grpc::Status::OK);
    });
  });
  if (!submitted.ok()) reactor->Finish(to_grpc(submitted));
  return reactor;
}

grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse>* BrokerService::ProduceStream(
    grpc::CallbackServerContext*) {
  auto engine = this->engine();
  if (!engine) {
    class Refuse final : public grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse> {
     public:
      Refuse() { Finish(kStopping); }
      void OnDone() override { delete this; }
    };
    return new Refuse();
  }
  return new ProduceStreamReactor(std::move(engine));
}

grpc::ServerWriteReactor<v1::ConsumeResponse>* BrokerService::Consume(
    grpc::CallbackServerContext* context, const v1::ConsumeRequest* request) {
  auto engine = this->engine();
  auto session = engine ? std::make_shared<ConsumeSession>(context, *request, engine) : nullptr;
  auto* reactor = new ConsumeSession::Reactor(session);
  if (!session) {
    reactor->Finish(kStopping);
    return reactor;
  }
  session->set_reactor(reactor);
  if (!spawn(session)) reactor->Finish(kStopping);
  return reactor;
}

grpc::ServerUnaryReactor* BrokerService::Ack(grpc::CallbackServerContext* context,
                                             const v1::AckRequest* request,
                                             v1::AckResponse* response) {
  return run_unary(context, [request, response](Broker& engine) -> absl::Status {
    auto group = engine.find_group(request->topic(), request->group());
    if (!group.ok()) return group.status();
    auto now = Clock::now();
    for (const auto& [partition, offset] : deliveries_of(*request)) {
      auto acked = (*group)->ack(partition, offset, now);
      if (!acked.ok()) return acked.status();
      if (*acked) {
        response->set_acked(response->acked() + 1);
      } else {
        response->set_unknown(response->unknown() + 1);
      }
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::Nack(grpc::CallbackServerContext* context,
                                              const v1::NackRequest* request,
                                              v1::NackResponse* response) {
  return run_unary(context, [request, response](Broker& engine) -> absl::Status {
    auto group = engine.find_group(request->topic(), request->group());
    if (!group.ok()) return group.status();
    std::optional<std::chrono::milliseconds> delay;
    if (request->has_delay()) delay = to_ms(request->delay());
    auto now = Clock::now();
    for (const auto& [partition, offset] : deliveries_of(*request)) {
      auto outcome = (*group)->nack(partition, offset, request->error(), delay, now);
      if (!outcome.ok()) return outcome.status();
      switch (*outcome) {
        case NackOutcome::kRequeued:
          response->set_requeued(response->requeued() + 1);
          break;
        case NackOutcome::kDeadLettered:
          response->set_dead_lettered(response->dead_lettered() + 1);
          break;
        case NackOutcome::kUnknown:
          response->set_unknown(response->unknown() + 1);
          break;
      }
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::ExtendVisibility(
    grpc::CallbackServerContext* context, const v1::ExtendVisibilityRequest* request,
    v1::ExtendVisibilityResponse* response) {
  return run_unary(context, [request, response](Broker& engine) -> absl::Status {
    if (!request->has_visibility_timeout()) {
      return absl::InvalidArgumentError(
          "extend needs visibility_timeout (--visibility-timeout 60s)");
    }
    auto group = engine.find_group(request->topic(), request->group());
    if (!group.ok()) return group.status();
    auto now = Clock::now();
    for (const auto& [partition, offset] : deliveries_of(*request)) {
      auto extended =
          (*group)->extend(partition, offset, to_ms(request->visibility_timeout()), now);
      if (!extended.ok()) return extended.status();
      if (*extended) {
        response->set_extended(response->extended() + 1);
      } else {
        response->set_unknown(response->unknown() + 1);
      }
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::Commit(grpc::CallbackServerContext* context,
                                                const v1::CommitRequest* request,
                                                v1::CommitResponse*) {
  return run_unary(context, [request](Broker& engine) -> absl::Status {
    auto group = engine.open_group(request->topic(), request->group(), std::nullopt);
    if (!group.ok()) return group.status();
    std::vector<std::pair<uint32_t, uint64_t>> offsets;
    for (const auto& ref : request->offsets()) offsets.emplace_back(ref.partition(), ref.offset());
    if (offsets.empty()) offsets.emplace_back(request->partition(), request->offset());
    for (const auto& [partition, offset] : offsets) {
      if (auto status = (*group)->commit(partition, offset); !status.ok()) return status;
    }
    return (*group)->sync_state();
  });
}

grpc::ServerUnaryReactor* BrokerService::ListGroups(grpc::CallbackServerContext* context,
                                                    const v1::ListGroupsRequest* request,
                                                    v1::ListGroupsResponse* response) {
  return run_unary(context, [request, response](Broker& engine) {
    for (const auto& group : engine.list_groups(request->topic()))
      to_proto(group, response->add_groups());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::DescribeGroup(grpc::CallbackServerContext* context,
                                                       const v1::DescribeGroupRequest* request,
                                                       v1::DescribeGroupResponse* response) {
  return run_unary(context, [request, response](Broker& engine) -> absl::Status {
    auto group = engine.find_group(request->topic(), request->group());
    if (!group.ok()) return group.status();
    to_proto((*group)->describe(), response->mutable_group());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::ResetOffsets(grpc::CallbackServerContext* context,
                                                      const v1::ResetOffsetsRequest* request,
                                                      v1::ResetOffsetsResponse* response) {
  return run_unary(context, [request, response](Broker& engine) -> absl::Status {
    auto group = engine.find_group(request->topic(), request->group());
    if (!group.ok()) return group.status();
    std::optional<uint32_t> partition;
    if (request->has_partition()) partition = request->partition();
    auto start = start_from_proto(request->start(), request->offset(), request->timestamp());
    if (auto status = (*group)->reset_offsets(start, partition); !status.ok()) return status;
    to_proto((*group)->describe(), response->mutable_group());
    return absl::OkStatus();
  });
}

}  // namespace telekern::broker
