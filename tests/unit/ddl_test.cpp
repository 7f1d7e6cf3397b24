// The DDL module without a database: the CREATE / DROP / ALTER text per kind, and quoting.
#include <gtest/gtest.h>

#include "schema_objects.hpp"
#include "stepwise/ddl.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {

using test::object;
using test::with;

SchemaObject column(const std::string& name, const std::string& sql_name, const std::string& type,
                    const std::string& position) {
  return object(
      "column", "app", "t", name,
      {{"sql_name", sql_name}, {"sql_table", "app.t"}, {"type", type}, {"position", position}});
}

TEST(Ddl, QuotesIdentifiersAndLiterals) {
  EXPECT_EQ(ddl::quote_identifier("plain"), "\"plain\"");
  EXPECT_EQ(ddl::quote_identifier("we\"ird name"), "\"we\"\"ird name\"");
  EXPECT_EQ(ddl::quote_dotted("app.t x.c\"1"), "\"app\".\"t x\".\"c\"\"1\"");
  EXPECT_EQ(ddl::quote_dotted("solo"), "\"solo\"");
  EXPECT_EQ(ddl::literal("it's"), "'it''s'");
  EXPECT_EQ(ddl::escaped_literal("it's"), "'it''s'");
  EXPECT_EQ(ddl::escaped_literal("a\\b'c"), "E'a\\\\b''c'");
}

TEST(Ddl, TableCreateDropAlter) {
  SchemaDescription d;
  d.objects = {column("b", "b", "text", "2"), column("a", "a", "integer", "1")};
  d.objects[1] = with(d.objects[1], {{"not_null", "true"}});
  const auto t =
      object("table", "app", "", "t",
             {{"sql_name", "app.t"}, {"persistence", "unlogged"}, {"options", "fillfactor=70"}});
  EXPECT_EQ(
      ddl::create_statement(t, d),
      "CREATE UNLOGGED TABLE app.t (\n  a integer NOT NULL,\n  b text\n) WITH (fillfactor=70);");
  EXPECT_EQ(ddl::drop(t), "DROP TABLE app.t;");
  EXPECT_EQ(ddl::keyword(t), "TABLE");
  const auto live = with(t, {{"options", "autovacuum_enabled=false, fillfactor=50"}});
  EXPECT_EQ(ddl::alter(t, live, "options").value(),
            "ALTER TABLE app.t RESET (autovacuum_enabled, fillfactor);\n"
            "ALTER TABLE app.t SET (fillfactor=70);");
  const auto secure = with(t, {{"row_security", "true"}});
  EXPECT_EQ(ddl::alter(secure, t, "row_security").value(),
            "ALTER TABLE app.t ENABLE ROW LEVEL SECURITY;");
  EXPECT_EQ(ddl::alter(t, secure, "row_security").value(),
            "ALTER TABLE app.t DISABLE ROW LEVEL SECURITY;");
  // The table's column settings come with its creation.
  d.objects[0] = with(d.objects[0], {{"statistics", "500"}});
  EXPECT_EQ(ddl::decorations(t, d, "")[0], '\n');
  EXPECT_NE(ddl::create(t, d).find("ALTER TABLE app.t ALTER COLUMN b SET STATISTICS 500;"),
            std::string::npos)
      << ddl::create(t, d);
}

TEST(Ddl, ColumnDefinitionAlterDropRename) {
  auto c = column("odd \"name\"", "\"odd \"\"name\"\"\"", "integer", "3");
  c = with(c, {{"default", "42"}, {"not_null", "true"}});
  EXPECT_EQ(ddl::column_definition(c), "\"odd \"\"name\"\"\" integer DEFAULT 42 NOT NULL");
  EXPECT_EQ(ddl::create_statement(c, {}),
            "ALTER TABLE app.t ADD COLUMN \"odd \"\"name\"\"\" integer DEFAULT 42 NOT NULL;");
  EXPECT_EQ(ddl::drop(c), "ALTER TABLE app.t DROP COLUMN \"odd \"\"name\"\"\";");
  const auto live = with(c, {{"type", "text"}, {"not_null", ""}, {"default", ""}});
  EXPECT_EQ(ddl::alter(c, live, "type").value(),
            "ALTER TABLE app.t ALTER COLUMN \"odd \"\"name\"\"\" TYPE integer USING "
            "\"odd \"\"name\"\"\"::integer;");
  EXPECT_EQ(ddl::alter(c, live, "not_null").value(),
            "ALTER TABLE app.t ALTER COLUMN \"odd \"\"name\"\"\" SET NOT NULL;");
  EXPECT_EQ(ddl::alter(live, c, "default").value(),
            "ALTER TABLE app.t ALTER COLUMN \"odd \"\"name\"\"\" DROP DEFAULT;");
  // The new name is quoted here; the old one is the server's.
  EXPECT_EQ(ddl::rename(c, "new \"x\""),
            "ALTER TABLE app.t RENAME COLUMN \"odd \"\"name\"\"\" TO \"new \"\"x\"\"\";");
  EXPECT_EQ(ddl::comment(c), "COMMENT ON COLUMN app.t.\"odd \"\"name\"\"\" IS NULL;");
}

