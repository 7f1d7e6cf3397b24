// stepwise serve over real HTTP against the real server: auth, the read endpoints, upgrades
// with their event stream, 409 across two serve processes, cancel, SIGTERM, bad requests that
// never reach the database, and no secret in any answer.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "process.hpp"
#include "serve_process.hpp"
#include "tcp_forwarder.hpp"
#include "test_db.hpp"

namespace stepwise::test {
namespace {

// A database at release 1.0 of a slow set, and the --source args for it.
struct SlowSet {
  MigrationDir dir;
  SlowSet(const TestDb& db, int steps, double sleep_s, const std::string& extra = {}) {
    write_slow_set(dir, steps, sleep_s, extra);
    const auto r = db.stepwise({"--source", dir.path(), "migrate-to", "20250101000000"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  [[nodiscard]] std::vector<std::string> source() const { return {"--source", dir.path()}; }
};

std::vector<std::string> types(const std::vector<ServeProcess::Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type);
  return out;
}

TEST(ServeApi, HealthReadinessStateReleasesAndPlan) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 3, 0);
  ServeProcess serve(db.url(), {}, set.source());
  EXPECT_EQ(serve.get("/healthz", {}).status, 200);
  EXPECT_EQ(serve.get("/readyz", {}).status, 200);
  auto a = serve.get("/v1/database");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.json["command"], "validate");
  EXPECT_FALSE(a.json["ok"]);
  EXPECT_EQ(a.json["exit_code"], 10);
  EXPECT_EQ(a.json["database_version"], 20250101000000LL);
  EXPECT_NE(a.json["meaning"].get<std::string>().find("pending"), std::string::npos);
  a = serve.get("/v1/database?release=1.0");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_TRUE(a.json["ok"]) << a.body;
  a = serve.get("/v1/releases");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.json["current"], "1.0");
  EXPECT_EQ(a.json["latest"], "2.0");
  EXPECT_EQ(a.json["releases"].size(), 2u);
  a = serve.get("/v1/plan?to=2.0");
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_TRUE(a.json["dry_run"]);
  EXPECT_EQ(a.json["plan"]["steps"], 3);
  EXPECT_EQ(a.json["plan"]["stages"][0]["migrations"][0], "20250102000001_slow_1.up.sql");
  EXPECT_EQ(serve.get("/v1/plan?to=9.9").status, 422);
  EXPECT_EQ(serve.get("/v1/plan").status, 400);
  // Reading changed nothing.
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20250101000000");
  const auto m = serve.get("/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("stepwise_schema_version 20250101000000\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("stepwise_pending_migrations 3\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("# TYPE stepwise_upgrades_total counter"), std::string::npos) << m.body;
}

TEST(ServeAuth, MissingTokenIs401WrongTokenIs403PublicReadOpensReadsOnly) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 1, 0);
  {
    ServeProcess serve(db.url(), {}, set.source());
    for (const auto* path :
         {"/v1/database", "/v1/releases", "/v1/plan?to=2.0", "/metrics", "/v1/upgrades"}) {
      EXPECT_EQ(serve.get(path, {}).status, 401) << path;
      EXPECT_EQ(serve.get(path, ServeProcess::auth("wrong-token")).status, 403) << path;
      EXPECT_EQ(serve.get(path, {{"Authorization", "Basic dXNlcjpwYXNz"}}).status, 401) << path;
      EXPECT_EQ(serve.get(path).status, 200) << path;
    }
    EXPECT_EQ(serve.post("/v1/upgrades", R"({"to": "2.0"})", {}).status, 401);
    const auto wrong =
        serve.post("/v1/upgrades", R"({"to": "2.0"})", ServeProcess::auth(kServeToken + "x"));
    EXPECT_EQ(wrong.status, 403);
    // The page itself holds no data: open, and without cookies.
    auto c = serve.client();
    const auto page = c->Get("/");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_FALSE(page->has_header("Set-Cookie"));
    EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'none'"),
              std::string::npos);
  }
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20250101000000");
  ServeProcess open(db.url(), {"--public-read"}, set.source());
  EXPECT_EQ(open.get("/v1/database", {}).status, 200);
  EXPECT_EQ(open.post("/v1/upgrades", R"({"to": "2.0"})", {}).status, 401);
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20250101000000");
  // No token and no --public-read: nothing could be served.
  const auto r = run(stepwise_cmd({"--database-url", db.url(), "serve", "--listen", "127.0.0.1:0"}),
                     {{"STEPWISE_TOKEN", ""}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no token"), std::string::npos) << r.err;
}

TEST(ServeBadRequests, BadJsonAndOversizedBodiesNeverReachTheDatabase) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 1, 0);
  // The database behind a forwarder that is not accepting yet: any connection attempt fails.
  TcpForwarder closed(server_port(db.url()));
  const auto url = with_port(db.url(), closed.port());
  auto global = set.source();
  global.insert(global.end(), {"--connect-timeout", "1s"});
  ServeProcess serve(url, {"--max-body", "1024"}, global);
  EXPECT_EQ(serve.post("/v1/upgrades", "{not json").status, 400);
  EXPECT_EQ(serve.post("/v1/upgrades", "[1, 2]").status, 400);
  EXPECT_EQ(serve.post("/v1/upgrades", R"({"offline": true})").status, 400);
  EXPECT_EQ(serve.post("/v1/upgrades", R"({"to": 2})").status, 400);
  EXPECT_EQ(serve.post("/v1/upgrades", R"({"to": "2.0", "offline": "yes"})").status, 400);
  EXPECT_EQ(serve.post("/v1/upgrades", R"({"to": "2.0", "drop": "everything"})").status, 400);
  EXPECT_EQ(
      serve.post("/v1/upgrades", R"({"to": "2.0", "backup": "/nonexistent-dir/x.dump"})").status,
      400);
  const auto unknown = serve.post("/v1/upgrades", R"({"to": "9.9"})");
  EXPECT_EQ(unknown.status, 422) << unknown.body;
  const auto big =
      serve.post("/v1/upgrades", R"({"to": "2.0", "pad": ")" + std::string(4096, 'x') + "\"}");
  EXPECT_EQ(big.status, 413) << big.body;
  // Only a valid request tries to connect, and finds the database unreachable.
  const auto valid = serve.post("/v1/upgrades", R"({"to": "2.0"})");
  EXPECT_EQ(valid.status, 503) << valid.body;
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log"), "20250101000000");
  EXPECT_EQ(serve.get("/readyz", {}).status, 503);
}

