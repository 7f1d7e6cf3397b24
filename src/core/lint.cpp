// The lint behind `stepwise check`: libpg_query's parse tree (JSON) of every statement, a
// catalog of what the set itself creates, and one function per statement kind.
#include "stepwise/lint.hpp"

#include <fmt/format.h>
#include <pg_query.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>

#include "stepwise/errors.hpp"
#include "stepwise/schema.hpp"
#include "stepwise/sql_split.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

using nlohmann::json;

std::string_view to_string(Severity s) {
  return s == Severity::kError ? "error" : "warning";
}

const std::vector<LintRule>& lint_rules() {
  static const std::vector<LintRule> rules = {
      {"syntax-error", Severity::kError,
       "the statement does not parse with PostgreSQL 15's grammar"},
      {"index-not-concurrent", Severity::kError,
       "CREATE INDEX without CONCURRENTLY on an existing table blocks its writes while it builds"},
      {"drop-index-not-concurrent", Severity::kError,
       "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's table"},
      {"constraint-not-valid", Severity::kError,
       "FOREIGN KEY or CHECK without NOT VALID on an existing table scans it under a lock"},
      {"volatile-default", Severity::kError,
       "ADD COLUMN with a volatile default (or serial, identity, stored generated) rewrites the "
       "table"},
      {"set-not-null", Severity::kError,
       "SET NOT NULL without a validated CHECK (col IS NOT NULL) scans the table under ACCESS "
       "EXCLUSIVE"},
      {"type-change-rewrite", Severity::kError,
       "ALTER COLUMN TYPE that is not binary coercible rewrites the table and its indexes"},
      {"unique-without-index", Severity::kError,
       "ADD PRIMARY KEY / UNIQUE / EXCLUDE without USING INDEX builds the index under ACCESS "
       "EXCLUSIVE"},
      {"concurrent-in-transaction", Severity::kError,
       "CONCURRENTLY (and VACUUM) cannot run in a transactional step: mark the file "
       "-- stepwise:no-transaction"},
      {"vacuum-full-cluster", Severity::kError,
       "VACUUM FULL and CLUSTER rewrite the table under ACCESS EXCLUSIVE"},
      {"truncate-cascade", Severity::kError,
       "TRUNCATE ... CASCADE also empties every table that references it"},
      {"identifier-too-long", Severity::kError,
       "an identifier over 63 bytes is silently truncated by PostgreSQL"},
      {"compat-drop", Severity::kError,
       "DROP or RENAME of a table or column that an older release still inside its compatibility "
       "range reads"},
      {"measured-rewrite", Severity::kError,
       "measured on a scratch database: a statement rewrote a pre-existing table"},
      {"measured-lock", Severity::kWarning,
       "measured on a scratch database: a statement takes ACCESS EXCLUSIVE on a pre-existing "
       "table"},
      {"irreversible", Severity::kWarning,
       "the migration has no down file (an error with check --require-down)"},
      {"bad-suppression", Severity::kError,
       "a -- stepwise:allow comment without a reason or naming an unknown rule"},
      {"unused-suppression", Severity::kWarning, "a -- stepwise:allow comment suppresses nothing"},
  };
  return rules;
}

std::string format_finding(const CheckFinding& f) {
  return fmt::format("{}:{}:{}: {} {}: {}", f.file, f.line, f.col, to_string(f.severity), f.rule,
                     f.message);
}