TEST(Ddl, IndexAndConstraint) {
  auto i = object("index", "app", "t", "t_a",
                  {{"sql_name", "app.t_a"},
                   {"sql_table", "app.t"},
                   {"definition", "CREATE INDEX t_a ON ONLY app.t USING btree (a)"}});
  EXPECT_EQ(ddl::create_statement(i, {}), "CREATE INDEX t_a ON app.t USING btree (a);");
  EXPECT_EQ(ddl::drop(i), "DROP INDEX app.t_a;");
  const auto clustered = with(i, {{"clustered", "true"}});
  EXPECT_EQ(ddl::alter(clustered, i, "clustered").value(), "ALTER TABLE app.t CLUSTER ON t_a;");
  EXPECT_EQ(ddl::alter(i, clustered, "clustered").value(),
            "ALTER TABLE app.t SET WITHOUT CLUSTER;");
  EXPECT_FALSE(ddl::alter(i, i, "definition").has_value()) << "an index is recreated";

  const auto k = object("constraint", "app", "t", "t_fk",
                        {{"sql_name", "t_fk"},
                         {"sql_table", "app.t"},
                         {"definition", "FOREIGN KEY (a) REFERENCES app.u(id)"}});
  EXPECT_EQ(ddl::create_statement(k, {}),
            "ALTER TABLE app.t ADD CONSTRAINT t_fk FOREIGN KEY (a) REFERENCES app.u(id);");
  EXPECT_EQ(ddl::drop(k), "ALTER TABLE app.t DROP CONSTRAINT t_fk;");
  const auto not_valid = with(k, {{"not_valid", "true"}});
  EXPECT_EQ(ddl::alter(k, not_valid, "not_valid").value(),
            "ALTER TABLE app.t VALIDATE CONSTRAINT t_fk;");
  EXPECT_FALSE(ddl::alter(not_valid, k, "not_valid").has_value())
      << "a valid constraint cannot be made NOT VALID in place";
  EXPECT_EQ(ddl::comment(k), "COMMENT ON CONSTRAINT t_fk ON app.t IS NULL;");
}

TEST(Ddl, ViewsPlainAndMaterialized) {
  auto v = object("view", "app", "", "v",
                  {{"sql_name", "app.v"},
                   {"definition", " SELECT 1 AS x;"},
                   {"options", "security_barrier=true, check_option=local"}});
  EXPECT_EQ(ddl::create_statement(v, {}),
            "CREATE VIEW app.v WITH (security_barrier=true) AS  SELECT 1 AS x\n  WITH LOCAL CHECK "
            "OPTION;");
  EXPECT_EQ(ddl::drop(v), "DROP VIEW app.v;");
  const auto m = with(v, {{"materialized", "true"}, {"options", "fillfactor=80"}});
  const auto live = with(m, {{"options", ""}});
  EXPECT_EQ(ddl::drop(m), "DROP MATERIALIZED VIEW app.v;");
  EXPECT_EQ(ddl::alter(m, live, "options").value(),
            "ALTER MATERIALIZED VIEW app.v SET (fillfactor=80);");
  EXPECT_EQ(ddl::rename(m, "w"), "ALTER MATERIALIZED VIEW app.v RENAME TO \"w\";");
  EXPECT_FALSE(ddl::alter(v, v, "definition").has_value());
}

