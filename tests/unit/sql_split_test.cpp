#include <gtest/gtest.h>

#include <algorithm>
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

// ---------------------------------------------------------------- parse_script: problems

std::string problem_of(std::string_view script) {
  const auto p = parse_script(script);
  if (!p.problem) return "none";
  return std::to_string(p.problem->line) + ": " + p.problem->message;
}

TEST(ParseScript, WellFormedScriptHasNoProblem) {
  EXPECT_EQ(problem_of("SELECT 'a''b', E'c\\'d', \"e\"\"f\", $$g$$, $t$h$t$; /* i /* j */ k */"),
            "none");
  EXPECT_EQ(problem_of(""), "none");
  EXPECT_EQ(problem_of("SELECT $1, a$b$ FROM t; -- 'unclosed in a comment"), "none");
  EXPECT_EQ(problem_of("SELECT U&'d\\0061t\\+000061', U&\"d\\0061t\", B'101', X'ff', N'x';"),
            "none");
}

TEST(ParseScript, EachUnterminatedFormNamedWithItsStartLine) {
  EXPECT_EQ(problem_of("SELECT 1;\nSELECT 'abc;\nSELECT 2;"),
            "2: unterminated quoted string ('...): the file ends inside it");
  EXPECT_EQ(problem_of("SELECT 1;\nSELECT e'abc\\';\n"),
            "2: unterminated E'...' string: the file ends inside it");
  EXPECT_EQ(problem_of("\n\nSELECT \"abc;\n"),
            "3: unterminated quoted identifier (\"...): the file ends inside it");
  EXPECT_EQ(problem_of("SELECT 1;\nDO $body$ BEGIN PERFORM 1; END $$;\n"),
            "2: unterminated dollar-quoted string $body$: the file ends inside it");
  EXPECT_EQ(problem_of("DO $$ BEGIN PERFORM 1; END;\n"),
            "1: unterminated dollar-quoted string $$: the file ends inside it");
  EXPECT_EQ(problem_of("SELECT 1;\n/* a\n/* nested */\nstill inside\n"),
            "2: unterminated /* comment: the file ends inside it");
  EXPECT_EQ(problem_of("SELECT U&'abc"),
            "1: unterminated quoted string ('...): the file ends inside it");
}

TEST(ParseScript, BackslashInStandardStringIsNotAnEscape) {
  // standard_conforming_strings: 'a\' is a whole string; E'a\'' needs its second quote.
  EXPECT_EQ(problem_of("SELECT 'a\\';"), "none");
  EXPECT_EQ(texts("SELECT 'a\\'; SELECT 2"), (Texts{"SELECT 'a\\'", "SELECT 2"}));
  EXPECT_EQ(problem_of("SELECT E'a\\'';"), "none");
}

TEST(ParseScript, PsqlMetaCommandsRefusedWithTheirName) {
  EXPECT_EQ(problem_of("SELECT 1;\n\\i other.sql\n"),
            "2: psql meta-command \\i is not SQL; stepwise sends files to the server as they are");
  EXPECT_EQ(problem_of("\\set ON_ERROR_STOP on\nSELECT 1;"),
            "1: psql meta-command \\set is not SQL; stepwise sends files to the server as they "
            "are");
  EXPECT_EQ(problem_of("SELECT format('SELECT 1') \\gexec\n").substr(0, 30),
            "1: psql meta-command \\gexec is");
  // Inside quotes, comments and COPY data a backslash is data.
  EXPECT_EQ(problem_of("SELECT '\\i x', E'\\\\'; -- \\connect\n/* \\set */"), "none");
}

