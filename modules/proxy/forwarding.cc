#include "forwarding.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include "forwarder.h"
#include "hash.h"
#include "telekern/strings.h"

namespace telekern::proxy {
namespace {

// Upstreams serving partitions [0, partitions) of `topic`, in address order.
absl::StatusOr<std::vector<std::shared_ptr<Upstream>>> serving(ProxyEngine& engine,
                                                               const std::string& topic,
                                                               uint32_t partitions) {
  std::map<std::string, std::shared_ptr<Upstream>> out;
  for (uint32_t p = 0; p < partitions; ++p) {
    auto upstream = engine.router().route(topic, p);
    if (!upstream.ok()) return upstream.status();
    out[(*upstream)->address] = *upstream;
  }
  std::vector<std::shared_ptr<Upstream>> list;
  for (auto& [_, upstream] : out) list.push_back(std::move(upstream));
  return list;
}

absl::Status no_upstreams(ProxyEngine& engine) { return engine.router().route("", 0).status(); }

template <typename Request>
std::vector<Target<Request>> to_each(const std::vector<std::shared_ptr<Upstream>>& upstreams,
                                     const Request& request) {
  std::vector<Target<Request>> targets;
  for (const auto& upstream : upstreams) targets.push_back({upstream, {}, &request});
  return targets;
}

std::atomic<uint64_t> round_robin{0};

// ---- Merging the upstreams' views ----------------------------------------

struct GroupView {
  std::string upstream;
  const bv1::GroupInfo* group;
};

// One group as the upstreams see it: each partition from the upstream that
// serves it now (else from the one that read furthest); members united.
void merge_group(ProxyEngine& engine, const std::vector<GroupView>& views, bv1::GroupInfo* out) {
  if (views.empty()) return;
  out->set_group(views[0].group->group());
  out->set_topic(views[0].group->topic());
  out->set_mode(views[0].group->mode());
  std::map<uint32_t, std::pair<bool, bv1::GroupPartition>> partitions;  // (from owner, info)
  std::set<std::string> members;
  uint64_t dead_lettered = 0;
  for (const auto& view : views) {
    for (const auto& member : view.group->members()) members.insert(member);
    dead_lettered += view.group->dead_lettered();
    for (const auto& partition : view.group->partitions()) {
      auto owner = engine.router().route(view.group->topic(), partition.partition());
      bool from_owner = owner.ok() && (*owner)->address == view.upstream;
      auto [it, fresh] = partitions.try_emplace(partition.partition(), from_owner, partition);
      if (fresh) continue;
      auto& [chosen_from_owner, chosen] = it->second;
      if (from_owner ||
          (!chosen_from_owner && chosen.committed_offset() < partition.committed_offset())) {
        chosen_from_owner = from_owner;
        chosen = partition;
      }
    }
  }
  uint64_t lag = 0, in_flight = 0;
  for (auto& [p, entry] : partitions) {
    lag += entry.second.lag();
    in_flight += entry.second.in_flight();
    *out->add_partitions() = std::move(entry.second);
  }
  for (const auto& member : members) out->add_members(member);
  out->set_lag(lag);
  out->set_in_flight(in_flight);
  out->set_dead_lettered(dead_lettered);
}

// Groups from several upstreams' answers, merged by (topic, group).
template <typename Response, typename Groups>
void merge_groups(ProxyEngine& engine, std::vector<UpstreamResult<Response>>& results,
                  Groups groups_of, google::protobuf::RepeatedPtrField<bv1::GroupInfo>* out) {
  std::map<std::pair<std::string, std::string>, std::vector<GroupView>> by_name;
  for (auto& result : results) {
    if (!result.status.ok()) continue;
    for (const auto& group : groups_of(result.response))
      by_name[{group.topic(), group.group()}].push_back({result.upstream, &group});
  }
  for (const auto& [_, views] : by_name) merge_group(engine, views, out->Add());
}

// The answers that succeeded; the first error when none did.
template <typename Response>
absl::Status any_ok(const std::vector<UpstreamResult<Response>>& results) {
  for (const auto& result : results) {
    if (result.status.ok()) return absl::OkStatus();
  }
  return first_error(results);
}

// ---- Delivery-addressed calls (Ack, Nack, ExtendVisibility, Commit) ---------

// Splits a request naming (partition, offset) pairs by the upstream serving
// each partition; `refs(request)` is the repeated field of pairs.
template <typename Request, typename Refs>
absl::StatusOr<std::vector<Target<Request>>> split_by_owner(ProxyEngine& engine,
                                                            const Request& request, Refs refs) {
  std::vector<Target<Request>> targets;
  const auto& list = refs(const_cast<Request&>(request));
  if (list.empty()) {
    auto upstream = engine.router().route(request.topic(), request.partition());
    if (!upstream.ok()) return upstream.status();
    targets.push_back({*upstream, {}, &request});
    return targets;
  }
  std::map<std::string, size_t> index;
  for (const auto& ref : list) {
    auto upstream = engine.router().route(request.topic(), ref.partition());
    if (!upstream.ok()) return upstream.status();
    auto [it, fresh] = index.try_emplace((*upstream)->address, targets.size());
    if (fresh) {
      Target<Request> target{*upstream, request};
      refs(target.request).Clear();
      targets.push_back(std::move(target));
    }
    *refs(targets[it->second].request).Add() = ref;
  }
  if (targets.size() == 1) {  // one owner: forward the client's request as is
    targets[0].request.Clear();
    targets[0].borrowed = &request;
  }
  return targets;
}

// A call retried after UNAVAILABLE may have been applied by the attempt that
// answered UNAVAILABLE: a retry answering `applied` (ALREADY_EXISTS for a
// create, NOT_FOUND for a delete) found that attempt's work done.
template <typename Response>
void settle_retried(std::vector<UpstreamResult<Response>>& results, grpc::StatusCode applied) {
  for (auto& result : results) {
    if (result.attempts > 1 && result.status.error_code() == applied)
      result.status = grpc::Status();
  }
}

}  // namespace

absl::Status check_partition(const ProxyEngine& engine, uint32_t partition) {
  if (partition < engine.options().max_partitions) return absl::OkStatus();
  return absl::InvalidArgumentError(
      str_cat("partition ", partition, " exceeds max_partitions=", engine.options().max_partitions,
              " of the proxy; use a lower partition or raise it"));
}

// ---- Produce -------------------------------------------------------------

// Keyed records go to the broker's partition for their key (picked here, so
// the owner is known); records without a key share one partition per
// request, round-robin.
void produce(ProxyEngine& engine, Clock::time_point deadline, const bv1::ProduceRequest& request,
             bv1::ProduceResponse* response, Done done) {
  if (request.topic().empty()) {
    done(absl::InvalidArgumentError("produce needs a topic; give ProduceRequest.topic"));
    return;
  }
  if (request.batch_size() > 0) return done(batch_refused());
  auto merge = [response, sequence = request.sequence()](
                   std::vector<UpstreamResult<bv1::ProduceResponse>>& results) -> absl::Status {
    std::vector<bv1::PartitionAppend> appends;
    std::vector<uint32_t> written;
    for (auto& result : results) {
      if (!result.status.ok()) continue;
      for (auto& append : *result.response.mutable_appends()) {
        written.push_back(append.partition());
        appends.push_back(std::move(append));
      }
    }
    auto error = first_error(results);
    if (!error.ok()) {
      if (written.empty()) return error;
      std::string partitions;
      for (uint32_t p : written) partitions += (partitions.empty() ? "" : ",") + std::to_string(p);
      return absl::Status(error.code(), str_cat(error.message(), " (partitions ", partitions,
                                                " were written; retry only the failed records)"));
    }
    std::sort(appends.begin(), appends.end(),
              [](const auto& a, const auto& b) { return a.partition() < b.partition(); });
    for (auto& append : appends) *response->add_appends() = std::move(append);
    response->set_sequence(sequence);
    return absl::OkStatus();
  };
  auto send = [&](std::vector<Target<bv1::ProduceRequest>> targets) {
    fan_out<bv1::ProduceRequest, bv1::ProduceResponse>(engine, deadline, std::move(targets),
                                                       TELEKERN_PROXY_METHOD(Produce),
                                                       std::move(merge), std::move(done));
  };
  auto route = [&](uint32_t partition) -> absl::StatusOr<std::shared_ptr<Upstream>> {
    if (auto status = check_partition(engine, partition); !status.ok()) return status;
    return engine.router().route(request.topic(), partition);
  };

  if (request.has_partition()) {
    auto upstream = route(request.partition());
    if (!upstream.ok()) return done(upstream.status());
    // Each broker holds only the partitions the ring gives it: the first
    // write to one creates it there (grow_partitions).
    Target<bv1::ProduceRequest> target{*upstream, request};
    target.request.set_grow_partitions(true);
    return send({std::move(target)});
  }
  bool keyed = request.records().empty() ? !request.key().empty() : false;
  for (const auto& record : request.records()) keyed = keyed || !record.key().empty();
  uint32_t count = engine.partitions_of(request.topic());
  uint32_t unkeyed = static_cast<uint32_t>(round_robin.fetch_add(1) % count);
  if (!keyed) {
    auto upstream = route(unkeyed);
    if (!upstream.ok()) return done(upstream.status());
    Target<bv1::ProduceRequest> target{*upstream, request};
    target.request.set_partition(unkeyed);
    target.request.set_grow_partitions(true);
    return send({std::move(target)});
  }
  // Group the records by partition: one forwarded request per partition.
  std::map<uint32_t, bv1::ProduceRequest> by_partition;
  auto request_for = [&](uint32_t partition) -> bv1::ProduceRequest& {
    auto& sub = by_partition[partition];
    if (sub.topic().empty()) {
      sub.set_topic(request.topic());
      sub.set_partition(partition);
      sub.set_grow_partitions(true);
      sub.set_durability(request.durability());
      sub.set_sequence(request.sequence());
    }
    return sub;
  };
  if (request.records().empty()) {
    auto& sub = request_for(key_partition(request.key(), count));
    sub.set_key(request.key());
    sub.set_value(request.value());
  }
  for (const auto& record : request.records()) {
    uint32_t partition = record.key().empty() ? unkeyed : key_partition(record.key(), count);
    *request_for(partition).add_records() = record;
  }
  std::vector<Target<bv1::ProduceRequest>> targets;
  for (auto& [partition, sub] : by_partition) {
    auto upstream = route(partition);
    if (!upstream.ok()) return done(upstream.status());
    targets.push_back({*upstream, std::move(sub)});
  }
  send(std::move(targets));
}

absl::Status batch_refused() {
  return absl::InvalidArgumentError(
      "ProduceRequest.batch is for a proxy's ProduceStream to a broker; send one request per "
      "message, with its records");
}

bv1::ProduceResponse produce_error(uint64_t sequence, const absl::Status& status) {
  bv1::ProduceResponse response;
  response.set_sequence(sequence);
  response.set_error_code(static_cast<int32_t>(status.code()));
  response.set_error_message(std::string(status.message()));
  return response;
}

absl::Status add_partitions(ProxyEngine& engine, Clock::time_point deadline,
                            const bv1::AddPartitionsRequest* request,
                            bv1::AddPartitionsResponse* response) {
  if (request->partitions() > engine.options().max_partitions)
    return absl::InvalidArgumentError(
        str_cat("topic '", request->topic(), "' asks for ", request->partitions(),
                " partitions; the proxy's max_partitions=", engine.options().max_partitions,
                "; ask for fewer or raise it"));
  auto upstreams = serving(engine, request->topic(), request->partitions());
  if (!upstreams.ok()) return upstreams.status();
  auto results = call_all_idempotent<bv1::AddPartitionsRequest, bv1::AddPartitionsResponse>(
      engine, deadline, to_each(*upstreams, *request), TELEKERN_PROXY_METHOD(AddPartitions));
  // An upstream that owns partitions of the grown topic for the first time
  // does not have it yet: create it there with the new count.
  std::vector<Target<bv1::CreateTopicRequest>> creates;
  bv1::CreateTopicRequest create;
  create.set_topic(request->topic());
  create.set_partitions(request->partitions());
  bool any_ok = false;
  for (size_t i = 0; i < results.size(); ++i) {
    any_ok = any_ok || results[i].status.ok();
    if (results[i].status.error_code() == grpc::StatusCode::NOT_FOUND)
      creates.push_back({(*upstreams)[i], create});
  }
  if (!any_ok) return first_error(results);
  auto created = call_all_idempotent<bv1::CreateTopicRequest, bv1::CreateTopicResponse>(
      engine, deadline, std::move(creates), TELEKERN_PROXY_METHOD(CreateTopic));
  settle_retried(created, grpc::StatusCode::ALREADY_EXISTS);
  if (auto error = first_error(created); !error.ok()) return error;
  for (const auto& result : results) {
    if (!result.status.ok() && result.status.error_code() != grpc::StatusCode::NOT_FOUND)
      return first_error(results);
  }
  response->set_partitions(request->partitions());
  engine.remember_partitions(request->topic(), request->partitions());
  return absl::OkStatus();
}

absl::Status delete_topic(ProxyEngine& engine, Clock::time_point deadline,
                          const bv1::DeleteTopicRequest* request) {
  auto upstreams = engine.router().routable();
  if (upstreams.empty()) return no_upstreams(engine);
  auto results = call_all_idempotent<bv1::DeleteTopicRequest, bv1::DeleteTopicResponse>(
      engine, deadline, to_each(upstreams, *request), TELEKERN_PROXY_METHOD(DeleteTopic));
  settle_retried(results, grpc::StatusCode::NOT_FOUND);
  engine.forget_topic(request->topic());
  bool deleted = false;
  for (const auto& result : results) {
    if (result.status.ok()) deleted = true;
    if (!result.status.ok() && result.status.error_code() != grpc::StatusCode::NOT_FOUND)
      return first_error(results);
  }
  return deleted ? absl::OkStatus() : first_error(results);
}

absl::Status list_topics(ProxyEngine& engine, Clock::time_point deadline,
                         const bv1::ListTopicsRequest* request, bv1::ListTopicsResponse* response) {
  auto upstreams = engine.router().routable();
  if (upstreams.empty()) return no_upstreams(engine);
  auto results = call_all_idempotent<bv1::ListTopicsRequest, bv1::ListTopicsResponse>(
      engine, deadline, to_each(upstreams, *request), TELEKERN_PROXY_METHOD(ListTopics));
  if (auto status = any_ok(results); !status.ok()) return status;
  std::map<std::string, bv1::TopicSummary> merged;
  for (const auto& result : results) {
    for (const auto& topic : result.response.topics()) {
      auto& slot = merged[topic.topic()];
      slot.set_topic(topic.topic());
      slot.set_partitions(std::max(slot.partitions(), topic.partitions()));
      slot.set_bytes(slot.bytes() + topic.bytes());
      slot.set_records(slot.records() + topic.records());
    }
  }
  for (auto& [_, topic] : merged) *response->add_topics() = std::move(topic);
  return absl::OkStatus();
}

absl::Status describe_topic(ProxyEngine& engine, Clock::time_point deadline,
                            const bv1::DescribeTopicRequest* request,
                            bv1::DescribeTopicResponse* response) {
  auto upstreams = engine.router().routable();
  if (upstreams.empty()) return no_upstreams(engine);
  auto results = call_all_idempotent<bv1::DescribeTopicRequest, bv1::DescribeTopicResponse>(
      engine, deadline, to_each(upstreams, *request), TELEKERN_PROXY_METHOD(DescribeTopic));
  if (auto status = any_ok(results); !status.ok()) return status;
  // Each partition as the upstream serving it sees it; data written
  // elsewhere during a failover shows where it lives only while that
  // upstream serves the partition.
  std::map<uint32_t, std::pair<bool, bv1::PartitionInfo>> partitions;
  bool first = true;
  uint32_t count = 0;
  for (const auto& result : results) {
    if (!result.status.ok()) continue;
    if (first) {
      response->set_topic(result.response.topic());
      *response->mutable_config() = result.response.config();
      *response->mutable_limits() = result.response.limits();
      first = false;
    }
    count = std::max(count, result.response.config().partitions());
    for (const auto& partition : result.response.partitions()) {
      auto owner = engine.router().route(request->topic(), partition.partition());
      bool from_owner = owner.ok() && (*owner)->address == result.upstream;
      auto [it, fresh] = partitions.try_emplace(partition.partition(), from_owner, partition);
      if (!fresh && (from_owner || (!it->second.first &&
                                    it->second.second.end_offset() < partition.end_offset()))) {
        it->second = {from_owner, partition};
      }
    }
  }
  response->mutable_config()->set_partitions(count);
  engine.remember_partitions(request->topic(), count);
  for (auto& [_, entry] : partitions) *response->add_partitions() = std::move(entry.second);
  merge_groups(
      engine, results,
      [](const bv1::DescribeTopicResponse& r) -> const auto& { return r.groups(); },
      response->mutable_groups());
  return absl::OkStatus();
}

absl::Status list_groups(ProxyEngine& engine, Clock::time_point deadline,
                         const bv1::ListGroupsRequest* request, bv1::ListGroupsResponse* response) {
  auto upstreams = engine.router().routable();
  if (upstreams.empty()) return no_upstreams(engine);
  auto results = call_all_idempotent<bv1::ListGroupsRequest, bv1::ListGroupsResponse>(
      engine, deadline, to_each(upstreams, *request), TELEKERN_PROXY_METHOD(ListGroups));
  if (auto status = any_ok(results); !status.ok()) return status;
  merge_groups(
      engine, results, [](const bv1::ListGroupsResponse& r) -> const auto& { return r.groups(); },
      response->mutable_groups());
  return absl::OkStatus();
}

absl::Status describe_group(ProxyEngine& engine, Clock::time_point deadline,
                            const bv1::DescribeGroupRequest* request,
                            bv1::DescribeGroupResponse* response) {
  auto upstreams = engine.router().routable();
  if (upstreams.empty()) return no_upstreams(engine);
  auto results = call_all_idempotent<bv1::DescribeGroupRequest, bv1::DescribeGroupResponse>(
      engine, deadline, to_each(upstreams, *request), TELEKERN_PROXY_METHOD(DescribeGroup));
  if (auto status = any_ok(results); !status.ok()) return status;
  std::vector<GroupView> views;
  for (const auto& result : results) {
    if (result.status.ok()) views.push_back({result.upstream, &result.response.group()});
  }
  merge_group(engine, views, response->mutable_group());
  return absl::OkStatus();
}

absl::Status reset_offsets(ProxyEngine& engine, Clock::time_point deadline,
                           const bv1::ResetOffsetsRequest* request,
                           bv1::ResetOffsetsResponse* response) {
  std::vector<std::shared_ptr<Upstream>> upstreams;
  if (request->has_partition()) {
    auto upstream = engine.router().route(request->topic(), request->partition());
    if (!upstream.ok()) return upstream.status();
    upstreams.push_back(*upstream);
  } else {
    auto serving_now = serving(engine, request->topic(), engine.partitions_of(request->topic()));
    if (!serving_now.ok()) return serving_now.status();
    upstreams = std::move(*serving_now);
  }
  auto results = call_all_idempotent<bv1::ResetOffsetsRequest, bv1::ResetOffsetsResponse>(
      engine, deadline, to_each(upstreams, *request), TELEKERN_PROXY_METHOD(ResetOffsets));
  if (auto error = first_error(results); !error.ok()) return error;
  std::vector<GroupView> views;
  for (const auto& result : results) views.push_back({result.upstream, &result.response.group()});
  merge_group(engine, views, response->mutable_group());
  return absl::OkStatus();
}

// Ack, Nack, ExtendVisibility and Commit: each owner gets its deliveries;
// counts add up.
#define TELEKERN_PROXY_BY_DELIVERY(Method, function, refs_field, merge_body)                       \
  void function(ProxyEngine& engine, Clock::time_point deadline,                                   \
                const bv1::Method##Request* request, bv1::Method##Response* response, Done done) { \
    auto targets = split_by_owner(                                                                 \
        engine, *request,                                                                          \
        [](bv1::Method##Request & r) -> auto& { return *r.mutable_##refs_field(); });              \
    if (!targets.ok()) return done(targets.status());                                              \
    fan_out_idempotent<bv1::Method##Request, bv1::Method##Response>(                               \
        engine, deadline, std::move(*targets), TELEKERN_PROXY_METHOD(Method),                      \
        [response](std::vector<UpstreamResult<bv1::Method##Response>>& results) {                  \
          for (const auto& result : results) {                                                     \
            if (!result.status.ok()) continue;                                                     \
            const auto& r = result.response;                                                       \
            merge_body;                                                                            \
          }                                                                                        \
          return first_error(results);                                                             \
        },                                                                                         \
        std::move(done));                                                                          \
  }

TELEKERN_PROXY_BY_DELIVERY(Ack, ack, deliveries, {
  response->set_acked(response->acked() + r.acked());
  response->set_unknown(response->unknown() + r.unknown());
})
TELEKERN_PROXY_BY_DELIVERY(Nack, nack, deliveries, {
  response->set_requeued(response->requeued() + r.requeued());
  response->set_dead_lettered(response->dead_lettered() + r.dead_lettered());
  response->set_unknown(response->unknown() + r.unknown());
})
TELEKERN_PROXY_BY_DELIVERY(ExtendVisibility, extend_visibility, deliveries, {
  response->set_extended(response->extended() + r.extended());
  response->set_unknown(response->unknown() + r.unknown());
})
TELEKERN_PROXY_BY_DELIVERY(Commit, commit, offsets, { (void)r; })

absl::Status create_topic(ProxyEngine& engine, Clock::time_point deadline,
                          const bv1::CreateTopicRequest* request,
                          bv1::CreateTopicResponse* response) {
  if (request->topic().empty())
    return absl::InvalidArgumentError("create needs a topic; give CreateTopicRequest.topic");
  uint32_t partitions =
      request->partitions() ? request->partitions() : engine.options().default_partitions;
  if (partitions > engine.options().max_partitions)
    return absl::InvalidArgumentError(
        str_cat("topic '", request->topic(), "' asks for ", partitions,
                " partitions; the proxy's max_partitions=", engine.options().max_partitions,
                "; ask for fewer or raise it"));
  auto upstreams = serving(engine, request->topic(), partitions);
  if (!upstreams.ok()) return upstreams.status();
  // Every owner gets the whole topic (partition numbers stay the
  // client's); only the partitions it owns receive records.
  bv1::CreateTopicRequest forwarded = *request;
  forwarded.set_partitions(partitions);
  auto results = call_all_idempotent<bv1::CreateTopicRequest, bv1::CreateTopicResponse>(
      engine, deadline, to_each(*upstreams, forwarded), TELEKERN_PROXY_METHOD(CreateTopic));
  settle_retried(results, grpc::StatusCode::ALREADY_EXISTS);
  if (auto error = first_error(results); !error.ok()) return error;
  *response = results.front().response;
  for (const auto& result : results) {
    if (result.response.has_config()) {
      *response = result.response;
      break;
    }
  }
  engine.remember_partitions(request->topic(), partitions);
  return absl::OkStatus();
}

std::map<std::string, uint64_t> partitions_owned(ProxyEngine& engine, const std::string& topic,
                                                 uint32_t partitions) {
  std::map<std::string, uint64_t> owned;
  for (uint32_t p = 0; p < partitions; ++p) {
    auto upstream = engine.router().route(topic, p);
    if (upstream.ok()) ++owned[(*upstream)->address];
  }
  return owned;
}

}  // namespace telekern::proxy
