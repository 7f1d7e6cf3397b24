// The DDL module's relations: tables, columns, constraints, indexes and views (CREATE and the
// in-place ALTERs).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "ddl_parts.hpp"
#include "stepwise/ddl.hpp"
#include "stepwise/text.hpp"

namespace stepwise::ddl {

using namespace detail;  // NOLINT(google-build-using-namespace): the module's own parts

std::string column_definition(const SchemaObject& c) {
  std::string s = fmt::format("{} {}", c.attr("sql_name"), c.attr("type"));
  if (!c.attr("collation").empty()) s += " COLLATE " + c.attr("collation");
  if (!c.attr("compression").empty()) s += " COMPRESSION " + c.attr("compression");
  if (!c.attr("identity").empty()) {
    s += fmt::format(" GENERATED {} AS IDENTITY",
                     c.attr("identity") == "always" ? "ALWAYS" : "BY DEFAULT");
    if (!c.attr("identity_options").empty()) s += " (" + c.attr("identity_options") + ")";
  }
  if (!c.attr("generated").empty())
    s += fmt::format(" GENERATED ALWAYS AS ({}) STORED", c.attr("generated"));
  if (!c.attr("default").empty()) s += " DEFAULT " + c.attr("default");
  if (c.attr("not_null") == "true") s += " NOT NULL";
  return s;
}

namespace {

// The storage of a type when none is set (PostgreSQL 15 has no SET STORAGE DEFAULT).
std::string default_storage(const std::string& type) {
  static const std::set<std::string> fixed{"integer",
                                           "bigint",
                                           "smallint",
                                           "boolean",
                                           "real",
                                           "double precision",
                                           "date",
                                           "timestamp with time zone",
                                           "timestamp without time zone",
                                           "uuid",
                                           "time without time zone",
                                           "interval",
                                           "money",
                                           "oid"};
  return fixed.count(type) ? "PLAIN" : "EXTENDED";
}

// "START WITH 1 INCREMENT BY 1 ... CYCLE" -> " SET START WITH 1 SET INCREMENT BY 1 ... SET CYCLE".
std::string identity_options_clause(std::string opts) {
  const auto start = opts.find("START WITH");
  opts = start == std::string::npos ? opts : opts.substr(start);
  std::string clause;
  for (const char* kw : {"START WITH", "INCREMENT BY", "MINVALUE", "MAXVALUE", "CACHE"}) {
    const auto p = opts.find(kw);
    if (p == std::string::npos) continue;
    const auto v0 = p + std::string_view(kw).size() + 1;
    const auto v1 = opts.find(' ', v0);
    clause +=
        fmt::format(" SET {} {}", kw, opts.substr(v0, v1 == std::string::npos ? v1 : v1 - v0));
  }
  clause += opts.ends_with(" CYCLE") ? " SET CYCLE" : " SET NO CYCLE";
  return clause;
}

}  // namespace

namespace detail {

std::string column_settings(const SchemaObject& c) {
  std::string out;
  const auto alter =
      fmt::format("ALTER TABLE {} ALTER COLUMN {}", c.attr("sql_table"), c.attr("sql_name"));
  if (!c.attr("statistics").empty())
    out += fmt::format("\n{} SET STATISTICS {};", alter, c.attr("statistics"));
  if (!c.attr("storage").empty())
    out += fmt::format("\n{} SET STORAGE {};", alter, c.attr("storage"));
  if (!c.attr("comment").empty()) out += "\n" + comment(c);
  if (!c.attr("acl").empty()) {
    const auto text = grants_from(c, "", "");
    if (!text.empty()) out += "\n" + text;
  }
  return out;
}

// --- table

std::string create_table(const SchemaObject& o, const SchemaDescription& d) {
  std::vector<const SchemaObject*> columns;
  for (const auto& c : d.objects)
    if (c.kind == "column" && c.schema == o.schema && c.table == o.name) columns.push_back(&c);
  std::stable_sort(
      columns.begin(), columns.end(), [](const SchemaObject* a, const SchemaObject* b) {
        return std::atoi(a->attr("position").c_str()) < std::atoi(b->attr("position").c_str());
      });
  std::vector<std::string> cols;
  for (const auto* c : columns) cols.push_back("  " + column_definition(*c));
  std::string s;
  if (!o.attr("partition_of").empty())
    s = fmt::format("CREATE TABLE {} PARTITION OF {} {}", o.attr("sql_name"),
                    o.attr("partition_of"), o.attr("partition_bound"));
  else
    s = fmt::format("CREATE {}TABLE {} (\n{}\n)",
                    o.attr("persistence") == "unlogged" ? "UNLOGGED " : "", o.attr("sql_name"),
                    fmt::join(cols, ",\n"));
  if (!o.attr("inherits").empty()) s += " INHERITS (" + o.attr("inherits") + ")";
  if (!o.attr("partition_key").empty()) s += " PARTITION BY " + o.attr("partition_key");
  if (!o.attr("options").empty()) s += " WITH (" + o.attr("options") + ")";
  s += ";";
  if (o.attr("row_security") == "true")
    s += fmt::format("\nALTER TABLE {} ENABLE ROW LEVEL SECURITY;", o.attr("sql_name"));
  if (o.attr("force_row_security") == "true")
    s += fmt::format("\nALTER TABLE {} FORCE ROW LEVEL SECURITY;", o.attr("sql_name"));
  return s;
}

// Every field has a statement; what ALTER TABLE cannot do is said in a comment. The partition
// fields (partition_of, partition_bound) share one DETACH / ATTACH.
std::optional<std::string> alter_table(const SchemaObject& e, const SchemaObject& a,
                                       const Field& f) {
  const auto& t = e.attr("sql_name");
  std::string fix;
  if (f == "row_security") {
    fix = fmt::format("ALTER TABLE {} {} ROW LEVEL SECURITY;", t,
                      e.attr(f) == "true" ? "ENABLE" : "DISABLE");
  } else if (f == "force_row_security") {
    fix = fmt::format("ALTER TABLE {} {} ROW LEVEL SECURITY;", t,
                      e.attr(f) == "true" ? "FORCE" : "NO FORCE");
  } else if (f == "persistence") {
    fix = fmt::format("ALTER TABLE {} SET {};", t, e.attr(f) == "unlogged" ? "UNLOGGED" : "LOGGED");
  } else if (f == "options") {
    fix = options_fix("ALTER TABLE " + t, e.attr(f), a.attr(f));
  } else if (f == "replica_identity") {
    const auto ri = e.attr(f);
    fix = fmt::format("ALTER TABLE {} REPLICA IDENTITY {};", t,
                      ri.empty()        ? "DEFAULT"
                      : ri == "full"    ? "FULL"
                      : ri == "nothing" ? "NOTHING"
                                        : "USING INDEX " + ri.substr(6));
  } else if (f == "partition_bound" || f == "partition_of") {
    if (!a.attr("partition_of").empty())
      fix += fmt::format("ALTER TABLE {} DETACH PARTITION {};\n", a.attr("partition_of"), t);
    if (!e.attr("partition_of").empty())
      fix += fmt::format("ALTER TABLE {} ATTACH PARTITION {} {};\n", e.attr("partition_of"), t,
                         e.attr("partition_bound"));
    if (!fix.empty()) fix.pop_back();
  } else if (f == "inherits") {
    for (const auto& p : split_top_level(a.attr(f), ","))
      fix += fmt::format("ALTER TABLE {} NO INHERIT {};\n", t, p);
    for (const auto& p : split_top_level(e.attr(f), ","))
      fix += fmt::format("ALTER TABLE {} INHERIT {};\n", t, p);
    if (!fix.empty()) fix.pop_back();
  } else {
    fix = fmt::format("-- {} of {} differs: the table must be rebuilt by hand", f, t);
  }
  return fix;
}

// --- column

std::string create_column(const SchemaObject& o, const SchemaDescription&) {
  return fmt::format("ALTER TABLE {} ADD COLUMN {};", o.attr("sql_table"), column_definition(o));
}

// Every field has a statement; a generated expression cannot be altered in place: the column is
// rebuilt (its data is derived; it lands at the end of the table).
std::optional<std::string> alter_column(const SchemaObject& e, const SchemaObject& a,
                                        const Field& f) {
  const auto alter =
      fmt::format("ALTER TABLE {} ALTER COLUMN {}", e.attr("sql_table"), e.attr("sql_name"));
  if (f == "type")
    return fmt::format("{} TYPE {}{} USING {}::{};", alter, e.attr("type"),
                       e.attr("collation").empty() ? "" : " COLLATE " + e.attr("collation"),
                       e.attr("sql_name"), e.attr("type"));
  if (f == "not_null")
    return fmt::format("{} {} NOT NULL;", alter, e.attr("not_null") == "true" ? "SET" : "DROP");
  if (f == "default")
    return e.attr("default").empty() ? alter + " DROP DEFAULT;"
                                     : fmt::format("{} SET DEFAULT {};", alter, e.attr("default"));
  if (f == "identity") {
    const auto kind = e.attr("identity") == "always" ? "ALWAYS" : "BY DEFAULT";
    if (e.attr("identity").empty()) return alter + " DROP IDENTITY;";
    if (a.attr("identity").empty())
      return fmt::format(
          "{} ADD GENERATED {} AS IDENTITY{};", alter, kind,
          e.attr("identity_options").empty() ? "" : " (" + e.attr("identity_options") + ")");
    return fmt::format("{} SET GENERATED {};", alter, kind);
  }
  if (f == "identity_options") return alter + identity_options_clause(e.attr(f)) + ";";
  if (f == "collation")
    return fmt::format(
        "{} TYPE {} COLLATE {};", alter, e.attr("type"),
        e.attr("collation").empty() ? "pg_catalog.\"default\"" : e.attr("collation"));
  if (f == "statistics")
    return fmt::format("{} SET STATISTICS {};", alter,
                       e.attr("statistics").empty() ? "-1" : e.attr("statistics"));
  if (f == "storage")
    return fmt::format(
        "{} SET STORAGE {};", alter,
        e.attr("storage").empty() ? default_storage(e.attr("type")) : e.attr("storage"));
  if (f == "compression")
    return fmt::format("{} SET COMPRESSION {};", alter,
                       e.attr("compression").empty() ? "DEFAULT" : e.attr("compression"));
  return drop(e) + "\n" + create(e, {});
}

// --- constraint

std::string create_constraint(const SchemaObject& o, const SchemaDescription&) {
  return fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {};", o.attr("sql_table"),
                     o.attr("sql_name"), o.attr("definition"));
}

// A constraint added NOT VALID is validated in place; nothing else changes in place.
std::optional<std::string> alter_constraint(const SchemaObject& e, const SchemaObject&,
                                            const Field& f) {
  if (f == "not_valid" && e.attr("not_valid").empty())
    return fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {};", e.attr("sql_table"),
                       e.attr("sql_name"));
  return std::nullopt;
}

