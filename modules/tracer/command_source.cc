#include "command_source.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "ssh_runner.h"
#include "telekern/strings.h"

namespace telekern::tracer {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t at; (at = text.find(separator, start)) != std::string_view::npos; start = at + 1)
    out.push_back(text.substr(start, at - start));
  out.push_back(text.substr(start));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

template <typename Number>
bool parse_number(std::string_view text, Number* out) {
  text = trim(text);
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

CommandSource::CommandSource(std::string name, std::unique_ptr<CommandRunner> runner,
                             Templates templates, std::map<std::string, std::string> values)
    : name_(std::move(name)),
      runner_(std::move(runner)),
      templates_(std::move(templates)),
      values_(std::move(values)) {}

std::string CommandSource::expand(const std::string& text,
                                  const std::map<std::string, std::string>& extra) const {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '{') {
      size_t close = text.find('}', i);
      if (close != std::string::npos) {
        std::string name = text.substr(i + 1, close - i - 1);
        const std::string* value = nullptr;
        if (auto found = extra.find(name); found != extra.end()) {
          value = &found->second;
        } else if (auto known = values_.find(name); known != values_.end()) {
          value = &known->second;
        }
        if (value != nullptr) {
          out += *value;
          i = close + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> CommandSource::list_topics() {
  auto output = runner_->run(expand(templates_.list_topics, {}));
  if (!output.ok()) return output.status();
  std::vector<std::string> topics;
  for (auto line : split(std::string_view(*output), '\n')) {
    std::string topic(trim(line));
    if (topic.empty() || topic.rfind("__", 0) == 0) continue;
    topics.push_back(std::move(topic));
  }
  std::sort(topics.begin(), topics.end());
  return topics;
}

absl::StatusOr<ScanUnit> CommandSource::plan(const std::string& topic, const ScanLimits& limits) {
  ScanUnit unit{topic, {}};
  if (limits.skip_offsets || templates_.offsets.empty()) return unit;  // ends on inactivity
  auto output = runner_->run(expand(templates_.offsets, {{"topic", topic}}));
  if (!output.ok()) return output.status();
  for (auto line : split(std::string_view(*output), '\n')) {
    std::vector<std::string_view> parts = split(trim(line), ':');
    if (parts.size() < 3) continue;
    PartitionPlan plan;
    int64_t high = 0;
    if (!parse_number(parts[parts.size() - 2], &plan.partition) ||
        !parse_number(parts.back(), &high))
      continue;
    plan.stop = high;
    unit.partitions.push_back(plan);
  }
  if (unit.partitions.empty())
    return absl::UnavailableError(str_cat("offsets of topic '", topic, "' on ", runner_->where(),
                                          ": no topic:partition:offset line in the output"));
  return unit;
}

bool parse_record_line(std::string_view line, RecordView& record) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return false;
  std::vector<std::string_view> fields = split(line, '\t');
  size_t i = 0;
  bool have_partition = false, have_offset = false;
  for (; i < fields.size(); ++i) {
    std::string_view field = fields[i];
    auto value_after = [&](std::string_view prefix) -> std::optional<std::string_view> {
      if (field.substr(0, prefix.size()) == prefix) return field.substr(prefix.size());
      return std::nullopt;
    };
    if (auto v = value_after("CreateTime:"); v) {
      parse_number(*v, &record.timestamp_ms);
    } else if (auto v2 = value_after("LogAppendTime:"); v2) {
      parse_number(*v2, &record.timestamp_ms);
    } else if (field == "NO_TIMESTAMP") {
    } else if (auto v3 = value_after("Partition:"); v3) {
      have_partition = parse_number(*v3, &record.partition);
    } else if (auto v4 = value_after("Offset:"); v4) {
      have_offset = parse_number(*v4, &record.offset);
    } else {
      break;
    }
  }
  if (!have_partition) record.partition = 0;
  if (!have_offset) record.offset = -1;
  size_t rest = fields.size() - i;
  if (rest == 0) {
    record.value = {};
  } else if (rest == 1) {
    record.value = fields[i];
  } else {
    record.key = fields[i] == "null" ? std::string_view() : fields[i];
    // The value is everything after the key (it may hold tabs itself).
    const char* begin = fields[i + 1].data();
    record.value = std::string_view(begin, static_cast<size_t>(line.data() + line.size() - begin));
  }
  return true;
}

absl::Status CommandSource::scan(const ScanUnit& unit, const ScanLimits& limits, UnitSink& sink,
                                 std::stop_token stop) {
  std::map<int32_t, int64_t> remaining;
  for (const auto& plan : unit.partitions) {
    if (plan.stop <= 0) {
      sink.reached_end(plan.partition, plan.stop);
    } else {
      remaining[plan.partition] = plan.stop;
    }
  }
  bool planned = !unit.partitions.empty();
  if (planned && remaining.empty()) return absl::OkStatus();
  std::map<int32_t, int64_t> counters;  // offsets when the command prints none
  std::map<std::string, std::string> extra = {
      {"topic", unit.topic},
      {"timeout_ms", std::to_string(limits.inactivity.count())},
      {"since_ms", std::to_string(limits.since_ms)},
      {"max_messages_flag",
       limits.max_messages > 0 ? str_cat("--max-messages ", limits.max_messages) : ""}};
  bool refused = false;
  auto status = runner_->stream(
      expand(templates_.consume, extra),
      [&](std::string_view line) {
        RecordView record;
        if (!parse_record_line(line, record)) return true;
        record.topic = unit.topic;
        if (record.offset < 0) record.offset = counters[record.partition]++;
        if (limits.since_ms > 0 && record.timestamp_ms > 0 &&
            record.timestamp_ms < limits.since_ms) {
          sink.position(record.partition, record.offset + 1);
        } else if (!sink.record(record)) {
          refused = true;
          return false;
        }
        auto it = remaining.find(record.partition);
        if (it != remaining.end() && record.offset + 1 >= it->second) {
          sink.reached_end(record.partition, it->second);
          remaining.erase(it);
          if (remaining.empty()) return false;  // smart stop: every partition at its watermark
        }
        return true;
      },
      limits.inactivity, stop);
  if (refused || stop.stop_requested()) return absl::OkStatus();
  if (planned) {
    for (const auto& [partition, stop_offset] : remaining) {
      sink.failed(partition, status.ok()
                                 ? str_cat("the consume command ended before offset ", stop_offset)
                                 : str_cat(status.message(), " before offset ", stop_offset));
    }
    return absl::OkStatus();
  }
  // Without offsets the end is where the output stopped: not verified.
  for (const auto& [partition, next] : counters) {
    sink.reached_end(partition, -1);
    sink.failed(partition,
                "no watermarks (skip_offsets or no offsets template): ended when the "
                "output stopped, end not verified");
  }
  if (!status.ok() && !absl::IsDeadlineExceeded(status)) return status;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TraceSource>> make_command_source(
    SourceKind kind, const v1::TraceDeviceRequest& request, const TracerOptions& options,
    const std::filesystem::path& data_dir, const ScanLimits& limits) {
  (void)limits;
  CommandSource::Templates templates{options.templates_list_topics, options.templates_consume,
                                     options.templates_offsets};
  if (!request.templates().list_topics().empty())
    templates.list_topics = request.templates().list_topics();
  if (!request.templates().consume().empty()) templates.consume = request.templates().consume();
  if (!request.templates().offsets().empty()) templates.offsets = request.templates().offsets();
  std::string container =
      request.container().empty() ? options.kafka_container : request.container();
  std::map<std::string, std::string> values = {
      {"namespace", request.namespace_().empty() ? options.kube_namespace : request.namespace_()},
      {"pod", request.pod().empty() ? options.kafka_pod : request.pod()},
      {"container_flag", container.empty() ? "" : "-c " + container},
      {"broker",
       request.kafka_brokers().empty() ? options.kafka_broker_in_cluster : request.kafka_brokers()},
  };
  std::unique_ptr<CommandRunner> runner;
  std::string name = "exec";
  if (kind == SourceKind::kSsh) {
    auto ssh =
        make_ssh_runner(request.ssh(), options, data_dir,
                        request.max_parallel() > 0 ? request.max_parallel() : options.max_parallel);
    if (!ssh.ok()) return ssh.status();
    runner = std::move(*ssh);
    name = "ssh";
  } else {
    runner = make_local_runner();
  }
  return std::unique_ptr<TraceSource>(std::make_unique<CommandSource>(
      name, std::move(runner), std::move(templates), std::move(values)));
}

}  // namespace telekern::tracer
