// The proxy module's options, bound from `modules.proxy.*` (proxy_module.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "router.h"

namespace telekern::proxy {

struct ProxyOptions {
  std::vector<std::string> upstreams;  // static host:port list
  std::string broker_service;          // StatefulSet-style names: <service>-<i>.<service>:<port>
  uint32_t broker_count = 0;
  uint32_t broker_port = 7070;
  Algorithm algorithm = Algorithm::kRing;
  uint32_t virtual_nodes = 150;
  uint32_t ring_probes = 4;
  uint32_t max_partitions = 64;
  uint32_t default_partitions = 4;
  std::chrono::milliseconds health_interval{2000};
  std::chrono::milliseconds health_timeout{1000};
  uint32_t unhealthy_threshold = 3;
  uint32_t healthy_threshold = 2;
  std::string health_service = "telekern.broker.v1.Broker";
  Failback failback = Failback::kImmediate;
  std::chrono::milliseconds failback_timeout{30000};
  std::chrono::milliseconds call_timeout{30000};
  uint32_t max_in_flight = 1000;
  uint32_t produce_streams = 2;
  uint32_t produce_stream_window = 2;
  uint32_t retry_attempts = 3;
  std::chrono::milliseconds retry_backoff{100};
  uint32_t worker_threads = 2;
  uint32_t max_pending_requests = 2000;

  // The static list plus the names broker_service and broker_count give.
  std::vector<std::string> members() const {
    std::vector<std::string> out = upstreams;
    for (uint32_t i = 0; i < broker_count; ++i) {
      out.push_back(broker_service + "-" + std::to_string(i) + "." + broker_service + ":" +
                    std::to_string(broker_port));
    }
    return out;
  }
};

}  // namespace telekern::proxy