// --- index

std::string create_index(const SchemaObject& o, const SchemaDescription&) {
  // An index of a partitioned table, created on it alone (ON ONLY), would stay invalid until
  // each partition's index is attached: created on the whole tree instead.
  auto def = strip_trailing(o.attr("definition"));
  const auto only = def.find(" ON ONLY ");
  if (only != std::string::npos) def.replace(only, 9, " ON ");
  return def + ";";
}

std::optional<std::string> alter_index(const SchemaObject& e, const SchemaObject&, const Field& f) {
  if (f != "clustered") return std::nullopt;
  if (e.attr("clustered") != "true")
    return fmt::format("ALTER TABLE {} SET WITHOUT CLUSTER;", e.attr("sql_table"));
  // CLUSTER ON takes the index's bare name (sql_name is schema-qualified).
  const auto name = e.attr("sql_name").substr(e.attr("sql_name").find('.') + 1);
  return fmt::format("ALTER TABLE {} CLUSTER ON {};", e.attr("sql_table"), name);
}

// --- view

std::string create_view(const SchemaObject& o, const SchemaDescription&) {
  const auto def = strip_trailing(o.attr("definition"));
  std::string with;
  std::vector<std::string> opts, check;
  for (const auto& opt : split(o.attr("options"), ',')) {
    auto t = opt;
    while (!t.empty() && t.front() == ' ') t.erase(0, 1);
    if (t.starts_with("check_option="))
      check.push_back(t.substr(13));
    else if (!t.empty())
      opts.push_back(t);
  }
  if (!opts.empty()) with = " WITH (" + fmt::format("{}", fmt::join(opts, ", ")) + ")";
  return fmt::format(
      "CREATE {}VIEW {}{} AS {}{};", o.attr("materialized") == "true" ? "MATERIALIZED " : "",
      o.attr("sql_name"), with, def, check.empty() ? "" : "\n  WITH " + [&] {
        std::string c = check.front();
        for (auto& ch : c) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        return c;
      }() + " CHECK OPTION");
}

// Options change in place; anything else recreates the view.
std::optional<std::string> alter_view(const SchemaObject& e, const SchemaObject& a,
                                      const Field& f) {
  if (f != "options") return std::nullopt;
  return options_fix(fmt::format("ALTER {} {}", keyword(e), e.attr("sql_name")), e.attr("options"),
                     a.attr("options"));
}

}  // namespace detail

}  // namespace stepwise::ddl
