// Reading another migration tool's history table for `stepwise adopt`. SELECT only: the other
// tool's table is never written, locked or altered. Layouts (PostgreSQL):
//   golang-migrate  schema_migrations(version bigint, dirty boolean): one row, the newest
//                   version; every version up to it is applied.
//   dbmate          schema_migrations(version varchar): one row per applied version.
//   goose           goose_db_version(id, version_id bigint, is_applied boolean, tstamp): rows
//                   appended; per version the newest row decides; version 0 is goose's own.
//   flyway          flyway_schema_history(installed_rank, version, description, type, script,
//                   checksum, installed_by, installed_on, execution_time, success).
//   sqitch          registry schema (default sqitch): changes (deployed now) and events
//                   (deploy / revert / fail / merge).
//   node-pg-migrate pgmigrations(id, name, run_on): one row per applied file (name without
//                   the extension).
//   postgrator      schemaversion(version bigint, name, md5, run_at); version 0 is its own.
//   graphile-migrate graphile_migrate.migrations(hash, previous_hash, filename, date): one row
//                   per committed migration run, filename "000001.sql" (the number only).
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "stepwise/adopt.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {

std::optional<long long> to_ms(const Field& f) {
  if (!f) return std::nullopt;
  long long v = 0;
  const auto r = std::from_chars(f->data(), f->data() + f->size(), v);
  if (r.ec != std::errc()) return std::nullopt;
  return v;
}

bool truthy(const Field& f) {
  return f && (*f == "t" || *f == "true");
}

std::string ms_of(std::string_view column) {
  return fmt::format("(extract(epoch FROM {}) * 1000)::bigint", column);
}

// The table's columns (empty: no such table).
std::set<std::string> columns_of(Connection& conn, const TableName& t) {
  const auto rows = conn.query(
      "SELECT a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c"
      " ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
      " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
      {t.schema, t.table});
  std::set<std::string> out;
  for (const auto& r : rows)
    if (r.at(0)) out.insert(*r.at(0));
  return out;
}

std::set<std::string> require(Connection& conn, Tool tool, const TableName& t,
                              std::initializer_list<std::string_view> needed) {
  auto cols = columns_of(conn, t);
  if (cols.empty())
    throw PlanRefused(
        fmt::format("{}'s history table {} does not exist", to_string(tool), t.display()),
        "pass the table the tool writes with --table SCHEMA.TABLE, or use "
        "--baseline VERSION for a database without a history");
  for (const auto c : needed)
    if (cols.count(std::string(c)) == 0)
      throw PlanRefused(fmt::format("{} has no column {}: it is not {}'s history table",
                                    t.display(), c, to_string(tool)),
                        "pass the right one with --table SCHEMA.TABLE");
  return cols;
}

std::string q(Connection& conn, const TableName& t) {
  return conn.quote_identifier(t.schema) + "." + conn.quote_identifier(t.table);
}

}  // namespace