TEST(ParseScript, SavepointsAndPreparedAreTransactionControl) {
  EXPECT_EQ(transaction_control("SAVEPOINT a"), TxControl::kSavepoint);
  EXPECT_EQ(transaction_control("release savepoint a"), TxControl::kSavepoint);
  EXPECT_EQ(transaction_control("ROLLBACK TO SAVEPOINT a"), TxControl::kSavepoint);
  EXPECT_EQ(transaction_control("COMMIT PREPARED 'x'"), TxControl::kBoundary);
  EXPECT_EQ(transaction_control("ROLLBACK PREPARED 'x'"), TxControl::kBoundary);
  EXPECT_EQ(transaction_control("-- note\nBegin Transaction Isolation Level Serializable"),
            TxControl::kBoundary);
  EXPECT_EQ(transaction_control("START TRANSACTION"), TxControl::kBoundary);
  EXPECT_EQ(transaction_control("PREPARE TRANSACTION 'x'"), TxControl::kBoundary);
  EXPECT_EQ(transaction_control("PREPARE q AS SELECT 1"), TxControl::kNone);
  EXPECT_EQ(transaction_control("\"begin\""), TxControl::kNone);
  EXPECT_EQ(transaction_control("'BEGIN'"), TxControl::kNone);
  EXPECT_EQ(transaction_control("CREATE TABLE begin (commit int)"), TxControl::kNone);
  EXPECT_EQ(transaction_control("END_OF_DAY()"), TxControl::kNone);
}

TEST(ParseScript, BeginInBodiesIsNotAStatement) {
  const std::string script =
      "DO $$ BEGIN COMMIT; END $$;\n"
      "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN 1; END';\n"
      "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); "
      "SELECT CASE WHEN true THEN 1 END; END;\n"
      "SELECT 1 /* ; BEGIN; */;\n";
  const auto p = parse_script(script);
  EXPECT_FALSE(p.problem);
  ASSERT_EQ(p.statements.size(), 4u);
  for (const auto& st : p.statements)
    EXPECT_EQ(transaction_control(st.text), TxControl::kNone) << st.text;
}

// ---------------------------------------------------------------- COPY ... FROM STDIN

TEST(CopyData, PgDumpStyleBlockAttachedToItsStatement) {
  const std::string script =
      "CREATE TABLE t (a int, b text);\n"   // 1
      "COPY public.t (a, b) FROM stdin;\n"  // 2
      "1\tone; two\n"                       // 3
      "2\t\\N\n"                            // 4
      "3\tit's \"quoted\" $$ /* \\i x\n"    // 5
      "\\.\n"                               // 6
      "SELECT 3;\n";                        // 7
  const auto p = parse_script(script);
  EXPECT_FALSE(p.problem) << p.problem->message;
  ASSERT_EQ(p.statements.size(), 3u);
  EXPECT_EQ(p.statements[1].text, "COPY public.t (a, b) FROM stdin");
  ASSERT_TRUE(p.statements[1].copy_data);
  EXPECT_EQ(*p.statements[1].copy_data, "1\tone; two\n2\t\\N\n3\tit's \"quoted\" $$ /* \\i x\n");
  EXPECT_FALSE(p.statements[0].copy_data);
  EXPECT_FALSE(p.statements[2].copy_data);
  EXPECT_EQ(p.statements[2].text, "SELECT 3");
  EXPECT_EQ(p.statements[2].line, 7);
}

TEST(CopyData, SpellingsAndOptionsRecognised) {
  for (const char* copy :
       {"copy t from STDIN", "COPY \"T\" (\"a\", b) FROM stdin WITH (FORMAT csv, HEADER true)",
        "COPY t FROM STDIN WITH CSV HEADER DELIMITER ','",
        "COPY t FROM stdin DELIMITER '|' NULL ''", "COPY s.t(a) FROM STDIN (FORMAT text)",
        "/* c */ COPY t FROM\n  STDIN"}) {
    const std::string script = std::string(copy) + ";\nx\n\\.\nSELECT 1;";  // p views it
    const auto p = parse_script(script);
    EXPECT_FALSE(p.problem) << copy;
    ASSERT_EQ(p.statements.size(), 2u) << copy;
    ASSERT_TRUE(p.statements[0].copy_data) << copy;
    EXPECT_EQ(*p.statements[0].copy_data, "x\n") << copy;
  }
}

TEST(CopyData, FromFileOrProgramIsAnOrdinaryStatement) {
  for (const char* copy :
       {"COPY t FROM '/tmp/x.csv'", "COPY t FROM PROGRAM 'cat x'", "COPY t TO '/tmp/out'"}) {
    const std::string script = std::string(copy) + ";\nSELECT 1;";  // p views it
    const auto p = parse_script(script);
    EXPECT_FALSE(p.problem) << copy;
    ASSERT_EQ(p.statements.size(), 2u);
    EXPECT_FALSE(p.statements[0].copy_data);
  }
}

