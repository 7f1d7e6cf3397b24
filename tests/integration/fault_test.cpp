// kill -9 at random instants: after each kill the database is consistent (every applied step has
// exactly its log row), the next plain `up` carries on, and the end state equals a clean run's.
// STEPWISE_FAULT_KILLS sets the number of kills (default 25; bench/soak.sh uses more).
#include <gtest/gtest.h>

#include <signal.h>
#include <cstdlib>

#include <memory>
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
                  " (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL "
                  "DEFAULT now());\n"
                  "CREATE INDEX t_" +
                  v + "_name_idx ON t_" + v + " (name);\n");
  }
}

// Steps that build concurrent indexes on a table with data, between transactional steps.
void write_index_set(const MigrationDir& dir, int n) {
  dir.write(
      "000001_big.up.sql",
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
      dir.write(std::string(v) + "_col.up.sql", std::string("ALTER TABLE big ADD COLUMN c_") + v +
                                                    " int;\nCREATE TABLE side_" + v +
                                                    " (x int);\n");
  }
}

// Every applied version has exactly one succeeded up row and its objects; nothing else exists.
void expect_consistent(const TestDb& db, const std::string& object_of_version_sql,
                       const std::string& when) {
  if (db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'stepwise_log'") == 0) return;
  EXPECT_EQ(
      db.count("SELECT count(*) FROM (SELECT version FROM stepwise_log WHERE outcome = 'succeeded'"
               " GROUP BY version HAVING count(*) > 1) d"),
      0)
      << when << ": a version applied twice";
  // Under the CockroachDB rules a transactional file also runs statement by statement, so a
  // kill may leave a step's first statements done with its attempt still open: only the final
  // run (expect_finished) must then agree.
  const char* engine = std::getenv("STEPWISE_ENGINE");
  if (engine != nullptr && std::string(engine) == "cockroachdb") return;
  EXPECT_EQ(db.count(object_of_version_sql), 0) << when << ": log and schema disagree";
}

struct FaultCase {
  const char* name;
  int migrations;
  bool index_set;
  const char* strategy;
};

void PrintTo(const FaultCase& c, std::ostream* os) {
  *os << c.name;
}

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
                ") v WHERE (EXISTS (SELECT 1 FROM stepwise_log WHERE version = v::text AND "
                "outcome = 'succeeded'))"
                " <> (to_regclass(CASE WHEN v % 2 = 0 THEN 'big_idx_' ELSE 'side_' END || "
                "lpad(v::text, 6, '0'))"
                " IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM stepwise_log WHERE version = "
                "v::text AND outcome <> 'succeeded')"
          : "SELECT count(*) FROM generate_series(1, " + std::to_string(fc.migrations) +
                ") v WHERE (EXISTS (SELECT 1 FROM stepwise_log WHERE version = v::text AND "
                "outcome = 'succeeded'))"
                " <> (to_regclass('t_' || lpad(v::text, 6, '0')) IS NOT NULL)";

  TestDb clean;
  ASSERT_EQ(clean.stepwise({"--source", dir.path(), "up"}, {}, 300s).exit_code, 0);
  const auto clean_schema = clean.snapshot();
  // The end state of a finished run: every version once, nothing running, schema as clean.
  const auto expect_finished = [&](const TestDb& db, const std::string& when) {
    expect_consistent(db, disagree, when);
    EXPECT_EQ(
        db.count("SELECT count(DISTINCT version) FROM stepwise_log WHERE outcome = 'succeeded'"),
        fc.migrations)
        << when;
    EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'"),
              fc.migrations)
        << when;
    EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'running'"), 0) << when;
    EXPECT_EQ(db.count("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), 0)
        << when << ": an invalid index";
    EXPECT_EQ(db.snapshot(), clean_schema)
        << when << ": the killed-and-resumed schema differs from a clean run's";
  };

  auto db = std::make_unique<TestDb>();
  std::mt19937 rng(std::random_device{}());
  const int kills = kills_wanted();
  int survived = 0, databases = 1;
  long long retried_attempts = 0;
  const auto args = [&](const TestDb& d) {
    return stepwise_cmd({"--database-url", d.url(), "--source", dir.path(), "--lock-strategy",
                         fc.strategy, "--lease-ttl", "2s", "up"});
  };
  for (int attempt = 0; survived < kills && attempt < kills * 4 && !HasFailure(); ++attempt) {
    Process p(args(*db), {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
    // Past start-up, anywhere in the run: the generated set's steps take a few ms each, the
    // index set's concurrent builds much longer.
    const int longest = fc.index_set ? 1500 : 400;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(30, longest)(rng)));
    p.signal(SIGKILL);
    const auto r = p.wait(120s);
    if (r.signal != SIGKILL) {
      // It finished before the kill: that run must have succeeded and left the full schema.
      ASSERT_EQ(r.exit_code, 0) << r.err;
      expect_finished(*db, "after a run that finished between kills");
      retried_attempts +=
          db->count("SELECT count(*) FROM stepwise_log WHERE outcome <> 'succeeded'");
      db = std::make_unique<TestDb>();
      ++databases;
      continue;
    }
    ++survived;
    expect_consistent(*db, disagree, "after kill " + std::to_string(survived));
  }
  EXPECT_EQ(survived, kills);
  const auto final_run =
      run(args(*db), {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}}, 300s);
  ASSERT_EQ(final_run.exit_code, 0) << final_run.err;
  expect_finished(*db, "at the end");
  retried_attempts += db->count("SELECT count(*) FROM stepwise_log WHERE outcome <> 'succeeded'");
  std::cout << "[ measure  ] " << fc.name << ": " << survived << " kill -9 survived over "
            << databases << " database(s), " << retried_attempts
            << " abandoned/failed attempts recorded and retried, every " << fc.migrations
            << " versions applied exactly once\n";
}

INSTANTIATE_TEST_SUITE_P(Suite, KillNine,
                         // "auto": the engine's own lock (advisory on PostgreSQL; the lease when
                         // the CockroachDB rules are forced with STEPWISE_ENGINE=cockroachdb).
                         ::testing::Values(FaultCase{"generated1000_auto", 1000, false, "auto"},
                                           FaultCase{"generated1000_lease", 1000, false, "lease"},
                                           FaultCase{"concurrent_indexes_auto", 40, true, "auto"},
                                           FaultCase{"concurrent_indexes_lease", 40, true,
                                                     "lease"}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace stepwise::test
