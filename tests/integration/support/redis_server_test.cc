// The RedisServer fixture starts a real redis-server; in CI its absence fails.
#include "tests/support/redis_server.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

namespace telekern::testing {
namespace {

TEST(RedisServerFixtureTest, StartsAnswersAndStops) {
  int port = 0;
  {
    RedisServer redis({.appendonly = "yes", .appendfsync = "always"});
    if (redis.binary().empty()) {
      if (running_in_ci()) FAIL() << "redis-server is missing (install the redis-server package)";
      GTEST_SKIP() << "redis-server not installed";
    }
    ASSERT_TRUE(redis.ready());
    port = redis.port();
    redisContext* context = redis.connect();
    ASSERT_NE(context, nullptr);
    auto* reply = static_cast<redisReply*>(redisCommand(context, "XADD s * k v"));
    ASSERT_NE(reply, nullptr);
    EXPECT_EQ(reply->type, REDIS_REPLY_STRING);
    freeReplyObject(reply);
    redisFree(context);
  }
  timeval timeout{1, 0};
  redisContext* after = redisConnectWithTimeout("127.0.0.1", port, timeout);
  EXPECT_TRUE(after == nullptr || after->err) << "the server stops with the fixture";
  if (after) redisFree(after);
}

}  // namespace
}  // namespace telekern::testing
