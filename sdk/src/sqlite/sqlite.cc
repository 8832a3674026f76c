#include "telekern/sqlite.h"

#include <sqlite3.h>

namespace telekern::sqlite {
namespace {

absl::Status error(sqlite3* database, std::string_view what, std::string_view sql) {
  std::string message = std::string(what) + ": " +
                        (database ? sqlite3_errmsg(database) : "out of memory");
  if (!sql.empty()) message += " (in: " + std::string(sql.substr(0, 120)) + ")";
  return absl::InternalError(message);
}

}  // namespace

void Statement::Finalize::operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
void Database::Close::operator()(sqlite3* database) const { sqlite3_close_v2(database); }

Statement::Statement(sqlite3* database, sqlite3_stmt* statement, std::string sql)
    : database_(database), statement_(statement), sql_(std::move(sql)) {}

Statement& Statement::bind(int index, int64_t value) {
  if (sqlite3_bind_int64(statement_.get(), index, value) != SQLITE_OK && bind_error_.ok())
    bind_error_ = error(database_, "bind", sql_);
  return *this;
}
Statement& Statement::bind(int index, double value) {
  if (sqlite3_bind_double(statement_.get(), index, value) != SQLITE_OK && bind_error_.ok())
    bind_error_ = error(database_, "bind", sql_);
  return *this;
}
Statement& Statement::bind(int index, std::string_view text) {
  if (sqlite3_bind_text(statement_.get(), index, text.data(), static_cast<int>(text.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK &&
      bind_error_.ok())
    bind_error_ = error(database_, "bind", sql_);
  return *this;
}
Statement& Statement::bind_blob(int index, std::string_view bytes) {
  if (sqlite3_bind_blob(statement_.get(), index, bytes.data(), static_cast<int>(bytes.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK &&
      bind_error_.ok())
    bind_error_ = error(database_, "bind", sql_);
  return *this;
}
Statement& Statement::bind_null(int index) {
  if (sqlite3_bind_null(statement_.get(), index) != SQLITE_OK && bind_error_.ok())
    bind_error_ = error(database_, "bind", sql_);
  return *this;
}

absl::StatusOr<bool> Statement::step() {
  if (!bind_error_.ok()) return bind_error_;
  int rc = sqlite3_step(statement_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return error(database_, "step", sql_);
}

absl::Status Statement::run() {
  while (true) {
    auto row = step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

void Statement::reset() {
  sqlite3_reset(statement_.get());
  sqlite3_clear_bindings(statement_.get());
  bind_error_ = absl::OkStatus();
}

int64_t Statement::column_int(int index) const {
  return sqlite3_column_int64(statement_.get(), index);
}
double Statement::column_double(int index) const {
  return sqlite3_column_double(statement_.get(), index);
}
std::string Statement::column_text(int index) const {
  const void* data = sqlite3_column_blob(statement_.get(), index);
  int size = sqlite3_column_bytes(statement_.get(), index);
  return data ? std::string(static_cast<const char*>(data), size) : std::string();
}
bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(statement_.get(), index) == SQLITE_NULL;
}
int64_t Statement::changes() const { return sqlite3_changes64(database_); }

absl::StatusOr<Database> Database::open(const std::filesystem::path& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  Database database;
  database.database_.reset(raw);
  database.path_ = path.string();
  if (rc != SQLITE_OK) return error(raw, "open " + path.string(), "");
  sqlite3_busy_timeout(raw, 5000);
  auto status = database.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  if (!status.ok()) return status;
  return database;
}

absl::Status Database::exec(std::string_view sql) {
  std::string text(sql);
  char* message = nullptr;
  if (sqlite3_exec(database_.get(), text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string why = message ? message : "unknown error";
    sqlite3_free(message);
    return absl::InternalError("sqlite " + path_ + ": " + why + " (in: " + text.substr(0, 120) +
                               ")");
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(database_.get(), sql.data(), static_cast<int>(sql.size()), &raw,
                         nullptr) != SQLITE_OK)
    return error(database_.get(), "prepare", sql);
  return Statement(database_.get(), raw, std::string(sql));
}

int64_t Database::last_insert_id() const { return sqlite3_last_insert_rowid(database_.get()); }

Transaction::Transaction(Database& database) : database_(database) {
  begun_ = database_.exec("BEGIN IMMEDIATE");
  done_ = !begun_.ok();
}

Transaction::~Transaction() {
  if (!done_) (void)database_.exec("ROLLBACK");
}

absl::Status Transaction::commit() {
  if (!begun_.ok()) return begun_;
  auto status = database_.exec("COMMIT");
  if (status.ok()) done_ = true;
  return status;
}

}  // namespace telekern::sqlite
