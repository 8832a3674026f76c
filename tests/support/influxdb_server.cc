#include "tests/support/influxdb_server.h"

#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/redis_server.h"  // free_loopback_port

namespace telekern::testing {

InfluxDbServer::InfluxDbServer() : dir_("influxdb") {
  binary_ = find_executable("influxd", {"/usr/bin/influxd"});
  if (binary_.empty()) return;
  for (int attempt = 0; attempt < 3 && !ready_; ++attempt) {
    http_port_ = free_loopback_port();
    rpc_port_ = free_loopback_port();
    if (http_port_ == rpc_port_) continue;
    ready_ = launch();
  }
}

InfluxDbServer::~InfluxDbServer() = default;  // Process kills the server

bool InfluxDbServer::launch() {
  auto root = dir_.path();
  {
    std::ofstream config(root / "influxdb.conf");
    config << "reporting-disabled = true\n"
           << "bind-address = \"127.0.0.1:" << rpc_port_ << "\"\n"
           << "[meta]\n  dir = \"" << (root / "meta").string() << "\"\n"
           << "  logging-enabled = false\n"
           << "[data]\n  dir = \"" << (root / "data").string() << "\"\n"
           << "  wal-dir = \"" << (root / "wal").string() << "\"\n"
           << "  query-log-enabled = false\n  wal-fsync-delay = \"0s\"\n"
           << "[retention]\n  enabled = false\n"
           << "[monitor]\n  store-enabled = false\n"
           << "[subscriber]\n  enabled = false\n"
           << "[continuous_queries]\n  enabled = false\n"
           << "[http]\n  enabled = true\n  bind-address = \"127.0.0.1:" << http_port_ << "\"\n"
           << "  log-enabled = false\n  auth-enabled = false\n";
  }
  process_ = std::make_unique<Process>(
      std::vector<std::string>{binary_, "-config", (root / "influxdb.conf").string()},
      std::map<std::string, std::string>{}, root / "influxd.log");
  bool up = wait_for(
      [&] {
        if (!process_->running()) return true;
        httplib::Client client("127.0.0.1", http_port_);
        client.set_connection_timeout(0, 200000);
        auto result = client.Get("/ping");
        return result && result->status == 204;
      },
      std::chrono::seconds(20));
  return up && process_->running();
}

void InfluxDbServer::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(10));
}

bool InfluxDbServer::start() {
  ready_ = launch();
  return ready_;
}

std::string InfluxDbServer::log() const {
  std::ifstream in(dir_.path() / "influxd.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::pair<int, std::string> InfluxDbServer::query(const std::string& database,
                                                  const std::string& influxql, bool post) const {
  httplib::Client client("127.0.0.1", http_port_);
  client.set_read_timeout(30, 0);
  httplib::Params params{{"q", influxql}, {"epoch", "ns"}};
  if (!database.empty()) params.emplace("db", database);
  auto result =
      post ? client.Post("/query", params) : client.Get("/query", params, httplib::Headers{});
  if (!result) return {-1, httplib::to_string(result.error())};
  return {result->status, result->body};
}

int InfluxDbServer::write(const std::string& database, const std::string& lines,
                          const std::string& precision) const {
  httplib::Client client("127.0.0.1", http_port_);
  client.set_read_timeout(60, 0);
  auto result =
      client.Post("/write?db=" + database + "&precision=" + precision, lines, "text/plain");
  return result ? result->status : -1;
}

long long InfluxDbServer::count(const std::string& database, const std::string& measurement,
                                const std::string& field) const {
  auto [status, body] =
      query(database, "SELECT count(\"" + field + "\") FROM \"" + measurement + "\"");
  if (status != 200) return -1;
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  try {
    return parsed["results"][0]["series"][0]["values"][0][1].get<long long>();
  } catch (...) {
    return 0;
  }
}

}  // namespace telekern::testing
