#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "stepwise/checksum.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/migration.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {

// ---------------------------------------------------------------- helpers

MigrationFile file(std::string name, std::string bytes) {
  MigrationFile f;
  f.name = std::move(name);
  f.bytes = std::move(bytes);
  return f;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto nl = s.find('\n', start);
    out.push_back(s.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

// Runs build_migration_set and returns the SourceError message, or fails the test.
std::string build_error(const std::vector<MigrationFile>& files) {
  try {
    (void)build_migration_set(files);
  } catch (const SourceError& e) {
    EXPECT_EQ(e.code(), ExitCode::kInvalidSource);
    return e.what();
  }
  ADD_FAILURE() << "build_migration_set accepted the files";
  return {};
}

bool contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------- parse_file_name

TEST(ParseFileName, ValidUp) {
  std::string problem = "stale";
  const auto fn = parse_file_name("20240101120000_create_users.up.sql", &problem);
  ASSERT_TRUE(fn.has_value()) << problem;
  EXPECT_TRUE(problem.empty());
  EXPECT_EQ(fn->version, 20240101120000);
  EXPECT_EQ(fn->slug, "create_users");
  EXPECT_EQ(fn->direction, Direction::kUp);
}

TEST(ParseFileName, ValidDown) {
  std::string problem;
  const auto fn = parse_file_name("7_drop_things.down.sql", &problem);
  ASSERT_TRUE(fn.has_value()) << problem;
  EXPECT_EQ(fn->version, 7);
  EXPECT_EQ(fn->slug, "drop_things");
  EXPECT_EQ(fn->direction, Direction::kDown);
}

TEST(ParseFileName, SlugMayHoldUnderscoresDashesAndDots) {
  std::string problem;
  const auto fn = parse_file_name("3_add_col-x_v2.1.up.sql", &problem);
  ASSERT_TRUE(fn.has_value()) << problem;
  EXPECT_EQ(fn->version, 3);
  EXPECT_EQ(fn->slug, "add_col-x_v2.1");
}

TEST(ParseFileName, LeadingZeros) {
  std::string problem;
  const auto fn = parse_file_name("0001_init.up.sql", &problem);
  ASSERT_TRUE(fn.has_value()) << problem;
  EXPECT_EQ(fn->version, 1);
  EXPECT_EQ(fn->slug, "init");
}

TEST(ParseFileName, MaxInt64Accepted) {
  std::string problem;
  const auto fn = parse_file_name("9223372036854775807_max.up.sql", &problem);
  ASSERT_TRUE(fn.has_value()) << problem;
  EXPECT_EQ(fn->version, 9223372036854775807LL);
}

void expect_bad_name(std::string_view name, std::string_view why_fragment = {}) {
  std::string problem;
  const auto fn = parse_file_name(name, &problem);
  EXPECT_FALSE(fn.has_value()) << name;
  ASSERT_FALSE(problem.empty()) << name << ": no problem reported";
  // The name as it can stand in a one-line message: escaped when it holds control characters.
  EXPECT_TRUE(problem.starts_with(display_name(name) + ": ")) << problem;
  EXPECT_EQ(problem.find('\n'), std::string::npos) << problem;
  if (!why_fragment.empty()) {
    EXPECT_TRUE(contains(problem, why_fragment)) << problem;
  }
}

TEST(ParseFileName, VersionZeroRefused) {
  expect_bad_name("0_init.up.sql", "positive");
  expect_bad_name("0000_init.up.sql", "positive");
}

TEST(ParseFileName, VersionsOfAnyLengthAccepted) {
  std::string problem;
  const auto big = parse_file_name("9223372036854775808_big.up.sql", &problem);
  ASSERT_TRUE(big.has_value()) << problem;
  EXPECT_EQ(big->version.to_string(), "9223372036854775808");
  const std::string digits38 = "12345678901234567890123456789012345678";
  const auto huge = parse_file_name(digits38 + "_huge.down.sql", &problem);
  ASSERT_TRUE(huge.has_value()) << problem;
  EXPECT_EQ(huge->version.to_string(), digits38);
  EXPECT_EQ(huge->direction, Direction::kDown);
  // Ory Kratos: 20-digit timestamps.
  const auto ory = parse_file_name("20150100000001000000_networks.up.sql", &problem);
  ASSERT_TRUE(ory.has_value()) << problem;
  EXPECT_EQ(ory->version.to_string(), "20150100000001000000");
  EXPECT_GT(ory->version, Version(9223372036854775807LL));
}

TEST(ParseFileName, LeadingZerosIgnored) {
  // golang-migrate / Mattermost style.
  std::string problem;
  const auto fn = parse_file_name("000001_create_teams.up.sql", &problem);
  ASSERT_TRUE(fn.has_value()) << problem;
  EXPECT_EQ(fn->version, Version(1));
  EXPECT_EQ(fn->version.to_string(), "1");
  EXPECT_EQ(fn->slug, "create_teams");
}

TEST(ParseFileName, MissingUnderscoreRefused) {
  expect_bad_name("1init.up.sql", "'_'");
  expect_bad_name("20240101.up.sql", "'_'");
  expect_bad_name("1-init.up.sql", "'_'");
}

TEST(ParseFileName, NoVersionRefused) {
  expect_bad_name("init.up.sql", "version");
  expect_bad_name("_init.up.sql", "version");
  expect_bad_name("v1_init.up.sql", "version");
}

TEST(ParseFileName, EmptySlugRefused) {
  expect_bad_name("1_.up.sql", "empty");
}

TEST(ParseFileName, SqlWithoutDirectionRefused) {
  expect_bad_name("001_init.sql");
  expect_bad_name("001_init.upp.sql");
  expect_bad_name("001_init.up.down.sqlx.sql");
}

TEST(ParseFileName, ControlCharacterInSlugRefused) {
  expect_bad_name("1_bad\tname.up.sql");
}

TEST(ParseFileName, InvalidUtf8SlugRefused) {
  expect_bad_name("1_caf\xe9.up.sql", "UTF-8");
}

TEST(ParseFileName, NonSqlFilesIgnoredSilently) {
  for (const char* name : {"README.md", "releases.json", "1_init.up.sql.bak", "1_init.up.txt",
                           "notes", "1_init.up.sql~"}) {
    std::string problem = "stale";
    EXPECT_FALSE(parse_file_name(name, &problem).has_value()) << name;
    EXPECT_TRUE(problem.empty()) << name << ": " << problem;
  }
}

TEST(ParseFileName, HiddenFilesIgnoredSilently) {
  for (const char* name : {".1_init.up.sql", ".#1_init.up.sql", "._1_init.up.sql", ".sql"}) {
    std::string problem = "stale";
    EXPECT_FALSE(parse_file_name(name, &problem).has_value()) << name;
    EXPECT_TRUE(problem.empty()) << name << ": " << problem;
  }
}

TEST(ParseFileName, EmptyNameIgnored) {
  std::string problem = "stale";
  EXPECT_FALSE(parse_file_name("", &problem).has_value());
  EXPECT_TRUE(problem.empty());
}

// ---------------------------------------------------------------- parse_directives

Directives directives(std::string_view sql, std::string* problem) {
  return parse_directives("5_x.up.sql", sql, problem);
}

TEST(ParseDirectives, NoneMeansTransaction) {
  std::string problem = "stale";
  EXPECT_EQ(directives("CREATE TABLE t (id int);\n", &problem).tx, TxMode::kTransaction);
  EXPECT_TRUE(problem.empty());
  EXPECT_EQ(directives("-- just a comment\nSELECT 1;", &problem).tx, TxMode::kTransaction);
  EXPECT_TRUE(problem.empty());
}

TEST(ParseDirectives, NoTransactionSpellings) {
  for (const char* sql : {
           "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);",
           "--stepwise:no-transaction\nSELECT 1;",
           "--   stepwise:no-transaction   \nSELECT 1;",
           "-- stepwise: no-transaction\nSELECT 1;",
           "-- STEPWISE:NO-TRANSACTION\nSELECT 1;",
           "-- Stepwise:No-Transaction\nSELECT 1;",
           "\t-- stepwise:no-transaction\t\nSELECT 1;",
           "-- stepwise:no-transaction\r\nSELECT 1;\r\n",
           "\n\n-- stepwise:no-transaction\nSELECT 1;",
           "-- header comment\n-- stepwise:no-transaction\nSELECT 1;",
           "-- stepwise:no-transaction",
       }) {
    std::string problem = "stale";
    EXPECT_EQ(directives(sql, &problem).tx, TxMode::kNoTransaction) << sql;
    EXPECT_TRUE(problem.empty()) << sql << ": " << problem;
  }
}

TEST(ParseDirectives, UnknownDirectiveReportedNamingFile) {
  std::string problem;
  const auto d =
      parse_directives("42_add_index.up.sql", "-- stepwise:no-transactions\nSELECT 1;", &problem);
  EXPECT_EQ(d.tx, TxMode::kTransaction);
  ASSERT_FALSE(problem.empty());
  EXPECT_TRUE(problem.starts_with("42_add_index.up.sql: ")) << problem;
  EXPECT_TRUE(contains(problem, "no-transactions")) << problem;
  EXPECT_TRUE(contains(problem, "unknown directive")) << problem;
}

TEST(ParseDirectives, EmptyDirectiveReported) {
  std::string problem;
  (void)parse_directives("1_a.up.sql", "-- stepwise:\nSELECT 1;", &problem);
  EXPECT_TRUE(problem.starts_with("1_a.up.sql: ")) << problem;
}

TEST(ParseDirectives, UnknownDirectiveDoesNotHideKnownOne) {
  std::string problem;
  const auto d =
      directives("-- stepwise:frobnicate\n-- stepwise:no-transaction\nSELECT 1;", &problem);
  EXPECT_EQ(d.tx, TxMode::kNoTransaction);
  EXPECT_TRUE(contains(problem, "frobnicate")) << problem;
}

TEST(ParseDirectives, DirectiveAfterFirstSqlLineIgnored) {
  std::string problem = "stale";
  EXPECT_EQ(directives("SELECT 1;\n-- stepwise:no-transaction\nSELECT 2;", &problem).tx,
            TxMode::kTransaction);
  EXPECT_TRUE(problem.empty()) << problem;
  EXPECT_EQ(directives("SELECT 1;\n-- stepwise:bogus\n", &problem).tx, TxMode::kTransaction);
  EXPECT_TRUE(problem.empty()) << "a directive after SQL is just a comment: " << problem;
}

TEST(ParseDirectives, DirectiveNotAtLineStartIgnored) {
  std::string problem = "stale";
  EXPECT_EQ(directives("SELECT 1; -- stepwise:no-transaction\n", &problem).tx,
            TxMode::kTransaction);
  EXPECT_TRUE(problem.empty());
}

TEST(ParseDirectives, ByteOrderMarkSkipped) {
  std::string problem = "stale";
  EXPECT_EQ(directives("\xEF\xBB\xBF-- stepwise:no-transaction\nSELECT 1;", &problem).tx,
            TxMode::kNoTransaction);
  EXPECT_TRUE(problem.empty()) << problem;
}

// ---------------------------------------------------------------- build_migration_set

TEST(BuildMigrationSet, EmptyInputIsEmptySet) {
  const auto set = build_migration_set({});
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(set.size(), 0u);
  EXPECT_EQ(set.latest(), 0);
  EXPECT_EQ(set.find(1), nullptr);
}

TEST(BuildMigrationSet, BuildsScriptsWithChecksumsAndTxMode) {
  const std::vector<MigrationFile> files{
      file("1_users.up.sql", "CREATE TABLE users (id int);\n"),
      file("1_users.down.sql", "DROP TABLE users;\n"),
      file("2_idx.up.sql",
           "-- stepwise:no-transaction\nCREATE INDEX CONCURRENTLY i ON users (id);\n"),
  };
  const auto set = build_migration_set(files);
  ASSERT_EQ(set.size(), 2u);
  const auto& m1 = set.all()[0];
  EXPECT_EQ(m1.version, 1);
  EXPECT_EQ(m1.name, "users");
  EXPECT_EQ(m1.up.file, "1_users.up.sql");
  EXPECT_EQ(m1.up.sql, "CREATE TABLE users (id int);\n");
  EXPECT_EQ(m1.up.checksum, sha256_hex("CREATE TABLE users (id int);\n"));
  EXPECT_EQ(m1.up.tx, TxMode::kTransaction);
  ASSERT_TRUE(m1.down.has_value());
  EXPECT_EQ(m1.down->file, "1_users.down.sql");
  EXPECT_EQ(m1.down->checksum, sha256_hex("DROP TABLE users;\n"));
  const auto& m2 = set.all()[1];
  EXPECT_EQ(m2.version, 2);
  EXPECT_FALSE(m2.down.has_value());
  EXPECT_EQ(m2.up.tx, TxMode::kNoTransaction);
  EXPECT_EQ(set.latest(), 2);
  EXPECT_EQ(set.find(2), &set.all()[1]);
  EXPECT_EQ(set.find(3), nullptr);
}

TEST(BuildMigrationSet, SortsNumericallyNotLexically) {
  const std::vector<MigrationFile> files{
      file("10_ten.up.sql", "SELECT 10;"),       file("9_nine.up.sql", "SELECT 9;"),
      file("100_hundred.up.sql", "SELECT 100;"), file("0011_eleven.up.sql", "SELECT 11;"),
      file("2_two.up.sql", "SELECT 2;"),
  };
  const auto set = build_migration_set(files);
  ASSERT_EQ(set.size(), 5u);
  std::vector<Version> versions;
  for (const auto& m : set.all()) versions.push_back(m.version);
  EXPECT_EQ(versions, (std::vector<Version>{2, 9, 10, 11, 100}));
  EXPECT_EQ(set.latest(), 100);
  ASSERT_NE(set.find(11), nullptr);
  EXPECT_EQ(set.find(11)->up.file, "0011_eleven.up.sql");
}

TEST(BuildMigrationSet, NonSqlAndHiddenFilesIgnored) {
  const std::vector<MigrationFile> files{
      file("README.md", ""),
      file("releases.json", "{}"),
      file(".1_hidden.up.sql", ""),
      file("1_a.up.sql", "SELECT 1;"),
  };
  const auto set = build_migration_set(files);
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set.all()[0].up.file, "1_a.up.sql");
}

TEST(BuildMigrationSet, DuplicateVersionNamesBothFiles) {
  const auto msg = build_error({file("1_a.up.sql", "SELECT 1;"), file("1_b.up.sql", "SELECT 2;")});
  EXPECT_TRUE(contains(msg, "1_a.up.sql")) << msg;
  EXPECT_TRUE(contains(msg, "1_b.up.sql")) << msg;
  EXPECT_TRUE(contains(msg, "duplicate version 1")) << msg;
  EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
}

TEST(BuildMigrationSet, DuplicateVersionWithLeadingZerosNamesBothFiles) {
  const auto msg =
      build_error({file("1_a.up.sql", "SELECT 1;"), file("0001_b.up.sql", "SELECT 2;")});
  EXPECT_TRUE(contains(msg, "1_a.up.sql")) << msg;
  EXPECT_TRUE(contains(msg, "0001_b.up.sql")) << msg;
  EXPECT_TRUE(contains(msg, "duplicate version 1")) << msg;
}

TEST(BuildMigrationSet, DuplicateDownFilesNamed) {
  const auto msg = build_error({file("1_a.up.sql", "SELECT 1;"), file("1_a.down.sql", "SELECT 2;"),
                                file("01_a.down.sql", "SELECT 3;")});
  EXPECT_TRUE(contains(msg, "1_a.down.sql")) << msg;
  EXPECT_TRUE(contains(msg, "01_a.down.sql")) << msg;
  EXPECT_TRUE(contains(msg, "duplicate version 1")) << msg;
}

TEST(BuildMigrationSet, OrphanDownFileRefused) {
  const auto msg =
      build_error({file("1_a.up.sql", "SELECT 1;"), file("2_b.down.sql", "SELECT 2;")});
  EXPECT_TRUE(msg.starts_with("2_b.down.sql: ")) << msg;
  EXPECT_TRUE(contains(msg, "2_b.up.sql")) << msg;  // names the missing up file
  EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
}

TEST(BuildMigrationSet, MismatchedDownSlugRefused) {
  const auto msg = build_error(
      {file("1_create_users.up.sql", "SELECT 1;"), file("1_create_user.down.sql", "SELECT 2;")});
  EXPECT_TRUE(msg.starts_with("1_create_user.down.sql: ")) << msg;
  EXPECT_TRUE(contains(msg, "1_create_users.up.sql")) << msg;
}

// Empty and white-space-only files are steps that change nothing (Mattermost, Ory Kratos).
TEST(BuildMigrationSet, EmptyFileAccepted) {
  const auto set = build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", "")});
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set.all()[0].up.sql, "");
  EXPECT_EQ(set.all()[0].up.tx, TxMode::kTransaction);
  EXPECT_EQ(set.all()[0].up.checksum, sha256_hex(""));
}

