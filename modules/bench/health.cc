#include "health.h"

#include <httplib.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <sstream>

#include "telekern/strings.h"

namespace telekern::bench {
namespace {

using nlohmann::json;

std::string iso_now() {
  auto seconds = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

bool is_queue_metric(const std::string& name) {
  if (name.ends_with("_bucket") || name.ends_with("_count") || name.ends_with("_sum") ||
      name.ends_with("_total"))
    return false;
  return name.find("lag") != std::string::npos || name.find("backlog") != std::string::npos ||
         name.find("queue") != std::string::npos || name.find("pending") != std::string::npos;
}

std::optional<double> get(const std::map<std::string, double>& metrics, const std::string& name) {
  auto it = metrics.find(name);
  if (it == metrics.end()) return std::nullopt;
  return it->second;
}

std::optional<double> sum_matching(const std::map<std::string, double>& metrics,
                                   const std::vector<std::string>& needles,
                                   const std::string& suffix) {
  std::optional<double> total;
  for (const auto& [name, value] : metrics) {
    if (!name.ends_with(suffix)) continue;
    for (const auto& needle : needles) {
      if (name.find(needle) != std::string::npos) {
        total = total.value_or(0) + value;
        break;
      }
    }
  }
  return total;
}

absl::StatusOr<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(str_cat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void put(json& out, const char* key, const std::optional<double>& value) {
  if (value) out[key] = *value;
}
std::optional<double> take(const json& in, const char* key) {
  if (in.contains(key) && in[key].is_number()) return in[key].get<double>();
  return std::nullopt;
}

}  // namespace

absl::StatusOr<HealthTarget> parse_health_target(const std::string& spec) {
  HealthTarget target;
  target.name = spec;
  if (spec.starts_with("http://") || spec.starts_with("https://")) {
    target.kind = HealthTarget::Kind::kPrometheus;
    target.url = spec;
    return target;
  }
  if (spec == "self") {
    target.kind = HealthTarget::Kind::kProcess;
    target.pid = ::getpid();
    return target;
  }
  if (spec.starts_with("pid:")) {
    auto pid = parse_int(std::string_view(spec).substr(4));
    if (!pid || *pid <= 0)
      return absl::InvalidArgumentError(str_cat("health target '", spec, "' has no valid pid"));
    target.kind = HealthTarget::Kind::kProcess;
    target.pid = static_cast<pid_t>(*pid);
    return target;
  }
  return absl::InvalidArgumentError(
      str_cat("health target '", spec, "' is not http://HOST:PORT/metrics, pid:N or self"));
}

std::map<std::string, double> parse_prometheus_text(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string::npos) continue;
    std::string name = line.substr(0, name_end);
    size_t value_start = name_end;
    std::string labels;
    if (line[name_end] == '{') {
      size_t close = line.find('}', name_end);
      if (close == std::string::npos) continue;
      labels = line.substr(name_end + 1, close - name_end - 1);
      value_start = close + 1;
    }
    std::istringstream value_in(line.substr(value_start));
    std::string value_text;
    value_in >> value_text;
    char* end = nullptr;
    double value = std::strtod(value_text.c_str(), &end);
    if (end == value_text.c_str()) continue;
    if (name == "jvm_memory_bytes_used" && labels.find("area=\"heap\"") != std::string::npos)
      name = "jvm_memory_bytes_used_heap";
    out[name] += value;
  }
  return out;
}

HealthCollector::HealthCollector(std::vector<HealthTarget> targets,
                                 std::chrono::milliseconds interval,
                                 std::shared_ptr<spdlog::logger> logger)
    : targets_(std::move(targets)),
      interval_(interval),
      logger_(std::move(logger)),
      origin_(std::chrono::steady_clock::now()) {}

HealthCollector::~HealthCollector() { stop_background(); }

TargetSample HealthCollector::sample(const HealthTarget& target, double now) {
  TargetSample s;
  s.target = target.name;
  std::optional<double> cpu_seconds, pause_seconds, fsync_seconds, write_bytes;
  try {
    if (target.kind == HealthTarget::Kind::kPrometheus) {
      // scheme://host:port + path
      auto scheme_end = target.url.find("://");
      auto path_start = target.url.find('/', scheme_end + 3);
      std::string base = target.url.substr(0, path_start);
      std::string path =
          path_start == std::string::npos ? "/metrics" : target.url.substr(path_start);
      httplib::Client client(base);
      client.set_connection_timeout(std::chrono::seconds(2));
      client.set_read_timeout(std::chrono::seconds(5));
      auto response = client.Get(path);
      if (!response) {
        s.error = str_cat("GET ", target.url, ": ", httplib::to_string(response.error()));
        return s;
      }
      if (response->status != 200) {
        s.error = str_cat("GET ", target.url, ": HTTP ", response->status);
        return s;
      }
      auto metrics = parse_prometheus_text(response->body);
      cpu_seconds = get(metrics, "process_cpu_seconds_total");
      s.rss_bytes = get(metrics, "process_resident_memory_bytes");
      s.open_fds = get(metrics, "process_open_fds");
      s.heap_bytes = get(metrics, "jvm_memory_bytes_used_heap");
      if (!s.heap_bytes) s.heap_bytes = get(metrics, "go_memstats_heap_alloc_bytes");
      fsync_seconds = sum_matching(metrics, {"fsync"}, "_seconds_sum");
      auto gc = sum_matching(metrics, {"gc_collection_seconds", "gc_duration_seconds", "gc_pause"},
                             "_sum");
      if (gc || fsync_seconds) pause_seconds = gc.value_or(0) + fsync_seconds.value_or(0);
      for (const auto& [name, value] : metrics) {
        if (is_queue_metric(name)) s.queue[name] = value;
      }
    } else {
      std::string base = str_cat("/proc/", target.pid);
      auto stat = read_text(base + "/stat");
      if (!stat.ok()) {
        s.error =
            str_cat("process ", target.pid, " is not running (", stat.status().message(), ")");
        return s;
      }
      // Fields after the command name (which may hold spaces): state is field 3.
      auto close = stat->rfind(')');
      auto fields = split(std::string_view(*stat).substr(close + 2), ' ');
      if (fields.size() > 21) {
        double ticks = double(sysconf(_SC_CLK_TCK));
        cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;  // utime + stime
        s.rss_bytes = std::stod(fields[21]) * double(sysconf(_SC_PAGESIZE));
      }
      size_t fds = 0;
      std::error_code error;
      for (auto it = std::filesystem::directory_iterator(base + "/fd", error);
           !error && it != std::filesystem::directory_iterator(); it.increment(error))
        ++fds;
      if (!error) s.open_fds = double(fds);
      auto io = read_text(base + "/io");
      if (io.ok()) {
        for (const auto& line : split(*io, '\n')) {
          if (line.starts_with("write_bytes: ")) write_bytes = std::stod(line.substr(13));
        }
      }
    }
  } catch (const std::exception& error) {
    s.error = str_cat("reading ", target.name, ": ", error.what());
    return s;
  }
  s.ok = true;
  std::lock_guard lock(mutex_);
  auto& previous = previous_[target.name];
  double elapsed = now - previous.at_seconds;
  if (elapsed > 0) {
    if (cpu_seconds && previous.cpu_seconds)
      s.cpu_percent = 100.0 * (*cpu_seconds - *previous.cpu_seconds) / elapsed;
    if (write_bytes && previous.write_bytes)
      s.disk_write_bytes_per_s = (*write_bytes - *previous.write_bytes) / elapsed;
  }
  if (pause_seconds)
    s.pause_ms = 1000.0 * (*pause_seconds - previous.pause_seconds.value_or(*pause_seconds));
  if (fsync_seconds)
    s.fsync_ms = 1000.0 * (*fsync_seconds - previous.fsync_seconds.value_or(*fsync_seconds));
  previous = {now, cpu_seconds, pause_seconds, fsync_seconds, write_bytes};
  return s;
}

HealthSnapshot HealthCollector::take(const std::string& phase) {
  HealthSnapshot snapshot;
  snapshot.phase = phase;
  snapshot.time = iso_now();
  double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
  snapshot.elapsed_seconds = now;
  for (const auto& target : targets_) {
    auto s = sample(target, now);
    if (!s.ok) {
      if (logger_)
        logger_->warn("health target {} not read ({}): {}; the run continues", target.name, phase,
                      s.error);
      std::lock_guard lock(mutex_);
      failures_[target.name] = s.error;
    }
    snapshot.targets.push_back(std::move(s));
  }
  return snapshot;
}

HealthSnapshot HealthCollector::collect_baseline() {
  auto snapshot = take("baseline");
  std::lock_guard lock(mutex_);
  baseline_ = snapshot;
  return snapshot;
}

void HealthCollector::start_background() {
  if (targets_.empty() || background_.joinable()) return;
  background_ = std::jthread([this](std::stop_token stop) {
    std::mutex wait_mutex;
    std::condition_variable_any wait;
    while (!stop.stop_requested()) {
      {
        std::unique_lock lock(wait_mutex);
        if (wait.wait_for(lock, stop, interval_, [] { return false; })) break;
      }
      if (stop.stop_requested()) break;
      auto snapshot = take("continuous");
      std::lock_guard lock(mutex_);
      timeseries_.push_back(std::move(snapshot));
    }
  });
}

void HealthCollector::stop_background() {
  if (!background_.joinable()) return;
  background_.request_stop();
  background_.join();
}

HealthSnapshot HealthCollector::collect_final() {
  stop_background();
  auto snapshot = take("final");
  std::lock_guard lock(mutex_);
  final_ = snapshot;
  return snapshot;
}

std::optional<HealthSnapshot> HealthCollector::baseline() const {
  std::lock_guard lock(mutex_);
  return baseline_;
}
std::vector<HealthSnapshot> HealthCollector::timeseries() const {
  std::lock_guard lock(mutex_);
  return timeseries_;
}
std::optional<HealthSnapshot> HealthCollector::final_snapshot() const {
  std::lock_guard lock(mutex_);
  return final_;
}
std::map<std::string, std::string> HealthCollector::failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

json to_json(const HealthSnapshot& snapshot) {
  json targets = json::array();
  for (const auto& s : snapshot.targets) {
    json t = {{"target", s.target}, {"ok", s.ok}};
    if (!s.ok) t["error"] = s.error;
    put(t, "cpu_percent", s.cpu_percent);
    put(t, "rss_bytes", s.rss_bytes);
    put(t, "heap_bytes", s.heap_bytes);
    put(t, "open_fds", s.open_fds);
    put(t, "pause_ms", s.pause_ms);
    put(t, "fsync_ms", s.fsync_ms);
    put(t, "disk_write_bytes_per_s", s.disk_write_bytes_per_s);
    if (!s.queue.empty()) t["queue"] = s.queue;
    targets.push_back(std::move(t));
  }
  return {{"phase", snapshot.phase},
          {"elapsed_seconds", snapshot.elapsed_seconds},
          {"time", snapshot.time},
          {"targets", targets}};
}

HealthSnapshot snapshot_from_json(const json& in) {
  HealthSnapshot snapshot;
  snapshot.phase = in.value("phase", "");
  snapshot.elapsed_seconds = in.value("elapsed_seconds", 0.0);
  snapshot.time = in.value("time", "");
  for (const auto& t : in.value("targets", json::array())) {
    TargetSample s;
    s.target = t.value("target", "");
    s.ok = t.value("ok", false);
    s.error = t.value("error", "");
    s.cpu_percent = take(t, "cpu_percent");
    s.rss_bytes = take(t, "rss_bytes");
    s.heap_bytes = take(t, "heap_bytes");
    s.open_fds = take(t, "open_fds");
    s.pause_ms = take(t, "pause_ms");
    s.fsync_ms = take(t, "fsync_ms");
    s.disk_write_bytes_per_s = take(t, "disk_write_bytes_per_s");
    if (t.contains("queue")) s.queue = t["queue"].get<std::map<std::string, double>>();
    snapshot.targets.push_back(std::move(s));
  }
  return snapshot;
}

json HealthCollector::plot_data() const {
  std::vector<HealthSnapshot> all;
  {
    std::lock_guard lock(mutex_);
    if (baseline_) all.push_back(*baseline_);
    all.insert(all.end(), timeseries_.begin(), timeseries_.end());
    if (final_) all.push_back(*final_);
  }
  json targets = json::object();
  for (const auto& snapshot : all) {
    for (const auto& s : snapshot.targets) {
      json& t = targets[s.target];
      auto push = [&](const char* key, const std::optional<double>& v) {
        t[key].push_back(v ? json(*v) : json(nullptr));
      };
      t["t"].push_back(snapshot.elapsed_seconds);
      t["phase"].push_back(snapshot.phase);
      t["ok"].push_back(s.ok);
      push("cpu_percent", s.cpu_percent);
      push("rss_bytes", s.rss_bytes);
      push("heap_bytes", s.heap_bytes);
      push("open_fds", s.open_fds);
      push("pause_ms", s.pause_ms);
      push("fsync_ms", s.fsync_ms);
      push("disk_write_bytes_per_s", s.disk_write_bytes_per_s);
    }
  }
  // CPU percent is of one core; saturation is judged against the cores here.
  return {{"targets", targets}, {"cores", std::max(1u, std::thread::hardware_concurrency())}};
}

absl::Status HealthCollector::write(const std::filesystem::path& dir) const {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    return absl::InternalError(str_cat("cannot create ", dir.string(), ": ", error.message()));
  auto write_json = [&](const std::string& name, const json& value) -> absl::Status {
    std::ofstream out(dir / name);
    out << value.dump(2);
    if (!out) return absl::InternalError(str_cat("cannot write ", (dir / name).string()));
    return absl::OkStatus();
  };
  json series = json::array();
  for (const auto& snapshot : timeseries()) series.push_back(to_json(snapshot));
  auto b = baseline();
  auto f = final_snapshot();
  absl::Status status = write_json("baseline_snapshot.json", b ? to_json(*b) : json::object());
  if (auto s = write_json("timeseries.json", series); status.ok()) status = s;
  if (auto s = write_json("final_snapshot.json", f ? to_json(*f) : json::object()); status.ok())
    status = s;
  if (auto s = write_json("plot_data.json", plot_data()); status.ok()) status = s;
  return status;
}

}  // namespace telekern::bench
