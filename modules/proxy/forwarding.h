// How each telekern.broker.v1.Broker call is served by the upstreams: which
// upstreams a request goes to (the router's owners of its partitions), how
// it is split (records by partition, deliveries by owner) and how the
// answers merge (topics, partitions and groups as the owners see them). The
// service file maps gRPC calls onto these; routing lives here.
#pragma once

#include <absl/status/status.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "proxy_engine.h"
#include "telekern/broker/v1/broker.pb.h"

namespace telekern::proxy {

namespace bv1 = broker::v1;
using Clock = std::chrono::system_clock;
using Done = std::function<void(absl::Status)>;

void produce(ProxyEngine& engine, Clock::time_point deadline, const bv1::ProduceRequest& request,
             bv1::ProduceResponse* response, Done done);
// ProduceRequest.batch from a client: the proxy batches its own lane
// messages and takes none.
absl::Status batch_refused();
bv1::ProduceResponse produce_error(uint64_t sequence, const absl::Status& status);
absl::Status add_partitions(ProxyEngine& engine, Clock::time_point deadline,
                            const bv1::AddPartitionsRequest* request,
                            bv1::AddPartitionsResponse* response);
absl::Status delete_topic(ProxyEngine& engine, Clock::time_point deadline,
                          const bv1::DeleteTopicRequest* request);
absl::Status list_topics(ProxyEngine& engine, Clock::time_point deadline,
                         const bv1::ListTopicsRequest* request, bv1::ListTopicsResponse* response);
absl::Status describe_topic(ProxyEngine& engine, Clock::time_point deadline,
                            const bv1::DescribeTopicRequest* request,
                            bv1::DescribeTopicResponse* response);
absl::Status list_groups(ProxyEngine& engine, Clock::time_point deadline,
                         const bv1::ListGroupsRequest* request, bv1::ListGroupsResponse* response);
absl::Status describe_group(ProxyEngine& engine, Clock::time_point deadline,
                            const bv1::DescribeGroupRequest* request,
                            bv1::DescribeGroupResponse* response);
absl::Status reset_offsets(ProxyEngine& engine, Clock::time_point deadline,
                           const bv1::ResetOffsetsRequest* request,
                           bv1::ResetOffsetsResponse* response);
void ack(ProxyEngine& engine, Clock::time_point deadline, const bv1::AckRequest* request,
         bv1::AckResponse* response, Done done);
void nack(ProxyEngine& engine, Clock::time_point deadline, const bv1::NackRequest* request,
          bv1::NackResponse* response, Done done);
void extend_visibility(ProxyEngine& engine, Clock::time_point deadline,
                       const bv1::ExtendVisibilityRequest* request,
                       bv1::ExtendVisibilityResponse* response, Done done);
void commit(ProxyEngine& engine, Clock::time_point deadline, const bv1::CommitRequest* request,
            bv1::CommitResponse* response, Done done);

absl::Status create_topic(ProxyEngine& engine, Clock::time_point deadline,
                          const bv1::CreateTopicRequest* request,
                          bv1::CreateTopicResponse* response);
// INVALID_ARGUMENT past max_partitions.
absl::Status check_partition(const ProxyEngine& engine, uint32_t partition);
// Partitions [0, partitions) of `topic` per upstream serving them now.
std::map<std::string, uint64_t> partitions_owned(ProxyEngine& engine, const std::string& topic,
                                                 uint32_t partitions);

}  // namespace telekern::proxy
