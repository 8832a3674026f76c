#include "trace_engine.h"

#include <absl/time/clock.h>
#include <absl/time/time.h>
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <random>
#include <regex>
#include <thread>

#include "matcher.h"
#include "outputs.h"
#include "scan_groups.h"
#include "telekern/proto_time.h"
#include "telekern/strings.h"
#include "views.h"

namespace telekern::tracer {
namespace {

using SystemClock = std::chrono::system_clock;

struct PartitionState {
  int32_t partition = -1;
  int64_t low = -1;
  int64_t start = -1;
  std::atomic<int64_t> stop{-1};
  std::atomic<int64_t> next{-1};
  std::atomic<uint64_t> scanned{0};
  std::atomic<uint64_t> matched{0};
  std::atomic<bool> reached{false};
  std::atomic<bool> done{false};
  std::mutex error_mutex;
  std::string error;

  void set_error(std::string text) {
    std::lock_guard lock(error_mutex);
    if (error.empty()) error = std::move(text);
  }
  std::string get_error() {
    std::lock_guard lock(error_mutex);
    return error;
  }
};

struct TopicState {
  std::string topic;
  std::string error;  // the topic could not be planned
  std::atomic<uint64_t> scanned{0};
  std::atomic<uint64_t> matched{0};
  std::atomic<bool> limited{false};
  std::atomic<int> units_left{0};  // scan units of this topic not finished yet
  std::mutex mutex;
  std::map<int32_t, std::unique_ptr<PartitionState>> partitions;

  PartitionState& partition(int32_t id) {
    std::lock_guard lock(mutex);
    auto& slot = partitions[id];
    if (!slot) {
      slot = std::make_unique<PartitionState>();
      slot->partition = id;
    }
    return *slot;
  }
};

// Everything one trace shares between its scanning threads and the thread
// that reports.
struct TraceRun {
  const DeviceMatcher* matcher = nullptr;
  ScanLimits limits;
  uint64_t max_events = 0;
  std::deque<TopicState> topics;
  std::mutex events_mutex;
  std::vector<v1::Event> events;
  std::atomic<bool> events_capped{false};
  std::mutex log_mutex;
  std::string log;

  void note(const std::string& line) {
    std::lock_guard lock(log_mutex);
    absl::Time now = absl::Now();
    log += absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ ", now, absl::UTCTimeZone()) + line + "\n";
  }
};

// A topic's progress bar: offsets scanned between the start and stop
// offsets of its partitions, or the records scanned while a stop offset is
// unknown (skip_offsets, command sources without the offsets template).
common::v1::ProgressBar topic_bar(TopicState& topic) {
  common::v1::ProgressBar bar;
  bar.set_label(topic.topic);
  uint64_t done = 0, total = 0, scanned = 0, matched = 0;
  bool known = true;
  std::string error;
  {
    std::lock_guard lock(topic.mutex);
    error = topic.error;
    known = !topic.partitions.empty();
    for (auto& [id, partition] : topic.partitions) {
      int64_t stop = partition->stop.load(), next = partition->next.load();
      scanned += partition->scanned.load();
      matched += partition->matched.load();
      if (error.empty()) error = partition->get_error();
      if (stop < 0 || partition->start < 0) {
        known = false;
        continue;
      }
      total += static_cast<uint64_t>(std::max<int64_t>(0, stop - partition->start));
      done += static_cast<uint64_t>(std::max<int64_t>(0, std::min(next, stop) - partition->start));
    }
  }
  bar.set_unit("records");
  bar.set_done(known ? done : scanned);
  bar.set_total(known ? total : 0);
  bar.set_finished(topic.units_left.load() == 0);
  bar.set_detail(error.empty() ? str_cat(matched, " matched")
                               : str_cat(matched, " matched, ", error));
  return bar;
}

class RunSink final : public UnitSink {
 public:
  RunSink(TraceRun& run, TopicState& topic) : run_(run), topic_(topic) {}

