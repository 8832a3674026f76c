#include "redis_client.h"

#include <hiredis/hiredis.h>

#include "telekern/strings.h"

namespace telekern::etl {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

}  // namespace

RedisClient::RedisClient(RedisOptions options) : options_(std::move(options)) {}
RedisClient::~RedisClient() { drop_locked(); }

std::string RedisClient::address() const { return str_cat(options_.host, ":", options_.port); }

void RedisClient::drop_locked() {
  if (context_) redisFree(context_);
  context_ = nullptr;
}

absl::Status RedisClient::connect_locked() {
  if (context_) return absl::OkStatus();
  timeval timeout{2, 0};
  context_ = redisConnectWithTimeout(options_.host.c_str(), options_.port, timeout);
  if (!context_ || context_->err) {
    std::string why = context_ ? context_->errstr : "out of memory";
    drop_locked();
    return absl::UnavailableError(
        str_cat("redis ", address(), ": ", why, "; is redis-server running there?"));
  }
  redisSetTimeout(context_, timeval{5, 0});
  auto run = [&](std::vector<std::string> args) -> absl::Status {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    Reply reply(static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data())));
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
      std::string why = reply ? reply->str : context_->errstr;
      return absl::PermissionDeniedError(str_cat("redis ", address(), " ", args[0], ": ", why));
    }
    return absl::OkStatus();
  };
  if (!options_.password.empty()) {
    if (auto status = run({"AUTH", options_.password}); !status.ok()) {
      drop_locked();
      return status;
    }
  }
  if (options_.db != 0) {
    if (auto status = run({"SELECT", std::to_string(options_.db)}); !status.ok()) {
      drop_locked();
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status RedisClient::write_hashes(const std::vector<RedisHash>& hashes) {
  std::lock_guard lock(mutex_);
  if (auto status = connect_locked(); !status.ok()) return status;
  size_t expected = 0;
  for (const auto& hash : hashes) {
    if (hash.fields.empty()) continue;
    std::vector<const char*> argv{"HSET", hash.key.c_str()};
    std::vector<size_t> lengths{4, hash.key.size()};
    for (const auto& [field, value] : hash.fields) {
      argv.push_back(field.data());
      lengths.push_back(field.size());
      argv.push_back(value.data());
      lengths.push_back(value.size());
    }
    redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data());
    ++expected;
    if (hash.expires_seconds > 0) {
      redisAppendCommand(context_, "EXPIRE %s %lld", hash.key.c_str(),
                         static_cast<long long>(hash.expires_seconds));
      ++expected;
    }
  }
  absl::Status first;
  for (size_t i = 0; i < expected; ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK) {
      std::string why = context_->errstr;
      drop_locked();
      return absl::UnavailableError(str_cat("redis ", address(), ": ", why));
    }
    Reply reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR && first.ok())
      first = absl::InvalidArgumentError(str_cat("redis ", address(), " HSET: ", reply->str));
  }
  return first;
}

absl::StatusOr<std::map<std::string, std::string>> RedisClient::hgetall(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (auto status = connect_locked(); !status.ok()) return status;
  Reply reply(
      static_cast<redisReply*>(redisCommand(context_, "HGETALL %b", key.data(), key.size())));
  if (!reply) {
    std::string why = context_->errstr;
    drop_locked();
    return absl::UnavailableError(str_cat("redis ", address(), ": ", why));
  }
  std::map<std::string, std::string> out;
  if (reply->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i + 1 < reply->elements; i += 2)
    out[std::string(reply->element[i]->str, reply->element[i]->len)] =
        std::string(reply->element[i + 1]->str, reply->element[i + 1]->len);
  return out;
}

absl::StatusOr<std::optional<std::string>> RedisClient::hget(const std::string& key,
                                                             const std::string& field) {
  std::lock_guard lock(mutex_);
  if (auto status = connect_locked(); !status.ok()) return status;
  Reply reply(static_cast<redisReply*>(
      redisCommand(context_, "HGET %b %b", key.data(), key.size(), field.data(), field.size())));
  if (!reply) {
    std::string why = context_->errstr;
    drop_locked();
    return absl::UnavailableError(str_cat("redis ", address(), ": ", why));
  }
  if (reply->type != REDIS_REPLY_STRING) return std::optional<std::string>();
  return std::optional<std::string>(std::string(reply->str, reply->len));
}

absl::StatusOr<std::vector<std::string>> RedisClient::scan(const std::string& pattern) {
  std::lock_guard lock(mutex_);
  if (auto status = connect_locked(); !status.ok()) return status;
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    Reply reply(static_cast<redisReply*>(redisCommand(
        context_, "SCAN %s MATCH %b COUNT 1000", cursor.c_str(), pattern.data(), pattern.size())));
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
      std::string why = reply ? "unexpected SCAN reply" : context_->errstr;
      drop_locked();
      return absl::UnavailableError(str_cat("redis ", address(), ": ", why));
    }
    cursor.assign(reply->element[0]->str, reply->element[0]->len);
    for (size_t i = 0; i < reply->element[1]->elements; ++i)
      keys.emplace_back(reply->element[1]->element[i]->str, reply->element[1]->element[i]->len);
  } while (cursor != "0");
  return keys;
}

}  // namespace telekern::etl
