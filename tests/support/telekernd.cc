#include "tests/support/telekernd.h"

#include <grpcpp/create_channel.h>
#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace telekern::testing {

std::string telekernd_binary() { return std::string(TELEKERN_BUILD_DIR) + "/bin/telekernd"; }
std::string test_modules_dir() { return std::string(TELEKERN_BUILD_DIR) + "/test-modules"; }

Telekernd::Telekernd(TelekerndOptions options) : dir_("telekernd") {
  std::vector<std::string> argv = {
      telekernd_binary(),
      "--listen",
      options.listen,
      "--http",
      "127.0.0.1:0",
      "--data-dir",
      options.data_dir.empty() ? (dir_.path() / "data").string() : options.data_dir,
      "--modules-dir",
      options.modules_dir.empty() ? test_modules_dir() : options.modules_dir,
      "--ready-file",
      (dir_.path() / "ready.json").string()};
  std::string yaml = options.config_yaml;
  if (!options.load.empty()) {
    yaml += "\nload:\n";
    for (const auto& name : options.load) yaml += "  - " + name + "\n";
  }
  if (!yaml.empty()) {
    std::ofstream(dir_.path() / "telekernd.yaml") << yaml;
    argv.push_back("--config");
    argv.push_back((dir_.path() / "telekernd.yaml").string());
  }
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  std::optional<std::pair<uint64_t, uint64_t>> open_files;
  if (options.open_files_limit) {
    open_files.emplace(*options.open_files_limit,
                       options.open_files_hard_limit.value_or(*options.open_files_limit));
  }
  process_ =
      std::make_unique<Process>(argv, options.env, log_file(), options.file_size_limit, open_files);
  auto ready_file = dir_.path() / "ready.json";
  ready_ = wait_for([&] { return std::filesystem::exists(ready_file) || !process_->running(); },
                    std::chrono::seconds(30)) &&
           std::filesystem::exists(ready_file);
  if (ready_) {
    std::ifstream in(ready_file);
    auto json = nlohmann::json::parse(in, nullptr, false);
    grpc_address_ = json.value("grpc", "");
    http_address_ = json.value("http", "");
  }
}

Telekernd::~Telekernd() {
  if (process_ && process_->running()) {
    process_->signal(SIGTERM);
    if (!process_->wait(std::chrono::seconds(20))) process_->signal(SIGKILL);
  }
}

std::string Telekernd::log() const {
  std::ifstream in(log_file());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::shared_ptr<grpc::Channel> Telekernd::channel() const {
  return grpc::CreateChannel(grpc_address_, grpc::InsecureChannelCredentials());
}

std::pair<int, std::string> Telekernd::http_get(
    const std::string& path, const std::map<std::string, std::string>& headers) const {
  auto colon = http_address_.rfind(':');
  httplib::Client client(http_address_.substr(0, colon),
                         std::stoi(http_address_.substr(colon + 1)));
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  httplib::Headers request_headers(headers.begin(), headers.end());
  auto result = client.Get(path.c_str(), request_headers);
  if (!result) return {0, "request failed"};
  return {result->status, result->body};
}

}  // namespace telekern::testing
