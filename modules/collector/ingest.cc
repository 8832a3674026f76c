#include "ingest.h"

#include <condition_variable>
#include <fstream>
#include <sstream>
#include <thread>

#include "telekern/retry.h"
#include "telekern/sleep.h"
#include "telekern/strings.h"

namespace telekern::collector {
namespace {

constexpr size_t kRejectsShown = 20;

// Reads lines from a file or from inline text.
class LineSource final : public LineReader {
 public:
  explicit LineSource(const IngestRun& run) {
    if (run.from_file) {
      file_.open(run.source);
      if (!file_) error_ = "cannot read '" + run.source + "': " + std::strerror(errno);
    } else {
      text_.str(run.text);
    }
  }
  const std::string& error() const { return error_; }
  bool next(std::string& line) override {
    std::istream& in = file_.is_open() ? static_cast<std::istream&>(file_) : text_;
    return static_cast<bool>(std::getline(in, line));
  }

 private:
  std::ifstream file_;
  std::istringstream text_;
  std::string error_;
};

}  // namespace

bool ChunkedLines::next(std::string& line) {
  while (true) {
    auto newline = buffer_.find('\n', position_);
    if (newline != std::string::npos) {
      bool skipped = skipping_;
      skipping_ = false;
      if (!skipped) line.assign(buffer_, position_, newline - position_);
      position_ = newline + 1;
      if (!skipped) return true;
      continue;
    }
    if (buffer_.size() - position_ > max_line_bytes_ && !skipping_) {
      // No end of line in sight: hand over the line so far (it will not
      // parse) and drop the rest up to the next end of line.
      line.assign(buffer_, position_, max_line_bytes_);
      buffer_.clear();
      position_ = 0;
      skipping_ = true;
      return true;
    }
    if (skipping_) {
      buffer_.clear();
      position_ = 0;
    }
    if (ended_) break;
    buffer_.erase(0, position_);
    position_ = 0;
    std::string chunk;
    if (!next_chunk_(chunk)) {
      ended_ = true;
      continue;
    }
    bytes_ += chunk.size();
    buffer_.append(chunk);
  }
  if (position_ >= buffer_.size() || skipping_) return false;
  line.assign(buffer_, position_, std::string::npos);  // the last line had no '\n'
  position_ = buffer_.size();
  return true;
}

CsvIngester::CsvIngester(IngestSettings settings, ProducerFactory producers, RejectLog& rejects,
                         IngestMetrics metrics, std::shared_ptr<spdlog::logger> log)
    : settings_(std::move(settings)),
      producers_(std::move(producers)),
      rejects_(rejects),
      metrics_(metrics),
      log_(std::move(log)) {}

void CsvIngester::reject(IngestResult& result, const std::string& source, uint64_t line,
                         const std::string& reason_label, const std::string& reason,
                         const std::string& row) {
  ++result.rejected;
  std::string where = str_cat(source, ":", line, ": ", reason);
  if (result.rejects.size() < kRejectsShown) result.rejects.push_back(where);
  if (metrics_.rows_rejected) metrics_.rows_rejected->with({reason_label}).inc();
  log_->warn("rejected row {} (written to {})", where, rejects_.path());
  rejects_.add(source, line, reason, row);
}

bool CsvIngester::send_row(stream::Producer& producer, const Pending& pending) {
  auto sent = producer.send(pending.record);
  if (sent.code() == absl::StatusCode::kResourceExhausted) {
    if (!producer.flush(settings_.flush_timeout).ok()) return false;
    sent = producer.send(pending.record);
  }
  return sent.ok();
}

void CsvIngester::publish_chunk(stream::Producer& producer, std::vector<Pending>& chunk, bool& sent,
                                const std::string& source, IngestResult& result,
                                std::stop_token stop) {
  if (chunk.empty()) {
    sent = true;
    return;
  }
  Backoff backoff({settings_.publish_backoff, std::chrono::seconds(5), 2.0,
                   static_cast<int>(settings_.publish_attempts)});
  auto status = retry(
      [&]() -> absl::Status {
        // Rows handed over while they were parsed need only the flush; after
        // a failure the whole chunk goes again.
        bool resend = !sent;
        sent = false;
        if (!resend) return producer.flush(settings_.flush_timeout);
        for (const auto& pending : chunk) {
          auto queued = producer.send(pending.record);
          while (queued.code() == absl::StatusCode::kResourceExhausted) {
            auto flushed = producer.flush(settings_.flush_timeout);
            if (!flushed.ok()) return flushed;
            queued = producer.send(pending.record);
          }
          if (!queued.ok()) return queued;
        }
        return producer.flush(settings_.flush_timeout);
      },
      backoff, stop,
      [&](int attempt, const absl::Status& failure) {
        log_->warn("publishing {} rows of {} to '{}' failed (attempt {} of {}): {}", chunk.size(),
                   source, settings_.topic, attempt, settings_.publish_attempts,
                   failure.ToString());
      });
  if (status.ok()) {
    result.published += chunk.size();
    if (metrics_.rows_ingested) metrics_.rows_ingested->inc(static_cast<double>(chunk.size()));
  } else {
    for (const auto& pending : chunk)
      reject(result, source, pending.line, "publish_failed",
             str_cat("publish failed: ", status.message()), pending.row);
  }
  chunk.clear();
  sent = true;
}

TimePoint ReplayStamps::stamp(TimePoint original, TimePoint now) {
  if (fresh_ || original != original_) {
    // A new scrape: after every stamp given so far.
    if (latest_ != TimePoint{}) floor_ = latest_ + std::chrono::milliseconds(1);
    original_ = original;
    fresh_ = false;
  }
  TimePoint at = std::max<TimePoint>(std::chrono::floor<std::chrono::milliseconds>(now), floor_);
  latest_ = std::max(latest_, at);
  return at;
}

absl::StatusOr<IngestResult> CsvIngester::run(const IngestRun& run, std::stop_token stop) {
  auto producer = producers_();
  if (!producer.ok()) return producer.status();
  IngestResult result;
  Pacing pacing;
  do {
    LineSource lines(run);
    if (!lines.error().empty()) return absl::NotFoundError(lines.error());
    auto status = run_pass(run, lines, **producer, pacing, result, stop);
    if (!status.ok()) return status;
  } while (run.loop && !stop.stop_requested());
  return result;
}

absl::StatusOr<IngestResult> CsvIngester::run_lines(const IngestRun& run, LineReader& lines,
                                                    std::stop_token stop) {
  auto producer = producers_();
  if (!producer.ok()) return producer.status();
  IngestResult result;
  Pacing pacing;
  auto status = run_pass(run, lines, **producer, pacing, result, stop);
  if (!status.ok()) return status;
  return result;
}

absl::Status CsvIngester::run_pass(const IngestRun& run, LineReader& lines,
                                   stream::Producer& producer, Pacing& pacing, IngestResult& result,
                                   std::stop_token stop) {
  std::string line;
  uint64_t number = 0;
  std::optional<CsvColumns> columns;
  std::vector<Pending> chunk;
  // Every row of `chunk` was handed to the producer as it was parsed, so the
  // delivery of full produce batches overlaps parsing the rest of the chunk.
  bool sent = true;
  pacing.stamps.new_pass();
  while (!stop.stop_requested() && lines.next(line)) {
    ++number;
    if (line.empty() || line == "\r") continue;
    if (!columns) {
      auto header = CsvColumns::from_header(line);
      if (!header.ok())
        return absl::InvalidArgumentError(
            str_cat(run.source, ":", number, ": ", header.status().message()));
      columns = *header;
      continue;
    }
    auto point = columns->parse(line);
    if (!point.ok()) {
      bool invalid = point.status().message().find("metric_name") != std::string_view::npos ||
                     point.status().message().find("names no GPU") != std::string_view::npos;
      reject(result, run.source, number, invalid ? "invalid" : "malformed",
             std::string(point.status().message()), line);
      continue;
    }
    if (run.replay) {
      if (run.rate > 0) {
        auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(1.0 / run.rate));
        auto due = pacing.started + interval * static_cast<int64_t>(pacing.paced);
        auto now = std::chrono::steady_clock::now();
        if (due > now) {
          // What is due goes out now.
          publish_chunk(producer, chunk, sent, run.source, result, stop);
          if (!sleep_until(due, stop)) break;
        } else if (now - due > interval * 2) {
          // Behind (a slow publish): the rate is a ceiling, not a debt paid in a burst.
          pacing.started = now;
          pacing.paced = 0;
        }
        ++pacing.paced;
      }
      point->time = pacing.stamps.stamp(point->time, std::chrono::system_clock::now());
    }
    stream::Record record;
    record.topic = settings_.topic;
    record.key = point->gpu_key();
    record.value = encode_record(*point);
    record.timestamp = point->time;
    // The line is read into afresh by the next lines.next().
    chunk.push_back({number, std::move(line), std::move(record)});
    if (sent) sent = send_row(producer, chunk.back());
    if (chunk.size() >= settings_.chunk_rows)
      publish_chunk(producer, chunk, sent, run.source, result, stop);
  }
  publish_chunk(producer, chunk, sent, run.source, result, stop);
  if (!columns && !stop.stop_requested())
    return absl::InvalidArgumentError(
        str_cat(run.source, " has no header line; expected ", kCsvHeader));
  return absl::OkStatus();
}

absl::StatusOr<std::string> CsvIngester::publish_one(const TelemetryPoint& point) {
  auto valid = validate(point);
  if (!valid.ok()) return valid;
  std::lock_guard lock(single_mutex_);
  if (!single_) {
    auto producer = producers_();
    if (!producer.ok()) return producer.status();
    single_ = std::move(*producer);
  }
  stream::Record record;
  record.topic = settings_.topic;
  record.key = point.gpu_key();
  record.value = encode_record(point);
  record.timestamp = point.time;
  Backoff backoff({settings_.publish_backoff, std::chrono::seconds(5), 2.0,
                   static_cast<int>(settings_.publish_attempts)});
  auto status = retry(
      [&]() -> absl::Status {
        auto sent = single_->send(record);
        if (!sent.ok()) return sent;
        return single_->flush(settings_.flush_timeout);
      },
      backoff);
  if (!status.ok()) {
    if (metrics_.rows_rejected) metrics_.rows_rejected->with({"publish_failed"}).inc();
    rejects_.add("SubmitTelemetry", 0, str_cat("publish failed: ", status.message()), record.value);
    return status;
  }
  if (metrics_.rows_ingested) metrics_.rows_ingested->inc();
  return record.key;
}

}  // namespace telekern::collector
