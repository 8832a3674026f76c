// The Redis Streams driver (hiredis): a topic is a stream, a subscription a
// consumer group; producers pipeline XADD and wait for every reply, consumers
// XREADGROUP and XACK what they read. Partitions do not apply to one stream.
#include <hiredis/hiredis.h>

#include <atomic>

#include "driver.h"
#include "telekern/strings.h"

namespace telekern::bench {
namespace {

struct RedisFree {
  void operator()(redisContext* context) const { redisFree(context); }
};
struct ReplyFree {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisPtr = std::unique_ptr<redisContext, RedisFree>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

absl::StatusOr<RedisPtr> connect(const DriverSpec& spec) {
  timeval timeout{5, 0};
  RedisPtr context(redisConnectWithTimeout(spec.redis_host.c_str(), spec.redis_port, timeout));
  if (!context) return absl::ResourceExhaustedError("hiredis could not allocate a context");
  if (context->err)
    return absl::UnavailableError(str_cat("redis ", spec.redis_host, ":", spec.redis_port,
                                          " unreachable: ", context->errstr,
                                          "; start redis-server or fix redisHost/redisPort"));
  return context;
}

absl::Status reply_error(redisContext* context, redisReply* reply, const std::string& what) {
  if (!reply) return absl::UnavailableError(str_cat("redis ", what, ": ", context->errstr));
  if (reply->type == REDIS_REPLY_ERROR)
    return absl::InternalError(str_cat("redis ", what, ": ", std::string(reply->str, reply->len)));
  return absl::OkStatus();
}

ReplyPtr command(redisContext* context, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data())));
}

class RedisProducer final : public DriverProducer {
 public:
  RedisProducer(RedisPtr context, std::string topic)
      : context_(std::move(context)), topic_(std::move(topic)) {}

  absl::Status send_batch(const std::vector<Message>& batch) override {
    for (const auto& message : batch) {
      const char* argv[] = {"XADD", topic_.c_str(), "*", "p", message.payload.data()};
      size_t lengths[] = {4, topic_.size(), 1, 1, message.payload.size()};
      if (redisAppendCommandArgv(context_.get(), 5, argv, lengths) != REDIS_OK)
        return absl::UnavailableError(str_cat("redis XADD: ", context_->errstr));
    }
    absl::Status first;
    for (size_t i = 0; i < batch.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(context_.get(), &raw) != REDIS_OK)
        return absl::UnavailableError(str_cat("redis XADD reply: ", context_->errstr));
      ReplyPtr reply(static_cast<redisReply*>(raw));
      auto status = reply_error(context_.get(), reply.get(), "XADD");
      if (first.ok() && !status.ok()) first = status;
    }
    return first;
  }

 private:
  RedisPtr context_;
  std::string topic_;
};

class RedisConsumer final : public DriverConsumer {
 public:
  RedisConsumer(RedisPtr context, std::string topic, std::string group, std::string name)
      : context_(std::move(context)),
        topic_(std::move(topic)),
        group_(std::move(group)),
        name_(std::move(name)) {}

  absl::Status poll(std::vector<std::string>& out, size_t max,
                    std::chrono::milliseconds timeout) override {
    auto reply =
        command(context_.get(),
                {"XREADGROUP", "GROUP", group_, name_, "COUNT", std::to_string(max), "BLOCK",
                 std::to_string(std::max<int64_t>(1, timeout.count())), "STREAMS", topic_, ">"});
    if (auto status = reply_error(context_.get(), reply.get(), "XREADGROUP"); !status.ok())
      return status;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return absl::OkStatus();
    std::vector<std::string> ack = {"XACK", topic_, group_};
    for (size_t s = 0; s < reply->elements; ++s) {
      redisReply* stream = reply->element[s];
      if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) continue;
      redisReply* entries = stream->element[1];
      for (size_t e = 0; e < entries->elements; ++e) {
        redisReply* entry = entries->element[e];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) continue;
        ack.emplace_back(entry->element[0]->str, entry->element[0]->len);
        redisReply* fields = entry->element[1];
        for (size_t f = 0; f + 1 < fields->elements; f += 2) {
          if (std::string_view(fields->element[f]->str, fields->element[f]->len) == "p")
            out.emplace_back(fields->element[f + 1]->str, fields->element[f + 1]->len);
        }
      }
    }
    if (ack.size() == 3) return absl::OkStatus();
    auto acked = command(context_.get(), ack);
    return reply_error(context_.get(), acked.get(), "XACK");
  }

 private:
  RedisPtr context_;
  std::string topic_;
  std::string group_;
  std::string name_;
};

class RedisDriver final : public Driver {
 public:
  explicit RedisDriver(DriverSpec spec) : spec_(std::move(spec)) {}

  absl::Status create_topic(const std::string& topic, uint32_t) override {
    auto context = connect(spec_);
    if (!context.ok()) return context.status();
    topics_.push_back(topic);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<DriverProducer>> producer(const std::string& topic) override {
    auto context = connect(spec_);
    if (!context.ok()) return context.status();
    return std::make_unique<RedisProducer>(std::move(*context), topic);
  }

  absl::StatusOr<std::unique_ptr<DriverConsumer>> consumer(
      const std::string& topic, const std::string& subscription) override {
    auto context = connect(spec_);
    if (!context.ok()) return context.status();
    auto reply =
        command(context->get(), {"XGROUP", "CREATE", topic, subscription, "0", "MKSTREAM"});
    if (!reply) return absl::UnavailableError(str_cat("redis XGROUP: ", (*context)->errstr));
    if (reply->type == REDIS_REPLY_ERROR &&
        std::string_view(reply->str, reply->len).find("BUSYGROUP") == std::string_view::npos)
      return absl::InternalError(str_cat("redis XGROUP CREATE ", topic, " ", subscription, ": ",
                                         std::string(reply->str, reply->len)));
    return std::make_unique<RedisConsumer>(std::move(*context), topic, subscription,
                                           str_cat("c", next_consumer_++));
  }

  void cleanup() override {
    auto context = connect(spec_);
    if (!context.ok()) return;
    for (const auto& topic : topics_) command(context->get(), {"DEL", topic});
  }

 private:
  DriverSpec spec_;
  std::vector<std::string> topics_;
  std::atomic<int> next_consumer_{0};
};

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> make_redis_driver(const DriverSpec& spec) {
  return std::make_unique<RedisDriver>(spec);
}

}  // namespace telekern::bench
