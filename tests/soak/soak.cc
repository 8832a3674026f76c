// `make soak`: telekernd with every built module on embedded defaults under a
// mixed load (produce, consume, telesh batch commands, HTTP scrapes), with a
// module reload every 10 s and a SIGHUP every minute. RSS, open files,
// threads and mappings are sampled every 10 s; the soak passes when no call
// failed and each resource stays flat (the least-squares slope over the run,
// after a warm-up, below a stated bound). Prints the samples as a table and
// writes an SVG plot.  telekern_soak [--minutes N] [--out DIR]  (SOAK_MINUTES)
#include <google/protobuf/util/time_util.h>
#include <signal.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "telekern/broker/v1/broker.grpc.pb.h"
#include "telekern/kernel/v1/kernel.grpc.pb.h"
#include "tests/support/process.h"
#include "tests/support/process_resources.h"
#include "tests/support/telekernd.h"

namespace {

using namespace std::chrono_literals;
using telekern::testing::Telekernd;
namespace bv1 = telekern::broker::v1;
namespace kv1 = telekern::kernel::v1;

struct Sample : telekern::testing::ProcessResources {
  double minute = 0;
};

// A resource and the largest growth per minute the soak tolerates.
struct Series {
  const char* name;
  double Sample::*value;
  double bound_per_minute;
  const char* unit;
};

const Series kSeries[] = {
    {"RSS", &Sample::rss_mib, 0.5, "MiB"},
    {"open files", &Sample::open_files, 1.0, ""},
    {"threads", &Sample::threads, 0.5, ""},
    {"mappings", &Sample::mappings, 1.0, ""},
};

Sample sample(pid_t pid, double minute) {
  Sample out;
  static_cast<telekern::testing::ProcessResources&>(out) =
      telekern::testing::process_resources(pid);
  out.minute = minute;
  return out;
}

// Least-squares slope of `value` per minute over `samples`.
double slope(const std::vector<Sample>& samples, double Sample::*value) {
  double n = static_cast<double>(samples.size());
  if (n < 2) return 0;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& s : samples) {
    sx += s.minute;
    sy += s.*value;
    sxx += s.minute * s.minute;
    sxy += s.minute * (s.*value);
  }
  double denominator = n * sxx - sx * sx;
  return denominator == 0 ? 0 : (n * sxy - sx * sy) / denominator;
}

void write_svg(const std::vector<Sample>& samples, const std::filesystem::path& file) {
  std::ofstream out(file);
  const int width = 480, height = 160, margin = 36;
  out << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width * 2 << "' height='"
      << height * 2 << "' font-family='sans-serif' font-size='11'>\n";
  int index = 0;
  for (const auto& series : kSeries) {
    int x0 = (index % 2) * width, y0 = (index / 2) * height;
    double low = 1e18, high = -1e18, last_minute = 0;
    for (const auto& s : samples) {
      low = std::min(low, s.*series.value);
      high = std::max(high, s.*series.value);
      last_minute = std::max(last_minute, s.minute);
    }
    if (high <= low) high = low + 1;
    if (last_minute <= 0) last_minute = 1;
    out << "<text x='" << x0 + margin << "' y='" << y0 + 16 << "'>" << series.name << " ("
        << series.unit << ") " << low << " .. " << high << "</text>\n<polyline fill='none' "
        << "stroke='steelblue' stroke-width='1.5' points='";
    for (const auto& s : samples) {
      double x = x0 + margin + (width - 2 * margin) * s.minute / last_minute;
      double y = y0 + height - margin + 10 -
                 (height - 2 * margin) * (s.*series.value - low) / (high - low);
      out << x << "," << y << " ";
    }
    out << "'/>\n";
    ++index;
  }
  out << "</svg>\n";
}

