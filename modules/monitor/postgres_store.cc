// The PostgreSQL store (libpq): the same tables as the SQLite store, created
// and migrated on start. Samples go in as multi-row INSERT ... ON CONFLICT DO
// NOTHING statements inside one transaction per batch; a lost connection is
// re-established on the next call (PQreset) and the caller retries.
#include <libpq-fe.h>

#include <cstdio>
#include <memory>

#include "metric_catalog.h"
#include "monitor_store.h"
#include "telekern/proto_time.h"
#include "telekern/strings.h"

namespace telekern::monitor {
namespace {

struct ClearResult {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ClearResult>;
struct FinishConnection {
  void operator()(PGconn* connection) const { PQfinish(connection); }
};

int64_t millis(StoreTime time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}
int64_t millis(const google::protobuf::Timestamp& time) { return millis(from_timestamp(time)); }

const std::vector<std::string>& migrations() {
  static const std::vector<std::string> steps = {
      R"sql(
CREATE TABLE samples (
  node_id TEXT NOT NULL, ts_ms BIGINT NOT NULL, node_name TEXT NOT NULL,
  cpu DOUBLE PRECISION, memory DOUBLE PRECISION, disk_read DOUBLE PRECISION,
  disk_write DOUBLE PRECISION, network_rx DOUBLE PRECISION, network_tx DOUBLE PRECISION,
  load1 DOUBLE PRECISION, load5 DOUBLE PRECISION, load15 DOUBLE PRECISION,
  memory_used BIGINT, memory_total BIGINT, interval_ms BIGINT, detail BYTEA,
  PRIMARY KEY (node_id, ts_ms));
CREATE INDEX samples_by_time ON samples (ts_ms);
CREATE TABLE nodes (node_id TEXT PRIMARY KEY, last_seen_ms BIGINT, body BYTEA NOT NULL);
CREATE TABLE thresholds (id BIGSERIAL PRIMARY KEY, node_id TEXT, metric TEXT, body BYTEA NOT NULL);
CREATE TABLE alerts (id BIGINT PRIMARY KEY, node_id TEXT NOT NULL, state INTEGER NOT NULL,
  severity INTEGER NOT NULL, acknowledged INTEGER NOT NULL, fired_ms BIGINT, body BYTEA NOT NULL);
CREATE INDEX alerts_by_state ON alerts (state);
CREATE TABLE alert_events (seq BIGSERIAL PRIMARY KEY, alert_id BIGINT NOT NULL,
  node_id TEXT NOT NULL, ts_ms BIGINT NOT NULL, body BYTEA NOT NULL);
CREATE INDEX alert_events_by_alert ON alert_events (alert_id);
CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role INTEGER NOT NULL,
  created_ms BIGINT NOT NULL);
)sql",
      // The key gains the nanoseconds within the millisecond (see SampleTimeKey).
      R"sql(
ALTER TABLE samples ADD COLUMN ts_sub_ms_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE samples DROP CONSTRAINT samples_pkey;
ALTER TABLE samples ADD PRIMARY KEY (node_id, ts_ms, ts_sub_ms_ns);
)sql"};
  return steps;
}

// Parameters of one statement: text values, or binary ones (bytea).
class Params {
 public:
  Params& text(std::string value) {
    values_.push_back(std::move(value));
    formats_.push_back(0);
    nulls_.push_back(false);
    return *this;
  }
  Params& number(double value) { return text(std::to_string(value)); }
  Params& integer(int64_t value) { return text(std::to_string(value)); }
  Params& bytes(std::string value) {
    values_.push_back(std::move(value));
    formats_.push_back(1);
    nulls_.push_back(false);
    return *this;
  }
  Params& null() {
    values_.emplace_back();
    formats_.push_back(0);
    nulls_.push_back(true);
    return *this;
  }
  size_t size() const { return values_.size(); }
  void pointers(std::vector<const char*>& values, std::vector<int>& lengths) const {
    for (size_t i = 0; i < values_.size(); ++i) {
      values.push_back(nulls_[i] ? nullptr : values_[i].data());
      lengths.push_back(static_cast<int>(values_[i].size()));
    }
  }
  const std::vector<int>& formats() const { return formats_; }

