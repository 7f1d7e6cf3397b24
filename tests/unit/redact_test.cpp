#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "stepwise/redact.hpp"

namespace stepwise {
namespace {

bool contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

TEST(Redact, UrlUserinfoPasswordMasked) {
  EXPECT_EQ(redact("postgres://alice:s3cr3t@db.example.com:5432/app"),
            "postgres://***@db.example.com:5432/app");
}

TEST(Redact, PostgresqlSchemeAndTextAround) {
  EXPECT_EQ(redact("connecting to postgresql://bob:hunter22@localhost/db ..."),
            "connecting to postgresql://***@localhost/db ...");
}

TEST(Redact, UrlPasswordWithAtSignMasked) {
  EXPECT_EQ(redact("postgres://u:p@ss@host/db"), "postgres://***@host/db");
}

TEST(Redact, UrlPasswordWithColonMasked) {
  EXPECT_EQ(redact("postgres://u:pa:ss@host/db"), "postgres://***@host/db");
}

TEST(Redact, UrlPercentEncodedPasswordMasked) {
  EXPECT_EQ(redact("postgres://u:p%40ss%2Fw@host/db"), "postgres://***@host/db");
}

TEST(Redact, UrlEmptyPasswordStillMasked) {
  EXPECT_EQ(redact("postgres://u:@host/db"), "postgres://***@host/db");
}

// A user name alone may be a password typed in the wrong place: the userinfo is masked whole.
TEST(Redact, UrlUserNameAloneMasked) {
  EXPECT_EQ(redact("postgres://alice@db/app"), "postgres://***@db/app");
}

TEST(Redact, UrlWithoutUserinfoUnchanged) {
  EXPECT_EQ(redact("postgres://db/app"), "postgres://db/app");
  EXPECT_EQ(redact("postgres:///app?host=/var/run/postgresql"),
            "postgres:///app?host=/var/run/postgresql");
}

TEST(Redact, SeveralUrlsInOneText) {
  EXPECT_EQ(redact("from postgres://a:one1@h1/db to postgres://b:two2@h2/db"),
            "from postgres://***@h1/db to postgres://***@h2/db");
}

TEST(Redact, UrlInQuotes) {
  EXPECT_EQ(redact("url \"postgres://a:pw123@h/db\" failed"), "url \"postgres://***@h/db\" failed");
}

TEST(Redact, QueryPasswordMasked) {
  EXPECT_EQ(redact("postgres://u@h/db?password=s3cr3t"), "postgres://***@h/db?password=***");
}

TEST(Redact, QueryPasswordBeforeOtherParameterMasked) {
  EXPECT_EQ(redact("postgres://u@h/db?password=s3cr3t&sslmode=require"),
            "postgres://***@h/db?password=***&sslmode=require");
}

TEST(Redact, QuerySslPasswordMasked) {
  EXPECT_EQ(redact("postgres://u@h/db?sslmode=verify-full&sslpassword=keypass1"),
            "postgres://***@h/db?sslmode=verify-full&sslpassword=***");
}

TEST(Redact, KeywordPasswordMasked) {
  EXPECT_EQ(redact("host=db user=alice password=secret dbname=app"),
            "host=db user=alice password=*** dbname=app");
}

TEST(Redact, KeywordPasswordQuotedWithSpacesMasked) {
  EXPECT_EQ(redact("host=db password = 'se cret' dbname=app"), "host=db password = *** dbname=app");
}

TEST(Redact, KeywordPasswordQuotedWithEscapedQuoteMasked) {
  const auto out = redact(R"(host=db password='it\'s secret' user=x)");
  EXPECT_EQ(out, "host=db password=*** user=x");
}

TEST(Redact, KeywordCaseInsensitive) {
  EXPECT_EQ(redact("PASSWORD=Secret1 host=x"), "PASSWORD=*** host=x");
  EXPECT_EQ(redact("Password=Secret1"), "Password=***");
}

TEST(Redact, KeywordSslPasswordMasked) {
  EXPECT_EQ(redact("sslpassword=keypass1 sslkey=/k"), "sslpassword=*** sslkey=/k");
}

TEST(Redact, EnvironmentStyleAssignmentMasked) {
  EXPECT_EQ(redact("PGPASSWORD=hunter22 stepwise up"), "PGPASSWORD=*** stepwise up");
}

TEST(Redact, KnownSecretsReplaced) {
  EXPECT_EQ(redact("authentication failed, tried hunter22 twice: hunter22", {"hunter22"}),
            "authentication failed, tried *** twice: ***");
}

TEST(Redact, SeveralKnownSecrets) {
  EXPECT_EQ(redact("a=alpha123 b=beta456", {"alpha123", "beta456"}), "a=*** b=***");
}

TEST(Redact, ShortSecretsDoNotMangleText) {
  const std::string text = "database abc is ready; a b ab";
  EXPECT_EQ(redact(text, {"a"}), text);
  EXPECT_EQ(redact(text, {"ab"}), text);
  EXPECT_EQ(redact(text, {""}), text);
}

TEST(Redact, ThreeCharacterSecretReplaced) {
  EXPECT_EQ(redact("value xyz here", {"xyz"}), "value *** here");
}

TEST(Redact, ShortSecretStillMaskedByPatterns) {
  EXPECT_EQ(redact("postgres://u:ab@h/db", {"ab"}), "postgres://***@h/db");
  EXPECT_EQ(redact("password=ab host=h", {"ab"}), "password=*** host=h");
}

TEST(Redact, TextWithoutPasswordUnchanged) {
  for (const char* text : {
           "",
           "applied 3 migrations in 1.2s",
           "host=localhost port=5432 user=bob dbname=app",
           "postgres://localhost:5432/app?sslmode=require",
           "the password column was added",
           "ALTER TABLE users ADD COLUMN password_hash text;",
           "e-mail: bob@example.com",
       }) {
    EXPECT_EQ(redact(text), text) << text;
  }
}

TEST(Redact, NoSecretSurvivesManyForms) {
  const std::string pw = "Zq7xK9pW";
  const std::vector<std::string> forms{
      "postgres://u:" + pw + "@h/db",
      "postgresql://u:" + pw + "@h:5432/db?sslmode=disable",
      "postgres://u:" + pw + "@h1,h2/db",
      "postgres://u:" + pw + "@[::1]:5432/db",
      "postgres://u@h/db?password=" + pw,
      "postgres://u@h/db?sslmode=require&password=" + pw + "&application_name=x",
      "postgres://u@h/db?sslpassword=" + pw,
      "password=" + pw,
      "password = " + pw,
      "password\t=\t" + pw,
      "host=h password='" + pw + "' user=u",
      "host=h password = '" + pw + " with spaces' user=u",
      "PassWord=" + pw,
      "error: connection to \"postgres://u:" + pw + "@h/db\" failed",
      "{\"url\":\"postgres://u:" + pw + "@h/db\"}",
      "url='postgres://u:" + pw + "@h/db'",
      "postgres://u:" + pw + "@h/db postgres://v:" + pw + "@h/db",
  };
  for (const auto& text : forms) {
    const auto out = redact(text);
    EXPECT_FALSE(contains(out, pw)) << text << " -> " << out;
    EXPECT_TRUE(contains(out, "***")) << text << " -> " << out;
  }
}

TEST(Redact, NoSecretSurvivesWithKnownSecretList) {
  const std::string pw = "Zq7xK9pW";
  for (const std::string& text : {"password: " + pw, "pw " + pw + " end", pw}) {
    const auto out = redact(text, {pw});
    EXPECT_FALSE(contains(out, pw)) << text << " -> " << out;
  }
}

// libpq reads a URL's userinfo up to the first '@' before the first '/': a raw '?' or '#' in a
// password is part of the password, and must not leak.
TEST(Redact, UrlPasswordWithQueryOrFragmentDelimiterMasked) {
  for (const char* pw : {"pa?ss9", "pa#ss9", "pa?ss9&x=1"}) {
    const std::string text = std::string("postgres://u:") + pw + "@h/db";
    const auto out = redact(text);
    EXPECT_FALSE(contains(out, "ss9")) << text << " -> " << out;
  }
}

// The same holds for quotes and white space, which libpq also reads as password characters.
TEST(Redact, UrlPasswordWithQuoteOrSpaceMasked) {
  for (const char* pw : {"pa'ss9", "pa\"ss9", "pa ss9"}) {
    const std::string text = std::string("postgres://u:") + pw + "@h/db";
    const auto out = redact(text);
    EXPECT_FALSE(contains(out, "ss9")) << text << " -> " << out;
  }
}

TEST(Redact, Idempotent) {
  const auto once = redact("postgres://u:secret1@h/db?password=x2y host=h password='a b'");
  EXPECT_EQ(redact(once), once);
}

// An unencoded '/' in a password: libpq finds no '@' before the first '/' and reads part of the
// password as the port or database name. The '@' later in the same word still ends the userinfo.
TEST(Redact, UrlPasswordWithSlashMasked) {
  for (const char* pw : {"Zq/8Xw", "Zq8/Xw/Jv", "12/Zq8Xw"}) {
    const std::string text = std::string("postgres://u:") + pw + "@host/db";
    const auto out = redact(text);
    EXPECT_EQ(out, "postgres://***@host/db") << text;
    EXPECT_FALSE(contains(out, "Xw")) << text << " -> " << out;
  }
  // The word ends at white space: an e-mail address after a URL is no userinfo of it.
  EXPECT_EQ(redact("see postgres://h/db and mail bob@example.com"),
            "see postgres://h/db and mail bob@example.com");
}

TEST(Redact, UrlPasswordWithSeveralDelimitersMasked) {
  const auto out = redact("postgres://u:se@cr#et/Zq@host/db?sslmode=require");
  EXPECT_EQ(out, "postgres://***@host/db?sslmode=require");
}

// "password:" instead of "password=" (a typo in key/value form, or YAML).
TEST(Redact, PasswordWithColonSeparatorMasked) {
  EXPECT_EQ(redact("host=h password:Zq8Xw dbname=d"), "host=h password:*** dbname=d");
  EXPECT_EQ(redact("password: 'Zq 8Xw' user=u"), "password: *** user=u");
  EXPECT_EQ(redact("sslpassword:Zq8Xw"), "sslpassword:***");
  // Words that merely start with "password" are left alone.
  EXPECT_EQ(redact("password_hash: text"), "password_hash: text");
}

}  // namespace
}  // namespace stepwise