  bool record(const RecordView& record) override {
    PartitionState& partition = lookup(record.partition);
    if (record.timestamp_ms > 0 && record.timestamp_ms < run_.limits.since_ms) {
      // Older than max_age (a source that cannot seek by time, or out-of-order times).
      partition.next.store(record.offset + 1, std::memory_order_relaxed);
      return true;
    }
    if (run_.limits.max_messages > 0) {
      uint64_t count = topic_.scanned.fetch_add(1, std::memory_order_relaxed) + 1;
      if (count > run_.limits.max_messages) {
        topic_.scanned.fetch_sub(1, std::memory_order_relaxed);
        topic_.limited = true;
        return false;
      }
    } else {
      topic_.scanned.fetch_add(1, std::memory_order_relaxed);
    }
    partition.scanned.fetch_add(1, std::memory_order_relaxed);
    partition.next.store(record.offset + 1, std::memory_order_relaxed);
    if (!run_.matcher->matches(record)) return true;
    partition.matched.fetch_add(1, std::memory_order_relaxed);
    topic_.matched.fetch_add(1, std::memory_order_relaxed);
    v1::Event event;
    event.set_topic(std::string(record.topic));
    event.set_partition(static_cast<uint32_t>(record.partition));
    event.set_offset(record.offset);
    if (record.timestamp_ms > 0)
      *event.mutable_timestamp() =
          to_timestamp(SystemClock::time_point(std::chrono::milliseconds(record.timestamp_ms)));
    event.set_key(std::string(record.key));
    event.set_value(std::string(record.value));
    for (const auto& [key, value] : record.headers) {
      auto* header = event.add_headers();
      header->set_key(std::string(key));
      header->set_value(std::string(value));
    }
    event.set_event_type(event_type_of(record.value));
    std::lock_guard lock(run_.events_mutex);
    if (run_.events.size() >= run_.max_events) {
      run_.events_capped = true;
      return true;
    }
    run_.events.push_back(std::move(event));
    return true;
  }

  void reached_end(int32_t partition_id, int64_t stop) override {
    PartitionState& partition = lookup(partition_id);
    if (stop >= 0) {
      partition.stop = stop;
      if (partition.next < stop) partition.next = stop;
    }
    partition.reached = true;
  }

  void failed(int32_t partition_id, std::string error) override {
    lookup(partition_id).set_error(std::move(error));
  }

  void position(int32_t partition_id, int64_t next_offset) override {
    lookup(partition_id).next.store(next_offset, std::memory_order_relaxed);
  }

 private:
  PartitionState& lookup(int32_t id) {
    if (cached_ == nullptr || cached_->partition != id) cached_ = &topic_.partition(id);
    return *cached_;
  }

  TraceRun& run_;
  TopicState& topic_;
  PartitionState* cached_ = nullptr;
};

std::string make_trace_id() {
  static std::atomic<uint32_t> sequence{0};
  std::random_device random;
  absl::Time now = absl::Now();
  return str_cat(absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()), "-",
                 fmt::format("{:04x}{:02x}", random() & 0xffff, sequence++ & 0xff));
}

bool earlier(const v1::Event& a, const v1::Event& b) {
  auto key = [](const v1::Event& e) {
    return std::make_tuple(e.timestamp().seconds(), e.timestamp().nanos(), e.topic(), e.partition(),
                           e.offset());
  };
  return key(a) < key(b);
}

MatchScope scope_of(v1::MatchScope scope) {
  switch (scope) {
    case v1::MATCH_SCOPE_KEY:
      return MatchScope::kKey;
    case v1::MATCH_SCOPE_VALUE:
      return MatchScope::kValue;
    case v1::MATCH_SCOPE_HEADERS:
      return MatchScope::kHeaders;
    default:
      return MatchScope::kAny;
  }
}

google::protobuf::Duration duration_of(std::chrono::milliseconds value) {
  google::protobuf::Duration duration;
  duration.set_seconds(value.count() / 1000);
  duration.set_nanos(static_cast<int32_t>(value.count() % 1000) * 1000000);
  return duration;
}

bool before(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return std::make_pair(a.seconds(), a.nanos()) < std::make_pair(b.seconds(), b.nanos());
}

}  // namespace