namespace {

const LintRule* find_rule(std::string_view name) {
  for (const auto& r : lint_rules())
    if (r.name == name) return &r;
  return nullptr;
}

// "RULE[,RULE] because REASON": what follows `-- stepwise:allow` in a file, and a file name in
// check-allow.txt. Rules lowered; the reason empty when there is no " because".
struct AllowClause {
  std::vector<std::string> rules;
  std::string reason;
};

AllowClause parse_allow_clause(std::string_view text) {
  const auto rest = std::string(trim(text));
  const auto because = to_lower_ascii(rest).find(" because");
  AllowClause c;
  if (because != std::string::npos) c.reason = std::string(trim(rest.substr(because + 8)));
  std::string cur;
  for (char ch : rest.substr(0, because) + ",") {
    if (ch == ',' || ch == ' ' || ch == '\t') {
      if (!cur.empty()) c.rules.push_back(to_lower_ascii(cur));
      cur.clear();
    } else {
      cur += ch;
    }
  }
  return c;
}

// A rule a suppression may name: a known one, and not one about suppressions themselves.
bool suppressible(std::string_view rule) {
  return find_rule(rule) != nullptr && rule != "bad-suppression" && rule != "unused-suppression";
}

// ---- the catalog the set builds ---------------------------------------------------------

struct TableInfo {
  Version created;                            // the version whose file created it
  std::map<std::string, std::string> types;   // column -> type as "name(mods)"
  std::map<std::string, std::string> checks;  // not-null CHECK constraint name -> column
  std::set<std::string> not_null_proven;      // columns with a validated CHECK (c IS NOT NULL)
};

struct Catalog {
  std::map<std::string, TableInfo> tables;  // "schema.table"
  std::map<std::string, Version> indexes;   // "schema.index" -> version that created it
};

std::string qualified(const json& range_var) {
  const auto schema = range_var.value("schemaname", std::string("public"));
  return schema + "." + range_var.value("relname", std::string());
}

// "varchar(20)", "numeric(10,2)", "int8": the last name part and the type modifiers.
std::string type_text(const json& type_name) {
  std::string out;
  if (const auto it = type_name.find("names"); it != type_name.end() && !it->empty())
    out = it->back().value("/String/sval"_json_pointer, std::string());
  if (const auto it = type_name.find("typmods"); it != type_name.end()) {
    std::vector<std::string> mods;
    for (const auto& m : *it) {
      const auto p = "/A_Const/ival/ival"_json_pointer;
      mods.push_back(m.contains(p) ? std::to_string(m.at(p).get<long long>()) : "?");
    }
    out += "(" + fmt::format("{}", fmt::join(mods, ",")) + ")";
  }
  if (type_name.contains("arrayBounds")) out += "[]";
  return out;
}

// Splits "varchar(20)" into ("varchar", {20}).
std::pair<std::string, std::vector<long long>> split_type(const std::string& t) {
  const auto open = t.find('(');
  if (open == std::string::npos) return {t, {}};
  std::vector<long long> mods;
  std::string cur;
  for (std::size_t i = open + 1; i < t.size(); ++i) {
    if (t[i] == ',' || t[i] == ')') {
      try {
        mods.push_back(std::stoll(cur));
      } catch (...) {
        mods.push_back(-1);
      }
      cur.clear();
    } else {
      cur += t[i];
    }
  }
  return {t.substr(0, open), mods};
}

// True when changing a column from `from` to `to` needs no rewrite (binary coercible, no
// tighter modifier).
bool type_change_is_free(const std::string& from, const std::string& to) {
  if (from == to) return true;
  const auto [fb, fm] = split_type(from);
  const auto [tb, tm] = split_type(to);
  const auto texty = [](const std::string& b) { return b == "varchar" || b == "text"; };
  if (texty(fb) && tb == "text") return true;
  if (texty(fb) && tb == "varchar")
    return tm.empty() || (fb == "varchar" && fm.size() == 1 && tm.size() == 1 && tm[0] >= fm[0]);
  if (fb == "numeric" && tb == "numeric") {
    if (tm.empty()) return true;
    if (fm.empty()) return false;
    const auto fscale = fm.size() > 1 ? fm[1] : 0;
    const auto tscale = tm.size() > 1 ? tm[1] : 0;
    return tm[0] >= fm[0] && tscale == fscale;
  }
  if ((fb == "varbit" && tb == "varbit") || (fb == "bit" && tb == "varbit"))
    return tm.empty() || (fm.size() == 1 && tm.size() == 1 && tm[0] >= fm[0]);
  return false;
}

// Volatility of a DEFAULT expression: functions known volatile, known not, or unknown.
enum class Volatility { kStable, kUnknown, kVolatile };

Volatility volatility(const json& node, std::string* culprit) {
  static const std::set<std::string> kVolatile = {
      "random",           "gen_random_uuid",    "uuid_generate_v1", "uuid_generate_v1mc",
      "uuid_generate_v4", "clock_timestamp",    "timeofday",        "nextval",
      "txid_current",     "pg_current_xact_id", "setseed",          "random_normal"};
  static const std::set<std::string> kStable = {"now",
                                                "statement_timestamp",
                                                "transaction_timestamp",
                                                "current_setting",
                                                "lower",
                                                "upper",
                                                "length",
                                                "concat",
                                                "md5",
                                                "to_char",
                                                "to_timestamp",
                                                "to_date",
                                                "make_date",
                                                "make_interval",
                                                "date_trunc",
                                                "jsonb_build_object",
                                                "json_build_object",
                                                "jsonb_build_array",
                                                "json_build_array",
                                                "array_fill",
                                                "timezone",
                                                "btrim",
                                                "trim",
                                                "replace",
                                                "substring",
                                                "abs",
                                                "round",
                                                "floor",
                                                "ceil",
                                                "coalesce",
                                                "nullif",
                                                "uuid_nil",
                                                "int4",
                                                "int8",
                                                "text"};
  Volatility v = Volatility::kStable;
  if (node.is_object()) {
    if (const auto it = node.find("FuncCall"); it != node.end()) {
      std::string name;
      if (const auto n = it->find("funcname"); n != it->end() && !n->empty())
        name = n->back().value("/String/sval"_json_pointer, std::string());
      if (kVolatile.contains(name)) {
        *culprit = name + "()";
        return Volatility::kVolatile;
      }
      if (!kStable.contains(name)) {
        v = Volatility::kUnknown;
        *culprit = name + "()";
      }
    }
    for (const auto& [key, child] : node.items()) {
      std::string inner;
      const auto cv = volatility(child, &inner);
      if (cv > v) {
        v = cv;
        *culprit = inner;
      }
      if (v == Volatility::kVolatile) return v;
    }
  } else if (node.is_array()) {
    for (const auto& child : node) {
      std::string inner;
      const auto cv = volatility(child, &inner);
      if (cv > v) {
        v = cv;
        *culprit = inner;
      }
      if (v == Volatility::kVolatile) return v;
    }
  }
  return v;
}

// The column of a CHECK (col IS NOT NULL) expression, if it is one.
std::optional<std::string> not_null_check_column(const json& expr) {
  const auto it = expr.find("NullTest");
  if (it == expr.end() || it->value("nulltesttype", std::string()) != "IS_NOT_NULL")
    return std::nullopt;
  const auto p = "/arg/ColumnRef/fields"_json_pointer;
  if (!it->contains(p) || it->at(p).size() != 1) return std::nullopt;
  const auto& f = it->at(p).front();
  if (!f.contains("String")) return std::nullopt;
  return f.at("String").value("sval", std::string());
}

// Older releases whose code still runs at later schema versions, and what their schema had.
struct Compat {
  struct Entry {
    const Release* release;
    Version upper;                  // the newest schema version its code runs against
    const Release* upper_release;   // the release whose schema that is
    std::set<std::string> objects;  // "table:public.t", "column:public.t.c"
  };
  std::vector<Entry> entries;
};

Compat build_compat(const Releases& releases, const std::map<Version, std::string>& expected) {
  Compat c;
  const auto& all = releases.all();
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto it = expected.find(all[i].schema);
    if (it == expected.end()) continue;
    Compat::Entry e{&all[i], all[i].schema, &all[i], {}};
    for (std::size_t k = i + 1; k < all.size(); ++k)
      if (all[k].min_schema <= all[i].schema) {
        e.upper = all[k].schema;
        e.upper_release = &all[k];
      }
    if (e.upper == all[i].schema) continue;  // no later schema runs its code
    try {
      for (const auto& o : parse_schema_json(it->second, "expected").objects) {
        if (o.kind == "table") e.objects.insert("table:" + o.schema + "." + o.name);
        if (o.kind == "column")
          e.objects.insert("column:" + o.schema + "." + o.table + "." + o.name);
      }
    } catch (const Error&) {
      continue;
    }
    c.entries.push_back(std::move(e));
  }
  return c;
}