TEST(CopyData, CsvQuotedFieldsEndOnlyAtALineThatIsExactlyBackslashDot) {
  const std::string script =
      "COPY t (a, b) FROM stdin WITH (FORMAT csv);\n"
      "1,\"a \\. inside\"\n"
      "2,\"\\.x\"\n"
      " \\.\n"
      "\\. \n"
      "3,\"multi\n"
      "line; with -- and 'quote\"\n"
      "\\.\n"
      "SELECT 2;";
  const auto p = parse_script(script);
  EXPECT_FALSE(p.problem);
  ASSERT_EQ(p.statements.size(), 2u);
  EXPECT_EQ(*p.statements[0].copy_data,
            "1,\"a \\. inside\"\n2,\"\\.x\"\n \\.\n\\. \n3,\"multi\nline; with -- and 'quote\"\n");
  EXPECT_EQ(p.statements[1].line, 9);
}

TEST(CopyData, CrLfDataAndEndOfFileAfterTheEndMarker) {
  const auto p = parse_script("COPY t FROM stdin;\r\n1\r\n\\.\r\nSELECT 1;\r\n");
  EXPECT_FALSE(p.problem);
  ASSERT_EQ(p.statements.size(), 2u);
  EXPECT_EQ(*p.statements[0].copy_data, "1\r\n");
  const auto q = parse_script("COPY t FROM stdin;\n1\n\\.");
  EXPECT_FALSE(q.problem);
  ASSERT_EQ(q.statements.size(), 1u);
  EXPECT_EQ(*q.statements[0].copy_data, "1\n");
  const auto empty = parse_script("COPY t FROM stdin;\n\\.\n");
  EXPECT_FALSE(empty.problem);
  EXPECT_EQ(*empty.statements[0].copy_data, "");
}

TEST(CopyData, MissingEndMarkerOrTrailingTextRefused) {
  EXPECT_EQ(problem_of("SELECT 1;\nCOPY t FROM stdin;\n1\n2\n"),
            "2: COPY ... FROM STDIN has no inline data ending in a line \\.");
  EXPECT_EQ(problem_of("COPY t FROM stdin"),
            "1: COPY ... FROM STDIN has no inline data ending in a line \\.");
  EXPECT_EQ(problem_of("COPY t FROM stdin;"),
            "1: COPY ... FROM STDIN has no inline data ending in a line \\.");
  EXPECT_EQ(problem_of("COPY t FROM stdin; SELECT 1;\n\\.\n").substr(0, 44),
            "1: text after COPY ... FROM STDIN; on the sa");
  EXPECT_EQ(problem_of("COPY t FROM stdin; -- rows follow\n1\n\\.\n"), "none");
}

TEST(CopyData, ToStdoutRefused) {
  EXPECT_EQ(problem_of("SELECT 1;\ncopy (SELECT 1) to stdout;").substr(0, 24),
            "2: COPY ... TO STDOUT se");
  EXPECT_EQ(problem_of("COPY t TO STDOUT WITH CSV").substr(0, 24), "1: COPY ... TO STDOUT se");
  // A COPY (query) whose query reads FROM something is judged at the top level only.
  EXPECT_EQ(problem_of("COPY (SELECT a FROM stdin_table) TO '/tmp/x';"), "none");
}

TEST(CopyData, StripKeepsLineNumbersAndListsBlocksInOrder) {
  const std::string script =
      "COPY a FROM stdin;\n"
      "1\n2\n"
      "\\.\n"
      "COPY b (x) FROM stdin WITH (FORMAT csv);\n"
      "\"q\"\n"
      "\\.\n"
      "SELECT 1/0;\n";
  const auto s = strip_copy_data(script);
  EXPECT_EQ(
      s.sql,
      "COPY a FROM stdin;\n\n\n\nCOPY b (x) FROM stdin WITH (FORMAT csv);\n\n\nSELECT 1/0;\n");
  EXPECT_EQ(s.copy_data, (std::vector<std::string>{"1\n2\n", "\"q\"\n"}));
  EXPECT_EQ(std::count(s.sql.begin(), s.sql.end(), '\n'),
            std::count(script.begin(), script.end(), '\n'));
  const auto none = strip_copy_data("SELECT 1;");
  EXPECT_EQ(none.sql, "SELECT 1;");
  EXPECT_TRUE(none.copy_data.empty());
}

}  // namespace
}  // namespace stepwise