TraceEngine::TraceEngine(TracerOptions options, std::filesystem::path data_dir,
                         SourceFactory sources, std::shared_ptr<spdlog::logger> logger,
                         MetricsRegistry* metrics)
    : options_(std::move(options)),
      data_dir_(std::move(data_dir)),
      sources_(std::move(sources)),
      logger_(std::move(logger)),
      store_(data_dir_ / "traces", options_.max_stored_traces),
      work_(2, 256) {
  if (metrics != nullptr) {
    traces_total_ = &metrics->counter("telekern_tracer_traces_total", "Traces run").with();
    scanned_total_ =
        &metrics->counter("telekern_tracer_scanned_records_total", "Records scanned by traces")
             .with();
    matched_total_ =
        &metrics->counter("telekern_tracer_matched_records_total", "Records that matched a device")
             .with();
    incomplete_total_ = &metrics
                             ->counter("telekern_tracer_incomplete_traces_total",
                                       "Traces that could not read every partition to its end")
                             .with();
  }
}

TraceEngine::~TraceEngine() { shutdown(); }

absl::Status TraceEngine::submit(std::function<void()> work) {
  if (!work_.try_submit(std::move(work)))
    return absl::ResourceExhaustedError("tracer work queue is full; retry");
  return absl::OkStatus();
}

void TraceEngine::shutdown() { work_.stop(); }

std::filesystem::path TraceEngine::output_dir_for(const std::string& requested,
                                                  const std::string& trace_id) {
  if (!requested.empty()) {
    std::filesystem::path path(requested);
    return path.is_absolute() ? path : data_dir_ / path;
  }
  std::filesystem::path base(options_.output_dir);
  if (!base.is_absolute()) base = data_dir_ / base;
  return base / trace_id;
}

