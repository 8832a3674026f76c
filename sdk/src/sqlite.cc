#include "telekern/sqlite.h"

#include <sqlite3.h>

namespace telekern::sqlite {
namespace {

absl::Status status_of(int code, std::string_view what, std::string_view message,
                       const std::string& file) {
  std::string text = std::string(what) + " on " + file + ": " + std::string(message);
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(text);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(text + "; free disk space");
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return absl::InvalidArgumentError(text);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(text);
    default:
      return absl::InternalError(text);
  }
}

}  // namespace

Statement::Statement(sqlite3_stmt* statement, std::string sql, std::string file)
    : statement_(statement), sql_(std::move(sql)), file_(std::move(file)) {}

Statement::Statement(Statement&& other) noexcept
    : statement_(other.statement_), sql_(std::move(other.sql_)), file_(std::move(other.file_)) {
  other.statement_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (statement_) sqlite3_finalize(statement_);
    statement_ = other.statement_;
    sql_ = std::move(other.sql_);
    file_ = std::move(other.file_);
    other.statement_ = nullptr;
  }
  return *this;
}

Statement::~Statement() {
  if (statement_) sqlite3_finalize(statement_);
}

Statement& Statement::bind(int index, int64_t value) {
  sqlite3_bind_int64(statement_, index, value);
  return *this;
}
Statement& Statement::bind(int index, double value) {
  sqlite3_bind_double(statement_, index, value);
  return *this;
}
Statement& Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(statement_, index);
  return *this;
}

absl::StatusOr<bool> Statement::step() {
  int code = sqlite3_step(statement_);
  if (code == SQLITE_ROW) return true;
  if (code == SQLITE_DONE) return false;
  return status_of(code, "'" + sql_.substr(0, 80) + "'",
                   sqlite3_errmsg(sqlite3_db_handle(statement_)), file_);
}

absl::Status Statement::run() {
  while (true) {
    auto row = step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

void Statement::reset() {
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
}

int64_t Statement::column_int64(int index) const { return sqlite3_column_int64(statement_, index); }
double Statement::column_double(int index) const {
  return sqlite3_column_double(statement_, index);
}
std::string Statement::column_text(int index) const {
  const auto* text = sqlite3_column_text(statement_, index);
  return text ? std::string(reinterpret_cast<const char*>(text),
                            static_cast<size_t>(sqlite3_column_bytes(statement_, index)))
              : std::string();
}
bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(statement_, index) == SQLITE_NULL;
}

absl::StatusOr<std::unique_ptr<Database>> Database::open(const std::string& path,
                                                         OpenOptions options) {
  sqlite3* handle = nullptr;
  int code =
      sqlite3_open_v2(path.c_str(), &handle,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (code != SQLITE_OK) {
    std::string message = handle ? sqlite3_errmsg(handle) : "out of memory";
    sqlite3_close(handle);
    return status_of(code, "open", message + "; check the directory exists and is writable", path);
  }
  std::unique_ptr<Database> database(new Database(handle, path));
  sqlite3_busy_timeout(handle, static_cast<int>(options.busy_timeout.count()));
  if (options.wal) {
    auto wal = database->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    if (!wal.ok()) return wal;
  }
  return database;
}

Database::~Database() { sqlite3_close_v2(handle_); }

absl::Status Database::error(std::string_view what) const {
  return status_of(sqlite3_extended_errcode(handle_), what, sqlite3_errmsg(handle_), path_);
}

absl::Status Database::exec(std::string_view sql) {
  std::string text(sql);
  char* message = nullptr;
  int code = sqlite3_exec(handle_, text.c_str(), nullptr, nullptr, &message);
  if (code == SQLITE_OK) return absl::OkStatus();
  std::string reason = message ? message : "error";
  sqlite3_free(message);
  return status_of(code, "'" + text.substr(0, 80) + "'", reason, path_);
}

absl::StatusOr<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* statement = nullptr;
  int code =
      sqlite3_prepare_v2(handle_, sql.data(), static_cast<int>(sql.size()), &statement, nullptr);
  if (code != SQLITE_OK) return error("prepare '" + std::string(sql.substr(0, 80)) + "'");
  return Statement(statement, std::string(sql), path_);
}

absl::Status Database::transaction(const std::function<absl::Status()>& body) {
  auto begun = exec("BEGIN IMMEDIATE");
  if (!begun.ok()) return begun;
  auto status = body();
  if (!status.ok()) {
    exec("ROLLBACK").IgnoreError();
    return status;
  }
  auto committed = exec("COMMIT");
  if (!committed.ok()) exec("ROLLBACK").IgnoreError();
  return committed;
}

}  // namespace telekern::sqlite
