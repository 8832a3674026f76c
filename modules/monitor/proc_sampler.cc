#include "proc_sampler.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include "telekern/strings.h"

namespace telekern::monitor {
namespace {

absl::StatusOr<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(str_cat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> fields(std::string_view line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < line.size()) {
    start = line.find_first_not_of(" \t", start);
    if (start == std::string_view::npos) break;
    size_t end = line.find_first_of(" \t", start);
    if (end == std::string_view::npos) end = line.size();
    out.emplace_back(line.substr(start, end - start));
    start = end;
  }
  return out;
}

uint64_t number(const std::string& text) {
  uint64_t value = 0;
  (void)absl::SimpleAtoi(text, &value);
  return value;
}

double rate(uint64_t now, uint64_t before, double seconds) {
  if (seconds <= 0 || now < before) return 0;  // a counter reset (reboot, device gone)
  return static_cast<double>(now - before) / seconds;
}

}  // namespace

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

absl::StatusOr<v1::MetricSample> ProcSampler::sample(std::chrono::steady_clock::time_point now) {
  v1::MetricSample out;
  double seconds = primed_ ? std::chrono::duration<double>(now - last_time_).count() : 0;

  // CPU: jiffies busy / total per line of /proc/stat.
  auto stat = read_file(proc_root_ + "/stat");
  if (!stat.ok()) return stat.status();
  std::map<std::string, CpuTimes> cpu;
  for (std::string_view line : split(*stat, '\n')) {
    if (!line.starts_with("cpu")) continue;
    auto f = fields(line);
    if (f.size() < 5) continue;
    CpuTimes times;
    for (size_t i = 1; i < f.size() && i <= 8; ++i) times.total += number(f[i]);  // up to steal
    uint64_t idle = number(f[4]) + (f.size() > 5 ? number(f[5]) : 0);          // idle + iowait
    times.busy = times.total - std::min(idle, times.total);
    cpu[f[0]] = times;
  }
  auto percent = [&](const std::string& name) {
    auto it = last_cpu_.find(name);
    if (!primed_ || it == last_cpu_.end()) return 0.0;
    uint64_t total = cpu[name].total - it->second.total;
    uint64_t busy = cpu[name].busy - it->second.busy;
    return total == 0 ? 0.0 : 100.0 * static_cast<double>(busy) / static_cast<double>(total);
  };
  out.set_cpu_percent(percent("cpu"));
  for (const auto& [name, times] : cpu) {
    if (name == "cpu") continue;
    uint32_t core = 0;
    if (!absl::SimpleAtoi(name.substr(3), &core)) continue;
    auto* usage = out.add_cores();
    usage->set_core(core);
    usage->set_cpu_percent(percent(name));
  }
  std::sort(out.mutable_cores()->begin(), out.mutable_cores()->end(),
            [](const auto& a, const auto& b) { return a.core() < b.core(); });

  // Memory: (MemTotal - MemAvailable) / MemTotal.
  auto meminfo = read_file(proc_root_ + "/meminfo");
  if (!meminfo.ok()) return meminfo.status();
  uint64_t total_kb = 0, available_kb = 0;
  for (std::string_view line : split(*meminfo, '\n')) {
    auto f = fields(line);
    if (f.size() < 2) continue;
    if (f[0] == "MemTotal:") total_kb = number(f[1]);
    if (f[0] == "MemAvailable:") available_kb = number(f[1]);
  }
  if (total_kb > 0) {
    uint64_t used_kb = total_kb - std::min(available_kb, total_kb);
    out.set_memory_percent(100.0 * static_cast<double>(used_kb) / static_cast<double>(total_kb));
    out.set_memory_used_bytes(used_kb * 1024);
    out.set_memory_total_bytes(total_kb * 1024);
  }

  // Disks: whole devices (names in /sys/block), sectors of 512 bytes.
  std::set<std::string> whole_disks;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(sys_root_ + "/block", error)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with("loop") || name.starts_with("ram")) continue;
    whole_disks.insert(name);
  }
  std::map<std::string, Counters> disks;
  if (auto diskstats = read_file(proc_root_ + "/diskstats"); diskstats.ok()) {
    for (std::string_view line : split(*diskstats, '\n')) {
      auto f = fields(line);
      if (f.size() < 10 || !whole_disks.count(f[2])) continue;
      disks[f[2]] = {number(f[5]), number(f[9])};
    }
  }
  double read_total = 0, write_total = 0;
  for (const auto& [name, counters] : disks) {
    auto before = last_disks_.find(name);
    if (!primed_ || before == last_disks_.end()) continue;
    double read = rate(counters.first, before->second.first, seconds) * 512 / 1e6;
    double write = rate(counters.second, before->second.second, seconds) * 512 / 1e6;
    auto* device = out.add_disk_devices();
    device->set_device(name);
    device->set_read_mbps(read);
    device->set_write_mbps(write);
    read_total += read;
    write_total += write;
  }
  out.set_disk_read_mbps(read_total);
  out.set_disk_write_mbps(write_total);

  // Network: bytes received (field 1) and sent (field 9) per interface.
  std::map<std::string, Counters> network;
  if (auto dev = read_file(proc_root_ + "/net/dev"); dev.ok()) {
    for (std::string_view line : split(*dev, '\n')) {
      auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name(trim(line.substr(0, colon)));
      if (name == "lo") continue;
      auto f = fields(line.substr(colon + 1));
      if (f.size() < 9) continue;
      network[name] = {number(f[0]), number(f[8])};
    }
  }
  double rx_total = 0, tx_total = 0;
  for (const auto& [name, counters] : network) {
    auto before = last_network_.find(name);
    if (!primed_ || before == last_network_.end()) continue;
    double rx = rate(counters.first, before->second.first, seconds) * 8 / 1e6;
    double tx = rate(counters.second, before->second.second, seconds) * 8 / 1e6;
    auto* device = out.add_network_devices();
    device->set_device(name);
    device->set_rx_mbps(rx);
    device->set_tx_mbps(tx);
    rx_total += rx;
    tx_total += tx;
  }
  out.set_network_rx_mbps(rx_total);
  out.set_network_tx_mbps(tx_total);

  if (auto load = read_file(proc_root_ + "/loadavg"); load.ok()) {
    auto f = fields(*load);
    double value = 0;
    if (f.size() >= 3) {
      if (absl::SimpleAtod(f[0], &value)) out.set_load1(value);
      if (absl::SimpleAtod(f[1], &value)) out.set_load5(value);
      if (absl::SimpleAtod(f[2], &value)) out.set_load15(value);
    }
  }

  last_cpu_ = std::move(cpu);
  last_disks_ = std::move(disks);
  last_network_ = std::move(network);
  last_time_ = now;
  primed_ = true;
  out.set_disk_io_mbps(out.disk_read_mbps() + out.disk_write_mbps());
  out.set_network_mbps(out.network_rx_mbps() + out.network_tx_mbps());
  return out;
}

}  // namespace telekern::monitor
