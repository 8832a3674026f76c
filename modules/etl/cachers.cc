#include "cachers.h"

#include "telekern/strings.h"

namespace telekern::etl {

Cachers::Cachers(ClickHouse* clickhouse, RedisClient* redis,
                 std::vector<std::string> clickhouse_tables, std::chrono::seconds refresh,
                 std::chrono::seconds local_ttl)
    : clickhouse_(clickhouse),
      redis_(redis),
      clickhouse_tables_(std::move(clickhouse_tables)),
      refresh_(refresh),
      local_ttl_(local_ttl) {}

absl::Status Cachers::refresh_clickhouse() {
  if (!clickhouse_) return absl::OkStatus();
  std::map<std::string, std::unordered_map<std::string, std::string>, std::less<>> loaded;
  for (const auto& table : clickhouse_tables_) {
    auto body = clickhouse_->query(str_cat("SELECT id, argMax(ref, insert_ts) FROM `", table,
                                           "` GROUP BY id FORMAT TabSeparated"));
    if (!body.ok()) return body.status();
    auto& map = loaded[table];
    size_t at = 0;
    while (at < body->size()) {
      size_t end = body->find('\n', at);
      if (end == std::string::npos) end = body->size();
      std::string_view line(body->data() + at, end - at);
      size_t tab = line.find('\t');
      if (tab != std::string_view::npos)
        map[std::string(line.substr(0, tab))] = std::string(line.substr(tab + 1));
      at = end + 1;
    }
  }
  std::lock_guard lock(mutex_);
  loaded_ = std::move(loaded);
  loaded_at_ = std::chrono::steady_clock::now();
  return absl::OkStatus();
}

std::optional<std::string> Cachers::lookup(std::string_view table, std::string_view id) {
  auto now = std::chrono::steady_clock::now();
  bool reload = false;
  {
    std::lock_guard lock(mutex_);
    reload = !clickhouse_tables_.empty() && now - loaded_at_ > refresh_;
    if (reload) loaded_at_ = now;  // one refresher at a time; a failure retries after refresh_
  }
  if (reload) (void)refresh_clickhouse();
  std::string key = str_cat(table, "\n", id);
  {
    std::lock_guard lock(mutex_);
    if (auto loaded = loaded_.find(table); loaded != loaded_.end()) {
      if (auto hit = loaded->second.find(std::string(id)); hit != loaded->second.end()) {
        ++hits_;
        return hit->second;
      }
    }
    if (auto cached = local_.find(key); cached != local_.end() && cached->second.expires > now) {
      ++hits_;
      return cached->second.ref;
    }
    if (!redis_ || (redis_down_ && now < redis_retry_at_)) {
      ++misses_;
      return std::nullopt;
    }
  }
  auto ref = redis_->hget(std::string(table), std::string(id));
  std::lock_guard lock(mutex_);
  ++misses_;
  if (!ref.ok()) {
    // Redis down: rows keep a null ref rather than waiting; retried after a pause.
    redis_down_ = true;
    redis_retry_at_ = now + std::chrono::seconds(5);
    return std::nullopt;
  }
  redis_down_ = false;
  local_[key] = {*ref, now + local_ttl_};
  if (local_.size() > 100000) local_.clear();
  return *ref;
}

}  // namespace telekern::etl
