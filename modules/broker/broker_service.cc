#include "broker_service.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <atomic>
#include <deque>

#include "consume_loop.h"
#include "telekern/proto_time.h"
#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

using google::protobuf::util::TimeUtil;

int64_t to_ms(const google::protobuf::Timestamp& timestamp) {
  return TimeUtil::TimestampToMilliseconds(timestamp);
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
  call.grow_partitions = request.grow_partitions();
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

void to_proto(const TopicLimits& limits, v1::TopicLimits* out) {
  out->set_max_partitions(limits.max_partitions);
  out->set_max_record_bytes(limits.max_record_bytes);
  out->set_max_in_flight(limits.max_in_flight);
  out->set_max_topics(limits.max_topics);
  out->set_topics(limits.topics);
  out->set_max_groups(limits.max_groups);
  out->set_groups(limits.groups);
  out->set_max_groups_per_topic(limits.max_groups_per_topic);
  out->set_topic_groups(limits.topic_groups);
  out->set_min_free_disk_bytes(limits.min_free_disk_bytes);
  out->set_free_disk_bytes(limits.free_disk_bytes);
  out->set_max_open_files(limits.max_open_files);
  out->set_open_files(limits.open_files);
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
  to_proto(description.limits, out->mutable_limits());
}

// The (partition, offset) pairs a request names: the list, or the shorthand fields.
template <typename Request>
std::vector<std::pair<uint32_t, uint64_t>> deliveries_of(const Request& request) {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  for (const auto& ref : request.deliveries()) out.emplace_back(ref.partition(), ref.offset());
  if (out.empty()) out.emplace_back(request.partition(), request.offset());
  return out;
}

ConsumeSpec consume_spec(const v1::ConsumeRequest& request) {
  ConsumeSpec spec;
  spec.topic = request.topic();
  spec.group = request.group();
  spec.member = request.member();
  spec.mode = from_proto(request.mode());
  spec.start = start_from_proto(request.start(), request.start_offset(), request.start_time());
  if (request.has_visibility_timeout())
    spec.visibility_timeout = to_milliseconds(request.visibility_timeout());
  spec.max_in_flight = request.max_in_flight();
  spec.max_batch = request.max_batch();
  spec.max = request.max();
  spec.auto_commit = request.auto_commit();
  if (request.has_wait()) spec.idle_limit = to_milliseconds(request.wait());
  return spec;
}

v1::ConsumeResponse to_proto(ConsumeBatch& batch) {
  v1::ConsumeResponse response;
  response.set_member(std::move(batch.member));
  if (batch.assigned_partitions) {
    for (uint32_t partition : *batch.assigned_partitions)
      response.add_assigned_partitions(partition);
  }
  for (auto& delivery : batch.deliveries) {
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
  }
  return response;
}

// value_as_text: keys and values that are valid UTF-8 move to their text
// fields, so JSON shows them as written rather than as base64.
void values_as_text(v1::ConsumeResponse& response) {
  for (auto& record : *response.mutable_records()) {
    if (!record.key().empty() && is_valid_utf8(record.key())) {
      record.set_key_text(std::move(*record.mutable_key()));
      record.clear_key();
    }
    if (!record.value().empty() && is_valid_utf8(record.value())) {
      record.set_value_text(std::move(*record.mutable_value()));
      record.clear_value();
    }
  }
}

// One message of a ProduceStream, in the engine's terms: a request, or a
// batch of them (ProduceRequest.batch), answered together.
struct QueuedProduce {
  struct One {
    uint64_t sequence = 0;
    ProduceCall call;
  };
  std::vector<One> requests;
  bool batch = false;
};

QueuedProduce queued_produce(const v1::ProduceRequest& request) {
  QueuedProduce item;
  item.batch = request.batch_size() > 0;
  if (!item.batch) {
    item.requests.push_back({request.sequence(), produce_call(request)});
    return item;
  }
  item.requests.reserve(request.batch_size());
  for (const auto& one : request.batch())
    item.requests.push_back({one.sequence(), produce_call(one)});
  return item;
}

void fill_answer(uint64_t sequence, const ProduceResult& result, v1::ProduceResponse* response) {
  response->set_sequence(sequence);
  if (result.ok()) {
    to_proto(*result, response);
  } else {
    response->set_error_code(static_cast<int32_t>(result.status().code()));
    response->set_error_message(std::string(result.status().message()));
  }
}

// The answer to a whole stream message: every request failed with `status`.
v1::ProduceResponse refused_answer(const QueuedProduce& item, const absl::Status& status) {
  v1::ProduceResponse response;
  response.set_accepts_batch(true);
  if (!item.batch) {
    fill_answer(item.requests.front().sequence, status, &response);
    return response;
  }
  for (const auto& one : item.requests) fill_answer(one.sequence, status, response.add_batch());
  return response;
}

// Appends a stream message's requests in order and answers it once all are
// done (with FSYNC they finish in the group commit, possibly on other threads).
void produce_queued(Broker& engine, QueuedProduce item,
                    std::function<void(v1::ProduceResponse)> answer) {
  if (!item.batch) {  // one request: answered straight from its completion
    auto& one = item.requests.front();
    engine.produce(std::move(one.call),
                   [sequence = one.sequence, answer = std::move(answer)](ProduceResult result) {
                     v1::ProduceResponse response;
                     response.set_accepts_batch(true);
                     fill_answer(sequence, result, &response);
                     answer(std::move(response));
                   });
    return;
  }
  struct Answer {
    v1::ProduceResponse response;
    std::atomic<size_t> remaining;
    std::function<void(v1::ProduceResponse)> send;
  };
  auto state = std::make_shared<Answer>();
  state->response.set_accepts_batch(true);
  state->remaining = item.requests.size();
  state->send = std::move(answer);
  std::vector<v1::ProduceResponse*> outs;  // made before any request can finish
  for (size_t i = 0; i < item.requests.size(); ++i) outs.push_back(state->response.add_batch());
  for (size_t i = 0; i < item.requests.size(); ++i) {
    // Each request fills its own answer; the last one done sends them all.
    engine.produce(
        std::move(item.requests[i].call),
        [state, out = outs[i], sequence = item.requests[i].sequence](ProduceResult result) {
          fill_answer(sequence, result, out);
          if (state->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1)
            state->send(std::move(state->response));
        });
  }
}

}  // namespace

