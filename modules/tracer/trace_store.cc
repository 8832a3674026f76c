#include "trace_store.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "telekern/strings.h"

namespace telekern::tracer {
namespace {

absl::Status write_atomically(const std::filesystem::path& file, const std::string& content) {
  auto temp = file;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) return absl::InternalError(str_cat("cannot write ", temp.string()));
  }
  std::error_code error;
  std::filesystem::rename(temp, file, error);
  if (error)
    return absl::InternalError(str_cat("cannot rename to ", file.string(), ": ", error.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(str_cat("cannot read ", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TraceStore::TraceStore(std::filesystem::path root, uint32_t max_traces)
    : root_(std::move(root)), max_traces_(max_traces) {}

absl::StatusOr<std::filesystem::path> TraceStore::dir_of(const std::string& trace_id) const {
  if (trace_id.empty() || trace_id.find_first_of("/\\") != std::string::npos ||
      trace_id.front() == '.')
    return absl::InvalidArgumentError(
        str_cat("'", trace_id, "' is not a trace id; see trace list"));
  return root_ / trace_id;
}

absl::Status TraceStore::save(const v1::Summary& summary, const std::vector<v1::Event>& events) {
  std::lock_guard lock(mutex_);
  auto dir = dir_of(summary.trace_id());
  if (!dir.ok()) return dir.status();
  std::error_code error;
  std::filesystem::create_directories(*dir, error);
  if (error)
    return absl::InternalError(str_cat("cannot create ", dir->string(), ": ", error.message()));
  v1::GetTraceResponse all;
  for (const auto& event : events) *all.add_events() = event;
  if (auto status = write_atomically(*dir / "events.binpb", all.SerializeAsString()); !status.ok())
    return status;
  if (auto status = write_atomically(*dir / "summary.binpb", summary.SerializeAsString());
      !status.ok())
    return status;
  prune();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::Summary>> TraceStore::list() {
  std::lock_guard lock(mutex_);
  std::vector<v1::Summary> out;
  std::error_code error;
  if (!std::filesystem::exists(root_, error)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(root_, error)) {
    auto text = read_file(entry.path() / "summary.binpb");
    if (!text.ok()) continue;
    v1::Summary summary;
    if (summary.ParseFromString(*text)) out.push_back(std::move(summary));
  }
  std::sort(out.begin(), out.end(), [](const v1::Summary& a, const v1::Summary& b) {
    if (a.started().seconds() != b.started().seconds())
      return a.started().seconds() > b.started().seconds();
    if (a.started().nanos() != b.started().nanos())
      return a.started().nanos() > b.started().nanos();
    return a.trace_id() > b.trace_id();
  });
  return out;
}

void TraceStore::prune() {
  std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> dirs;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(root_, error)) {
    auto time = std::filesystem::last_write_time(entry.path() / "summary.binpb", error);
    if (!error) dirs.emplace_back(time, entry.path());
  }
  if (dirs.size() <= max_traces_) return;
  std::sort(dirs.begin(), dirs.end());
  for (size_t i = 0; i + max_traces_ < dirs.size(); ++i)
    std::filesystem::remove_all(dirs[i].second, error);
}

absl::StatusOr<v1::Summary> TraceStore::summary(const std::string& trace_id) {
  auto dir = dir_of(trace_id);
  if (!dir.ok()) return dir.status();
  auto text = read_file(*dir / "summary.binpb");
  if (!text.ok())
    return absl::NotFoundError(str_cat("no stored trace '", trace_id, "'; see trace list"));
  v1::Summary summary;
  if (!summary.ParseFromString(*text))
    return absl::DataLossError(str_cat("stored trace '", trace_id, "' is corrupt"));
  return summary;
}

absl::StatusOr<std::vector<v1::Event>> TraceStore::events(const std::string& trace_id) {
  auto dir = dir_of(trace_id);
  if (!dir.ok()) return dir.status();
  auto text = read_file(*dir / "events.binpb");
  if (!text.ok())
    return absl::NotFoundError(str_cat("no stored trace '", trace_id, "'; see trace list"));
  v1::GetTraceResponse all;
  if (!all.ParseFromString(*text))
    return absl::DataLossError(str_cat("stored events of '", trace_id, "' are corrupt"));
  return std::vector<v1::Event>(all.events().begin(), all.events().end());
}

}  // namespace telekern::tracer
