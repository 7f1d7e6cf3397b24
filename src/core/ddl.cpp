#include "stepwise/ddl.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>

namespace stepwise {

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {

std::string role_sql(const std::string& role) {
  return role.empty() ? std::string("CURRENT_USER") : quote_identifier(role);
}

// The words naming an object in ALTER / COMMENT ON.
std::string sql_kind(const SchemaObject& o) {
  if (o.kind == "view") return o.attr("materialized") == "true" ? "MATERIALIZED VIEW" : "VIEW";
  if (o.kind == "type") return o.attr("type") == "domain" ? "DOMAIN" : "TYPE";
  if (o.kind == "function") {
    const auto k = o.attr("kind");
    return k == "procedure" ? "PROCEDURE" : k == "aggregate" ? "AGGREGATE" : "FUNCTION";
  }
  if (o.kind == "event_trigger") return "EVENT TRIGGER";
  std::string k = o.kind;
  for (auto& c : k) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return k;
}

// The object in GRANT / REVOKE: "TABLE app.t", "FUNCTION app.f(integer)", ...
std::string grant_target(const SchemaObject& o) {
  if (o.kind == "table" || o.kind == "view") return "TABLE " + o.attr("sql_name");
  if (o.kind == "column") return "TABLE " + o.attr("sql_table");
  return sql_kind(o) + " " + o.attr("sql_name");
}

// The privileges an object has when none were granted or revoked.
std::map<std::string, std::string> default_acl(const SchemaObject& o) {
  if (o.kind == "column") return {};
  std::map<std::string, std::string> m{{"(owner)", "ALL"}};
  if (o.kind == "function") m["PUBLIC"] = "EXECUTE";
  if (o.kind == "type") m["PUBLIC"] = "USAGE";
  return m;
}

// "grantee=PRIV,PRIV* grantee=..." (grantees may be quoted, with spaces) -> grantee -> privs.
std::map<std::string, std::string> parse_acl(const std::string& s) {
  std::map<std::string, std::string> m;
  if (s == "(none)") return m;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size()) break;
    std::string grantee;
    bool quoted = false;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') quoted = !quoted;
      if (c == '=' && !quoted) break;
      grantee += c;
      ++i;
    }
    ++i;  // '='
    std::string privs;
    while (i < s.size() && s[i] != ' ') privs += s[i++];
    m[grantee] = privs;
  }
  return m;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// GRANT statements for one grantee's privileges "SELECT,UPDATE*" (or "ALL").
std::string grant_sql(const std::string& target, const std::string& column,
                      const std::string& grantee, const std::string& privs) {
  std::vector<std::string> plain, grantable;
  for (auto p : split(privs, ',')) {
    if (p.ends_with('*')) {
      p.pop_back();
      grantable.push_back(p + column);
    } else {
      plain.push_back(p + column);
    }
  }
  std::string out;
  if (!plain.empty())
    out += fmt::format("GRANT {} ON {} TO {};\n", fmt::join(plain, ", "), target, grantee);
  if (!grantable.empty())
    out += fmt::format("GRANT {} ON {} TO {} WITH GRANT OPTION;\n", fmt::join(grantable, ", "),
                       target, grantee);
  return out;
}

std::string strip_trailing(std::string s) {
  while (!s.empty() && (s.back() == ';' || s.back() == ' ' || s.back() == '\n')) s.pop_back();
  return s;
}

}  // namespace

std::string acl_fix_sql(const SchemaObject& e, const SchemaObject& a, const std::string& role) {
  const auto want = e.attr("acl").empty() ? default_acl(e) : parse_acl(e.attr("acl"));
  const auto have = a.attr("acl").empty() ? default_acl(a) : parse_acl(a.attr("acl"));
  const auto target = grant_target(e);
  const std::string column = e.kind == "column" ? " (" + e.attr("sql_name") + ")" : "";
  const auto owner = e.attr("sql_owner").empty() ? role_sql(role) : e.attr("sql_owner");
  std::set<std::string> grantees;
  for (const auto& [g, p] : want) grantees.insert(g);
  for (const auto& [g, p] : have) grantees.insert(g);
  std::string out;
  for (const auto& g : grantees) {
    const auto w = want.find(g);
    const auto h = have.find(g);
    if (w != want.end() && h != have.end() && w->second == h->second) continue;
    const auto name = g == "(owner)" ? owner : g;
    if (h != have.end()) out += fmt::format("REVOKE ALL{} ON {} FROM {};\n", column, target, name);
    if (w != want.end()) out += grant_sql(target, column, name, w->second);
  }
  if (!out.empty()) out.pop_back();
  return out;
}