std::unique_ptr<grpc::ClientContext> context(std::chrono::milliseconds deadline = 20s) {
  auto out = std::make_unique<grpc::ClientContext>();
  out->set_deadline(std::chrono::system_clock::now() + deadline);
  out->set_wait_for_ready(true);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  double minutes = 10;
  if (const char* env = std::getenv("SOAK_MINUTES")) minutes = std::stod(env);
  std::filesystem::path out_dir = std::filesystem::path(TELEKERN_BUILD_DIR) / "soak";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--minutes") minutes = std::stod(argv[i + 1]);
    if (flag == "--out") out_dir = argv[i + 1];
  }
  std::filesystem::create_directories(out_dir);
  // Bounded data, so what grows is the daemon, not the log it keeps.
  const std::string config =
      "drain_timeout: 1s\nmodule_release_grace: 2s\n"
      "modules:\n  broker:\n    segment_bytes: 1048576\n    retention_bytes: 4194304\n"
      "    retention_check_interval: 5s\n";
  Telekernd daemon(
      {.config_yaml = config, .modules_dir = std::string(TELEKERN_BUILD_DIR) + "/modules"});
  if (!daemon.ready()) {
    std::cerr << "telekernd did not start:\n" << daemon.log();
    return 1;
  }
  pid_t pid = daemon.process().pid();
  std::cout << "soak: " << minutes << " min, telekernd pid " << pid << ", modules from "
            << TELEKERN_BUILD_DIR << "/modules\n";

  std::atomic<bool> done{false};
  std::atomic<uint64_t> calls{0}, failed{0};
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& what) {
    ++failed;
    std::lock_guard lock(errors_mutex);
    if (errors.size() < 20) errors.push_back(what);
  };
  auto broker = bv1::Broker::NewStub(daemon.channel());

  std::thread producer([&] {
    uint64_t sequence = 0;
    while (!done) {
      bv1::ProduceRequest request;
      request.set_topic("soak");
      for (int i = 0; i < 20; ++i) {
        auto* record = request.add_records();
        record->set_key("key-" + std::to_string(sequence % 16));
        record->set_value(std::string(200, 'x') + std::to_string(sequence++));
      }
      bv1::ProduceResponse response;
      auto status = broker->Produce(context().get(), request, &response);
      ++calls;
      if (!status.ok()) fail("produce: " + status.error_message());
      std::this_thread::sleep_for(20ms);  // about 1,000 records/s: a steady load, not a burst
    }
  });
  std::thread consumer([&] {
    while (!done) {
      bv1::ConsumeRequest request;
      request.set_topic("soak");
      request.set_group("soak-readers");
      request.set_auto_commit(true);
      *request.mutable_wait() = google::protobuf::util::TimeUtil::MillisecondsToDuration(2000);
      auto opened = std::chrono::steady_clock::now();
      auto call = context(60s);
      auto reader = broker->Consume(call.get(), request);
      bv1::ConsumeResponse response;
      while (!done && reader->Read(&response)) {
      }
      if (done) call->TryCancel();
      auto status = reader->Finish();
      ++calls;
      // A reload ends open streams with UNAVAILABLE by design; clients
      // reconnect. A stream that lived out its own 60 s deadline ended as the
      // client asked.
      bool lived_out_deadline = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
                                std::chrono::steady_clock::now() - opened >= 59s;
      if (!status.ok() && status.error_code() != grpc::StatusCode::UNAVAILABLE &&
          status.error_code() != grpc::StatusCode::CANCELLED && !lived_out_deadline)
        fail("consume: " + status.error_message());
    }
  });
  std::thread shell([&] {
    std::string telesh = std::string(TELEKERN_BUILD_DIR) + "/bin/telesh";
    while (!done) {
      auto result = telekern::testing::run_command(telesh + " --addr " + daemon.grpc_address() +
                                                   " -c 'info; modules list' 2>&1");
      ++calls;
      if (result.exit_code != 0) fail("telesh: " + result.output);
      std::this_thread::sleep_for(5s);
    }
  });
  std::thread scraper([&] {
    while (!done) {
      auto [code, body] = daemon.http_get("/metrics");
      ++calls;
      if (code != 200) fail("GET /metrics: " + std::to_string(code));
      std::this_thread::sleep_for(2s);
    }
  });

  auto kernel = kv1::Kernel::NewStub(daemon.channel());
  std::vector<std::string> modules;
  {
    kv1::ListModulesResponse list;
    if (kernel->ListModules(context().get(), {}, &list).ok()) {
      for (const auto& module : list.modules()) modules.push_back(module.name());
    }
  }
  std::vector<Sample> samples;
  auto started = std::chrono::steady_clock::now();
  auto end = started + std::chrono::milliseconds(static_cast<int64_t>(minutes * 60'000));
  size_t reloads = 0;
  for (int tick = 0; std::chrono::steady_clock::now() < end; ++tick) {
    std::this_thread::sleep_until(started + tick * 10s);
    double minute =
        std::chrono::duration<double, std::ratio<60>>(std::chrono::steady_clock::now() - started)
            .count();
    samples.push_back(sample(pid, minute));
    if (tick > 0 && !modules.empty()) {
      kv1::ReloadModuleRequest request;
      request.set_name(modules[reloads++ % modules.size()]);
      kv1::ReloadModuleResponse response;
      auto status = kernel->ReloadModule(context(60s).get(), request, &response);
      ++calls;
      if (!status.ok()) fail("reload " + request.name() + ": " + status.error_message());
    }
    if (tick > 0 && tick % 6 == 0) daemon.process().signal(SIGHUP);
  }
  done = true;
  for (auto* thread : {&producer, &consumer, &shell, &scraper}) thread->join();

  std::cout << std::fixed << std::setprecision(1)
            << "\n  minute   RSS MiB  open files  threads  mappings\n";
  for (const auto& s : samples) {
    std::cout << std::setw(8) << s.minute << std::setw(10) << s.rss_mib << std::setw(12)
              << s.open_files << std::setw(9) << s.threads << std::setw(10) << s.mappings << "\n";
  }
  // The first 40% of the run warm caches and pools and fill the broker's log
  // up to its retention; the trend is judged on the rest.
  std::vector<Sample> steady;
  double warm_up = std::max(1.0, 0.4 * minutes);
  for (const auto& s : samples) {
    if (s.minute >= warm_up) steady.push_back(s);
  }
  bool flat = true;
  std::cout << "\n";
  for (const auto& series : kSeries) {
    double per_minute = slope(steady, series.value);
    bool ok = steady.size() < 3 || per_minute <= series.bound_per_minute;
    flat = flat && ok;
    std::cout << "  " << std::setw(10) << series.name << ": " << std::setprecision(3) << per_minute
              << " " << series.unit << "/min (bound " << series.bound_per_minute << ") "
              << (ok ? "flat" : "GROWS") << "\n";
  }
  auto plot = out_dir / "soak.svg";
  write_svg(samples, plot);
  std::cout << "  calls " << calls << ", failed " << failed << ", reloads " << reloads << ", plot "
            << plot.string() << "\n";
  for (const auto& error : errors) std::cout << "  error: " << error << "\n";
  if (steady.size() < 3) std::cout << "  (too short to judge a trend: run at least 3 minutes)\n";
  bool passed = flat && failed == 0;
  std::cout << (passed ? "soak passed\n" : "soak FAILED\n");
  return passed ? 0 : 1;
}
