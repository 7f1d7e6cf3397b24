// The no-op check (AttemptLog::matches) against a real log: it says "exactly this set is
// applied" only when a full read and a plan would say nothing is left to do, in every state a
// log can be in.
#include <gtest/gtest.h>

#include <memory>

#include <pqxx/pqxx>

#include "../../src/pqxx/pqxx_connection.hpp"
#include "stepwise/history_store.hpp"
#include "stepwise/migration.hpp"
#include "stepwise/source.hpp"
#include "test_db.hpp"

namespace stepwise::test {
namespace {

class LogDigest : public ::testing::Test {
 protected:
  TestDb db;
  MigrationDir dir;

  void SetUp() override {
    REQUIRE_TEST_DATABASE();
    dir.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    dir.write("1_a.down.sql", "DROP TABLE a;\n");
    dir.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
    dir.write("2_b.down.sql", "DROP TABLE b;\n");
  }
  [[nodiscard]] bool matches(const std::string& folder) {
    const auto source = validate_source(load_directory(folder));
    auto conn = open_connection(parse_conninfo(db.url(), 10));
    HistoryStore store(*conn, TableName{"public", "stepwise_log"}, RunnerIdentity{"h", 1, "t"});
    return store.matches(source.migrations.log_digest());
  }
  int up(std::vector<std::string> args = {}) {
    std::vector<std::string> all = {"--source", dir.path()};
    all.insert(all.end(), args.begin(), args.end());
    if (args.empty()) all.emplace_back("up");
    return db.stepwise(all).exit_code;
  }
};

TEST_F(LogDigest, MissingLogDoesNotMatch) {
  EXPECT_FALSE(matches(dir.path()));
}

// Every pod start runs this check: a statement that fails is an ERROR line in the server's log
// each time. Inside one transaction block, any failed statement would abort it.
TEST_F(LogDigest, NoStatementFailsWithoutALogOrWithoutItsSummary) {
  const auto digest = validate_source(load_directory(dir.path())).migrations.log_digest();
  const auto check = [&] {
    auto conn = open_connection(parse_conninfo(db.url(), 10));
    conn->execute("BEGIN");
    HistoryStore store(*conn, TableName{"public", "stepwise_log"}, RunnerIdentity{"h", 1, "t"});
    const bool matched = store.matches(digest);
    EXPECT_NO_THROW(conn->execute("SELECT 1")) << "a statement of the no-op check failed";
    return matched;
  };
  EXPECT_FALSE(check());  // a fresh database
  ASSERT_EQ(up(), 0);
  EXPECT_TRUE(check());  // the summary answers
  // A log without its summary (an older stepwise's, or one another role owns): the digest.
  db.query("DROP SEQUENCE stepwise_log_noop");
  EXPECT_TRUE(check());
  db.query("CREATE SEQUENCE stepwise_log_noop");
  db.query("DROP SEQUENCE stepwise_log_gen");
  EXPECT_TRUE(check());
  // A role that may read the log but not the sequences (one role per test database).
  db.query("CREATE SEQUENCE stepwise_log_gen");
  const auto role = db.name() + "_reader";
  db.query("CREATE ROLE " + role);
  db.query("GRANT SELECT ON stepwise_log TO " + role);
  {
    auto conn = open_connection(parse_conninfo(db.url(), 10));
    conn->execute("BEGIN");
    conn->execute("SET LOCAL ROLE " + role);
    HistoryStore store(*conn, TableName{"public", "stepwise_log"}, RunnerIdentity{"h", 1, "t"});
    EXPECT_TRUE(store.matches(digest));
    EXPECT_NO_THROW(conn->execute("SELECT 1")) << "a statement of the no-op check failed";
    conn->execute("ROLLBACK");
  }
  db.query("DROP OWNED BY " + role);
  db.query("DROP ROLE " + role);
}

TEST_F(LogDigest, AppliedSetMatchesAndAnotherSetDoesNot) {
  ASSERT_EQ(up(), 0);
  EXPECT_TRUE(matches(dir.path()));
  // One more file: pending, so no match.
  MigrationDir more;
  for (const auto* f : {"1_a.up.sql", "2_b.up.sql"})
    more.write(f, f[0] == '1' ? "CREATE TABLE a (id int);\n" : "CREATE TABLE b (id int);\n");
  more.write("3_c.up.sql", "CREATE TABLE c (id int);\n");
  EXPECT_FALSE(matches(more.path()));
  // One file fewer: the database is ahead of that set.
  MigrationDir fewer;
  fewer.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  EXPECT_FALSE(matches(fewer.path()));
}

TEST_F(LogDigest, AnEditedFileDoesNotMatch) {
  ASSERT_EQ(up(), 0);
  dir.write("2_b.up.sql", "CREATE TABLE b (id bigint);\n");  // applied with another checksum
  EXPECT_FALSE(matches(dir.path()));
}

TEST_F(LogDigest, ARolledBackVersionDoesNotMatchAndReappliedDoes) {
  ASSERT_EQ(up(), 0);
  ASSERT_EQ(up({"migrate-to", "1"}), 0);
  EXPECT_FALSE(matches(dir.path()));
  ASSERT_EQ(up(), 0);
  EXPECT_TRUE(matches(dir.path()));  // the newest attempt of 2 is a succeeded up again
}

TEST_F(LogDigest, ANewerFailedOrRunningAttemptDoesNotMatch) {
  ASSERT_EQ(up(), 0);
  db.query(
      "INSERT INTO stepwise_log (version, name, direction, outcome, checksum, checksum_algorithm,"
      " host, pid, tool_version) SELECT version, name, 'down', 'failed', checksum,"
      " checksum_algorithm, host, pid, tool_version FROM stepwise_log WHERE version = '2'");
  EXPECT_FALSE(matches(dir.path()));
  db.query("DELETE FROM stepwise_log WHERE outcome = 'failed'");
  EXPECT_TRUE(matches(dir.path()));
  db.query("UPDATE stepwise_log SET outcome = 'running' WHERE version = '1'");
  EXPECT_FALSE(matches(dir.path()));
}

TEST_F(LogDigest, VersionsAreOrderedAsNumbersWhateverTheCollation) {
  // 9 < 10 as numbers, "10" < "9" as bytes: server and client must agree on one order.
  MigrationDir nine_ten;
  nine_ten.write("9_a.up.sql", "CREATE TABLE a (id int);\n");
  nine_ten.write("10_b.up.sql", "CREATE TABLE b (id int);\n");
  ASSERT_EQ(db.stepwise({"--source", nine_ten.path(), "up"}).exit_code, 0);
  EXPECT_TRUE(matches(nine_ten.path()));
}

TEST_F(LogDigest, ABackupRowIsNotAMigration) {
  ASSERT_EQ(up(), 0);
  db.query(
      "INSERT INTO stepwise_log (kind, version, name, direction, outcome, checksum,"
      " checksum_algorithm, host, pid, tool_version) VALUES ('backup', '2', '/tmp/x', 'none',"
      " 'succeeded', 'abc', 'sha256', 'h', 1, 't')");
  EXPECT_TRUE(matches(dir.path()));
}

// The no-op summary (two sequences next to the log) answers only while nothing changed the
// log since a run refreshed it; any change makes the no-op digest the log itself.
class LogSummary : public LogDigest {
 protected:
  void SetUp() override {
    LogDigest::SetUp();
    ASSERT_EQ(up(), 0);
    ASSERT_TRUE(matches(dir.path()));
    ASSERT_TRUE(current()) << "a run that applied something refreshes the summary";
  }
  // The summary's own condition for this folder's set, computed the way matches() asks.
  bool current() {
    const auto digest = validate_source(load_directory(dir.path())).migrations.log_digest();
    return db.scalar("SELECT n.is_called AND n.last_value = hashtextextended(concat_ws(' ', '" +
                     digest +
                     "', (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM"
                     " stepwise_log_gen), pg_relation_filenode('stepwise_log')), 0)"
                     " FROM stepwise_log_noop n") == "t";
  }
  // matches() on a session that gives up on a table lock after `wait`.
  [[nodiscard]] bool matches_waiting_at_most(const std::string& wait) {
    const auto source = validate_source(load_directory(dir.path()));
    auto conn = open_connection(parse_conninfo(db.url(), 10));
    conn->execute("SET lock_timeout = '" + wait + "'");
    HistoryStore store(*conn, TableName{"public", "stepwise_log"}, RunnerIdentity{"h", 1, "t"});
    return store.matches(source.migrations.log_digest());
  }
};

TEST_F(LogSummary, ItAnswersWithoutReadingTheLog) {
  // The log locked by another session: digesting it would wait, the summary does not.
  pqxx::connection holder(db.url());
  pqxx::work w(holder);
  w.exec("LOCK TABLE stepwise_log IN ACCESS EXCLUSIVE MODE");
  EXPECT_TRUE(matches_waiting_at_most("2s"));
  db.query("SELECT nextval('stepwise_log_gen')");  // as a change would: no longer current
  EXPECT_FALSE(current());
  EXPECT_FALSE(matches_waiting_at_most("200ms"));  // the digest of the log had to wait
}

TEST_F(LogSummary, AHandDeleteIsSeenEvenInReplicaMode) {
  // session_replication_role = replica silences ordinary triggers (pg_restore, logical
  // replication's apply); the summary's fire ALWAYS.
  db.query("SET session_replication_role = replica; DELETE FROM stepwise_log WHERE version = '2'");
  EXPECT_FALSE(current());
  EXPECT_FALSE(matches(dir.path()));
}

TEST_F(LogSummary, AHandUpdateIsSeen) {
  db.query("UPDATE stepwise_log SET checksum = 'edited' WHERE version = '1'");
  EXPECT_FALSE(current());
  EXPECT_FALSE(matches(dir.path()));
}

TEST_F(LogSummary, ATruncateIsSeen) {
  db.query("TRUNCATE stepwise_log");
  EXPECT_FALSE(current());
  EXPECT_FALSE(matches(dir.path()));
}

TEST_F(LogSummary, ARewrittenLogIsDigestedAgain) {
  db.query("VACUUM FULL stepwise_log");
  EXPECT_FALSE(current());
  EXPECT_TRUE(matches(dir.path()));
}

// Triggers dropped or disabled by the log's owner hide what is done meanwhile (docs/design.md);
// the next run puts them back, and a summary written before answers for nothing from then on,
// even when that run dies before it writes to the log.
TEST_F(LogSummary, RecreatedTriggersInvalidateTheSummaryFromBefore) {
  db.query("DROP TRIGGER stepwise_log_changed ON stepwise_log");
  db.query("DELETE FROM stepwise_log WHERE version = '2'");
  {
    auto conn = open_connection(parse_conninfo(db.url(), 10));
    HistoryStore store(*conn, TableName{"public", "stepwise_log"}, RunnerIdentity{"h", 1, "t"});
    (void)store.ensure_table();  // what a run does first under the lock, before any step
  }
  EXPECT_EQ(
      db.scalar("SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM"
                " pg_trigger WHERE tgrelid = 'stepwise_log'::regclass"),
      "stepwise_log_changed:A,stepwise_log_truncated:A");
  EXPECT_FALSE(current());
  EXPECT_FALSE(matches(dir.path()));
}

// A counter dropped and created anew starts again from 1: a summary from before must answer for
// nothing even when the new counter comes back to the value it was written for.
TEST_F(LogSummary, ANewCounterNeverRevivesAnOlderSummary) {
  const auto before = db.scalar("SELECT last_value FROM stepwise_log_gen");
  db.query("DROP SEQUENCE stepwise_log_gen");
  {
    auto conn = open_connection(parse_conninfo(db.url(), 10));
    HistoryStore store(*conn, TableName{"public", "stepwise_log"}, RunnerIdentity{"h", 1, "t"});
    (void)store.ensure_table();  // a run that dies right after, before any step
  }
  db.query("DELETE FROM stepwise_log WHERE version = '2'");
  db.query("SELECT setval('stepwise_log_gen', " + before + ")");  // as enough changes would
  EXPECT_FALSE(matches(dir.path()));
}

TEST_F(LogSummary, DisabledTriggersAreEnabledAgainByTheNextRun) {
  db.query("ALTER TABLE stepwise_log DISABLE TRIGGER ALL");
  dir.write("3_c.up.sql", "CREATE TABLE c (id int);\n");
  ASSERT_EQ(up(), 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'stepwise_log'::regclass"
                     " AND tgenabled = 'A'"),
            2);
  EXPECT_TRUE(current());
  EXPECT_TRUE(matches(dir.path()));
}

TEST_F(LogSummary, ItIsNoDriftAndANewRunCreatesItAgainWhenDropped) {
  const auto validate = db.stepwise({"--source", dir.path(), "validate"});
  EXPECT_EQ(validate.exit_code, 0) << validate.out << validate.err;
  db.query("DROP SEQUENCE stepwise_log_gen");
  db.query(
      "INSERT INTO stepwise_log (kind, version, name, direction, outcome, checksum,"
      " checksum_algorithm, host, pid, tool_version) VALUES ('backup', '2', '/tmp/x', 'none',"
      " 'succeeded', 'abc', 'sha256', 'h', 1, 't')");  // writes to the log still work
  EXPECT_TRUE(matches(dir.path()));                    // digested on its own
  dir.write("3_c.up.sql", "CREATE TABLE c (id int);\n");
  ASSERT_EQ(up(), 0);
  EXPECT_TRUE(current());
  EXPECT_TRUE(matches(dir.path()));
}

// The triggers' function finds the counter next to the table that fired it: a renamed schema
// keeps counting.
TEST(LogSummaryNames, ARenamedSchemaKeepsCounting) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  db.query("CREATE SCHEMA s");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "--log-table", "s.log", "up"}).exit_code, 0);
  db.query("ALTER SCHEMA s RENAME TO t");
  const auto before = db.count("SELECT last_value FROM t.log_gen");
  db.query("UPDATE t.log SET notes = 'touched'");
  EXPECT_GT(db.count("SELECT last_value FROM t.log_gen"), before);
}