std::string comment_sql(const SchemaObject& o) {
  std::string text = "NULL";
  if (!o.attr("comment").empty()) {
    // A literal whatever standard_conforming_strings says: E'...' when it holds a backslash.
    const auto& c = o.attr("comment");
    const bool backslash = c.find('\\') != std::string::npos;
    text = backslash ? "E'" : "'";
    for (char ch : c) {
      if (ch == '\'' || (backslash && ch == '\\')) text += ch;
      text += ch;
    }
    text += "'";
  }
  std::string what;
  if (o.kind == "column")
    what = "COLUMN " + o.attr("sql_table") + "." + o.attr("sql_name");
  else if (o.kind == "constraint" || o.kind == "trigger" || o.kind == "policy" || o.kind == "rule")
    what = sql_kind(o) + " " + o.attr("sql_name") + " ON " + o.attr("sql_table");
  else
    what = sql_kind(o) + " " + o.attr("sql_name");
  return fmt::format("COMMENT ON {} IS {};", what, text);
}

std::string owner_sql(const SchemaObject& o, const std::string& role) {
  const auto owner = o.attr("sql_owner").empty() ? role_sql(role) : o.attr("sql_owner");
  const auto kind = o.kind == "table" ? std::string("TABLE") : sql_kind(o);
  return fmt::format("ALTER {} {} OWNER TO {};", kind, o.attr("sql_name"), owner);
}

std::string column_sql(const SchemaObject& c) {
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
// A column's settings that CREATE TABLE / ADD COLUMN cannot say.
std::string column_settings_sql(const SchemaObject& c) {
  std::string out;
  const auto alter =
      fmt::format("ALTER TABLE {} ALTER COLUMN {}", c.attr("sql_table"), c.attr("sql_name"));
  if (!c.attr("statistics").empty())
    out += fmt::format("\n{} SET STATISTICS {};", alter, c.attr("statistics"));
  if (!c.attr("storage").empty())
    out += fmt::format("\n{} SET STORAGE {};", alter, c.attr("storage"));
  if (!c.attr("comment").empty()) out += "\n" + comment_sql(c);
  if (!c.attr("acl").empty()) {
    SchemaObject none = c;
    none.attrs.erase("acl");
    const auto grants = acl_fix_sql(c, none, "");
    if (!grants.empty()) out += "\n" + grants;
  }
  return out;
}
}  // namespace

std::string decorations_sql(const SchemaObject& o, const SchemaDescription& d,
                            const std::string& role, const std::string& initial_acl) {
  std::string out;
  static const std::set<std::string> owned{"schema",        "table",      "view",      "sequence",
                                           "function",      "type",       "collation", "statistics",
                                           "event_trigger", "publication"};
  const bool owned_sequence = o.kind == "sequence" && !o.attr("owned_by").empty();
  if (owned.count(o.kind) && !o.attr("sql_owner").empty() && !owned_sequence)
    out += "\n" + owner_sql(o, role);
  if (!o.attr("comment").empty()) out += "\n" + comment_sql(o);
  if ((!o.attr("acl").empty() || !initial_acl.empty()) && o.kind != "default_acl" &&
      o.kind != "column") {
    SchemaObject none = o;
    none.attrs.erase("acl");
    if (!initial_acl.empty()) none.attrs["acl"] = initial_acl;
    const auto grants = acl_fix_sql(o, none, role);
    if (!grants.empty()) out += "\n" + grants;
  }
  if (o.kind == "table") {
    const auto ri = o.attr("replica_identity");
    if (!ri.empty())
      out += fmt::format("\nALTER TABLE {} REPLICA IDENTITY {};", o.attr("sql_name"),
                         ri.starts_with("index ") ? "USING INDEX " + ri.substr(6)
                                                  : (ri == "full" ? "FULL" : "NOTHING"));
    for (const auto& c : d.objects)
      if (c.kind == "column" && c.schema == o.schema && c.table == o.name)
        out += column_settings_sql(c);
  }
  if (o.kind == "column") out += column_settings_sql(o);
  if (o.kind == "index" && o.attr("clustered") == "true")
    out += fmt::format("\nALTER TABLE {} CLUSTER ON {};", o.attr("sql_table"),
                       o.attr("sql_name").substr(o.attr("sql_name").find('.') + 1));
  if (o.kind == "index" && o.attr("valid") == "false")
    out += "\n-- the expected index is INVALID (an interrupted CREATE INDEX CONCURRENTLY)";
  return out;
}

