// COPY ... FROM STDIN through the real connection: Connection::execute_with_copy feeds one data
// block per COPY the SQL runs, over libpq's COPY protocol.
#include <gtest/gtest.h>

#include <memory>

#include "../../src/pqxx/pqxx_connection.hpp"
#include "test_db.hpp"

namespace stepwise::test {
namespace {

std::unique_ptr<Connection> connect(const TestDb& db) {
  return open_connection(parse_conninfo(db.url(), 10));
}

using Blocks = std::vector<std::string>;

TEST(HostileCopyProtocol, TextFormatWithTabsNullsAndBackslashEscapes) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  conn->execute("CREATE TABLE t (id int, name text, note text)");
  const Blocks data = {
      "1\talpha\t\\N\n"
      "2\tback\\\\slash\ttab\\there\n"
      "3\tline\\nbreak\t\n"
      "4\tgr\xc3\xbc\xc3\x9f"
      "e\t\\x41\\101\n"};
  EXPECT_EQ(conn->execute_with_copy("COPY public.t (id, name, note) FROM stdin;", data), Rows{});
  const auto rows =
      db.query("SELECT id, name, note IS NULL, coalesce(note, '<null>') FROM t ORDER BY id");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1", "alpha", "t", "<null>"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"2", "back\\slash", "f", "tab\there"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"3", "line\nbreak", "f", ""}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"4",
                                               "gr\xc3\xbc\xc3\x9f"
                                               "e",
                                               "f", "AA"}));
}

TEST(HostileCopyProtocol, CsvWithHeader) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  conn->execute("CREATE TABLE c (id int, name text)");
  conn->execute_with_copy(
      "COPY c (id, name) FROM STDIN WITH (FORMAT csv, HEADER true)",
      Blocks{"id,name\n1,\"a,b\"\n2,\"say \"\"hi\"\"\"\n3,\n4,\"two\nlines\"\n"});
  const auto rows = db.query("SELECT id, coalesce(name, '<null>') FROM c ORDER BY id");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0][1], "a,b");
  EXPECT_EQ(rows[1][1], "say \"hi\"");
  EXPECT_EQ(rows[2][1], "<null>");
  EXPECT_EQ(rows[3][1], "two\nlines");
}

TEST(HostileCopyProtocol, SeveralCopiesInOneTransactionBetweenOtherStatements) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  const auto rows = conn->execute_with_copy(
      "BEGIN;\n"
      "CREATE TABLE a (v int);\n"
      "COPY a FROM STDIN;\n"
      "INSERT INTO a VALUES (100);\n"
      "CREATE TABLE b (w text);\n"
      "COPY b (w) FROM STDIN (FORMAT csv);\n"
      "SELECT (SELECT count(*) FROM a) || '/' || (SELECT count(*) FROM b);\n"
      "COPY a FROM STDIN;\n"  // an empty block: no rows
      "COMMIT;\n",
      Blocks{"1\n2\n", "x\ny\nz\n", ""});
  EXPECT_EQ(rows, (Rows{{Field{"3/3"}}}));
  EXPECT_EQ(db.scalar("SELECT string_agg(v::text, ',' ORDER BY v) FROM a"), "1,2,100");
  EXPECT_EQ(db.scalar("SELECT string_agg(w, ',' ORDER BY w) FROM b"), "x,y,z");
}

TEST(HostileCopyProtocol, LargeBlockIsStreamedInPieces) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  conn->execute("CREATE TABLE big (id int, pad text)");
  std::string block;
  const std::string pad(40, 'x');
  for (int i = 1; i <= 60000; ++i) block += std::to_string(i) + "\t" + pad + "\n";
  ASSERT_GT(block.size(), std::size_t{2} << 20);  // more than one 1 MiB piece
  conn->execute_with_copy("COPY big FROM STDIN", Blocks{block});
  EXPECT_EQ(db.scalar("SELECT count(*) || ' ' || sum(id) || ' ' || min(length(pad)) FROM big"),
            "60000 1800030000 40");
}

TEST(HostileCopyProtocol, MissingBlockFailsTheStatementAndTheSessionStaysUsable) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  try {
    conn->execute_with_copy(
        "BEGIN; CREATE TABLE m (v int); COPY m FROM STDIN; COPY m FROM STDIN; COMMIT;",
        Blocks{"1\n"});
    ADD_FAILURE() << "no error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.sqlstate(), "57014");
    EXPECT_NE(std::string(e.what()).find("no inline data for this COPY"), std::string::npos)
        << e.what();
  }
  conn->execute("ROLLBACK");
  EXPECT_EQ(db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'm'"), 0) << "rolled back";
  EXPECT_EQ(conn->execute("SELECT 1"), (Rows{{Field{"1"}}}));
  // Plain execute() has no data for any COPY.
  conn->execute("CREATE TABLE m (v int)");
  EXPECT_THROW(conn->execute("COPY m FROM STDIN"), DbError);
  EXPECT_EQ(conn->query("SELECT count(*) FROM m", {}), (Rows{{Field{"0"}}}));
}

TEST(HostileCopyProtocol, BadDataIsTheServersErrorWithItsSqlstate) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  conn->execute("CREATE TABLE n (v int)");
  try {
    conn->execute_with_copy("COPY n FROM STDIN", Blocks{"1\nnot a number\n"});
    ADD_FAILURE() << "no error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.sqlstate(), "22P02");
    EXPECT_NE(e.detail().find("COPY n, line 2"), std::string::npos) << e.detail();
  }
  EXPECT_EQ(db.count("SELECT count(*) FROM n"), 0);
  EXPECT_EQ(conn->execute("SELECT 2"), (Rows{{Field{"2"}}}));
}

TEST(HostileCopyProtocol, LeftOverBlocksAreAProgrammingError) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  try {
    conn->execute_with_copy("SELECT 1", Blocks{"1\n"});
    ADD_FAILURE() << "no error";
  } catch (const DbError& e) {
    ADD_FAILURE() << "a server error: " << e.what();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 COPY data block(s)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(conn->execute("SELECT 3"), (Rows{{Field{"3"}}}));
}

TEST(HostileCopyProtocol, CopyToStdoutIsRefusedAndTheSessionStaysUsable) {
  REQUIRE_TEST_DATABASE();
  TestDb db;
  auto conn = connect(db);
  for (const char* sql : {"COPY (SELECT g FROM generate_series(1, 20000) g) TO STDOUT",
                          "SELECT 1; COPY (SELECT 2) TO STDOUT (FORMAT csv); SELECT 3"}) {
    SCOPED_TRACE(sql);
    try {
      conn->execute(sql);
      ADD_FAILURE() << "no error";
    } catch (const DbError& e) {
      EXPECT_EQ(e.sqlstate(), "0A000");
      EXPECT_EQ(std::string(e.what()), "COPY ... TO STDOUT is not supported in a migration");
    }
    EXPECT_EQ(conn->execute("SELECT 4"), (Rows{{Field{"4"}}}));
  }
}

}  // namespace
}  // namespace stepwise::test