TEST(BuildMigrationSet, WhitespaceOnlyFileAccepted) {
  const auto set =
      build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", " \n\t\r\n  \n")});
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set.all()[0].up.sql, " \n\t\r\n  \n");
}

TEST(BuildMigrationSet, EmptyDownFileAccepted) {
  const auto set = build_migration_set(
      std::vector<MigrationFile>{file("1_a.up.sql", "SELECT 1;"), file("1_a.down.sql", "\n")});
  ASSERT_EQ(set.size(), 1u);
  ASSERT_TRUE(set.all()[0].down.has_value());
  EXPECT_EQ(set.all()[0].down->sql, "\n");
  EXPECT_EQ(set.all()[0].down->file, "1_a.down.sql");
}

TEST(BuildMigrationSet, EmptyNoTransactionFileAccepted) {
  const auto set = build_migration_set(
      std::vector<MigrationFile>{file("1_a.up.sql", "-- stepwise:no-transaction\n")});
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set.all()[0].up.tx, TxMode::kNoTransaction);
}

TEST(BuildMigrationSet, ByteOrderMarkOnlyFileAccepted) {
  // A BOM is an encoding mark, not content: it is dropped, the rest is an empty step.
  const auto set =
      build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", "\xEF\xBB\xBF\n")});
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set.all()[0].up.sql, "\n");
}

