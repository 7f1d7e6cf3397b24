#include "stepwise/fix_script.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace stepwise {

std::vector<std::string> statement_hazards(std::string_view st) {
  std::string s(st);
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const auto has = [&](std::string_view w) { return s.find(w) != std::string::npos; };
  std::vector<std::string> out;
  // Comments, and routine definitions (their bodies are not statements of the fix).
  if (s.starts_with("--") || s.starts_with("CREATE OR REPLACE FUNCTION") ||
      s.starts_with("CREATE OR REPLACE PROCEDURE") || s.starts_with("CREATE FUNCTION") ||
      s.starts_with("CREATE PROCEDURE"))
    return out;
  if (has("DROP TABLE")) out.push_back("loses data: drops a table and its rows");
  if (has("DROP COLUMN")) out.push_back("loses data: drops a column and its values");
  if (has("DROP SCHEMA")) out.push_back("loses data: drops a schema");
  if (has("DROP TYPE") || has("DROP DOMAIN"))
    out.push_back("fails or loses data if columns use the type");
  if (has(" TYPE ") && has("ALTER COLUMN") && has("USING"))
    out.push_back("rewrites the table under an ACCESS EXCLUSIVE lock (and may fail on data)");
  if (has("SET LOGGED") || has("SET UNLOGGED"))
    out.push_back("rewrites the table under an ACCESS EXCLUSIVE lock");
  if (has("GENERATED ALWAYS AS (") && has("ADD COLUMN"))
    out.push_back("rewrites the table under an ACCESS EXCLUSIVE lock");
  if (s.starts_with("CREATE INDEX") || s.starts_with("CREATE UNIQUE INDEX"))
    out.push_back("blocks writes to the table while the index builds (SHARE lock)");
  if (has("ADD CONSTRAINT") && !has("NOT VALID"))
    out.push_back("scans the table under lock to check existing rows");
  if (has("SET NOT NULL")) out.push_back("scans the table under an ACCESS EXCLUSIVE lock");
  if (has("DETACH PARTITION") || has("ATTACH PARTITION"))
    out.push_back("locks the partitioned table; ATTACH scans the partition");
  if (has("VALIDATE CONSTRAINT")) out.push_back("scans the table (SHARE UPDATE EXCLUSIVE lock)");
  if (out.empty() && s.starts_with("ALTER TABLE") && !has("SET STATISTICS") && !has(" SET (") &&
      !has(" RESET (") && !has("CLUSTER ON") && !has("OWNER TO"))
    out.push_back("takes an ACCESS EXCLUSIVE lock on the table (brief)");
  if (out.empty() && (s.starts_with("DROP VIEW") || s.starts_with("DROP MATERIALIZED VIEW") ||
                      s.starts_with("DROP INDEX") || s.starts_with("DROP TRIGGER") ||
                      s.starts_with("DROP RULE") || s.starts_with("DROP POLICY")))
    out.push_back("takes an ACCESS EXCLUSIVE lock (brief)");
  if (s.starts_with("CREATE MATERIALIZED VIEW")) out.push_back("runs the view's query to fill it");
  if (s.starts_with("DROP PUBLICATION"))
    out.push_back("subscribers of the publication stop receiving changes");
  return out;
}

namespace {
// Statements of a fix, one per line group: a statement ends with ';' at the end of a line
// (function bodies keep their inner lines).
std::vector<std::string> statements_of(std::string_view fix) {
  std::vector<std::string> out;
  std::string cur;
  std::string open_tag;  // the dollar quote we are in ($$, $function$ ...), or empty
  std::size_t i = 0;
  while (i < fix.size()) {
    const auto nl = fix.find('\n', i);
    const auto line = fix.substr(i, nl == std::string_view::npos ? fix.size() - i : nl - i);
    i = nl == std::string_view::npos ? fix.size() : nl + 1;
    for (std::size_t p = 0; p < line.size(); ++p) {
      if (line[p] != '$') continue;
      std::size_t q = p + 1;
      while (q < line.size() &&
             (std::isalnum(static_cast<unsigned char>(line[q])) || line[q] == '_'))
        ++q;
      if (q >= line.size() || line[q] != '$') continue;
      const auto tag = std::string(line.substr(p, q - p + 1));
      if (open_tag.empty())
        open_tag = tag;
      else if (tag == open_tag)
        open_tag.clear();
      p = q;
    }
    if (!cur.empty()) cur += '\n';
    cur += line;
    if (open_tag.empty() && (line.ends_with(";") || line.starts_with("--"))) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}
}  // namespace

std::vector<std::string> fix_hazards(std::string_view fix) {
  std::vector<std::string> out;
  for (const auto& st : statements_of(fix))
    for (const auto& h : statement_hazards(st))
      if (std::find(out.begin(), out.end(), h) == out.end()) out.push_back(h);
  return out;
}

std::string fix_script(const std::vector<DriftItem>& items) {
  std::string first, main;
  std::size_t first_count = 0;
  std::vector<std::string> drops, creates;
  for (const auto& d : items) {
    for (const auto& st : d.drop_first)
      if (std::find(drops.begin(), drops.end(), st) == drops.end()) drops.push_back(st);
    for (const auto& st : d.create_last)
      if (std::find(creates.begin(), creates.end(), st) == creates.end()) creates.push_back(st);
  }
  const auto annotated = [](const std::string& fix) {
    std::string text;
    for (const auto& st : statements_of(fix)) {
      for (const auto& h : statement_hazards(st)) text += "-- hazard: " + h + "\n";
      text += st + "\n";
    }
    return text;
  };
  if (!drops.empty()) {
    main += "\n-- dependents dropped first, recreated at the end\n";
    for (const auto& st : drops) main += annotated(st);
  }
  for (const auto& d : items) {
    const auto& fix = d.script_fix.empty() ? d.fix : d.script_fix;
    if (fix.empty()) continue;
    std::string header = fmt::format("\n-- {} {} {}{}\n", d.kind, d.object, d.change,
                                     d.field.empty() ? "" : " (" + d.field + ")");
    std::string body_first, body_main;
    for (const auto& st : statements_of(fix)) {
      std::string text;
      for (const auto& h : statement_hazards(st)) text += "-- hazard: " + h + "\n";
      text += st + "\n";
      if (st.starts_with("ALTER TYPE") && st.find(" ADD VALUE ") != std::string::npos) {
        body_first += text;
        ++first_count;
      } else {
        body_main += text;
      }
    }
    if (!body_first.empty()) first += header + body_first;
    if (!body_main.empty()) main += header + body_main;
  }
  if (!creates.empty()) {
    main += "\n-- dependents recreated\n";
    for (const auto& st : creates) main += annotated(st);
  }
  std::string out =
      "-- stepwise validate --fix-script: makes the live schema match the expected one\n";
  if (first_count > 0)
    out +=
        "\n-- Part 1 (outside the transaction below): enum labels are added and committed "
        "first,\n-- as a label cannot be used in the transaction that adds it.\n" +
        first + "\n-- Part 2: everything else, in one transaction.\n";
  out += "\nBEGIN;\n" + main + "\nCOMMIT;\n";
  return out;
}

}  // namespace stepwise
