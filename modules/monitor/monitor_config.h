// The monitor module's config keys, bound to MonitorOptions (declared once:
// the kernel validates with it and the README's table is generated from it).
#pragma once

#include "monitor_options.h"
#include "telekern/config_map.h"

namespace telekern::monitor {

ConfigMap<MonitorOptions> monitor_config();

}  // namespace telekern::monitor
