// Many replicas starting at once: one applies under the lock, the others wait, find nothing to
// do, and exit 0. Nothing is applied twice.
#include <gtest/gtest.h>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

void write_set(const MigrationDir& dir, int n) {
  for (int i = 1; i <= n; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "%06d_t_%06d.up.sql", i, i);
    const auto t = "t_" + std::to_string(i);
    // Not idempotent on purpose: a second application would fail loudly.
    dir.write(name, "CREATE TABLE " + t +
                        " (id bigserial PRIMARY KEY, name text NOT NULL);\n"
                        "CREATE INDEX " +
                        t + "_name_idx ON " + t +
                        " (name);\n"
                        "INSERT INTO " +
                        t + " (name) VALUES ('once');\n");
  }
}

// Migration 1 fills a table; migration 2 indexes it with CREATE INDEX CONCURRENTLY, which waits
// for every transaction holding an older snapshot: a waiter that held one (as a waiter blocked
// in pg_advisory_lock does) would stall it forever.
void write_set_with_concurrent_index(const MigrationDir& dir, int n) {
  write_set(dir, n);
  dir.write("000001_t_000001.up.sql",
            "CREATE TABLE t_1 (id bigserial PRIMARY KEY, name text NOT NULL);\n"
            "INSERT INTO t_1 (name) VALUES ('once');\n"
            "CREATE TABLE big (id int, v text);\n"
            "INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 300000) g;\n");
  dir.write("000002_t_000002.up.sql",
            "-- stepwise:no-transaction\n"
            "CREATE INDEX CONCURRENTLY big_v_idx ON big (v);\n"
            "CREATE TABLE t_2 (id bigserial PRIMARY KEY, name text NOT NULL);\n");
}

void race(int processes, int migrations, const std::string& strategy = "auto",
          void (*write)(const MigrationDir&, int) = write_set) {
  TestDb db;
  MigrationDir dir;
  write(dir, migrations);
  std::vector<Process> racers;
  racers.reserve(static_cast<std::size_t>(processes));
  for (int i = 0; i < processes; ++i)
    racers.emplace_back(
        stepwise_cmd({"--database-url", db.url(), "--source", dir.path(), "--lock-strategy",
                      strategy, "up"}),
        std::map<std::string, std::string>{{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  int applied_by = 0;
  for (auto& p : racers) {
    const auto r = p.wait(std::chrono::seconds(180));
    EXPECT_EQ(r.exit_code, 0) << "signal " << r.signal << ", took " << r.took.count() << " ms\n"
                              << r.err;
    if (r.out.find("applied " + std::to_string(migrations)) != std::string::npos) ++applied_by;
  }
  // Every version applied exactly once, and every table holds exactly its one row.
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), migrations);
  EXPECT_EQ(
      db.count("SELECT count(DISTINCT version) FROM stepwise_log WHERE outcome = 'succeeded'"),
      migrations);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\\_%'"), migrations);
  EXPECT_EQ(db.count("SELECT count(*) FROM t_1"), 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), 0)
      << "an index build was left unfinished";
  EXPECT_EQ(applied_by, 1) << "exactly one racer should have applied the whole set";
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                     "(SELECT oid FROM pg_database WHERE datname = current_database())"),
            0);
  if (strategy == "lease") {
    EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log_lock"), 0) << "lease released";
  }
}

TEST(Concurrency, EightRacersOnAFreshDatabase) {
  REQUIRE_TEST_DATABASE();
  race(8, 30);
}

TEST(Concurrency, ThirtyTwoRacersWithAHundredMigrations) {
  REQUIRE_TEST_DATABASE();
  race(32, 100);
}

TEST(Concurrency, ThirtyTwoRacersWithTheLeaseStrategy) {
  REQUIRE_TEST_DATABASE();
  race(32, 100, "lease");
}

TEST(Concurrency, ThirtyTwoRacersWhileTheHolderBuildsAnIndexConcurrently) {
  REQUIRE_TEST_DATABASE();
  race(32, 20, "auto", write_set_with_concurrent_index);
}

TEST(Concurrency, ThirtyTwoLeaseRacersWhileTheHolderBuildsAnIndexConcurrently) {
  REQUIRE_TEST_DATABASE();
  race(32, 20, "lease", write_set_with_concurrent_index);
}

}  // namespace
}  // namespace stepwise::test
