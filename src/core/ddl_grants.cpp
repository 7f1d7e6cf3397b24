// The DDL module's privileges: GRANT / REVOKE on one object, ALTER DEFAULT PRIVILEGES, and the
// privileges a new object gets from the default privileges in place.
#include <fmt/format.h>

#include <map>
#include <set>

#include "ddl_parts.hpp"
#include "stepwise/ddl.hpp"
#include "stepwise/text.hpp"

namespace stepwise::ddl {

using namespace detail;  // NOLINT(google-build-using-namespace): the module's own parts

namespace {

using Acl = std::map<std::string, std::string>;  // grantee -> "PRIV,PRIV*" (or "ALL")

std::string role_sql(const std::string& role) {
  return role.empty() ? std::string("CURRENT_USER") : quote_identifier(role);
}

// The object in GRANT / REVOKE: "TABLE app.t", "FUNCTION app.f(integer)", ...
std::string grant_target(const SchemaObject& o) {
  if (o.kind == "table" || o.kind == "view") return "TABLE " + o.attr("sql_name");
  if (o.kind == "column") return "TABLE " + o.attr("sql_table");
  return keyword(o) + " " + o.attr("sql_name");
}

// The privileges PUBLIC has by default on objects of a kind, or of a default_acl class.
std::string public_default(std::string_view kind_or_class) {
  if (kind_or_class == "function" || kind_or_class == "FUNCTIONS") return "EXECUTE";
  if (kind_or_class == "type" || kind_or_class == "TYPES") return "USAGE";
  return "";
}

// "grantee=PRIV,PRIV* grantee=..." (grantees may be quoted, with spaces) -> grantee -> privs.
Acl parse_acl(const std::string& s) {
  Acl m;
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

// For each grantee whose privileges differ between `want` and `have` (by name, "(owner)" as
// `owner`): revoke(name) when it has some, then grant(name, privileges) when it wants some.
// The statements without the last newline.
template <class Revoke, class Grant>
std::string each_changed_grantee(const Acl& want, const Acl& have, const std::string& owner,
                                 Revoke revoke, Grant grant) {
  std::set<std::string> grantees;
  for (const auto& [g, p] : want) grantees.insert(g);
  for (const auto& [g, p] : have) grantees.insert(g);
  std::string out;
  for (const auto& g : grantees) {
    const auto w = want.find(g);
    const auto h = have.find(g);
    if (w != want.end() && h != have.end() && w->second == h->second) continue;
    const auto name = g == "(owner)" ? owner : g;
    if (h != have.end()) out += revoke(name);
    if (w != want.end()) out += grant(name, w->second);
  }
  if (!out.empty()) out.pop_back();
  return out;
}

// The privileges an object has when none were granted or revoked.
Acl default_acl_of(const SchemaObject& o) {
  if (o.kind == "column") return {};
  Acl m{{"(owner)", "ALL"}};
  if (const auto p = public_default(o.kind); !p.empty()) m["PUBLIC"] = p;
  return m;
}

}  // namespace

namespace detail {

std::string grants_from(const SchemaObject& e, const std::string& have_acl,
                        const std::string& role) {
  const auto want = e.attr("acl").empty() ? default_acl_of(e) : parse_acl(e.attr("acl"));
  const auto have = have_acl.empty() ? default_acl_of(e) : parse_acl(have_acl);
  const auto target = grant_target(e);
  const std::string column = e.kind == "column" ? " (" + e.attr("sql_name") + ")" : "";
  const auto owner = e.attr("sql_owner").empty() ? role_sql(role) : e.attr("sql_owner");
  return each_changed_grantee(
      want, have, owner,
      [&](const std::string& name) {
        return fmt::format("REVOKE ALL{} ON {} FROM {};\n", column, target, name);
      },
      [&](const std::string& name, const std::string& privs) {
        return grant_sql(target, column, name, privs);
      });
}

std::string default_privileges_to(const SchemaObject& e, const std::string& want_acl,
                                  const SchemaObject* a, const std::string& role) {
  const auto who = e.attr("sql_role").empty() ? role_sql(role) : e.attr("sql_role");
  const auto prefix = fmt::format("ALTER DEFAULT PRIVILEGES FOR ROLE {}{}", who,
                                  e.schema.empty() ? "" : " IN SCHEMA " + e.attr("sql_schema"));
  const auto objects = e.attr("objects");
  Acl global_default{{"(owner)", "ALL"}};
  if (const auto p = public_default(objects); !p.empty()) global_default["PUBLIC"] = p;
  const auto base = e.schema.empty() ? global_default : Acl{};
  const auto want = parse_acl(want_acl);
  const auto have = a == nullptr ? base : parse_acl(a->attr("acl"));
  return each_changed_grantee(
      want, have, who,
      [&](const std::string& name) {
        return fmt::format("{} REVOKE ALL ON {} FROM {};\n", prefix, objects, name);
      },
      [&](const std::string& name, const std::string& privs) {
        std::string out;
        for (const auto& line : split(grant_sql(objects, "", name, privs), '\n'))
          out += prefix + " " + line + "\n";
        return out;
      });
}

}  // namespace detail

std::string grants(const SchemaObject& e, const SchemaObject& a, const std::string& role) {
  return grants_from(e, a.attr("acl"), role);
}

std::string default_privileges(const SchemaObject& e, const SchemaObject* a,
                               const std::string& role) {
  return default_privileges_to(e, e.attr("acl"), a, role);
}

std::string initial_acl(const SchemaObject& o, const SchemaDescription& live) {
  std::string objects;
  if (o.kind == "table" || o.kind == "view") objects = "TABLES";
  if (o.kind == "sequence") objects = "SEQUENCES";
  if (o.kind == "function") objects = "FUNCTIONS";
  if (o.kind == "type") objects = "TYPES";
  if (o.kind == "schema") objects = "SCHEMAS";
  if (objects.empty()) return "";
  std::map<std::string, std::set<std::string>> acl;
  acl["(owner)"] = {"ALL"};
  if (const auto p = public_default(objects); !p.empty()) acl["PUBLIC"] = {p};
  bool any = false;
  const auto apply = [&](const SchemaObject& d, bool replace) {
    if (replace) acl.clear();
    for (const auto& item : split_top_level(d.attr("acl"), " ")) {
      if (item == "(none)") continue;
      const auto eq = item.rfind('=');
      for (const auto& p : split_top_level(item.substr(eq + 1), ","))
        acl[item.substr(0, eq)].insert(p);
    }
    any = true;
  };
  for (const auto* pass : {"global", "schema"})
    for (const auto& d : live.objects) {
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

}  // namespace stepwise::ddl
