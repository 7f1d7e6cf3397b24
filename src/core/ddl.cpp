// The DDL module's core: names and literals, the kind table, and what every kind shares
// (create with its decorations, drop, rename, owner, comment, alter dispatch).
#include "stepwise/ddl.hpp"

#include <fmt/format.h>

#include <cctype>
#include <map>

#include "ddl_parts.hpp"
#include "stepwise/text.hpp"

namespace stepwise::ddl {

using namespace detail;  // NOLINT(google-build-using-namespace): the module's own parts

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quote_dotted(std::string_view name) {
  std::string out;
  std::size_t start = 0;
  while (true) {
    const auto dot = name.find('.', start);
    if (!out.empty() || start > 0) out += '.';
    out += quote_identifier(name.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

std::string literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string escaped_literal(std::string_view text) {
  const bool backslash = text.find('\\') != std::string_view::npos;
  std::string out = backslash ? "E'" : "'";
  for (char ch : text) {
    if (ch == '\'' || (backslash && ch == '\\')) out += ch;
    out += ch;
  }
  return out + "'";
}

namespace {

// Where a kind's name stands in DROP / ALTER ... RENAME / COMMENT ON.
enum class Scope {
  kTop,      // DROP INDEX n;
  kOnTable,  // DROP TRIGGER n ON t;  ALTER TRIGGER n ON t RENAME TO ...
  kInTable,  // ALTER TABLE t DROP COLUMN n;  ALTER TABLE t RENAME COLUMN n TO ...
};

using CreateFn = std::string (*)(const SchemaObject&, const SchemaDescription&);
using AlterFn = std::optional<std::string> (*)(const SchemaObject&, const SchemaObject&,
                                               const std::string&);

struct KindSql {
  std::string_view kind;
  std::string_view keyword;  // refined by attributes for view, type, function (keyword())
  Scope scope;
  bool owned;       // has an owner of its own: ALTER ... OWNER TO after creating it
  CreateFn create;  // nullptr: no statement (default_acl: its grants are the object)
  AlterFn alter;    // nullptr: nothing changes in place
};

// Every kind of kObjectKinds.
constexpr KindSql kKinds[] = {
    {"extension", "EXTENSION", Scope::kTop, false, create_extension, alter_extension},
    {"schema", "SCHEMA", Scope::kTop, true, create_schema, nullptr},
    {"collation", "COLLATION", Scope::kTop, true, create_collation, nullptr},
    {"type", "TYPE", Scope::kTop, true, create_type, alter_type},
    {"sequence", "SEQUENCE", Scope::kTop, true, create_sequence, alter_sequence},
    {"table", "TABLE", Scope::kTop, true, create_table, alter_table},
    {"column", "COLUMN", Scope::kInTable, false, create_column, alter_column},
    {"constraint", "CONSTRAINT", Scope::kInTable, false, create_constraint, alter_constraint},
    {"index", "INDEX", Scope::kTop, false, create_index, alter_index},
    {"statistics", "STATISTICS", Scope::kTop, true, create_from_definition, alter_statistics},
    {"function", "FUNCTION", Scope::kTop, true, create_function, alter_function},
    {"view", "VIEW", Scope::kTop, true, create_view, alter_view},
    {"trigger", "TRIGGER", Scope::kOnTable, false, create_from_definition, alter_trigger},
    {"rule", "RULE", Scope::kOnTable, false, create_from_definition, alter_rule},
    {"policy", "POLICY", Scope::kOnTable, false, create_policy, alter_policy},
    {"event_trigger", "EVENT TRIGGER", Scope::kTop, true, create_event_trigger,
     alter_event_trigger},
    {"publication", "PUBLICATION", Scope::kTop, true, create_publication, alter_publication},
    {"default_acl", "DEFAULT_ACL", Scope::kTop, false, nullptr, nullptr},
};

constexpr bool one_row_per_kind() {
  if (std::size(kKinds) != std::size(kObjectKinds)) return false;
  for (std::size_t i = 0; i < std::size(kKinds); ++i)
    if (kKinds[i].kind != kObjectKinds[i]) return false;
  return true;
}
static_assert(one_row_per_kind(), "kKinds: one row per kind of kObjectKinds, in its order");

const KindSql* find_kind(std::string_view kind) {
  for (const auto& k : kKinds)
    if (k.kind == kind) return &k;
  return nullptr;
}

std::string role_sql(const std::string& role) {
  return role.empty() ? std::string("CURRENT_USER") : quote_identifier(role);
}

}  // namespace

std::string keyword(const SchemaObject& o) {
  if (o.kind == "view") return o.attr("materialized") == "true" ? "MATERIALIZED VIEW" : "VIEW";
  if (o.kind == "type") return o.attr("type") == "domain" ? "DOMAIN" : "TYPE";
  if (o.kind == "function") {
    const auto k = o.attr("kind");
    return k == "procedure" ? "PROCEDURE" : k == "aggregate" ? "AGGREGATE" : "FUNCTION";
  }
  if (const auto* k = find_kind(o.kind)) return std::string(k->keyword);
  std::string k = o.kind;
  for (auto& c : k) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return k;
}

std::string create_statement(const SchemaObject& o, const SchemaDescription& d) {
  const auto* k = find_kind(o.kind);
  if (k == nullptr) return fmt::format("-- no statement known for a {}", o.kind);
  return k->create == nullptr ? std::string() : k->create(o, d);
}

std::string create(const SchemaObject& o, const SchemaDescription& d, const std::string& role,
                   const std::string& initial_acl) {
  if (o.kind == "default_acl") return default_privileges(o, nullptr, role);
  return create_statement(o, d) + decorations(o, d, role, initial_acl);
}

std::string decorations(const SchemaObject& o, const SchemaDescription& d, const std::string& role,
                        const std::string& initial_acl) {
  std::string out;
  const auto* k = find_kind(o.kind);
  const bool owned_sequence = o.kind == "sequence" && !o.attr("owned_by").empty();
  if (k != nullptr && k->owned && !o.attr("sql_owner").empty() && !owned_sequence)
    out += "\n" + owner(o, role);
  if (!o.attr("comment").empty()) out += "\n" + comment(o);
  if ((!o.attr("acl").empty() || !initial_acl.empty()) && o.kind != "default_acl" &&
      o.kind != "column") {
    const auto text = grants_from(o, initial_acl, role);
    if (!text.empty()) out += "\n" + text;
  }
  if (o.kind == "table") {
    const auto ri = o.attr("replica_identity");
    if (!ri.empty())
      out += fmt::format("\nALTER TABLE {} REPLICA IDENTITY {};", o.attr("sql_name"),
                         ri.starts_with("index ") ? "USING INDEX " + ri.substr(6)
                                                  : (ri == "full" ? "FULL" : "NOTHING"));
    for (const auto& c : d.objects)
      if (c.kind == "column" && c.schema == o.schema && c.table == o.name)
        out += column_settings(c);
  }
  if (o.kind == "column") out += column_settings(o);
  if (o.kind == "index" && o.attr("clustered") == "true")
    out += "\n" + alter(o, o, "clustered").value_or("");
  if (o.kind == "index" && o.attr("valid") == "false")
    out += "\n-- the expected index is INVALID (an interrupted CREATE INDEX CONCURRENTLY)";
  return out;
}

std::string drop(const SchemaObject& o, const std::string& role) {
  const auto& n = o.attr("sql_name");
  if (o.kind == "default_acl") {
    // Back to no entry: the global defaults, or nothing granted for a schema's entry.
    std::string none = o.schema.empty() ? "(owner)=ALL" : "(none)";
    if (o.schema.empty() && o.attr("objects") == "FUNCTIONS") none = "(owner)=ALL PUBLIC=EXECUTE";
    if (o.schema.empty() && o.attr("objects") == "TYPES") none = "(owner)=ALL PUBLIC=USAGE";
    return default_privileges_to(o, none, &o, role);
  }
  const auto* k = find_kind(o.kind);
  if (k == nullptr) return fmt::format("-- no statement known to drop a {}", o.kind);
  switch (k->scope) {
    case Scope::kInTable:
      return fmt::format("ALTER TABLE {} DROP {} {};", o.attr("sql_table"), keyword(o), n);
    case Scope::kOnTable:
      return fmt::format("DROP {} {} ON {};", keyword(o), n, o.attr("sql_table"));
    case Scope::kTop:
      break;
  }
  return fmt::format("DROP {} {};", keyword(o), n);
}

std::string rename(const SchemaObject& a, std::string_view name) {
  const auto to = quote_identifier(name);
  const auto* k = find_kind(a.kind);
  const auto scope = k == nullptr ? Scope::kTop : k->scope;
  switch (scope) {
    case Scope::kInTable:
      return fmt::format("ALTER TABLE {} RENAME {} {} TO {};", a.attr("sql_table"), keyword(a),
                         a.attr("sql_name"), to);
    case Scope::kOnTable:
      return fmt::format("ALTER {} {} ON {} RENAME TO {};", keyword(a), a.attr("sql_name"),
                         a.attr("sql_table"), to);
    case Scope::kTop:
      break;
  }
  return fmt::format("ALTER {} {} RENAME TO {};", keyword(a), a.attr("sql_name"), to);
}

std::string owner(const SchemaObject& o, const std::string& role) {
  const auto who = o.attr("sql_owner").empty() ? role_sql(role) : o.attr("sql_owner");
  return fmt::format("ALTER {} {} OWNER TO {};", keyword(o), o.attr("sql_name"), who);
}

std::string comment(const SchemaObject& o) {
  const auto text =
      o.attr("comment").empty() ? std::string("NULL") : escaped_literal(o.attr("comment"));
  const auto* k = find_kind(o.kind);
  std::string what;
  if (o.kind == "column")
    what = "COLUMN " + o.attr("sql_table") + "." + o.attr("sql_name");
  else if (k != nullptr && k->scope != Scope::kTop)
    what = keyword(o) + " " + o.attr("sql_name") + " ON " + o.attr("sql_table");
  else
    what = keyword(o) + " " + o.attr("sql_name");
  return fmt::format("COMMENT ON {} IS {};", what, text);
}

std::optional<std::string> alter(const SchemaObject& e, const SchemaObject& a,
                                 const std::string& field) {
  const auto* k = find_kind(e.kind);
  if (k == nullptr || k->alter == nullptr) return std::nullopt;
  return k->alter(e, a, field);
}

namespace detail {

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

std::string strip_trailing(std::string s) {
  while (!s.empty() && (s.back() == ';' || s.back() == ' ' || s.back() == '\n')) s.pop_back();
  return s;
}

namespace {
// "k=v, k2=v2" (reloptions) -> k -> v.
std::map<std::string, std::string> parse_options(const std::string& s) {
  std::map<std::string, std::string> m;
  std::string cur;
  const auto flush = [&] {
    while (!cur.empty() && cur.front() == ' ') cur.erase(0, 1);
    const auto eq = cur.find('=');
    if (!cur.empty()) m[cur.substr(0, eq)] = eq == std::string::npos ? "" : cur.substr(eq + 1);
    cur.clear();
  };
  for (char c : s) {
    if (c == ',')
      flush();
    else
      cur += c;
  }
  flush();
  return m;
}
}  // namespace

// RESET (...) / SET (...) turning options `have` into `want`, in `want`'s order (the catalog
// keeps them in the order set, and pg_dump prints them so).
std::string options_fix(const std::string& prefix, const std::string& want_s,
                        const std::string& have_s) {
  const auto have = parse_options(have_s);
  std::vector<std::string> reset, set;
  for (const auto& [k, v] : have) reset.push_back(k);
  for (auto opt : split_top_level(want_s, ",")) set.push_back(opt);
  std::string out;
  if (!reset.empty()) out += fmt::format("{} RESET ({});\n", prefix, fmt::join(reset, ", "));
  if (!set.empty()) out += fmt::format("{} SET ({});\n", prefix, fmt::join(set, ", "));
  if (!out.empty()) out.pop_back();
  return out;
}

std::string enable_word(const std::string& enabled) {
  return enabled == "disabled"  ? "DISABLE"
         : enabled == "replica" ? "ENABLE REPLICA"
         : enabled == "always"  ? "ENABLE ALWAYS"
                                : "ENABLE";
}

}  // namespace detail

}  // namespace stepwise::ddl
