#pragma once
// `stepwise adopt`: another tool's history (or a baseline) -> rows for stepwise's log. The
// planning is pure (src/core/adopt.cpp); reading the other tool's table is in
// src/engine/foreign_history.cpp, which only ever SELECTs from it.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/database.hpp"
#include "stepwise/history.hpp"
#include "stepwise/migration.hpp"
#include "stepwise/releases.hpp"
#include "stepwise/table_name.hpp"

namespace stepwise {

enum class Tool {
  kGolangMigrate,
  kDbmate,
  kGoose,
  kFlyway,
  kSqitch,
  kNodePgMigrate,
  kPostgrator,
  kGraphileMigrate
};
[[nodiscard]] std::string_view to_string(Tool t);
// "golang-migrate" (also "migrate"), "dbmate", "goose", "flyway", "sqitch", "node-pg-migrate",
// "postgrator", "graphile-migrate".
[[nodiscard]] std::optional<Tool> parse_tool(std::string_view name);
// Where the tool keeps its history by default (for sqitch: the registry schema's changes).
[[nodiscard]] TableName default_history_table(Tool t);

// One entry of the other tool's history, as that tool sees it.
struct ForeignEntry {
  std::string id;    // what the tool calls it: the version text, or the change / file name
  std::string name;  // a description, when the tool keeps one
  std::optional<long long> applied_at_ms;
  // golang-migrate's single row, a Flyway BASELINE: every version up to this one is applied.
  bool up_to = false;
  // Non-empty: the entry is dirty or failed ("dirty", "failed"): adopt refuses, naming it.
  std::string problem;
};

struct ForeignHistory {
  Tool tool = Tool::kDbmate;
  TableName table;
  std::vector<ForeignEntry> applied;  // what the tool considers applied now
  std::vector<std::string> warnings;  // entries left out on purpose (Flyway repeatables ...)
};

// A mapping file: "other-id=stepwise-version" per line ('#' comments, blank lines); a value
// of "-" says the entry is not a stepwise migration (left out). Throws UsageError naming the
// file and line.
using Mapping = std::map<std::string, std::optional<Version>>;
[[nodiscard]] Mapping parse_mapping(std::string_view text, std::string_view file);

struct AdoptStep {
  const Migration* migration = nullptr;
  std::optional<long long> applied_at_ms;
  std::string entry;  // the other tool's id it came from ("" for a baseline)
};

struct AdoptPlan {
  std::vector<AdoptStep> record;      // to be recorded, in version order
  std::vector<Version> already;       // already applied in stepwise's log: nothing to do
  std::vector<Version> left_pending;  // gaps left for `up --allow-out-of-order`
  std::vector<std::string> warnings;  // one line each
  Version version_after;              // the newest applied version once recorded
};

// Maps the other tool's applied entries to files of `set` (by the mapping, else by version;
// sqitch by change name, node-pg-migrate by the version its name starts with, else by name),
// and checks them against stepwise's own log. Throws PlanRefused (exit 6), naming the entry or
// file: a dirty or failed entry, an entry that maps to no file (or to two), a file older than
// the newest adopted one that the other tool never applied (unless allow_gaps: it is left
// pending), a version stepwise's log has applied that the other tool has not (older than the
// newest adopted one), a version whose latest stepwise attempt failed or is unfinished.
[[nodiscard]] AdoptPlan plan_adoption(const MigrationSet& set, const ForeignHistory& foreign,
                                      const Mapping& mapping, const History& log, bool allow_gaps);

// The expected schema to verify an adoption at `version` against (item 3 of adopt): the one
// recorded for that version (for a release, its schema version's). When there is none:
// `refuse` says the set has expected schemas but none applies to `version` (it lies between
// release schemas, or a release lacks its file): adopt refuses unless --skip-verify; without
// any expected schema in the set `refuse` is false (nothing could be verified). `why_not` is
// one line naming the version, and the releases around it when releases.json has them.
struct ExpectedFor {
  const std::string* json = nullptr;  // into `expected`; null: none applies
  std::string release;                // the release whose schema this is ("" if none)
  std::string why_not;
  bool refuse = false;
};
[[nodiscard]] ExpectedFor expected_schema_for(const std::map<Version, std::string>& expected,
                                              const Releases& releases, const Version& version);

// Every file up to `version` (which must be a version of the set) as adopted. Throws
// PlanRefused for an unknown version, or when stepwise's log disagrees (as above).
[[nodiscard]] AdoptPlan plan_baseline(const MigrationSet& set, std::string_view version,
                                      const History& log);

// Reads the tool's history table (SELECT only). Throws PlanRefused when the table is missing
// or has not the tool's documented columns, naming the table.
[[nodiscard]] ForeignHistory read_foreign_history(Connection& conn, Tool tool,
                                                  const TableName& table);

// `up` on a database whose stepwise log is empty refuses when another tool's history table, at
// its default place, has rows: it would run every file over that tool's schema. The runner
// asks the catalog for these tables in HistoryStore::ensure_table's one query (no extra round
// trip), then reads a table found for one row with foreign_history_with_rows().
struct FoundHistory {
  Tool tool;
  TableName table;
};
[[nodiscard]] std::vector<TableName> foreign_history_tables();
// The tool whose table `t` is, when it has rows; nullopt for an empty table.
[[nodiscard]] std::optional<FoundHistory> foreign_history_with_rows(Connection& conn,
                                                                    const TableName& t);

}  // namespace stepwise

namespace stepwise {

// `stepwise import --from TOOL SRC DEST`: another tool's migration folder -> stepwise files,
// keeping the versions (so that `adopt` then matches them). dbmate: `<v>_<name>.sql` split at
// `-- migrate:up` / `-- migrate:down` (`transaction:false` -> `-- stepwise:no-transaction`);
// golang-migrate: `<v>_<name>.up.sql` / `.down.sql` as they are; Flyway: `V<v>__<desc>.sql`
// -> up, `U<v>__<desc>.sql` -> down; graphile-migrate: committed `000001[-slug].sql` without
// its `--! ` headers -> `000001_<slug or message>.up.sql` (no down: it has none). Refuses
// (SourceError, one line per file) what it cannot convert: code migrations, Flyway repeatables and
// dotted versions, files without the tool's markers. Files that are not migrations by the tool's
// rules (README.md ...) are skipped. Other tools: UsageError. Pure: files in, files out.
[[nodiscard]] std::vector<MigrationFile> import_folder(Tool tool,
                                                       const std::vector<MigrationFile>& files,
                                                       std::vector<std::string>* skipped);

}  // namespace stepwise
