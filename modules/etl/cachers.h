// Cachers: metadata refs for processors, looked up in ClickHouse tables
// (loaded whole, refreshed on an interval) and in Redis hashes written by
// metadata_import (<table> hash, field id -> ref), each behind a local cache.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "clickhouse.h"
#include "processor.h"
#include "redis_client.h"

namespace telekern::etl {

class Cachers final : public RefLookup {
 public:
  // `clickhouse_tables`: tables whose (id, latest ref) are loaded and refreshed every `refresh`.
  Cachers(ClickHouse* clickhouse, RedisClient* redis, std::vector<std::string> clickhouse_tables,
          std::chrono::seconds refresh = std::chrono::seconds(60),
          std::chrono::seconds local_ttl = std::chrono::seconds(30));
  std::optional<std::string> lookup(std::string_view table, std::string_view id) override;
  // Loads the ClickHouse tables now.
  absl::Status refresh_clickhouse();
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Entry {
    std::optional<std::string> ref;
    std::chrono::steady_clock::time_point expires;
  };
  ClickHouse* clickhouse_;
  RedisClient* redis_;
  std::vector<std::string> clickhouse_tables_;
  std::chrono::seconds refresh_;
  std::chrono::seconds local_ttl_;
  std::mutex mutex_;
  std::map<std::string, std::unordered_map<std::string, std::string>, std::less<>> loaded_;
  std::chrono::steady_clock::time_point loaded_at_{};
  std::map<std::string, Entry, std::less<>> local_;
  bool redis_down_ = false;
  std::chrono::steady_clock::time_point redis_retry_at_{};
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace telekern::etl
