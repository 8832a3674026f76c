// A Consume stream through the proxy: one upstream Consume per upstream that
// serves some of the topic's partitions, merged into the client's stream as
// messages arrive (a small bounded queue between them, so a slow client slows
// the upstream reads instead of buffering). When the owners change (failover,
// failback, membership) the stream ends UNAVAILABLE and the client's
// reconnect reaches the new owners.
#pragma once

#include <absl/status/status.h>

#include <stop_token>

#include "proxy_engine.h"
#include "telekern/service/stream_sessions.h"

namespace telekern::proxy {

absl::Status consume_fanout(ProxyEngine& engine, const broker::v1::ConsumeRequest& request,
                            StreamWriter<broker::v1::ConsumeResponse>& writer,
                            std::stop_token stop);

}  // namespace telekern::proxy