absl::StatusOr<v1::Summary> TraceEngine::trace(const v1::TraceDeviceRequest& request,
                                               TraceObserver& observer, std::stop_token stop) {
  if (request.device_id().empty())
    return absl::InvalidArgumentError("device_id is empty; e.g. trace device b40754c2bc03");
  if (running_.load() >= static_cast<int>(options_.max_concurrent_traces))
    return absl::ResourceExhaustedError(
        str_cat(running_.load(), " traces are running (max_concurrent_traces=",
                options_.max_concurrent_traces, "); retry when one ends"));
  running_++;
  struct Running {
    std::atomic<int>& count;
    ~Running() { count--; }
  } running_guard{running_};

  std::optional<std::regex> filter_regex;
  if (request.topic_filter_regex() && !request.topic_filter().empty()) {
    try {
      filter_regex.emplace(request.topic_filter());
    } catch (const std::regex_error& error) {
      return absl::InvalidArgumentError(
          str_cat("topic_filter '", request.topic_filter(), "' is not a regex: ", error.what()));
    }
  }

  auto started = SystemClock::now();
  TraceRun run;
  run.max_events = options_.max_events;
  auto max_age = request.has_max_age() ? to_milliseconds(request.max_age()) : options_.max_age;
  if (max_age.count() > 0) {
    run.limits.since_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(started.time_since_epoch() - max_age)
            .count();
  }
  run.limits.inactivity =
      request.has_timeout() ? to_milliseconds(request.timeout()) : options_.timeout;
  if (run.limits.inactivity.count() <= 0) run.limits.inactivity = options_.timeout;
  run.limits.skip_offsets = request.skip_offsets();
  run.limits.read_committed = request.read_committed();
  run.limits.max_messages = request.max_messages();
  uint32_t parallel = request.max_parallel() > 0 ? request.max_parallel() : options_.max_parallel;

  DeviceMatcher matcher(request.device_id(), scope_of(request.match_scope()), request.field());
  run.matcher = &matcher;

  v1::Summary summary;
  summary.set_trace_id(make_trace_id());
  summary.set_device_id(request.device_id());
  summary.set_source(request.source());
  *summary.mutable_started() = to_timestamp(started);
  if (run.limits.since_ms > 0)
    *summary.mutable_since() =
        to_timestamp(SystemClock::time_point(std::chrono::milliseconds(run.limits.since_ms)));
  run.note(str_cat("trace ", summary.trace_id(), " of device ", request.device_id()));

  auto source = sources_(request, run.limits);
  if (!source.ok()) return source.status();
  summary.set_source(request.source() == v1::SOURCE_UNSPECIFIED
                         ? v1::Source((*source)->name() == "kafka"    ? v1::SOURCE_KAFKA
                                      : (*source)->name() == "broker" ? v1::SOURCE_BROKER
                                      : (*source)->name() == "ssh"    ? v1::SOURCE_SSH
                                                                      : v1::SOURCE_EXEC)
                         : request.source());

  // Topics: explicit, else discovered and filtered.
  std::vector<std::string> topics(request.topics().begin(), request.topics().end());
  if (topics.empty()) {
    auto listed = (*source)->list_topics();
    if (!listed.ok()) return listed.status();
    topics = std::move(*listed);
  }
  if (!request.topic_filter().empty()) {
    std::erase_if(topics, [&](const std::string& topic) {
      return filter_regex ? !std::regex_search(topic, *filter_regex)
                          : topic.find(request.topic_filter()) == std::string::npos;
    });
  }
  run.note(str_cat("source ", (*source)->name(), ", ", topics.size(), " topics, max_parallel ",
                   parallel));

  // Plan every topic; a topic that cannot be planned is listed with its error.
  std::vector<TopicState*> planned_states;
  std::vector<ScanUnit> plans;
  auto planned = (*source)->plan_topics(topics, run.limits);
  for (size_t i = 0; i < topics.size(); ++i) {
    TopicState& state = run.topics.emplace_back();
    state.topic = topics[i];
    auto& plan = planned[i];
    if (!plan.ok()) {
      state.error = std::string(plan.status().message());
      run.note(str_cat("topic ", topics[i], ": ", state.error));
      continue;
    }
    for (const auto& partition : plan->partitions) {
      PartitionState& p = state.partition(partition.partition);
      p.low = partition.low;
      p.start = partition.start;
      p.stop = partition.stop;
      p.next = partition.start;
    }
    planned_states.push_back(&state);
    plans.push_back(std::move(*plan));
  }
  // A source that reads any set of partitions with one consumer (kafka) gets
  // up to max_parallel groups of partitions of several topics, balanced by
  // records to scan; the others get a group per topic.
  std::vector<ScanGroup> groups;
  if ((*source)->per_partition()) {
    groups = group_partitions(plans, parallel);
  } else {
    for (size_t i = 0; i < plans.size(); ++i) groups.push_back({{i}, {std::move(plans[i])}});
  }
  for (const auto& group : groups) {
    for (size_t plan : group.plan_index) planned_states[plan]->units_left++;
  }
  run.note(str_cat("planned ", plans.size(), " topics into ", groups.size(), " scan groups"));

  // Scan up to `parallel` groups at once.
  std::atomic<size_t> next_group{0};
  std::atomic<size_t> groups_done{0};
  std::stop_source cancel;
  std::stop_callback forward(stop, [&cancel] { cancel.request_stop(); });
  std::mutex wake_mutex;
  std::condition_variable wake;
  auto worker = [&] {
    for (;;) {
      size_t index = next_group++;
      if (index >= groups.size() || cancel.stop_requested()) break;
      const ScanGroup& group = groups[index];
      std::vector<std::unique_ptr<RunSink>> sinks;
      std::vector<UnitSink*> sink_pointers;
      for (size_t plan : group.plan_index) {
        sinks.push_back(std::make_unique<RunSink>(run, *planned_states[plan]));
        sink_pointers.push_back(sinks.back().get());
      }
      auto status =
          group.units.size() == 1
              ? (*source)->scan(group.units[0], run.limits, *sink_pointers[0], cancel.get_token())
              : (*source)->scan_together(group.units, run.limits, sink_pointers,
                                         cancel.get_token());
      for (size_t u = 0; u < group.units.size(); ++u) {
        TopicState* topic = planned_states[group.plan_index[u]];
        const ScanUnit& unit = group.units[u];
        if (!status.ok()) {
          for (const auto& partition : unit.partitions)
            topic->partition(partition.partition).set_error(std::string(status.message()));
          if (unit.partitions.empty()) {
            std::lock_guard lock(topic->mutex);
            topic->error = std::string(status.message());
          }
          run.note(str_cat("topic ", unit.topic, ": ", status.message()));
        }
        {
          std::lock_guard lock(topic->mutex);
          for (auto& [id, partition] : topic->partitions) {
            bool in_unit = unit.partitions.empty() ||
                           std::any_of(unit.partitions.begin(), unit.partitions.end(),
                                       [id = id](const auto& p) { return p.partition == id; });
            if (in_unit) partition->done = true;
          }
        }
        topic->units_left--;
      }
      groups_done++;
      wake.notify_all();
    }
  };
  std::vector<std::jthread> workers;
  for (uint32_t i = 0; i < std::min<size_t>(parallel, std::max<size_t>(groups.size(), 1)); ++i)
    workers.emplace_back(worker);

  // Report while they run: changed partitions and new events.
  std::map<std::pair<std::string, int32_t>, std::pair<uint64_t, bool>> reported;
  size_t events_sent = 0;
  bool receiver_gone = false;
  auto report = [&](bool final_report) {
    v1::Progress progress;
    uint64_t scanned = 0, matched = 0;
    for (auto& topic : run.topics) {
      std::lock_guard lock(topic.mutex);
      for (auto& [id, partition] : topic.partitions) {
        uint64_t count = partition->scanned.load();
        bool done = partition->done.load();
        scanned += count;
        matched += partition->matched.load();
        auto& last = reported[{topic.topic, id}];
        if (last.first == count && last.second == done && !final_report) continue;
        last = {count, done};
        auto* entry = progress.add_partitions();
        entry->set_topic(topic.topic);
        entry->set_partition(static_cast<uint32_t>(id));
        entry->set_offset(partition->next.load());
        entry->set_high_watermark(partition->stop.load());
        entry->set_scanned(count);
        entry->set_matched(partition->matched.load());
        entry->set_done(done);
      }
    }
    for (auto& topic : run.topics) *progress.add_topics() = topic_bar(topic);
    progress.set_units_done(static_cast<uint32_t>(groups_done.load()));
    progress.set_units_total(static_cast<uint32_t>(groups.size()));
    progress.set_scanned(scanned);
    progress.set_matched(matched);
    if (!request.no_events()) {
      std::vector<v1::Event> fresh;
      {
        std::lock_guard lock(run.events_mutex);
        fresh.assign(run.events.begin() + static_cast<std::ptrdiff_t>(events_sent),
                     run.events.end());
        events_sent = run.events.size();
      }
      for (const auto& event : fresh) {
        if (!observer.event(event)) return false;
      }
    }
    return observer.progress(progress);
  };
  while (groups_done.load() < groups.size()) {
    std::unique_lock lock(wake_mutex);
    wake.wait_for(lock, options_.progress_interval,
                  [&] { return groups_done.load() >= groups.size(); });
    lock.unlock();
    if (!receiver_gone && !report(false)) {
      receiver_gone = true;
      cancel.request_stop();
    }
  }
  workers.clear();  // joins
  if (!receiver_gone) report(true);

  // Summary: coverage per partition, counts per topic.
  std::vector<v1::Event> events;
  {
    std::lock_guard lock(run.events_mutex);
    events = std::move(run.events);
  }
  std::stable_sort(events.begin(), events.end(), earlier);
  bool complete = true;
  uint64_t total_scanned = 0;
  for (auto& topic : run.topics) {
    auto* topic_summary = summary.add_topics();
    topic_summary->set_topic(topic.topic);
    topic_summary->set_error(topic.error);
    if (!topic.error.empty()) {
      complete = false;
      summary.add_incomplete_reasons(str_cat(topic.topic, ": ", topic.error));
    }
    for (auto& [id, partition] : topic.partitions) {
      auto* coverage = summary.add_partitions();
      coverage->set_topic(topic.topic);
      coverage->set_partition(static_cast<uint32_t>(id));
      coverage->set_low_watermark(partition->low);
      coverage->set_start_offset(partition->start);
      coverage->set_end_offset(partition->next.load());
      coverage->set_stop_offset(partition->stop.load());
      coverage->set_scanned(partition->scanned.load());
      coverage->set_matched(partition->matched.load());
      std::string error = partition->get_error();
      bool reached = partition->reached.load() && error.empty();
      if (!reached && error.empty()) {
        error = topic.limited ? str_cat("stopped by max_messages=", run.limits.max_messages)
                : cancel.stop_requested() ? std::string("trace cancelled")
                                          : std::string("stopped before its end");
      }
      if (partition->reached.load() && !error.empty() && run.limits.skip_offsets) {
        // skip_offsets: the end is where the inactivity timeout hit; not provable.
        error = "skip_offsets: ended on the inactivity timeout, end not verified";
      }
      coverage->set_reached_end(reached);
      coverage->set_error(error);
      if (!reached) {
        complete = false;
        summary.add_incomplete_reasons(str_cat(topic.topic, "[", id, "]: ", error));
      }
    }
    topic_summary->set_scanned(topic.scanned.load());
    topic_summary->set_matched(topic.matched.load());
    total_scanned += topic.scanned.load();
  }
  if (run.events_capped) {
    complete = false;
    summary.add_incomplete_reasons(
        str_cat("more than max_events=", options_.max_events, " matches; only the first kept"));
  }
  for (const auto& event : events) {
    for (auto& topic : *summary.mutable_topics()) {
      if (topic.topic() != event.topic() || !event.has_timestamp()) continue;
      if (!topic.has_first_seen() || before(event.timestamp(), topic.first_seen()))
        *topic.mutable_first_seen() = event.timestamp();
      if (!topic.has_last_seen() || before(topic.last_seen(), event.timestamp()))
        *topic.mutable_last_seen() = event.timestamp();
    }
  }
  if (!events.empty()) {
    *summary.mutable_first_seen() = events.front().timestamp();
    *summary.mutable_last_seen() = events.back().timestamp();
  }
  summary.set_scanned(total_scanned);
  summary.set_matched(events.size());
  summary.set_complete(complete);
  auto elapsed = SystemClock::now() - started;
  *summary.mutable_elapsed() =
      duration_of(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed));
  run.note(str_cat("scanned ", total_scanned, ", matched ", events.size(), ", ",
                   complete ? "complete" : "INCOMPLETE", " in ",
                   std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), " ms"));
  for (const auto& reason : summary.incomplete_reasons()) run.note("incomplete: " + reason);

  auto dir = output_dir_for(request.output_dir(), summary.trace_id());
  summary.set_output_dir(dir.string());
  OutputOptions output_options;
  output_options.no_graphs = request.no_graphs();
  output_options.time_mapping = request.time_mapping() == v1::TIME_MAPPING_LINEAR
                                    ? v1::TIME_MAPPING_LINEAR
                                    : v1::TIME_MAPPING_NONLINEAR;
  {
    std::lock_guard lock(run.log_mutex);
    output_options.log = run.log;
  }
  auto files = write_outputs(summary, events, dir, output_options);
  if (files.ok()) {
    for (const auto& file : *files) summary.add_files(file);
  } else {
    summary.add_incomplete_reasons(str_cat("outputs: ", files.status().message()));
    logger_->warn("trace {}: outputs not written: {}", summary.trace_id(),
                  std::string(files.status().message()));
  }
  if (auto status = store_.save(summary, events); !status.ok())
    logger_->warn("trace {}: not stored: {}", summary.trace_id(), std::string(status.message()));

  if (traces_total_) traces_total_->inc();
  if (scanned_total_) scanned_total_->inc(static_cast<double>(total_scanned));
  if (matched_total_) matched_total_->inc(static_cast<double>(events.size()));
  if (!complete && incomplete_total_) incomplete_total_->inc();
  logger_->info("trace {} of device {}: {} scanned, {} matched, {}", summary.trace_id(),
                request.device_id(), total_scanned, events.size(),
                complete ? "complete" : "incomplete");
  if (receiver_gone) return absl::CancelledError("the client went away; the trace was stored");
  return summary;
}

