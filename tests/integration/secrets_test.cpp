// A password never reaches stdout or stderr: not from a URL, a query parameter, a keyword
// string, an environment variable, or a server error.
#include <gtest/gtest.h>

#include "test_db.hpp"

namespace stepwise::test {
namespace {

std::string password_of(const std::string& url) {
  const auto scheme = url.find("://") + 3;
  const auto at = url.find('@', scheme);
  const auto colon = url.find(':', scheme);
  return url.substr(colon + 1, at - colon - 1);
}

void expect_no_secret(const ProcessResult& r, const std::string& secret) {
  ASSERT_FALSE(secret.empty());
  EXPECT_EQ(r.out.find(secret), std::string::npos) << "stdout leaks the password:\n" << r.out;
  EXPECT_EQ(r.err.find(secret), std::string::npos) << "stderr leaks the password:\n" << r.err;
}

TEST(Secrets, PasswordInUrlIsNeverPrinted) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto pw = password_of(db.url());
  for (const auto& args : std::vector<std::vector<std::string>>{{"--log-level", "trace", "up"},
                                                                {"--log-level", "trace", "status"},
                                                                {"--output", "json", "status"}}) {
    const auto r = db.stepwise(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    expect_no_secret(r, pw);
  }
}

TEST(Secrets, WrongPasswordErrorDoesNotEchoIt) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const std::string wrong = "Wr0ng-Secret-Value";
  auto url = db.url();
  const auto pw = password_of(url);
  url.replace(url.find(":" + pw + "@") + 1, pw.size(), wrong);
  const auto r = run(stepwise_cmd({"--database-url", url, "--connect-timeout", "2s", "--log-level",
                                   "trace", "up"}),
                     {{"STEPWISE_DATABASE_URL", ""}, {"DATABASE_URL", ""}});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("password authentication failed"), std::string::npos) << r.err;
  expect_no_secret(r, wrong);
}

TEST(Secrets, PasswordAsQueryParameterAndKeywordAndEnv) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  const auto pw = password_of(db.url());
  auto no_pw = db.url();
  no_pw.erase(no_pw.find(":" + pw + "@"), pw.size() + 1);  // postgres://postgres@host:port/db
  const std::map<std::string, std::string> clean{{"STEPWISE_DATABASE_URL", ""},
                                                 {"DATABASE_URL", ""}};
  // ?password=
  auto r = run(
      stepwise_cmd({"--database-url", no_pw + "?password=" + pw, "--log-level", "debug", "status"}),
      clean);
  EXPECT_EQ(r.exit_code, 10) << r.err;  // connected; no log table yet
  expect_no_secret(r, pw);
  // keyword/value form, with a typo after it so libpq rejects it and quotes the input
  r = run(stepwise_cmd({"--database-url", "host=127.0.0.1 password=" + pw + " dbname", "status"}),
          clean);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  expect_no_secret(r, pw);
  // PGPASSWORD from the environment, and a mistyped flag that carries the URL
  auto env = clean;
  env["PGPASSWORD"] = pw;
  r = run(stepwise_cmd({"--database-url", no_pw, "--log-level", "trace", "status"}), env);
  EXPECT_EQ(r.exit_code, 10) << r.err;
  expect_no_secret(r, pw);
  r = run(stepwise_cmd({"--databse-url", db.url(), "status"}), clean);
  EXPECT_EQ(r.exit_code, 2);
  expect_no_secret(r, pw);
}

}  // namespace
}  // namespace stepwise::test