// The summary answers "nothing to do" for a whole set: whoever can write it decides what the
// no-op skips. Sequences of its names that another role created answer for nothing.
class HostileSummary : public LogSummary {
 protected:
  void SetUp() override {
    LogSummary::SetUp();
    more.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    more.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
    more.write("3_c.up.sql", "CREATE TABLE c (id int);\n");
    pending_digest = validate_source(load_directory(more.path())).migrations.log_digest();
    role = db.name() + "_attacker";
    db.query("CREATE ROLE " + role);
    db.query("GRANT CREATE ON SCHEMA public TO " + role);
  }
  void TearDown() override {
    db.query("DROP OWNED BY " + role);
    db.query("DROP ROLE " + role);
  }
  // As the attacker: the two sequences by name, and a summary forged for `digest`.
  void forge(const std::string& digest) {
    auto conn = open_connection(parse_conninfo(db.url(), 10));
    conn->execute("SET ROLE " + role);
    conn->execute(
        "CREATE SEQUENCE public.stepwise_log_gen CACHE 1; CREATE SEQUENCE public.stepwise_log_noop"
        " MINVALUE -9223372036854775808 CACHE 1; GRANT ALL ON public.stepwise_log_gen,"
        " public.stepwise_log_noop TO PUBLIC; SELECT setval('public.stepwise_log_gen', 5);"
        " SELECT setval('public.stepwise_log_noop', hashtextextended(concat_ws(' ', '" +
        digest + "', 5, pg_relation_filenode('public.stepwise_log')), 0))");
  }
  MigrationDir more;  // the applied set and one migration more
  std::string pending_digest;
  std::string role;
};

