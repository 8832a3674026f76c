// The SQLite store: one file in the module's data directory, WAL journal.
// Samples are one row each (metrics as columns, cores and devices as a
// serialized blob); nodes, thresholds and alerts keep their proto as a blob
// next to the columns queries filter on.
#include <absl/strings/str_cat.h>

#include "metric_catalog.h"
#include "monitor_store.h"
#include "telekern/proto_time.h"
#include "telekern/sqlite.h"
#include "telekern/strings.h"

namespace telekern::monitor {

std::string sample_detail(const v1::MetricSample& sample) {
  v1::MetricSample detail;
  *detail.mutable_cores() = sample.cores();
  *detail.mutable_network_devices() = sample.network_devices();
  *detail.mutable_disk_devices() = sample.disk_devices();
  return detail.SerializeAsString();
}

namespace {

int64_t millis(StoreTime time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}
int64_t millis(const google::protobuf::Timestamp& time) { return millis(from_timestamp(time)); }

// Each entry upgrades the schema by one version.
const std::vector<std::string>& migrations() {
  static const std::vector<std::string> steps = {
      R"sql(
CREATE TABLE samples (
  node_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, node_name TEXT NOT NULL,
  cpu REAL, memory REAL, disk_read REAL, disk_write REAL, network_rx REAL, network_tx REAL,
  load1 REAL, load5 REAL, load15 REAL, memory_used INTEGER, memory_total INTEGER,
  interval_ms INTEGER, detail BLOB,
  PRIMARY KEY (node_id, ts_ms)) WITHOUT ROWID;
CREATE INDEX samples_by_time ON samples (ts_ms);
CREATE TABLE nodes (node_id TEXT PRIMARY KEY, last_seen_ms INTEGER, body BLOB NOT NULL);
CREATE TABLE thresholds (id INTEGER PRIMARY KEY AUTOINCREMENT, node_id TEXT, metric TEXT,
  body BLOB NOT NULL);
CREATE TABLE alerts (id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, state INTEGER NOT NULL,
  severity INTEGER NOT NULL, acknowledged INTEGER NOT NULL, fired_ms INTEGER, body BLOB NOT NULL);
CREATE INDEX alerts_by_state ON alerts (state);
CREATE TABLE alert_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL,
  node_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX alert_events_by_alert ON alert_events (alert_id);
CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role INTEGER NOT NULL,
  created_ms INTEGER NOT NULL);
)sql",
      // Samples clustered by time: a batch (every node at about one time)
      // appends to a few pages instead of dirtying one page per node, and
      // the time index goes (the key is it). The key gains the nanoseconds
      // within the millisecond (see SampleTimeKey), as the last column.
      R"sql(
CREATE TABLE samples_by_time_key (
  node_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, node_name TEXT NOT NULL,
  cpu REAL, memory REAL, disk_read REAL, disk_write REAL, network_rx REAL, network_tx REAL,
  load1 REAL, load5 REAL, load15 REAL, memory_used INTEGER, memory_total INTEGER,
  interval_ms INTEGER, detail BLOB, ts_sub_ms_ns INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (ts_ms, node_id, ts_sub_ms_ns)) WITHOUT ROWID;
INSERT INTO samples_by_time_key SELECT *, 0 FROM samples;
DROP TABLE samples;
ALTER TABLE samples_by_time_key RENAME TO samples;
CREATE INDEX samples_by_node ON samples (node_id, ts_ms, ts_sub_ms_ns);
)sql"};
  return steps;
}

template <typename Message>
absl::StatusOr<Message> parse(const std::string& bytes, std::string_view what) {
  Message message;
  if (!message.ParseFromString(bytes))
    return absl::DataLossError(str_cat("stored ", what,
                                       " does not parse; the database is "
                                       "damaged or from a newer version"));
  return message;
}

class SqliteStore final : public MonitorStore {
 public:
  explicit SqliteStore(std::unique_ptr<sqlite::Database> database) : db_(std::move(database)) {}
  std::string kind() const override { return "sqlite"; }

