#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "stepwise/sql_split.hpp"

namespace stepwise {
namespace {

std::vector<std::string> texts(std::string_view script) {
  std::vector<std::string> out;
  for (const auto& s : split_sql(script)) out.emplace_back(s.text);
  return out;
}

std::vector<int> lines(std::string_view script) {
  std::vector<int> out;
  for (const auto& s : split_sql(script)) out.push_back(s.line);
  return out;
}

using Texts = std::vector<std::string>;

TEST(SplitSql, Empty) {
  EXPECT_TRUE(split_sql("").empty());
  EXPECT_TRUE(split_sql("   \n\t ").empty());
  EXPECT_TRUE(split_sql(";;;").empty());
}

TEST(SplitSql, SingleStatementWithSemicolon) {
  EXPECT_EQ(texts("SELECT 1;"), (Texts{"SELECT 1"}));
}

TEST(SplitSql, Semicolons) {
  EXPECT_EQ(texts("SELECT 1; SELECT 2;\nSELECT 3;"), (Texts{"SELECT 1", "SELECT 2", "SELECT 3"}));
}

TEST(SplitSql, StatementsAreTrimmed) {
  EXPECT_EQ(texts("  \n  SELECT 1  \n ;\n\n  SELECT 2\t;  "), (Texts{"SELECT 1", "SELECT 2"}));
}

TEST(SplitSql, TrailingStatementWithoutSemicolon) {
  EXPECT_EQ(texts("SELECT 1;\nSELECT 2\n"), (Texts{"SELECT 1", "SELECT 2"}));
  EXPECT_EQ(texts("SELECT 1"), (Texts{"SELECT 1"}));
}

TEST(SplitSql, SemicolonInsideSingleQuotes) {
  EXPECT_EQ(texts("INSERT INTO t VALUES ('a;b'); SELECT 2;"),
            (Texts{"INSERT INTO t VALUES ('a;b')", "SELECT 2"}));
}

TEST(SplitSql, DoubledSingleQuoteEscape) {
  EXPECT_EQ(texts("SELECT 'it''s; fine'; SELECT 2;"), (Texts{"SELECT 'it''s; fine'", "SELECT 2"}));
  EXPECT_EQ(texts("SELECT ''';'; SELECT 2;"), (Texts{"SELECT ''';'", "SELECT 2"}));
}

TEST(SplitSql, BackslashIsNotAnEscapeInStandardStrings) {
  // standard_conforming_strings: 'a\' is a complete string.
  EXPECT_EQ(texts(R"(SELECT 'a\'; SELECT 2;)"), (Texts{R"(SELECT 'a\')", "SELECT 2"}));
}

TEST(SplitSql, EscapeStringWithBackslashQuote) {
  EXPECT_EQ(texts(R"(SELECT E'it\'s; here'; SELECT 2;)"),
            (Texts{R"(SELECT E'it\'s; here')", "SELECT 2"}));
  EXPECT_EQ(texts(R"(SELECT e'\\'; SELECT 2;)"), (Texts{R"(SELECT e'\\')", "SELECT 2"}));
}

TEST(SplitSql, EscapeStringAfterParenOrComma) {
  EXPECT_EQ(texts(R"(SELECT concat(E'\';', E'x'); SELECT 2)"),
            (Texts{R"(SELECT concat(E'\';', E'x'))", "SELECT 2"}));
}

TEST(SplitSql, IdentifierEndingInEIsNotAnEscapeString) {
  // "type'...'" : the quote follows an identifier ending in e, not an E prefix.
  EXPECT_EQ(texts(R"(SELECT date'2024-01-01\'; SELECT 2;)"),
            (Texts{R"(SELECT date'2024-01-01\')", "SELECT 2"}));
}

TEST(SplitSql, DoubleQuotedIdentifierWithSemicolon) {
  EXPECT_EQ(texts(R"(CREATE TABLE "a;b" ("c;d" int); SELECT 2;)"),
            (Texts{R"(CREATE TABLE "a;b" ("c;d" int))", "SELECT 2"}));
  EXPECT_EQ(texts(R"(SELECT 1 AS "x"";y"; SELECT 2)"),
            (Texts{R"(SELECT 1 AS "x"";y")", "SELECT 2"}));
}

TEST(SplitSql, DollarQuotes) {
  const std::string fn =
      "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n  RETURN "
      "2;\nEND\n$$";
  EXPECT_EQ(texts(fn + ";\nSELECT 3;"), (Texts{fn, "SELECT 3"}));
}

TEST(SplitSql, TaggedDollarQuotes) {
  const std::string fn =
      "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $body$ SELECT $$;$$ || ';' $body$";
  EXPECT_EQ(texts(fn + "; SELECT 3"), (Texts{fn, "SELECT 3"}));
}

TEST(SplitSql, DollarTagMustMatch) {
  EXPECT_EQ(texts("SELECT $a$ x; $b$ y; $a$; SELECT 2"),
            (Texts{"SELECT $a$ x; $b$ y; $a$", "SELECT 2"}));
}

TEST(SplitSql, PositionalParameterIsNotADollarQuote) {
  EXPECT_EQ(texts("PREPARE p AS SELECT $1; SELECT 2;"),
            (Texts{"PREPARE p AS SELECT $1", "SELECT 2"}));
}

TEST(SplitSql, DollarInsideIdentifierIsNotAQuote) {
  EXPECT_EQ(texts("SELECT a$b$ FROM t; SELECT 2;"), (Texts{"SELECT a$b$ FROM t", "SELECT 2"}));
}

TEST(SplitSql, LineCommentWithSemicolon) {
  EXPECT_EQ(texts("SELECT 1 -- one; two\n, 2;\nSELECT 3;"),
            (Texts{"SELECT 1 -- one; two\n, 2", "SELECT 3"}));
}

TEST(SplitSql, BlockCommentWithSemicolon) {
  EXPECT_EQ(texts("SELECT /* a; b */ 1; SELECT 2;"), (Texts{"SELECT /* a; b */ 1", "SELECT 2"}));
}

TEST(SplitSql, NestedBlockComments) {
  EXPECT_EQ(texts("SELECT /* outer /* inner; */ still; comment */ 1; SELECT 2;"),
            (Texts{"SELECT /* outer /* inner; */ still; comment */ 1", "SELECT 2"}));
}

TEST(SplitSql, QuotesInsideCommentsIgnored) {
  EXPECT_EQ(texts("SELECT 1; -- it's\nSELECT 2; /* \" $$ */ SELECT 3;"),
            (Texts{"SELECT 1", "-- it's\nSELECT 2", "/* \" $$ */ SELECT 3"}));
}

TEST(SplitSql, Parentheses) {
  const std::string rule =
      "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES "
      "(2))";
  EXPECT_EQ(texts(rule + ";\nSELECT 2;"), (Texts{rule, "SELECT 2"}));
}

TEST(SplitSql, BeginAtomicBody) {
  const std::string fn =
      "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND";
  EXPECT_EQ(texts(fn + ";\nSELECT 3;"), (Texts{fn, "SELECT 3"}));
}

TEST(SplitSql, BeginAtomicWithCaseInside) {
  const std::string fn =
      "create or replace procedure p(x int) language sql begin atomic "
      "insert into t values (case when x > 0 then 1 else 0 end); select 2; end";
  EXPECT_EQ(texts(fn + "; SELECT 3"), (Texts{fn, "SELECT 3"}));
}

TEST(SplitSql, BeginOutsideRoutineIsATransactionStatement) {
  EXPECT_EQ(texts("BEGIN; SELECT 1; END;"), (Texts{"BEGIN", "SELECT 1", "END"}));
}

TEST(SplitSql, CommentOnlyPiecesDropped) {
  EXPECT_EQ(texts("-- header\n;\nSELECT 1; -- trailing\n/* tail */\n"), (Texts{"SELECT 1"}));
  EXPECT_TRUE(split_sql("-- only a comment\n/* and /* nested */ block */\n").empty());
}

TEST(SplitSql, LeadingCommentStaysWithItsStatement) {
  const auto st = split_sql("-- create it\nCREATE TABLE t (id int);");
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].text, "-- create it\nCREATE TABLE t (id int)");
  EXPECT_EQ(st[0].line, 1);
}