TEST_F(HostileSummary, SequencesAnotherRoleCreatedAreNotTrusted) {
  // The log owner's summary gone (as when the attacker's came first): the attacker's in its place.
  db.query("DROP SEQUENCE stepwise_log_gen, stepwise_log_noop");
  forge(pending_digest);
  EXPECT_FALSE(matches(more.path())) << "a forged summary hid a pending migration";
  EXPECT_TRUE(matches(dir.path())) << "the log's own digest still answers";
  // A run cannot take the names over: it applies, and the summary stays off.
  std::vector<std::string> args = {"--source", more.path(), "up"};
  const auto r = db.stepwise(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_class WHERE relname = 'c'"), 1);
  EXPECT_EQ(db.scalar("SELECT pg_get_serial_sequence('stepwise_log', 'checksum')"), "");
}

TEST_F(HostileSummary, TheSequencesAreLinkedToTheLogAndOnlyItsOwnerCanLinkThem) {
  EXPECT_EQ(db.scalar("SELECT pg_get_serial_sequence('stepwise_log', 'checksum')"),
            "public.stepwise_log_noop");
  EXPECT_EQ(db.scalar("SELECT pg_get_serial_sequence('stepwise_log', 'version')"),
            "public.stepwise_log_gen");
  auto conn = open_connection(parse_conninfo(db.url(), 10));
  conn->execute("SET ROLE " + role);
  EXPECT_THROW(conn->execute("SELECT setval('public.stepwise_log_noop', 1)"), DbError);
}

// A search_path that lists pg_catalog after another schema takes that schema's operators for
// every unqualified one: stepwise's own statements name PostgreSQL's.
TEST_F(HostileSummary, OperatorsOfASchemaBeforePgCatalogChangeNoAnswer) {
  db.query(
      "CREATE SCHEMA evil; CREATE FUNCTION evil.always(bigint, bigint) RETURNS boolean LANGUAGE"
      " sql AS 'SELECT true'; CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint,"
      " FUNCTION = evil.always); CREATE FUNCTION evil.never_migration(text, text) RETURNS boolean"
      " LANGUAGE sql AS $$SELECT CASE WHEN $1 OPERATOR(pg_catalog.=) 'migration' OR $2"
      " OPERATOR(pg_catalog.=) 'migration' THEN false ELSE $1 OPERATOR(pg_catalog.=) $2 END$$;"
      " CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.never_migration)");
  const auto hostile = [&](const std::string& folder) {
    const auto source = validate_source(load_directory(folder));
    auto conn = open_connection(parse_conninfo(db.url(), 10));
    conn->execute("SET search_path = evil, pg_catalog, public");
    HistoryStore store(*conn, TableName{"public", "stepwise_log"}, RunnerIdentity{"h", 1, "t"});
    const bool matched = store.matches(source.migrations.log_digest());
    const auto history = store.read();
    return std::make_pair(matched, history.attempts().size());
  };
  EXPECT_FALSE(hostile(more.path()).first) << "a pending migration was hidden";
  const auto [matched, attempts] = hostile(dir.path());
  EXPECT_TRUE(matched);
  EXPECT_EQ(attempts, 2u) << "the log read lost its rows";
  // And a whole run under that search_path applies nothing twice.
  const auto r = db.stepwise({"--source", dir.path(), "up"},
                             {{"PGOPTIONS", "-c search_path=evil,pg_catalog,public"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), 2) << r.err;
}

// Whole runs under a search_path that lists pg_catalog after a schema whose operators lie: the
// log's writes, the lock and the fence use PostgreSQL's own, so each step still runs once and
// the log says what happened. (The migrations themselves get that search_path, as they would.)
TEST(HostileSearchPath, RunsUnderLyingOperatorsApplyEachStepOnceAndLogIt) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  for (int v = 1; v <= 3; ++v) {
    dir.write(std::to_string(v) + "_t.up.sql",
              "CREATE TABLE t" + std::to_string(v) + " (id int);\n");
    dir.write(std::to_string(v) + "_t.down.sql", "DROP TABLE t" + std::to_string(v) + ";\n");
  }
  db.query(
      "CREATE SCHEMA evil;"
      " CREATE FUNCTION evil.yes(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';"
      " CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.yes);"
      " CREATE FUNCTION evil.no(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';"
      " CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.no);"
      " CREATE FUNCTION evil.yes_t(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS"
      " 'SELECT true'; CREATE OPERATOR evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz,"
      " FUNCTION = evil.yes_t); CREATE OPERATOR evil.> (LEFTARG = timestamptz, RIGHTARG ="
      " timestamptz, FUNCTION = evil.yes_t);"
      " CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS"
      " $$SELECT '2000-01-01'::pg_catalog.timestamptz$$;"
      " CREATE FUNCTION evil.pg_try_advisory_lock(bigint) RETURNS boolean LANGUAGE sql AS"
      " 'SELECT true'");
  const std::map<std::string, std::string> hostile = {
      {"PGOPTIONS", "-c search_path=evil,pg_catalog,public"}};
  for (const auto* strategy : {"advisory", "lease"}) {
    SCOPED_TRACE(strategy);
    const auto run = [&](std::vector<std::string> args) {
      std::vector<std::string> all = {"--source", dir.path(), "--lock-strategy", strategy};
      all.insert(all.end(), args.begin(), args.end());
      return db.stepwise(all, hostile);
    };
    auto r = run({"up"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run({"migrate-to", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run({"up"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run({"up"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE((r.out + r.err).find("nothing to do"), std::string::npos) << r.err << r.out;
    r = run({"status"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // 3 ups, 2 downs, 2 ups: each once, each finished, by the real clock.
    EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded'"), 7);
    EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log"), 7);
    EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE finished_at IS NULL OR started_at"
                       " < '2020-01-01' OR duration_ms < 0"),
              0);
    EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename IN ('t1', 't2', 't3')"), 3);
    db.query("DROP TABLE evil.t1, evil.t2, evil.t3");  // the search_path's first schema
    db.query("TRUNCATE stepwise_log");
  }
}

// Versions 1 and 2, where 2 can be rolled back: `migrate-to 1` leaves one pending.
void write_two_versions(const MigrationDir& dir) {
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  dir.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
  dir.write("2_b.down.sql", "DROP TABLE b;\n");
}

// A log that another tool or a DBA gave a BEFORE trigger or a rule: the attempt row could
// vanish without an error and the step run again at every `up`. Refused, nothing applied.
TEST(HostileLogTable, ABeforeTriggerOrARuleOnTheLogIsRefusedBeforeAnyStep) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_two_versions(dir);
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "migrate-to", "1"}).exit_code, 0);
  db.query(
      "CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';"
      " CREATE TRIGGER a_swallow BEFORE INSERT ON stepwise_log FOR EACH ROW EXECUTE FUNCTION"
      " swallow()");
  auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("log table public.stepwise_log has an enabled BEFORE trigger \"a_swallow\" "
                       "that stepwise did not create"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("DROP TRIGGER \"a_swallow\" ON \"public\".\"stepwise_log\""),
            std::string::npos)
      << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0);
  // Disabled, it is no danger; a rule is.
  db.query("ALTER TABLE stepwise_log DISABLE TRIGGER a_swallow");
  db.query("CREATE RULE keep_out AS ON UPDATE TO stepwise_log DO INSTEAD NOTHING");
  r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("has a rule \"keep_out\" that stepwise did not create"), std::string::npos)
      << r.err;
  db.query("DROP RULE keep_out ON stepwise_log");
  r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE version = '2'"), 1);
}

// A renamed log keeps its old sequences linked, but the triggers count in the new name's: the
// old pair stops moving and must answer for nothing, or a later rollback would read as current.
TEST(LogSummaryNames, ARenamedLogsOldSummaryAnswersForNothing) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  write_two_versions(dir);
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "--log-table", "public.oldlog", "up"}).exit_code,
            0);
  db.query("ALTER TABLE oldlog RENAME TO newlog");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "--log-table", "public.newlog", "migrate-to", "1"})
                .exit_code,
            0);
  const auto digest = validate_source(load_directory(dir.path())).migrations.log_digest();
  auto conn = open_connection(parse_conninfo(db.url(), 10));
  HistoryStore store(*conn, TableName{"public", "newlog"}, RunnerIdentity{"h", 1, "t"});
  EXPECT_FALSE(store.matches(digest)) << "version 2 was rolled back";
}

