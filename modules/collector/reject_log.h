// The reject file: every row that did not parse, did not validate, could not
// be published or was refused by the store, as CSV
// `source,line,reason,row` appended under a lock, so nothing is dropped
// silently and a fixed file can be ingested again.
#pragma once

#include <fstream>
#include <mutex>
#include <string>

namespace telekern::collector {

class RejectLog {
 public:
  explicit RejectLog(std::string path);
  const std::string& path() const { return path_; }
  void add(const std::string& source, uint64_t line, const std::string& reason,
           const std::string& row);

 private:
  std::string path_;
  std::mutex mutex_;
  std::ofstream out_;
};

}  // namespace telekern::collector