// ---- one file -----------------------------------------------------------------------------

struct Suppression {
  std::vector<std::string> rules;
  std::size_t offset = 0;  // where the comment line starts in the file
  bool used = false;
};

class FileLinter {
 public:
  FileLinter(const Script& script, const Version& version, Catalog& catalog,
             const std::vector<Version>& boundaries, std::vector<CheckFinding>& out,
             const Compat* compat = nullptr)
      : script_(script),
        version_(version),
        catalog_(catalog),
        boundaries_(boundaries),
        out_(out),
        compat_(compat) {}

  void run() {
    auto sql = script_.sql;
    std::size_t prev_end = 0;
    if (sql.starts_with("\xEF\xBB\xBF")) prev_end = 3;
    const auto statements = split_sql(sql.substr(prev_end));
    for (const auto& st : statements) {
      const auto begin = static_cast<std::size_t>(st.text.data() - sql.data());
      const auto end = begin + st.text.size();
      const auto first = first_token(begin, end);
      auto suppressions = read_suppressions(prev_end, first);
      std::vector<CheckFinding> found;
      current_ = &found;
      stmt_begin_ = begin;
      stmt_first_ = first;
      lint_statement(st.text);
      current_ = nullptr;
      for (auto& f : found) {
        bool suppressed = false;
        for (auto& s : suppressions) {
          if (std::find(s.rules.begin(), s.rules.end(), f.rule) != s.rules.end()) {
            s.used = true;
            suppressed = true;
          }
        }
        if (!suppressed) out_.push_back(std::move(f));
      }
      for (const auto& s : suppressions)
        if (!s.used && !only_measured(s))
          out_.push_back(make(s.offset, "unused-suppression",
                              fmt::format("-- stepwise:allow {} suppresses nothing in the "
                                          "statement that follows it",
                                          fmt::join(s.rules, ","))));
      prev_end = end;
    }
    // A suppression after the last statement applies to nothing.
    for (const auto& s : read_suppressions(prev_end, sql.size()))
      out_.push_back(make(s.offset, "unused-suppression",
                          fmt::format("-- stepwise:allow {} is not followed by a statement",
                                      fmt::join(s.rules, ","))));
  }

 public:
  // Whether a `-- stepwise:allow` before the statement starting at `line` names `rule`.
  bool allows(int line, std::string_view rule) {
    auto sql = script_.sql;
    std::size_t prev_end = sql.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    for (const auto& st : split_sql(sql.substr(prev_end))) {
      const auto begin = static_cast<std::size_t>(st.text.data() - sql.data());
      const auto end = begin + st.text.size();
      if (st.token_line == line) {
        for (const auto& s : read_suppressions(prev_end, first_token(begin, end)))
          if (std::find(s.rules.begin(), s.rules.end(), rule) != s.rules.end()) return true;
        return false;
      }
      prev_end = end;
    }
    return false;
  }

 private:
  // Suppressions of the rules measured on a database are judged there, not here.
  static bool only_measured(const Suppression& s) {
    return std::all_of(s.rules.begin(), s.rules.end(),
                       [](const std::string& r) { return r.starts_with("measured-"); });
  }

  // ---- positions and findings
  std::size_t first_token(std::size_t begin, std::size_t end) const {
    const auto sql = script_.sql;
    std::size_t i = begin;
    while (i < end) {
      if (std::isspace(static_cast<unsigned char>(sql[i]))) {
        ++i;
      } else if (sql.substr(i, 2) == "--") {
        const auto nl = sql.find('\n', i);
        i = nl == std::string_view::npos ? end : nl + 1;
      } else if (sql.substr(i, 2) == "/*") {
        const auto close = sql.find("*/", i + 2);
        i = close == std::string_view::npos ? end : close + 2;
      } else {
        break;
      }
    }
    return std::min(i, end);
  }