TEST(ServeUpgrade, EventsArriveInOrderAndALateSubscriberGetsTheSameStream) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 3, 0.2);
  ServeProcess serve(db.url(), {}, set.source());
  const auto started = serve.post("/v1/upgrades", R"({"to": "2.0"})");
  ASSERT_EQ(started.status, 202) << started.body;
  const auto id = started.json["id"].get<std::string>();
  auto live = std::async(std::launch::async, [&] { return serve.events(id); });
  const auto events = live.get();
  const std::vector<std::string> want = {
      "started",       "checking",        "plan",         "release_started", "lock_acquired",
      "step_started",  "step_finished",   "step_started", "step_finished",   "step_started",
      "step_finished", "release_reached", "finished"};
  EXPECT_EQ(types(events), want) << serve.last_stream();
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].id, (long long)i + 1);
  int step = 0;
  for (const auto& e : events) {
    if (e.type == "step_started") {
      EXPECT_EQ(e.data["step"], ++step);
    }
    if (e.type == "step_finished") {
      EXPECT_EQ(e.data["step"], step);
      EXPECT_EQ(e.data["steps"], 3);
      EXPECT_EQ(e.data["release"], "2.0");
      EXPECT_GE(e.data["duration_ms"].get<long long>(), 190) << e.data.dump();
      EXPECT_TRUE(e.data.contains("remaining_ms"));
    }
  }
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().data["state"], "succeeded");
  EXPECT_EQ(events.back().data["reached"], "2.0");
  EXPECT_EQ(events.back().data["applied"], 3);
  // A subscriber after the end: the same events, replayed.
  const auto again = serve.events(id);
  ASSERT_EQ(again.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(again[i].data, events[i].data);
  // Last-Event-ID resumes after that event.
  std::string tail;
  auto c = serve.client();
  auto h = ServeProcess::auth();
  h.emplace("Last-Event-ID", std::to_string(events.size() - 1));
  (void)c->Get(("/v1/upgrades/" + id + "/events").c_str(), h, [&](const char* d, std::size_t n) {
    tail.append(d, n);
    return true;
  });
  EXPECT_EQ(tail.rfind("id: " + std::to_string(events.size()) + "\nevent: finished\n", 0), 0u)
      << tail;
  const auto state = serve.get("/v1/upgrades/" + id);
  EXPECT_EQ(state.json["state"], "succeeded");
  EXPECT_EQ(state.json["from"], "1.0");
  EXPECT_EQ(db.scalar("SELECT max(version) FROM stepwise_log WHERE outcome = 'succeeded'"),
            "20250102000003");
  const auto m = serve.get("/metrics");
  EXPECT_NE(m.body.find("stepwise_upgrades_total{outcome=\"succeeded\"} 1\n"), std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("stepwise_last_upgrade_success 1\n"), std::string::npos) << m.body;
  EXPECT_EQ(serve.get("/v1/upgrades/0123abcd").status, 404);
}