TEST(SplitSql, LineNumbers) {
  EXPECT_EQ(lines("SELECT 1;\nSELECT 2;\n\n\nSELECT 3;"), (std::vector<int>{1, 2, 5}));
  EXPECT_EQ(lines("\n\n  SELECT 1; SELECT 2;"), (std::vector<int>{3, 3}));
}

TEST(SplitSql, LineNumbersAfterMultiLineConstructs) {
  const std::string script =
      "SELECT 'a\nb';\n"                                                     // 1-2
      "/* c\nc\n*/ SELECT 2;\n"                                              // 3-5
      "CREATE FUNCTION f() RETURNS int AS $$\nSELECT 1\n$$ LANGUAGE sql;\n"  // 6-8
      "SELECT \"x\ny\";\n"                                                   // 9-10
      "-- done\n"                                                            // 11
      "SELECT 5;";                                                           // 12
  EXPECT_EQ(lines(script), (std::vector<int>{1, 3, 6, 9, 11}));
  const auto st = split_sql(script);
  ASSERT_EQ(st.size(), 5u);
  EXPECT_EQ(st[4].text, "-- done\nSELECT 5");
}

TEST(SplitSql, LineNumbersAfterBackslashNewlineInEscapeString) {
  // E'a\<newline>b' spans two lines; the next statement starts on line 3.
  EXPECT_EQ(lines("SELECT E'a\\\nb';\nSELECT 2;"), (std::vector<int>{1, 3}));
}

TEST(SplitSql, CrLfLineEndings) {
  EXPECT_EQ(texts("SELECT 1;\r\nSELECT 2;\r\n"), (Texts{"SELECT 1", "SELECT 2"}));
  EXPECT_EQ(lines("SELECT 1;\r\nSELECT 2;\r\n"), (std::vector<int>{1, 2}));
}

