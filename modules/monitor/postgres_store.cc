#include "monitor_store.h"

namespace telekern::monitor {

absl::StatusOr<std::unique_ptr<MonitorStore>> open_postgres_store(const std::string&) {
  return absl::UnimplementedError("PostgreSQL store not built yet");
}

}  // namespace telekern::monitor
