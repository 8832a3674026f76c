#include "consumer_group.h"

#include <spdlog/logger.h>

#include <algorithm>

#include "telekern/log.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

int64_t to_ms(Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

// N of the last "attempt N by MEMBER: REASON" line; 0 when there is none.
uint32_t last_failed_attempt(const std::vector<std::string>& history) {
  if (history.empty()) return 0;
  auto words = split(history.back(), ' ');
  if (words.size() < 2) return 0;
  auto number = parse_int(words[1]);
  return number && *number > 0 ? static_cast<uint32_t>(*number) : 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConsumerGroup>> ConsumerGroup::open(
    const std::filesystem::path& state_file, std::string name, std::shared_ptr<Topic> topic,
    std::optional<GroupMode> mode, GroupSettings settings, DeadLetterSink dead_letters,
    GroupMetrics metrics, std::shared_ptr<spdlog::logger> logger) {
  std::unique_ptr<ConsumerGroup> group(
      new ConsumerGroup(std::move(name), std::move(topic), std::move(settings),
                        std::move(dead_letters), metrics, std::move(logger)));
  uint64_t truncated = 0;
  auto log = GroupStateLog::open(state_file, &group->state_, &truncated);
  if (!log.ok()) return log.status();
  group->state_log_ = std::move(*log);
  if (truncated > 0 && group->logger_) {
    group->logger_->warn("group '{}' on '{}': cut {} bytes of torn state log tail", group->name_,
                         group->topic_->name(), truncated);
  }
  if (group->state_log_->empty()) {
    group->state_log_->record(group->state_, Entry::kMode, 0, 0,
                              static_cast<uint32_t>(mode.value_or(GroupMode::kLog)));
    if (auto status = group->state_log_->flush(); !status.ok()) return status;
  }
  group->mode_ = group->state_.mode;
  group->partition_count_ = group->topic_->partition_count();
  return group;
}

std::chrono::milliseconds ConsumerGroup::visibility_for(const Member& member) const {
  return member.options.visibility_timeout.count() > 0 ? member.options.visibility_timeout
                                                       : settings_.visibility_timeout;
}

void ConsumerGroup::log_error(const absl::Status& status, std::string_view what) {
  if (!status.ok() && logger_) {
    logger_->error("group '{}' on '{}': {}: {}", name_, topic_->name(), what, status.message());
  }
}

void ConsumerGroup::flush_state() { log_error(state_log_->flush(), "cannot write state log"); }

absl::StatusOr<uint64_t> ConsumerGroup::resolve_start(uint32_t partition_id,
                                                      const StartPosition& start) const {
  auto partition = topic_->partition(partition_id);
  if (!partition) return 0;
  auto stats = partition->stats();
  switch (start.kind) {
    case StartKind::kLatest:
      return stats.end_offset;
    case StartKind::kOffset:
      return std::clamp(start.offset, stats.start_offset, stats.end_offset);
    case StartKind::kTimestamp: {
      auto offset = partition->offset_for_timestamp(start.timestamp_ms);
      if (!offset.ok()) {
        return absl::Status(
            offset.status().code(),
            str_cat("cannot resolve timestamp ", start.timestamp_ms, " on partition ", partition_id,
                    ": ", offset.status().message()));
      }
      return std::max(*offset, stats.start_offset);
    }
    default:
      return stats.start_offset;
  }
}

absl::Status ConsumerGroup::ensure_cursor(uint32_t partition_id, const Member& member) {
  auto& runtime = runtime_[partition_id];
  auto& state = state_.partitions[partition_id];
  if (!runtime.cursor_valid) {
    if (state.has_commit) {
      runtime.cursor = state.committed;
    } else {
      auto start = resolve_start(partition_id, member.options.start);
      if (!start.ok()) return start.status();
      runtime.cursor = *start;
      if (mode_ == GroupMode::kQueue)
        state_log_->record(state_, Entry::kCommit, partition_id, runtime.cursor);
    }
    runtime.cursor_valid = true;
  }
  auto partition = topic_->partition(partition_id);
  uint64_t start = partition ? partition->start_offset() : 0;
  if (runtime.cursor < start) runtime.cursor = start;  // retention removed what was next
  if (mode_ == GroupMode::kQueue && state.committed < start) {
    state_log_->record(state_, Entry::kCommit, partition_id, start);
  }
  return absl::OkStatus();
}

void ConsumerGroup::rebalance() {
  partition_count_ = topic_->partition_count();
  std::map<std::string, std::vector<uint32_t>> assignment;
  for (uint32_t partition = 0; partition < partition_count_; ++partition) {
    std::string owner;
    if (!member_order_.empty()) {
      owner = member_order_[partition % member_order_.size()];
      assignment[owner].push_back(partition);
    }
    auto& runtime = runtime_[partition];
    if (runtime.owner != owner) {
      runtime.owner = owner;
      if (mode_ == GroupMode::kLog) runtime.cursor_valid = false;
      // A failure (say, a timestamp that cannot be resolved) leaves the
      // cursor unset; the owner's next poll tries again and reports it.
      if (!owner.empty()) (void)ensure_cursor(partition, members_[owner]);
    }
  }
  for (auto& [id, member] : members_) {
    auto& mine = assignment[id];
    if (mine != member.partitions) {
      member.partitions = mine;
      ++member.assignment_version;
      member.next_partition = 0;
    }
  }
}

absl::StatusOr<std::string> ConsumerGroup::join(const MemberOptions& options) {
  std::string id;
  {
    std::lock_guard lock(mutex_);
    id = options.name.empty() ? str_cat(name_, "-", ++member_counter_) : options.name;
    if (members_.count(id)) id = str_cat(id, "-", ++member_counter_);
    auto& member = members_[id];
    member.options = options;
    member.assignment_version = 1;
    member_order_.push_back(id);
    rebalance();
    flush_state();
    if (logger_) {
      logger_->info("group '{}' on '{}': member '{}' joined; {} member(s)", name_, topic_->name(),
                    id, members_.size());
    }
  }
  topic_->notify();
  return id;
}

void ConsumerGroup::release_member_count(const InFlight& entry) {
  if (!entry.delivered) return;
  auto it = members_.find(entry.member);
  if (it != members_.end() && it->second.in_flight > 0) --it->second.in_flight;
}

void ConsumerGroup::schedule(uint32_t partition, uint64_t offset, InFlight& entry) {
  unschedule(partition, offset, entry);
  entry.waiting = !entry.delivered && entry.attempts < settings_.max_deliveries;
  if (entry.waiting) {
    runtime_[partition].ready.emplace(entry.deadline, offset);
  } else {
    timers_.emplace(entry.deadline, partition, offset);
  }
  entry.timer = entry.deadline;
}

void ConsumerGroup::unschedule(uint32_t partition, uint64_t offset, InFlight& entry) {
  if (!entry.timer) return;
  if (entry.waiting) {
    runtime_[partition].ready.erase({*entry.timer, offset});
  } else {
    timers_.erase({*entry.timer, partition, offset});
  }
  entry.timer.reset();
  entry.waiting = false;
}

void ConsumerGroup::leave(const std::string& member_id) {
  {
    std::lock_guard lock(mutex_);
    if (!members_.count(member_id)) return;
    auto now = Clock::now();
    size_t released = 0;
    for (auto& [partition, runtime] : runtime_) {
      for (auto it = runtime.in_flight.begin(); it != runtime.in_flight.end();) {
        auto& entry = it->second;
        bool erase = false;
        if (entry.delivered && entry.member == member_id) {
          ++released;
          fail_delivery(partition, it->first, entry, "consumer left", now, &erase);
        }
        it = erase ? runtime.in_flight.erase(it) : std::next(it);
      }
    }
    members_.erase(member_id);
    std::erase(member_order_, member_id);
    rebalance();
    flush_state();
    if (logger_) {
      logger_->info(
          "group '{}' on '{}': member '{}' left, {} unacked deliveries released; {} member(s)",
          name_, topic_->name(), member_id, released, members_.size());
    }
  }
  topic_->notify();
}

std::pair<std::vector<uint32_t>, uint64_t> ConsumerGroup::assignment(
    const std::string& member) const {
  std::lock_guard lock(mutex_);
  auto it = members_.find(member);
  if (it == members_.end()) return {{}, 0};
  return {it->second.partitions, it->second.assignment_version};
}

absl::StatusOr<std::vector<Delivery>> ConsumerGroup::poll(const std::string& member_id,
                                                          size_t max_records,
                                                          Clock::time_point now) {
  std::vector<Delivery> out;
  std::lock_guard lock(mutex_);
  auto it = members_.find(member_id);
  if (it == members_.end())
    return absl::NotFoundError(str_cat("member '", member_id, "' is not in group '", name_, "'"));
  if (topic_->partition_count() != partition_count_) rebalance();
  auto& member = it->second;
  size_t count = member.partitions.size();
  absl::Status first_error;
  size_t polled = 0;  // partitions polled without an error
  for (size_t step = 0; step < count && out.size() < max_records; ++step) {
    uint32_t partition = member.partitions[(member.next_partition + step) % count];
    absl::Status status =
        mode_ == GroupMode::kLog
            ? poll_log(partition, member, max_records - out.size(), out)
            : poll_queue(partition, member_id, member, max_records - out.size(), now, out);
    // One partition's failure does not stop the member's other partitions:
    // it is logged (once per distinct error) and fails the poll only when
    // every partition polled failed.
    auto& runtime = runtime_[partition];
    if (!status.ok()) {
      if (logger_ && runtime.last_error != status.message()) {
        logger_->error("group '{}' on '{}': partition {}: {}", name_, topic_->name(), partition,
                       status.message());
      }
      runtime.last_error = std::string(status.message());
      if (first_error.ok()) first_error = status;
    } else {
      runtime.last_error.clear();
      ++polled;
    }
  }
  if (polled == 0 && !first_error.ok()) {
    flush_state();
    return first_error;
  }
  if (count > 0) member.next_partition = (member.next_partition + 1) % count;
  flush_state();
  maybe_compact();
  if (metrics_.consumed) metrics_.consumed->inc(static_cast<double>(out.size()));
  return out;
}

absl::Status ConsumerGroup::poll_log(uint32_t partition_id, Member& member, size_t max_records,
                                     std::vector<Delivery>& out) {
  if (auto status = ensure_cursor(partition_id, member); !status.ok()) return status;
  auto& runtime = runtime_[partition_id];
  auto partition = topic_->partition(partition_id);
  if (!partition) return absl::OkStatus();
  auto records = partition->read(runtime.cursor, max_records, 1u << 20);
  if (!records.ok()) return records.status();
  for (auto& record : *records) {
    runtime.cursor = record.offset + 1;
    out.push_back({partition_id, std::move(record), 1});
  }
  return absl::OkStatus();
}

absl::Status ConsumerGroup::poll_queue(uint32_t partition_id, const std::string& member_id,
                                       Member& member, size_t max_records, Clock::time_point now,
                                       std::vector<Delivery>& out) {
  if (auto status = ensure_cursor(partition_id, member); !status.ok()) return status;
  auto& runtime = runtime_[partition_id];
  auto partition = topic_->partition(partition_id);
  if (!partition) return absl::OkStatus();
  auto visibility = visibility_for(member);
  size_t taken = 0;
  auto member_room = [&]() -> size_t {
    if (member.options.max_in_flight == 0) return SIZE_MAX;
    return member.in_flight >= member.options.max_in_flight
               ? 0
               : member.options.max_in_flight - member.in_flight;
  };
  auto deliver = [&](uint64_t offset, InFlight& entry, StoredRecord record) {
    ++entry.attempts;
    entry.delivered = true;
    entry.member = member_id;
    entry.deadline = now + visibility;
    entry.delivered_at = now;
    ++member.in_flight;
    schedule(partition_id, offset, entry);
    state_log_->record(state_, Entry::kAttempts, partition_id, offset, entry.attempts);
    out.push_back({partition_id, std::move(record), entry.attempts});
    ++taken;
  };

  // Redeliveries first, longest waiting first: they are the oldest work.
  // Entries past max_deliveries are not in `ready`; tick() dead-letters them.
  for (auto it = runtime.ready.begin();
       it != runtime.ready.end() && taken < max_records && member_room() > 0;) {
    auto [ready_at, offset] = *it;
    if (ready_at > now) break;
    ++it;  // delivering or dropping the entry takes it out of `ready`
    auto found = runtime.in_flight.find(offset);
    if (found == runtime.in_flight.end()) {
      runtime.ready.erase({ready_at, offset});
      continue;
    }
    auto& entry = found->second;
    auto records = partition->read(offset, 1, 1);
    if (!records.ok()) return records.status();
    if (records->empty() || records->front().offset != offset) {  // removed by retention
      finish_offset(partition_id, offset);
      unschedule(partition_id, offset, entry);
      runtime.in_flight.erase(found);
      continue;
    }
    if (metrics_.redelivered) metrics_.redelivered->inc();
    deliver(offset, entry, std::move(records->front()));
  }

  size_t room = std::min({max_records - taken,
                          settings_.max_in_flight > runtime.in_flight.size()
                              ? settings_.max_in_flight - runtime.in_flight.size()
                              : size_t{0},
                          member_room()});
  if (room == 0) return absl::OkStatus();
  auto records = partition->read(runtime.cursor, room, 1u << 20);
  if (!records.ok()) return records.status();
  auto& state = state_.partitions[partition_id];
  for (auto& record : *records) {
    for (uint64_t gap = runtime.cursor; gap < record.offset; ++gap)
      finish_offset(partition_id, gap);
    runtime.cursor = record.offset + 1;
    if (record.offset < state.committed || state.acked.count(record.offset))
      continue;  // acked before a restart
    auto& entry = runtime.in_flight[record.offset];
    auto attempts = state.attempts.find(record.offset);
    entry.attempts = attempts == state.attempts.end() ? 0 : attempts->second;
    if (auto history = state.history.find(record.offset); history != state.history.end()) {
      entry.history = history->second;
      if (!entry.history.empty()) {
        auto reason = entry.history.back().find(": ");
        if (reason != std::string::npos) entry.last_error = entry.history.back().substr(reason + 2);
      }
    }
    if (entry.attempts > last_failed_attempt(entry.history)) {
      // An attempt was in flight when the broker stopped: say so.
      std::string line =
          str_cat("attempt ", entry.attempts, " by (unknown): broker restarted before an ack");
      entry.history.push_back(line);
      state_log_->record_history(state_, partition_id, record.offset, line);
    }
    if (entry.attempts > 0 && metrics_.redelivered) metrics_.redelivered->inc();
    deliver(record.offset, entry, std::move(record));
  }
  return absl::OkStatus();
}

void ConsumerGroup::finish_offset(uint32_t partition, uint64_t offset) {
  state_log_->record(state_, Entry::kAck, partition, offset);
}

void ConsumerGroup::fail_delivery(uint32_t partition, uint64_t offset, InFlight& entry,
                                  const std::string& reason, Clock::time_point ready_at,
                                  bool* erase) {
  release_member_count(entry);
  entry.delivered = false;
  std::string line = str_cat("attempt ", entry.attempts, " by ", entry.member, ": ", reason);
  entry.history.push_back(line);
  if (entry.history.size() > GroupStateLog::kMaxHistory) entry.history.erase(entry.history.begin());
  // Durable with the attempts, so a dead letter after a restart is complete.
  state_log_->record_history(state_, partition, offset, line);
  entry.last_error = reason;
  entry.deadline = ready_at;
  *erase = false;
  if (entry.attempts >= settings_.max_deliveries) {
    auto status = dead_letter(partition, offset, entry, reason);
    if (status.ok()) {
      *erase = true;
    } else {
      log_error(status, str_cat("cannot dead-letter offset ", offset, " of partition ", partition));
      entry.deadline = ready_at + std::chrono::seconds(1);
    }
  }
  if (*erase) {
    unschedule(partition, offset, entry);
  } else {
    schedule(partition, offset, entry);
  }
}

absl::Status ConsumerGroup::dead_letter(uint32_t partition_id, uint64_t offset, InFlight& entry,
                                        const std::string& reason) {
  auto partition = topic_->partition(partition_id);
  if (!partition) return absl::NotFoundError("partition is gone");
  auto records = partition->read(offset, 1, 1);
  if (!records.ok()) return records.status();
  if (!records->empty() && records->front().offset == offset && dead_letters_) {
    Record letter = std::move(records->front().record);
    auto add = [&](std::string key, std::string value) {
      letter.headers.push_back({std::move(key), std::move(value)});
    };
    add("x-dlq-reason",
        str_cat("max_deliveries=", settings_.max_deliveries, " reached; last: ", reason));
    add("x-dlq-source-topic", topic_->name());
    add("x-dlq-source-partition", std::to_string(partition_id));
    add("x-dlq-source-offset", std::to_string(offset));
    add("x-dlq-group", name_);
    add("x-dlq-attempts", std::to_string(entry.attempts));
    add("x-dlq-last-error", entry.last_error);
    add("x-dlq-consumer", entry.member);
    add("x-dlq-history", telekern::join(entry.history, "; "));
    if (auto status = dead_letters_(partition_id, std::move(letter)); !status.ok()) return status;
  }
  state_log_->record(state_, Entry::kDeadLetter, partition_id, offset);
  if (metrics_.dead_lettered) metrics_.dead_lettered->inc();
  if (logger_) {
    logger_->warn(
        "group '{}' on '{}': offset {} of partition {} dead-lettered after {} attempts: {}", name_,
        topic_->name(), offset, partition_id, entry.attempts, reason);
  }
  return absl::OkStatus();
}

absl::Status ConsumerGroup::commit(uint32_t partition, uint64_t offset) {
  {
    std::lock_guard lock(mutex_);
    if (mode_ != GroupMode::kLog) {
      return absl::FailedPreconditionError(
          str_cat("group '", name_, "' on '", topic_->name(),
                  "' is in QUEUE mode: ack deliveries instead of committing"));
    }
    if (partition >= topic_->partition_count()) {
      return absl::NotFoundError(
          str_cat("topic '", topic_->name(), "' has no partition ", partition));
    }
    // New offsets never start below a committed one after a recovery, so a
    // commit past the end would move the log: refuse it.
    uint64_t end = topic_->partition(partition)->end_offset();
    if (offset > end) {
      return absl::InvalidArgumentError(str_cat("offset ", offset, " is past the end of topic '",
                                                topic_->name(), "' partition ", partition, " (",
                                                end, ")"));
    }
    state_log_->record(state_, Entry::kCommit, partition, offset);
    if (auto status = state_log_->flush(); !status.ok()) return status;
    maybe_compact();
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> ConsumerGroup::ack(uint32_t partition, uint64_t offset,
                                        Clock::time_point now) {
  {
    std::lock_guard lock(mutex_);
    if (mode_ != GroupMode::kQueue) {
      return absl::FailedPreconditionError(
          str_cat("group '", name_, "' on '", topic_->name(),
                  "' is in LOG mode: commit offsets instead of acking"));
    }
    auto runtime = runtime_.find(partition);
    if (runtime == runtime_.end()) return false;
    auto it = runtime->second.in_flight.find(offset);
    if (it == runtime->second.in_flight.end()) return false;
    if (it->second.delivered && metrics_.ack_latency) {
      metrics_.ack_latency->observe(
          std::chrono::duration<double>(now - it->second.delivered_at).count());
    }
    release_member_count(it->second);
    unschedule(partition, offset, it->second);
    runtime->second.in_flight.erase(it);
    finish_offset(partition, offset);
    if (auto status = state_log_->flush(); !status.ok()) return status;
    maybe_compact();
    if (metrics_.acked) metrics_.acked->inc();
  }
  topic_->notify();
  return true;
}

absl::StatusOr<NackOutcome> ConsumerGroup::nack(uint32_t partition, uint64_t offset,
                                                const std::string& error,
                                                std::optional<std::chrono::milliseconds> delay,
                                                Clock::time_point now) {
  NackOutcome outcome;
  {
    std::lock_guard lock(mutex_);
    if (mode_ != GroupMode::kQueue) {
      return absl::FailedPreconditionError(str_cat("group '", name_, "' on '", topic_->name(),
                                                   "' is in LOG mode: nack needs a QUEUE group"));
    }
    auto runtime = runtime_.find(partition);
    if (runtime == runtime_.end()) return NackOutcome::kUnknown;
    auto it = runtime->second.in_flight.find(offset);
    if (it == runtime->second.in_flight.end() || !it->second.delivered)
      return NackOutcome::kUnknown;
    auto& entry = it->second;
    std::chrono::milliseconds wait{0};
    if (delay) {
      wait = *delay;
    } else if (!settings_.nack_backoff.empty()) {
      size_t step = std::min<size_t>(entry.attempts == 0 ? 0 : entry.attempts - 1,
                                     settings_.nack_backoff.size() - 1);
      wait = settings_.nack_backoff[step];
    }
    bool erase = false;
    fail_delivery(partition, offset, entry,
                  str_cat("nack: ", error.empty() ? "no reason given" : error), now + wait, &erase);
    if (erase) runtime->second.in_flight.erase(it);
    outcome = erase ? NackOutcome::kDeadLettered : NackOutcome::kRequeued;
    if (auto status = state_log_->flush(); !status.ok()) return status;
  }
  topic_->notify();
  return outcome;
}

absl::StatusOr<bool> ConsumerGroup::extend(uint32_t partition, uint64_t offset,
                                           std::chrono::milliseconds timeout,
                                           Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (mode_ != GroupMode::kQueue) {
    return absl::FailedPreconditionError(
        str_cat("group '", name_, "' on '", topic_->name(),
                "' is in LOG mode: visibility applies to QUEUE groups"));
  }
  auto runtime = runtime_.find(partition);
  if (runtime == runtime_.end()) return false;
  auto it = runtime->second.in_flight.find(offset);
  if (it == runtime->second.in_flight.end() || !it->second.delivered) return false;
  it->second.deadline = now + timeout;
  schedule(partition, offset, it->second);
  return true;
}

absl::Status ConsumerGroup::reset_offsets(const StartPosition& start,
                                          std::optional<uint32_t> only) {
  if (start.kind == StartKind::kDefault) {
    return absl::InvalidArgumentError(
        "reset needs a start position: earliest, latest, offset or timestamp");
  }
  {
    std::lock_guard lock(mutex_);
    uint32_t count = topic_->partition_count();
    if (only && *only >= count) {
      return absl::NotFoundError(str_cat("topic '", topic_->name(), "' has no partition ", *only));
    }
    for (uint32_t partition = 0; partition < count; ++partition) {
      if (only && *only != partition) continue;
      auto resolved = resolve_start(partition, start);
      if (!resolved.ok()) return resolved.status();
      uint64_t offset = *resolved;
      auto& runtime = runtime_[partition];
      for (auto& [offset, entry] : runtime.in_flight) {
        release_member_count(entry);
        unschedule(partition, offset, entry);
      }
      runtime.in_flight.clear();
      runtime.ready.clear();
      state_.partitions[partition] = PartitionGroupState{};
      state_log_->record(state_, Entry::kCommit, partition, offset);
      runtime.cursor = offset;
      runtime.cursor_valid = true;
    }
    if (auto status = state_log_->compact(state_); !status.ok()) return status;
  }
  topic_->notify();
  return absl::OkStatus();
}

size_t ConsumerGroup::tick(Clock::time_point now) {
  size_t released = 0;
  {
    std::lock_guard lock(mutex_);
    while (!timers_.empty() && std::get<0>(*timers_.begin()) <= now) {
      auto [deadline, partition, offset] = *timers_.begin();
      timers_.erase(timers_.begin());
      auto& runtime = runtime_[partition];
      auto it = runtime.in_flight.find(offset);
      if (it == runtime.in_flight.end()) continue;
      auto& entry = it->second;
      entry.timer.reset();
      bool erase = false;
      ++released;
      if (entry.delivered) {
        fail_delivery(partition, offset, entry,
                      str_cat("visibility timeout (", to_ms(now - entry.delivered_at), " ms)"), now,
                      &erase);
      } else {  // past max_deliveries: the dead letter failed before; try again
        fail_delivery(partition, offset, entry, entry.last_error, now, &erase);
      }
      if (erase) runtime.in_flight.erase(it);
    }
    if (released > 0) flush_state();
  }
  if (released > 0) topic_->notify();
  return released;
}

GroupInfo ConsumerGroup::describe() const {
  std::lock_guard lock(mutex_);
  GroupInfo info;
  info.name = name_;
  info.topic = topic_->name();
  info.mode = mode_;
  info.members = member_order_;
  info.dead_lettered = state_.dead_lettered;
  uint32_t count = topic_->partition_count();
  for (uint32_t id = 0; id < count; ++id) {
    auto partition = topic_->partition(id);
    if (!partition) continue;
    auto stats = partition->stats();
    GroupPartitionInfo item;
    item.partition = id;
    auto state = state_.partitions.find(id);
    bool committed = state != state_.partitions.end() && state->second.has_commit;
    item.committed =
        committed ? std::max(state->second.committed, stats.start_offset) : stats.start_offset;
    item.lag = stats.end_offset > item.committed ? stats.end_offset - item.committed : 0;
    auto runtime = runtime_.find(id);
    if (runtime != runtime_.end()) {
      item.in_flight = static_cast<uint32_t>(runtime->second.in_flight.size());
      item.member = runtime->second.owner;
    }
    info.lag += item.lag;
    info.in_flight += item.in_flight;
    info.partitions.push_back(item);
  }
  return info;
}

uint64_t ConsumerGroup::total_lag() const { return describe().lag; }

std::map<uint32_t, uint64_t> ConsumerGroup::highest_positions() const {
  std::lock_guard lock(mutex_);
  std::map<uint32_t, uint64_t> out;
  for (const auto& [id, partition] : state_.partitions) {
    uint64_t highest = partition.has_commit ? partition.committed : 0;
    if (!partition.acked.empty()) highest = std::max(highest, *partition.acked.rbegin() + 1);
    if (!partition.attempts.empty())
      highest = std::max(highest, partition.attempts.rbegin()->first + 1);
    if (highest > 0) out[id] = highest;
  }
  return out;
}

void ConsumerGroup::maybe_compact() {
  uint64_t live = 2;
  for (const auto& [_, partition] : state_.partitions) {
    live += 1 + partition.acked.size() + partition.attempts.size();
  }
  if (state_log_->entries_since_compaction() > settings_.compact_after_entries &&
      state_log_->entries_since_compaction() > 4 * live) {
    log_error(state_log_->compact(state_), "cannot compact state log");
  }
}

absl::Status ConsumerGroup::sync_state() {
  std::shared_ptr<File> file;
  {
    std::lock_guard lock(mutex_);
    auto flushed = state_log_->flush_for_sync();
    if (!flushed.ok()) return flushed.status();
    file = std::move(*flushed);
  }
  if (!file) return absl::OkStatus();
  // The fdatasync runs without the group's lock: polls, commits and acks go
  // on while a busy disk takes its time (they stalled for all of it before).
  auto status = file->sync();
  if (!status.ok()) {
    std::lock_guard lock(mutex_);
    // Compacted meanwhile (the new file was synced as it was written) or removed.
    if (!state_log_->writes_to(file)) return absl::OkStatus();
  }
  return status;
}

absl::Status ConsumerGroup::remove() {
  std::lock_guard lock(mutex_);
  return state_log_->remove();
}

}  // namespace telekern::broker