TEST(BuildMigrationSet, VersionsOrderedNumericallyAcrossLengths) {
  const std::string v38 = "12345678901234567890123456789012345678";
  const auto set = build_migration_set(std::vector<MigrationFile>{
      file(v38 + "_last.up.sql", "SELECT 4;"),
      file("20150100000001000000_ory.up.sql", "SELECT 3;"),
      file("0010_ten.up.sql", "SELECT 2;"),
      file("000002_two.up.sql", "SELECT 1;"),
  });
  ASSERT_EQ(set.size(), 4u);
  EXPECT_EQ(set.all()[0].version.to_string(), "2");
  EXPECT_EQ(set.all()[0].up.file, "000002_two.up.sql");
  EXPECT_EQ(set.all()[1].version.to_string(), "10");
  EXPECT_EQ(set.all()[2].version.to_string(), "20150100000001000000");
  EXPECT_EQ(set.all()[3].version.to_string(), v38);
  EXPECT_EQ(set.latest().to_string(), v38);
  ASSERT_NE(set.find(Version::from_digits("0" + v38)), nullptr);
  EXPECT_EQ(set.find(Version::from_digits("0" + v38))->name, "last");
}

TEST(BuildMigrationSet, VersionsEqualAfterLeadingZerosAreADuplicate) {
  const auto msg =
      build_error({file("1_a.up.sql", "SELECT 1;"), file("0001_b.up.sql", "SELECT 2;")});
  EXPECT_TRUE(contains(msg, "duplicate version 1")) << msg;
  EXPECT_TRUE(contains(msg, "0001_b.up.sql")) << msg;
  EXPECT_TRUE(contains(msg, "1_a.up.sql")) << msg;
  EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
}

