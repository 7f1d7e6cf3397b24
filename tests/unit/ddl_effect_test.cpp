// parse_ddl_effect: what a statement of an interrupted statement-by-statement step creates or
// drops, so that the resume probe can tell whether it already took effect. Anything it cannot
// judge for certain must be nullopt (the probe then runs the statement again or stops).
#include <gtest/gtest.h>

#include "stepwise/sql_split.hpp"

namespace stepwise {
namespace {

using Action = DdlEffect::Action;

void expect_effect(std::string_view sql, Action action, std::string_view kind,
                   std::string_view name, std::string_view column = "") {
  const auto e = parse_ddl_effect(sql);
  ASSERT_TRUE(e.has_value()) << sql;
  EXPECT_EQ(e->action, action) << sql;
  EXPECT_EQ(e->kind, kind) << sql;
  EXPECT_EQ(e->name, name) << sql;
  EXPECT_EQ(e->column, column) << sql;
}

TEST(DdlEffect, CreatesOfRelationsTypesAndSchemas) {
  expect_effect("CREATE TABLE users (id int)", Action::kCreate, "relation", "users");
  expect_effect("create table if not exists app.users (id int)", Action::kCreate, "relation",
                "app.users");
  expect_effect("CREATE UNLOGGED TABLE t (a int)", Action::kCreate, "relation", "t");
  expect_effect("CREATE VIEW v AS SELECT 1", Action::kCreate, "relation", "v");
  expect_effect("CREATE MATERIALIZED VIEW mv AS SELECT 1", Action::kCreate, "relation", "mv");
  expect_effect("CREATE SEQUENCE s", Action::kCreate, "relation", "s");
  expect_effect("CREATE TYPE mood AS ENUM ('a')", Action::kCreate, "type", "mood");
  expect_effect("CREATE DOMAIN posint AS int CHECK (VALUE > 0)", Action::kCreate, "type", "posint");
  expect_effect("CREATE SCHEMA IF NOT EXISTS audit", Action::kCreate, "schema", "audit");
}

TEST(DdlEffect, QuotedNamesKeepTheirQuotesForTheCatalogLookup) {
  expect_effect("CREATE TABLE \"Odd Name\" (id int)", Action::kCreate, "relation", "\"Odd Name\"");
  expect_effect("CREATE TABLE \"s\".\"T\" (id int)", Action::kCreate, "relation", "\"s\".\"T\"");
}

TEST(DdlEffect, LeadingCommentsAreSkipped) {
  expect_effect("-- the users\n/* block */ CREATE TABLE users (id int)", Action::kCreate,
                "relation", "users");
}

TEST(DdlEffect, DropsOfOneObject) {
  expect_effect("DROP TABLE users", Action::kDrop, "relation", "users");
  expect_effect("DROP INDEX CONCURRENTLY IF EXISTS idx_a", Action::kDrop, "relation", "idx_a");
  expect_effect("DROP TYPE mood CASCADE", Action::kDrop, "type", "mood");
  // Several objects at once: not judged by the first one.
  EXPECT_FALSE(parse_ddl_effect("DROP TABLE a, b").has_value());
}

TEST(DdlEffect, AddAndDropColumnFoldTheColumnAsPostgresStoresIt) {
  expect_effect("ALTER TABLE users ADD COLUMN Email text", Action::kAddColumn, "relation", "users",
                "email");
  expect_effect("ALTER TABLE ONLY users ADD \"Email\" text", Action::kAddColumn, "relation",
                "users", "Email");
  expect_effect("ALTER TABLE IF EXISTS users DROP COLUMN IF EXISTS email", Action::kDropColumn,
                "relation", "users", "email");
  // A comma inside parentheses is part of the type, not a second action.
  expect_effect("ALTER TABLE t ADD COLUMN price numeric(10,2)", Action::kAddColumn, "relation", "t",
                "price");
}

TEST(DdlEffect, WhatItCannotJudgeIsNullopt) {
  for (const char* sql : {
           "CREATE OR REPLACE VIEW v AS SELECT 1",              // safe to run again
           "CREATE INDEX CONCURRENTLY i ON t (a)",              // the index probe handles it
           "ALTER TABLE t ADD COLUMN a int, ADD COLUMN b int",  // two actions
           "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)",      // not a column
           "ALTER TABLE t ADD PRIMARY KEY (id)",
           "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
           "INSERT INTO t VALUES (1)",
           "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
           "",
       })
    EXPECT_FALSE(parse_ddl_effect(sql).has_value()) << sql;
}

}  // namespace
}  // namespace stepwise
