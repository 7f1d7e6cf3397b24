// The differ and the fix script generator without a database: ignore kinds, renames, ACL fixes,
// hazards and the shape of the single fix script.
#include <gtest/gtest.h>

#include "schema_objects.hpp"
#include "stepwise/drift.hpp"
#include "stepwise/fix_script.hpp"

namespace stepwise {
namespace {

using test::object;

SchemaDescription description(std::vector<SchemaObject> objects) {
  SchemaDescription d;
  d.objects = std::move(objects);
  canonicalize(d);
  return d;
}

SchemaObject function_with_acl(const std::string& acl) {
  std::map<std::string, std::string> attrs{{"sql_name", "app.f()"}, {"kind", "function"}};
  if (!acl.empty()) attrs["acl"] = acl;
  return object("function", "app", "", "f()", attrs);
}

TEST(FixScript, GrantToPublicOnAFunctionIsDriftFixedByRevoke) {
  const auto e = description({function_with_acl("(owner)=EXECUTE")});
  const auto a = description({function_with_acl("(owner)=EXECUTE PUBLIC=EXECUTE")});
  const auto items = diff_schemas(e, a);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].change, "changed");
  EXPECT_EQ(items[0].field, "acl");
  EXPECT_EQ(items[0].fix, "REVOKE ALL ON FUNCTION app.f() FROM PUBLIC;");
  // Ignored as a property group.
  EXPECT_TRUE(diff_schemas(e, a, DiffOptions{{"kind:grant"}}).empty());
}

TEST(FixScript, IgnoreMatchesExtensionsBySchemaDotNameAndByKind) {
  const auto ext = object("extension", "public", "", "pg_stat_statements",
                          {{"sql_name", "pg_stat_statements"}, {"version", "1.10"}});
  const auto e = description({});
  const auto a = description({ext});
  ASSERT_EQ(diff_schemas(e, a).size(), 1u);
  EXPECT_TRUE(diff_schemas(e, a, DiffOptions{{"public.pg_stat_statements"}}).empty());
  EXPECT_TRUE(diff_schemas(e, a, DiffOptions{{"kind:extension"}}).empty());
  EXPECT_EQ(diff_schemas(e, a, DiffOptions{{"kind:index"}}).size(), 1u);
}

TEST(FixScript, SameColumnUnderAnotherNameIsARename) {
  const auto col = [](const std::string& name) {
    return object("column", "app", "t", name,
                  {{"sql_name", name}, {"sql_table", "app.t"}, {"type", "text"}});
  };
  const auto items = diff_schemas(description({col("secret")}), description({col("token")}));
  ASSERT_EQ(items.size(), 1u) << items[0].fix;
  EXPECT_EQ(items[0].change, "renamed");
  EXPECT_EQ(items[0].fix, "ALTER TABLE app.t RENAME COLUMN token TO \"secret\";");
}

TEST(FixScript, AFieldChangesInPlaceWhereTheKindCanElseTheObjectIsRecreated) {
  const auto policy = [](const std::string& command, const std::string& using_) {
    return object("policy", "app", "t", "own",
                  {{"sql_name", "own"},
                   {"sql_table", "app.t"},
                   {"permissive", "true"},
                   {"command", command},
                   {"roles", "PUBLIC"},
                   {"using", using_}});
  };
  auto items = diff_schemas(description({policy("SELECT", "(a = 1)")}),
                            description({policy("SELECT", "(a = 2)")}));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].field, "using");
  EXPECT_EQ(items[0].fix, "ALTER POLICY own ON app.t TO PUBLIC USING ((a = 1));");
  items = diff_schemas(description({policy("SELECT", "(a = 1)")}),
                       description({policy("ALL", "(a = 2)")}));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].field, "command");
  EXPECT_EQ(items[0].fix,
            "DROP POLICY own ON app.t;\n"
            "CREATE POLICY own ON app.t AS PERMISSIVE FOR SELECT TO PUBLIC USING ((a = 1));");
}

TEST(FixScript, OneTransactionWithEnumLabelsFirstAndHazards) {
  DriftItem add;
  add.kind = "type";
  add.object = "app.mood";
  add.change = "changed";
  add.fix = "ALTER TYPE app.mood ADD VALUE 'angry' AFTER 'happy';";
  DriftItem drop;
  drop.kind = "column";
  drop.object = "app.t.note";
  drop.change = "unexpected";
  drop.fix = "ALTER TABLE app.t DROP COLUMN note;";
  const auto script = fix_script({add, drop});
  const auto label = script.find("ADD VALUE");
  const auto begin = script.find("BEGIN;");
  const auto column = script.find("DROP COLUMN note");
  const auto commit = script.find("COMMIT;");
  ASSERT_NE(label, std::string::npos) << script;
  EXPECT_LT(label, begin) << script;
  EXPECT_LT(begin, column) << script;
  EXPECT_LT(column, commit) << script;
  EXPECT_NE(script.find("-- hazard: loses data: drops a column"), std::string::npos) << script;
  EXPECT_TRUE(statement_hazards("COMMENT ON TABLE app.t IS 'x';").empty());
  EXPECT_FALSE(
      statement_hazards("ALTER TABLE app.t ALTER COLUMN c TYPE int USING c::int;").empty());
}

TEST(FixScript, FunctionBodiesAreNotSplitIntoStatements) {
  const auto fix = std::string(
      "CREATE OR REPLACE FUNCTION app.f()\n RETURNS trigger\nAS $function$\nBEGIN\n  ALTER TABLE "
      "x DROP COLUMN y;\n  RETURN NEW;\nEND\n$function$;");
  EXPECT_TRUE(fix_hazards(fix).empty()) << "a statement inside a body is not the fix's";
  DriftItem d;
  d.kind = "function";
  d.object = "app.f()";
  d.change = "changed";
  d.fix = fix;
  EXPECT_NE(fix_script({d}).find(fix + "\n"), std::string::npos);
}

}  // namespace
}  // namespace stepwise
