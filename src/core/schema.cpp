#include "stepwise/schema.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "stepwise/errors.hpp"
#include "stepwise/ddl.hpp"

namespace stepwise {

int kind_rank(std::string_view kind) {
  for (std::size_t i = 0; i < std::size(kObjectKinds); ++i)
    if (kObjectKinds[i] == kind) return static_cast<int>(i);
  return static_cast<int>(std::size(kObjectKinds));
}

namespace {

std::string collapse_spaces(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += c;
    }
  }
  return out;
}
}  // namespace

std::string SchemaObject::display() const {
  if (kind == "schema" || kind == "extension" || schema.empty()) return name;
  if (!table.empty()) return fmt::format("{}.{}.{}", schema, table, name);
  return fmt::format("{}.{}", schema, name);
}

std::string SchemaObject::attr(const std::string& key) const {
  const auto it = attrs.find(key);
  return it == attrs.end() ? std::string() : it->second;
}

void canonicalize(SchemaDescription& d) {
  for (auto& o : d.objects) {
    std::erase_if(o.attrs, [](const auto& kv) { return kv.second.empty(); });
    if (o.kind == "view" && o.attrs.count("definition"))
      o.attrs["definition"] = collapse_spaces(o.attrs["definition"]);
  }
  // Ranks computed once and names compared in place: a schema of 10,000 tables has some
  // 80,000 objects, and copying four strings per comparison dominated validate's client time.
  std::vector<std::pair<int, std::size_t>> order;
  order.reserve(d.objects.size());
  for (std::size_t i = 0; i < d.objects.size(); ++i)
    order.emplace_back(kind_rank(d.objects[i].kind), i);
  std::sort(order.begin(), order.end(), [&](const auto& x, const auto& y) {
    if (x.first != y.first) return x.first < y.first;
    const auto& a = d.objects[x.second];
    const auto& b = d.objects[y.second];
    return std::tie(a.schema, a.table, a.name) < std::tie(b.schema, b.table, b.name);
  });
  std::vector<SchemaObject> sorted;
  sorted.reserve(d.objects.size());
  for (const auto& [rank, i] : order) sorted.push_back(std::move(d.objects[i]));
  d.objects = std::move(sorted);
  std::sort(d.unknown_kinds.begin(), d.unknown_kinds.end());
}

std::string to_json(const SchemaDescription& d) {
  // nlohmann's default object type is a std::map: keys come out sorted.
  nlohmann::json objects = nlohmann::json::array();
  for (const auto& o : d.objects) {
    nlohmann::json j = {{"kind", o.kind}, {"schema", o.schema}, {"name", o.name}};
    if (!o.table.empty()) j["table"] = o.table;
    nlohmann::json attrs = nlohmann::json::object();
    for (const auto& [k, v] : o.attrs) attrs[k] = v;
    j["attrs"] = std::move(attrs);
    objects.push_back(std::move(j));
  }
  nlohmann::json doc = {{"format", 1}, {"objects", std::move(objects)}};
  if (!d.unknown_kinds.empty()) doc["unknown_kinds"] = d.unknown_kinds;
  return doc.dump(1) + "\n";
}

SchemaDescription parse_schema_json(std::string_view text, std::string_view origin) {
  SchemaDescription d;
  try {
    const auto doc = nlohmann::json::parse(text.begin(), text.end());
    if (!doc.is_object() || doc.value("format", 0) != 1 || !doc.contains("objects") ||
        !doc["objects"].is_array())
      throw SourceError(fmt::format("{}: not a stepwise schema description (format 1)", origin));
    for (const auto& j : doc["objects"]) {
      SchemaObject o;
      o.kind = j.at("kind").get<std::string>();
      o.schema = j.at("schema").get<std::string>();
      o.name = j.at("name").get<std::string>();
      if (j.contains("table")) o.table = j["table"].get<std::string>();
      for (const auto& [k, v] : j.at("attrs").items()) o.attrs[k] = v.get<std::string>();
      d.objects.push_back(std::move(o));
    }
    if (doc.contains("unknown_kinds"))
      d.unknown_kinds = doc["unknown_kinds"].get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw SourceError(fmt::format("{}: invalid schema description: {}", origin, e.what()));
  }
  canonicalize(d);
  return d;
}

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
             decorations_sql(o, d, d.reference_role);
    else
      out += create_sql(o, d, d.reference_role);
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
        const auto& ob = q->attr("owned_by");
        // schema.table.column -> quoted
        std::string quoted;
        std::string part;
        for (char ch : ob + ".") {
          if (ch == '.') {
            quoted += (quoted.empty() ? "" : ".") + quote_identifier(part);
            part.clear();
          } else {
            part += ch;
          }
        }
        if (q->attr("sql_name").empty()) continue;
        out += fmt::format("ALTER SEQUENCE {} OWNED BY {};\n", q->attr("sql_name"), quoted);
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
