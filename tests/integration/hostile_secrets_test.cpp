// Issue 13, items 4 and 7: no secret in any message, however malformed the connection string;
// clear causes for a read-only server (a real hot standby, read-only sessions), a role that may
// not create the log table, and a --backup path that cannot be written.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sstream>

#include "../../src/pqxx/pqxx_connection.hpp"
#include "stepwise/errors.hpp"
#include "test_db.hpp"

namespace stepwise::test {
namespace {

namespace fs = std::filesystem;

const std::map<std::string, std::string> kNoUrlEnv{{"STEPWISE_DATABASE_URL", ""},
                                                   {"DATABASE_URL", ""}};

// "127.0.0.1:PORT" of the test server.
std::string host_port() {
  const auto url = admin_url();
  const auto at = url.rfind('@');
  return url.substr(at + 1, url.find('/', at) - at - 1);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Runs SQL on the admin connection (the postgres database), outside the test database's own
// settings (which may make its sessions read-only).
void admin_exec(const std::string& sql) {
  pqxx::connection c(admin_url());
  pqxx::nontransaction w(c);
  w.exec(sql);
}

// Neither the secret nor any piece of it of 3 or more characters, anywhere.
void expect_no_piece(const ProcessResult& r, const std::string& secret, const std::string& what) {
  ASSERT_GE(secret.size(), 3u);
  for (std::size_t len = 3; len <= secret.size(); ++len)
    for (std::size_t i = 0; i + len <= secret.size(); ++i) {
      const auto piece = secret.substr(i, len);
      EXPECT_EQ(r.out.find(piece), std::string::npos)
          << what << ": stdout holds \"" << piece << "\" of the secret:\n"
          << r.out;
      EXPECT_EQ(r.err.find(piece), std::string::npos)
          << what << ": stderr holds \"" << piece << "\" of the secret:\n"
          << r.err;
    }
}

struct Malformed {
  std::string what;
  std::string dsn;
  std::string secret;
  std::string says;  // the problem, as the message must name it
  std::map<std::string, std::string> env = {};
};

std::vector<Malformed> malformed_forms() {
  const auto hp = host_port();
  const auto port = hp.substr(hp.find(':') + 1);
  std::vector<Malformed> forms{
      {"a literal % in the URL password", "postgres://postgres:Zq%8Xwv@" + hp + "/postgres",
       "Zq%8Xwv", "a '%' is not followed by two hex digits"},
      {"password: instead of password=",
       "host=127.0.0.1 port=" + port + " password:Jk7Vb2Qy dbname=postgres", "Jk7Vb2Qy",
       "a keyword is not followed by '='"},
      {"a password where the host should be", "postgres://postgres@Hy6Wq3Tz:" + port + "/postgres",
       "Hy6Wq3Tz", "could not translate host name"},
      {"unencoded '@' and '#' in the URL password",
       "postgres://postgres:Mx@Rb#Tc9@" + hp + "/postgres", "Mx@Rb#Tc9",
       "more than one '@' before its host"},
      {"unencoded '/' in the URL password", "postgres://postgres:Pv/Lw8Kd@" + hp + "/postgres",
       "Pv/Lw8Kd", "an '@' after a '/'"},
      {"unencoded ':' and '/' in the URL password",
       "postgres://postgres:Fk:Wm/Q4z@" + hp + "/postgres", "Fk:Wm/Q4z", "an '@' after a '/'"},
      {"an unquoted space in a key/value password",
       "host=127.0.0.1 port=" + port + " password=Gh4 Tn7Yp2 dbname=postgres", "Gh4 Tn7Yp2",
       "a keyword is not followed by '='"},
      {"an unterminated quote in a key/value password",
       "host=127.0.0.1 port=" + port + " password='Cw3Xe9Fr dbname=postgres", "Cw3Xe9Fr",
       "a quoted value has no closing quote"},
      {"a wrong password with ':' in the URL", "postgres://postgres:Ns:Gf4Vd@" + hp + "/postgres",
       "Ns:Gf4Vd", "password authentication failed"},
      {"a password typed as the user name", "postgres://Rk5Hs8Wp@" + hp + "/postgres", "Rk5Hs8Wp",
       "no password supplied"},
      {"a wrong PGPASSWORD",
       "postgres://postgres@" + hp + "/postgres",
       "Dr5%Yt8Ue",
       "password authentication failed",
       {{"PGPASSWORD", "Dr5%Yt8Ue"}}},
      {"PGPASSWORD with a malformed key/value string",
       "host=127.0.0.1 port=" + port + " dbname",
       "Vq9Lk2Zx",
       "the keyword dbname is not followed by '='",
       {{"PGPASSWORD", "Vq9Lk2Zx"}}},
  };
  return forms;
}

TEST(HostileSecrets, MalformedConnectionStringsNeverEchoThePassword) {
  REQUIRE_TEST_DATABASE();
  MigrationDir dir;
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);");
  for (const auto& f : malformed_forms()) {
    auto env = kNoUrlEnv;
    env.insert(f.env.begin(), f.env.end());
    for (const std::string command : {"up", "status", "validate"}) {
      for (const auto& mode : std::vector<std::vector<std::string>>{
               {}, {"--output", "json"}, {"--log-format", "json", "--log-level", "trace"}}) {
        std::vector<std::string> args{"--database-url",    f.dsn,  "--source", dir.path(),
                                      "--connect-timeout", "300ms"};
        args.insert(args.end(), mode.begin(), mode.end());
        args.push_back(command);
        const auto what = f.what + " (" + command + (mode.empty() ? "" : " " + mode[1]) + ")";
        const auto r = run(stepwise_cmd(args), env);
        EXPECT_EQ(r.exit_code, 4) << what << "\n" << r.err;
        expect_no_piece(r, f.secret, what);
        EXPECT_NE(r.err.find(f.says), std::string::npos) << what << ": " << r.err;
        if (mode.size() == 2 && mode[1] == "json" && mode[0] == "--output") {
          const auto doc = nlohmann::json::parse(r.out, nullptr, false);
          ASSERT_FALSE(doc.is_discarded()) << what << ": " << r.out;
          EXPECT_EQ(doc.value("exit_code", 0), 4) << what;
          EXPECT_NE(doc.value("error", std::string()).find(f.says), std::string::npos)
              << what << ": " << r.out;
        }
        if (mode.size() > 2) {  // every stderr line is a JSON log line or stepwise's error line
          for (const auto& line : split(r.err)) {
            if (line.empty() || line.rfind("stepwise:", 0) == 0) continue;
            EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded())
                << what << ": " << line;
          }
        }
      }
    }
  }
}

// The same guarantees at the function level (no server needed): parse_conninfo's ConnectError
// names the problem and quotes nothing of the input.
TEST(HostileSecrets, ParseErrorsNameTheProblemWithoutTheToken) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"postgres://u:Zq%8Xwv@h/db", "'%' is not followed by two hex digits"},
      {"postgres://u:Zq%00Xwv@h/db", "%00"},
      {"host=h password:Jk7Vb2Qy dbname=d", "not followed by '='"},
      {"host=h password='Cw3Xe9Fr", "no closing quote"},
      {"host=h Jk7Vb2Qy=1", "unknown keyword"},
      {"postgres://u:Mx@Rb#Tc9@h/db", "more than one '@'"},
      {"postgres://u:Pv/Lw8Kd@h/db", "an '@' after a '/'"},
      {"postgres://h:Pv8Kd/db", "port in the URL is not a number"},
      {"postgres://u@h/db?Jk7Vb2Qy", "no '='"},
      {"postgres://u@h/db?Jk7Vb2Qy=1", "unknown URL query parameter"},
      // A password piece after an unencoded '&' is not named either.
      {"postgres://u@h/db?password=Zq&Xwv=1", "unknown URL query parameter"},
  };
  for (const auto& [dsn, says] : cases) {
    try {
      (void)parse_conninfo(dsn, 5);
      ADD_FAILURE() << dsn << " was accepted";
    } catch (const ConnectError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("invalid connection string: "), std::string::npos) << msg;
      EXPECT_NE(msg.find(says), std::string::npos) << dsn << " -> " << msg;
      for (const char* piece : {"Zq", "Xwv", "Jk7", "Cw3", "Rb#", "Tc9", "Lw8", "Pv8", "Mx@"})
        EXPECT_EQ(msg.find(piece), std::string::npos) << dsn << " -> " << msg;
      EXPECT_NE(e.hint().find("%40"), std::string::npos) << e.hint();
    }
  }
  // Well-formed strings still parse: encoded specials, ':' in a password, IPv6, host lists.
  for (const std::string dsn :
       {"postgres://u:p%25s%40s%2Fw%3A@h:5432/db", "postgres://u:pa:ss@h/db",
        "postgres://u:pw@[::1]:5432,h2:5433/db?sslmode=disable", "postgresql:///db?host=/tmp",
        "host=h password='a b' dbname=d", "postgres://u:pw@h/db?application_name=a@b"}) {
    EXPECT_NO_THROW((void)parse_conninfo(dsn, 5)) << dsn;
  }
  EXPECT_EQ(parse_conninfo("postgres://u:p%25s%40s@h/db", 5).password, "p%s@s");
  // Tokens that cannot be a piece of a password are named: a keyword, a close misspelling of
  // one, the port after the URL's one '@'.
  for (const auto& [dsn, says] : std::vector<std::pair<std::string, std::string>>{
           {"host=h dbname", "the keyword dbname is not followed by '='"},
           {"host=h dbnme=x", "an unknown keyword dbnme (did you mean dbname?)"},
           {"postgres://u:pw@h/db?sslmod=disable",
            "an unknown URL query parameter sslmod (did you mean sslmode?)"},
           {"postgres://u:pw@h:notaport/db", "the port notaport in the URL is not a number"}}) {
    try {
      (void)parse_conninfo(dsn, 5);
      ADD_FAILURE() << dsn << " was accepted";
    } catch (const ConnectError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << dsn << " -> " << e.what();
    }
  }
}

