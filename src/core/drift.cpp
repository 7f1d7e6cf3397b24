#include "stepwise/drift.hpp"

#include "stepwise/ddl.hpp"
#include "stepwise/fix_script.hpp"

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
         kind == "policy" || kind == "rule" || kind == "statistics";
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

std::vector<std::string> split_top(const std::string& s, const std::string& sep);

// RESET (...) / SET (...) turning options `have` into `want`, in `want`'s order (the catalog
// keeps them in the order set, and pg_dump prints them so).
std::string options_fix(const std::string& prefix, const std::string& want_s,
                        const std::string& have_s) {
  const auto have = parse_options(have_s);
  std::vector<std::string> reset, set;
  for (const auto& [k, v] : have) reset.push_back(k);
  for (auto opt : split_top(want_s, ",")) set.push_back(opt);
  std::string out;
  if (!reset.empty()) out += fmt::format("{} RESET ({});\n", prefix, fmt::join(reset, ", "));
  if (!set.empty()) out += fmt::format("{} SET ({});\n", prefix, fmt::join(set, ", "));
  if (!out.empty()) out.pop_back();
  return out;
}

// "a.b.c" -> "\"a\".\"b\".\"c\"".
std::string quote_dotted(const std::string& s) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : s) {
    if (c == '.') {
      parts.push_back(quote_identifier(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(quote_identifier(cur));
  return fmt::format("{}", fmt::join(parts, "."));
}

// Splits "CONSTRAINT a CHECK (...) CONSTRAINT b CHECK (...)" / "x int, y text" at top level.
std::vector<std::string> split_top(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  int depth = 0;
  bool quote = false;
  std::string cur;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\'') quote = !quote;
    if (!quote && c == '(') ++depth;
    if (!quote && c == ')') --depth;
    if (!quote && depth == 0 && s.compare(i, sep.size(), sep) == 0 && !cur.empty()) {
      out.push_back(cur);
      cur.clear();
      i += sep.size() - 1;
      if (sep.front() != ',') cur = sep.substr(sep.find_first_not_of(' '));
      continue;
    }
    cur += c;
  }
  if (!cur.empty()) out.push_back(cur);
  for (auto& x : out)
    while (!x.empty() && x.front() == ' ') x.erase(0, 1);
  return out;
}

// The property groups --ignore kind:K can hide, and the attributes they hold.
bool in_group(const std::string& group, const std::string& attr) {
  if (group == "owner") return attr == "owner";
  if (group == "grant") return attr == "acl";
  if (group == "comment") return attr == "comment";
  return false;
}

DriftItem make_item(std::string kind, std::string object, std::string change, std::string field,
                    std::string expected, std::string actual, std::string fix) {
  DriftItem d;
  d.kind = std::move(kind);
  d.object = std::move(object);
  d.change = std::move(change);
  d.field = std::move(field);
  d.expected = std::move(expected);
  d.actual = std::move(actual);
  d.fix = std::move(fix);
  return d;
}

class Differ {
 public:
  Differ(const SchemaDescription& e, const SchemaDescription& a, const DiffOptions& o)
      : expected_(e), actual_(a), options_(o), role_(a.reference_role) {
    for (const auto& k : e.unknown_kinds) unknown_.insert(k);
    for (const auto& k : a.unknown_kinds) unknown_.insert(k);
    for (const auto& p : o.ignore)
      if (p.starts_with("kind:")) ignored_kinds_.insert(p.substr(5));
    for (const auto* d : {&e, &a})
      for (const auto& v : d->objects)
        if (v.kind == "view") {
          const auto name = v.schema + "." + v.name;
          for (const auto& dep : split_top(v.attr("depends_on"), ","))
            if (dep != name) view_deps_[name].insert(dep);
          views_[name] = d == &e ? &v : views_.count(name) ? views_[name] : &v;
          if (d == &a) actual_views_[name] = &v;
        }
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
    // A missing or unexpected materialized view comes with its indexes.
    for (const auto& [k, o] : exp)
      if (o->kind == "view" && !act.count(k)) whole_tables.insert({o->schema, o->name});
    for (const auto& [k, o] : act)
      if (o->kind == "view" && !exp.count(k)) whole_tables.insert({o->schema, o->name});
    // A partition detached by hand: ATTACH PARTITION takes its columns, keys and indexes back
    // as the parent's.
    for (const auto& [k, o] : exp) {
      const auto it = act.find(k);
      if (o->kind == "table" && it != act.end() && !o->attr("partition_of").empty() &&
          it->second->attr("partition_of").empty())
        whole_tables.insert({o->schema, o->name});
    }
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
    // Renames: a missing and an unexpected object of the same kind and parent with the same
    // definition (all but the name) is one object renamed by hand.
    std::set<Key> renamed_exp, renamed_act;
    for (const auto& [k, e] : exp) {
      if (act.count(k) || covered(*e) || !renamable(e->kind)) continue;
      const SchemaObject* match = nullptr;
      int matches = 0;
      for (const auto& [ka, a] : act) {
        if (exp.count(ka) || renamed_act.count(ka) || a->kind != e->kind ||
            a->schema != e->schema || a->table != e->table || covered(*a))
          continue;
        if (signature(*e) == signature(*a)) {
          match = a;
          ++matches;
        }
      }
      if (matches != 1) continue;
      renamed_exp.insert(k);
      renamed_act.insert(key_of(*match));
      DriftItem d = make_item(e->kind, e->display(), "renamed", "", e->name, match->name,
                              rename_sql(*e, *match));
      items_.push_back(std::move(d));
    }
    for (const auto& [k, o] : exp) {
      if (covered(*o) || renamed_exp.count(k)) continue;
      const auto it = act.find(k);
      if (it == act.end())
        missing(*o);
      else
        compare(*o, *it->second);
    }
    for (const auto& [k, o] : act)
      if (!exp.count(k) && !covered(*o) && !renamed_act.count(k))
        items_.push_back(
            make_item(o->kind, o->display(), "unexpected", "", "", summary(*o),
                      (o->kind == "default_acl" ? drop_default_acl(*o) : drop_sql(*o))));
    // The order in which the fixes apply: drops first, dependents before what they depend on;
    // then creations and changes, dependencies first; a missing object before a changed one;
    // primary keys and unique constraints before foreign keys; views after the views they read.
    std::stable_sort(items_.begin(), items_.end(), [&](const DriftItem& a, const DriftItem& b) {
      return order_key(a) < order_key(b);
    });
    for (auto& d : items_) {
      if (d.script_fix.empty()) d.script_fix = d.fix;
      // A view recreated around another fix gets its expected options, grants and comments
      // from that recreation.
      if (d.kind == "view" && d.change == "changed" && d.drop_first.empty() &&
          recreated_.count(d.object))
        d.script_fix = "-- " + d.object + " is recreated with its dependents (below)";
      std::string full;
      for (const auto& st : d.drop_first) full += st + "\n";
      full += d.script_fix;
      for (const auto& st : d.create_last) full += "\n" + st;
      d.fix = full;
      d.hazards = fix_hazards(d.fix);
    }
    return std::move(items_);
  }

 private:
  std::tuple<int, int, int> order_key(const DriftItem& d) const {
    const int rank = kind_rank(d.kind);
    int sub = 0;
    if (d.kind == "constraint") sub = d.fix.find("FOREIGN KEY") != std::string::npos ? 1 : 0;
    if (d.kind == "view") sub = view_depth(d.object);
    if (d.field == "owner") sub = -2;  // a new owner inherits the old one's privileges
    if (d.field == "acl") sub = -1;
    if (d.change == "unexpected") return {0, -rank, -sub};
    return {1, 2 * rank + (d.change == "missing" ? 0 : 1), sub};
  }

  int view_depth(const std::string& name, int guard = 0) const {
    const auto it = view_deps_.find(name);
    if (it == view_deps_.end() || guard > 50) return 0;
    int depth = 0;
    for (const auto& dep : it->second)
      if (views_.count(dep)) depth = std::max(depth, 1 + view_depth(dep, guard + 1));
    return depth;
  }

  // Views reading `relation` (schema.name) in the live schema, transitively, deepest first.
  std::vector<const SchemaObject*> dependent_views(const std::string& relation) const {
    std::vector<std::string> found;
    std::vector<std::string> todo{relation};
    while (!todo.empty()) {
      const auto r = todo.back();
      todo.pop_back();
      for (const auto& [name, v] : actual_views_) {
        const auto deps = view_deps_.find(name);
        if (deps == view_deps_.end() || !deps->second.count(r)) continue;
        if (std::find(found.begin(), found.end(), name) != found.end()) continue;
        found.push_back(name);
        todo.push_back(name);
      }
    }
    std::sort(found.begin(), found.end(), [&](const std::string& a, const std::string& b) {
      return view_depth(a) > view_depth(b);
    });
    std::vector<const SchemaObject*> out;
    for (const auto& n : found) out.push_back(actual_views_.at(n));
    return out;
  }

  // Drops the live views reading `relation` before the item's fix and recreates the expected
  // ones after it (with their grants, comments, options and indexes).
  void around_dependents(DriftItem& d, const std::string& relation) const {  // NOLINT
    const auto deps = dependent_views(relation);
    for (const auto* v : deps) {
      d.drop_first.push_back(drop_sql(*v));
      recreated_.insert(v->display());
    }
    for (auto it = deps.rbegin(); it != deps.rend(); ++it) {
      const auto name = (*it)->schema + "." + (*it)->name;
      const auto e = std::find_if(expected_.objects.begin(), expected_.objects.end(),
                                  [&](const SchemaObject& o) {
                                    return o.kind == "view" && o.schema + "." + o.name == name;
                                  });
      if (e != expected_.objects.end()) d.create_last.push_back(view_create(*e));
    }
  }

  std::string view_create(const SchemaObject& v) const {
    std::string s = create(v);
    for (const auto& i : expected_.objects)
      if (i.kind == "index" && i.schema == v.schema && i.table == v.name) s += "\n" + create(i);
    return s;
  }

  // The privileges a new object gets from the live default privileges (ALTER DEFAULT
  // PRIVILEGES of the reference role), "" when none apply.
  std::string initial_acl(const SchemaObject& o) const {
    std::string objects;
    if (o.kind == "table" || o.kind == "view") objects = "TABLES";
    if (o.kind == "sequence") objects = "SEQUENCES";
    if (o.kind == "function") objects = "FUNCTIONS";
    if (o.kind == "type") objects = "TYPES";
    if (o.kind == "schema") objects = "SCHEMAS";
    if (objects.empty()) return "";
    std::map<std::string, std::set<std::string>> acl;
    acl["(owner)"] = {"ALL"};
    if (objects == "FUNCTIONS") acl["PUBLIC"] = {"EXECUTE"};
    if (objects == "TYPES") acl["PUBLIC"] = {"USAGE"};
    bool any = false;
    const auto apply = [&](const SchemaObject& d, bool replace) {
      if (replace) acl.clear();
      for (const auto& item : split_top(d.attr("acl"), " ")) {
        if (item == "(none)") continue;
        const auto eq = item.rfind('=');
        for (const auto& p : split_top(item.substr(eq + 1), ",")) acl[item.substr(0, eq)].insert(p);
      }
      any = true;
    };
    for (const auto* pass : {"global", "schema"})
      for (const auto& d : actual_.objects) {
        if (d.kind != "default_acl" || d.attr("objects") != objects ||
            !d.name.starts_with("(migrator) on "))
          continue;
        if (std::string(pass) == "global" && d.schema.empty()) apply(d, true);
        if (std::string(pass) == "schema" && !d.schema.empty() && d.schema == o.schema)
          apply(d, false);
      }
    if (!any) return "";
    std::vector<std::string> items;
    for (const auto& [g, privs] : acl)
      items.push_back(g + "=" + fmt::format("{}", fmt::join(privs, ",")));
    return items.empty() ? "(none)" : fmt::format("{}", fmt::join(items, " "));
  }

  std::string create(const SchemaObject& o) const {
    return create_sql(o, expected_, role_, initial_acl(o));
  }

  bool skipped(const SchemaObject& o) const {
    if (unknown_.count(o.kind) || ignored_kinds_.count(o.kind)) return true;
    if (o.kind == "default_acl" && ignored_kinds_.count("grant")) return true;
    for (const auto& p : options_.ignore) {
      if (p.starts_with("kind:")) continue;
      if (glob_match(p, o.display())) return true;
      if (!is_child_kind(o.kind) && glob_match(p, o.schema + "." + o.name)) return true;
      if (!o.table.empty() && glob_match(p, o.schema + "." + o.table)) return true;
    }
    return false;
  }

  static bool renamable(const std::string& kind) {
    return kind == "column" || kind == "index" || kind == "constraint" || kind == "view" ||
           kind == "type" || kind == "sequence" || kind == "trigger" || kind == "policy";
  }

  // All an object is but its name.
  static std::string signature(const SchemaObject& o) {
    std::string s;
    for (const auto& [k, v] : o.attrs) {
      if (k == "sql_name" || k == "position") continue;
      auto val = v;
      if ((o.kind == "index" || o.kind == "trigger") && k == "definition") {
        const auto on = val.find(" ON ");
        const auto kw = o.kind == "index" ? val.find("INDEX ") : val.find("TRIGGER ");
        if (on != std::string::npos && kw != std::string::npos) {
          const auto name_end = o.kind == "index" ? on : val.find(' ', kw + 8);
          val = val.substr(0, kw) + "?" + val.substr(name_end);
        }
      }
      s += k + "=" + val + "\n";
    }
    return s;
  }

  static std::string rename_sql(const SchemaObject& e, const SchemaObject& a) {
    const auto to = quote_identifier(e.name);
    if (e.kind == "column")
      return fmt::format("ALTER TABLE {} RENAME COLUMN {} TO {};", a.attr("sql_table"),
                         a.attr("sql_name"), to);
    if (e.kind == "constraint")
      return fmt::format("ALTER TABLE {} RENAME CONSTRAINT {} TO {};", a.attr("sql_table"),
                         a.attr("sql_name"), to);
    if (e.kind == "trigger" || e.kind == "policy")
      return fmt::format("ALTER {} {} ON {} RENAME TO {};",
                         e.kind == "trigger" ? "TRIGGER" : "POLICY", a.attr("sql_name"),
                         a.attr("sql_table"), to);
    std::string kind = e.kind == "index" ? "INDEX" : e.kind == "sequence" ? "SEQUENCE" : "";
    if (e.kind == "view") kind = a.attr("materialized") == "true" ? "MATERIALIZED VIEW" : "VIEW";
    if (e.kind == "type") kind = a.attr("type") == "domain" ? "DOMAIN" : "TYPE";
    return fmt::format("ALTER {} {} RENAME TO {};", kind, a.attr("sql_name"), to);
  }

  // Back to no entry: the global defaults, or nothing granted for a schema's entry.
  std::string drop_default_acl(const SchemaObject& o) const {
    SchemaObject none = o;
    none.attrs["acl"] = o.schema.empty() ? "(owner)=ALL" : "(none)";
    if (o.schema.empty() && o.attr("objects") == "FUNCTIONS")
      none.attrs["acl"] = "(owner)=ALL PUBLIC=EXECUTE";
    if (o.schema.empty() && o.attr("objects") == "TYPES")
      none.attrs["acl"] = "(owner)=ALL PUBLIC=USAGE";
    return default_acl_fix_sql(none, &o, role_);
  }

  static std::string summary(const SchemaObject& o) {
    if (o.kind == "column") return o.attr("type");
    if (o.kind == "type")
      return o.attr("type") == "enum" ? "enum (" + o.attr("labels") + ")" : o.attr("type");
    if (o.kind == "default_acl") return o.attr("acl");
    if (!o.attr("definition").empty() && o.kind != "function") return o.attr("definition");
    return o.kind;
  }

  void missing(const SchemaObject& o) {
    std::string fix = o.kind == "view" ? view_create(o) : create(o);
    if (o.kind == "table") {
      // Children in dependency order: primary and unique keys before foreign keys.
      std::vector<const SchemaObject*> children;
      for (const auto& c : expected_.objects)
        if (is_child_kind(c.kind) && c.kind != "column" && c.schema == o.schema &&
            c.table == o.name)
          children.push_back(&c);
      std::stable_sort(children.begin(), children.end(), [](const auto* a, const auto* b) {
        const auto fk = [](const SchemaObject* x) {
          return x->kind == "constraint" && x->attr("type") == "foreign key";
        };
        return !fk(a) && fk(b);
      });
      for (const auto* c : children) fix += "\n" + create(*c);
    }
    items_.push_back(make_item(o.kind, o.display(), "missing", "", summary(o), "", fix));
  }

  void changed(const SchemaObject& e, const std::string& field, const SchemaObject& a,
               std::string fix) {
    items_.push_back(make_item(e.kind, e.display(), "changed", field, e.attr(field), a.attr(field),
                               std::move(fix)));
  }

  // Drop and create again (with the object's grants, comments and options).
  std::string recreate(const SchemaObject& e, const SchemaObject& a) const {
    return drop_sql(a) + "\n" + (e.kind == "view" ? view_create(e) : create(e));
  }

  void compare(const SchemaObject& e, const SchemaObject& a) {
    std::set<std::string> fields;
    // sql_* are quoted names; a column's position is informative only (a column added back
    // by hand lands at the end, and the application reads columns by name).
    const auto counts = [&](const std::string& k) {
      if (k.starts_with("sql_") || k == "position") return false;
      for (const auto& g : ignored_kinds_)
        if (in_group(g, k)) return false;
      return true;
    };
    for (const auto& [k, v] : e.attrs)
      if (counts(k)) fields.insert(k);
    for (const auto& [k, v] : a.attrs)
      if (counts(k)) fields.insert(k);
    std::vector<std::string> diffs;
    for (const auto& f : fields)
      if (e.attr(f) != a.attr(f)) diffs.push_back(f);
    if (diffs.empty()) return;
    // Owner, privileges and comments: one finding each, fixed in place.
    std::vector<std::string> rest;
    for (const auto& f : diffs) {
      if (f == "owner" && e.kind == "sequence" && !e.attr("owned_by").empty())
        continue;  // a sequence owned by a column has its table's owner
      if (f == "owner")
        changed(e, f, a, owner_sql(e, role_));
      else if (f == "acl" && e.kind == "default_acl")
        changed(e, f, a, default_acl_fix_sql(e, &a, role_));
      else if (f == "acl")
        changed(e, f, a, acl_fix_sql(e, a, role_));
      else if (f == "comment")
        changed(e, f, a, comment_sql(e));
      else
        rest.push_back(f);
    }
    if (rest.empty()) return;
    if (e.kind == "column") return compare_column(e, a, rest);
    if (e.kind == "table") return compare_table(e, a, rest);
    if (e.kind == "view") return compare_view(e, a, rest);
    if (e.kind == "index") return compare_index(e, a, rest);
    if (e.kind == "constraint") return compare_constraint(e, a, rest);
    if (e.kind == "sequence") return compare_sequence(e, a, rest);
    if (e.kind == "type") return compare_type(e, a, rest);
    if (e.kind == "function") return changed(e, rest.front(), a, compare_function(e, a, rest));
    if (e.kind == "trigger") return compare_enabled(e, a, rest, "TRIGGER");
    if (e.kind == "policy") return compare_policy(e, a, rest);
    if (e.kind == "extension" && rest == std::vector<std::string>{"version"})
      return changed(
          e, "version", a,
          fmt::format("ALTER EXTENSION {} UPDATE TO '{}';", e.attr("sql_name"), e.attr("version")));
    if (e.kind == "rule") return compare_enabled(e, a, rest, "RULE");
    if (e.kind == "statistics" && rest == std::vector<std::string>{"statistics"})
      return changed(e, "statistics", a,
                     fmt::format("ALTER STATISTICS {} SET STATISTICS {};", e.attr("sql_name"),
                                 e.attr("statistics").empty() ? "-1" : e.attr("statistics")));
    if (e.kind == "event_trigger" && rest == std::vector<std::string>{"enabled"})
      return changed(e, "enabled", a, event_trigger_enable(e));
    if (e.kind == "publication") return compare_publication(e, a, rest);
    // Collations, other kinds: drop and create again.
    changed(e, rest.front(), a, recreate(e, a));
  }

  static std::string event_trigger_enable(const SchemaObject& e) {
    const auto en = e.attr("enabled");
    return fmt::format("ALTER EVENT TRIGGER {} {};", e.attr("sql_name"),
                       en == "disabled"  ? "DISABLE"
                       : en == "replica" ? "ENABLE REPLICA"
                       : en == "always"  ? "ENABLE ALWAYS"
                                         : "ENABLE");
  }

  void compare_column(const SchemaObject& e, const SchemaObject& a,
                      std::vector<std::string> diffs) {
    // The type first: the other settings (identity options, collation) apply to it.
    std::stable_partition(diffs.begin(), diffs.end(), [](const auto& f) { return f == "type"; });
    const auto has = [&](const char* f) {
      return std::find(diffs.begin(), diffs.end(), f) != diffs.end();
    };
    const auto alter =
        fmt::format("ALTER TABLE {} ALTER COLUMN {}", e.attr("sql_table"), e.attr("sql_name"));
    for (const auto& f : diffs) {
      if (f == "identity_options" && has("identity")) continue;
      if (f == "default" && has("generated")) continue;
      std::string fix;
      if (f == "type") {
        fix = fmt::format("{} TYPE {}{} USING {}::{};", alter, e.attr("type"),
                          e.attr("collation").empty() ? "" : " COLLATE " + e.attr("collation"),
                          e.attr("sql_name"), e.attr("type"));
        DriftItem d = make_item(e.kind, e.display(), "changed", f, e.attr(f), a.attr(f), fix);
        around_dependents(d, e.schema + "." + e.table);
        items_.push_back(std::move(d));
        continue;
      }
      if (f == "not_null") {
        fix = fmt::format("{} {} NOT NULL;", alter, e.attr("not_null") == "true" ? "SET" : "DROP");
      } else if (f == "default") {
        fix = e.attr("default").empty()
                  ? alter + " DROP DEFAULT;"
                  : fmt::format("{} SET DEFAULT {};", alter, e.attr("default"));
      } else if (f == "identity") {
        const auto kind = e.attr("identity") == "always" ? "ALWAYS" : "BY DEFAULT";
        if (e.attr("identity").empty())
          fix = alter + " DROP IDENTITY;";
        else if (a.attr("identity").empty())
          fix = fmt::format(
              "{} ADD GENERATED {} AS IDENTITY{};", alter, kind,
              e.attr("identity_options").empty() ? "" : " (" + e.attr("identity_options") + ")");
        else
          fix = fmt::format("{} SET GENERATED {};", alter, kind);
      } else if (f == "identity_options") {
        auto opts = e.attr("identity_options");
        const auto start = opts.find("START WITH");
        opts = start == std::string::npos ? opts : opts.substr(start);
        std::string clause;
        for (const char* kw : {"START WITH", "INCREMENT BY", "MINVALUE", "MAXVALUE", "CACHE"}) {
          const auto p = opts.find(kw);
          if (p == std::string::npos) continue;
          const auto v0 = p + std::string_view(kw).size() + 1;
          const auto v1 = opts.find(' ', v0);
          clause += fmt::format(" SET {} {}", kw,
                                opts.substr(v0, v1 == std::string::npos ? v1 : v1 - v0));
        }
        clause += opts.ends_with(" CYCLE") ? " SET CYCLE" : " SET NO CYCLE";
        fix = alter + clause + ";";
      } else if (f == "collation") {
        fix = fmt::format(
            "{} TYPE {} COLLATE {};", alter, e.attr("type"),
            e.attr("collation").empty() ? "pg_catalog.\"default\"" : e.attr("collation"));
      } else if (f == "statistics") {
        fix = fmt::format("{} SET STATISTICS {};", alter,
                          e.attr("statistics").empty() ? "-1" : e.attr("statistics"));
      } else if (f == "storage") {
        fix = fmt::format(
            "{} SET STORAGE {};", alter,
            e.attr("storage").empty() ? default_storage(e.attr("type")) : e.attr("storage"));
      } else if (f == "compression") {
        fix = fmt::format("{} SET COMPRESSION {};", alter,
                          e.attr("compression").empty() ? "DEFAULT" : e.attr("compression"));
      } else {
        // A generated expression cannot be altered in place: the column is rebuilt (its data is
        // derived; it lands at the end of the table).
        fix = fmt::format("ALTER TABLE {} DROP COLUMN {};\n{}", e.attr("sql_table"),
                          e.attr("sql_name"), create_sql(e, {}, role_));
      }
      changed(e, f, a, fix);
    }
  }

  // The storage of a type when none is set (PostgreSQL 15 has no SET STORAGE DEFAULT).
  static std::string default_storage(const std::string& type) {
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

  void compare_table(const SchemaObject& e, const SchemaObject& a,
                     const std::vector<std::string>& diffs) {
    const auto& t = e.attr("sql_name");
    bool partition_done = false;
    for (const auto& f : diffs) {
      std::string fix;
      if (f == "row_security") {
        fix = fmt::format("ALTER TABLE {} {} ROW LEVEL SECURITY;", t,
                          e.attr(f) == "true" ? "ENABLE" : "DISABLE");
      } else if (f == "force_row_security") {
        fix = fmt::format("ALTER TABLE {} {} ROW LEVEL SECURITY;", t,
                          e.attr(f) == "true" ? "FORCE" : "NO FORCE");
      } else if (f == "persistence") {
        fix = fmt::format("ALTER TABLE {} SET {};", t,
                          e.attr(f) == "unlogged" ? "UNLOGGED" : "LOGGED");
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
        if (partition_done) continue;
        partition_done = true;
        if (!a.attr("partition_of").empty())
          fix += fmt::format("ALTER TABLE {} DETACH PARTITION {};\n", a.attr("partition_of"), t);
        if (!e.attr("partition_of").empty())
          fix += fmt::format("ALTER TABLE {} ATTACH PARTITION {} {};\n", e.attr("partition_of"), t,
                             e.attr("partition_bound"));
        if (!fix.empty()) fix.pop_back();
      } else if (f == "inherits") {
        for (const auto& p : split_top(a.attr(f), ","))
          fix += fmt::format("ALTER TABLE {} NO INHERIT {};\n", t, p);
        for (const auto& p : split_top(e.attr(f), ","))
          fix += fmt::format("ALTER TABLE {} INHERIT {};\n", t, p);
        if (!fix.empty()) fix.pop_back();
      } else {
        fix = fmt::format("-- {} of {} differs: the table must be rebuilt by hand", f, t);
      }
      changed(e, f, a, fix);
    }
  }

  void compare_view(const SchemaObject& e, const SchemaObject& a,
                    const std::vector<std::string>& diffs) {
    if (diffs == std::vector<std::string>{"options"}) {
      const auto kind = e.attr("materialized") == "true" ? "MATERIALIZED VIEW" : "VIEW";
      return changed(e, "options", a,
                     options_fix(fmt::format("ALTER {} {}", kind, e.attr("sql_name")),
                                 e.attr("options"), a.attr("options")));
    }
    std::string field = diffs.front();
    for (const auto& f : diffs)
      if (f == "definition") field = f;
    DriftItem d = make_item(e.kind, e.display(), "changed", field, e.attr(field), a.attr(field),
                            recreate(e, a));
    around_dependents(d, e.schema + "." + e.name);
    items_.push_back(std::move(d));
  }

  void compare_index(const SchemaObject& e, const SchemaObject& a,
                     const std::vector<std::string>& diffs) {
    if (diffs == std::vector<std::string>{"valid"})
      return items_.push_back(make_item(e.kind, e.display(),
                                        e.attr("valid") == "true" ? "invalid" : "changed", "valid",
                                        e.attr("valid"), a.attr("valid"), recreate(e, a)));
    if (diffs == std::vector<std::string>{"clustered"}) {
      const auto name = e.attr("sql_name").substr(e.attr("sql_name").find('.') + 1);
      return changed(e, "clustered", a,
                     e.attr("clustered") == "true"
                         ? fmt::format("ALTER TABLE {} CLUSTER ON {};", e.attr("sql_table"), name)
                         : fmt::format("ALTER TABLE {} SET WITHOUT CLUSTER;", e.attr("sql_table")));
    }
    const auto field = std::find(diffs.begin(), diffs.end(), "definition") != diffs.end()
                           ? std::string("definition")
                           : diffs.front();
    changed(e, field, a, recreate(e, a));
  }

  void compare_constraint(const SchemaObject& e, const SchemaObject& a,
                          const std::vector<std::string>& diffs) {
    if (diffs == std::vector<std::string>{"not_valid"} && e.attr("not_valid").empty())
      return changed(e, "not_valid", a,
                     fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {};", e.attr("sql_table"),
                                 e.attr("sql_name")));
    const auto field = std::find(diffs.begin(), diffs.end(), "definition") != diffs.end()
                           ? std::string("definition")
                           : diffs.front();
    DriftItem d = make_item(e.kind, e.display(), "changed", field, e.attr(field), a.attr(field),
                            recreate(e, a));
    // Foreign keys that reference a recreated primary or unique key go first, come back after.
    if (a.attr("type") == "primary key" || a.attr("type") == "unique") {
      const auto ref = "REFERENCES " + a.attr("sql_table") + "(";
      for (const auto& fk : actual_.objects) {
        if (fk.kind != "constraint" || fk.attr("type") != "foreign key" ||
            fk.attr("definition").find(ref) == std::string::npos)
          continue;
        d.drop_first.push_back(drop_sql(fk));
        const auto x = std::find_if(expected_.objects.begin(), expected_.objects.end(),
                                    [&](const SchemaObject& o) { return key_of(o) == key_of(fk); });
        if (x != expected_.objects.end()) d.create_last.push_back(create(*x));
      }
    }
    items_.push_back(std::move(d));
  }

  void compare_sequence(const SchemaObject& e, const SchemaObject& a,
                        const std::vector<std::string>& diffs) {
    std::string fix;
    bool params = false;
    for (const auto& f : diffs) {
      if (f == "owned_by") {
        fix += fmt::format("ALTER SEQUENCE {} OWNED BY {};\n", e.attr("sql_name"),
                           e.attr(f).empty() ? "NONE" : quote_dotted(e.attr(f)));
      } else {
        params = true;
      }
    }
    if (params)
      fix += fmt::format(
          "ALTER SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} "
          "{};\n",
          e.attr("sql_name"), e.attr("type"), e.attr("increment"), e.attr("min"), e.attr("max"),
          e.attr("start"), e.attr("cache"), e.attr("cycle") == "true" ? "CYCLE" : "NO CYCLE");
    fix.pop_back();
    changed(e, diffs.front(), a, fix);
  }

  void compare_type(const SchemaObject& e, const SchemaObject& a,
                    const std::vector<std::string>& diffs) {
    if (e.attr("type") != a.attr("type") ||
        std::find(diffs.begin(), diffs.end(), "base_type") != diffs.end())
      return changed(e, diffs.front(), a, recreate(e, a));
    if (e.attr("type") == "enum") {
      DriftItem d = make_item(e.kind, e.display(), "changed", "labels", e.attr("labels"),
                              a.attr("labels"), enum_fix(e, a));
      if (d.fix.find("RENAME TO") != std::string::npos)
        for (const auto& c : expected_.objects) {
          const auto& t = c.attr("type");
          if (c.kind == "column" && (t == e.schema + "." + e.name || t == e.attr("sql_name")))
            around_dependents(d, c.schema + "." + c.table);
        }
      std::vector<std::string> seen;
      std::erase_if(d.drop_first, [&](const std::string& x) {
        if (std::find(seen.begin(), seen.end(), x) != seen.end()) return true;
        seen.push_back(x);
        return false;
      });
      seen.clear();
      std::erase_if(d.create_last, [&](const std::string& x) {
        if (std::find(seen.begin(), seen.end(), x) != seen.end()) return true;
        seen.push_back(x);
        return false;
      });
      items_.push_back(std::move(d));
      return;
    }
    const auto& n = e.attr("sql_name");
    for (const auto& f : diffs) {
      std::string fix;
      if (f == "default")
        fix = e.attr(f).empty() ? fmt::format("ALTER DOMAIN {} DROP DEFAULT;", n)
                                : fmt::format("ALTER DOMAIN {} SET DEFAULT {};", n, e.attr(f));
      else if (f == "not_null")
        fix = fmt::format("ALTER DOMAIN {} {} NOT NULL;", n, e.attr(f) == "true" ? "SET" : "DROP");
      else if (f == "constraints") {
        const auto want = split_top(e.attr(f), " CONSTRAINT ");
        const auto have = split_top(a.attr(f), " CONSTRAINT ");
        for (const auto& c : have)
          if (std::find(want.begin(), want.end(), c) == want.end()) {
            const auto name = c.substr(11, c.find(' ', 11) - 11);
            fix += fmt::format("ALTER DOMAIN {} DROP CONSTRAINT {};\n", n, name);
          }
        for (const auto& c : want)
          if (std::find(have.begin(), have.end(), c) == have.end())
            fix += fmt::format("ALTER DOMAIN {} ADD {};\n", n, c);
        if (!fix.empty()) fix.pop_back();
      } else if (f == "attributes") {
        const auto want = split_top(e.attr(f), ",");
        const auto have = split_top(a.attr(f), ",");
        const auto name_of = [](const std::string& x) { return x.substr(0, x.find(' ')); };
        std::vector<std::string> clauses;
        for (const auto& h : have) {
          const auto w = std::find_if(want.begin(), want.end(),
                                      [&](const auto& x) { return name_of(x) == name_of(h); });
          if (w == want.end())
            clauses.push_back("DROP ATTRIBUTE " + name_of(h));
          else if (*w != h)
            clauses.push_back("ALTER ATTRIBUTE " + name_of(h) + " TYPE " +
                              w->substr(name_of(*w).size() + 1));
        }
        for (const auto& w : want)
          if (std::find_if(have.begin(), have.end(),
                           [&](const auto& x) { return name_of(x) == name_of(w); }) == have.end())
            clauses.push_back("ADD ATTRIBUTE " + w);
        fix = fmt::format("ALTER TYPE {} {};", n, fmt::join(clauses, ", "));
      } else {
        fix = recreate(e, a);
      }
      changed(e, f, a, fix);
    }
  }

  std::string compare_function(const SchemaObject& e, const SchemaObject& a,
                               const std::vector<std::string>& diffs) const {
    if (diffs == std::vector<std::string>{"definition"} && !e.attr("definition").empty())
      return bare_create_sql(e, expected_);
    return recreate(e, a);
  }

  // Triggers and rules: a change of `enabled` alone is an ALTER TABLE ... ENABLE/DISABLE
  // `keyword` (TRIGGER or RULE); anything else recreates the object.
  void compare_enabled(const SchemaObject& e, const SchemaObject& a,
                       const std::vector<std::string>& diffs, std::string_view keyword) {
    if (diffs == std::vector<std::string>{"enabled"}) {
      const auto en = e.attr("enabled");
      return changed(e, "enabled", a,
                     fmt::format("ALTER TABLE {} {} {} {};", e.attr("sql_table"),
                                 en == "disabled"  ? "DISABLE"
                                 : en == "replica" ? "ENABLE REPLICA"
                                 : en == "always"  ? "ENABLE ALWAYS"
                                                   : "ENABLE",
                                 keyword, e.attr("sql_name")));
    }
    changed(e, diffs.front(), a, recreate(e, a));
  }

  void compare_policy(const SchemaObject& e, const SchemaObject& a,
                      const std::vector<std::string>& diffs) {
    bool in_place = true;
    for (const auto& f : diffs)
      if (f == "command" || f == "permissive" ||
          ((f == "using" || f == "with_check") && e.attr(f).empty()))
        in_place = false;
    if (!in_place) return changed(e, diffs.front(), a, recreate(e, a));
    changed(e, diffs.front(), a,
            fmt::format(
                "ALTER POLICY {} ON {} TO {}{}{};", e.attr("sql_name"), e.attr("sql_table"),
                e.attr("roles"), e.attr("using").empty() ? "" : " USING (" + e.attr("using") + ")",
                e.attr("with_check").empty() ? "" : " WITH CHECK (" + e.attr("with_check") + ")"));
  }

  void compare_publication(const SchemaObject& e, const SchemaObject& a,
                           const std::vector<std::string>& diffs) {
    const auto& n = e.attr("sql_name");
    for (const auto& f : diffs) {
      std::string fix;
      if (f == "tables" && e.attr("all_tables").empty() && a.attr("all_tables").empty())
        fix = e.attr(f).empty() ? fmt::format("ALTER PUBLICATION {} DROP TABLE {};", n, a.attr(f))
                                : fmt::format("ALTER PUBLICATION {} SET TABLE {};", n, e.attr(f));
      else if (f == "publish")
        fix = fmt::format("ALTER PUBLICATION {} SET (publish = '{}');", n, e.attr(f));
      else if (f == "via_root")
        fix = fmt::format("ALTER PUBLICATION {} SET (publish_via_partition_root = {});", n,
                          e.attr(f) == "true" ? "true" : "false");
      else
        fix = recreate(e, a);
      changed(e, f, a, fix);
    }
  }

  // Missing labels are added in place; a label the expected type lacks can only go by
  // rebuilding the type (PostgreSQL cannot drop a label): rename, create, convert every column
  // of the type (rebuilding the views that read those tables), drop the old type.
  std::string enum_fix(const SchemaObject& e, const SchemaObject& a) const {
    const auto want = split_labels(e.attr("labels"));
    const auto have = split_labels(a.attr("labels"));
    if (want.size() == have.size()) {
      // One label renamed in place: RENAME VALUE.
      std::vector<std::size_t> at;
      for (std::size_t i = 0; i < want.size(); ++i)
        if (want[i] != have[i]) at.push_back(i);
      if (at.size() == 1 && std::find(have.begin(), have.end(), want[at[0]]) == have.end())
        return fmt::format("ALTER TYPE {} RENAME VALUE {} TO {};", e.attr("sql_name"), have[at[0]],
                           want[at[0]]);
    }
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
    std::string fix = fmt::format(
        "-- rows holding a label the expected type lacks must be changed first\n"
        "ALTER TYPE {} RENAME TO {};\n{}\n",
        type, old_name, create(e));
    for (const auto* c : columns) {
      const auto alter =
          fmt::format("ALTER TABLE {} ALTER COLUMN {}", c->attr("sql_table"), c->attr("sql_name"));
      fix += fmt::format("{} DROP DEFAULT;\n{} TYPE {} USING {}::text::{};\n", alter, alter, type,
                         c->attr("sql_name"), type);
      if (!c->attr("default").empty())
        fix += fmt::format("{} SET DEFAULT {};\n", alter, c->attr("default"));
    }
    fix += fmt::format("DROP TYPE {}.{};", e.attr("sql_schema"), old_name);
    return fix;
  }

  const SchemaDescription& expected_;
  const SchemaDescription& actual_;
  const DiffOptions& options_;
  std::string role_;
  std::set<std::string> unknown_;
  std::set<std::string> ignored_kinds_;
  std::map<std::string, std::set<std::string>> view_deps_;  // view -> relations it reads
  std::map<std::string, const SchemaObject*> views_;        // expected, else live
  std::map<std::string, const SchemaObject*> actual_views_;
  std::vector<DriftItem> items_;
  mutable std::set<std::string> recreated_;  // views dropped and recreated around other fixes
};

}  // namespace

std::vector<DriftItem> diff_schemas(const SchemaDescription& expected,
                                    const SchemaDescription& actual, const DiffOptions& options) {
  return Differ(expected, actual, options).run();
}

}  // namespace stepwise
