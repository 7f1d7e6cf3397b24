// kill -9 at random instants: after each kill the database is consistent (every applied step has
// exactly its log row), the next plain `up` carries on, and the end state equals a clean run's.
// STEPWISE_FAULT_KILLS sets the number of kills (default 25; bench/soak.sh uses more).
#include <gtest/gtest.h>
#include <signal.h>

#include <random>
#include <thread>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

using namespace std::chrono_literals;

int kills_wanted() {
  const char* k = std::getenv("STEPWISE_FAULT_KILLS");
  return k ? std::max(1, std::atoi(k)) : 25;
}

// The peers' benchmark set: each step creates one table and one index (not idempotent).
void write_generated(const MigrationDir& dir, int n) {
  for (int i = 1; i <= n; ++i) {
    char v[16];
    std::snprintf(v, sizeof v, "%06d", i);
    dir.write(std::string(v) + "_t_" + v + ".up.sql",
              std::string("CREATE TABLE t_") + v +
                  " (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\n"
                  "CREATE INDEX t_" + v + "_name_idx ON t_" + v + " (name);\n");
  }
}

// Steps that build concurrent indexes on a table with data, between transactional steps.
void write_index_set(const MigrationDir& dir, int n) {
  dir.write("000001_big.up.sql",
            "CREATE TABLE big (id bigint PRIMARY KEY, a int, b int, c text);\n"
            "INSERT INTO big SELECT g, g % 97, g % 89, md5(g::text) FROM generate_series(1, 60000) g;\n");
  for (int i = 2; i <= n; ++i) {
    char v[16];
    std::snprintf(v, sizeof v, "%06d", i);
    if (i % 2 == 0)
      dir.write(std::string(v) + "_idx.up.sql",
                std::string("-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY big_idx_") + v +
                    " ON big ((a + " + std::to_string(i) + "), b);\n");
    else
      dir.write(std::string(v) + "_col.up.sql",
                std::string("ALTER TABLE big ADD COLUMN c_") + v + " int;\nCREATE TABLE side_" + v + " (x int);\n");
  }
}

// Every applied version has exactly one succeeded up row and its objects; nothing else exists.
void expect_consistent(const TestDb& db, const std::string& object_of_version_sql, const std::string& when) {
  if (db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'stepwise_log'") == 0) return;
  EXPECT_EQ(db.count("SELECT count(*) FROM (SELECT version FROM stepwise_log WHERE outcome = 'succeeded'"
                     " GROUP BY version HAVING count(*) > 1) d"),
            0)
      << when << ": a version applied twice";
  EXPECT_EQ(db.count(object_of_version_sql), 0) << when << ": log and schema disagree";
}

struct FaultCase {
  const char* name;
  int migrations;
  bool index_set;
  const char* strategy;
};

class KillNine : public ::testing::TestWithParam<FaultCase> {};

TEST_P(KillNine, RandomKillsThenAPlainUpFinishesExactlyOnce) {
  REQUIRE_TEST_DATABASE();
  const auto& fc = GetParam();
  MigrationDir dir;
  if (fc.index_set)
    write_index_set(dir, fc.migrations);
  else
    write_generated(dir, fc.migrations);
  // Schema objects that disagree with the log (either way).
  const std::string disagree =
      fc.index_set
          ? "SELECT count(*) FROM generate_series(2, " + std::to_string(fc.migrations) +
                ") v WHERE (EXISTS (SELECT 1 FROM stepwise_log WHERE version = v AND outcome = 'succeeded'))"
                " <> (to_regclass(CASE WHEN v % 2 = 0 THEN 'big_idx_' ELSE 'side_' END || lpad(v::text, 6, '0'))"
                " IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM stepwise_log WHERE version = v AND outcome <> 'succeeded')"
          : "SELECT count(*) FROM generate_series(1, " + std::to_string(fc.migrations) +
                ") v WHERE (EXISTS (SELECT 1 FROM stepwise_log WHERE version = v AND outcome = 'succeeded'))"
                " <> (to_regclass('t_' || lpad(v::text, 6, '0')) IS NOT NULL)";

  TestDb db;
  std::mt19937 rng(std::random_device{}());
  const int kills = kills_wanted();
  int survived = 0;
  const std::vector<std::string> args = {"--database-url", db.url(), "--source", dir.path(), "--lock-strategy",
                                         fc.strategy, "--lease-ttl", "2s", "up"};
  for (int k = 0; k < kills; ++k) {
    Process p(stepwise_cmd(args), {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
    // Past start-up, anywhere in the run: the generated set's steps take a few ms each, the
    // index set's concurrent builds much longer.
    const int longest = fc.index_set ? 1500 : 400;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(30, longest)(rng)));
    p.signal(SIGKILL);
    const auto r = p.wait(60s);
    if (r.signal != SIGKILL) {  // it finished first: a clean exit is the only acceptable one
      EXPECT_EQ(r.exit_code, 0) << r.err;
      break;
    }
    ++survived;
    expect_consistent(db, disagree, "after kill " + std::to_string(k + 1));
    if (HasFailure()) break;
  }
  const auto final_run = db.stepwise({"--source", dir.path(), "--lock-strategy", fc.strategy, "--lease-ttl", "2s", "up"},
                                     {}, 300s);
  ASSERT_EQ(final_run.exit_code, 0) << final_run.err;
  expect_consistent(db, disagree, "at the end");
  EXPECT_EQ(db.count("SELECT count(DISTINCT version) FROM stepwise_log WHERE outcome = 'succeeded'"), fc.migrations);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'"), fc.migrations);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'running'"), 0);
  if (fc.index_set) {
    EXPECT_EQ(db.count("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), 0) << "an invalid index was left";
  }

  TestDb clean;
  ASSERT_EQ(clean.stepwise({"--source", dir.path(), "up"}, {}, 300s).exit_code, 0);
  EXPECT_EQ(db.snapshot(), clean.snapshot()) << "the killed-and-resumed schema differs from a clean run's";
  std::cout << "[ measure  ] " << fc.name << ": " << survived << " kill -9 survived, "
            << db.count("SELECT count(*) FROM stepwise_log WHERE outcome <> 'succeeded'")
            << " abandoned/failed attempts recorded, all " << fc.migrations << " versions applied exactly once\n";
}

INSTANTIATE_TEST_SUITE_P(Suite, KillNine,
                         ::testing::Values(FaultCase{"generated1000_advisory", 1000, false, "advisory"},
                                           FaultCase{"generated1000_lease", 1000, false, "lease"},
                                           FaultCase{"concurrent_indexes_advisory", 40, true, "advisory"},
                                           FaultCase{"concurrent_indexes_lease", 40, true, "lease"}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace stepwise::test