TEST(BuildMigrationSet, OrphanDownNamesItsUpFileAsWritten) {
  const auto msg = build_error({file("000004_orphan.down.sql", "SELECT 4;")});
  EXPECT_TRUE(contains(msg, "(000004_orphan.up.sql)")) << msg;
}

TEST(BuildMigrationSet, CommentOnlyFileAccepted) {
  const std::vector<MigrationFile> files{
      file("1_placeholder.up.sql", "-- reserved for a hotfix\n"),
      file("2_block.up.sql", "/* nothing\n here */\n"),
  };
  const auto set = build_migration_set(files);
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.all()[0].up.sql, "-- reserved for a hotfix\n");
}

TEST(BuildMigrationSet, NulByteRefused) {
  const auto msg = build_error({file("1_a.up.sql", std::string("SELECT 1;\0", 10))});
  EXPECT_TRUE(msg.starts_with("1_a.up.sql: ")) << msg;
  EXPECT_TRUE(contains(msg, "NUL")) << msg;
}

TEST(BuildMigrationSet, InvalidUtf8Refused) {
  const auto msg = build_error({file("1_a.up.sql", "SELECT 'caf\xe9';")});
  EXPECT_TRUE(msg.starts_with("1_a.up.sql: ")) << msg;
  EXPECT_TRUE(contains(msg, "UTF-8")) << msg;
}

TEST(BuildMigrationSet, ValidUtf8Accepted) {
  const auto set = build_migration_set(
      std::vector<MigrationFile>{file("1_a.up.sql", "SELECT 'caf\xc3\xa9 \xf0\x9f\x98\x80';")});
  EXPECT_EQ(set.size(), 1u);
}

TEST(IsValidUtf8, ABadByteIsFoundWhereverItFallsInTheEightByteSteps) {
  // ASCII is checked eight bytes at a time: a bad or multi-byte sequence at any offset, and at
  // the very end, is still seen.
  for (std::size_t at = 0; at < 24; ++at) {
    std::string text(24, 'a');
    EXPECT_TRUE(is_valid_utf8(text));
    text[at] = '\xe9';  // Latin-1 é: not UTF-8
    EXPECT_FALSE(is_valid_utf8(text)) << at;
    text[at] = '\x80';  // a continuation byte alone
    EXPECT_FALSE(is_valid_utf8(text)) << at;
    text.replace(at, 1, "\xc3\xa9");  // UTF-8 é
    EXPECT_TRUE(is_valid_utf8(text)) << at;
    text.replace(at, 2, "\xc0\xaf");  // an overlong '/'
    EXPECT_FALSE(is_valid_utf8(text)) << at;
  }
  EXPECT_FALSE(is_valid_utf8(std::string(16, 'a') + "\xf0\x9f\x98"));  // cut short at the end
  EXPECT_TRUE(is_valid_utf8(std::string(16, 'a') + "\xf0\x9f\x98\x80"));
  EXPECT_TRUE(is_valid_utf8(""));
}

TEST(BuildMigrationSet, OversizedFileRefusedBySize) {
  auto f = file("1_big.up.sql", "SELECT 1;");
  f.size = kMaxMigrationBytes + 1;
  const auto msg = build_error({f});
  EXPECT_TRUE(msg.starts_with("1_big.up.sql: ")) << msg;
  EXPECT_TRUE(contains(msg, std::to_string(kMaxMigrationBytes + 1))) << msg;
  EXPECT_TRUE(contains(msg, std::to_string(kMaxMigrationBytes))) << msg;
}

