#include "tests/support/clickhouse_server.h"

#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <sstream>

#include "tests/support/redis_server.h"

namespace telekern::testing {

ClickHouseServer::ClickHouseServer() : dir_("clickhouse") {
  binary_ = find_executable("clickhouse-server",
                            {"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"});
  if (binary_.empty()) return;
  std::filesystem::create_directories(dir_.path() / "data");
  std::filesystem::create_directories(dir_.path() / "tmp");
  std::filesystem::create_directories(dir_.path() / "user_files");
  std::filesystem::create_directories(dir_.path() / "format_schemas");
  for (int attempt = 0; attempt < 3 && !ready_; ++attempt) {
    http_port_ = free_loopback_port();
    tcp_port_ = free_loopback_port();
    interserver_port_ = free_loopback_port();
    ready_ = launch();
  }
}

ClickHouseServer::~ClickHouseServer() = default;  // Process kills the server

bool ClickHouseServer::launch() {
  auto root = dir_.path().string();
  std::ofstream config(dir_.path() / "config.xml");
  config << "<?xml version=\"1.0\"?>\n<yandex>\n"
         << "  <logger><level>warning</level><log>" << root << "/server.log</log><errorlog>" << root
         << "/error.log</errorlog><size>10M</size><count>1</count></logger>\n"
         << "  <http_port>" << http_port_ << "</http_port>\n"
         << "  <tcp_port>" << tcp_port_ << "</tcp_port>\n"
         << "  <interserver_http_port>" << interserver_port_ << "</interserver_http_port>\n"
         << "  <listen_host>127.0.0.1</listen_host>\n"
         << "  <interserver_http_host>127.0.0.1</interserver_http_host>\n"
         << "  <max_connections>256</max_connections>\n"
         << "  <keep_alive_timeout>3</keep_alive_timeout>\n"
         << "  <max_concurrent_queries>64</max_concurrent_queries>\n"
         << "  <uncompressed_cache_size>8589934592</uncompressed_cache_size>\n"
         << "  <mark_cache_size>268435456</mark_cache_size>\n"
         << "  <path>" << root << "/data/</path>\n"
         << "  <tmp_path>" << root << "/tmp/</tmp_path>\n"
         << "  <user_files_path>" << root << "/user_files/</user_files_path>\n"
         << "  <format_schema_path>" << root << "/format_schemas/</format_schema_path>\n"
         << "  <users_config>" << root << "/users.xml</users_config>\n"
         << "  <default_profile>default</default_profile>\n"
         << "  <default_database>default</default_database>\n"
         << "  <mlock_executable>false</mlock_executable>\n"
         << "</yandex>\n";
  config.close();
  std::ofstream users(dir_.path() / "users.xml");
  users
      << "<?xml version=\"1.0\"?>\n<yandex>\n"
      << "  "
         "<profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>\n"
      << "  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip>"
      << "</networks><profile>default</profile><quota>default</quota></default></users>\n"
      << "  <quotas><default></default></quotas>\n</yandex>\n";
  users.close();
  process_ = std::make_unique<Process>(
      std::vector<std::string>{binary_, "--config-file", (dir_.path() / "config.xml").string()},
      std::map<std::string, std::string>{}, dir_.path() / "stdout.log");
  bool up = wait_for(
      [&] {
        if (!process_->running()) return true;
        httplib::Client client("127.0.0.1", http_port_);
        client.set_connection_timeout(std::chrono::milliseconds(200));
        auto result = client.Get("/ping");
        return result && result->status == 200;
      },
      std::chrono::seconds(60));
  return up && process_->running();
}

std::string ClickHouseServer::query(const std::string& sql) const {
  httplib::Client client("127.0.0.1", http_port_);
  client.set_read_timeout(std::chrono::seconds(30));
  auto result = client.Post("/", sql, "text/plain");
  if (!result) return "ERROR: " + httplib::to_string(result.error());
  if (result->status != 200) return "ERROR: " + result->body;
  return result->body;
}

long long ClickHouseServer::count(const std::string& sql) const {
  auto body = query(sql);
  if (body.rfind("ERROR", 0) == 0) return -1;
  try {
    return std::stoll(body);
  } catch (...) {
    return -1;
  }
}

void ClickHouseServer::kill() {
  if (process_) {
    process_->signal(SIGKILL);
    process_->wait(std::chrono::seconds(10));
  }
  ready_ = false;
}

bool ClickHouseServer::restart() {
  kill();
  ready_ = launch();
  return ready_;
}

std::string ClickHouseServer::log() const {
  std::ifstream file(dir_.path() / "error.log");
  std::stringstream out;
  out << file.rdbuf();
  return out.str();
}

}  // namespace telekern::testing
