#include "telekern/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "telekern/strings.h"

namespace telekern {
namespace {

void atomic_add(std::atomic<double>& target, double amount) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + amount, std::memory_order_relaxed)) {
  }
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);  // shortest text that reads back as the same double
}

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string label_block(const std::vector<std::string>& names, const LabelValues& values,
                        std::string_view extra_name = {}, std::string_view extra_value = {}) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    str_append(out, out.empty() ? "" : ",", names[i], "=\"", escape_label_value(values[i]), "\"");
  }
  if (!extra_name.empty()) {
    str_append(out, out.empty() ? "" : ",", extra_name, "=\"", extra_value, "\"");
  }
  return out.empty() ? "" : str_cat("{", out, "}");
}

class CollectorHandleImpl;

}  // namespace

struct MetricsRegistry::State {
  std::mutex mutex;
  // Held while collectors run, so removing one waits until it is no longer running.
  std::mutex collect_mutex;
  // Exposition keeps registration order so /metrics is stable between scrapes.
  std::vector<std::string> order;
  std::map<std::string, std::unique_ptr<CounterFamily>, std::less<>> counters;
  std::map<std::string, std::unique_ptr<GaugeFamily>, std::less<>> gauges;
  std::map<std::string, std::unique_ptr<HistogramFamily>, std::less<>> histograms;
  std::map<uint64_t, Collector> collectors;
  uint64_t next_collector_id = 1;
};

namespace {
class CollectorHandleImpl final : public CollectorHandle {
 public:
  CollectorHandleImpl(std::weak_ptr<MetricsRegistry::State> state, uint64_t id)
      : state_(std::move(state)), id_(id) {}
  ~CollectorHandleImpl() override {
    if (auto state = state_.lock()) {
      std::lock_guard collecting(state->collect_mutex);
      std::lock_guard lock(state->mutex);
      state->collectors.erase(id_);
    }
  }

 private:
  std::weak_ptr<MetricsRegistry::State> state_;
  uint64_t id_;
};
}  // namespace

void Counter::inc(double amount) {
  if (amount < 0) return;  // counters only go up
  atomic_add(value_, amount);
}

void Gauge::inc(double amount) { atomic_add(value_, amount); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::observe(double value) {
  size_t index = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, value);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> counts(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    counts[i] = running;
  }
  return counts;
}

std::vector<double> default_latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0};
}

MetricsRegistry::MetricsRegistry() : state_(std::make_shared<State>()) {}
MetricsRegistry::~MetricsRegistry() = default;

CounterFamily& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names) {
  std::lock_guard lock(state_->mutex);
  auto it = state_->counters.find(name);
  if (it != state_->counters.end()) return *it->second;
  state_->order.emplace_back(name);
  auto family =
      std::make_unique<CounterFamily>(std::string(name), std::string(help), std::move(label_names),
                                      [] { return std::make_unique<Counter>(); });
  return *state_->counters.emplace(std::string(name), std::move(family)).first->second;
}

GaugeFamily& MetricsRegistry::gauge(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names) {
  std::lock_guard lock(state_->mutex);
  auto it = state_->gauges.find(name);
  if (it != state_->gauges.end()) return *it->second;
  state_->order.emplace_back(name);
  auto family =
      std::make_unique<GaugeFamily>(std::string(name), std::string(help), std::move(label_names),
                                    [] { return std::make_unique<Gauge>(); });
  return *state_->gauges.emplace(std::string(name), std::move(family)).first->second;
}

HistogramFamily& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names,
                                            std::vector<double> bounds) {
  std::lock_guard lock(state_->mutex);
  auto it = state_->histograms.find(name);
  if (it != state_->histograms.end()) return *it->second;
  state_->order.emplace_back(name);
  auto family = std::make_unique<HistogramFamily>(
      std::string(name), std::string(help), std::move(label_names),
      [bounds] { return std::make_unique<Histogram>(bounds); });
  return *state_->histograms.emplace(std::string(name), std::move(family)).first->second;
}

std::unique_ptr<CollectorHandle> MetricsRegistry::add_collector(Collector collector) {
  std::lock_guard lock(state_->mutex);
  uint64_t id = state_->next_collector_id++;
  state_->collectors.emplace(id, std::move(collector));
  return std::make_unique<CollectorHandleImpl>(state_, id);
}

std::string MetricsRegistry::expose() const {
  std::string out;
  std::vector<Collector> collectors;
  std::lock_guard collecting(state_->collect_mutex);
  {
    std::lock_guard lock(state_->mutex);
    for (const auto& name : state_->order) {
      if (auto it = state_->counters.find(name); it != state_->counters.end()) {
        const auto& family = *it->second;
        str_append(out, "# HELP ", name, " ", escape_help(family.help()), "\n# TYPE ", name,
                   " counter\n");
        family.for_each([&](const LabelValues& values, const Counter& metric) {
          str_append(out, name, label_block(family.label_names(), values), " ",
                     format_value(metric.value()), "\n");
        });
      } else if (auto it = state_->gauges.find(name); it != state_->gauges.end()) {
        const auto& family = *it->second;
        str_append(out, "# HELP ", name, " ", escape_help(family.help()), "\n# TYPE ", name,
                   " gauge\n");
        family.for_each([&](const LabelValues& values, const Gauge& metric) {
          str_append(out, name, label_block(family.label_names(), values), " ",
                     format_value(metric.value()), "\n");
        });
      } else if (auto it = state_->histograms.find(name); it != state_->histograms.end()) {
        const auto& family = *it->second;
        str_append(out, "# HELP ", name, " ", escape_help(family.help()), "\n# TYPE ", name,
                   " histogram\n");
        family.for_each([&](const LabelValues& values, const Histogram& metric) {
          auto counts = metric.cumulative_counts();
          for (size_t i = 0; i < counts.size(); ++i) {
            std::string bound =
                i < metric.bounds().size() ? format_value(metric.bounds()[i]) : "+Inf";
            str_append(out, name, "_bucket", label_block(family.label_names(), values, "le", bound),
                       " ", counts[i], "\n");
          }
          str_append(out, name, "_sum", label_block(family.label_names(), values), " ",
                     format_value(metric.sum()), "\n");
          str_append(out, name, "_count", label_block(family.label_names(), values), " ",
                     metric.count(), "\n");
        });
      }
    }
    for (const auto& [id, collector] : state_->collectors) collectors.push_back(collector);
  }
  // Collectors run outside the lock: they may be slow (they read /proc).
  for (const auto& collector : collectors) {
    for (const auto& family : collector()) {
      str_append(out, "# HELP ", family.name, " ", escape_help(family.help), "\n# TYPE ",
                 family.name, " ", family.type, "\n");
      for (const auto& sample : family.samples) {
        std::string labels;
        for (const auto& [key, value] : sample.labels) {
          str_append(labels, labels.empty() ? "" : ",", key, "=\"", escape_label_value(value),
                     "\"");
        }
        str_append(out, sample.name.empty() ? family.name : sample.name,
                   labels.empty() ? "" : str_cat("{", labels, "}"), " ", format_value(sample.value),
                   "\n");
      }
    }
  }
  return out;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace telekern