  absl::Status migrate() override {
    if (auto s = db_->exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        !s.ok())
      return s;
    int64_t version = 0;
    {  // finalized before the steps run: DROP TABLE fails while a read is open
      auto read = db_->prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
      if (!read.ok()) return read.status();
      auto row = read->step();
      if (!row.ok()) return row.status();
      version = read->column_int64(0);
    }
    const auto& steps = migrations();
    for (size_t i = static_cast<size_t>(version); i < steps.size(); ++i) {
      sqlite::Transaction transaction(*db_);
      if (!transaction.begun().ok()) return transaction.begun();
      if (auto s = db_->exec(steps[i]); !s.ok()) return s;
      if (auto s = db_->exec(str_cat("INSERT INTO schema_version VALUES (", i + 1, ")")); !s.ok())
        return s;
      if (auto s = transaction.commit(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status insert_samples(const std::vector<v1::MetricSample>& samples) override {
    if (samples.empty()) return absl::OkStatus();
    if (!insert_sample_) {
      auto statement =
          db_->prepare("INSERT OR IGNORE INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      if (!statement.ok()) return statement.status();
      insert_sample_ = std::make_unique<sqlite::Statement>(std::move(*statement));
    }
    sqlite::Transaction transaction(*db_);
    if (!transaction.begun().ok()) return transaction.begun();
    auto& st = *insert_sample_;
    for (const auto& s : samples) {
      st.reset();
      SampleTimeKey key = sample_time_key(s.time());
      st.bind(1, std::string_view(s.node_id()))
          .bind(2, key.ms)
          .bind(3, std::string_view(s.node_name()))
          .bind(4, s.cpu_percent())
          .bind(5, s.memory_percent())
          .bind(6, s.disk_read_mbps())
          .bind(7, s.disk_write_mbps())
          .bind(8, s.network_rx_mbps())
          .bind(9, s.network_tx_mbps())
          .bind(10, s.load1())
          .bind(11, s.load5())
          .bind(12, s.load15())
          .bind(13, static_cast<int64_t>(s.memory_used_bytes()))
          .bind(14, static_cast<int64_t>(s.memory_total_bytes()))
          .bind(15, static_cast<int64_t>(to_milliseconds(s.interval()).count()));
      if (s.cores_size() + s.network_devices_size() + s.disk_devices_size() > 0)
        st.bind_blob(16, sample_detail(s));
      else
        st.bind_null(16);
      st.bind(17, key.sub_ms_ns);
      if (auto status = st.run(); !status.ok()) return status;
    }
    return transaction.commit();
  }

  absl::Status scan_samples(const std::string& node_id, StoreTime from, StoreTime to,
                            const std::function<bool(const v1::MetricSample&)>& visit) override {
    std::string sql =
        "SELECT node_id, ts_ms, node_name, cpu, memory, disk_read, disk_write, network_rx, "
        "network_tx, load1, load5, load15, memory_used, memory_total, interval_ms, detail, "
        "ts_sub_ms_ns FROM samples WHERE ts_ms >= ? AND ts_ms < ?";
    sql += node_id.empty() ? " ORDER BY ts_ms, node_id, ts_sub_ms_ns"
                           : " AND node_id = ? ORDER BY ts_ms, ts_sub_ms_ns";
    auto st = db_->prepare(sql);
    if (!st.ok()) return st.status();
    st->bind(1, millis(from)).bind(2, millis(to));
    if (!node_id.empty()) st->bind(3, std::string_view(node_id));
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      v1::MetricSample s;
      if (!st->column_is_null(15)) s.ParseFromString(st->column_text(15));
      s.set_node_id(st->column_text(0));
      *s.mutable_time() = sample_time(st->column_int64(1), st->column_int64(16));
      s.set_node_name(st->column_text(2));
      s.set_cpu_percent(st->column_double(3));
      s.set_memory_percent(st->column_double(4));
      s.set_disk_read_mbps(st->column_double(5));
      s.set_disk_write_mbps(st->column_double(6));
      s.set_network_rx_mbps(st->column_double(7));
      s.set_network_tx_mbps(st->column_double(8));
      s.set_load1(st->column_double(9));
      s.set_load5(st->column_double(10));
      s.set_load15(st->column_double(11));
      s.set_memory_used_bytes(st->column_int64(12));
      s.set_memory_total_bytes(st->column_int64(13));
      int64_t interval_ms = st->column_int64(14);
      s.mutable_interval()->set_seconds(interval_ms / 1000);
      s.mutable_interval()->set_nanos(static_cast<int32_t>(interval_ms % 1000) * 1000000);
      fill_derived(s);
      if (!visit(s)) return absl::OkStatus();
    }
  }

  absl::StatusOr<uint64_t> delete_samples_before(StoreTime cutoff) override {
    auto st = db_->prepare("DELETE FROM samples WHERE ts_ms < ?");
    if (!st.ok()) return st.status();
    st->bind(1, millis(cutoff));
    if (auto s = st->run(); !s.ok()) return s;
    return static_cast<uint64_t>(st->changes());
  }

  absl::Status save_nodes(const std::vector<v1::Node>& nodes) override {
    if (nodes.empty()) return absl::OkStatus();
    sqlite::Transaction transaction(*db_);
    if (!transaction.begun().ok()) return transaction.begun();
    auto st = db_->prepare("INSERT OR REPLACE INTO nodes VALUES (?,?,?)");
    if (!st.ok()) return st.status();
    for (const auto& node : nodes) {
      st->reset();
      st->bind(1, std::string_view(node.node_id()))
          .bind(2, millis(node.last_seen()))
          .bind_blob(3, node.SerializeAsString());
      if (auto s = st->run(); !s.ok()) return s;
    }
    return transaction.commit();
  }

  absl::StatusOr<std::vector<v1::Node>> load_nodes() override {
    return load_all<v1::Node>("SELECT body FROM nodes ORDER BY node_id", "node");
  }

  absl::StatusOr<uint64_t> save_threshold(const v1::Threshold& threshold) override {
    v1::Threshold copy = threshold;
    if (copy.id() == 0) {
      auto st = db_->prepare("INSERT INTO thresholds (node_id, metric, body) VALUES (?,?,x'')");
      if (!st.ok()) return st.status();
      st->bind(1, std::string_view(copy.node_id())).bind(2, std::string_view(copy.metric()));
      if (auto s = st->run(); !s.ok()) return s;
      copy.set_id(static_cast<uint64_t>(db_->last_insert_id()));
    }
    auto st = db_->prepare("INSERT OR REPLACE INTO thresholds VALUES (?,?,?,?)");
    if (!st.ok()) return st.status();
    st->bind(1, static_cast<int64_t>(copy.id()))
        .bind(2, std::string_view(copy.node_id()))
        .bind(3, std::string_view(copy.metric()))
        .bind_blob(4, copy.SerializeAsString());
    if (auto s = st->run(); !s.ok()) return s;
    return copy.id();
  }

  absl::Status delete_threshold(uint64_t id) override {
    auto st = db_->prepare("DELETE FROM thresholds WHERE id = ?");
    if (!st.ok()) return st.status();
    st->bind(1, static_cast<int64_t>(id));
    return st->run();
  }

  absl::StatusOr<std::vector<v1::Threshold>> load_thresholds() override {
    return load_all<v1::Threshold>("SELECT body FROM thresholds ORDER BY id", "threshold");
  }

  absl::Status save_alert(const v1::Alert& alert, const v1::AlertEvent& event) override {
    sqlite::Transaction transaction(*db_);
    if (!transaction.begun().ok()) return transaction.begun();
    auto st = db_->prepare("INSERT OR REPLACE INTO alerts VALUES (?,?,?,?,?,?,?)");
    if (!st.ok()) return st.status();
    st->bind(1, static_cast<int64_t>(alert.id()))
        .bind(2, std::string_view(alert.node_id()))
        .bind(3, static_cast<int64_t>(alert.state()))
        .bind(4, static_cast<int64_t>(alert.severity()))
        .bind(5, static_cast<int64_t>(alert.acknowledged() ? 1 : 0))
        .bind(6, millis(alert.fired_at()))
        .bind_blob(7, alert.SerializeAsString());
    if (auto s = st->run(); !s.ok()) return s;
    auto ev =
        db_->prepare("INSERT INTO alert_events (alert_id, node_id, ts_ms, body) VALUES (?,?,?,?)");
    if (!ev.ok()) return ev.status();
    ev->bind(1, static_cast<int64_t>(event.alert_id()))
        .bind(2, std::string_view(event.node_id()))
        .bind(3, millis(event.time()))
        .bind_blob(4, event.SerializeAsString());
    if (auto s = ev->run(); !s.ok()) return s;
    return transaction.commit();
  }

  absl::StatusOr<std::vector<v1::Alert>> list_alerts(const AlertQuery& query) override {
    std::string sql = "SELECT body FROM alerts WHERE 1=1";
    if (!query.states.empty()) {
      sql += " AND state IN (";
      for (size_t i = 0; i < query.states.size(); ++i)
        str_append(sql, i ? "," : "", static_cast<int>(query.states[i]));
      sql += ")";
    }
    if (query.acknowledged) str_append(sql, " AND acknowledged = ", *query.acknowledged ? 1 : 0);
    if (query.severity != v1::SEVERITY_UNSPECIFIED)
      str_append(sql, " AND severity = ", static_cast<int>(query.severity));
    if (!query.node_id.empty()) sql += " AND node_id = ?";
    str_append(sql, " ORDER BY id DESC LIMIT ", query.limit ? query.limit : 500);
    auto st = db_->prepare(sql);
    if (!st.ok()) return st.status();
    if (!query.node_id.empty()) st->bind(1, std::string_view(query.node_id));
    return collect<v1::Alert>(*st, "alert");
  }

  absl::StatusOr<uint64_t> max_alert_id() override {
    auto st = db_->prepare("SELECT COALESCE(MAX(id), 0) FROM alerts");
    if (!st.ok()) return st.status();
    auto row = st->step();
    if (!row.ok()) return row.status();
    return static_cast<uint64_t>(st->column_int64(0));
  }

  absl::StatusOr<std::vector<v1::AlertEvent>> alert_events(uint64_t alert_id,
                                                           const std::string& node_id,
                                                           StoreTime from,
                                                           uint32_t limit) override {
    std::string sql = "SELECT body FROM alert_events WHERE ts_ms >= ?";
    if (alert_id) str_append(sql, " AND alert_id = ", alert_id);
    if (!node_id.empty()) sql += " AND node_id = ?";
    str_append(sql, " ORDER BY seq LIMIT ", limit ? limit : 1000);
    auto st = db_->prepare(sql);
    if (!st.ok()) return st.status();
    st->bind(1, millis(from));
    if (!node_id.empty()) st->bind(2, std::string_view(node_id));
    return collect<v1::AlertEvent>(*st, "alert event");
  }

  absl::Status save_user(const StoredUser& user) override {
    auto st = db_->prepare("INSERT OR REPLACE INTO users VALUES (?,?,?,?)");
    if (!st.ok()) return st.status();
    st->bind(1, std::string_view(user.name))
        .bind(2, std::string_view(user.password_hash))
        .bind(3, static_cast<int64_t>(user.role))
        .bind(4, user.created_ms);
    return st->run();
  }

  absl::Status delete_user(const std::string& name) override {
    auto st = db_->prepare("DELETE FROM users WHERE name = ?");
    if (!st.ok()) return st.status();
    st->bind(1, std::string_view(name));
    if (auto s = st->run(); !s.ok()) return s;
    if (st->changes() == 0) return absl::NotFoundError("no user '" + name + "'");
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<StoredUser>> list_users() override {
    auto st = db_->prepare("SELECT name, password_hash, role, created_ms FROM users ORDER BY name");
    if (!st.ok()) return st.status();
    std::vector<StoredUser> users;
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.status();
      if (!*row) return users;
      users.push_back({st->column_text(0), st->column_text(1),
                       static_cast<int>(st->column_int64(2)), st->column_int64(3)});
    }
  }

 private:
  template <typename Message>
  absl::StatusOr<std::vector<Message>> collect(sqlite::Statement& st, std::string_view what) {
    std::vector<Message> out;
    while (true) {
      auto row = st.step();
      if (!row.ok()) return row.status();
      if (!*row) return out;
      auto message = parse<Message>(st.column_text(0), what);
      if (!message.ok()) return message.status();
      out.push_back(std::move(*message));
    }
  }
  template <typename Message>
  absl::StatusOr<std::vector<Message>> load_all(std::string_view sql, std::string_view what) {
    auto st = db_->prepare(sql);
    if (!st.ok()) return st.status();
    return collect<Message>(*st, what);
  }

  std::unique_ptr<sqlite::Database> db_;
  std::unique_ptr<sqlite::Statement> insert_sample_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MonitorStore>> open_sqlite_store(const std::string& path) {
  auto database = sqlite::Database::open(path);
  if (!database.ok()) return database.status();
  // A 32 MB page cache (SQLite's default is 2 MB) keeps the node index's
  // pages, which every batch touches one per node, in memory; a checkpoint
  // every 64 MB of WAL instead of every 4 MB writes each such page back (and
  // syncs) once per many batches instead of about once per batch. The WAL
  // file is cut back to 64 MB after a checkpoint.
  if (auto status =
          (*database)->exec("PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 16384; "
                            "PRAGMA journal_size_limit = 67108864");
      !status.ok())
    return status;
  auto store = std::make_unique<SqliteStore>(std::move(*database));
  if (auto status = store->migrate(); !status.ok()) return status;
  return store;
}

}  // namespace telekern::monitor