TEST(SplitSql, UnterminatedQuoteSwallowsTheRest) {
  EXPECT_EQ(texts("SELECT 'abc; SELECT 2;"), (Texts{"SELECT 'abc; SELECT 2;"}));
}

TEST(SplitSql, TextViewsPointIntoTheScript) {
  const std::string script = "SELECT 1; SELECT 2;";
  const auto st = split_sql(script);
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[1].text.data(), script.data() + 10);
}

TEST(IsCommentOnly, Cases) {
  EXPECT_TRUE(is_comment_only(""));
  EXPECT_TRUE(is_comment_only("  \n"));
  EXPECT_TRUE(is_comment_only("-- reserved\n-- for a hotfix\n"));
  EXPECT_TRUE(is_comment_only("/* a\n /* b */ c */"));
  EXPECT_TRUE(is_comment_only("-- a;\n;\n/* b; */;"));
  EXPECT_FALSE(is_comment_only("SELECT 1"));
  EXPECT_FALSE(is_comment_only("-- comment\nSELECT 1;"));
  EXPECT_FALSE(is_comment_only("/* c */ SELECT 1"));
  EXPECT_FALSE(is_comment_only("'-- not a comment'"));
}

TEST(LeadingKeywords, Basic) {
  EXPECT_EQ(leading_keywords("create unique index concurrently idx on t (a)", 4),
            (std::vector<std::string>{"CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"}));
}

TEST(LeadingKeywords, RespectsMax) {
  EXPECT_EQ(leading_keywords("ALTER TABLE t ADD COLUMN c int", 2),
            (std::vector<std::string>{"ALTER", "TABLE"}));
  EXPECT_TRUE(leading_keywords("ALTER TABLE t", 0).empty());
}

TEST(LeadingKeywords, SkipsComments) {
  EXPECT_EQ(leading_keywords("-- add index\n/* online */ Create Index Concurrently i ON t (a)", 3),
            (std::vector<std::string>{"CREATE", "INDEX", "CONCURRENTLY"}));
}

TEST(LeadingKeywords, StopsAtPunctuation) {
  EXPECT_EQ(leading_keywords("VACUUM (ANALYZE) t", 4), (std::vector<std::string>{"VACUUM"}));
  EXPECT_EQ(leading_keywords("  \n", 4), (std::vector<std::string>{}));
  EXPECT_EQ(leading_keywords("(SELECT 1)", 4), (std::vector<std::string>{}));
}

TEST(LeadingKeywords, SkipsNestedBlockComments) {
  EXPECT_EQ(leading_keywords("/* outer /* inner */ still comment */ CREATE INDEX i ON t (a)", 2),
            (std::vector<std::string>{"CREATE", "INDEX"}));
}

TEST(MayHoldTransactionControl, PlainDdlNeedsNoSplitting) {
  EXPECT_FALSE(may_hold_transaction_control(
      "CREATE TABLE appended (id bigserial PRIMARY KEY, legend text, started_at timestamptz);\n"
      "CREATE INDEX appended_legend_idx ON appended (legend);"));
  EXPECT_FALSE(may_hold_transaction_control(""));
}

TEST(MayHoldTransactionControl, AnyKeywordAnywhereIsAMaybe) {
  EXPECT_TRUE(may_hold_transaction_control("begin;\nCREATE TABLE t (id int);\ncommit;"));
  EXPECT_TRUE(may_hold_transaction_control("SELECT 1; -- End of file"));
  EXPECT_TRUE(may_hold_transaction_control("START TRANSACTION; SELECT 1; COMMIT;"));
  EXPECT_TRUE(may_hold_transaction_control("PREPARE TRANSACTION 'x'"));
  EXPECT_TRUE(may_hold_transaction_control("ABORT"));
  EXPECT_TRUE(may_hold_transaction_control(
      "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;"));
}

// The pre-check may say "maybe" too often, never "no" for a file with transaction control.
TEST(MayHoldTransactionControl, NeverMissesAStatementTheSplitterFlags) {
  const char* corpus[] = {
      "BEGIN; CREATE TABLE a (id int); COMMIT;",
      "/* header */ begin transaction isolation level serializable; SELECT 1; end;",
      "CREATE TABLE x (id int);\nROLLBACK;",
      "SAVEPOINT s; ROLLBACK TO s; COMMIT",
      "-- comment\n  START\n TRANSACTION;\nUPDATE t SET v = 1;\nCOMMIT;",
      "CREATE TABLE t (v int); INSERT INTO t VALUES (1);",
      "DO $$ BEGIN PERFORM 1; END $$; abort;",
  };
  for (const char* sql : corpus) {
    bool flagged = false;
    for (const auto& st : split_sql(sql)) flagged = flagged || is_transaction_control(st.text);
    if (flagged) {
      EXPECT_TRUE(may_hold_transaction_control(sql)) << sql;
    }
  }
}

}  // namespace
}  // namespace stepwise
