// Drift matching: pairs expected and live objects, decides what is missing, unexpected,
// renamed or changed (per field), and takes each fix's statements from the DDL module.
#include "stepwise/drift.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "stepwise/ddl.hpp"
#include "stepwise/fix_script.hpp"
#include "stepwise/text.hpp"

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

// Views into the objects of the two descriptions, which outlive every map of keys (at 10,000
// tables four copied strings per object were a quarter of validate's heap).
using Key = std::tuple<std::string_view, std::string_view, std::string_view, std::string_view>;
Key key_of(const SchemaObject& o) {
  return {o.kind, o.schema, o.table, o.name};
}

bool key_less(const SchemaObject* a, const SchemaObject* b) {
  return key_of(*a) < key_of(*b);
}

// The objects of one description by key, in key order: a sorted vector of pointers (at
// 10,000 tables the two std::maps of 70,000 nodes each were the largest thing validate held).
class ObjectIndex {
 public:
  template <typename Keep>
  ObjectIndex(const std::vector<SchemaObject>& objects, Keep keep) {
    for (const auto& o : objects)
      if (keep(o)) items_.push_back(&o);
    std::stable_sort(items_.begin(), items_.end(), key_less);
    // Of equal keys the last counts (as with map[key] = &o).
    std::size_t out = 0;
    for (std::size_t i = 0; i < items_.size(); ++i)
      if (i + 1 == items_.size() || key_of(*items_[i + 1]) != key_of(*items_[i]))
        items_[out++] = items_[i];
    items_.resize(out);
    items_.shrink_to_fit();
  }

  class iterator {
   public:
    explicit iterator(std::vector<const SchemaObject*>::const_iterator it) : it_(it) {}
    std::pair<Key, const SchemaObject*> operator*() const { return {key_of(**it_), *it_}; }
    iterator& operator++() {
      ++it_;
      return *this;
    }
    bool operator==(const iterator& o) const { return it_ == o.it_; }

   private:
    std::vector<const SchemaObject*>::const_iterator it_;
  };
  [[nodiscard]] iterator begin() const { return iterator(items_.begin()); }
  [[nodiscard]] iterator end() const { return iterator(items_.end()); }

  // The object of that key, or nullptr.
  [[nodiscard]] const SchemaObject* get(const Key& k) const {
    const auto it =
        std::lower_bound(items_.begin(), items_.end(), k,
                         [](const SchemaObject* o, const Key& key) { return key_of(*o) < key; });
    return it != items_.end() && key_of(**it) == k ? *it : nullptr;
  }
  [[nodiscard]] std::size_t count(const Key& k) const { return get(k) != nullptr ? 1 : 0; }

 private:
  std::vector<const SchemaObject*> items_;
};

bool is_child_kind(std::string_view kind) {
  return kind == "column" || kind == "constraint" || kind == "index" || kind == "trigger" ||
         kind == "policy" || kind == "rule" || kind == "statistics";
}

// The property groups --ignore kind:K can hide, and the attributes they hold.
bool in_group(const std::string& group, const std::string& attr) {
  if (group == "owner") return attr == "owner";
  if (group == "grant") return attr == "acl";
  if (group == "comment") return attr == "comment";
  return false;
}

