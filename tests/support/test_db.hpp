#pragma once
// A fresh database per test on the server named by STEPWISE_TEST_DATABASE_URL, plus helpers to
// inspect it directly (libpqxx; never through stepwise) and to write migration folders.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"

namespace stepwise::test {

// The admin URL, or empty. Tests skip without it, unless STEPWISE_REQUIRE_DB=1 (CI) makes
// its absence a failure.
std::string admin_url();

class TestDb {
 public:
  TestDb();  // creates database sw_<random>
  ~TestDb();
  TestDb(const TestDb&) = delete;
  TestDb& operator=(const TestDb&) = delete;

  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  // Runs SQL on a new connection to this database; returns rows as text ("" for NULL).
  std::vector<std::vector<std::string>> query(const std::string& sql) const;
  std::string scalar(const std::string& sql) const;
  long long count(const std::string& sql) const { return std::stoll(scalar(sql)); }

  // The user schema as sorted text (tables, columns, constraints, indexes with validity, views,
  // types, functions), excluding stepwise's own tables: two databases with equal snapshots
  // have the same schema.
  [[nodiscard]] std::string snapshot() const;

  // Runs stepwise with --database-url this database.
  ProcessResult stepwise(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;

 private:
  std::string name_;
  std::string url_;
};

// A temporary migration folder.
class MigrationDir {
 public:
  MigrationDir();
  ~MigrationDir();
  MigrationDir(const MigrationDir&) = delete;
  MigrationDir& operator=(const MigrationDir&) = delete;
  void write(const std::string& name, const std::string& content) const;
  void remove(const std::string& name) const;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// Replaces the database name in a postgres:// URL.
std::string with_database(const std::string& url, const std::string& db);

}  // namespace stepwise::test

// Skips (or, with STEPWISE_REQUIRE_DB=1, fails) when there is no test server.
#define REQUIRE_TEST_DATABASE()                                                                 \
  do {                                                                                          \
    if (::stepwise::test::admin_url().empty()) {                                                \
      if (const char* r = std::getenv("STEPWISE_REQUIRE_DB"); r && std::string(r) == "1")       \
        FAIL() << "STEPWISE_TEST_DATABASE_URL is not set (run under scripts/with-postgres.sh)"; \
      GTEST_SKIP() << "STEPWISE_TEST_DATABASE_URL is not set";                                  \
    }                                                                                           \
  } while (0)
