// Fleets: one run over many tenant schemas (or databases), bounded parallel, resumable.
// STEPWISE_FLEET_TENANTS / STEPWISE_FLEET_MIGRATIONS scale the big case (CI: 32 × 8; the
// issue's 200 × 20 runs in bench/fleet_bench.sh and with these variables).
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

using namespace std::chrono_literals;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::max(1, std::atoi(v)) : fallback;
}

std::string tenant(int i) {
  char name[32];
  std::snprintf(name, sizeof name, "tenant_%03d", i);
  return name;
}

void create_tenants(const TestDb& db, int n) {
  std::string sql;
  for (int i = 1; i <= n; ++i) sql += "CREATE SCHEMA " + tenant(i) + ";";
  (void)db.query(sql);
}

// Each step creates a table (unqualified: it lands in the tenant's schema) and one row; not
// idempotent, so a second application would fail loudly.
void write_set(const MigrationDir& dir, int n) {
  for (int i = 1; i <= n; ++i) {
    char v[16];
    std::snprintf(v, sizeof v, "%04d", i);
    dir.write(std::string(v) + "_t" + std::to_string(i) + ".up.sql",
              "CREATE TABLE t" + std::to_string(i) + " (id int PRIMARY KEY);\nINSERT INTO t" +
                  std::to_string(i) + " VALUES (1);\n");
  }
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> docs;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) docs.push_back(nlohmann::json::parse(line));
  return docs;
}

// Every tenant: exactly one succeeded attempt per version, every table with its one row, and
// nothing of the set in public.
void expect_at_head(const TestDb& db, int tenants, int migrations) {
  for (int i = 1; i <= tenants; ++i) {
    const auto s = tenant(i);
    EXPECT_EQ(db.count("SELECT count(*) FROM " + s + ".stepwise_log WHERE outcome = 'succeeded'"),
              migrations)
        << s;
    EXPECT_EQ(db.count("SELECT count(DISTINCT version) FROM " + s +
                       ".stepwise_log WHERE outcome = 'succeeded'"),
              migrations)
        << s;
    EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = '" + s +
                       "' AND tablename ~ '^t[0-9]+$'"),
              migrations)
        << s;
  }
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ "
                     "'^t[0-9]+$'"),
            0);
}

