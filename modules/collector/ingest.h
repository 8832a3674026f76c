// The streamer: DCGM CSV (a file or inline text) parsed row by row, validated
// and published to the telemetry topic keyed by GPU. Publishing is retried
// (exponential backoff, jitter); rows that do not parse or still fail to
// publish are counted, logged with source and line, and written to the
// reject file, and the run goes on. Replay re-stamps rows to now and paces
// them at a rate.
#pragma once

#include <absl/status/statusor.h>
#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "reject_log.h"
#include "telekern/metrics.h"
#include "telekern/stream.h"
#include "telemetry_point.h"

namespace telekern::collector {

// Replay timestamps. A row is stamped with the time it goes out (whole
// milliseconds), but the rows of one scrape (a run of rows with the same
// original timestamp) never share a millisecond with an earlier scrape's, so
// no series gets two rows at one time and no store precision down to ms
// merges them. An unpaced replay therefore runs ahead of the clock by at most
// 1 ms per scrape (90 ms for the 25,920-row sample), not 1 ms per row (26 s,
// which hid most of a fresh replay from "the last hour" until the clock
// caught up).
class ReplayStamps {
 public:
  // A new pass of a loop starts a new scrape even at the same original time.
  void new_pass() { fresh_ = true; }
  // The stamp of a row whose CSV timestamp is `original`, sent at `now`.
  TimePoint stamp(TimePoint original, TimePoint now);

 private:
  bool fresh_ = true;
  TimePoint original_{};
  TimePoint floor_{};   // the current scrape's rows are stamped at or after this
  TimePoint latest_{};  // the latest stamp given
};

struct IngestSettings {
  std::string topic = "telemetry";
  uint32_t publish_attempts = 3;
  std::chrono::milliseconds publish_backoff{100};
  size_t chunk_rows = 2000;  // rows sent between flushes (one retry unit)
  std::chrono::milliseconds flush_timeout{30000};
};

struct IngestRun {
  std::string source;  // file path or a name for inline text
  std::string text;    // inline CSV (used when not empty or when path is empty)
  bool from_file = true;
  bool replay = false;
  double rate = 0;  // rows per second when replaying (0 = as fast as possible)
  bool loop = false;
};

// The lines of one CSV input, in order, without their '\n'.
class LineReader {
 public:
  virtual ~LineReader() = default;
  // False at the end of the input.
  virtual bool next(std::string& line) = 0;
};

// Lines of a text that arrives in chunks cut anywhere (a client stream):
// a line split across chunks is joined. A line longer than `max_line_bytes`
// is cut there (and rejected as malformed), so no input grows memory
// without bound.
class ChunkedLines final : public LineReader {
 public:
  using NextChunk = std::function<bool(std::string& chunk)>;
  explicit ChunkedLines(NextChunk next_chunk, size_t max_line_bytes = 1 << 20)
      : next_chunk_(std::move(next_chunk)), max_line_bytes_(max_line_bytes) {}
  bool next(std::string& line) override;
  uint64_t bytes() const { return bytes_; }

 private:
  NextChunk next_chunk_;
  size_t max_line_bytes_;
  std::string buffer_;
  size_t position_ = 0;
  bool ended_ = false;
  bool skipping_ = false;  // dropping the rest of an over-long line
  uint64_t bytes_ = 0;
};

struct IngestResult {
  uint64_t published = 0;
  uint64_t rejected = 0;
  std::vector<std::string> rejects;  // the first few, "source:line: reason"
};

struct IngestMetrics {
  Counter* rows_ingested = nullptr;
  CounterFamily* rows_rejected = nullptr;  // {reason}
};

class CsvIngester {
 public:
  using ProducerFactory = std::function<absl::StatusOr<std::unique_ptr<stream::Producer>>()>;

  CsvIngester(IngestSettings settings, ProducerFactory producers, RejectLog& rejects,
              IngestMetrics metrics, std::shared_ptr<spdlog::logger> log);

  // Runs to the end of the input (every pass when looping, until `stop`).
  // Errors are for the run as a whole (unreadable file, bad header, no producer).
  absl::StatusOr<IngestResult> run(const IngestRun& run, std::stop_token stop);
  // One pass over `lines` (a client stream: no loop), named run.source.
  absl::StatusOr<IngestResult> run_lines(const IngestRun& run, LineReader& lines,
                                         std::stop_token stop);

  // Publishes one point with the same retries; returns its partition key.
  absl::StatusOr<std::string> publish_one(const TelemetryPoint& point);

 private:
  struct Pending {
    uint64_t line;
    std::string row;
    stream::Record record;
  };
  // Replay pacing, kept across the passes of a loop.
  struct Pacing {
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    uint64_t paced = 0;
    ReplayStamps stamps;
  };
  absl::Status run_pass(const IngestRun& run, LineReader& lines, stream::Producer& producer,
                        Pacing& pacing, IngestResult& result, std::stop_token stop);
  void reject(IngestResult& result, const std::string& source, uint64_t line,
              const std::string& reason_label, const std::string& reason, const std::string& row);
  // Hands one parsed row to the producer; false when that failed (the
  // chunk is then sent again as a whole).
  bool send_row(stream::Producer& producer, const Pending& pending);
  // Flushes `chunk` (sending it first unless `sent`: every row was handed
  // over already), and retries the whole chunk on a delivery error; clears
  // the chunk and sets `sent` for the next one.
  void publish_chunk(stream::Producer& producer, std::vector<Pending>& chunk, bool& sent,
                     const std::string& source, IngestResult& result, std::stop_token stop);

  IngestSettings settings_;
  ProducerFactory producers_;
  RejectLog& rejects_;
  IngestMetrics metrics_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex single_mutex_;
  std::unique_ptr<stream::Producer> single_;
};

}  // namespace telekern::collector