 private:
  std::vector<std::string> values_;
  std::vector<int> formats_;
  std::vector<bool> nulls_;
};

// Doubles as text lose nothing with 17 significant digits.
std::string exact(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

class PostgresStore final : public MonitorStore {
 public:
  explicit PostgresStore(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  std::string kind() const override { return "postgresql"; }

  absl::Status connect() {
    connection_.reset(PQconnectdb(conninfo_.c_str()));
    if (PQstatus(connection_.get()) != CONNECTION_OK)
      return absl::UnavailableError(
          str_cat("PostgreSQL connection failed: ", PQerrorMessage(connection_.get()),
                  "; check backend.postgres_url and that the server runs"));
    return absl::OkStatus();
  }

  absl::Status migrate() override {
    if (auto s = exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        !s.ok())
      return s;
    auto version = query("SELECT COALESCE(MAX(version), 0) FROM schema_version", Params());
    if (!version.ok()) return version.status();
    int current = std::atoi(PQgetvalue(version->get(), 0, 0));
    const auto& steps = migrations();
    for (size_t i = static_cast<size_t>(current); i < steps.size(); ++i) {
      if (auto s = exec("BEGIN"); !s.ok()) return s;
      auto step = exec(steps[i]);
      if (step.ok()) step = exec(str_cat("INSERT INTO schema_version VALUES (", i + 1, ")"));
      if (!step.ok()) {
        (void)exec("ROLLBACK");
        return step;
      }
      if (auto s = exec("COMMIT"); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status insert_samples(const std::vector<v1::MetricSample>& samples) override {
    if (samples.empty()) return absl::OkStatus();
    if (auto s = exec("BEGIN"); !s.ok()) return s;
    constexpr size_t kRowsPerStatement = 500;
    for (size_t start = 0; start < samples.size(); start += kRowsPerStatement) {
      size_t end = std::min(samples.size(), start + kRowsPerStatement);
      std::string sql = "INSERT INTO samples VALUES ";
      Params params;
      for (size_t i = start; i < end; ++i) {
        const auto& s = samples[i];
        SampleTimeKey key = sample_time_key(s.time());
        sql += i == start ? "(" : ",(";
        for (int column = 0; column < 17; ++column)
          str_append(sql, column ? "," : "", "$", params.size() + column + 1);
        sql += ")";
        params.text(s.node_id())
            .integer(key.ms)
            .text(s.node_name())
            .text(exact(s.cpu_percent()))
            .text(exact(s.memory_percent()))
            .text(exact(s.disk_read_mbps()))
            .text(exact(s.disk_write_mbps()))
            .text(exact(s.network_rx_mbps()))
            .text(exact(s.network_tx_mbps()))
            .text(exact(s.load1()))
            .text(exact(s.load5()))
            .text(exact(s.load15()))
            .integer(static_cast<int64_t>(s.memory_used_bytes()))
            .integer(static_cast<int64_t>(s.memory_total_bytes()))
            .integer(to_milliseconds(s.interval()).count());
        if (s.cores_size() + s.network_devices_size() + s.disk_devices_size() > 0)
          params.bytes(sample_detail(s));
        else
          params.null();
        params.integer(key.sub_ms_ns);
      }
      sql += " ON CONFLICT DO NOTHING";
      if (auto result = query(sql, params); !result.ok()) {
        (void)exec("ROLLBACK");
        return result.status();
      }
    }
    return exec("COMMIT");
  }

  absl::Status scan_samples(const std::string& node_id, StoreTime from, StoreTime to,
                            const std::function<bool(const v1::MetricSample&)>& visit) override {
    // Read in pages through keyset pagination, so no range is held in memory.
    int64_t cursor = millis(from);
    std::string after_node;
    int64_t after_sub_ms_ns = 0;
    bool first = true;
    while (true) {
      std::string sql =
          "SELECT node_id, ts_ms, node_name, cpu, memory, disk_read, disk_write, network_rx, "
          "network_tx, load1, load5, load15, memory_used, memory_total, interval_ms, detail, "
          "ts_sub_ms_ns FROM samples WHERE ts_ms < $1 AND ";
      Params params;
      params.integer(millis(to));
      if (first) {
        sql += "ts_ms >= $2";
        params.integer(cursor);
      } else {
        sql += "(ts_ms, node_id, ts_sub_ms_ns) > ($2, $3, $4)";
        params.integer(cursor).text(after_node).integer(after_sub_ms_ns);
      }
      if (!node_id.empty()) {
        str_append(sql, " AND node_id = $", params.size() + 1);
        params.text(node_id);
      }
      sql += " ORDER BY ts_ms, node_id, ts_sub_ms_ns LIMIT 2000";
      auto result = query(sql, params);
      if (!result.ok()) return result.status();
      PGresult* r = result->get();
      int rows = PQntuples(r);
      for (int row = 0; row < rows; ++row) {
        auto text = [&](int column) { return std::string(PQgetvalue(r, row, column)); };
        auto real = [&](int column) { return std::atof(PQgetvalue(r, row, column)); };
        auto integer = [&](int column) { return std::atoll(PQgetvalue(r, row, column)); };
        v1::MetricSample s;
        if (!PQgetisnull(r, row, 15)) {
          size_t size = 0;
          unsigned char* raw = PQunescapeBytea(
              reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, 15)), &size);
          if (raw) {
            s.ParseFromArray(raw, static_cast<int>(size));
            PQfreemem(raw);
          }
        }
        s.set_node_id(text(0));
        *s.mutable_time() = sample_time(integer(1), integer(16));
        s.set_node_name(text(2));
        s.set_cpu_percent(real(3));
        s.set_memory_percent(real(4));
        s.set_disk_read_mbps(real(5));
        s.set_disk_write_mbps(real(6));
        s.set_network_rx_mbps(real(7));
        s.set_network_tx_mbps(real(8));
        s.set_load1(real(9));
        s.set_load5(real(10));
        s.set_load15(real(11));
        s.set_memory_used_bytes(integer(12));
        s.set_memory_total_bytes(integer(13));
        *s.mutable_interval() =
            google::protobuf::util::TimeUtil::MillisecondsToDuration(integer(14));
        fill_derived(s);
        cursor = integer(1);
        after_node = s.node_id();
        after_sub_ms_ns = integer(16);
        if (!visit(s)) return absl::OkStatus();
      }
      if (rows < 2000) return absl::OkStatus();
      first = false;
    }
  }

  absl::StatusOr<uint64_t> delete_samples_before(StoreTime cutoff) override {
    auto result = query("DELETE FROM samples WHERE ts_ms < $1", Params().integer(millis(cutoff)));
    if (!result.ok()) return result.status();
    return static_cast<uint64_t>(std::atoll(PQcmdTuples(result->get())));
  }

  absl::Status save_nodes(const std::vector<v1::Node>& nodes) override {
    if (nodes.empty()) return absl::OkStatus();
    if (auto s = exec("BEGIN"); !s.ok()) return s;
    for (const auto& node : nodes) {
      auto result = query(
          "INSERT INTO nodes VALUES ($1,$2,$3) ON CONFLICT (node_id) DO UPDATE SET "
          "last_seen_ms = EXCLUDED.last_seen_ms, body = EXCLUDED.body",
          Params()
              .text(node.node_id())
              .integer(millis(node.last_seen()))
              .bytes(node.SerializeAsString()));
      if (!result.ok()) {
        (void)exec("ROLLBACK");
        return result.status();
      }
    }
    return exec("COMMIT");
  }

  absl::StatusOr<std::vector<v1::Node>> load_nodes() override {
    return load_all<v1::Node>("SELECT body FROM nodes ORDER BY node_id", Params());
  }

  absl::StatusOr<uint64_t> save_threshold(const v1::Threshold& threshold) override {
    v1::Threshold copy = threshold;
    if (copy.id() == 0) {
      auto result = query(
          "INSERT INTO thresholds (node_id, metric, body) VALUES ($1,$2,'') "
          "RETURNING id",
          Params().text(copy.node_id()).text(copy.metric()));
      if (!result.ok()) return result.status();
      copy.set_id(std::strtoull(PQgetvalue(result->get(), 0, 0), nullptr, 10));
    }
    auto result = query(
        "INSERT INTO thresholds VALUES ($1,$2,$3,$4) ON CONFLICT (id) DO UPDATE SET "
        "node_id = EXCLUDED.node_id, metric = EXCLUDED.metric, body = EXCLUDED.body",
        Params()
            .integer(static_cast<int64_t>(copy.id()))
            .text(copy.node_id())
            .text(copy.metric())
            .bytes(copy.SerializeAsString()));
    if (!result.ok()) return result.status();
    return copy.id();
  }

  absl::Status delete_threshold(uint64_t id) override {
    return query("DELETE FROM thresholds WHERE id = $1", Params().integer(static_cast<int64_t>(id)))
        .status();
  }

  absl::StatusOr<std::vector<v1::Threshold>> load_thresholds() override {
    return load_all<v1::Threshold>("SELECT body FROM thresholds ORDER BY id", Params());
  }

  absl::Status save_alert(const v1::Alert& alert, const v1::AlertEvent& event) override {
    if (auto s = exec("BEGIN"); !s.ok()) return s;
    auto saved = query(
        "INSERT INTO alerts VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (id) DO UPDATE SET "
        "state = EXCLUDED.state, severity = EXCLUDED.severity, acknowledged = "
        "EXCLUDED.acknowledged, body = EXCLUDED.body",
        Params()
            .integer(static_cast<int64_t>(alert.id()))
            .text(alert.node_id())
            .integer(alert.state())
            .integer(alert.severity())
            .integer(alert.acknowledged() ? 1 : 0)
            .integer(millis(alert.fired_at()))
            .bytes(alert.SerializeAsString()));
    if (saved.ok())
      saved =
          query("INSERT INTO alert_events (alert_id, node_id, ts_ms, body) VALUES ($1,$2,$3,$4)",
                Params()
                    .integer(static_cast<int64_t>(event.alert_id()))
                    .text(event.node_id())
                    .integer(millis(event.time()))
                    .bytes(event.SerializeAsString()));
    if (!saved.ok()) {
      (void)exec("ROLLBACK");
      return saved.status();
    }
    return exec("COMMIT");
  }

  absl::StatusOr<std::vector<v1::Alert>> list_alerts(const AlertQuery& q) override {
    std::string sql = "SELECT body FROM alerts WHERE TRUE";
    Params params;
    if (!q.states.empty()) {
      sql += " AND state IN (";
      for (size_t i = 0; i < q.states.size(); ++i)
        str_append(sql, i ? "," : "", static_cast<int>(q.states[i]));
      sql += ")";
    }
    if (q.acknowledged) str_append(sql, " AND acknowledged = ", *q.acknowledged ? 1 : 0);
    if (q.severity != v1::SEVERITY_UNSPECIFIED)
      str_append(sql, " AND severity = ", static_cast<int>(q.severity));
    if (!q.node_id.empty()) {
      sql += " AND node_id = $1";
      params.text(q.node_id);
    }
    str_append(sql, " ORDER BY id DESC LIMIT ", q.limit ? q.limit : 500);
    return load_all<v1::Alert>(sql, params);
  }

  absl::StatusOr<uint64_t> max_alert_id() override {
    auto result = query("SELECT COALESCE(MAX(id), 0) FROM alerts", Params());
    if (!result.ok()) return result.status();
    return std::strtoull(PQgetvalue(result->get(), 0, 0), nullptr, 10);
  }

  absl::StatusOr<std::vector<v1::AlertEvent>> alert_events(uint64_t alert_id,
                                                           const std::string& node_id,
                                                           StoreTime from,
                                                           uint32_t limit) override {
    std::string sql = "SELECT body FROM alert_events WHERE ts_ms >= $1";
    Params params;
    params.integer(millis(from));
    if (alert_id) str_append(sql, " AND alert_id = ", alert_id);
    if (!node_id.empty()) {
      sql += " AND node_id = $2";
      params.text(node_id);
    }
    str_append(sql, " ORDER BY seq LIMIT ", limit ? limit : 1000);
    return load_all<v1::AlertEvent>(sql, params);
  }

  absl::Status save_user(const StoredUser& user) override {
    return query(
               "INSERT INTO users VALUES ($1,$2,$3,$4) ON CONFLICT (name) DO UPDATE SET "
               "password_hash = EXCLUDED.password_hash, role = EXCLUDED.role",
               Params()
                   .text(user.name)
                   .text(user.password_hash)
                   .integer(user.role)
                   .integer(user.created_ms))
        .status();
  }

  absl::Status delete_user(const std::string& name) override {
    auto result = query("DELETE FROM users WHERE name = $1", Params().text(name));
    if (!result.ok()) return result.status();
    if (std::string(PQcmdTuples(result->get())) == "0")
      return absl::NotFoundError("no user '" + name + "'");
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<StoredUser>> list_users() override {
    auto result =
        query("SELECT name, password_hash, role, created_ms FROM users ORDER BY name", Params());
    if (!result.ok()) return result.status();
    std::vector<StoredUser> users;
    for (int row = 0; row < PQntuples(result->get()); ++row)
      users.push_back({PQgetvalue(result->get(), row, 0), PQgetvalue(result->get(), row, 1),
                       std::atoi(PQgetvalue(result->get(), row, 2)),
                       std::atoll(PQgetvalue(result->get(), row, 3))});
    return users;
  }

 private:
  absl::Status ensure_connected() {
    if (connection_ && PQstatus(connection_.get()) == CONNECTION_OK) return absl::OkStatus();
    if (connection_) {
      PQreset(connection_.get());
      if (PQstatus(connection_.get()) == CONNECTION_OK) return absl::OkStatus();
      return absl::UnavailableError(
          str_cat("PostgreSQL connection lost: ", PQerrorMessage(connection_.get())));
    }
    return connect();
  }

  // Statements without parameters (several may be separated by ';').
  absl::Status exec(const std::string& sql) {
    if (auto s = ensure_connected(); !s.ok()) return s;
    Result result(PQexec(connection_.get(), sql.c_str()));
    auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      return absl::InternalError(str_cat("PostgreSQL: ", trim(PQresultErrorMessage(result.get())),
                                         " (in: ", sql.substr(0, 100), ")"));
    return absl::OkStatus();
  }

  // Runs one statement; binary results only for single bytea columns.
  absl::StatusOr<Result> query(const std::string& sql, const Params& params,
                               bool binary_results = false) {
    if (auto s = ensure_connected(); !s.ok()) return s;
    std::vector<const char*> values;
    std::vector<int> lengths;
    params.pointers(values, lengths);
    Result result(PQexecParams(connection_.get(), sql.c_str(), static_cast<int>(params.size()),
                               nullptr, values.data(), lengths.data(), params.formats().data(),
                               binary_results ? 1 : 0));
    auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      std::string message = PQresultErrorMessage(result.get());
      return absl::InternalError(
          str_cat("PostgreSQL: ", trim(message), " (in: ", sql.substr(0, 100), ")"));
    }
    return result;
  }

  template <typename Message>
  absl::StatusOr<std::vector<Message>> load_all(const std::string& sql, const Params& params) {
    auto result = query(sql, params, /*binary_results=*/true);
    if (!result.ok()) return result.status();
    std::vector<Message> out;
    for (int row = 0; row < PQntuples(result->get()); ++row) {
      Message message;
      if (!message.ParseFromArray(PQgetvalue(result->get(), row, 0),
                                  PQgetlength(result->get(), row, 0)))
        return absl::DataLossError("a stored row does not parse; the database is damaged");
      out.push_back(std::move(message));
    }
    return out;
  }

  std::string conninfo_;
  std::unique_ptr<PGconn, FinishConnection> connection_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MonitorStore>> open_postgres_store(const std::string& conninfo) {
  auto store = std::make_unique<PostgresStore>(conninfo);
  if (auto status = store->connect(); !status.ok()) return status;
  if (auto status = store->migrate(); !status.ok()) return status;
  return store;
}

}  // namespace telekern::monitor
