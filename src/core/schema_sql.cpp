// A description as one SQL script (describe --output sql): the objects' CREATE statements, in
// an order that replays into an empty database. The statements come from the DDL module.
#include <fmt/format.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "stepwise/ddl.hpp"
#include "stepwise/schema.hpp"

namespace stepwise {

std::string to_sql_text(const SchemaDescription& d) {
  // Replayable into an empty database (a role that owns what it creates): function bodies are
  // checked at first call, functions come before the tables whose defaults and checks call
  // them, foreign keys after every key they reference, views after the views they read,
  // indexes of materialized views after them, sequences are tied to their columns once the
  // tables exist, default privileges last (they would change the privileges of what follows).
  std::string out = "SET check_function_bodies = false;\n";
  std::vector<const SchemaObject*> functions, fks, views, view_indexes, owned, default_acls,
      children;
  std::map<std::string, const SchemaObject*> by_view;
  for (const auto& o : d.objects)
    if (o.kind == "view") by_view[o.schema + "." + o.name] = &o;
  const auto emit = [&](const SchemaObject& o) {
    if (o.kind == "schema" && o.name == "public")
      out += std::string("CREATE SCHEMA IF NOT EXISTS public;") +
             ddl::decorations(o, d, d.reference_role);
    else
      out += ddl::create(o, d, d.reference_role);
    if (o.kind == "index" && o.attr("valid") == "false") out += " -- INVALID";
    out += "\n";
  };
  bool functions_done = false;
  for (const auto& o : d.objects)
    if (o.kind == "function") functions.push_back(&o);
  for (const auto& o : d.objects) {
    if (o.kind == "column" || o.kind == "function") continue;  // columns: inside CREATE TABLE
    if (!functions_done && kind_rank(o.kind) >= kind_rank("table")) {
      for (const auto* f : functions) emit(*f);
      functions_done = true;
    }
    if (o.kind == "constraint" && o.attr("type") == "foreign key") {
      fks.push_back(&o);
      continue;
    }
    if (o.kind == "index" && by_view.count(o.schema + "." + o.table)) {
      view_indexes.push_back(&o);
      continue;
    }
    if (o.kind == "view") {
      views.push_back(&o);
      continue;
    }
    if (o.kind == "default_acl") {
      default_acls.push_back(&o);
      continue;
    }
    if (o.kind == "table" && (!o.attr("partition_of").empty() || !o.attr("inherits").empty())) {
      children.push_back(&o);  // after their parents
      continue;
    }
    if (kind_rank(o.kind) > kind_rank("table") && !children.empty()) {
      for (const auto* c : children) emit(*c);
      children.clear();
    }
    if (o.kind == "sequence" && !o.attr("owned_by").empty()) owned.push_back(&o);
    if (kind_rank(o.kind) > kind_rank("view") && !views.empty()) {
      // Views (dependency order) and what hangs on them, before triggers and the rest.
      std::map<std::string, int> depth;
      const std::function<int(const std::string&, int)> depth_of = [&](const std::string& v,
                                                                       int guard) {
        if (depth.count(v)) return depth[v];
        int dd = 0;
        const auto it = by_view.find(v);
        if (it != by_view.end() && guard < 50) {
          std::string deps = it->second->attr("depends_on");
          std::size_t p = 0;
          while (p <= deps.size()) {
            const auto c = deps.find(',', p);
            const auto dep = deps.substr(p, c == std::string::npos ? std::string::npos : c - p);
            if (dep != v && by_view.count(dep)) dd = std::max(dd, 1 + depth_of(dep, guard + 1));
            if (c == std::string::npos) break;
            p = c + 1;
          }
        }
        return depth[v] = dd;
      };
      std::stable_sort(views.begin(), views.end(), [&](const auto* x, const auto* y) {
        return depth_of(x->schema + "." + x->name, 0) < depth_of(y->schema + "." + y->name, 0);
      });
      for (const auto* v : views) emit(*v);
      for (const auto* i : view_indexes) emit(*i);
      views.clear();
      view_indexes.clear();
    }
    if (kind_rank(o.kind) > kind_rank("constraint") && !fks.empty()) {
      for (const auto* fk : fks) emit(*fk);
      fks.clear();
    }
    if (kind_rank(o.kind) > kind_rank("table") && !owned.empty()) {
      for (const auto* q : owned) {
        if (q->attr("sql_name").empty()) continue;
        out += ddl::sequence_owned_by(*q) + "\n";
      }
      owned.clear();
    }
    emit(o);
  }
  if (!functions_done)
    for (const auto* f : functions) emit(*f);
  for (const auto* c : children) emit(*c);
  for (const auto* fk : fks) emit(*fk);
  for (const auto* v : views) emit(*v);
  for (const auto* i : view_indexes) emit(*i);
  for (const auto* a : default_acls) emit(*a);
  for (const auto& k : d.unknown_kinds)
    out += fmt::format("-- {}: not reported by this server\n", k);
  return out;
}

}  // namespace stepwise
