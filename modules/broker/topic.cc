#include "topic.h"

#include <map>

#include "file.h"
#include "telekern/strings.h"

namespace telekern::broker {
namespace {

constexpr const char* kSpecFile = "topic.conf";

std::filesystem::path partition_directory(const std::filesystem::path& topic_directory,
                                          uint32_t id) {
  return topic_directory / str_cat("partition-", id);
}

}  // namespace

absl::Status validate_topic_name(std::string_view name) {
  if (name.empty() || name.size() > 200 || name == "." || name == "..") {
    return absl::InvalidArgumentError(
        str_cat("topic name '", name, "' is invalid: use 1-200 characters of A-Z a-z 0-9 . _ -"));
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          str_cat("topic name '", name, "' is invalid: use only A-Z a-z 0-9 . _ -"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Topic>> Topic::create(const std::filesystem::path& directory,
                                                     std::string name, TopicSpec spec,
                                                     uint32_t index_interval_bytes,
                                                     std::shared_ptr<spdlog::logger> logger) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) return io_error("cannot create", directory, error.value());
  std::unique_ptr<Topic> topic(
      new Topic(directory, std::move(name), spec, index_interval_bytes, std::move(logger)));
  if (auto status = topic->open_partitions(); !status.ok()) return status;
  if (auto status = topic->write_spec(); !status.ok()) return status;
  if (auto status = sync_directory(directory.parent_path()); !status.ok()) return status;
  return topic;
}

absl::StatusOr<std::unique_ptr<Topic>> Topic::open(const std::filesystem::path& directory,
                                                   std::string name, uint32_t index_interval_bytes,
                                                   std::shared_ptr<spdlog::logger> logger) {
  auto text = read_small_file(directory / kSpecFile);
  if (!text.ok()) return text.status();
  std::map<std::string, int64_t> values;
  for (const auto& line : split(*text, '\n')) {
    auto parts = split(line, '=');
    if (parts.size() != 2) continue;
    auto value = parse_int(trim(parts[1]));
    if (value) values[std::string(trim(parts[0]))] = *value;
  }
  TopicSpec spec;
  if (!values.count("partitions") || values["partitions"] <= 0) {
    return absl::DataLossError(
        str_cat((directory / kSpecFile).string(), " has no valid partitions="));
  }
  spec.partitions = static_cast<uint32_t>(values["partitions"]);
  spec.retention_ms = values["retention_ms"];
  spec.retention_bytes = static_cast<uint64_t>(std::max<int64_t>(0, values["retention_bytes"]));
  if (values["segment_bytes"] > 0)
    spec.segment_bytes = static_cast<uint64_t>(values["segment_bytes"]);
  std::unique_ptr<Topic> topic(
      new Topic(directory, std::move(name), spec, index_interval_bytes, std::move(logger)));
  if (auto status = topic->open_partitions(); !status.ok()) return status;
  return topic;
}

absl::Status Topic::open_partitions() {
  while (partitions_.size() < spec_.partitions) {
    auto id = static_cast<uint32_t>(partitions_.size());
    auto partition = Partition::open(partition_directory(directory_, id), id,
                                     {spec_.segment_bytes, index_interval_bytes_}, logger_);
    if (!partition.ok()) return partition.status();
    partitions_.push_back(std::move(*partition));
  }
  return absl::OkStatus();
}

absl::Status Topic::write_spec() const {
  return write_file_atomically(
      directory_ / kSpecFile,
      str_cat("partitions=", spec_.partitions, "\nretention_ms=", spec_.retention_ms,
              "\nretention_bytes=", spec_.retention_bytes, "\nsegment_bytes=", spec_.segment_bytes,
              "\n"));
}

TopicSpec Topic::spec() const {
  std::shared_lock lock(mutex_);
  return spec_;
}

uint32_t Topic::partition_count() const {
  std::shared_lock lock(mutex_);
  return static_cast<uint32_t>(partitions_.size());
}

std::shared_ptr<Partition> Topic::partition(uint32_t id) const {
  std::shared_lock lock(mutex_);
  return id < partitions_.size() ? partitions_[id] : nullptr;
}

std::vector<std::shared_ptr<Partition>> Topic::partitions() const {
  std::shared_lock lock(mutex_);
  return partitions_;
}

absl::Status Topic::grow(uint32_t count) {
  {
    std::unique_lock lock(mutex_);
    if (count <= spec_.partitions) return absl::OkStatus();
    auto previous = spec_.partitions;
    spec_.partitions = count;
    if (auto status = open_partitions(); !status.ok()) {
      spec_.partitions = previous;
      partitions_.resize(previous);
      return status;
    }
    if (auto status = write_spec(); !status.ok()) return status;
  }
  notify();
  return absl::OkStatus();
}

uint64_t Topic::version() const {
  std::lock_guard lock(change_mutex_);
  return version_;
}

void Topic::notify() {
  std::map<uint64_t, std::function<void()>> waiters;
  {
    std::lock_guard lock(change_mutex_);
    ++version_;
    waiters.swap(waiters_);
  }
  changed_.notify_all();
  for (auto& [_, wake] : waiters) wake();
}

uint64_t Topic::add_waiter(uint64_t seen, std::function<void()> wake) {
  {
    std::lock_guard lock(change_mutex_);
    if (version_ == seen) {
      uint64_t id = ++next_waiter_;
      waiters_.emplace(id, std::move(wake));
      return id;
    }
  }
  wake();
  return 0;
}

void Topic::remove_waiter(uint64_t id) {
  std::lock_guard lock(change_mutex_);
  waiters_.erase(id);
}

void Topic::wait_for_change(uint64_t seen, std::chrono::milliseconds timeout,
                            const std::stop_token& stop) {
  std::unique_lock lock(change_mutex_);
  changed_.wait_for(lock, stop, timeout, [&] { return version_ != seen; });
}

absl::Status Topic::remove() {
  std::unique_lock lock(mutex_);
  for (auto& partition : partitions_) (void)partition->remove();
  std::error_code error;
  std::filesystem::remove_all(directory_, error);
  if (error) return io_error("cannot remove", directory_, error.value());
  return absl::OkStatus();
}

}  // namespace telekern::broker
