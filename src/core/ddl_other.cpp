// The DDL module's other kinds: extensions, schemas, functions, triggers, rules, extended
// statistics, policies, event triggers and publications (CREATE and the in-place ALTERs).
#include <fmt/format.h>

#include "ddl_parts.hpp"
#include "stepwise/ddl.hpp"

namespace stepwise::ddl::detail {

// --- extension: a new version in place

std::string create_extension(const SchemaObject& o, const SchemaDescription&) {
  return fmt::format("CREATE EXTENSION IF NOT EXISTS {} SCHEMA {} VERSION {};", o.attr("sql_name"),
                     o.attr("sql_schema"), literal(o.attr("version")));
}

std::optional<std::string> alter_extension(const SchemaObject& e, const SchemaObject&,
                                           const Field& f) {
  if (f != "version") return std::nullopt;
  return fmt::format("ALTER EXTENSION {} UPDATE TO {};", e.attr("sql_name"),
                     literal(e.attr("version")));
}

// --- schema

std::string create_schema(const SchemaObject& o, const SchemaDescription&) {
  return fmt::format("CREATE SCHEMA {};", o.attr("sql_name"));
}

// --- objects the catalog gives as a whole statement: triggers, rules, extended statistics

std::string create_from_definition(const SchemaObject& o, const SchemaDescription&) {
  return strip_trailing(o.attr("definition")) + ";";
}

// ALTER TABLE ... ENABLE / DISABLE TRIGGER / RULE.
std::optional<std::string> alter_trigger(const SchemaObject& e, const SchemaObject&,
                                         const Field& f) {
  if (f != "enabled") return std::nullopt;
  return fmt::format("ALTER TABLE {} {} TRIGGER {};", e.attr("sql_table"),
                     enable_word(e.attr("enabled")), e.attr("sql_name"));
}

std::optional<std::string> alter_rule(const SchemaObject& e, const SchemaObject&, const Field& f) {
  if (f != "enabled") return std::nullopt;
  return fmt::format("ALTER TABLE {} {} RULE {};", e.attr("sql_table"),
                     enable_word(e.attr("enabled")), e.attr("sql_name"));
}

std::optional<std::string> alter_statistics(const SchemaObject& e, const SchemaObject&,
                                            const Field& f) {
  if (f != "statistics") return std::nullopt;
  return fmt::format("ALTER STATISTICS {} SET STATISTICS {};", e.attr("sql_name"),
                     e.attr("statistics").empty() ? "-1" : e.attr("statistics"));
}

// --- function: its definition is a CREATE OR REPLACE

std::string create_function(const SchemaObject& o, const SchemaDescription&) {
  return o.attr("definition").empty()
             ? fmt::format("-- aggregate {}: recreate it from its migration", o.attr("sql_name"))
             : strip_trailing(o.attr("definition")) + ";";
}

std::optional<std::string> alter_function(const SchemaObject& e, const SchemaObject&,
                                          const Field& f) {
  if (f != "definition" || e.attr("definition").empty()) return std::nullopt;
  return create_function(e, {});
}

// --- policy: roles and expressions in place (an expression removed, command or permissiveness
// changed: recreated)

std::string create_policy(const SchemaObject& o, const SchemaDescription&) {
  return fmt::format(
      "CREATE POLICY {} ON {} AS {} FOR {} TO {}{}{};", o.attr("sql_name"), o.attr("sql_table"),
      o.attr("permissive") == "true" ? "PERMISSIVE" : "RESTRICTIVE", o.attr("command"),
      o.attr("roles"), o.attr("using").empty() ? "" : " USING (" + o.attr("using") + ")",
      o.attr("with_check").empty() ? "" : " WITH CHECK (" + o.attr("with_check") + ")");
}

// One statement for whichever in-place field differs.
std::optional<std::string> alter_policy(const SchemaObject& e, const SchemaObject&,
                                        const Field& f) {
  if (f == "command" || f == "permissive" ||
      ((f == "using" || f == "with_check") && e.attr(f).empty()))
    return std::nullopt;
  return fmt::format(
      "ALTER POLICY {} ON {} TO {}{}{};", e.attr("sql_name"), e.attr("sql_table"), e.attr("roles"),
      e.attr("using").empty() ? "" : " USING (" + e.attr("using") + ")",
      e.attr("with_check").empty() ? "" : " WITH CHECK (" + e.attr("with_check") + ")");
}

// --- event trigger

std::string create_event_trigger(const SchemaObject& o, const SchemaDescription&) {
  auto s = fmt::format(
      "CREATE EVENT TRIGGER {} ON {}{} EXECUTE FUNCTION {};", o.attr("sql_name"), o.attr("event"),
      o.attr("tags").empty() ? "" : " WHEN TAG IN (" + o.attr("tags") + ")", o.attr("function"));
  const auto en = o.attr("enabled");
  if (!en.empty())
    s += fmt::format("\nALTER EVENT TRIGGER {} {};", o.attr("sql_name"),
                     en == "disabled"
                         ? "DISABLE"
                         : "ENABLE " + std::string(en == "replica" ? "REPLICA" : "ALWAYS"));
  return s;
}

std::optional<std::string> alter_event_trigger(const SchemaObject& e, const SchemaObject&,
                                               const Field& f) {
  if (f != "enabled") return std::nullopt;
  return fmt::format("ALTER EVENT TRIGGER {} {};", e.attr("sql_name"),
                     enable_word(e.attr("enabled")));
}

// --- publication: its tables (unless FOR ALL TABLES) and options in place

std::string create_publication(const SchemaObject& o, const SchemaDescription&) {
  std::string what;
  if (o.attr("all_tables") == "true")
    what = " FOR ALL TABLES";
  else if (!o.attr("tables").empty())
    what = " FOR TABLE " + o.attr("tables");
  return fmt::format("CREATE PUBLICATION {}{} WITH (publish = {}{});", o.attr("sql_name"), what,
                     literal(o.attr("publish")),
                     o.attr("via_root") == "true" ? ", publish_via_partition_root = true" : "");
}

std::optional<std::string> alter_publication(const SchemaObject& e, const SchemaObject& a,
                                             const Field& f) {
  const auto& n = e.attr("sql_name");
  if (f == "tables" && e.attr("all_tables").empty() && a.attr("all_tables").empty())
    return e.attr(f).empty() ? fmt::format("ALTER PUBLICATION {} DROP TABLE {};", n, a.attr(f))
                             : fmt::format("ALTER PUBLICATION {} SET TABLE {};", n, e.attr(f));
  if (f == "publish")
    return fmt::format("ALTER PUBLICATION {} SET (publish = {});", n, literal(e.attr(f)));
  if (f == "via_root")
    return fmt::format("ALTER PUBLICATION {} SET (publish_via_partition_root = {});", n,
                       e.attr(f) == "true" ? "true" : "false");
  return std::nullopt;
}

}  // namespace stepwise::ddl::detail
