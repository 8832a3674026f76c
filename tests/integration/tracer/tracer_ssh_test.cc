// The ssh source against a real sshd (tests/support/ssh_server) whose
// commands are kcat against the Kafka mock cluster: a password-only trace
// with max_parallel 4 (one connection, a channel per topic), key setup that
// installs and then uses a key, clean keys, and host key checking.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "command_source.h"
#include "tests/integration/tracer/tracer_data.h"
#include "tests/support/kafka_mock_cluster.h"
#include "tests/support/process.h"
#include "tests/support/ssh_server.h"
#include "trace_engine.h"

namespace telekern::tracer {
namespace {

using testing::EventKey;

class Quiet final : public TraceObserver {
 public:
  bool progress(const v1::Progress&) override { return true; }
  bool event(const v1::Event&) override { return true; }
};

std::string read_all(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class TracerSshTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sshd_ = new telekern::testing::SshServer();
    cluster_ = new telekern::testing::KafkaMockCluster(3);
    ASSERT_TRUE(cluster_->ok());
    std::vector<testing::TopicSpec> topics = {{"device-events", 4, 400},
                                              {"audit-log", 4, 300},
                                              {"provision", 3, 300},
                                              {"telemetry", 4, 300}};
    for (const auto& topic : topics) cluster_->create_topic(topic.name, topic.partitions);
    records_ = new std::vector<testing::ProducedRecord>(
        testing::make_records(topics, std::chrono::hours(48)));
    ASSERT_TRUE(testing::produce(cluster_->bootstraps(), *records_));
  }
  static void TearDownTestSuite() {
    delete records_;
    delete cluster_;
    delete sshd_;
  }

  void SetUp() override {
    ASSERT_TRUE(sshd_->ready()) << sshd_->why();
    TracerOptions options;
    options.templates_list_topics =
        "kcat -b {broker} -L -q | sed -n 's/^ *topic \"\\([^\"]*\\)\".*/\\1/p'";
    options.templates_consume =
        "kcat -b {broker} -C -t {topic} -o beginning -e -q -f "
        "'CreateTime:%T\\tPartition:%p\\tOffset:%o\\t%k\\t%s\\n'";
    options.templates_offsets =
        "for p in $(kcat -b {broker} -L -t {topic} | sed -n 's/^ *partition "
        "\\([0-9]*\\),.*/\\1/p'); "
        "do kcat -b {broker} -Q -t {topic}:$p:-1; done | "
        "sed -n 's/^\\([^ ]*\\) \\[\\([0-9]*\\)\\] offset \\([0-9]*\\).*/\\1:\\2:\\3/p'";
    options.progress_interval = std::chrono::milliseconds(50);
    auto logger =
        std::make_shared<spdlog::logger>("tracer", std::make_shared<spdlog::sinks::null_sink_mt>());
    engine_ = std::make_unique<TraceEngine>(
        options, dir_.path(),
        [this](const v1::TraceDeviceRequest& request, const ScanLimits& limits) {
          return make_command_source(
              request.source() == v1::SOURCE_EXEC ? SourceKind::kExec : SourceKind::kSsh, request,
              engine_->options(), dir_.path(), limits);
        },
        logger, nullptr);
  }

  v1::TraceDeviceRequest request() const {
    v1::TraceDeviceRequest request;
    request.set_device_id(testing::kDevice);
    request.set_source(v1::SOURCE_SSH);
    request.set_kafka_brokers(cluster_->bootstraps());
    request.mutable_max_age()->set_seconds(0);
    request.mutable_timeout()->set_seconds(30);
    request.set_max_parallel(4);
    request.set_no_graphs(true);
    auto* ssh = request.mutable_ssh();
    ssh->set_host(sshd_->address());
    ssh->set_user(sshd_->user());
    ssh->set_known_hosts((dir_.path() / "known_hosts").string());
    ssh->set_accept_new(true);
    return request;
  }

  std::set<EventKey> found(const v1::Summary& summary) {
    v1::GetTraceRequest get;
    get.set_trace_id(summary.trace_id());
    auto trace = engine_->get_trace(get);
    std::set<EventKey> out;
    if (!trace.ok()) return out;
    for (const auto& e : trace->events())
      out.insert({e.topic(), static_cast<int32_t>(e.partition()), e.offset()});
    return out;
  }

