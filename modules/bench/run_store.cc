#include "run_store.h"

#include <fstream>
#include <sstream>

#include "telekern/strings.h"

namespace telekern::bench {

using nlohmann::json;

absl::StatusOr<std::string> RunStore::create_run() {
  std::lock_guard lock(mutex_);
  std::error_code error;
  std::filesystem::create_directories(root_, error);
  if (error)
    return absl::InternalError(str_cat("cannot create results directory ", root_.string(), ": ",
                                       error.message(), "; set modules.bench.results_dir"));
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "exp-%Y%m%d-%H%M%S", &tm);
  std::string id = stamp;
  for (int n = 2; std::filesystem::exists(root_ / id); ++n) id = str_cat(stamp, "-", n);
  std::filesystem::create_directories(root_ / id / "benchmark_results", error);
  if (error) return absl::InternalError(str_cat("cannot create ", (root_ / id).string()));
  return id;
}

absl::Status RunStore::check_id(const std::string& id) const {
  if (id.empty() || id.find('/') != std::string::npos || id.find("..") != std::string::npos ||
      id == "latest")
    return absl::InvalidArgumentError(str_cat("'", id, "' is not a run id (exp-YYYYMMDD-HHMMSS)"));
  if (!std::filesystem::is_directory(root_ / id))
    return absl::NotFoundError(
        str_cat("no run '", id, "' under ", root_.string(), "; list runs with `bench runs`"));
  return absl::OkStatus();
}

absl::Status RunStore::write_file(const std::string& id, const std::filesystem::path& relative,
                                  const std::string& content) const {
  auto path = root_ / id / relative;
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  auto temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) return absl::InternalError(str_cat("cannot write ", path.string()));
  }
  std::filesystem::rename(temporary, path, error);
  if (error)
    return absl::InternalError(str_cat("cannot write ", path.string(), ": ", error.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> RunStore::read_file(const std::string& id,
                                                const std::filesystem::path& relative) const {
  std::ifstream in(root_ / id / relative, std::ios::binary);
  if (!in) return absl::NotFoundError(str_cat("run ", id, " has no ", relative.string()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::Status RunStore::write_state(const std::string& id, const RunSummary& summary) const {
  return write_file(id, "run.json", to_json(summary).dump(2));
}

absl::StatusOr<json> RunStore::result(const std::string& id) const {
  if (auto status = check_id(id); !status.ok()) return status;
  auto text = read_file(id, "benchmark_results/result.json");
  if (!text.ok())
    return absl::FailedPreconditionError(
        str_cat("run ", id, " has no results yet (still running, or it failed)"));
  auto parsed = json::parse(*text, nullptr, false);
  if (parsed.is_discarded())
    return absl::DataLossError(str_cat("run ", id, ": result.json is not JSON"));
  return parsed;
}

json RunStore::health(const std::string& id) const {
  auto text = read_file(id, "metrics/plot_data.json");
  if (!text.ok()) return json::object();
  auto parsed = json::parse(*text, nullptr, false);
  return parsed.is_discarded() ? json::object() : parsed;
}

void RunStore::point_latest(const std::string& id) const {
  std::error_code error;
  auto link = root_ / "latest";
  auto temporary = root_ / "latest.tmp";
  std::filesystem::remove(temporary, error);
  std::filesystem::create_directory_symlink(id, temporary, error);
  if (!error) std::filesystem::rename(temporary, link, error);
}

RunSummary summarize(const json& result) {
  RunSummary s;
  const auto& t = result.value("telekern", json::object());
  s.id = t.value("runId", "");
  s.workload = result.value("workload", "");
  s.driver = result.value("driver", "");
  s.started = t.value("started", "");
  s.valid = t.value("valid", false);
  s.state = t.value("cancelled", false) ? "cancelled" : "completed";
  double sum = 0;
  auto rates = result.value("publishRate", json::array());
  for (const auto& v : rates) sum += v.get<double>();
  s.publish_rate = rates.empty() ? 0 : sum / double(rates.size());
  s.publish_p99_ms = result.value("aggregatedPublishLatency99pct", 0.0);
  s.end_to_end_p99_ms = result.value("aggregatedEndToEndLatency99pct", 0.0);
  return s;
}

json to_json(const RunSummary& s) {
  return {{"id", s.id},
          {"workload", s.workload},
          {"driver", s.driver},
          {"state", s.state},
          {"started", s.started},
          {"error", s.error},
          {"valid", s.valid},
          {"publishRate", s.publish_rate},
          {"publishP99Ms", s.publish_p99_ms},
          {"endToEndP99Ms", s.end_to_end_p99_ms}};
}

absl::StatusOr<RunSummary> RunStore::summary(const std::string& id) const {
  if (auto status = check_id(id); !status.ok()) return status;
  auto text = read_file(id, "run.json");
  if (!text.ok()) return text.status();
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return absl::DataLossError(str_cat("run ", id, ": run.json is not JSON"));
  RunSummary s;
  s.id = j.value("id", id);
  s.workload = j.value("workload", "");
  s.driver = j.value("driver", "");
  s.state = j.value("state", "");
  s.started = j.value("started", "");
  s.error = j.value("error", "");
  s.valid = j.value("valid", false);
  s.publish_rate = j.value("publishRate", 0.0);
  s.publish_p99_ms = j.value("publishP99Ms", 0.0);
  s.end_to_end_p99_ms = j.value("endToEndP99Ms", 0.0);
  return s;
}

std::vector<RunSummary> RunStore::list() const {
  std::vector<RunSummary> out;
  std::error_code error;
  for (auto it = std::filesystem::directory_iterator(root_, error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (it->is_symlink() || !it->is_directory()) continue;
    auto s = summary(it->path().filename().string());
    if (s.ok()) out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id > b.id; });
  return out;
}

}  // namespace telekern::bench
