// Process metrics read from /proc at scrape time: CPU, memory, fds, threads.
#pragma once

#include <memory>

#include "telekern/metrics.h"

namespace telekern::kernel {

[[nodiscard]] std::unique_ptr<CollectorHandle> register_process_metrics(MetricsRegistry& registry);

}  // namespace telekern::kernel
