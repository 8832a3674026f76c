#include "reject_log.h"

#include <filesystem>

#include "telekern/csv.h"

namespace telekern::collector {

RejectLog::RejectLog(std::string path) : path_(std::move(path)) {}

void RejectLog::add(const std::string& source, uint64_t line, const std::string& reason,
                    const std::string& row) {
  std::lock_guard lock(mutex_);
  if (!out_.is_open()) {
    std::error_code error;
    auto parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, error);
    bool fresh =
        !std::filesystem::exists(path_, error) || std::filesystem::file_size(path_, error) == 0;
    out_.open(path_, std::ios::app);
    if (fresh) out_ << "source,line,reason,row\n";
  }
  out_ << csv::join_line({source, std::to_string(line), reason, row}) << '\n';
  out_.flush();
}

}  // namespace telekern::collector
