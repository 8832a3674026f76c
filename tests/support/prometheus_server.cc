#include "tests/support/prometheus_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace telekern::testing {
namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace

PrometheusServer::PrometheusServer(const std::string& target, const std::string& bearer) {
  std::string binary = find_executable("prometheus", {"/usr/bin/prometheus"});
  if (binary.empty()) return;  // ready() stays false: the test fails, never skips
  port_ = free_port();
  std::ofstream config(dir_.path() / "prometheus.yml");
  config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
         << "scrape_configs:\n  - job_name: telekern\n    metrics_path: /metrics\n";
  if (!bearer.empty()) config << "    authorization:\n      credentials: " << bearer << "\n";
  config << "    static_configs:\n      - targets: ['" << target << "']\n";
  config.close();
  process_ = std::make_unique<Process>(
      std::vector<std::string>{binary, "--config.file=" + (dir_.path() / "prometheus.yml").string(),
                               "--storage.tsdb.path=" + (dir_.path() / "data").string(),
                               "--web.listen-address=" + address(), "--log.level=warn"},
      std::map<std::string, std::string>{}, dir_.path() / "prometheus.log");
  ready_ = wait_for(
      [&] {
        httplib::Client client("127.0.0.1", port_);
        client.set_connection_timeout(std::chrono::milliseconds(200));
        auto response = client.Get("/-/ready");
        return response && response->status == 200;
      },
      std::chrono::seconds(30));
}

PrometheusServer::~PrometheusServer() = default;

std::string PrometheusServer::query(const std::string& promql) const {
  httplib::Client client("127.0.0.1", port_);
  auto response = client.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
  if (!response || response->status != 200) return "";
  return response->body;
}

std::string PrometheusServer::log() const {
  std::ifstream in(dir_.path() / "prometheus.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace telekern::testing