TEST(BuildMigrationSet, FileAtSizeLimitAccepted) {
  auto f = file("1_big.up.sql", "SELECT 1;");
  f.size = kMaxMigrationBytes;
  EXPECT_EQ(build_migration_set(std::vector<MigrationFile>{f}).size(), 1u);
}

TEST(BuildMigrationSet, OversizedBytesRefused) {
  const auto msg = build_error({file("1_big.up.sql", std::string(kMaxMigrationBytes + 1, ' '))});
  EXPECT_TRUE(msg.starts_with("1_big.up.sql: ")) << msg;
  EXPECT_TRUE(contains(msg, "larger than")) << msg;
}

TEST(BuildMigrationSet, UnparseableNameRefused) {
  const auto msg = build_error({file("001_init.sql", "SELECT 1;")});
  EXPECT_TRUE(msg.starts_with("001_init.sql: ")) << msg;
}

TEST(BuildMigrationSet, UnknownDirectiveRefusedNamingFile) {
  const auto msg = build_error({file("1_a.up.sql", "-- stepwise:no-transation\nSELECT 1;")});
  EXPECT_TRUE(msg.starts_with("1_a.up.sql: ")) << msg;
  EXPECT_TRUE(contains(msg, "no-transation")) << msg;
}

TEST(BuildMigrationSet, AllProblemsReportedAtOnceOneLineEach) {
  const std::vector<MigrationFile> files{
      file("1_ok.up.sql", "SELECT 1;"),
      file("2_empty.up.sql", ""),  // valid: an empty step
      file("3_a.up.sql", "SELECT 3;"),
      file("3_b.up.sql", "SELECT 3;"),
      file("4_orphan.down.sql", "SELECT 4;"),
      file("bad_name.up.sql", "SELECT 5;"),
      file("6_nul.up.sql", std::string("SELECT\0 6;", 10)),
      file("7_x.up.sql", "-- stepwise:bogus\nSELECT 7;"),
      file("8_utf.up.sql", "SELECT '\xff';"),
      file("9_a.up.sql", "SELECT 9;"),
      file("9_b.down.sql", "SELECT 9;"),
  };
  const auto msg = build_error(files);
  const auto lines = lines_of(msg);
  const std::vector<std::string> expected_files{
      "3_b.up.sql", "4_orphan.down.sql", "bad_name.up.sql", "6_nul.up.sql",
      "7_x.up.sql", "8_utf.up.sql",      "9_b.down.sql"};
  EXPECT_EQ(lines.size(), expected_files.size()) << msg;
  for (const auto& name : expected_files) {
    int hits = 0;
    for (const auto& line : lines)
      if (line.starts_with(name + ": ")) ++hits;
    EXPECT_EQ(hits, 1) << name << " in:\n" << msg;
  }
  for (const auto& line : lines) {
    EXPECT_FALSE(line.empty());
    EXPECT_FALSE(contains(line, "1_ok.up.sql")) << line;
    EXPECT_FALSE(contains(line, "2_empty.up.sql")) << line;
  }
}

TEST(BuildMigrationSet, BadUpFileDoesNotAlsoReportItsDownAsOrphan) {
  // The up file exists (it holds a NUL byte): claiming that the down file has no up file is false.
  const auto msg = build_error(
      {file("1_a.up.sql", std::string("SELECT\0", 7)), file("1_a.down.sql", "DROP TABLE a;")});
  const auto lines = lines_of(msg);
  EXPECT_EQ(lines.size(), 1u) << msg;
  EXPECT_TRUE(msg.starts_with("1_a.up.sql: ")) << msg;
  EXPECT_FALSE(contains(msg, "without its up file")) << msg;
}

TEST(BuildMigrationSet, BeginCommitWrapperBlankedKeepingLines) {
  const std::string bytes = "BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n";
  const auto set = build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", bytes)});
  const auto& sql = set.all()[0].up.sql;
  EXPECT_EQ(sql.find("BEGIN"), std::string::npos) << sql;
  EXPECT_EQ(sql.find("COMMIT"), std::string::npos) << sql;
  EXPECT_NE(sql.find("CREATE TABLE t (id int);"), std::string::npos) << sql;
  EXPECT_EQ(sql.size(), bytes.size());
  EXPECT_EQ(std::count(sql.begin(), sql.end(), '\n'), 3);
  EXPECT_EQ(sql.substr(7, 24), "CREATE TABLE t (id int);");  // still on line 2
  EXPECT_EQ(set.all()[0].up.checksum, sha256_hex(bytes));    // of the file as written
}

TEST(BuildMigrationSet, CommitInsideTransactionalFileRefusedNamingFileAndLine) {
  const auto msg = build_error(
      {file("1_a.up.sql", "CREATE TABLE t (id int);\nCOMMIT;\nCREATE TABLE u (id int);\n")});
  EXPECT_TRUE(msg.starts_with("1_a.up.sql:2: ")) << msg;
  EXPECT_TRUE(contains(msg, "COMMIT")) << msg;
}

