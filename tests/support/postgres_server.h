// Starts a real PostgreSQL 15 server (Debian's postgresql-15): initdb into a
// temp dir, postgres on a free loopback port (as the `postgres` user when the
// test runs as root, since postgres refuses root), waits until it accepts
// connections, and stops it in the destructor. One per test binary.
#pragma once

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace telekern::testing {

class PostgresServer {
 public:
  PostgresServer();
  ~PostgresServer();

  bool ready() const { return ready_; }
  int port() const { return port_; }
  // A libpq connection string for database `postgres` as superuser `postgres`.
  std::string conninfo() const;
  // Creates a fresh database and returns its connection string.
  std::string create_database(const std::string& name) const;
  std::string log() const;
  const std::string& error() const { return error_; }

 private:
  TempDir dir_{"postgres"};
  int port_ = 0;
  std::unique_ptr<Process> process_;
  bool ready_ = false;
  std::string error_;
};

}  // namespace telekern::testing
