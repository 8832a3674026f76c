#include "consume_loop.h"

#include <map>

#include "broker.h"
#include "telekern/strings.h"

namespace telekern::broker {

ConsumeSession::ConsumeSession(Broker& broker, ConsumeSpec spec)
    : broker_(broker), spec_(std::move(spec)) {
  if (auto status = start(); !status.ok()) failed_ = status;
}

absl::Status ConsumeSession::start() {
  auto limits = broker_.limits();
  if (spec_.max_in_flight > limits.max_in_flight) {
    return absl::ResourceExhaustedError(
        str_cat("max_in_flight=", spec_.max_in_flight,
                " exceeds the broker's max_in_flight=", limits.max_in_flight));
  }
  if (spec_.group.empty())
    return absl::InvalidArgumentError("consume needs a group (--group NAME)");
  auto group = broker_.open_group(spec_.topic, spec_.group, spec_.mode);
  if (!group.ok()) return group.status();
  group_ = *group;
  MemberOptions options;
  options.name = spec_.member;
  options.start = spec_.start;
  if (spec_.visibility_timeout) options.visibility_timeout = *spec_.visibility_timeout;
  options.max_in_flight = spec_.max_in_flight;
  auto member = group_->join(options);
  if (!member.ok()) return member.status();
  member_ = *member;
  joined_ = true;
  return absl::OkStatus();
}

ConsumeSession::~ConsumeSession() {
  if (waiter_ != 0) group_->topic()->remove_waiter(waiter_);
  if (joined_) group_->leave(member_);
}

ConsumeSession::Step ConsumeSession::next(const std::stop_token& stop,
                                          std::chrono::milliseconds recheck) {
  Step step;
  if (failed_) {
    step.done = *failed_;
    return step;
  }
  if (stop.stop_requested()) {
    step.done = absl::CancelledError("consume session ended");
    return step;
  }
  if (broker_.stop_token().stop_requested()) {
    step.done = absl::UnavailableError("broker is stopping; retry");
    return step;
  }
  // The batch handed out last has been delivered.
  if (!to_commit_.empty()) {
    if (group_->mode() == GroupMode::kLog && spec_.auto_commit) {
      for (const auto& [partition, offset] : to_commit_) {
        if (auto status = group_->commit(partition, offset); !status.ok()) {
          step.done = status;
          return step;
        }
      }
    }
    to_commit_.clear();
    if (spec_.max > 0 && delivered_ >= spec_.max) {
      step.done = absl::OkStatus();
      return step;
    }
  }
  ConsumeBatch batch;
  auto [partitions, version] = group_->assignment(member_);
  if (first_) batch.member = member_;
  if (version != seen_assignment_) {
    seen_assignment_ = version;
    batch.assigned_partitions = std::move(partitions);
  }
  topic_version_ = group_->topic()->version();
  size_t want = spec_.max_batch == 0 ? 100 : spec_.max_batch;
  if (spec_.max > 0) want = std::min<uint64_t>(want, spec_.max - delivered_);
  auto deliveries = group_->poll(member_, want, Clock::now());
  if (!deliveries.ok()) {
    step.done = deliveries.status();
    return step;
  }
  batch.deliveries = std::move(*deliveries);
  const size_t count = batch.deliveries.size();
  bool send = first_ || batch.assigned_partitions || count > 0;
  first_ = false;
  if (count > 0) {
    for (const auto& delivery : batch.deliveries)
      to_commit_[delivery.partition] = delivery.record.offset + 1;
    delivered_ += count;
    last_activity_ = Clock::now();
  }
  if (send) {
    if (count == 0) to_commit_.clear();
    step.batch = std::move(batch);
    return step;
  }
  auto idle = Clock::now() - last_activity_;
  if (spec_.idle_limit && idle >= *spec_.idle_limit) {
    step.done = absl::OkStatus();
    return step;
  }
  auto timeout = recheck;
  if (spec_.idle_limit) {
    timeout = std::min(
        timeout, std::chrono::duration_cast<std::chrono::milliseconds>(*spec_.idle_limit - idle) +
                     std::chrono::milliseconds(1));
  }
  step.wait_until = Clock::now() + timeout;
  return step;
}

void ConsumeSession::arm_waker(std::function<void()> wake) {
  auto& topic = group_->topic();
  if (waiter_ != 0) topic->remove_waiter(waiter_);
  waiter_ = topic->add_waiter(topic_version_, std::move(wake));
}

void ConsumeSession::wait(Clock::time_point until, const std::stop_token& stop) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  if (left.count() > 0) group_->topic()->wait_for_change(topic_version_, left, stop);
}

absl::Status consume(Broker& broker, const ConsumeSpec& spec, const ConsumeSink& sink,
                     std::stop_token stop) {
  ConsumeSession session(broker, spec);
  while (true) {
    auto step = session.next(stop);
    if (step.done) return *step.done;
    if (step.batch) {
      if (!sink(*step.batch)) return absl::CancelledError("consumer went away");
      continue;
    }
    session.wait(step.wait_until, stop);
  }
}

}  // namespace telekern::broker
