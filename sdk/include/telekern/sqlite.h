// A small SQLite helper for modules that keep data in an embedded database
// (the collector's default store, the monitor's history): RAII handles,
// WAL mode and a busy timeout on open, prepared statements with typed binds,
// transactions, and errors as absl::Status naming the statement and file.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace telekern::sqlite {

class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  ~Statement();

  // Parameters are 1-based, as in SQL ("?1").
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view text);
  Statement& bind_null(int index);
  // True while a row is available, false when done; errors name the SQL.
  absl::StatusOr<bool> step();
  // Steps to the end (for statements without rows).
  absl::Status run();
  // Ready to run again with new binds.
  void reset();

  int64_t column_int64(int index) const;
  double column_double(int index) const;
  std::string column_text(int index) const;
  bool column_is_null(int index) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* statement, std::string sql, std::string file);
  sqlite3_stmt* statement_ = nullptr;
  std::string sql_;
  std::string file_;
};

struct OpenOptions {
  bool wal = true;  // journal_mode=WAL, synchronous=NORMAL
  std::chrono::milliseconds busy_timeout{5000};
};

class Database {
 public:
  // Opens (creating) the file; ":memory:" for a private in-memory database.
  static absl::StatusOr<std::unique_ptr<Database>> open(const std::string& path,
                                                        OpenOptions options = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without results.
  absl::Status exec(std::string_view sql);
  absl::StatusOr<Statement> prepare(std::string_view sql);
  // BEGIN IMMEDIATE; body; COMMIT (ROLLBACK when body fails).
  absl::Status transaction(const std::function<absl::Status()>& body);
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  absl::Status error(std::string_view what) const;
  sqlite3* handle_;
  std::string path_;
};

}  // namespace telekern::sqlite