TEST(Ddl, EnumsDomainsAndSequences) {
  const auto e = object("type", "app", "", "mood",
                        {{"sql_name", "app.mood"}, {"type", "enum"}, {"labels", "'a', 'b', 'c'"}});
  EXPECT_EQ(ddl::create_statement(e, {}), "CREATE TYPE app.mood AS ENUM ('a', 'b', 'c');");
  EXPECT_EQ(ddl::drop(e), "DROP TYPE app.mood;");
  EXPECT_EQ(ddl::enum_labels(e, with(e, {{"labels", "'a', 'c'"}}), {}, ""),
            "ALTER TYPE app.mood ADD VALUE 'b' BEFORE 'c';");
  EXPECT_EQ(ddl::enum_labels(e, with(e, {{"labels", "'a', 'x', 'c'"}}), {}, ""),
            "ALTER TYPE app.mood RENAME VALUE 'x' TO 'b';");
  const auto live = with(e, {{"labels", "'a', 'b', 'c', 'd'"}});
  const auto rebuilt = ddl::enum_labels(e, live, {}, "CREATE TYPE ...;");
  EXPECT_NE(rebuilt.find("ALTER TYPE app.mood RENAME TO \"mood__stepwise_old\";\nCREATE TYPE ...;"),
            std::string::npos)
      << rebuilt;
  EXPECT_TRUE(rebuilt.ends_with("DROP TYPE .\"mood__stepwise_old\";")) << rebuilt;

  auto domain = object("type", "app", "", "pos",
                       {{"sql_name", "app.pos"},
                        {"type", "domain"},
                        {"base_type", "integer"},
                        {"constraints", "CONSTRAINT pos_check CHECK (VALUE > 0)"}});
  EXPECT_EQ(ddl::keyword(domain), "DOMAIN");
  EXPECT_EQ(ddl::drop(domain), "DROP DOMAIN app.pos;");
  const auto live_domain = with(domain, {{"constraints", "CONSTRAINT old CHECK (VALUE > 1)"}});
  EXPECT_EQ(ddl::alter(domain, live_domain, "constraints").value(),
            "ALTER DOMAIN app.pos DROP CONSTRAINT old;\n"
            "ALTER DOMAIN app.pos ADD CONSTRAINT pos_check CHECK (VALUE > 0);");
  EXPECT_FALSE(ddl::alter(domain, live_domain, "base_type").has_value());

  auto s = object("sequence", "app", "", "s",
                  {{"sql_name", "app.s"},
                   {"type", "bigint"},
                   {"increment", "1"},
                   {"min", "1"},
                   {"max", "9"},
                   {"start", "1"},
                   {"cache", "1"},
                   {"owned_by", "app.t x.c\"1"}});
  EXPECT_EQ(ddl::create_statement(s, {}),
            "CREATE SEQUENCE app.s AS bigint INCREMENT 1 MINVALUE 1 MAXVALUE 9 START 1 CACHE 1;");
  EXPECT_EQ(ddl::sequence_owned_by(s), "ALTER SEQUENCE app.s OWNED BY \"app\".\"t x\".\"c\"\"1\";");
  EXPECT_EQ(
      ddl::alter(s, s, "max").value(),
      "ALTER SEQUENCE app.s AS bigint INCREMENT BY 1 MINVALUE 1 MAXVALUE 9 START WITH 1 CACHE "
      "1 NO CYCLE;");
  s = with(s, {{"owned_by", ""}});
  EXPECT_EQ(ddl::sequence_owned_by(s), "ALTER SEQUENCE app.s OWNED BY NONE;");
}

TEST(Ddl, RoutinesTriggersPoliciesPublications) {
  const auto p = object("function", "app", "", "p()",
                        {{"sql_name", "app.p()"},
                         {"kind", "procedure"},
                         {"definition", "CREATE OR REPLACE PROCEDURE app.p() ... ;\n"}});
  EXPECT_EQ(ddl::drop(p), "DROP PROCEDURE app.p();");
  EXPECT_EQ(ddl::alter(p, p, "definition").value(), "CREATE OR REPLACE PROCEDURE app.p() ...;");
  EXPECT_FALSE(ddl::alter(p, p, "kind").has_value());

  auto tr =
      object("trigger", "app", "t", "tr",
             {{"sql_name", "tr"},
              {"sql_table", "app.t"},
              {"definition", "CREATE TRIGGER tr AFTER INSERT ON app.t EXECUTE FUNCTION f()"}});
  EXPECT_EQ(ddl::create_statement(tr, {}),
            "CREATE TRIGGER tr AFTER INSERT ON app.t EXECUTE FUNCTION f();");
  EXPECT_EQ(ddl::drop(tr), "DROP TRIGGER tr ON app.t;");
  EXPECT_EQ(ddl::rename(tr, "Tr 2"), "ALTER TRIGGER tr ON app.t RENAME TO \"Tr 2\";");
  tr = with(tr, {{"enabled", "disabled"}});
  EXPECT_EQ(ddl::alter(tr, tr, "enabled").value(), "ALTER TABLE app.t DISABLE TRIGGER tr;");

  const auto pol = object("policy", "app", "t", "own",
                          {{"sql_name", "own"},
                           {"sql_table", "app.t"},
                           {"permissive", "true"},
                           {"command", "SELECT"},
                           {"roles", "PUBLIC"},
                           {"using", "(a = 1)"}});
  EXPECT_EQ(ddl::create_statement(pol, {}),
            "CREATE POLICY own ON app.t AS PERMISSIVE FOR SELECT TO PUBLIC USING ((a = 1));");
  EXPECT_EQ(ddl::alter(pol, pol, "using").value(),
            "ALTER POLICY own ON app.t TO PUBLIC USING ((a = 1));");
  EXPECT_FALSE(ddl::alter(pol, pol, "command").has_value());
  EXPECT_FALSE(ddl::alter(pol, pol, "with_check").has_value())
      << "a removed expression needs the policy recreated";

  const auto pub =
      object("publication", "", "", "pub",
             {{"sql_name", "pub"}, {"tables", "app.t"}, {"publish", "insert, update"}});
  EXPECT_EQ(ddl::create_statement(pub, {}),
            "CREATE PUBLICATION pub FOR TABLE app.t WITH (publish = 'insert, update');");
  EXPECT_EQ(ddl::alter(pub, pub, "publish").value(),
            "ALTER PUBLICATION pub SET (publish = 'insert, update');");
  EXPECT_EQ(ddl::drop(pub), "DROP PUBLICATION pub;");
}