TEST(FleetTenants, ManyTenantsInParallelThenANoOpRerun) {
  REQUIRE_TEST_DATABASE();
  const int tenants = env_int("STEPWISE_FLEET_TENANTS", 32);
  const int migrations = env_int("STEPWISE_FLEET_MIGRATIONS", 8);
  TestDb db;
  MigrationDir dir;
  create_tenants(db, tenants);
  write_set(dir, migrations);
  const auto r = db.stepwise({"--source", dir.path(), "--tenant-schemas", "tenant_*", "--parallel",
                              "8", "--output", "json", "up"},
                             {}, 300s);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const auto docs = json_lines(r.out);
  ASSERT_EQ(docs.size(), static_cast<std::size_t>(tenants) + 1) << r.out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i + 1 < docs.size(); ++i) {
    EXPECT_EQ(docs[i]["outcome"], "applied") << docs[i];
    EXPECT_EQ(docs[i]["applied"], migrations) << docs[i];
    seen.insert(docs[i]["schema"].get<std::string>());
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(tenants));
  EXPECT_EQ(docs.back()["summary"], true);
  EXPECT_EQ(docs.back()["outcomes"]["applied"], tenants);
  expect_at_head(db, tenants, migrations);
  // Each tenant's lock is its own: nothing left behind.
  EXPECT_EQ(
      db.count(
          "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid "
          "FROM pg_database WHERE datname = current_database())"),
      0);

  // The rerun: every tenant up to date, nothing written.
  const auto all_attempts = [&] {
    long long n = 0;
    for (int i = 1; i <= tenants; ++i)
      n += db.count("SELECT count(*) FROM " + tenant(i) + ".stepwise_log");
    return n;
  };
  const auto attempts = all_attempts();
  const auto again = db.stepwise(
      {"--source", dir.path(), "--tenant-schemas", "tenant_*", "--parallel", "8", "up"}, {}, 300s);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find(std::to_string(tenants) + " up-to-date"), std::string::npos)
      << again.out;
  EXPECT_EQ(all_attempts(), attempts);

  // status and validate over the same fleet.
  const auto st = db.stepwise(
      {"--source", dir.path(), "--tenant-schemas", "tenant_*", "--output", "json", "status"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  for (const auto& d : json_lines(st.out))
    if (!d.contains("summary")) {
      EXPECT_EQ(d["pending"], 0) << d;
    }
  const auto va = db.stepwise({"--source", dir.path(), "--tenant-schemas", "tenant_*", "validate"});
  EXPECT_EQ(va.exit_code, 0) << va.err << va.out;
  EXPECT_NE(va.out.find(std::to_string(tenants) + " valid"), std::string::npos) << va.out;
}

TEST(FleetTenants, OneFailingTenantOthersFinishRerunAfterTheFix) {
  REQUIRE_TEST_DATABASE();
  const int tenants = 8, migrations = 5;
  TestDb db;
  MigrationDir dir;
  create_tenants(db, tenants);
  write_set(dir, migrations);
  // tenant_005 already has a t3: step 3 fails there, and only there.
  (void)db.query("CREATE TABLE tenant_005.t3 (id int PRIMARY KEY)");
  const auto r = db.stepwise(
      {"--source", dir.path(), "--tenant-schemas", "tenant_*", "--parallel", "3", "up"});
  EXPECT_EQ(r.exit_code, 18) << r.err << r.out;
  EXPECT_NE(r.out.find("7 applied"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not ok: tenant_005 (failed, exit 1)"), std::string::npos) << r.out;
  EXPECT_EQ(db.count("SELECT count(*) FROM tenant_005.stepwise_log WHERE outcome = 'succeeded'"),
            2);
  EXPECT_EQ(db.count("SELECT count(*) FROM tenant_004.stepwise_log WHERE outcome = 'succeeded'"),
            migrations);
  // With --fail-fast a failure stops the starting of further targets (1 at a time: the rest).
  const auto ff = db.stepwise({"--source", dir.path(), "--tenant-schemas", "tenant_*", "--parallel",
                               "1", "--fail-fast", "up"});
  EXPECT_EQ(ff.exit_code, 18) << ff.err << ff.out;
  EXPECT_NE(ff.out.find("not-run"), std::string::npos) << ff.out;
  // The file corrected: the rerun completes tenant_005 and leaves the others alone.
  dir.write("0003_t3.up.sql",
            "CREATE TABLE IF NOT EXISTS t3 (id int PRIMARY KEY);\nINSERT INTO t3 VALUES (1);\n");
  const auto fixed = db.stepwise(
      {"--source", dir.path(), "--tenant-schemas", "tenant_*", "--parallel", "3", "up"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.err << fixed.out;
  EXPECT_NE(fixed.out.find("1 applied, 7 up-to-date"), std::string::npos) << fixed.out;
  expect_at_head(db, tenants, migrations);
}

// kill -9 of the fleet run at random instants: every tenant's run is an ordinary locked run,
// so the rerun finishes each tenant with every version applied exactly once.
TEST(FleetTenants, KillNineAtRandomInstantsThenRerun) {
  REQUIRE_TEST_DATABASE();
  const int tenants = 16, migrations = 8;
  TestDb db;
  MigrationDir dir;
  create_tenants(db, tenants);
  write_set(dir, migrations);
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay(30, 900);
  for (int k = 0; k < 6; ++k) {
    Process p(stepwise_cmd({"--database-url", db.url(), "--source", dir.path(), "--tenant-schemas",
                            "tenant_*", "--parallel", "4", "up"}),
              {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
    std::this_thread::sleep_for(std::chrono::milliseconds(delay(rng)));
    p.signal(SIGKILL);
    (void)p.wait();
  }
  const auto r = db.stepwise(
      {"--source", dir.path(), "--tenant-schemas", "tenant_*", "--parallel", "4", "up"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  expect_at_head(db, tenants, migrations);
  for (int i = 1; i <= tenants; ++i)
    EXPECT_EQ(db.count("SELECT count(*) FROM " + tenant(i) + ".t" + std::to_string(migrations)), 1);
}

// SIGTERM: the running targets' statements are cancelled (each records an interrupted
// attempt and releases its lock), no new target starts, exit 7; the rerun finishes all.
TEST(FleetTenants, SigtermCancelsTheRunningTargetsAndTheRerunFinishes) {
  REQUIRE_TEST_DATABASE();
  const int tenants = 6;
  TestDb db;
  MigrationDir dir;
  create_tenants(db, tenants);
  write_set(dir, 1);
  dir.write("0002_slow.up.sql", "CREATE TABLE slow (id int);\nSELECT pg_sleep(30);\n");
  Process p(stepwise_cmd({"--database-url", db.url(), "--source", dir.path(), "--tenant-schemas",
                          "tenant_*", "--parallel", "2", "up"}),
            {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  // Wait until two tenants sleep in step 2.
  for (int i = 0; i < 200; ++i) {
    if (db.count("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND "
                 "pid <> pg_backend_pid()") >= 2)
      break;
    std::this_thread::sleep_for(50ms);
  }
  p.signal(SIGTERM);
  const auto r = p.wait(20s);
  EXPECT_EQ(r.exit_code, 7) << r.err << r.out;
  EXPECT_LT(r.took, 15s);
  EXPECT_NE(r.out.find("interrupted"), std::string::npos) << r.out;
  EXPECT_EQ(
      db.count(
          "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid "
          "FROM pg_database WHERE datname = current_database())"),
      0);
  dir.write("0002_slow.up.sql", "CREATE TABLE slow (id int);\n");
  const auto again = db.stepwise(
      {"--source", dir.path(), "--tenant-schemas", "tenant_*", "--parallel", "3", "up"});
  EXPECT_EQ(again.exit_code, 0) << again.err << again.out;
  for (int i = 1; i <= tenants; ++i)
    EXPECT_EQ(
        db.count("SELECT count(*) FROM " + tenant(i) + ".stepwise_log WHERE outcome = 'succeeded'"),
        2)
        << tenant(i);
}

TEST(FleetTenants, TwoFleetRunsAtOnce) {
  REQUIRE_TEST_DATABASE();
  const int tenants = 12, migrations = 6;
  TestDb db;
  MigrationDir dir;
  create_tenants(db, tenants);
  write_set(dir, migrations);
  const auto cmd = stepwise_cmd({"--database-url", db.url(), "--source", dir.path(),
                                 "--tenant-schemas", "tenant_*", "--parallel", "4", "up"});
  const std::map<std::string, std::string> env{{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}};
  Process a(cmd, env), b(cmd, env);
  const auto ra = a.wait(180s), rb = b.wait(180s);
  EXPECT_EQ(ra.exit_code, 0) << ra.err << ra.out;
  EXPECT_EQ(rb.exit_code, 0) << rb.err << rb.out;
  expect_at_head(db, tenants, migrations);
}

TEST(FleetShard, EveryTargetInExactlyOneShardForOneToFive) {
  REQUIRE_TEST_DATABASE();
  const int tenants = 23;
  TestDb db;
  MigrationDir dir;
  create_tenants(db, tenants);
  write_set(dir, 1);
  for (int n = 1; n <= 5; ++n) {
    std::multiset<std::string> seen;
    for (int i = 0; i < n; ++i) {
      // status is read-only: each tenant reads as not migrated (exit 18), and is listed.
      const auto shard = std::to_string(i) + "/" + std::to_string(n);
      const auto r = db.stepwise({"--source", dir.path(), "--tenant-schemas", "tenant_*", "--shard",
                                  shard, "--output", "json", "status"});
      EXPECT_EQ(r.exit_code, 18) << r.err;
      for (const auto& d : json_lines(r.out))
        if (!d.contains("summary")) seen.insert(d["target"].get<std::string>());
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(tenants)) << n;
    for (int t = 1; t <= tenants; ++t)
      EXPECT_EQ(seen.count(tenant(t)), 1U) << tenant(t) << " " << n;
  }
  // auto/N takes the index from JOB_COMPLETION_INDEX, as an Indexed Job's pod has it.
  const auto a = db.stepwise({"--source", dir.path(), "--tenant-schemas", "tenant_*", "--shard",
                              "auto/3", "--output", "json", "status"},
                             {{"JOB_COMPLETION_INDEX", "2"}});
  const auto b = db.stepwise({"--source", dir.path(), "--tenant-schemas", "tenant_*", "--shard",
                              "2/3", "--output", "json", "status"});
  const auto targets = [](const std::string& out) {
    std::set<std::string> names;
    for (const auto& d : json_lines(out))
      if (!d.contains("summary")) names.insert(d["target"].get<std::string>());
    return names;
  };
  EXPECT_FALSE(targets(b.out).empty());
  EXPECT_EQ(targets(a.out), targets(b.out));
  const auto missing = db.stepwise(
      {"--source", dir.path(), "--tenant-schemas", "tenant_*", "--shard", "auto/3", "status"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("JOB_COMPLETION_INDEX"), std::string::npos) << missing.err;
}

TEST(FleetTargets, DatabasesFromAFileWithAnUnreachableOne) {
  REQUIRE_TEST_DATABASE();
  TestDb one, two;
  MigrationDir dir;
  write_set(dir, 3);
  const auto file = dir.path() + "/../fleet-targets-" + one.name() + ".json";
  {
    std::ofstream f(file);
    nlohmann::json doc = nlohmann::json::array(
        {{{"name", "one"}, {"url", one.url()}},
         {{"name", "two"}, {"url", two.url()}},
         {{"name", "gone"}, {"url", "postgres://u:fleet-secret-pw@127.0.0.1:1/x"}}});
    f << doc.dump();
  }
  const auto r = one.stepwise({"--source", dir.path(), "--targets", file, "--connect-timeout", "1s",
                               "--output", "json", "up"});
  std::remove(file.c_str());
  EXPECT_EQ(r.exit_code, 18) << r.err;
  EXPECT_EQ(r.out.find("fleet-secret-pw"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("fleet-secret-pw"), std::string::npos) << r.err;
  std::map<std::string, nlohmann::json> by;
  for (const auto& d : json_lines(r.out))
    if (!d.contains("summary")) by[d["target"].get<std::string>()] = d;
  ASSERT_EQ(by.size(), 3U) << r.out;
  EXPECT_EQ(by["one"]["outcome"], "applied");
  EXPECT_EQ(by["two"]["outcome"], "applied");
  EXPECT_EQ(by["gone"]["exit_code"], 4);
  EXPECT_EQ(one.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'"), 3);
  EXPECT_EQ(two.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'"), 3);
}

TEST(FleetBadInput, RefusedBeforeAnyTarget) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_set(dir, 1);
  create_tenants(db, 2);
  const std::vector<std::vector<std::string>> cases = {
      {"--targets", "/nonexistent/targets.txt", "up"},
      {"--targets", "/dev/null", "--tenant-schemas", "x", "up"},
      {"--tenant-schemas", "tenant_*", "--parallel", "0", "up"},
      {"--tenant-schemas", "tenant_*", "--shard", "3/3", "up"},
      {"--tenant-schemas", "tenant_*", "describe"},
      {"--parallel", "2", "up"},
      {"--tenant-schemas", "tenant_*", "migrate-to", "x1"},
  };
  for (auto args : cases) {
    args.insert(args.begin(), {"--source", dir.path()});
    const auto r = db.stepwise(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("stepwise: error: "), std::string::npos) << r.err;
  }
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'stepwise_log'"), 0);
  const auto q = db.stepwise({"--source", dir.path(), "--tenant-query", "SELECT nope", "up"});
  EXPECT_EQ(q.exit_code, 1) << q.err;
  EXPECT_NE(q.err.find("--tenant-query"), std::string::npos) << q.err;
}

}  // namespace
}  // namespace stepwise::test