std::string bare_create_sql(const SchemaObject& o, const SchemaDescription& d) {
  if (o.kind == "extension")
    return fmt::format("CREATE EXTENSION IF NOT EXISTS {} SCHEMA {} VERSION '{}';",
                       o.attr("sql_name"), o.attr("sql_schema"), o.attr("version"));
  if (o.kind == "schema") return fmt::format("CREATE SCHEMA {};", o.attr("sql_name"));
  if (o.kind == "collation") {
    std::vector<std::string> opts{"provider = " + o.attr("provider")};
    const auto lit = [](const std::string& v) {
      std::string out = "'";
      for (char c : v) out += c == '\'' ? std::string("''") : std::string(1, c);
      return out + "'";
    };
    if (!o.attr("locale").empty()) opts.push_back("locale = " + lit(o.attr("locale")));
    if (o.attr("locale").empty() || o.attr("provider") == "libc") {
      if (!o.attr("lc_collate").empty() && o.attr("locale").empty())
        opts.push_back("lc_collate = " + lit(o.attr("lc_collate")));
      if (!o.attr("lc_ctype").empty() && o.attr("locale").empty())
        opts.push_back("lc_ctype = " + lit(o.attr("lc_ctype")));
    }
    if (!o.attr("icu_rules").empty()) opts.push_back("rules = " + lit(o.attr("icu_rules")));
    if (o.attr("deterministic") == "false") opts.push_back("deterministic = false");
    return fmt::format("CREATE COLLATION {} ({});", o.attr("sql_name"), fmt::join(opts, ", "));
  }
  if (o.kind == "type") {
    if (o.attr("type") == "enum")
      return fmt::format("CREATE TYPE {} AS ENUM ({});", o.attr("sql_name"), o.attr("labels"));
    if (o.attr("type") == "domain")
      return fmt::format("CREATE DOMAIN {} AS {}{}{}{};", o.attr("sql_name"), o.attr("base_type"),
                         o.attr("default").empty() ? "" : " DEFAULT " + o.attr("default"),
                         o.attr("not_null") == "true" ? " NOT NULL" : "",
                         o.attr("constraints").empty() ? "" : " " + o.attr("constraints"));
    return fmt::format("CREATE TYPE {} AS ({});", o.attr("sql_name"), o.attr("attributes"));
  }
  if (o.kind == "sequence") {
    auto s = fmt::format(
        "CREATE SEQUENCE {} AS {} INCREMENT {} MINVALUE {} MAXVALUE {} START {} CACHE {}{};",
        o.attr("sql_name"), o.attr("type"), o.attr("increment"), o.attr("min"), o.attr("max"),
        o.attr("start"), o.attr("cache"), o.attr("cycle") == "true" ? " CYCLE" : "");
    return s;
  }
  if (o.kind == "table") {
    std::vector<const SchemaObject*> columns;
    for (const auto& c : d.objects)
      if (c.kind == "column" && c.schema == o.schema && c.table == o.name) columns.push_back(&c);
    std::stable_sort(
        columns.begin(), columns.end(), [](const SchemaObject* a, const SchemaObject* b) {
          return std::atoi(a->attr("position").c_str()) < std::atoi(b->attr("position").c_str());
        });
    std::vector<std::string> cols;
    for (const auto* c : columns) cols.push_back("  " + column_sql(*c));
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
  if (o.kind == "column")
    return fmt::format("ALTER TABLE {} ADD COLUMN {};", o.attr("sql_table"), column_sql(o));
  if (o.kind == "constraint")
    return fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {};", o.attr("sql_table"),
                       o.attr("sql_name"), o.attr("definition"));
  if (o.kind == "index") {
    // An index of a partitioned table, created on it alone (ON ONLY), would stay invalid until
    // each partition's index is attached: created on the whole tree instead.
    auto def = strip_trailing(o.attr("definition"));
    const auto only = def.find(" ON ONLY ");
    if (only != std::string::npos) def.replace(only, 9, " ON ");
    return def + ";";
  }
  if (o.kind == "trigger" || o.kind == "statistics")
    return strip_trailing(o.attr("definition")) + ";";
  if (o.kind == "rule") return strip_trailing(o.attr("definition")) + ";";
  if (o.kind == "view") {
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
          for (auto& ch : c) ch = static_cast<char>(std::toupper(ch));
          return c;
        }() + " CHECK OPTION");
  }
  if (o.kind == "function")
    return o.attr("definition").empty()
               ? fmt::format("-- aggregate {}: recreate it from its migration", o.attr("sql_name"))
               : strip_trailing(o.attr("definition")) + ";";
  if (o.kind == "policy")
    return fmt::format(
        "CREATE POLICY {} ON {} AS {} FOR {} TO {}{}{};", o.attr("sql_name"), o.attr("sql_table"),
        o.attr("permissive") == "true" ? "PERMISSIVE" : "RESTRICTIVE", o.attr("command"),
        o.attr("roles"), o.attr("using").empty() ? "" : " USING (" + o.attr("using") + ")",
        o.attr("with_check").empty() ? "" : " WITH CHECK (" + o.attr("with_check") + ")");
  if (o.kind == "event_trigger") {
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
  if (o.kind == "publication") {
    std::string what;
    if (o.attr("all_tables") == "true")
      what = " FOR ALL TABLES";
    else if (!o.attr("tables").empty())
      what = " FOR TABLE " + o.attr("tables");
    return fmt::format("CREATE PUBLICATION {}{} WITH (publish = '{}'{});", o.attr("sql_name"), what,
                       o.attr("publish"),
                       o.attr("via_root") == "true" ? ", publish_via_partition_root = true" : "");
  }
  if (o.kind == "default_acl") return "";  // the grants are the object (decorations)
  return fmt::format("-- no statement known for a {}", o.kind);
}