TEST(BuildMigrationSet, TransactionControlInNoTransactionFileRefusedNamingFileAndLine) {
  const char* cases[][3] = {
      {"BEGIN;\nSELECT 1;\nCOMMIT;\n", "2", "BEGIN"},
      {"SELECT 1;\n  start transaction;\n", "3", "START TRANSACTION"},
      {"SELECT 1;\nCOMMIT;\n", "3", "COMMIT"},
      {"SELECT 1;\n\nEND;\n", "4", "END"},
      {"SELECT 1; ROLLBACK;\n", "2", "ROLLBACK"},
      {"ABORT;\n", "2", "ABORT"},
      {"SAVEPOINT s;\n", "2", "SAVEPOINT"},
      {"SELECT 1;\nRELEASE SAVEPOINT s;\n", "3", "RELEASE"},
      {"ROLLBACK TO s;\n", "2", "ROLLBACK TO"},
      {"PREPARE TRANSACTION 'x';\n", "2", "PREPARE TRANSACTION"},
      {"COMMIT PREPARED 'x';\n", "2", "COMMIT PREPARED"},
      {"ROLLBACK PREPARED 'x';\n", "2", "ROLLBACK PREPARED"},
  };
  for (const auto& c : cases) {
    const auto msg =
        build_error({file("1_a.up.sql", std::string("-- stepwise:no-transaction\n") + c[0])});
    EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
    EXPECT_TRUE(msg.starts_with(std::string("1_a.up.sql:") + c[1] + ": " + c[2] + " in a")) << msg;
    EXPECT_TRUE(contains(msg, "own implicit transaction")) << msg;
  }
}

TEST(BuildMigrationSet, BeginInsideBodiesOfNoTransactionFileAccepted) {
  const std::string sql =
      "-- stepwise:no-transaction\n"
      "DO $$ BEGIN PERFORM 1; COMMIT; END $$;\n"
      "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\nBEGIN\n  RETURN 1;\nEND\n"
      "$body$;\n"
      "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n"
      "SELECT 'BEGIN;', \"begin\" FROM (SELECT 1 AS \"begin\") s; -- COMMIT;\n"
      "/* ROLLBACK; */ CREATE TABLE begin_log (\"commit\" int);\n"
      "CREATE INDEX CONCURRENTLY i ON begin_log (\"commit\");\n";
  const auto set = build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", sql)});
  EXPECT_EQ(set.all()[0].up.sql, sql);
}

TEST(BuildMigrationSet, UnterminatedTokensRefusedNamingFileAndLine) {
  const char* cases[][3] = {
      {"SELECT 1;\nSELECT 'abc;\nSELECT 2;\n", "2", "unterminated quoted string"},
      {"SELECT E'it\\'s;\n", "1", "unterminated E'...' string"},
      {"SELECT 1;\n\nSELECT \"col;\n", "3", "unterminated quoted identifier"},
      {"DO $x$ BEGIN\nPERFORM 1;\nEND $y$;\n", "1", "unterminated dollar-quoted string $x$"},
      {"SELECT 1;\n/* outer /* inner */ still open\n", "2", "unterminated /* comment"},
  };
  for (const auto* mode : {"", "-- stepwise:no-transaction\n"}) {
    const int shift = *mode ? 1 : 0;
    for (const auto& c : cases) {
      for (const auto* name : {"1_a.up.sql", "1_a.down.sql"}) {
        std::vector<MigrationFile> files{file("1_a.up.sql", "SELECT 1;")};
        if (std::string_view(name) == "1_a.up.sql") files.clear();
        files.push_back(file(name, std::string(mode) + c[0]));
        const auto msg = build_error(files);
        EXPECT_EQ(lines_of(msg).size(), 1u) << msg;
        EXPECT_TRUE(msg.starts_with(std::string(name) + ":" +
                                    std::to_string(std::stoi(c[1]) + shift) + ": " + c[2]))
            << msg;
      }
    }
  }
}

TEST(BuildMigrationSet, PsqlMetaCommandsRefusedNamingFileAndLine) {
  for (const char* meta : {"\\i other.sql", "\\ir other.sql", "\\set x 1", "\\connect db", "\\c db",
                           "\\copy t from 'f'", "\\gexec"}) {
    const auto msg =
        build_error({file("1_a.up.sql", std::string("SELECT 1;\n") + meta + "\nSELECT 2;\n")});
    const auto name = std::string(meta).substr(0, std::string(meta).find(' '));
    EXPECT_EQ(msg, "1_a.up.sql:2: psql meta-command " + name +
                       " is not SQL; stepwise sends files to the server as they are");
  }
}

TEST(BuildMigrationSet, CopyFromStdinWithoutEndOfDataRefused) {
  const auto msg =
      build_error({file("1_a.up.sql", "CREATE TABLE t (a int);\nCOPY t (a) FROM stdin;\n1\n2\n")});
  EXPECT_EQ(msg, "1_a.up.sql:2: COPY ... FROM STDIN has no inline data ending in a line \\.");
  const auto at_end = build_error({file("1_a.up.sql", "COPY t FROM stdin;")});
  EXPECT_EQ(at_end, "1_a.up.sql:1: COPY ... FROM STDIN has no inline data ending in a line \\.");
}

TEST(BuildMigrationSet, CopyToStdoutRefused) {
  const auto msg = build_error({file("1_a.up.sql", "SELECT 1;\nCOPY (SELECT 1) TO STDOUT;\n")});
  EXPECT_TRUE(msg.starts_with("1_a.up.sql:2: COPY ... TO STDOUT")) << msg;
}

TEST(BuildMigrationSet, CopyWithInlineDataAcceptedInBothModes) {
  for (const auto* mode : {"", "-- stepwise:no-transaction\n"}) {
    const std::string sql = std::string(mode) +
                            "CREATE TABLE t (a int, b text);\nCOPY public.t (a, b) FROM stdin;\n"
                            "1\t'x\n2\t\\N\n\\.\nSELECT 1;\n";
    const auto set = build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", sql)});
    EXPECT_EQ(set.all()[0].up.sql, sql);
  }
}

TEST(BuildMigrationSet, PrecomputedChecksumUsed) {
  auto f = file("1_a.up.sql", "SELECT 1;");
  f.checksum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const auto set = build_migration_set(std::vector<MigrationFile>{f});
  EXPECT_EQ(set.all()[0].up.checksum, f.checksum);
}

TEST(BuildMigrationSet, ChecksumCoversRawBytesButSqlDropsBom) {
  const std::string bytes = "\xEF\xBB\xBFSELECT 1;";
  const auto set = build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", bytes)});
  EXPECT_EQ(set.all()[0].up.sql, "SELECT 1;");
  EXPECT_EQ(set.all()[0].up.checksum, sha256_hex(bytes));
}