TEST(ServeUpgrade, TwoServeProcessesRacingGetOne202AndOne409) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 3, 0.3);
  ServeProcess a(db.url(), {}, set.source());
  ServeProcess b(db.url(), {}, set.source());
  auto ra =
      std::async(std::launch::async, [&] { return a.post("/v1/upgrades", R"({"to": "2.0"})"); });
  auto rb =
      std::async(std::launch::async, [&] { return b.post("/v1/upgrades", R"({"to": "2.0"})"); });
  const auto x = ra.get();
  const auto y = rb.get();
  const std::multiset<int> statuses = {x.status, y.status};
  EXPECT_EQ(statuses, (std::multiset<int>{202, 409})) << x.body << "\n" << y.body;
  const auto& winner = x.status == 202 ? a : b;
  const auto& loser = x.status == 202 ? b : a;
  const auto& refused = x.status == 202 ? y : x;
  EXPECT_NE(refused.json.value("error", "").find("running"), std::string::npos) << refused.body;
  const auto id = (x.status == 202 ? x : y).json.value("id", "");
  // The winner refuses a second one too, while its own runs; the loser still, via the lock.
  EXPECT_EQ(winner.post("/v1/upgrades", R"({"to": "2.0"})").status, 409);
  EXPECT_EQ(loser.post("/v1/upgrades", R"({"to": "2.0"})").status, 409);
  EXPECT_EQ(winner.wait_for(id)["state"], "succeeded");
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded' AND version "
                     "LIKE '20250102%'"),
            3);
  // Once it is done, the lock is free again: the loser may start one (nothing left to do).
  const auto after = loser.post("/v1/upgrades", R"({"to": "2.0"})");
  ASSERT_EQ(after.status, 202) << after.body;
  EXPECT_EQ(loser.wait_for(after.json["id"])["state"], "succeeded");
}

