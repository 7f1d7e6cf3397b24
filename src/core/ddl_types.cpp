// The DDL module's types: enums, domains, composite types, sequences and collations (CREATE
// and the in-place ALTERs, an enum's labels included).
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "ddl_parts.hpp"
#include "stepwise/ddl.hpp"
#include "stepwise/text.hpp"

namespace stepwise::ddl {

using namespace detail;  // NOLINT(google-build-using-namespace): the module's own parts

namespace {

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

// ALTER DOMAIN ... DROP / ADD CONSTRAINT turning the constraints `have_s` into `want_s`.
std::string domain_constraints(const std::string& n, const std::string& want_s,
                               const std::string& have_s) {
  const auto want = split_top_level(want_s, " CONSTRAINT ");
  const auto have = split_top_level(have_s, " CONSTRAINT ");
  std::string fix;
  for (const auto& c : have)
    if (std::find(want.begin(), want.end(), c) == want.end()) {
      const auto name = c.substr(11, c.find(' ', 11) - 11);  // after "CONSTRAINT "
      fix += fmt::format("ALTER DOMAIN {} DROP CONSTRAINT {};\n", n, name);
    }
  for (const auto& c : want)
    if (std::find(have.begin(), have.end(), c) == have.end())
      fix += fmt::format("ALTER DOMAIN {} ADD {};\n", n, c);
  if (!fix.empty()) fix.pop_back();
  return fix;
}

// ALTER TYPE ... DROP / ALTER / ADD ATTRIBUTE turning the attributes `have_s` into `want_s`.
std::string composite_attributes(const std::string& n, const std::string& want_s,
                                 const std::string& have_s) {
  const auto want = split_top_level(want_s, ",");
  const auto have = split_top_level(have_s, ",");
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
  return fmt::format("ALTER TYPE {} {};", n, fmt::join(clauses, ", "));
}

}  // namespace

std::string sequence_owned_by(const SchemaObject& s) {
  const auto& owned_by = s.attr("owned_by");  // schema.table.column
  return fmt::format("ALTER SEQUENCE {} OWNED BY {};", s.attr("sql_name"),
                     owned_by.empty() ? "NONE" : quote_dotted(owned_by));
}

std::string enum_labels(const SchemaObject& e, const SchemaObject& a,
                        const SchemaDescription& expected, const std::string& create_text) {
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
  // A label the expected type lacks can only go by rebuilding the type (PostgreSQL cannot drop
  // a label).
  const auto& type = e.attr("sql_name");
  const auto old_name = quote_identifier(e.name + "__stepwise_old");
  std::vector<const SchemaObject*> columns;
  for (const auto& c : expected.objects) {
    const auto& t = c.attr("type");
    if (c.kind == "column" && (t == e.name || t == type || t == e.schema + "." + e.name))
      columns.push_back(&c);
  }
  std::string fix = fmt::format(
      "-- rows holding a label the expected type lacks must be changed first\n"
      "ALTER TYPE {} RENAME TO {};\n{}\n",
      type, old_name, create_text);
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

namespace detail {

// --- type

std::string create_type(const SchemaObject& o, const SchemaDescription&) {
  if (o.attr("type") == "enum")
    return fmt::format("CREATE TYPE {} AS ENUM ({});", o.attr("sql_name"), o.attr("labels"));
  if (o.attr("type") == "domain")
    return fmt::format("CREATE DOMAIN {} AS {}{}{}{};", o.attr("sql_name"), o.attr("base_type"),
                       o.attr("default").empty() ? "" : " DEFAULT " + o.attr("default"),
                       o.attr("not_null") == "true" ? " NOT NULL" : "",
                       o.attr("constraints").empty() ? "" : " " + o.attr("constraints"));
  return fmt::format("CREATE TYPE {} AS ({});", o.attr("sql_name"), o.attr("attributes"));
}

// A domain's default, NOT NULL and constraints, a composite type's attributes. An enum's labels
// need the columns of the type: enum_labels().
std::optional<std::string> alter_type(const SchemaObject& e, const SchemaObject& a,
                                      const Field& f) {
  const auto& n = e.attr("sql_name");
  if (e.attr("type") != a.attr("type")) return std::nullopt;
  if (f == "default")
    return e.attr(f).empty() ? fmt::format("ALTER DOMAIN {} DROP DEFAULT;", n)
                             : fmt::format("ALTER DOMAIN {} SET DEFAULT {};", n, e.attr(f));
  if (f == "not_null")
    return fmt::format("ALTER DOMAIN {} {} NOT NULL;", n, e.attr(f) == "true" ? "SET" : "DROP");
  if (f == "constraints") return domain_constraints(n, e.attr(f), a.attr(f));
  if (f == "attributes") return composite_attributes(n, e.attr(f), a.attr(f));
  return std::nullopt;
}

// --- sequence

std::string create_sequence(const SchemaObject& o, const SchemaDescription&) {
  return fmt::format(
      "CREATE SEQUENCE {} AS {} INCREMENT {} MINVALUE {} MAXVALUE {} START {} CACHE {}{};",
      o.attr("sql_name"), o.attr("type"), o.attr("increment"), o.attr("min"), o.attr("max"),
      o.attr("start"), o.attr("cache"), o.attr("cycle") == "true" ? " CYCLE" : "");
}

// OWNED BY, or every parameter at once (whichever of them differs).
std::optional<std::string> alter_sequence(const SchemaObject& e, const SchemaObject&,
                                          const Field& f) {
  if (f == "owned_by") return sequence_owned_by(e);
  return fmt::format(
      "ALTER SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} "
      "{};",
      e.attr("sql_name"), e.attr("type"), e.attr("increment"), e.attr("min"), e.attr("max"),
      e.attr("start"), e.attr("cache"), e.attr("cycle") == "true" ? "CYCLE" : "NO CYCLE");
}

// --- collation (nothing changes in place)

std::string create_collation(const SchemaObject& o, const SchemaDescription&) {
  std::vector<std::string> opts{"provider = " + o.attr("provider")};
  if (!o.attr("locale").empty()) opts.push_back("locale = " + literal(o.attr("locale")));
  if (o.attr("locale").empty() || o.attr("provider") == "libc") {
    if (!o.attr("lc_collate").empty() && o.attr("locale").empty())
      opts.push_back("lc_collate = " + literal(o.attr("lc_collate")));
    if (!o.attr("lc_ctype").empty() && o.attr("locale").empty())
      opts.push_back("lc_ctype = " + literal(o.attr("lc_ctype")));
  }
  if (!o.attr("icu_rules").empty()) opts.push_back("rules = " + literal(o.attr("icu_rules")));
  if (o.attr("deterministic") == "false") opts.push_back("deterministic = false");
  return fmt::format("CREATE COLLATION {} ({});", o.attr("sql_name"), fmt::join(opts, ", "));
}

}  // namespace detail

}  // namespace stepwise::ddl