TEST(MigrationSetDigest, StableAndTwelveHexChars) {
  const std::vector<MigrationFile> files{file("1_a.up.sql", "SELECT 1;"),
                                         file("1_a.down.sql", "SELECT 0;"),
                                         file("2_b.up.sql", "SELECT 2;")};
  const auto d1 = build_migration_set(files).digest();
  const auto d2 = build_migration_set(files).digest();
  EXPECT_EQ(d1, d2);
  EXPECT_EQ(d1.size(), 12u);
  for (char c : d1) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << d1;
  // Independent of input order.
  const std::vector<MigrationFile> shuffled{files[2], files[0], files[1]};
  EXPECT_EQ(build_migration_set(shuffled).digest(), d1);
}

TEST(MigrationSetDigest, SensitiveToChanges) {
  const std::vector<MigrationFile> base{file("1_a.up.sql", "SELECT 1;"),
                                        file("2_b.up.sql", "SELECT 2;")};
  const auto d = build_migration_set(base).digest();
  EXPECT_NE(build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", "SELECT 1; "),
                                                           file("2_b.up.sql", "SELECT 2;")})
                .digest(),
            d);
  EXPECT_NE(build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", "SELECT 1;"),
                                                           file("2_c.up.sql", "SELECT 2;")})
                .digest(),
            d);
  EXPECT_NE(
      build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", "SELECT 1;")}).digest(), d);
  EXPECT_NE(build_migration_set(std::vector<MigrationFile>{file("1_a.up.sql", "SELECT 1;"),
                                                           file("2_b.up.sql", "SELECT 2;"),
                                                           file("2_b.down.sql", "SELECT 3;")})
                .digest(),
            d);
  EXPECT_NE(MigrationSet().digest(), d);
}

TEST(Direction, Names) {
  EXPECT_EQ(to_string(Direction::kUp), "up");
  EXPECT_EQ(to_string(Direction::kDown), "down");
}

}  // namespace
}  // namespace stepwise