TEST(ServeUpgrade, CancelStopsAtTheNextStepBoundary) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 4, 0.6);
  ServeProcess serve(db.url(), {}, set.source());
  const auto started = serve.post("/v1/upgrades", R"({"to": "2.0"})");
  ASSERT_EQ(started.status, 202) << started.body;
  const auto id = started.json["id"].get<std::string>();
  // Wait until the first step runs, then cancel.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline &&
         serve.get("/v1/upgrades/" + id).json["current"].value("state", "") != "running")
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(serve.post("/v1/upgrades/" + id + "/cancel", "", {}).status, 401);
  const auto cancel = serve.post("/v1/upgrades/" + id + "/cancel", "");
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  const auto end = serve.wait_for(id);
  EXPECT_EQ(end["state"], "cancelled") << end.dump();
  const auto events = serve.events(id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "cancelled");
  // The step that was running finished; nothing failed or was left half done.
  const auto done = db.count(
      "SELECT count(*) FROM stepwise_log WHERE outcome = 'succeeded' AND version LIKE '20250102%'");
  EXPECT_GE(done, 1);
  EXPECT_LT(done, 4);
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE outcome <> 'succeeded'"), 0);
  int finished = 0;
  for (const auto& e : events) finished += e.type == "step_finished";
  EXPECT_EQ(finished, done);
  EXPECT_EQ(serve.post("/v1/upgrades/" + id + "/cancel", "").status, 409);
}

TEST(ServeUpgrade, BackupIsWrittenBeforeTheFirstStep) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 1, 0);
  MigrationDir out;
  ServeProcess serve(db.url(), {}, set.source());
  const auto file = out.path() + "/before.dump";
  const auto started =
      serve.post("/v1/upgrades", nlohmann::json{{"to", "2.0"}, {"backup", file}}.dump());
  ASSERT_EQ(started.status, 202) << started.body;
  const auto events = serve.events(started.json["id"]);
  const auto t = types(events);
  const auto backup = std::find(t.begin(), t.end(), "backup_finished");
  const auto first_step = std::find(t.begin(), t.end(), "step_started");
  ASSERT_NE(backup, t.end()) << serve.last_stream();
  EXPECT_LT(backup - t.begin(), first_step - t.begin());
  EXPECT_EQ(t.back(), "finished") << serve.last_stream();
  EXPECT_EQ(events.front().data["backup"], file);
  EXPECT_EQ(events.front().data["upgrade"], started.json["id"]);
  EXPECT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(db.count("SELECT count(*) FROM stepwise_log WHERE kind = 'backup'"), 1);
}

TEST(ServeUpgrade, AFailedStepNamesTheFileAndSqlstate) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 1, 0, "SELECT 1/0;\n");
  ServeProcess serve(db.url(), {}, set.source());
  const auto started = serve.post("/v1/upgrades", R"({"to": "2.0"})");
  ASSERT_EQ(started.status, 202) << started.body;
  const auto events = serve.events(started.json["id"]);
  ASSERT_FALSE(events.empty());
  const auto& last = events.back();
  EXPECT_EQ(last.type, "failed") << serve.last_stream();
  EXPECT_EQ(last.data["file"], "20250102000002_extra.up.sql");
  EXPECT_EQ(last.data["sqlstate"], "22012");
  EXPECT_EQ(last.data["exit_code"], 1);
  EXPECT_NE(last.data["error"].get<std::string>().find("division by zero"), std::string::npos);
  const auto m = serve.get("/metrics");
  EXPECT_NE(m.body.find("stepwise_upgrades_total{outcome=\"failed\"} 1\n"), std::string::npos);
  EXPECT_NE(m.body.find("stepwise_last_upgrade_success 0\n"), std::string::npos);
}

TEST(ServeSignals, SigtermInterruptsTheRunningStepAndExitsCleanly) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 2, 20);
  ServeProcess serve(db.url(), {}, set.source());
  const auto started = serve.post("/v1/upgrades", R"({"to": "2.0"})");
  ASSERT_EQ(started.status, 202) << started.body;
  const auto id = started.json["id"].get<std::string>();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline &&
         serve.get("/v1/upgrades/" + id).json["current"].value("state", "") != "running")
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  serve.process().signal(SIGTERM);
  const auto r = serve.wait(std::chrono::seconds(15));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(r.took, std::chrono::seconds(20)) << "the 20 s step was not interrupted";
  EXPECT_NE(r.err.find("received SIGTERM"), std::string::npos) << r.err;
  EXPECT_EQ(db.scalar("SELECT outcome FROM stepwise_log WHERE version = '20250102000001'"),
            "interrupted");
}