// A log owned by a group role: a member builds the summary as that role, so that it can be
// linked to the log (same owner) and trusted.
TEST(LogSummaryNames, AMemberOfTheOwningGroupBuildsTheSummaryAsTheGroup) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto group = db.name() + "_grp", member = db.name() + "_mem";
  db.query("CREATE ROLE " + group + " NOLOGIN; CREATE ROLE " + member + " NOLOGIN IN ROLE " +
           group + "; CREATE SCHEMA gs AUTHORIZATION " + group);
  const TableName log{"gs", "glog"};
  const auto ensure_as = [&](const std::string& role) {
    auto conn = open_connection(parse_conninfo(db.url(), 10));
    conn->execute("SET ROLE " + role);
    HistoryStore store(*conn, log, RunnerIdentity{"h", 1, "t"});
    (void)store.ensure_table();
  };
  ensure_as(group);
  db.query("DROP SEQUENCE gs.glog_gen, gs.glog_noop; DROP FUNCTION gs.glog_changed() CASCADE");
  ensure_as(member);
  EXPECT_EQ(db.scalar("SELECT pg_get_serial_sequence('gs.glog', 'checksum')"), "gs.glog_noop");
  EXPECT_EQ(db.scalar("SELECT pg_get_serial_sequence('gs.glog', 'version')"), "gs.glog_gen");
  EXPECT_EQ(db.scalar("SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'glog_changed'"),
            group);
  db.query("DROP SCHEMA gs CASCADE; DROP ROLE " + member + "; DROP ROLE " + group);
}

// A log whose name leaves no room for the summary's names has none, and runs as before (a cut
// name could be the log's own: "<59 bytes>_gen").
TEST(LogSummaryNames, ALogNamedToTheLimitHasNoSummaryAndWorks) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
  const std::string name = std::string(59, 'l') + "_gen";
  for (int i = 0; i < 2; ++i) {
    const auto r = db.stepwise({"--source", dir.path(), "--log-table", "public." + name, "up"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(db.count("SELECT count(*) FROM " + name), 1);
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_trigger WHERE tgrelid = '" + name + "'::regclass"),
            0);
}

}  // namespace
}  // namespace stepwise::test
