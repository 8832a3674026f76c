// The ssh and exec sources: KomniTrace's way in, for a Kafka reachable only
// from inside a cluster. Command templates (kubectl exec ... kafka-topics.sh,
// kafka-console-consumer.sh, GetOffsetShell by default) run locally (exec) or
// on a bastion over one SSH session with a channel per command (ssh), so
// parallel topics work with password authentication too.
//
// Placeholders: {namespace} {pod} {container_flag} {broker} {topic}
// {timeout_ms} {max_messages_flag} {since_ms}. A consume command prints one
// record per line as tab-separated fields; fields "CreateTime:<ms>",
// "Partition:<n>" and "Offset:<n>" (kafka-console-consumer.sh with
// print.timestamp/partition/offset, or kcat -f) are recognised, then key and
// value. An offsets command prints topic:partition:high_watermark lines.
#pragma once

#include <absl/status/statusor.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "source.h"
#include "telekern/tracer/v1/tracer.pb.h"
#include "tracer_options.h"

namespace telekern::tracer {

inline constexpr std::string_view kDefaultListTopics =
    "kubectl exec -n {namespace} {pod} {container_flag} -- kafka-topics.sh --bootstrap-server "
    "{broker} --list";
inline constexpr std::string_view kDefaultConsume =
    "kubectl exec -n {namespace} {pod} {container_flag} -- kafka-console-consumer.sh "
    "--bootstrap-server {broker} --topic {topic} --from-beginning --timeout-ms {timeout_ms} "
    "{max_messages_flag} --property print.timestamp=true --property print.partition=true "
    "--property print.offset=true --property print.key=true";
inline constexpr std::string_view kDefaultOffsets =
    "kubectl exec -n {namespace} {pod} {container_flag} -- kafka-run-class.sh "
    "kafka.tools.GetOffsetShell --bootstrap-server {broker} --topic {topic} --time -1";

// Runs command lines somewhere (this host, or over SSH).
class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  virtual std::string where() const = 0;
  // Runs to completion; the whole stdout, or an error naming the exit code and stderr.
  virtual absl::StatusOr<std::string> run(const std::string& command) = 0;
  // Runs and hands each stdout line to `line` until it returns false, the
  // command ends, `stop` is requested or no output came for `inactivity`
  // (then DEADLINE_EXCEEDED). The command is ended when this returns.
  virtual absl::Status stream(const std::string& command,
                              const std::function<bool(std::string_view)>& line,
                              std::chrono::milliseconds inactivity, std::stop_token stop) = 0;
};

std::unique_ptr<CommandRunner> make_local_runner();

class CommandSource final : public TraceSource {
 public:
  struct Templates {
    std::string list_topics;
    std::string consume;
    std::string offsets;
  };
  CommandSource(std::string name, std::unique_ptr<CommandRunner> runner, Templates templates,
                std::map<std::string, std::string> values);

  std::string name() const override { return name_; }
  absl::StatusOr<std::vector<std::string>> list_topics() override;
  absl::StatusOr<ScanUnit> plan(const std::string& topic, const ScanLimits& limits) override;
  absl::Status scan(const ScanUnit& unit, const ScanLimits& limits, UnitSink& sink,
                    std::stop_token stop) override;

  // The command line of a template with its placeholders filled.
  std::string expand(const std::string& text,
                     const std::map<std::string, std::string>& extra) const;

 private:
  std::string name_;
  std::unique_ptr<CommandRunner> runner_;
  Templates templates_;
  std::map<std::string, std::string> values_;
};

// Parses one consume line into `record` (views into `line`); false when it is not a record.
bool parse_record_line(std::string_view line, RecordView& record);

// The ssh or exec source for a request.
absl::StatusOr<std::unique_ptr<TraceSource>> make_command_source(
    SourceKind kind, const v1::TraceDeviceRequest& request, const TracerOptions& options,
    const std::filesystem::path& data_dir, const ScanLimits& limits);

}  // namespace telekern::tracer