BrokerService::BrokerService() {
  serve_locally("CreateTopic", &BrokerService::CreateTopic);
  serve_locally("DeleteTopic", &BrokerService::DeleteTopic);
  serve_locally("ListTopics", &BrokerService::ListTopics);
  serve_locally("DescribeTopic", &BrokerService::DescribeTopic);
  serve_locally("AddPartitions", &BrokerService::AddPartitions);
  serve_locally("Produce", &BrokerService::Produce);
  serve_locally("Ack", &BrokerService::Ack);
  serve_locally("Nack", &BrokerService::Nack);
  serve_locally("ExtendVisibility", &BrokerService::ExtendVisibility);
  serve_locally("Commit", &BrokerService::Commit);
  serve_locally("ListGroups", &BrokerService::ListGroups);
  serve_locally("DescribeGroup", &BrokerService::DescribeGroup);
  serve_locally("ResetOffsets", &BrokerService::ResetOffsets);
}

grpc::ServerUnaryReactor* BrokerService::CreateTopic(grpc::CallbackServerContext* context,
                                                     const v1::CreateTopicRequest* request,
                                                     v1::CreateTopicResponse* response) {
  return binding_.unary(context, [request, response](Broker& engine) -> absl::Status {
    CreateTopicOptions options;
    options.partitions = request->partitions();
    if (request->has_retention())
      options.retention_ms = to_milliseconds(request->retention()).count();
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
  return binding_.unary(
      context, [request](Broker& engine) { return engine.delete_topic(request->topic()); });
}

grpc::ServerUnaryReactor* BrokerService::ListTopics(grpc::CallbackServerContext* context,
                                                    const v1::ListTopicsRequest*,
                                                    v1::ListTopicsResponse* response) {
  return binding_.unary(context, [response](Broker& engine) {
    for (const auto& topic : engine.list_topics()) {
      auto* out = response->add_topics();
      out->set_topic(topic.name);
      out->set_partitions(topic.spec.partitions);
      out->set_bytes(topic.bytes);
      out->set_records(topic.records);
    }
    to_proto(engine.limits(), response->mutable_limits());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::DescribeTopic(grpc::CallbackServerContext* context,
                                                       const v1::DescribeTopicRequest* request,
                                                       v1::DescribeTopicResponse* response) {
  return binding_.unary(context, [request, response](Broker& engine) -> absl::Status {
    auto description = engine.describe_topic(request->topic());
    if (!description.ok()) return description.status();
    to_proto(*description, response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::AddPartitions(grpc::CallbackServerContext* context,
                                                       const v1::AddPartitionsRequest* request,
                                                       v1::AddPartitionsResponse* response) {
  return binding_.unary(context, [request, response](Broker& engine) -> absl::Status {
    auto count = engine.add_partitions(request->topic(), request->partitions());
    if (!count.ok()) return count.status();
    response->set_partitions(*count);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::Produce(grpc::CallbackServerContext* context,
                                                 const v1::ProduceRequest* request,
                                                 v1::ProduceResponse* response) {
  response->set_sequence(request->sequence());
  if (request->batch_size() > 0) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "ProduceRequest.batch is for ProduceStream only; send its "
                                 "requests one by one to Produce"));
    return reactor;
  }
  auto call = std::make_shared<ProduceCall>(produce_call(*request));
  auto work = [call, response](Broker& engine, Completion done) {
    engine.produce(std::move(*call), [response, done](ProduceResult result) {
      if (result.ok()) to_proto(*result, response);
      done(result.status());
    });
  };
  // An append to the page cache runs here, on the gRPC thread: the hand-off
  // to an engine thread was most of a produce's latency. Anything that may
  // wait (a new topic, a segment roll, a busy partition, a large batch)
  // still queues for an engine thread.
  auto engine = binding_.engine();
  if (engine && engine->produce_is_quick(*call))
    return binding_.unary_here(context, engine, std::move(work));
  return binding_.unary_async(context, std::move(work));
}

// Pipelined produce: the requests of one stream are appended in arrival
// order, so pipelining never reorders a partition (a quick one runs on the
// gRPC thread only when none is queued before it); FSYNC answers come from
// the group commit, in completion order. A batch message (a proxy's) is
// appended request by request and answered once, in one message.
grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse>* BrokerService::ProduceStream(
    grpc::CallbackServerContext*) {
  return binding_.pipelined_stream<v1::ProduceRequest, v1::ProduceResponse, QueuedProduce>(
      queued_produce, produce_queued, refused_answer,
      // As Produce: an append to the page cache runs on the gRPC thread.
      [](Broker& engine, const QueuedProduce& item) {
        return std::all_of(item.requests.begin(), item.requests.end(), [&engine](const auto& one) {
          return engine.produce_is_quick(one.call);
        });
      });
}

grpc::ServerWriteReactor<v1::ConsumeResponse>* BrokerService::Consume(
    grpc::CallbackServerContext* context, const v1::ConsumeRequest* request) {
  // No thread per stream: the session's steps run on the binding's step
  // threads, and a waiting stream is woken by the topic's next change.
  using Step = StreamStep<v1::ConsumeResponse>;
  return binding_.polled_stream<v1::ConsumeResponse>(
      context, [spec = consume_spec(*request), as_text = request->value_as_text()](Broker& engine) {
        // Joined on the first step (a step thread, not gRPC's); left when
        // the stream finishes, which drops this step function.
        return [&engine, spec, as_text, session = std::shared_ptr<ConsumeSession>()](
                   const StepWaker& wake, std::stop_token stop) mutable {
          if (!session) session = std::make_shared<ConsumeSession>(engine, spec);
          // Woken by the topic's changes; a waiting stream rechecks every 2 s
          // only, so ten thousand idle streams cost little CPU.
          auto step = session->next(stop, std::chrono::seconds(2));
          if (step.done) return Step::done(*step.done);
          if (step.batch) {
            auto response = to_proto(*step.batch);
            if (as_text) values_as_text(response);
            return Step::write(std::move(response));
          }
          session->arm_waker(wake);
          return Step::wait(step.wait_until);
        };
      });
}

grpc::ServerUnaryReactor* BrokerService::Ack(grpc::CallbackServerContext* context,
                                             const v1::AckRequest* request,
                                             v1::AckResponse* response) {
  return binding_.unary(context, [request, response](Broker& engine) -> absl::Status {
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
  return binding_.unary(context, [request, response](Broker& engine) -> absl::Status {
    auto group = engine.find_group(request->topic(), request->group());
    if (!group.ok()) return group.status();
    std::optional<std::chrono::milliseconds> delay;
    if (request->has_delay()) delay = to_milliseconds(request->delay());
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
  return binding_.unary(context, [request, response](Broker& engine) -> absl::Status {
    if (!request->has_visibility_timeout()) {
      return absl::InvalidArgumentError(
          "extend needs visibility_timeout (--visibility-timeout 60s)");
    }
    auto group = engine.find_group(request->topic(), request->group());
    if (!group.ok()) return group.status();
    auto now = Clock::now();
    for (const auto& [partition, offset] : deliveries_of(*request)) {
      auto extended =
          (*group)->extend(partition, offset, to_milliseconds(request->visibility_timeout()), now);
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
  return binding_.unary(context, [request](Broker& engine) -> absl::Status {
    auto group = engine.open_group(request->topic(), request->group(), std::nullopt);
    if (!group.ok()) return group.status();
    // The single pair plus `offsets` ("more partitions at once"); a zero
    // pair beside `offsets` is the unset default, not a commit to offset 0.
    std::vector<std::pair<uint32_t, uint64_t>> offsets;
    if (request->offsets().empty() || request->offset() > 0)
      offsets.emplace_back(request->partition(), request->offset());
    for (const auto& ref : request->offsets()) offsets.emplace_back(ref.partition(), ref.offset());
    for (const auto& [partition, offset] : offsets) {
      if (auto status = (*group)->commit(partition, offset); !status.ok()) return status;
    }
    return (*group)->sync_state();
  });
}

grpc::ServerUnaryReactor* BrokerService::ListGroups(grpc::CallbackServerContext* context,
                                                    const v1::ListGroupsRequest* request,
                                                    v1::ListGroupsResponse* response) {
  return binding_.unary(context, [request, response](Broker& engine) {
    for (const auto& group : engine.list_groups(request->topic()))
      to_proto(group, response->add_groups());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::DescribeGroup(grpc::CallbackServerContext* context,
                                                       const v1::DescribeGroupRequest* request,
                                                       v1::DescribeGroupResponse* response) {
  return binding_.unary(context, [request, response](Broker& engine) -> absl::Status {
    auto group = engine.find_group(request->topic(), request->group());
    if (!group.ok()) return group.status();
    to_proto((*group)->describe(), response->mutable_group());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::ResetOffsets(grpc::CallbackServerContext* context,
                                                      const v1::ResetOffsetsRequest* request,
                                                      v1::ResetOffsetsResponse* response) {
  return binding_.unary(context, [request, response](Broker& engine) -> absl::Status {
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