  static telekern::testing::SshServer* sshd_;
  static telekern::testing::KafkaMockCluster* cluster_;
  static std::vector<testing::ProducedRecord>* records_;
  telekern::testing::TempDir dir_;
  std::unique_ptr<TraceEngine> engine_;
};

telekern::testing::SshServer* TracerSshTest::sshd_ = nullptr;
telekern::testing::KafkaMockCluster* TracerSshTest::cluster_ = nullptr;
std::vector<testing::ProducedRecord>* TracerSshTest::records_ = nullptr;

TEST_F(TracerSshTest, PasswordOnlyTraceWithMaxParallel4FindsEveryEvent) {
  auto req = request();
  req.mutable_ssh()->set_password(sshd_->password());
  req.mutable_ssh()->set_no_key_setup(true);
  Quiet quiet;
  auto summary = engine_->trace(req, quiet, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(found(*summary), testing::containing(*records_, testing::kDevice));
  EXPECT_EQ(summary->topics_size(), 4);
  EXPECT_TRUE(summary->complete()) << summary->DebugString();
  EXPECT_EQ(summary->scanned(), records_->size());
}

TEST_F(TracerSshTest, UnknownHostKeyIsRefusedUnlessAcceptNew) {
  auto req = request();
  req.mutable_ssh()->set_password(sshd_->password());
  req.mutable_ssh()->set_accept_new(false);
  req.mutable_ssh()->set_known_hosts((dir_.path() / "empty_known_hosts").string());
  Quiet quiet;
  auto summary = engine_->trace(req, quiet, {});
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(summary.status().message().find("accept_new"), std::string::npos) << summary.status();
  // With accept_new the key is recorded, and a later contact needs no flag.
  req.mutable_ssh()->set_accept_new(true);
  req.add_topics("provision");
  ASSERT_TRUE(engine_->trace(req, quiet, {}).ok());
  req.mutable_ssh()->set_accept_new(false);
  auto again = engine_->trace(req, quiet, {});
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(TracerSshTest, KeySetupInstallsAndThenUsesTheKeyAndCleanKeysRemovesIt) {
  auto req = request();
  req.add_topics("provision");
  req.mutable_ssh()->set_password(sshd_->password());
  req.mutable_ssh()->set_setup_keys(true);
  Quiet quiet;
  auto summary = engine_->trace(req, quiet, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  std::string installed = read_all(sshd_->authorized_keys());
  EXPECT_NE(installed.find("telekern-tracer@"), std::string::npos) << installed;
  bool local_key = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path() / "ssh"))
    local_key |= entry.path().filename().string().rfind("id_ed25519_", 0) == 0;
  EXPECT_TRUE(local_key);

  // No password now: the installed key logs in.
  req.mutable_ssh()->clear_password();
  req.mutable_ssh()->set_setup_keys(false);
  auto keyed = engine_->trace(req, quiet, {});
  ASSERT_TRUE(keyed.ok()) << keyed.status();
  EXPECT_EQ(found(*keyed), found(*summary));

  // Clean keys removes it on both sides.
  req.mutable_ssh()->set_password(sshd_->password());
  req.mutable_ssh()->set_clean_keys(true);
  ASSERT_TRUE(engine_->trace(req, quiet, {}).ok());
  EXPECT_EQ(read_all(sshd_->authorized_keys()).find("telekern-tracer@"), std::string::npos);
  req.mutable_ssh()->clear_password();
  req.mutable_ssh()->set_clean_keys(false);
  EXPECT_FALSE(engine_->trace(req, quiet, {}).ok());  // no key and no password any more
}

TEST_F(TracerSshTest, ExecSourceRunsTheSameTemplatesLocally) {
  auto req = request();
  req.set_source(v1::SOURCE_EXEC);
  req.add_topics("audit-log");
  Quiet quiet;
  auto summary = engine_->trace(req, quiet, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto expected = testing::containing(*records_, testing::kDevice);
  std::erase_if(expected, [](const EventKey& k) { return std::get<0>(k) != "audit-log"; });
  EXPECT_EQ(found(*summary), expected);
  EXPECT_TRUE(summary->complete()) << summary->DebugString();
}

}  // namespace
}  // namespace telekern::tracer
