// A Consume stream through the proxy: one upstream Consume per upstream that
// serves some of the topic's partitions, and per other routable upstream that
// holds records of the topic (writes it took while an owner was down),
// merged into the client's stream as
// messages arrive. No thread is held per stream or per upstream: each
// upstream stream is read by a gRPC callback reactor that hands messages to a
// small bounded queue (a full queue pauses the reads, so a slow client slows
// the upstreams instead of buffering), and the client's side takes them out
// step by step (the SDK's PolledStream). When the owners change (failover,
// failback, membership) the stream ends UNAVAILABLE and the client's
// reconnect reaches the new owners.
#pragma once

#include <absl/status/status.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "proxy_engine.h"

namespace telekern::proxy {

class ConsumeFanout : public std::enable_shared_from_this<ConsumeFanout> {
 public:
  // What the client's stream does next.
  struct Next {
    std::optional<broker::v1::ConsumeResponse> message;  // write it
    std::optional<absl::Status> done;                    // end the call with it
    // Neither: wait until woken (a message, an upstream ended, the placement changed).
  };

  // `wake` is called (from any thread) whenever next() may have something new.
  ConsumeFanout(ProxyEngine& engine, broker::v1::ConsumeRequest request,
                std::function<void()> wake);
  // Opens the upstream streams on the engine's work queue (the topic's
  // partition count may need a call to the upstreams, which must not hold
  // the shared step threads); next() waits until they are open.
  void open();
  // Cancels the upstream streams that are still open (without waiting).
  ~ConsumeFanout();
  ConsumeFanout(const ConsumeFanout&) = delete;
  ConsumeFanout& operator=(const ConsumeFanout&) = delete;

  Next next();

  struct Feed;
  class Reader;

 private:
  // The placement changed: do the owners of this topic's partitions differ?
  bool owners_changed();
  // On an engine thread: partition count, owners, one reader per owner.
  void open_now();

  ProxyEngine& engine_;
  broker::v1::ConsumeRequest request_;
  uint32_t partitions_ = 0;
  uint64_t epoch_ = 0;
  bool opened_ = false;  // guarded by the feed's mutex; the fields below are set before it
  std::optional<absl::Status> failed_to_open_;
  std::map<std::string, std::set<uint32_t>> placed_;  // upstream -> partitions it serves
  std::shared_ptr<Feed> feed_;
  std::vector<std::shared_ptr<Reader>> readers_;
  std::map<size_t, std::set<uint32_t>> assigned_;  // per reader, only partitions it serves
  bool first_ = true;
  bool finished_ = false;  // max reached: the last message went out
  uint64_t delivered_ = 0;
};

}  // namespace telekern::proxy
