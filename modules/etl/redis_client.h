// A hiredis connection (reconnects on failure) with the few commands the
// etl module uses: pipelined HSET + EXPIRE, HGETALL, HGET, SCAN.
#pragma once

#include <absl/status/statusor.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct redisContext;

namespace telekern::etl {

struct RedisOptions {
  std::string host = "localhost";
  int port = 6379;
  int db = 0;
  std::string password;
};

struct RedisHash {
  std::string key;
  std::vector<std::pair<std::string, std::string>> fields;
  int64_t expires_seconds = 0;
};

class RedisClient {
 public:
  explicit RedisClient(RedisOptions options);
  ~RedisClient();

  // HSET each hash (and EXPIRE when set), pipelined; all or the first error.
  absl::Status write_hashes(const std::vector<RedisHash>& hashes);
  absl::StatusOr<std::map<std::string, std::string>> hgetall(const std::string& key);
  // HGET; nullopt when the key or field is absent.
  absl::StatusOr<std::optional<std::string>> hget(const std::string& key, const std::string& field);
  // Every key matching `pattern` (SCAN, so the server is never blocked).
  absl::StatusOr<std::vector<std::string>> scan(const std::string& pattern);
  std::string address() const;

 private:
  absl::Status connect_locked();
  void drop_locked();
  RedisOptions options_;
  std::mutex mutex_;
  redisContext* context_ = nullptr;
};

}  // namespace telekern::etl