  CheckFinding make(std::size_t offset, std::string_view rule, std::string message,
                    std::optional<Severity> severity = std::nullopt) const {
    const auto sql = script_.sql;
    offset = std::min(offset, sql.size());
    CheckFinding f;
    f.file = std::string(script_.file);
    int line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset; ++i)
      if (sql[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    int col = 1;
    for (std::size_t i = line_start; i < offset; ++i)
      if ((static_cast<unsigned char>(sql[i]) & 0xC0) != 0x80) ++col;
    f.line = line;
    f.col = col;
    const auto* r = find_rule(rule);
    f.severity = severity ? *severity : (r ? r->severity : Severity::kError);
    f.rule = std::string(rule);
    f.message = std::move(message);
    return f;
  }

  // A finding at a node's "location" (relative to the statement text), else the statement.
  void report(const json* node, std::string_view rule, std::string message,
              std::optional<Severity> severity = std::nullopt) {
    std::size_t at = stmt_first_;
    if (node != nullptr && node->is_object()) {
      const auto loc = node->find("location");
      if (loc != node->end() && loc->is_number_integer() && loc->get<long long>() >= 0)
        at = stmt_begin_ + static_cast<std::size_t>(loc->get<long long>());
    }
    current_->push_back(make(at, rule, std::move(message), severity));
  }

  std::vector<Suppression> read_suppressions(std::size_t from, std::size_t to) {
    std::vector<Suppression> found;
    const auto region = script_.sql.substr(from, to - from);
    std::size_t pos = 0;
    while (pos < region.size()) {
      auto nl = region.find('\n', pos);
      if (nl == std::string_view::npos) nl = region.size();
      const auto raw = region.substr(pos, nl - pos);
      const auto indent = raw.find_first_not_of(" \t");
      const auto offset = from + pos + (indent == std::string_view::npos ? 0 : indent);
      pos = nl + 1;
      auto line = trim(raw);
      if (!line.starts_with("--")) continue;
      auto body = trim(line.substr(2));
      constexpr std::string_view kPrefix = "stepwise:allow";
      if (to_lower_ascii(body.substr(0, kPrefix.size())) != kPrefix) continue;
      auto clause = parse_allow_clause(body.substr(kPrefix.size()));
      const auto& reason = clause.reason;
      Suppression s;
      s.offset = offset;
      s.rules = std::move(clause.rules);
      if (s.rules.empty()) {
        out_.push_back(make(offset, "bad-suppression",
                            "-- stepwise:allow names no rule: write -- stepwise:allow RULE because "
                            "REASON"));
        continue;
      }
      if (reason.empty()) {
        out_.push_back(make(offset, "bad-suppression",
                            fmt::format("-- stepwise:allow {} gives no reason: write -- "
                                        "stepwise:allow {} because REASON",
                                        fmt::join(s.rules, ","), fmt::join(s.rules, ","))));
        continue;
      }
      bool known = true;
      for (const auto& r : s.rules) {
        if (!suppressible(r)) {
          out_.push_back(
              make(offset, "bad-suppression",
                   fmt::format("-- stepwise:allow names an unknown rule {}", printable(r, 60))));
          known = false;
        }
      }
      if (known) found.push_back(std::move(s));
    }
    return found;
  }

  // ---- catalog questions
  [[nodiscard]] std::size_t batch(const Version& v) const {
    return static_cast<std::size_t>(std::count_if(boundaries_.begin(), boundaries_.end(),
                                                  [&](const Version& b) { return b < v; }));
  }
  [[nodiscard]] bool is_new(const Version& created) const {
    return batch(created) == batch(version_);
  }
  [[nodiscard]] TableInfo* table(const std::string& name) {
    const auto it = catalog_.tables.find(name);
    return it == catalog_.tables.end() ? nullptr : &it->second;
  }
  [[nodiscard]] bool table_is_new(const std::string& name) {
    const auto* t = table(name);
    return t != nullptr && is_new(t->created);
  }

  // DROP / RENAME of `kind` ("table", "column") `name` while an older release reads it.
  void compat_check(const json* at, std::string_view what, const std::string& kind,
                    const std::string& name) {
    if (compat_ == nullptr) return;
    for (const auto& e : compat_->entries) {
      if (!(e.release->schema < version_) || e.upper < version_) continue;
      if (!e.objects.contains(kind + ":" + name)) continue;
      report(at, "compat-drop",
             fmt::format("{} {} {}: release {} has it and its code still runs against this schema "
                         "version (release {}'s min_schema {} admits {}'s schema {}); drop it in a "
                         "release after the range has moved on",
                         what, kind, name, e.release->name, e.upper_release->name,
                         e.upper_release->min_schema, e.release->name, e.release->schema));
      return;
    }
  }

  // ---- statements
  void lint_statement(std::string_view text) {
    check_identifiers(text);
    const std::string sql(text);
    PgQueryParseResult result = pg_query_parse(sql.c_str());
    if (result.error != nullptr) {
      const auto pos = result.error->cursorpos > 0
                           ? stmt_begin_ + static_cast<std::size_t>(result.error->cursorpos - 1)
                           : stmt_first_;
      current_->push_back(make(pos, "syntax-error",
                               fmt::format("PostgreSQL 15 cannot parse this statement: {}",
                                           one_line(result.error->message, 200))));
      pg_query_free_parse_result(result);
      return;
    }
    json tree;
    try {
      tree = json::parse(result.parse_tree);
    } catch (const json::exception&) {
      pg_query_free_parse_result(result);
      return;
    }
    pg_query_free_parse_result(result);
    for (const auto& s : tree.value("stmts", json::array())) {
      const auto& stmt = s.value("stmt", json::object());
      if (stmt.empty()) continue;
      // Not `*stmt.items().begin()`: that dereference yields the proxy itself, a temporary.
      const auto first = stmt.begin();
      dispatch(first.key(), first.value());
    }
  }

  void dispatch(const std::string& kind, const json& node) {
    if (kind == "CreateStmt") return create_table(node);
    if (kind == "CreateTableAsStmt") {
      if (node.contains("/into/rel"_json_pointer))
        add_table(qualified(node.at("/into/rel"_json_pointer)));
      return;
    }
    if (kind == "SelectStmt") {
      if (node.contains("/intoClause/rel"_json_pointer))
        add_table(qualified(node.at("/intoClause/rel"_json_pointer)));
      return;
    }
    if (kind == "IndexStmt") return create_index(node);
    if (kind == "DropStmt") return drop(node);
    if (kind == "RenameStmt") return rename(node);
    if (kind == "AlterTableStmt") return alter_table(node);
    if (kind == "ReindexStmt") {
      const auto rel = node.value("relation", json::object());
      for (const auto& p : node.value("params", json::array()))
        if (p.value("/DefElem/defname"_json_pointer, std::string()) == "concurrently")
          in_transaction_check(&rel, "REINDEX CONCURRENTLY");
      return;
    }
    if (kind == "VacuumStmt") return vacuum(node);
    if (kind == "ClusterStmt") {
      const auto rel = node.value("relation", json::object());
      if (rel.empty() || !table_is_new(qualified(rel)))
        report(&rel, "vacuum-full-cluster",
               rel.empty() ? "CLUSTER rewrites every clustered table under ACCESS EXCLUSIVE"
                           : fmt::format("CLUSTER {} rewrites the table under ACCESS EXCLUSIVE, "
                                         "blocking reads and writes",
                                         qualified(rel)));
      return;
    }
    if (kind == "TruncateStmt") {
      if (node.value("behavior", std::string()) == "DROP_CASCADE") {
        const auto rels = node.value("relations", json::array());
        const json* first = rels.empty() ? nullptr : &rels.front()["RangeVar"];
        report(first, "truncate-cascade",
               "TRUNCATE ... CASCADE also empties every table with a foreign key to these, "
               "however far the references chain; truncate the tables by name");
      }
      return;
    }
  }

  void add_table(const std::string& name) {
    TableInfo t;
    t.created = version_;
    catalog_.tables[name] = std::move(t);
  }

  void create_table(const json& node) {
    const auto name = qualified(node.value("relation", json::object()));
    add_table(name);
    auto& t = catalog_.tables[name];
    for (const auto& e : node.value("tableElts", json::array())) {
      if (const auto it = e.find("ColumnDef"); it != e.end())
        t.types[it->value("colname", std::string())] =
            type_text(it->value("typeName", json::object()));
    }
  }

  void in_transaction_check(const json* at, std::string_view what) {
    if (script_.tx != TxMode::kTransaction) return;
    report(at, "concurrent-in-transaction",
           fmt::format("{} cannot run inside a transaction block, and this file runs in one: "
                       "mark it -- stepwise:no-transaction (one statement per file is safest)",
                       what));
  }

  void create_index(const json& node) {
    const auto rel = node.value("relation", json::object());
    const auto table_name = qualified(rel);
    const auto schema = rel.value("schemaname", std::string("public"));
    if (node.contains("idxname"))
      catalog_.indexes[schema + "." + node.value("idxname", std::string())] = version_;
    const bool concurrent = node.value("concurrent", false);
    if (concurrent) {
      in_transaction_check(&rel, "CREATE INDEX CONCURRENTLY");
      return;
    }
    if (table_is_new(table_name)) return;
    report(&rel, "index-not-concurrent",
           fmt::format("CREATE INDEX on existing table {} blocks writes to it until the index "
                       "is built: use CREATE INDEX CONCURRENTLY in a -- stepwise:no-transaction "
                       "file",
                       table_name));
  }

  static std::string object_name(const json& object) {
    // DROP's objects: {"List": {"items": [String...]}} (qualified) or a bare String list.
    std::vector<std::string> parts;
    const json* items = nullptr;
    if (object.contains("List")) items = &object["List"]["items"];
    if (items == nullptr && object.is_array()) items = &object;
    if (items != nullptr)
      for (const auto& p : *items) parts.push_back(p.value("/String/sval"_json_pointer, ""));
    if (parts.size() == 1) return "public." + parts[0];
    return fmt::format("{}", fmt::join(parts, "."));
  }

  void drop(const json& node) {
    const auto type = node.value("removeType", std::string());
    const auto objects = node.value("objects", json::array());
    if (type == "OBJECT_TABLE") {
      for (const auto& o : objects) {
        compat_check(nullptr, "DROP", "table", object_name(o));
        catalog_.tables.erase(object_name(o));
      }
      return;
    }
    if (type != "OBJECT_INDEX") return;
    const bool concurrent = node.value("concurrent", false);
    if (concurrent) in_transaction_check(nullptr, "DROP INDEX CONCURRENTLY");
    for (const auto& o : objects) {
      const auto name = object_name(o);
      const auto it = catalog_.indexes.find(name);
      const bool fresh = it != catalog_.indexes.end() && is_new(it->second);
      if (it != catalog_.indexes.end()) catalog_.indexes.erase(it);
      if (concurrent || fresh) continue;
      report(nullptr, "drop-index-not-concurrent",
             fmt::format("DROP INDEX {} takes an ACCESS EXCLUSIVE lock on its table: use DROP "
                         "INDEX CONCURRENTLY in a -- stepwise:no-transaction file",
                         name));
    }
  }

  void rename(const json& node) {
    const auto type = node.value("renameType", std::string());
    const auto rel = node.value("relation", json::object());
    if (rel.empty()) return;
    const auto from = qualified(rel);
    const auto schema = rel.value("schemaname", std::string("public"));
    const auto to = schema + "." + node.value("newname", std::string());
    if (type == "OBJECT_TABLE") compat_check(&rel, "RENAME", "table", from);
    if (type == "OBJECT_COLUMN")
      compat_check(&rel, "RENAME", "column", from + "." + node.value("subname", std::string()));
    if (type == "OBJECT_TABLE") {
      if (auto it = catalog_.tables.find(from); it != catalog_.tables.end()) {
        auto info = std::move(it->second);
        catalog_.tables.erase(it);
        catalog_.tables[to] = std::move(info);
      }
    } else if (type == "OBJECT_INDEX") {
      if (auto it = catalog_.indexes.find(from); it != catalog_.indexes.end()) {
        const auto v = it->second;
        catalog_.indexes.erase(it);
        catalog_.indexes[to] = v;
      }
    } else if (type == "OBJECT_COLUMN") {
      if (auto* t = table(from)) {
        const auto sub = node.value("subname", std::string());
        if (auto it = t->types.find(sub); it != t->types.end()) {
          auto ty = it->second;
          t->types.erase(it);
          t->types[node.value("newname", std::string())] = ty;
        }
      }
    }
  }

  void vacuum(const json& node) {
    in_transaction_check(nullptr, node.value("is_vacuumcmd", true) ? "VACUUM" : "ANALYZE");
    bool full = false;
    for (const auto& o : node.value("options", json::array()))
      if (o.value("/DefElem/defname"_json_pointer, std::string()) == "full") full = true;
    if (!full) return;
    const auto rels = node.value("rels", json::array());
    if (rels.empty()) {
      report(nullptr, "vacuum-full-cluster",
             "VACUUM FULL without a table rewrites every table of the database under ACCESS "
             "EXCLUSIVE");
      return;
    }
    for (const auto& r : rels) {
      const auto rel = r.value("/VacuumRelation/relation"_json_pointer, json::object());
      if (table_is_new(qualified(rel))) continue;
      report(&rel, "vacuum-full-cluster",
             fmt::format("VACUUM FULL {} rewrites the table under ACCESS EXCLUSIVE, blocking "
                         "reads and writes",
                         qualified(rel)));
    }
  }

  void constraint_on_existing(const json& c, const std::string& table_name, bool in_add_column) {
    const auto type = c.value("contype", std::string());
    const bool not_valid = c.value("skip_validation", false);
    if ((type == "CONSTR_FOREIGN" || type == "CONSTR_CHECK") && !not_valid) {
      const auto what = type == "CONSTR_FOREIGN" ? "FOREIGN KEY" : "CHECK";
      report(&c, "constraint-not-valid",
             in_add_column
                 ? fmt::format("ADD COLUMN with an inline {} on existing table {} validates it "
                               "under lock: add the column, then ADD CONSTRAINT ... NOT VALID and "
                               "VALIDATE CONSTRAINT in a later step",
                               what, table_name)
                 : fmt::format("{} on existing table {} without NOT VALID scans the table while "
                               "holding its lock: add it NOT VALID, then VALIDATE CONSTRAINT in "
                               "a later step",
                               what, table_name));
    }
    if ((type == "CONSTR_PRIMARY" || type == "CONSTR_UNIQUE" || type == "CONSTR_EXCLUSION") &&
        !c.contains("indexname")) {
      const auto what = type == "CONSTR_PRIMARY"  ? "PRIMARY KEY"
                        : type == "CONSTR_UNIQUE" ? "UNIQUE"
                                                  : "EXCLUDE";
      report(&c, "unique-without-index",
             fmt::format("{} on existing table {} builds its index under ACCESS EXCLUSIVE: "
                         "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... {} "
                         "USING INDEX",
                         what, table_name, what));
    }
  }

  void add_column(const json& def, const std::string& table_name, bool existing) {
    const auto col = def.value("colname", std::string());
    const auto type = type_text(def.value("typeName", json::object()));
    if (auto* t = table(table_name)) t->types[col] = type;
    if (!existing) return;
    const auto base = split_type(type).first;
    if (base == "serial" || base == "bigserial" || base == "smallserial" || base == "serial4" ||
        base == "serial8" || base == "serial2")
      report(&def, "volatile-default",
             fmt::format("ADD COLUMN {} {} on existing table {} fills every row from a sequence: "
                         "the table is rewritten under ACCESS EXCLUSIVE",
                         col, type, table_name));
    for (const auto& wrapped : def.value("constraints", json::array())) {
      const auto& c = wrapped.value("Constraint", json::object());
      const auto ctype = c.value("contype", std::string());
      if (ctype == "CONSTR_DEFAULT") {
        std::string culprit;
        const auto v = volatility(c.value("raw_expr", json::object()), &culprit);
        if (v == Volatility::kVolatile)
          report(&c, "volatile-default",
                 fmt::format("ADD COLUMN {} with the volatile default {} rewrites existing table "
                             "{} under ACCESS EXCLUSIVE: add the column without a default (or a "
                             "constant one), then backfill in batches",
                             col, culprit, table_name));
        else if (v == Volatility::kUnknown)
          report(&c, "volatile-default",
                 fmt::format("ADD COLUMN {} with the default {}: if that function is volatile "
                             "(the default for CREATE FUNCTION) existing table {} is rewritten",
                             col, culprit, table_name),
                 Severity::kWarning);
      } else if (ctype == "CONSTR_IDENTITY" || ctype == "CONSTR_GENERATED") {
        report(&c, "volatile-default",
               fmt::format("ADD COLUMN {} {} on existing table {} computes every row: the "
                           "table is rewritten under ACCESS EXCLUSIVE",
                           col, ctype == "CONSTR_IDENTITY" ? "GENERATED AS IDENTITY" : "GENERATED",
                           table_name));
      } else {
        constraint_on_existing(c, table_name, true);
      }
    }
  }

  void alter_table(const json& node) {
    if (node.value("objtype", std::string("OBJECT_TABLE")) != "OBJECT_TABLE") return;
    const auto rel = node.value("relation", json::object());
    const auto name = qualified(rel);
    const bool existing = !table_is_new(name);
    for (const auto& wrapped : node.value("cmds", json::array())) {
      const auto& cmd = wrapped.value("AlterTableCmd", json::object());
      const auto sub = cmd.value("subtype", std::string());
      const auto def = cmd.value("def", json::object());
      if (sub == "AT_AddColumn" && def.contains("ColumnDef")) {
        add_column(def["ColumnDef"], name, existing);
      } else if (sub == "AT_AddConstraint" && def.contains("Constraint")) {
        const auto& c = def["Constraint"];
        if (c.value("contype", std::string()) == "CONSTR_CHECK") {
          if (const auto col = not_null_check_column(c.value("raw_expr", json::object()))) {
            if (auto* t = table(name)) {
              if (c.contains("conname")) t->checks[c.value("conname", std::string())] = *col;
              if (!c.value("skip_validation", false)) t->not_null_proven.insert(*col);
            } else if (!c.value("skip_validation", false)) {
              proven_elsewhere_[name].insert(*col);
            } else if (c.contains("conname")) {
              checks_elsewhere_[name][c.value("conname", std::string())] = *col;
            }
          }
        }
        if (existing) constraint_on_existing(c, name, false);
      } else if (sub == "AT_ValidateConstraint") {
        const auto con = cmd.value("name", std::string());
        if (auto* t = table(name)) {
          if (auto it = t->checks.find(con); it != t->checks.end())
            t->not_null_proven.insert(it->second);
        } else if (auto it = checks_elsewhere_[name].find(con);
                   it != checks_elsewhere_[name].end()) {
          proven_elsewhere_[name].insert(it->second);
        }
      } else if (sub == "AT_SetNotNull") {
        const auto col = cmd.value("name", std::string());
        if (!existing) continue;
        const auto* t = table(name);
        const bool proven = (t != nullptr && t->not_null_proven.contains(col)) ||
                            proven_elsewhere_[name].contains(col);
        if (!proven)
          report(&rel, "set-not-null",
                 fmt::format("SET NOT NULL on {}.{} scans the existing table under ACCESS "
                             "EXCLUSIVE: first ADD CONSTRAINT ... CHECK ({} IS NOT NULL) NOT "
                             "VALID and VALIDATE CONSTRAINT it (in an earlier step), then SET NOT "
                             "NULL needs no scan",
                             name, col, col));
      } else if (sub == "AT_AlterColumnType" && def.contains("ColumnDef")) {
        const auto col = cmd.value("name", std::string());
        const auto& cd = def["ColumnDef"];
        const auto to = type_text(cd.value("typeName", json::object()));
        auto* t = table(name);
        std::optional<std::string> from;
        if (t != nullptr)
          if (const auto it = t->types.find(col); it != t->types.end()) from = it->second;
        if (t != nullptr) t->types[col] = to;
        if (!existing) continue;
        const bool using_clause = cd.contains("raw_default");
        if (from && !using_clause && type_change_is_free(*from, to)) continue;
        report(&cd, "type-change-rewrite",
               from ? fmt::format("ALTER COLUMN {} TYPE {} (from {}{}) rewrites existing table "
                                  "{} and its indexes under ACCESS EXCLUSIVE: add a new column, "
                                  "backfill, and switch over",
                                  col, to, *from, using_clause ? ", with USING" : "", name)
                    : fmt::format("ALTER COLUMN {} TYPE {} on existing table {} rewrites it and "
                                  "its indexes under ACCESS EXCLUSIVE unless the old type is "
                                  "binary coercible to the new one",
                                  col, to, name));
      } else if (sub == "AT_DropColumn") {
        compat_check(&rel, "DROP", "column", name + "." + cmd.value("name", std::string()));
        if (auto* t = table(name)) t->types.erase(cmd.value("name", std::string()));
      }
    }
  }

  // The parser truncates identifiers to 63 bytes without a word, so the lengths are read from
  // the statement's own text: words and "quoted identifiers" outside strings and comments.
  void check_identifiers(std::string_view text) {
    const auto word_char = [](unsigned char c) {
      return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80;
    };
    std::size_t i = 0;
    while (i < text.size()) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (text.substr(i, 2) == "--") {
        const auto nl = text.find('\n', i);
        i = nl == std::string_view::npos ? text.size() : nl;
      } else if (text.substr(i, 2) == "/*") {
        int depth = 0;
        while (i < text.size()) {
          if (text.substr(i, 2) == "/*") {
            ++depth;
            i += 2;
          } else if (text.substr(i, 2) == "*/") {
            i += 2;
            if (--depth == 0) break;
          } else {
            ++i;
          }
        }
      } else if (c == '\'') {
        const bool escapes = i > 0 && (text[i - 1] == 'E' || text[i - 1] == 'e');
        for (++i; i < text.size(); ++i) {
          if (escapes && text[i] == '\\') {
            ++i;
          } else if (text[i] == '\'') {
            if (i + 1 < text.size() && text[i + 1] == '\'') {
              ++i;
            } else {
              ++i;
              break;
            }
          }
        }
      } else if (c == '$' && (i == 0 || !word_char(static_cast<unsigned char>(text[i - 1])))) {
        // $tag$ ... $tag$ (a $1 parameter has no closing $).
        const auto close = text.find('$', i + 1);
        const auto tag =
            close == std::string_view::npos ? std::string_view() : text.substr(i, close - i + 1);
        const bool is_tag =
            !tag.empty() && std::all_of(tag.begin() + 1, tag.end() - 1, [&](char ch) {
              return word_char(static_cast<unsigned char>(ch)) && ch != '$';
            });
        if (!is_tag) {
          ++i;
          continue;
        }
        const auto end = text.find(tag, close + 1);
        i = end == std::string_view::npos ? text.size() : end + tag.size();
      } else if (c == '"') {
        std::size_t bytes = 0;
        const auto at = i;
        for (++i; i < text.size(); ++i) {
          if (text[i] == '"') {
            if (i + 1 < text.size() && text[i + 1] == '"') {
              ++i;
              ++bytes;
              continue;
            }
            ++i;
            break;
          }
          ++bytes;
        }
        if (bytes > 63) too_long(at, text.substr(at + 1, std::min(bytes, std::size_t{70})), bytes);
      } else if (word_char(c) && !std::isdigit(c)) {
        const auto at = i;
        while (i < text.size() && word_char(static_cast<unsigned char>(text[i]))) ++i;
        if (i - at > 63) too_long(at, text.substr(at, i - at), i - at);
      } else {
        ++i;
      }
    }
  }