ForeignHistory read_foreign_history(Connection& conn, Tool tool, const TableName& table) {
  ForeignHistory h;
  h.tool = tool;
  h.table = table;
  switch (tool) {
    case Tool::kGolangMigrate: {
      (void)require(conn, tool, table, {"version", "dirty"});
      const auto rows =
          conn.execute(fmt::format("SELECT version::text, dirty::text FROM {}", q(conn, table)));
      if (rows.size() > 1)
        throw PlanRefused(fmt::format("{} has {} rows; golang-migrate keeps exactly one",
                                      table.display(), rows.size()));
      for (const auto& r : rows) {
        ForeignEntry e;
        e.id = r.at(0).value_or("");
        e.up_to = true;
        if (truthy(r.at(1))) e.problem = "dirty (a migration failed half-way)";
        h.applied.push_back(std::move(e));
      }
      break;
    }
    case Tool::kDbmate: {
      (void)require(conn, tool, table, {"version"});
      for (const auto& r : conn.execute(
               fmt::format("SELECT version::text FROM {} ORDER BY version", q(conn, table))))
        h.applied.push_back({r.at(0).value_or(""), "", std::nullopt, false, ""});
      break;
    }
    case Tool::kGoose: {
      const auto cols = require(conn, tool, table, {"id", "version_id", "is_applied"});
      const auto at = cols.count("tstamp") ? ms_of("tstamp") : std::string("NULL::bigint");
      std::map<std::string, ForeignEntry> latest;  // version -> the newest row's meaning
      std::vector<std::string> order;
      for (const auto& r : conn.execute(
               fmt::format("SELECT version_id::text, is_applied::text, {} FROM {} ORDER BY id", at,
                           q(conn, table)))) {
        const auto v = r.at(0).value_or("");
        if (v == "0") continue;  // goose's own first row
        if (!latest.count(v)) order.push_back(v);
        ForeignEntry e{v, "", to_ms(r.at(2)), false, ""};
        // is_applied = false: a down ran after it (older goose appends instead of deleting).
        if (truthy(r.at(1)))
          latest[v] = e;
        else
          latest.erase(v);
      }
      for (const auto& v : order)
        if (const auto it = latest.find(v); it != latest.end()) h.applied.push_back(it->second);
      break;
    }
    case Tool::kFlyway: {
      const auto cols =
          require(conn, tool, table, {"installed_rank", "version", "type", "success"});
      const auto opt = [&](std::string_view c) {
        return cols.count(std::string(c)) ? std::string(c) : std::string("NULL");
      };
      const auto at = cols.count("installed_on") ? ms_of("installed_on") : "NULL::bigint";
      std::map<std::string, ForeignEntry> current;
      std::vector<std::string> order;
      for (const auto& r : conn.execute(fmt::format(
               "SELECT installed_rank::text, version, type, success::text, {}::text, {}::text, {}"
               " FROM {} ORDER BY installed_rank",
               opt("description"), opt("script"), at, q(conn, table)))) {
        const auto rank = r.at(0).value_or("?");
        const auto type = r.at(2).value_or("");
        const auto script = r.at(5).value_or(r.at(4).value_or(""));
        if (type == "SCHEMA") continue;  // "<< Flyway Schema Creation >>"
        if (!r.at(1)) {
          if (!truthy(r.at(3)))
            h.applied.push_back({fmt::format("repeatable {}", printable(script, 80)), script,
                                 std::nullopt, false,
                                 fmt::format("failed (installed_rank {})", rank)});
          else
            h.warnings.push_back(fmt::format(
                "flyway repeatable migration {} (installed_rank {}) is not adopted: stepwise has "
                "no repeatable migrations",
                printable(script, 80), rank));
          continue;
        }
        const auto version = *r.at(1);
        ForeignEntry e{version, r.at(4).value_or(""), to_ms(r.at(6)), type == "BASELINE", ""};
        if (!truthy(r.at(3))) {
          e.problem = fmt::format("failed ({}, installed_rank {})", printable(script, 80), rank);
          h.applied.push_back(std::move(e));
          continue;
        }
        if (type.starts_with("UNDO") || type == "DELETE") {
          current.erase(version);  // undone (Flyway Teams), or marked deleted by `flyway repair`
          continue;
        }
        if (!current.count(version)) order.push_back(version);
        current[version] = std::move(e);
      }
      for (const auto& v : order)
        if (const auto it = current.find(v); it != current.end()) h.applied.push_back(it->second);
      break;
    }
    case Tool::kSqitch: {
      // --table names the registry's changes table; events sit next to it.
      const TableName changes{table.schema, table.table};
      const TableName events{table.schema, "events"};
      (void)require(conn, tool, changes, {"change", "committed_at"});
      (void)require(conn, tool, events, {"change", "event", "committed_at"});
      // A change whose last event is a failed deploy (sqitch reverted it, maybe not all of it).
      for (const auto& r : conn.execute(fmt::format(
               "SELECT change FROM (SELECT DISTINCT ON (project, change) change, event FROM {}"
               " ORDER BY project, change, committed_at DESC) e WHERE event = 'fail'",
               q(conn, events))))
        h.applied.push_back({r.at(0).value_or(""), "", std::nullopt, false,
                             "failed (its last sqitch event is a failed deploy)"});
      for (const auto& r :
           conn.execute(fmt::format("SELECT change, {} FROM {} ORDER BY committed_at",
                                    ms_of("committed_at"), q(conn, changes))))
        h.applied.push_back({r.at(0).value_or(""), "", to_ms(r.at(1)), false, ""});
      break;
    }
    case Tool::kNodePgMigrate: {
      (void)require(conn, tool, table, {"name", "run_on"});
      for (const auto& r : conn.execute(fmt::format("SELECT name, {} FROM {} ORDER BY run_on, id",
                                                    ms_of("run_on"), q(conn, table))))
        h.applied.push_back({r.at(0).value_or(""), "", to_ms(r.at(1)), false, ""});
      break;
    }
    case Tool::kPostgrator: {
      const auto cols = require(conn, tool, table, {"version"});
      const auto name = cols.count("name") ? "name::text" : "NULL::text";
      const auto at = cols.count("run_at") ? ms_of("run_at") : "NULL::bigint";
      for (const auto& r :
           conn.execute(fmt::format("SELECT version::text, {}, {} FROM {} ORDER BY version", name,
                                    at, q(conn, table)))) {
        const auto v = r.at(0).value_or("");
        if (v == "0") continue;  // postgrator's own starting row
        h.applied.push_back({v, r.at(1).value_or(""), to_ms(r.at(2)), false, ""});
      }
      break;
    }
    case Tool::kGraphileMigrate: {
      (void)require(conn, tool, table, {"filename", "date"});
      for (const auto& r : conn.execute(fmt::format("SELECT filename, {} FROM {} ORDER BY filename",
                                                    ms_of("date"), q(conn, table))))
        h.applied.push_back({r.at(0).value_or(""), "", to_ms(r.at(1)), false, ""});
      break;
    }
  }
  return h;
}

namespace {
constexpr Tool kGuarded[] = {Tool::kGolangMigrate,  Tool::kGoose,         Tool::kFlyway,
                             Tool::kSqitch,         Tool::kNodePgMigrate, Tool::kPostgrator,
                             Tool::kGraphileMigrate};
}  // namespace

std::vector<TableName> foreign_history_tables() {
  std::vector<TableName> out;
  for (const auto t : kGuarded) out.push_back(default_history_table(t));
  return out;
}

std::optional<FoundHistory> foreign_history_with_rows(Connection& conn, const TableName& t) {
  std::optional<Tool> tool;
  for (const auto c : kGuarded)
    if (default_history_table(c) == t) tool = c;
  if (!tool) return std::nullopt;
  if (conn.execute(fmt::format("SELECT 1 FROM {} LIMIT 1", q(conn, t))).empty())
    return std::nullopt;
  // schema_migrations is golang-migrate's or dbmate's: the dirty column tells.
  if (*tool == Tool::kGolangMigrate && columns_of(conn, t).count("dirty") == 0)
    tool = Tool::kDbmate;
  return FoundHistory{*tool, t};
}

}  // namespace stepwise