namespace stepwise {
namespace {

// ---------------------------------------------------------------- build_planning_set

TEST(BuildPlanningSet, SameVersionsNamesChecksumsAndModesAsTheFullSet) {
  const std::vector<MigrationFile> files{
      file("1_a.up.sql", "CREATE TABLE a (id int);\n"), file("1_a.down.sql", "DROP TABLE a;\n"),
      file("2_b.up.sql", "-- stepwise:no-transaction\n-- stepwise:not-resumable\nSELECT 1;\n"),
      file("3_c.up.sql", "\xEF\xBB\xBFSELECT 3;\n")};
  const auto full = build_migration_set(files);
  const auto planning = build_planning_set(files);
  ASSERT_EQ(planning.size(), full.size());
  EXPECT_EQ(planning.digest(), full.digest());
  for (std::size_t i = 0; i < full.size(); ++i) {
    const auto& p = planning.all()[i];
    const auto& f = full.all()[i];
    EXPECT_EQ(p.version, f.version);
    EXPECT_EQ(p.name, f.name);
    EXPECT_EQ(p.up.file, f.up.file);
    EXPECT_EQ(p.up.checksum, f.up.checksum);
    EXPECT_EQ(p.up.tx, f.up.tx);
    EXPECT_EQ(p.up.resumable, f.up.resumable);
    EXPECT_EQ(p.down.has_value(), f.down.has_value());
  }
  EXPECT_EQ(planning.all()[2].up.sql, "SELECT 3;\n");  // no byte order mark
}

TEST(BuildPlanningSet, RefusesWhatTheFullSetRefuses) {
  // A no-op `up` over a broken folder fails as before: names, pairing, NUL bytes, directives,
  // and the lexer pass.
  EXPECT_THROW((void)build_planning_set(std::vector<MigrationFile>{file("x_a.up.sql", "")}),
               SourceError);
  EXPECT_THROW((void)build_planning_set(std::vector<MigrationFile>{file("1_a.down.sql", "")}),
               SourceError);
  EXPECT_THROW((void)build_planning_set(
                   std::vector<MigrationFile>{file("1_a.up.sql", "-- stepwise:bogus\n")}),
               SourceError);
  EXPECT_THROW((void)build_planning_set(
                   std::vector<MigrationFile>{file("1_a.up.sql", std::string("SELECT\0", 7))}),
               SourceError);
  for (const auto* bytes : {"SELECT 'open;\n", "CREATE TABLE t ();\nCOMMIT;\n",
                            "-- stepwise:no-transaction\nBEGIN;\nSELECT 1;\n"}) {
    const std::vector<MigrationFile> broken{file("1_a.up.sql", bytes)};
    std::string planning, full;
    try {
      (void)build_planning_set(broken);
    } catch (const SourceError& e) {
      planning = e.what();
    }
    try {
      (void)build_migration_set(broken);
    } catch (const SourceError& e) {
      full = e.what();
    }
    EXPECT_FALSE(full.empty()) << bytes;
    EXPECT_EQ(planning, full) << bytes;
  }
  // A BEGIN ... COMMIT wrapper is accepted; only the full set blanks it.
  const std::vector<MigrationFile> wrapped{file("1_a.up.sql", "BEGIN;\nSELECT 1;\nCOMMIT;\n")};
  EXPECT_EQ(build_planning_set(wrapped).all()[0].up.sql, "BEGIN;\nSELECT 1;\nCOMMIT;\n");
  EXPECT_EQ(build_migration_set(wrapped).all()[0].up.sql.find("BEGIN"), std::string_view::npos);
}

TEST(BuildPlanningSet, TakesWhatTheLoaderCheckedInsteadOfCheckingAgain) {
  // check_file_text gives each file's own problems, as the set reports them...
  const auto broken = file("1_a.up.sql", "-- stepwise:no-transaction\nBEGIN;\nSELECT 1;\n");
  const auto check = check_file_text(broken);
  EXPECT_TRUE(check.bytes_problem.empty());
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_NE(check.problems[0].find("1_a.up.sql:2: BEGIN in a -- stepwise:no-transaction file"),
            std::string::npos)
      << check.problems[0];
  EXPECT_EQ(check.tx, TxMode::kNoTransaction);
  EXPECT_EQ(check_file_text(file("1_a.up.sql", std::string("SELECT\0", 7))).bytes_problem,
            "1_a.up.sql: file holds a NUL byte");
  EXPECT_FALSE(check_file_text(file("1_a.up.sql", "-- stepwise:not-resumable\n")).resumable);

  // ...and the planning set takes a precomputed check as it is: what it says is what counts.
  auto f = file("1_a.up.sql", "SELECT 1;\n");
  f.checked = FileCheck{};
  f.checked->tx = TxMode::kNoTransaction;
  f.checked->resumable = false;
  const auto set = build_planning_set(std::vector<MigrationFile>{f});
  EXPECT_EQ(set.all()[0].up.tx, TxMode::kNoTransaction);
  EXPECT_FALSE(set.all()[0].up.resumable);
  f.checked->problems = {"1_a.up.sql:1: a problem the loader found"};
  try {
    (void)build_planning_set(std::vector<MigrationFile>{f});
    FAIL() << "accepted";
  } catch (const SourceError& e) {
    EXPECT_STREQ(e.what(), "1_a.up.sql:1: a problem the loader found");
  }
  f.checked = FileCheck{};
  f.checked->bytes_problem = "1_a.up.sql: file is not valid UTF-8";
  const auto down = file("1_a.down.sql", "SELECT 0;\n");
  try {
    (void)build_planning_set(std::vector<MigrationFile>{down, f});
    FAIL() << "accepted";
  } catch (const SourceError& e) {
    // An unreadable up file: no "down file without its up file" on top.
    EXPECT_STREQ(e.what(), "1_a.up.sql: file is not valid UTF-8");
  }
}

TEST(BuildPlanningSet, DuplicatesAreNamedWithEveryFileOfTheVersion) {
  const std::vector<MigrationFile> files{file("01_a.up.sql", ""), file("1_a.up.sql", ""),
                                         file("001_b.up.sql", "")};
  try {
    (void)build_planning_set(files);
    FAIL() << "accepted";
  } catch (const SourceError& e) {
    EXPECT_STREQ(e.what(),
                 "1_a.up.sql: duplicate version 1 (files: 001_b.up.sql, 01_a.up.sql, 1_a.up.sql)");
  }
}

TEST(BuildPlanningSet, UnreadDownFilesArePairedByNameOnly) {
  MigrationFile down;
  down.name = "1_a.down.sql";
  down.unread = true;
  const std::vector<MigrationFile> files{file("1_a.up.sql", "SELECT 1;\n"), down};
  const auto set = build_planning_set(files);
  ASSERT_EQ(set.size(), 1u);
  ASSERT_TRUE(set.all()[0].down.has_value());
  EXPECT_EQ(set.all()[0].down->file, "1_a.down.sql");
  EXPECT_TRUE(set.all()[0].down->sql.empty());
  EXPECT_TRUE(set.all()[0].down->checksum.empty());
  // Unread files can only be planned from: the set that is applied must have read them all.
  EXPECT_THROW((void)build_migration_set(files), std::logic_error);
  MigrationFile orphan = down;
  orphan.name = "2_b.down.sql";
  EXPECT_THROW((void)build_planning_set(std::vector<MigrationFile>{file("1_a.up.sql", ""), orphan}),
               SourceError);
}

// The embedded set's start-up path: a no-op needs its size, newest version and log digest only.
TEST(MigrationSet, ADeferredSetBuildsItsMigrationsOnlyWhenAskedForThem) {
  const auto full = build_migration_set(std::vector<MigrationFile>{
      file("1_a.up.sql", "SELECT 1;\n"), file("2_b.up.sql", "SELECT 2;\n")});
  int builds = 0;
  const auto set = MigrationSet::deferred(full.size(), full.latest(), full.log_digest(), [&] {
    ++builds;
    return full.all();
  });
  EXPECT_EQ(set.size(), 2u);
  EXPECT_FALSE(set.empty());
  EXPECT_EQ(set.latest(), full.latest());
  EXPECT_EQ(set.log_digest(), full.log_digest());
  EXPECT_EQ(builds, 0);
  const auto copy = set;  // shares what it builds
  EXPECT_EQ(set.all(), full.all());
  EXPECT_NE(copy.find(Version::from_digits("2")), nullptr);
  EXPECT_EQ(copy.digest(), full.digest());
  EXPECT_EQ(builds, 1);
  // A builder that does not build what the set said it holds is a bug, not a set.
  const auto wrong = MigrationSet::deferred(3, full.latest(), "", [&] { return full.all(); });
  EXPECT_EQ(wrong.size(), 3u);
  EXPECT_THROW((void)wrong.all(), std::logic_error);
}

TEST(BuildMigrationSet, TextsSurviveTheFilesAndMovesOfTheSet) {
  MigrationSet moved;
  {
    std::vector<MigrationFile> files{file("1_a.up.sql", "SELECT 1;"), file("1_a.down.sql", "x;")};
    auto set = build_migration_set(files);
    files.clear();  // the set owns copies of its texts
    std::vector<MigrationSet> sets;
    sets.push_back(std::move(set));
    sets.resize(8);  // reallocates
    moved = std::move(sets[0]);
  }
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved.all()[0].up.file, "1_a.up.sql");
  EXPECT_EQ(moved.all()[0].name, "a");
  EXPECT_EQ(moved.all()[0].up.sql, "SELECT 1;");
  EXPECT_EQ(moved.all()[0].down->sql, "x;");
  EXPECT_EQ(moved.all()[0].up.checksum, sha256_hex("SELECT 1;"));
}

}  // namespace
}  // namespace stepwise