  void too_long(std::size_t at, std::string_view name, std::size_t bytes) {
    current_->push_back(make(stmt_begin_ + at, "identifier-too-long",
                             fmt::format("identifier {} is {} bytes: PostgreSQL keeps only the "
                                         "first 63, so two long names can collide and the catalog "
                                         "shows another name than the file",
                                         printable(name, 70), bytes)));
  }

  const Script& script_;
  const Version& version_;
  Catalog& catalog_;
  const std::vector<Version>& boundaries_;
  std::vector<CheckFinding>& out_;
  std::vector<CheckFinding>* current_ = nullptr;
  const Compat* compat_;
  std::size_t stmt_begin_ = 0;
  std::size_t stmt_first_ = 0;
  // NOT NULL proofs for tables the set does not create (it cannot know their columns).
  std::map<std::string, std::set<std::string>> proven_elsewhere_;
  std::map<std::string, std::map<std::string, std::string>> checks_elsewhere_;
};

}  // namespace

std::vector<CheckFinding> apply_suppressions(const MigrationSet& set,
                                             std::vector<CheckFinding> findings) {
  std::vector<CheckFinding> kept;
  for (auto& f : findings) {
    const Script* script = nullptr;
    for (const auto& m : set.all()) {
      if (m.up.file == f.file) script = &m.up;
      if (m.down && m.down->file == f.file) script = &*m.down;
    }
    bool suppressed = false;
    if (script != nullptr) {
      Catalog catalog;
      std::vector<Version> boundaries;
      std::vector<CheckFinding> ignored;
      suppressed =
          FileLinter(*script, Version(1), catalog, boundaries, ignored).allows(f.line, f.rule);
    }
    if (!suppressed) kept.push_back(std::move(f));
  }
  return kept;
}

