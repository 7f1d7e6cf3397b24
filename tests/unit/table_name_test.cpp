#include <gtest/gtest.h>

#include <set>
#include <string>

#include "stepwise/checksum.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise {
namespace {

TableName parse(std::string_view text) {
  return parse_table_name("--log-table", text);
}

void expect_refused(std::string_view text) {
  try {
    const auto t = parse_table_name("--log-table", text);
    ADD_FAILURE() << "accepted " << text << " as " << t.schema << "." << t.table;
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(msg.starts_with("--log-table: ")) << msg;
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(ParseTableName, BareTableDefaultsToPublic) {
  EXPECT_EQ(parse("stepwise_log"), (TableName{"public", "stepwise_log"}));
}

TEST(ParseTableName, SchemaAndTable) {
  EXPECT_EQ(parse("ops.migrations"), (TableName{"ops", "migrations"}));
}

TEST(ParseTableName, UnquotedFoldedToLowerCase) {
  EXPECT_EQ(parse("Ops.Log"), (TableName{"ops", "log"}));
  EXPECT_EQ(parse("STEPWISE_LOG"), (TableName{"public", "stepwise_log"}));
}

TEST(ParseTableName, QuotedPartsKeepCase) {
  EXPECT_EQ(parse(R"("Ops"."Log")"), (TableName{"Ops", "Log"}));
  EXPECT_EQ(parse(R"(ops."Log")"), (TableName{"ops", "Log"}));
  EXPECT_EQ(parse(R"("Ops".log)"), (TableName{"Ops", "log"}));
  EXPECT_EQ(parse(R"("MyLog")"), (TableName{"public", "MyLog"}));
}

TEST(ParseTableName, QuotedPartsMayHoldSpaceAndDash) {
  EXPECT_EQ(parse(R"("My Schema"."migration-log")"), (TableName{"My Schema", "migration-log"}));
}

TEST(ParseTableName, DigitsAndDollarAfterFirstCharacter) {
  EXPECT_EQ(parse("s1.log$2"), (TableName{"s1", "log$2"}));
  EXPECT_EQ(parse("_private._log"), (TableName{"_private", "_log"}));
}

TEST(ParseTableName, SixtyThreeBytesAccepted) {
  const std::string part(63, 'a');
  EXPECT_EQ(parse(part + "." + part), (TableName{part, part}));
}

TEST(ParseTableName, SixtyFourBytePartRefused) {
  const std::string part(64, 'a');
  expect_refused(part);
  expect_refused("public." + part);
  expect_refused(part + ".log");
  expect_refused("\"" + part + "\"");
}

TEST(ParseTableName, PunctuationInUnquotedNameRefused) {
  expect_refused("log\"");
  expect_refused("lo\"g");
  expect_refused("log;");
  expect_refused("log; DROP TABLE users");
  expect_refused("my log");
  expect_refused(" log");
  expect_refused("log ");
  expect_refused("log-table");
  expect_refused("log'");
  expect_refused("public.log(");
  expect_refused("lo/g");
}

TEST(ParseTableName, PunctuationInQuotedNameRefused) {
  expect_refused(R"("a;b")");
  expect_refused(R"("a'b")");
  expect_refused(R"("a""b")");
  expect_refused(R"("a.b")");
}

TEST(ParseTableName, LeadingDigitOrDollarRefused) {
  expect_refused("1log");
  expect_refused("$log");
  expect_refused("public.9t");
}

TEST(ParseTableName, NonAsciiRefused) {
  expect_refused("caf\xc3\xa9");
}

TEST(ParseTableName, ThreePartsRefused) {
  expect_refused("a.b.c");
  expect_refused(R"("a"."b"."c")");
}

TEST(ParseTableName, EmptyPartsRefused) {
  expect_refused("");
  expect_refused(".");
  expect_refused(".log");
  expect_refused("public.");
  expect_refused("a..b");
  expect_refused(R"("")");
  expect_refused(R"(""."log")");
}

TEST(ParseTableName, UnterminatedQuoteRefused) {
  expect_refused(R"("log)");
  expect_refused(R"(public."log)");
}

TEST(ParseTableName, GarbageAfterQuotedPartRefused) {
  expect_refused(R"("log"x)");
  expect_refused(R"("log" )");
}

TEST(ParseTableName, ErrorNamesTheFlagAndTheValue) {
  try {
    (void)parse_table_name("--lock-table", "bad;name");
    FAIL() << "accepted bad;name";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(msg.starts_with("--lock-table: ")) << msg;
    EXPECT_NE(msg.find("bad;name"), std::string::npos) << msg;
    EXPECT_FALSE(e.hint().empty());
  }
}

TEST(TableName, Display) {
  EXPECT_EQ((TableName{"ops", "log"}).display(), "ops.log");
}

TEST(LockKey, MatchesDocumentedDerivation) {
  EXPECT_EQ(lock_key(TableName{"public", "stepwise_log"}), 2350476344756043228LL);
  EXPECT_EQ(lock_key(TableName{"ops", "log"}), sha256_int64("stepwise:ops.log"));
}

TEST(LockKey, StableForTheSameName) {
  EXPECT_EQ(lock_key(parse("stepwise_log")), lock_key(parse("public.stepwise_log")));
  EXPECT_EQ(lock_key(parse("Public.Stepwise_Log")), lock_key(parse("public.stepwise_log")));
}

TEST(LockKey, DiffersByName) {
  std::set<long long> keys;
  for (const auto& t : {TableName{"public", "stepwise_log"}, TableName{"public", "stepwise_log2"},
                        TableName{"ops", "stepwise_log"}, TableName{"public", "Stepwise_log"},
                        TableName{"a", "bc"}, TableName{"ab", "c"}})
    keys.insert(lock_key(t));
  EXPECT_EQ(keys.size(), 6u);
}

TEST(LockTableFor, SameSchemaWithLockSuffix) {
  EXPECT_EQ(lock_table_for(TableName{"ops", "stepwise_log"}),
            (TableName{"ops", "stepwise_log_lock"}));
}

TEST(LockTableFor, StaysWithinIdentifierLimit) {
  const std::string long_table(63, 't');
  const auto lock = lock_table_for(TableName{"public", long_table});
  EXPECT_EQ(lock.schema, "public");
  EXPECT_EQ(lock.table.size(), 63u);
  EXPECT_TRUE(lock.table.ends_with("_lock")) << lock.table;
  EXPECT_EQ(lock.table, std::string(58, 't') + "_lock");
  EXPECT_NE(lock.table, long_table);
}

TEST(LockTableFor, FiftyEightBytesJustFits) {
  const std::string t(58, 'x');
  EXPECT_EQ(lock_table_for(TableName{"s", t}).table, t + "_lock");
}

}  // namespace
}  // namespace stepwise