TEST(HostileSecrets, QuotedTokensOfConnectErrorsAreMasked) {
  EXPECT_EQ(without_quoted_tokens(
                "could not translate host name \"Hy6Wq3Tz\" to address: Name or service not known",
                {"db"}),
            "could not translate host name \"***\" to address: Name or service not known");
  EXPECT_EQ(without_quoted_tokens("connection to server at \"127.0.0.1\", port 5 failed: password "
                                  "authentication failed for user \"Rk5Hs8Wp\"",
                                  {"127.0.0.1"}),
            "connection to server at \"127.0.0.1\", port 5 failed: password authentication failed "
            "for user \"***\"");
  EXPECT_EQ(without_quoted_tokens("a lone \" quote", {}), "a lone \" quote");
}

// ---------------------------------------------------------------------------------------------
// Read-only servers.

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

std::string with_port(const std::string& url, int port) {
  const auto at = url.rfind('@');
  const auto colon = url.find(':', at);
  const auto slash = url.find('/', at);
  return url.substr(0, colon + 1) + std::to_string(port) + url.substr(slash);
}

const std::string kScript = std::string(STEPWISE_SOURCE_DIR) + "/tests/support/standby.sh";

// A hot standby of the test server, stopped and deleted on scope exit.
class Standby {
 public:
  Standby() {
    char tmpl[] = "/tmp/stepwise-standby.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    port_ = free_port();
    const auto r = run({"/bin/bash", kScript, "start", dir_, std::to_string(port_)}, {},
                       std::chrono::seconds(60));
    started_ = r.exit_code == 0;
    error_ = r.err;
  }
  ~Standby() {
    if (!dir_.empty()) (void)run({"/bin/bash", kScript, "stop", dir_});
  }
  Standby(const Standby&) = delete;
  Standby& operator=(const Standby&) = delete;
  [[nodiscard]] bool started() const { return started_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] int port() const { return port_; }

