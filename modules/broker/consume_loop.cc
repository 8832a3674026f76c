#include "consume_loop.h"

#include <map>

#include "broker.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

// Leaves the group when the session ends, however it ends.
class Membership {
 public:
  Membership(std::shared_ptr<ConsumerGroup> group, std::string member)
      : group_(std::move(group)), member_(std::move(member)) {}
  ~Membership() { group_->leave(member_); }
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

 private:
  std::shared_ptr<ConsumerGroup> group_;
  std::string member_;
};

}  // namespace

absl::Status consume(Broker& broker, const ConsumeSpec& spec, const ConsumeSink& sink,
                     std::stop_token stop) {
  auto limits = broker.limits();
  if (spec.max_in_flight > limits.max_in_flight) {
    return absl::ResourceExhaustedError(
        str_cat("max_in_flight=", spec.max_in_flight,
                " exceeds the broker's max_in_flight=", limits.max_in_flight));
  }
  if (spec.group.empty()) return absl::InvalidArgumentError("consume needs a group (--group NAME)");
  auto group = broker.open_group(spec.topic, spec.group, spec.mode);
  if (!group.ok()) return group.status();
  MemberOptions options;
  options.name = spec.member;
  options.start = spec.start;
  if (spec.visibility_timeout) options.visibility_timeout = *spec.visibility_timeout;
  options.max_in_flight = spec.max_in_flight;
  auto member = (*group)->join(options);
  if (!member.ok()) return member.status();
  Membership membership(*group, *member);

  const bool log_mode = (*group)->mode() == GroupMode::kLog;
  const size_t batch_size = spec.max_batch == 0 ? 100 : spec.max_batch;
  const auto& topic = (*group)->topic();
  auto engine_stop = broker.stop_token();
  auto last_activity = std::chrono::steady_clock::now();
  uint64_t delivered = 0;
  uint64_t seen_assignment = 0;
  bool first = true;
  while (true) {
    if (stop.stop_requested()) return absl::CancelledError("consume session ended");
    if (engine_stop.stop_requested()) return absl::UnavailableError("broker is stopping; retry");
    ConsumeBatch batch;
    auto [partitions, version] = (*group)->assignment(*member);
    if (first) batch.member = *member;
    if (version != seen_assignment) {
      seen_assignment = version;
      batch.assigned_partitions = std::move(partitions);
    }
    uint64_t topic_version = topic->version();
    size_t want = batch_size;
    if (spec.max > 0) want = std::min<uint64_t>(want, spec.max - delivered);
    auto deliveries = (*group)->poll(*member, want, Clock::now());
    if (!deliveries.ok()) return deliveries.status();
    batch.deliveries = std::move(*deliveries);
    std::map<uint32_t, uint64_t> next_offsets;
    for (const auto& delivery : batch.deliveries)
      next_offsets[delivery.partition] = delivery.record.offset + 1;
    const size_t count = batch.deliveries.size();
    if (first || batch.assigned_partitions || count > 0) {
      if (!sink(batch)) return absl::CancelledError("consumer went away");
    }
    first = false;
    if (count > 0) {
      if (log_mode && spec.auto_commit) {
        for (const auto& [partition, offset] : next_offsets) {
          if (auto status = (*group)->commit(partition, offset); !status.ok()) return status;
        }
      }
      delivered += count;
      last_activity = std::chrono::steady_clock::now();
      if (spec.max > 0 && delivered >= spec.max) return absl::OkStatus();
      continue;
    }
    auto idle = std::chrono::steady_clock::now() - last_activity;
    if (spec.idle_limit && idle >= *spec.idle_limit) return absl::OkStatus();
    auto timeout = std::chrono::milliseconds(200);
    if (spec.idle_limit) {
      timeout = std::min(
          timeout, std::chrono::duration_cast<std::chrono::milliseconds>(*spec.idle_limit - idle) +
                       std::chrono::milliseconds(1));
    }
    topic->wait_for_change(topic_version, timeout, stop);
  }
}

}  // namespace telekern::broker
