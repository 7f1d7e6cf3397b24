// Resume probes: catalog checks of what an interrupted statement left (resume_probe.hpp).
#include "resume_probe.hpp"

#include <fmt/format.h>

#include "stepwise/sql_split.hpp"
#include "stepwise/text.hpp"

namespace stepwise::detail {

namespace {
// Whether an interrupted DDL statement took effect before the interruption (statement by
// statement execution records progress after each statement, so one may be in doubt).
bool took_effect(Connection& conn, const DdlEffect& e) {
  using A = DdlEffect::Action;
  Rows rows;
  if (e.action == A::kAddColumn || e.action == A::kDropColumn) {
    rows = conn.query(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE (attrelid)"
        " OPERATOR(pg_catalog.=) (pg_catalog.to_regclass($1)) AND (attname) OPERATOR(pg_catalog.=)"
        " ($2) AND (attnum) OPERATOR(pg_catalog.>) (0) AND NOT attisdropped)",
        {e.name, e.column});
  } else if (e.kind == "type") {
    rows = conn.query("SELECT pg_catalog.to_regtype($1) IS NOT NULL", {e.name});
  } else if (e.kind == "schema") {
    rows = conn.query("SELECT pg_catalog.to_regnamespace($1) IS NOT NULL", {e.name});
  } else {
    rows = conn.query("SELECT pg_catalog.to_regclass($1) IS NOT NULL", {e.name});
  }
  const bool exists = rows.at(0).at(0).value_or("f") == "t";
  return (e.action == A::kCreate || e.action == A::kAddColumn) ? exists : !exists;
}
}  // namespace

bool already_took_effect(Connection& conn, std::string_view statement,
                         const std::function<void(const std::string&)>& note) {
  // An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index behind: drop it and build
  // again. A valid one means the statement finished before the interruption was recorded.
  if (const auto index = parse_create_index(statement)) {
    const auto rows = conn.query(
        "SELECT i.indisvalid FROM pg_catalog.pg_index i WHERE (i.indexrelid)"
        " OPERATOR(pg_catalog.=) (pg_catalog.to_regclass($1))",
        {index->index});
    if (!rows.empty() && rows[0][0].value_or("f") == "f") {
      note(
          fmt::format("dropping the invalid index {} left by an interrupted "
                      "build, then building it again",
                      index->index));
      conn.execute(fmt::format("DROP INDEX {}IF EXISTS {}",
                               index->concurrently ? "CONCURRENTLY " : "", index->index));
    } else if (!rows.empty() && !index->if_not_exists) {
      note(
          fmt::format("index {} already exists and is valid: the statement "
                      "completed before the interruption",
                      index->index));
      return true;
    }
  }
  if (const auto effect = parse_ddl_effect(statement); effect && took_effect(conn, *effect)) {
    note(fmt::format("{} already took effect before the interruption", first_line(statement)));
    return true;
  }
  return false;
}

}  // namespace stepwise::detail