TEST(Ddl, OwnersCommentsAndGrants) {
  auto t = object("table", "app", "", "t", {{"sql_name", "app.t"}, {"comment", "a\\b 'c'"}});
  EXPECT_EQ(ddl::owner(t, ""), "ALTER TABLE app.t OWNER TO CURRENT_USER;");
  EXPECT_EQ(ddl::owner(t, "odd \"role\""), "ALTER TABLE app.t OWNER TO \"odd \"\"role\"\"\";");
  EXPECT_EQ(ddl::comment(t), "COMMENT ON TABLE app.t IS E'a\\\\b ''c''';");

  const auto granted = with(t, {{"acl", "(owner)=ALL reader=SELECT,UPDATE*"}});
  EXPECT_EQ(ddl::grants(granted, t, "owner"),
            "GRANT SELECT ON TABLE app.t TO reader;\n"
            "GRANT UPDATE ON TABLE app.t TO reader WITH GRANT OPTION;");
  EXPECT_EQ(ddl::grants(t, granted, "owner"), "REVOKE ALL ON TABLE app.t FROM reader;");

  const auto def = object("default_acl", "app", "", "(migrator) on tables",
                          {{"sql_schema", "app"}, {"objects", "TABLES"}, {"acl", "reader=SELECT"}});
  EXPECT_EQ(ddl::create(def, {}, "mig"),
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"mig\" IN SCHEMA app GRANT SELECT ON TABLES TO "
            "reader;");
  EXPECT_EQ(ddl::drop(def, "mig"),
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"mig\" IN SCHEMA app REVOKE ALL ON TABLES FROM "
            "reader;");
  SchemaDescription live;
  live.objects = {def};
  EXPECT_EQ(ddl::initial_acl(t, live), "(owner)=ALL reader=SELECT");
  EXPECT_EQ(ddl::initial_acl(object("index", "app", "t", "i", {}), live), "");
}

TEST(Ddl, InitialPrivilegesFromAnEntryWithSeveralGrantees) {
  // Grantees are separated by blanks: the list splitter used to throw on a blank separator.
  EXPECT_EQ(split_top_level("(owner)=ALL r=SELECT", " "),
            (std::vector<std::string>{"(owner)=ALL", "r=SELECT"}));
  EXPECT_EQ(split_top_level("CONSTRAINT a CHECK (x) CONSTRAINT b CHECK (y)", " CONSTRAINT "),
            (std::vector<std::string>{"CONSTRAINT a CHECK (x)", "CONSTRAINT b CHECK (y)"}));
  EXPECT_EQ(split_top_level("x int, y numeric(3, 1), z text", ","),
            (std::vector<std::string>{"x int", "y numeric(3, 1)", "z text"}));
  SchemaDescription live;
  live.objects = {object("default_acl", "", "", "(migrator) on functions",
                         {{"objects", "FUNCTIONS"}, {"acl", "(owner)=ALL r=EXECUTE"}})};
  const auto f = object("function", "app", "", "f()", {{"sql_name", "app.f()"}});
  EXPECT_EQ(ddl::initial_acl(f, live), "(owner)=ALL r=EXECUTE");
}

TEST(Ddl, UnknownKindsSayTheyHaveNoStatement) {
  const auto x = object("gadget", "app", "", "g", {{"sql_name", "app.g"}});
  EXPECT_EQ(ddl::create_statement(x, {}), "-- no statement known for a gadget");
  EXPECT_EQ(ddl::drop(x), "-- no statement known to drop a gadget");
  EXPECT_FALSE(ddl::alter(x, x, "anything").has_value());
}

}  // namespace
}  // namespace stepwise