absl::StatusOr<v1::ListTracesResponse> TraceEngine::list_traces(
    const v1::ListTracesRequest& request) {
  auto summaries = store_.list();
  if (!summaries.ok()) return summaries.status();
  v1::ListTracesResponse response;
  for (const auto& summary : *summaries) {
    if (!request.device_id().empty() && summary.device_id() != request.device_id()) continue;
    auto* info = response.add_traces();
    info->set_trace_id(summary.trace_id());
    info->set_device_id(summary.device_id());
    *info->mutable_started() = summary.started();
    info->set_matched(summary.matched());
    info->set_complete(summary.complete());
    info->set_topics(static_cast<uint32_t>(summary.topics_size()));
  }
  return response;
}

absl::StatusOr<v1::GetTraceResponse> TraceEngine::get_trace(const v1::GetTraceRequest& request) {
  auto summary = store_.summary(request.trace_id());
  if (!summary.ok()) return summary.status();
  v1::GetTraceResponse response;
  *response.mutable_summary() = std::move(*summary);
  if (!request.no_events()) {
    auto events = store_.events(request.trace_id());
    if (!events.ok()) return events.status();
    for (auto& event : *events) *response.add_events() = std::move(event);
  }
  return response;
}

absl::StatusOr<v1::RenderReportResponse> TraceEngine::render_report(
    const v1::RenderReportRequest& request) {
  auto summary = store_.summary(request.trace_id());
  if (!summary.ok()) return summary.status();
  auto events = store_.events(request.trace_id());
  if (!events.ok()) return events.status();
  std::filesystem::path dir = request.output_dir().empty()
                                  ? std::filesystem::path(summary->output_dir())
                                  : output_dir_for(request.output_dir(), request.trace_id());
  OutputOptions options;
  options.view = request.view() == v1::VIEW_UNSPECIFIED ? v1::VIEW_ALL : request.view();
  options.time_mapping = request.time_mapping() == v1::TIME_MAPPING_LINEAR
                             ? v1::TIME_MAPPING_LINEAR
                             : v1::TIME_MAPPING_NONLINEAR;
  auto files = write_outputs(*summary, *events, dir, options);
  if (!files.ok()) return files.status();
  v1::RenderReportResponse response;
  for (const auto& file : *files) response.add_files(file);
  return response;
}

absl::StatusOr<v1::GetReportResponse> TraceEngine::get_report(const v1::GetReportRequest& request) {
  auto summary = store_.summary(request.trace_id());
  if (!summary.ok()) return summary.status();
  auto events = store_.events(request.trace_id());
  if (!events.ok()) return events.status();
  std::vector<int64_t> times;
  times.reserve(events->size());
  for (const auto& event : *events) times.push_back(millis_of(event));
  TimeAxis axis(times, request.time_mapping() != v1::TIME_MAPPING_LINEAR);
  v1::GetReportResponse response;
  response.set_html(report_html(*summary, *events, axis));
  return response;
}

}  // namespace telekern::tracer