std::vector<CheckFinding> lint_migrations(const MigrationSet& set, const Releases& releases,
                                          const std::map<Version, std::string>& expected) {
  const auto compat = build_compat(releases, expected);
  std::vector<Version> boundaries;
  for (const auto& r : releases.all()) boundaries.push_back(r.schema);
  Catalog catalog;
  std::vector<CheckFinding> out;
  const auto lint_file = [&](const Script& script, const Version& v, Catalog& cat, bool up) {
    std::vector<CheckFinding> found;
    FileLinter(script, v, cat, boundaries, found, up ? &compat : nullptr).run();
    std::stable_sort(found.begin(), found.end(), [](const CheckFinding& a, const CheckFinding& b) {
      return std::tie(a.line, a.col) < std::tie(b.line, b.col);
    });
    out.insert(out.end(), found.begin(), found.end());
  };
  for (const auto& m : set.all()) {
    lint_file(m.up, m.version, catalog, true);
    if (m.down) {
      // The down runs against the state the up left; it must not change what later files see.
      Catalog after_down = catalog;
      lint_file(*m.down, m.version, after_down, false);
    } else {
      CheckFinding f;
      f.file = std::string(m.up.file);
      f.severity = Severity::kWarning;
      f.rule = "irreversible";
      auto stem = std::string(m.up.file);
      if (stem.ends_with(".up.sql")) stem.resize(stem.size() - 7);
      f.message = "no down file: this migration cannot be rolled back (add " + stem + ".down.sql)";
      out.push_back(std::move(f));
    }
  }
  return out;
}