TEST(ServeSecrets, NoPasswordInAnyResponseEventOrPage) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto at = db.url().find("://");
  const auto colon = db.url().find(':', at + 3);
  const auto amp = db.url().find('@');
  ASSERT_NE(amp, std::string::npos);
  const auto password = db.url().substr(colon + 1, amp - colon - 1);
  ASSERT_GE(password.size(), 6u);
  // A step whose error quotes the password (as a bad value), and a pg_dump that fails.
  SlowSet set(db, 1, 0, "SELECT '" + password + "'::int;\n");
  ServeProcess serve(db.url(), {}, set.source());
  std::string seen;
  for (const auto* path : {"/", "/healthz", "/readyz", "/v1/database", "/v1/releases",
                           "/v1/plan?to=2.0", "/metrics", "/v1/upgrades"})
    seen += serve.get(path).body;
  const auto started = serve.post("/v1/upgrades", R"({"to": "2.0"})");
  ASSERT_EQ(started.status, 202) << started.body;
  seen += started.body;
  const auto id = started.json["id"].get<std::string>();
  const auto events = serve.events(id);
  seen += serve.last_stream();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, "failed");
  EXPECT_NE(events.back().data["error"].get<std::string>().find("***"), std::string::npos)
      << events.back().data.dump();
  seen += serve.get("/v1/upgrades/" + id).body;
  seen += serve.get("/v1/upgrades").body;
  seen += serve.get("/metrics").body;
  EXPECT_EQ(seen.find(password), std::string::npos) << "a response leaks the password";
  EXPECT_EQ(seen.find(kServeToken), std::string::npos) << "a response leaks the token";
  serve.process().signal(SIGTERM);
  const auto r = serve.wait(std::chrono::seconds(10));
  EXPECT_EQ(r.err.find(password), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find(password), std::string::npos) << r.out;
}

TEST(ServeReadUrl, ReadEndpointsUseTheSeparateConnection) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  SlowSet set(db, 1, 0);
  // An unreachable read URL: reads fail with 503, while the upgrade (main URL) still works.
  TcpForwarder closed(server_port(db.url()));
  auto global = set.source();
  global.insert(global.end(), {"--connect-timeout", "1s"});
  ServeProcess serve(db.url(), {"--read-database-url", with_port(db.url(), closed.port())}, global);
  EXPECT_EQ(serve.get("/v1/database").status, 503);
  EXPECT_EQ(serve.get("/readyz", {}).status, 503);
  const auto started = serve.post("/v1/upgrades", R"({"to": "2.0"})");
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_EQ(serve.wait_for(started.json["id"])["state"], "succeeded");
}

// The HTTP transport is a module only serve loads: a binary without it still runs everything
// else, and serve says in one line what is missing and where it looked (exit 1).
TEST(ServeModule, BinaryWithoutItsHttpModuleSaysSoAndEverythingElseRuns) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const MigrationDir dir;
  const auto bin = std::filesystem::path(dir.path()) / "bin" / "stepwise";
  std::filesystem::create_directories(bin.parent_path());
  std::filesystem::copy_file(stepwise_cmd({}).front(), bin);
  const auto up = run({bin.string(), "--database-url", db.url(), "up"});
  EXPECT_EQ(up.exit_code, 0) << up.err;
  const auto serve = run({bin.string(), "--database-url", db.url(), "serve", "--listen",
                          "127.0.0.1:0", "--public-read"},
                         {}, std::chrono::seconds(20));
  EXPECT_EQ(serve.exit_code, 1) << serve.err;
  EXPECT_NE(serve.err.find("its HTTP module stepwise-http.so is missing (looked in " +
                           (bin.parent_path() / "stepwise-http.so").string()),
            std::string::npos)
      << serve.err;
  EXPECT_EQ(std::count(serve.err.begin(), serve.err.end(), '\n'), 2) << serve.err;  // error + hint
}

}  // namespace
}  // namespace stepwise::test