// ALTER DEFAULT PRIVILEGES statements turning `have` into `want`.
std::string default_acl_fix_sql(const SchemaObject& e, const SchemaObject* a,
                                const std::string& role) {
  const auto who = e.attr("sql_role").empty() ? role_sql(role) : e.attr("sql_role");
  const auto prefix = fmt::format("ALTER DEFAULT PRIVILEGES FOR ROLE {}{}", who,
                                  e.schema.empty() ? "" : " IN SCHEMA " + e.attr("sql_schema"));
  const auto objects = e.attr("objects");
  std::map<std::string, std::string> global_default{{"(owner)", "ALL"}};
  if (objects == "FUNCTIONS") global_default["PUBLIC"] = "EXECUTE";
  if (objects == "TYPES") global_default["PUBLIC"] = "USAGE";
  const auto base = e.schema.empty() ? global_default : std::map<std::string, std::string>{};
  const auto want = parse_acl(e.attr("acl"));
  const auto have = a == nullptr ? base : parse_acl(a->attr("acl"));
  std::set<std::string> grantees;
  for (const auto& [g, p] : want) grantees.insert(g);
  for (const auto& [g, p] : have) grantees.insert(g);
  std::string out;
  for (const auto& g : grantees) {
    const auto w = want.find(g);
    const auto h = have.find(g);
    if (w != want.end() && h != have.end() && w->second == h->second) continue;
    const auto name = g == "(owner)" ? who : g;
    if (h != have.end())
      out += fmt::format("{} REVOKE ALL ON {} FROM {};\n", prefix, objects, name);
    if (w != want.end())
      for (const auto& line : split(grant_sql(objects, "", name, w->second), '\n'))
        out += prefix + " " + line + "\n";
  }
  if (!out.empty()) out.pop_back();
  return out;
}

std::string create_sql(const SchemaObject& o, const SchemaDescription& d, const std::string& role,
                       const std::string& initial_acl) {
  if (o.kind == "default_acl") return default_acl_fix_sql(o, nullptr, role);
  return bare_create_sql(o, d) + decorations_sql(o, d, role, initial_acl);
}

std::string drop_sql(const SchemaObject& o) {
  const auto& n = o.attr("sql_name");
  if (o.kind == "extension") return fmt::format("DROP EXTENSION {};", n);
  if (o.kind == "schema") return fmt::format("DROP SCHEMA {};", n);
  if (o.kind == "type" || o.kind == "function" || o.kind == "view" || o.kind == "collation" ||
      o.kind == "statistics" || o.kind == "event_trigger" || o.kind == "publication")
    return fmt::format("DROP {} {};", sql_kind(o), n);
  if (o.kind == "sequence") return fmt::format("DROP SEQUENCE {};", n);
  if (o.kind == "table") return fmt::format("DROP TABLE {};", n);
  if (o.kind == "column")
    return fmt::format("ALTER TABLE {} DROP COLUMN {};", o.attr("sql_table"), n);
  if (o.kind == "constraint")
    return fmt::format("ALTER TABLE {} DROP CONSTRAINT {};", o.attr("sql_table"), n);
  if (o.kind == "index") return fmt::format("DROP INDEX {};", n);
  if (o.kind == "trigger" || o.kind == "policy" || o.kind == "rule")
    return fmt::format("DROP {} {} ON {};", sql_kind(o), n, o.attr("sql_table"));
  if (o.kind == "default_acl") {
    SchemaObject none = o;
    none.attrs["acl"] = o.schema.empty() ? "(owner)=ALL" : "(none)";
    if (o.schema.empty() && o.attr("objects") == "FUNCTIONS")
      none.attrs["acl"] = "(owner)=ALL PUBLIC=EXECUTE";
    if (o.schema.empty() && o.attr("objects") == "TYPES")
      none.attrs["acl"] = "(owner)=ALL PUBLIC=USAGE";
    return default_acl_fix_sql(none, &o, "");
  }
  return fmt::format("-- no statement known to drop a {}", o.kind);
}

}  // namespace stepwise
