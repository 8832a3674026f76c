// Starts a real telekernd on free loopback ports in a temp dir and stops it.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <optional>
#include <string>

#include "tests/support/process.h"

namespace telekern::testing {

struct TelekerndOptions {
  std::string config_yaml;        // written to <dir>/telekernd.yaml when not empty
  std::string modules_dir;        // default: build/test-modules
  std::vector<std::string> load;  // modules to load; empty = all in modules_dir
  std::map<std::string, std::string> env;
  std::vector<std::string> extra_args;
  std::string data_dir;                // default: <temp dir>/data; set to keep data across restarts
  std::string listen = "127.0.0.1:0";  // a fixed port brings a restarted daemon back on it
  std::optional<uint64_t> file_size_limit;  // RLIMIT_FSIZE for the daemon
  // RLIMIT_NOFILE for the daemon: soft (and hard, unless open_files_hard_limit is set).
  std::optional<uint64_t> open_files_limit;
  std::optional<uint64_t> open_files_hard_limit;
};

class Telekernd {
 public:
  explicit Telekernd(TelekerndOptions options = {});
  ~Telekernd();

  // True once the ready file appeared (bounded wait); false if it exited first.
  bool ready() const { return ready_; }
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& http_address() const { return http_address_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path log_file() const { return dir_.path() / "telekernd.log"; }
  std::string log() const;
  Process& process() { return *process_; }
  std::shared_ptr<grpc::Channel> channel() const;
  // GET http://<http_address><path> with optional request headers; returns
  // status code and body.
  std::pair<int, std::string> http_get(
      const std::string& path, const std::map<std::string, std::string>& headers = {}) const;

 private:
  TempDir dir_;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
  std::string grpc_address_;
  std::string http_address_;
};

std::string telekernd_binary();
std::string test_modules_dir();

}  // namespace telekern::testing