// Keeps the first of equal statements, in order.
void drop_repeats(std::vector<std::string>& statements) {
  std::vector<std::string> seen;
  std::erase_if(statements, [&](const std::string& x) {
    if (std::find(seen.begin(), seen.end(), x) != seen.end()) return true;
    seen.push_back(x);
    return false;
  });
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
          for (const auto& dep : split_top_level(v.attr("depends_on"), ","))
            if (dep != name) view_deps_[name].insert(dep);
          views_[name] = d == &e ? &v : views_.count(name) ? views_[name] : &v;
          if (d == &a) actual_views_[name] = &v;
        }
  }

  std::vector<DriftItem> run() {
    const auto keep = [&](const SchemaObject& o) { return !skipped(o); };
    const ObjectIndex exp(expected_.objects, keep), act(actual_.objects, keep);
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
      const auto* live = act.get(k);
      if (o->kind == "table" && live != nullptr && !o->attr("partition_of").empty() &&
          live->attr("partition_of").empty())
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
                              ddl::rename(*match, e->name));
      items_.push_back(std::move(d));
    }
    for (const auto& [k, o] : exp) {
      if (covered(*o) || renamed_exp.count(k)) continue;
      const auto* live = act.get(k);
      if (live == nullptr)
        missing(*o);
      else
        compare(*o, *live);
    }
    for (const auto& [k, o] : act)
      if (!exp.count(k) && !covered(*o) && !renamed_act.count(k))
        items_.push_back(make_item(o->kind, o->display(), "unexpected", "", "", summary(*o),
                                   ddl::drop(*o, role_)));
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
      d.drop_first.push_back(ddl::drop(*v));
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

  // With the privileges the live default privileges give it.
  std::string create(const SchemaObject& o) const {
    return ddl::create(o, expected_, role_, ddl::initial_acl(o, actual_));
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
    return ddl::drop(a) + "\n" + (e.kind == "view" ? view_create(e) : create(e));
  }

  // The statements changing field `f` in place, or, where the kind cannot, recreating the object.
  std::string in_place_or_recreate(const SchemaObject& e, const SchemaObject& a,
                                   const std::string& f) const {
    auto fix = ddl::alter(e, a, f);
    return fix ? std::move(*fix) : recreate(e, a);
  }

  // The field a recreation is reported under: "definition" when it differs, else the first.
  static std::string main_field(const std::vector<std::string>& diffs) {
    return std::find(diffs.begin(), diffs.end(), "definition") != diffs.end()
               ? std::string("definition")
               : diffs.front();
  }

  // The differing fields, then one compare per kind.
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
        changed(e, f, a, ddl::owner(e, role_));
      else if (f == "acl" && e.kind == "default_acl")
        changed(e, f, a, ddl::default_privileges(e, &a, role_));
      else if (f == "acl")
        changed(e, f, a, ddl::grants(e, a, role_));
      else if (f == "comment")
        changed(e, f, a, ddl::comment(e));
      else
        rest.push_back(f);
    }
    if (rest.empty()) return;
    if (e.kind == "column") return compare_column(e, a, rest);
    if (e.kind == "table") return each_field(e, a, rest);
    if (e.kind == "view") return compare_view(e, a, rest);
    if (e.kind == "index") return compare_index(e, a, rest);
    if (e.kind == "constraint") return compare_constraint(e, a, rest);
    if (e.kind == "sequence") return compare_sequence(e, a, rest);
    if (e.kind == "type") return compare_type(e, a, rest);
    if (e.kind == "policy") return compare_policy(e, a, rest);
    if (e.kind == "publication") return each_field(e, a, rest);
    // Functions, triggers, rules, extensions, statistics, event triggers: one field may change
    // in place; collations, other kinds: drop and create again.
    one_field(e, a, rest);
  }

  // One finding per field, in place where the kind can, else recreated.
  void each_field(const SchemaObject& e, const SchemaObject& a,
                  const std::vector<std::string>& diffs) {
    bool partition_done = false;
    for (const auto& f : diffs) {
      if (e.kind == "table" && (f == "partition_bound" || f == "partition_of")) {
        if (partition_done) continue;  // one DETACH / ATTACH for both
        partition_done = true;
      }
      changed(e, f, a, in_place_or_recreate(e, a, f));
    }
  }

  // A difference in one field alone that the kind changes in place, else the object recreated.
  void one_field(const SchemaObject& e, const SchemaObject& a,
                 const std::vector<std::string>& diffs) {
    if (!changed_in_place(e, a, diffs)) changed(e, diffs.front(), a, recreate(e, a));
  }

  // One differing field that the kind changes in place: that finding, true.
  bool changed_in_place(const SchemaObject& e, const SchemaObject& a,
                        const std::vector<std::string>& diffs) {
    if (diffs.size() != 1) return false;
    auto fix = ddl::alter(e, a, diffs.front());
    if (fix) changed(e, diffs.front(), a, std::move(*fix));
    return fix.has_value();
  }

  // The object dropped and created again, reported under main_field().
  DriftItem recreated(const SchemaObject& e, const SchemaObject& a,
                      const std::vector<std::string>& diffs) const {
    const auto field = main_field(diffs);
    return make_item(e.kind, e.display(), "changed", field, e.attr(field), a.attr(field),
                     recreate(e, a));
  }

  void compare_column(const SchemaObject& e, const SchemaObject& a,
                      std::vector<std::string> diffs) {
    // The type first: the other settings (identity options, collation) apply to it.
    std::stable_partition(diffs.begin(), diffs.end(), [](const auto& f) { return f == "type"; });
    const auto has = [&](const char* f) {
      return std::find(diffs.begin(), diffs.end(), f) != diffs.end();
    };
    for (const auto& f : diffs) {
      if (f == "identity_options" && has("identity")) continue;
      if (f == "default" && has("generated")) continue;
      const auto fix = in_place_or_recreate(e, a, f);
      if (f == "type") {
        DriftItem d = make_item(e.kind, e.display(), "changed", f, e.attr(f), a.attr(f), fix);
        around_dependents(d, e.schema + "." + e.table);
        items_.push_back(std::move(d));
        continue;
      }
      changed(e, f, a, fix);
    }
  }

  void compare_view(const SchemaObject& e, const SchemaObject& a,
                    const std::vector<std::string>& diffs) {
    if (changed_in_place(e, a, diffs)) return;
    DriftItem d = recreated(e, a, diffs);
    around_dependents(d, e.schema + "." + e.name);
    items_.push_back(std::move(d));
  }

  void compare_index(const SchemaObject& e, const SchemaObject& a,
                     const std::vector<std::string>& diffs) {
    if (diffs == std::vector<std::string>{"valid"})
      return items_.push_back(make_item(e.kind, e.display(),
                                        e.attr("valid") == "true" ? "invalid" : "changed", "valid",
                                        e.attr("valid"), a.attr("valid"), recreate(e, a)));
    if (changed_in_place(e, a, diffs)) return;
    items_.push_back(recreated(e, a, diffs));
  }

  void compare_constraint(const SchemaObject& e, const SchemaObject& a,
                          const std::vector<std::string>& diffs) {
    if (changed_in_place(e, a, diffs)) return;
    DriftItem d = recreated(e, a, diffs);
    // Foreign keys that reference a recreated primary or unique key go first, come back after.
    if (a.attr("type") == "primary key" || a.attr("type") == "unique") {
      const auto ref = "REFERENCES " + a.attr("sql_table") + "(";
      for (const auto& fk : actual_.objects) {
        if (fk.kind != "constraint" || fk.attr("type") != "foreign key" ||
            fk.attr("definition").find(ref) == std::string::npos)
          continue;
        d.drop_first.push_back(ddl::drop(fk));
        const auto x = std::find_if(expected_.objects.begin(), expected_.objects.end(),
                                    [&](const SchemaObject& o) { return key_of(o) == key_of(fk); });
        if (x != expected_.objects.end()) d.create_last.push_back(create(*x));
      }
    }
    items_.push_back(std::move(d));
  }

  // One finding: OWNED BY for that field, one ALTER SEQUENCE for all the parameters.
  void compare_sequence(const SchemaObject& e, const SchemaObject& a,
                        const std::vector<std::string>& diffs) {
    std::string fix;
    std::string params;
    for (const auto& f : diffs) {
      if (f == "owned_by")
        fix += ddl::alter(e, a, f).value_or("") + "\n";
      else
        params = ddl::alter(e, a, f).value_or("") + "\n";
    }
    fix += params;
    fix.pop_back();
    changed(e, diffs.front(), a, fix);
  }

  void compare_type(const SchemaObject& e, const SchemaObject& a,
                    const std::vector<std::string>& diffs) {
    if (e.attr("type") != a.attr("type") ||
        std::find(diffs.begin(), diffs.end(), "base_type") != diffs.end())
      return changed(e, diffs.front(), a, recreate(e, a));
    if (e.attr("type") == "enum") return compare_enum(e, a);
    each_field(e, a, diffs);
  }

  // Missing labels are added in place; a label the expected type lacks can only go by
  // rebuilding the type, which converts every column of it: the views reading those tables
  // are dropped first and recreated after.
  void compare_enum(const SchemaObject& e, const SchemaObject& a) {
    DriftItem d = make_item(e.kind, e.display(), "changed", "labels", e.attr("labels"),
                            a.attr("labels"), ddl::enum_labels(e, a, expected_, create(e)));
    if (d.fix.find("RENAME TO") != std::string::npos)
      for (const auto& c : expected_.objects) {
        const auto& t = c.attr("type");
        if (c.kind == "column" && (t == e.schema + "." + e.name || t == e.attr("sql_name")))
          around_dependents(d, c.schema + "." + c.table);
      }
    drop_repeats(d.drop_first);
    drop_repeats(d.create_last);
    items_.push_back(std::move(d));
  }

  // Roles and expressions change in place, with one ALTER POLICY; anything else recreates it.
  void compare_policy(const SchemaObject& e, const SchemaObject& a,
                      const std::vector<std::string>& diffs) {
    for (const auto& f : diffs)
      if (!ddl::alter(e, a, f)) return changed(e, diffs.front(), a, recreate(e, a));
    changed(e, diffs.front(), a, *ddl::alter(e, a, diffs.front()));
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

ExpectedMatcher::ExpectedMatcher(const SchemaDescription& expected) : expected_(expected) {
  index_.reserve(expected.objects.size());
  for (const auto& o : expected.objects) index_.push_back(&o);
  std::stable_sort(index_.begin(), index_.end(), key_less);
  std::size_t out = 0;
  for (std::size_t i = 0; i < index_.size(); ++i)
    if (i + 1 == index_.size() || key_of(*index_[i + 1]) != key_of(*index_[i]))
      index_[out++] = index_[i];
  index_.resize(out);
  matched_.assign(index_.size(), 0);
}

bool ExpectedMatcher::keep(const SchemaObject& live) {
  const auto it = std::lower_bound(index_.begin(), index_.end(), &live, key_less);
  if (it == index_.end() || key_of(**it) != key_of(live) || !(**it == live)) return true;
  auto& m = matched_[static_cast<std::size_t>(it - index_.begin())];
  if (m) return true;
  m = 1;
  return false;
}

void ExpectedMatcher::sweep(SchemaDescription& kept) {
  std::erase_if(kept.objects, [&](const SchemaObject& o) { return !keep(o); });
}

bool ExpectedMatcher::matches_all(const SchemaDescription& kept) const {
  return kept.objects.empty() && kept.unknown_kinds.empty() && expected_.unknown_kinds.empty() &&
         index_.size() == expected_.objects.size() &&
         std::all_of(matched_.begin(), matched_.end(), [](char m) { return m != 0; });
}

void ExpectedMatcher::restore(SchemaDescription& kept) const {
  kept.objects.reserve(kept.objects.size() +
                       static_cast<std::size_t>(std::count(matched_.begin(), matched_.end(), 1)));
  for (std::size_t i = 0; i < index_.size(); ++i)
    if (matched_[i]) kept.objects.push_back(*index_[i]);
  canonicalize(kept);
}

}  // namespace stepwise