 private:
  std::string dir_;
  int port_ = 0;
  bool started_ = false;
  std::string error_;
};

bool has_server_binaries() {
  const char* bin = std::getenv("STEPWISE_TEST_PGBIN");
  const char* data = std::getenv("STEPWISE_TEST_PGDATA");
  return bin && data && fs::exists(std::string(bin) + "/pg_basebackup");
}

TEST(HostileReadOnly, HotStandbyStopsUpWithOneLineAndStillValidates) {
  REQUIRE_TEST_DATABASE();
  if (!has_server_binaries()) GTEST_SKIP() << "needs STEPWISE_TEST_PGBIN/PGDATA (with-postgres.sh)";
  TestDb db;
  MigrationDir dir;
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  dir.write("2_b.up.sql", "CREATE TABLE b (id int); INSERT INTO b VALUES (1);");
  const auto start = std::chrono::steady_clock::now();
  Standby standby;
  ASSERT_TRUE(standby.started()) << standby.error();
  const auto url = with_port(db.url(), standby.port());
  auto env = kNoUrlEnv;
  const auto on_standby = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--database-url", url, "--source", dir.path()});
    return run(stepwise_cmd(args), env);
  };
  // Replicated: the standby has the log with version 1.
  auto r = on_standby({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1 applied, 1 pending"), std::string::npos) << r.out;

  r = on_standby({"up"});
  EXPECT_EQ(r.exit_code, 16) << r.err;
  EXPECT_NE(r.err.find("is a read-only hot standby: migrations must run against the primary"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(":" + std::to_string(standby.port()) + "/" + db.name()), std::string::npos)
      << r.err;                                                     // names the server
  EXPECT_EQ(r.err.find("2_b.up.sql"), std::string::npos) << r.err;  // blames no file
  EXPECT_EQ(r.err.find("SQLSTATE"), std::string::npos) << r.err;
  r = on_standby({"--output", "json", "migrate-to", "2"});
  EXPECT_EQ(r.exit_code, 16) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).value("exit_code", 0), 16) << r.out;

  r = on_standby({"validate"});
  EXPECT_EQ(r.exit_code, 10) << r.err;  // behind: one pending, and it says so
  r = on_standby({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Nothing was written anywhere: the primary still has one succeeded attempt and no table b.
  EXPECT_EQ(db.scalar("SELECT count(*) FROM stepwise_log"), "1");
  EXPECT_EQ(db.scalar("SELECT to_regclass('b') IS NULL"), "t");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST(HostileReadOnly, ReadOnlySessionsStopWorkBeforeAnythingIsWritten) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  MigrationDir dir;
  dir.write("1_a.up.sql", "CREATE TABLE a (id int);");
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "up"}).exit_code, 0);
  dir.write("2_b.up.sql", "CREATE TABLE b (id int);");
  admin_exec("ALTER DATABASE \"" + db.name() + "\" SET default_transaction_read_only = on");
  for (const auto& mode :
       std::vector<std::vector<std::string>>{{}, {"--output", "json"}, {"--log-format", "json"}}) {
    auto args = std::vector<std::string>{"--source", dir.path()};
    args.insert(args.end(), mode.begin(), mode.end());
    args.push_back("up");
    const auto r = db.stepwise(args);
    EXPECT_EQ(r.exit_code, 16) << r.err;
    EXPECT_NE(r.err.find("sessions are read-only (default_transaction_read_only is on for this "
                         "role or database)"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("2_b.up.sql"), std::string::npos) << r.err;
  }
  // validate and status still work; nothing was written.
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "validate"}).exit_code, 10);
  EXPECT_EQ(db.stepwise({"--source", dir.path(), "status"}).exit_code, 0);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM stepwise_log"), "1");
  EXPECT_EQ(db.scalar("SELECT to_regclass('b') IS NULL"), "t");
  // The no-op path pays nothing and stays a success: with nothing pending there is no work.
  dir.remove("2_b.up.sql");
  auto r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // A read-only session that the pre-check cannot see (the step itself turns it read-only) is
  // reported as what it is, SQLSTATE 25006 and exit 16, not as a broken file.
  admin_exec("ALTER DATABASE \"" + db.name() + "\" RESET default_transaction_read_only");
  dir.write("3_c.up.sql",
            "-- stepwise:no-transaction\nSET default_transaction_read_only = on;\n"
            "CREATE TABLE c (id int);\n");
  r = db.stepwise({"--source", dir.path(), "up"});
  EXPECT_EQ(r.exit_code, 16) << r.err;
  EXPECT_NE(r.err.find("the session is read-only"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SQLSTATE 25006"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------------------------
// Other clear causes.

class Role {
 public:
  explicit Role(const TestDb& db) : db_(db) {
    name_ = "sw_role_" + db.name().substr(3);
    admin_exec("CREATE ROLE " + name_ + " LOGIN PASSWORD 'Role-Pw-1'");
  }
  ~Role() {
    try {
      db_.query("DROP OWNED BY " + name_);
      admin_exec("DROP ROLE IF EXISTS " + name_);
    } catch (...) {
    }
  }
  Role(const Role&) = delete;
  Role& operator=(const Role&) = delete;
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::string url() const {
    auto u = db_.url();
    const auto scheme = u.find("://") + 3;
    return u.substr(0, scheme) + name_ + ":Role-Pw-1" + u.substr(u.rfind('@'));
  }

 private:
  const TestDb& db_;
  std::string name_;
};

TEST(HostileCauses, NoCreateOnTheLogSchemaNamesTableSchemaPrivilegeAndRemedy) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  Role role(db);
  MigrationDir dir;
  dir.write("1_a.up.sql", "SELECT 1;");
  // With the CockroachDB rules forced (lease lock), the lease's table is the first one created.
  const char* engine = std::getenv("STEPWISE_ENGINE");
  const bool lease = engine != nullptr && std::string(engine) == "cockroachdb";
  const auto table = [&](const std::string& log) {
    return lease ? "lease lock table " + log + "_lock" : "log table " + log;
  };
  // PostgreSQL 15: PUBLIC has no CREATE on schema public; the role has no other right.
  auto r =
      run(stepwise_cmd({"--database-url", role.url(), "--source", dir.path(), "up"}), kNoUrlEnv);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot create the " + table("public.stepwise_log") + ": role " +
                       role.name() + " lacks the CREATE privilege on schema public"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("GRANT CREATE ON SCHEMA public TO " + role.name()), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--log-table"), std::string::npos) << r.err;
  // A schema that does not exist: creating it needs CREATE on the database.
  r = run(stepwise_cmd({"--database-url", role.url(), "--source", dir.path(), "--log-table",
                        "audit.stepwise_log", "up"}),
          kNoUrlEnv);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot create the " + table("audit.stepwise_log")), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("creating schema audit"), std::string::npos) << r.err;
  EXPECT_EQ(db.scalar("SELECT to_regclass('public.stepwise_log') IS NULL"), "t");
  // With the grant the advice names, the same command works.
  db.query("GRANT CREATE ON SCHEMA public TO " + role.name());
  r = run(stepwise_cmd({"--database-url", role.url(), "--source", dir.path(), "up"}), kNoUrlEnv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(HostileCauses, BackupPathIsCheckedBeforeAnythingRuns) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  ASSERT_EQ(db.stepwise({"migrate-to", "20240112100000"}).exit_code, 0);
  MigrationDir out;
  const auto upgrade = [&](const std::string& file, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"upgrade", "--to", "2.0.0", "--offline", "--backup", file};
    args.insert(args.end(), extra.begin(), extra.end());
    return db.stepwise(args);
  };
  auto r = upgrade("/missing-dir/x.dump");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--backup /missing-dir/x.dump: the directory /missing-dir does not exist"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("pg_dump"), std::string::npos) << r.err;
  r = upgrade(out.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--backup " + out.path() + ": is a directory"), std::string::npos) << r.err;
  // pg_dump's own first line, and the path.
  const auto fake = out.path() + "/fake_pg_dump";
  {
    std::ofstream f(fake);
    f << "#!/bin/sh\necho 'pg_dump: error: query failed: ERROR:  permission denied for table "
         "secret_stuff' >&2\necho 'pg_dump: detail: Query was: LOCK TABLE secret_stuff' >&2\n"
         "exit 1\n";
  }
  fs::permissions(fake, fs::perms::owner_all);
  r = upgrade(out.path() + "/x.dump", {"--pg-dump", fake});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--backup " + out.path() +
                       "/x.dump: pg_dump failed: query failed: ERROR:  permission denied for "
                       "table secret_stuff"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(out.path() + "/x.dump"));
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20240112100000");
}

}  // namespace
}  // namespace stepwise::test