std::vector<AllowEntry> parse_allow_list(std::string_view text, std::string_view origin) {
  std::vector<AllowEntry> out;
  int line_no = 0;
  for (const auto raw : split_lines(text)) {
    ++line_no;
    const auto line = trim(raw);
    if (line.empty() || line.starts_with("#")) continue;
    const auto space = line.find_first_of(" \t");
    const auto where = fmt::format("{}:{}", origin, line_no);
    const auto clause = parse_allow_clause(space == std::string_view::npos ? std::string_view()
                                                                           : line.substr(space));
    if (clause.rules.empty() || clause.reason.empty())
      throw SourceError(fmt::format("{}: expected `FILE RULE because REASON`", where));
    for (const auto& rule : clause.rules) {
      if (!suppressible(rule))
        throw SourceError(fmt::format("{}: unknown rule {}", where, printable(rule, 60)),
                          "the rules: docs/commands/check.md");
      out.push_back({std::string(line.substr(0, space)), rule, line_no});
    }
  }
  return out;
}

std::vector<CheckFinding> apply_allow_list(std::vector<CheckFinding> findings,
                                           const std::vector<AllowEntry>& allow,
                                           std::string_view origin, bool database_checks_ran) {
  const auto from_database = [](std::string_view rule) {
    return rule.starts_with("measured-") || rule == "round-trip" || rule == "not-idempotent" ||
           rule == "upgrade-differs";
  };
  std::vector<bool> used(allow.size(), false);
  std::vector<CheckFinding> out;
  for (auto& f : findings) {
    bool covered = false;
    for (std::size_t i = 0; i < allow.size(); ++i)
      if (allow[i].file == f.file && allow[i].rule == f.rule) covered = used[i] = true;
    if (!covered) out.push_back(std::move(f));
  }
  for (std::size_t i = 0; i < allow.size(); ++i)
    if (!used[i] && (database_checks_ran || !from_database(allow[i].rule)))
      out.push_back({std::string(origin), allow[i].line, 1, Severity::kWarning,
                     "unused-suppression",
                     fmt::format("{} {} suppresses nothing", allow[i].file, allow[i].rule)});
  return out;
}

}  // namespace stepwise
