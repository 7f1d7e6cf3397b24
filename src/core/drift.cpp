#include "stepwise/drift.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace stepwise {

bool glob_match(std::string_view p, std::string_view t) {
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

namespace {

using Key = std::tuple<std::string, std::string, std::string, std::string>;
Key key_of(const SchemaObject& o) {
  return {o.kind, o.schema, o.table, o.name};
}

bool is_child_kind(std::string_view kind) {
  return kind == "column" || kind == "constraint" || kind == "index" || kind == "trigger" ||
         kind == "policy";
}

std::string drop_sql(const SchemaObject& o) {
  const auto& n = o.attr("sql_name");
  if (o.kind == "extension") return fmt::format("DROP EXTENSION {};", n);
  if (o.kind == "schema") return fmt::format("DROP SCHEMA {};", n);
  if (o.kind == "type")
    return fmt::format("DROP {} {};", o.attr("type") == "domain" ? "DOMAIN" : "TYPE", n);
  if (o.kind == "sequence") return fmt::format("DROP SEQUENCE {};", n);
  if (o.kind == "table") return fmt::format("DROP TABLE {};", n);
  if (o.kind == "column")
    return fmt::format("ALTER TABLE {} DROP COLUMN {};", o.attr("sql_table"), n);
  if (o.kind == "constraint")
    return fmt::format("ALTER TABLE {} DROP CONSTRAINT {};", o.attr("sql_table"), n);
  if (o.kind == "index") return fmt::format("DROP INDEX {};", n);
  if (o.kind == "view")
    return fmt::format("DROP {}VIEW {};", o.attr("materialized") == "true" ? "MATERIALIZED " : "",
                       n);
  if (o.kind == "function")
    return fmt::format("DROP {} {};",
                       o.attr("kind") == "procedure"   ? "PROCEDURE"
                       : o.attr("kind") == "aggregate" ? "AGGREGATE"
                                                       : "FUNCTION",
                       n);
  if (o.kind == "trigger") return fmt::format("DROP TRIGGER {} ON {};", n, o.attr("sql_table"));
  if (o.kind == "policy") return fmt::format("DROP POLICY {} ON {};", n, o.attr("sql_table"));
  return fmt::format("-- no statement known to drop a {}", o.kind);
}

// Labels "'a', 'b'" -> {a, b} (as quoted literals, compared as written).
std::vector<std::string> split_labels(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_quote = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\'') {
      if (in_quote && i + 1 < s.size() && s[i + 1] == '\'') {
        cur += "''";
        ++i;
        continue;
      }
      in_quote = !in_quote;
      cur += c;
    } else if (c == ',' && !in_quote) {
      out.push_back(cur);
      cur.clear();
    } else if (!(c == ' ' && !in_quote)) {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

class Differ {
 public:
  Differ(const SchemaDescription& e, const SchemaDescription& a, const DiffOptions& o)
      : expected_(e), actual_(a), options_(o) {
    for (const auto& k : e.unknown_kinds) unknown_.insert(k);
    for (const auto& k : a.unknown_kinds) unknown_.insert(k);
  }

  std::vector<DriftItem> run() {
    std::map<Key, const SchemaObject*> exp, act;
    for (const auto& o : expected_.objects)
      if (!skipped(o)) exp[key_of(o)] = &o;
    for (const auto& o : actual_.objects)
      if (!skipped(o)) act[key_of(o)] = &o;
    // A missing or unexpected table is one finding: its columns, constraints, indexes, triggers
    // and policies come with it.
    std::set<std::pair<std::string, std::string>> whole_tables;
    for (const auto& [k, o] : exp)
      if (o->kind == "table" && !act.count(k)) whole_tables.insert({o->schema, o->name});
    for (const auto& [k, o] : act)
      if (o->kind == "table" && !exp.count(k)) whole_tables.insert({o->schema, o->name});
    const auto covered = [&](const SchemaObject& o) {
      if (is_child_kind(o.kind)) return whole_tables.count({o.schema, o.table}) > 0;
      // A serial column's sequence comes and goes with its table.
      const auto owner = o.attr("owned_by");  // schema.table.column
      if (o.kind != "sequence" || owner.empty()) return false;
      const auto last = owner.rfind('.');
      const auto table = owner.substr(0, last);
      const auto dot = table.find('.');
      return dot != std::string::npos &&
             whole_tables.count({table.substr(0, dot), table.substr(dot + 1)}) > 0;
    };
    for (const auto& [k, o] : exp) {
      if (covered(*o)) continue;
      const auto it = act.find(k);
      if (it == act.end())
        missing(*o);
      else
        compare(*o, *it->second);
    }
    for (const auto& [k, o] : act)
      if (!exp.count(k) && !covered(*o))
        items_.push_back({o->kind, o->display(), "unexpected", "", "", summary(*o), drop_sql(*o)});
    // The order in which the fixes apply: drops first, dependents before what they depend on;
    // then creations and changes, dependencies first; a missing object before a changed one.
    std::stable_sort(items_.begin(), items_.end(), [](const DriftItem& a, const DriftItem& b) {
      const auto key = [](const DriftItem& d) {
        const int rank = kind_rank(d.kind);
        if (d.change == "unexpected") return std::pair(0, -rank);
        return std::pair(1, 2 * rank + (d.change == "missing" ? 0 : 1));
      };
      return key(a) < key(b);
    });
    return std::move(items_);
  }

 private:
  bool skipped(const SchemaObject& o) const {
    if (unknown_.count(o.kind)) return true;
    for (const auto& p : options_.ignore) {
      if (glob_match(p, o.display())) return true;
      if (!o.table.empty() && glob_match(p, o.schema + "." + o.table)) return true;
    }
    return false;
  }

  static std::string summary(const SchemaObject& o) {
    if (o.kind == "column") return o.attr("type");
    if (o.kind == "type")
      return o.attr("type") == "enum" ? "enum (" + o.attr("labels") + ")" : o.attr("type");
    if (!o.attr("definition").empty() && o.kind != "function") return o.attr("definition");
    return o.kind;
  }

  void missing(const SchemaObject& o) {
    std::string fix = create_sql(o, expected_);
    if (o.kind == "table") {
      for (const auto& c : expected_.objects)
        if (is_child_kind(c.kind) && c.kind != "column" && c.schema == o.schema &&
            c.table == o.name)
          fix += "\n" + create_sql(c, expected_);
    }
    items_.push_back({o.kind, o.display(), "missing", "", summary(o), "", fix});
  }

  void changed(const SchemaObject& e, const std::string& field, const SchemaObject& a,
               std::string fix) {
    items_.push_back(
        {e.kind, e.display(), "changed", field, e.attr(field), a.attr(field), std::move(fix)});
  }

  void compare(const SchemaObject& e, const SchemaObject& a) {
    std::set<std::string> fields;
    // sql_* are quoted names; a column's position is informative only (a column added back
    // by hand lands at the end, and the application reads columns by name).
    const auto counts = [](const std::string& k) {
      return !k.starts_with("sql_") && k != "position";
    };
    for (const auto& [k, v] : e.attrs)
      if (counts(k)) fields.insert(k);
    for (const auto& [k, v] : a.attrs)
      if (counts(k)) fields.insert(k);
    std::vector<std::string> diffs;
    for (const auto& f : fields)
      if (e.attr(f) != a.attr(f)) diffs.push_back(f);
    if (diffs.empty()) return;
    if (e.kind == "column") {
      for (const auto& f : diffs) changed(e, f, a, column_fix(e, f));
    } else if (e.kind == "index" && diffs == std::vector<std::string>{"valid"}) {
      items_.push_back({e.kind, e.display(), e.attr("valid") == "true" ? "invalid" : "changed",
                        "valid", e.attr("valid"), a.attr("valid"),
                        drop_sql(a) + "\n" + create_sql(e, expected_)});
    } else if (e.kind == "type" && e.attr("type") == "enum" &&
               diffs == std::vector<std::string>{"labels"}) {
      changed(e, "labels", a, enum_fix(e, a));
    } else if (e.kind == "table") {
      for (const auto& f : diffs) changed(e, f, a, table_fix(e, f));
    } else if (e.kind == "function") {
      changed(e, diffs.front(), a, create_sql(e, expected_));
    } else if (e.kind == "extension" && diffs == std::vector<std::string>{"version"}) {
      changed(
          e, "version", a,
          fmt::format("ALTER EXTENSION {} UPDATE TO '{}';", e.attr("sql_name"), e.attr("version")));
    } else if (e.kind == "constraint" && diffs == std::vector<std::string>{"not_valid"} &&
               e.attr("not_valid").empty()) {
      changed(e, "not_valid", a,
              fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {};", e.attr("sql_table"),
                          e.attr("sql_name")));
    } else {
      // Views, triggers, policies, constraints, sequences, other types: drop and create again.
      changed(e, diffs.front(), a, drop_sql(a) + "\n" + create_sql(e, expected_));
    }
  }

  static std::string column_fix(const SchemaObject& e, const std::string& f) {
    const auto alter =
        fmt::format("ALTER TABLE {} ALTER COLUMN {}", e.attr("sql_table"), e.attr("sql_name"));
    if (f == "type")
      return fmt::format("{} TYPE {} USING {}::{};", alter, e.attr("type"), e.attr("sql_name"),
                         e.attr("type"));
    if (f == "not_null")
      return fmt::format("{} {} NOT NULL;", alter, e.attr("not_null") == "true" ? "SET" : "DROP");
    if (f == "default")
      return e.attr("default").empty()
                 ? alter + " DROP DEFAULT;"
                 : fmt::format("{} SET DEFAULT {};", alter, e.attr("default"));
    if (f == "identity")
      return e.attr("identity").empty()
                 ? alter + " DROP IDENTITY;"
                 : fmt::format("{} ADD GENERATED {} AS IDENTITY;", alter,
                               e.attr("identity") == "always" ? "ALWAYS" : "BY DEFAULT");
    if (f == "collation")
      return fmt::format("{} TYPE {} COLLATE {};", alter, e.attr("type"),
                         e.attr("collation").empty() ? "\"default\"" : e.attr("collation"));
    // A generated expression cannot be altered in place: the column is rebuilt (its data is
    // derived).
    return fmt::format("ALTER TABLE {} DROP COLUMN {};\n{}", e.attr("sql_table"),
                       e.attr("sql_name"), create_sql(e, {}));
  }

  static std::string table_fix(const SchemaObject& e, const std::string& f) {
    const auto& t = e.attr("sql_name");
    if (f == "row_security")
      return fmt::format("ALTER TABLE {} {} ROW LEVEL SECURITY;", t,
                         e.attr(f) == "true" ? "ENABLE" : "DISABLE");
    if (f == "force_row_security")
      return fmt::format("ALTER TABLE {} {} ROW LEVEL SECURITY;", t,
                         e.attr(f) == "true" ? "FORCE" : "NO FORCE");
    if (f == "persistence")
      return fmt::format("ALTER TABLE {} SET {};", t,
                         e.attr(f) == "unlogged" ? "UNLOGGED" : "LOGGED");
    return fmt::format("-- {} of {} differs: the table must be rebuilt by hand", f, t);
  }

  // Missing labels are added in place; a label the expected type lacks can only go by
  // rebuilding the type (PostgreSQL cannot drop a label): rename, create, convert every column
  // of the type (rebuilding the views that read those tables), drop the old type.
  std::string enum_fix(const SchemaObject& e, const SchemaObject& a) const {
    const auto want = split_labels(e.attr("labels"));
    const auto have = split_labels(a.attr("labels"));
    {
      // Is `have` a subsequence of `want` in order? Then ADD VALUE each missing label.
      std::size_t j = 0;
      for (std::size_t i = 0; i < want.size() && j < have.size(); ++i)
        if (want[i] == have[j]) ++j;
      if (j == have.size()) {
        std::string fix;
        for (std::size_t i = 0; i < want.size(); ++i) {
          if (std::find(have.begin(), have.end(), want[i]) != have.end()) continue;
          fix += fmt::format("ALTER TYPE {} ADD VALUE {}{};\n", e.attr("sql_name"), want[i],
                             i + 1 < want.size() ? " BEFORE " + want[i + 1]
                                                 : (i > 0 ? " AFTER " + want[i - 1] : ""));
        }
        if (!fix.empty()) fix.pop_back();
        return fix;
      }
    }
    const auto& type = e.attr("sql_name");
    std::string old_name;  // quoted: "<name>__stepwise_old"
    for (char ch : e.name + "__stepwise_old")
      old_name += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    old_name = "\"" + old_name + "\"";
    std::vector<const SchemaObject*> columns;
    std::set<std::string> tables;
    for (const auto& c : expected_.objects) {
      const auto& t = c.attr("type");
      if (c.kind == "column" && (t == e.name || t == type || t == e.schema + "." + e.name)) {
        columns.push_back(&c);
        tables.insert(c.schema + "." + c.table);
      }
    }
    std::vector<const SchemaObject*> views;
    for (const auto& v : expected_.objects) {
      if (v.kind != "view") continue;
      const auto deps = v.attr("depends_on");
      for (const auto& t : tables)
        if (("," + deps + ",").find("," + t + ",") != std::string::npos) {
          views.push_back(&v);
          break;
        }
    }
    std::string fix = fmt::format(
        "-- rows holding a label the expected type lacks must be changed first\n"
        "ALTER TYPE {} RENAME TO {};\n{}\n",
        type, old_name, create_sql(e, expected_));
    for (const auto* v : views) fix += drop_sql(*v) + "\n";
    for (const auto* c : columns) {
      const auto alter =
          fmt::format("ALTER TABLE {} ALTER COLUMN {}", c->attr("sql_table"), c->attr("sql_name"));
      fix += fmt::format("{} DROP DEFAULT;\n{} TYPE {} USING {}::text::{};\n", alter, alter, type,
                         c->attr("sql_name"), type);
      if (!c->attr("default").empty())
        fix += fmt::format("{} SET DEFAULT {};\n", alter, c->attr("default"));
    }
    fix += fmt::format("DROP TYPE {}.{};", e.attr("sql_schema"), old_name);
    for (const auto* v : views) fix += "\n" + create_sql(*v, expected_);
    return fix;
  }

  const SchemaDescription& expected_;
  const SchemaDescription& actual_;
  const DiffOptions& options_;
  std::set<std::string> unknown_;
  std::vector<DriftItem> items_;
};

}  // namespace

std::vector<DriftItem> diff_schemas(const SchemaDescription& expected,
                                    const SchemaDescription& actual, const DiffOptions& options) {
  return Differ(expected, actual, options).run();
}

}  // namespace stepwise
