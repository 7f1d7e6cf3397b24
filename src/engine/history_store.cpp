#include "stepwise/history_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <ctime>
#include <vector>

#include "pg_operator.hpp"
#include "stepwise/checksum.hpp"
#include "stepwise/engine.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {

// Bumped when the table's columns change; recorded as the table comment.
// Format 1: version bigint. Format 2: version text holding the normalised digits (any length).
// Format 3: plus origin (who recorded the row: stepwise, or `stepwise adopt`) and notes.
constexpr int kLogFormat = 3;

// The CHECK on the version column: normalised digits, as Version::to_string() writes them.
constexpr std::string_view kVersionCheck = "version ~ '^(0|[1-9][0-9]*)$'";

// The CHECK on the origin column (format 3): 'stepwise' for everything stepwise ran (the
// default, so that an older stepwise writing to this table records its rows correctly),
// 'baseline' and 'adopted:<tool>' for rows `stepwise adopt` recorded without running them.
constexpr std::string_view kOriginCheck =
    "origin = 'stepwise' OR origin = 'baseline' OR origin ~ '^adopted:[a-z0-9-]+$'";

// The attempt's duration so far, and a time `ms` before now, in PostgreSQL's own operators.
std::string duration_ms_sql() {
  return fmt::format("({})::bigint",
                     pg_op(fmt::format("extract(epoch FROM {})",
                                       pg_op("pg_catalog.clock_timestamp()", "-", "started_at")),
                           "*", "1000"));
}
std::string ms_ago_sql(double ms) {
  return pg_op("pg_catalog.clock_timestamp()", "-",
               pg_op("interval '1 millisecond'", "*", fmt::format("{:.0f}", ms)));
}

// DDL of stepwise's own tables in a transaction whose search_path is PostgreSQL's alone: their
// CHECKs, defaults and column types bind operators, functions and types when created, and a
// session's search_path must not leave another schema's in them for every later run.
std::string with_own_search_path(std::string_view ddl) {
  return fmt::format("BEGIN;\nSET LOCAL search_path = pg_catalog, pg_temp;\n{};\nCOMMIT", ddl);
}

long long to_ll(const Field& f) {
  long long v = 0;
  if (f) std::from_chars(f->data(), f->data() + f->size(), v);
  return v;
}

// Milliseconds since the epoch -> "2026-11-26T11:27:50.760Z". Times travel as numbers so that
// neither the session's DateStyle nor the engine's formatting functions matter.
std::string iso_utc(long long ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

// Error text kept in the log: the server's full message, bounded.
std::string error_text(const DbError& e) {
  std::string t = e.detail().empty() ? e.what() : e.detail();
  if (t.size() > 8000) t.resize(8000);
  return t;
}

}  // namespace

HistoryStore::HistoryStore(Connection& conn, TableName table, RunnerIdentity who)
    : conn_(conn), table_(std::move(table)), who_(std::move(who)) {}

std::string HistoryStore::qualified() {
  if (qualified_.empty()) qualified_ = quoted(table_);
  return qualified_;
}

std::string HistoryStore::quoted(const TableName& name) {
  return conn_.quote_identifier(name.schema) + "." + conn_.quote_identifier(name.table);
}

std::string HistoryStore::digest_sql() {
  // The newest attempt per version, aggregated on the server into the text log_digest_of()
  // hashes: "<version> <checksum>" in byte order of the version digits, joined by ",". One
  // sort in the "C" collation (the database's own collation sorts text several times slower),
  // and the aggregate takes the rows in that order; should a server not keep it, the digest
  // differs and read() decides. A format-1 log (version bigint) reads the same. NULL unless
  // every version's newest attempt is a succeeded up.
  // Every function, operator, type and collation is PostgreSQL's own (see pg_eq()).
  return fmt::format(
      "SELECT CASE WHEN pg_catalog.bool_and({} AND {}) THEN"
      " pg_catalog.encode(pg_catalog.sha256(pg_catalog.string_agg(pg_catalog.concat_ws(' ', v,"
      " checksum), ',')::pg_catalog.bytea), 'hex') END"
      " FROM (SELECT DISTINCT ON (v) v, direction, outcome, checksum"
      " FROM (SELECT version::pg_catalog.text COLLATE \"C\" AS v, id, direction,"
      " outcome, checksum FROM {} WHERE {}) AS attempts ORDER BY v, id DESC) AS newest",
      pg_eq("direction", "'up'"), pg_eq("outcome", "'succeeded'"), qualified(),
      pg_eq("kind", "'migration'"));
}

namespace {

// A dollar-quote tag that `body` does not contain.
std::string dollar_tag(std::string_view body, std::string_view name) {
  std::string tag = fmt::format("${}$", name);
  for (int i = 0; body.find(tag) != std::string_view::npos; ++i)
    tag = fmt::format("${}{}$", name, i);
  return tag;
}
}  // namespace

std::string HistoryStore::summary_hash_sql(std::string_view digest, std::string_view counter,
                                           std::string_view log) {
  // What the summary sequence holds: a hash of the digest with the counter's value and the
  // log's file (relfilenode) it answers for. The counter moves on every change to the log; the
  // file changes on TRUNCATE, VACUUM FULL and rewriting ALTERs. `counter` and `log` are SQL
  // expressions: the refresh reads the counter under the lock, the no-op through the catalog.
  return fmt::format(
      "pg_catalog.hashtextextended(pg_catalog.concat_ws(' ', {}, {},"
      " pg_catalog.pg_relation_filenode({})), 0)",
      digest, counter, log);
}

std::string HistoryStore::regclass_sql(const TableName& name) {
  return fmt::format("pg_catalog.to_regclass({})", conn_.quote_literal(quoted(name)));
}

std::string HistoryStore::linked_sql(const TableName& seq, std::string_view column) {
  return pg_eq(regclass_sql(seq),
               fmt::format("pg_catalog.to_regclass(pg_catalog.pg_get_serial_sequence({}, '{}'))",
                           conn_.quote_literal(qualified()), column));
}

bool HistoryStore::matches(std::string_view log_digest) {
  // The no-op summary first: one row of each of two sequences, whatever the log's length.
  // When it does not answer for this digest (stale, another set, a log without a summary:
  // CockroachDB's, an older stepwise's, one another role owns), a second statement digests the
  // log. Two statements, not one CASE: planning the digest's branch, even untaken, costs a
  // fresh server session more than the summary's whole answer.
  //
  // The first finds the log through to_regclass, and trusts each sequence only when it is the
  // one of the name the triggers and the refresh use and also OWNED BY its column of the log
  // (linked_sql): only the log's owner can link, so sequences of those names that another role
  // put beside the log answer for nothing, and a renamed log's old pair (still linked, no longer
  // counted) neither. It reads a sequence only where the role may: a log without its summary,
  // or none at all (a fresh database), is an answer, not an ERROR in the server's log at every
  // pod start. It costs a fresh session about 0.06 ms more than reading the sequences by name
  // (psql \timing, medians of 40: 0.85-0.89 against 0.79-0.84 ms; bench/ shows only the
  // end-to-end no-op).
  if (const auto names = noop_summary_for(table_)) {
    const auto digest = conn_.quote_literal(log_digest);
    const auto log = conn_.quote_literal(qualified());
    const auto trusted = [&](const TableName& seq, std::string_view column) {
      return fmt::format("CASE WHEN pg_catalog.to_regclass({}) IS NOT NULL AND {} THEN {} END", log,
                         linked_sql(seq, column), regclass_sql(seq));
    };
    const auto readable = [](std::string_view seq) {
      return fmt::format("pg_catalog.has_table_privilege(r.{}, 'SELECT')", seq);
    };
    const auto counter = fmt::format(
        "CASE WHEN {} THEN COALESCE(pg_catalog.pg_sequence_last_value(r.counter), 0) END",
        readable("counter"));
    try {
      const auto rows = conn_.execute(fmt::format(
          "SELECT r.log IS NOT NULL, CASE WHEN ({0}) IS NOT NULL AND {1} THEN {2} END"
          " FROM (SELECT pg_catalog.to_regclass({3}) AS log, {4} AS summary, {5} AS counter) r",
          counter,
          pg_eq(fmt::format("CASE WHEN {} THEN pg_catalog.pg_sequence_last_value(r.summary) END",
                            readable("summary")),
                summary_hash_sql(digest, counter, "r.log")),
          digest, log, trusted(names->summary, "checksum"), trusted(names->counter, "version")));
      if (rows.size() == 1 && rows[0].size() == 2) {
        if (rows[0][0].value_or("") != "t") return false;  // no log: read() says so
        if (rows[0][1].value_or("") == log_digest) return true;
      }
    } catch (const DbError&) {
      // An engine without these functions (CockroachDB's logs have no summary).
    }
  }
  try {
    const auto rows = conn_.execute(digest_sql());
    return rows.size() == 1 && rows[0].size() == 1 && rows[0][0].value_or("") == log_digest;
  } catch (const DbError&) {
    return false;  // a missing log, an engine without one of these functions: read() decides
  }
}

namespace {
// The triggers' function: moves the counter next to whichever table fired it, found by name in
// the catalog (no privilege check that could fail a write; a renamed schema moves the counter
// with the table), and never fails a write to the log (no such sequence: nothing to move).
constexpr std::string_view kCounterBody =
    "DECLARE counter oid; BEGIN SELECT c.oid INTO counter FROM pg_catalog.pg_class c JOIN"
    " pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = TG_TABLE_SCHEMA AND"
    " c.relname = TG_TABLE_NAME || '_gen' AND c.relkind = 'S'; IF counter IS NOT NULL THEN"
    " PERFORM pg_catalog.nextval(counter::pg_catalog.regclass); END IF; RETURN NULL; END";
}  // namespace

void HistoryStore::ensure_summary() {
  // Best effort: without the summary every no-op digests the whole log, as before.
  summary_ready_ = false;
  const auto names = noop_summary_for(table_);
  if (!names) return;
  // PostgreSQL's own operators throughout (pg_operator.hpp): "ready" means the refresh may
  // write a summary that the no-op will trust.
  const auto log = fmt::format("{}::pg_catalog.regclass", conn_.quote_literal(qualified()));
  const auto seq_is = [&](const TableName& t) {
    return fmt::format(
        "EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequence q ON {} WHERE {}"
        " AND {} AND {})",
        pg_eq("q.seqrelid", "c.oid"), pg_eq("c.oid", regclass_sql(t)), pg_eq("c.relkind", "'S'"),
        pg_eq("q.seqcache", "1"));
  };
  // A relation of that name that is no sequence (another table's): no summary, no rebuild.
  const auto other_is = [&](const TableName& t) {
    return fmt::format("EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE {} AND NOT {})",
                       pg_eq("c.oid", regclass_sql(t)), pg_eq("c.relkind", "'S'"));
  };
  const auto function = fmt::format("pg_catalog.to_regprocedure({})",
                                    conn_.quote_literal(quoted(names->function) + "()"));
  const auto trigger_is = [&](const std::string& name, int type) {
    return fmt::format(
        "EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE {} AND {} AND {} AND {}"
        " AND {})",
        pg_eq("t.tgrelid", log), pg_eq("t.tgname", conn_.quote_literal(name)),
        pg_eq("t.tgenabled", "'A'"), pg_eq("t.tgtype", std::to_string(type)),
        pg_eq("t.tgfoid", function));
  };
  // Each sequence OWNED BY a column of the log (what the no-op trusts, linked_sql): only the
  // log's owner can link them, so objects of these names that another role created beforehand
  // make the rebuild fail (no summary) instead of being trusted.
  const auto log_owner =
      fmt::format("(SELECT c.relowner FROM pg_catalog.pg_class c WHERE {})", pg_eq("c.oid", log));
  // tgtype: ROW (1) | AFTER (0) | INSERT (4) | DELETE (8) | UPDATE (16) = 29; TRUNCATE (32),
  // statement level, AFTER = 32.
  try {
    const auto rows = conn_.execute(fmt::format(
        "SELECT {} AND {} AND {} AND {} AND {} AND {} AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc"
        " p WHERE {} AND p.prosecdef AND {} AND {}), pg_catalog.pg_has_role({}, 'USAGE') AND NOT {}"
        " AND NOT {}, pg_catalog.pg_get_userbyid({})",
        seq_is(names->counter), seq_is(names->summary), linked_sql(names->counter, "version"),
        linked_sql(names->summary, "checksum"), trigger_is(names->row_trigger, 29),
        trigger_is(names->truncate_trigger, 32), pg_eq("p.oid", function),
        pg_eq("p.proowner", log_owner),
        pg_eq("pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(p.prosrc, 'UTF8')), "
              "'hex')",
              fmt::format("'{}'", sha256_hex(kCounterBody))),
        log_owner, other_is(names->counter), other_is(names->summary), log_owner));
    if (rows.size() == 1 && rows[0].size() == 3 && rows[0][0].value_or("") == "t") {
      summary_ready_ = true;
      return;
    }
    // Only the log's owner may add triggers to it; anyone else would queue for its lock first.
    if (rows.size() != 1 || rows[0].size() != 3 || rows[0][1].value_or("") != "t" || !rows[0][2])
      return;
    // As the owner (a member of a group role that owns the log may): the sequences must have
    // the log's owner to be linked to it, and the function too, to be trusted.
    const auto owner = conn_.quote_identifier(*rows[0][2]);
    const auto tag = dollar_tag(kCounterBody, "stepwise_counter");
    // One transaction, all or nothing; a second's lock wait at most (an open writer, a reader
    // holding the log), and then no summary this time. Row triggers, not statement ones,
    // because logical replication's apply fires only those; TRUNCATE has only a statement
    // trigger. Enabled ALWAYS: they fire with session_replication_role = replica too. Each
    // bumps the counter and takes no row lock, so no writer waits for another. First of all
    // the summary is voided (setval is not transactional: voided even if this rolls back),
    // and the counter moves: a summary written before this rebuild answers for nothing,
    // whatever happened to the log while the triggers were missing, even if the counter is new.
    execute_or_roll_back(fmt::format(
        "BEGIN;\nSET LOCAL lock_timeout = '1s';\nSET LOCAL search_path = pg_catalog, pg_temp;\n"
        "SET LOCAL ROLE {10};\n"
        "CREATE SEQUENCE IF NOT EXISTS {0} CACHE 1;\n"
        "CREATE SEQUENCE IF NOT EXISTS {1} MINVALUE -9223372036854775808 CACHE 1;\n"
        "SELECT pg_catalog.setval({8}, -9223372036854775808, false);\n"
        "ALTER SEQUENCE {0} OWNED BY {7}.version;\n"
        "ALTER SEQUENCE {1} OWNED BY {7}.checksum;\n"
        "CREATE OR REPLACE FUNCTION {2}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
        " SET search_path = pg_catalog, pg_temp AS {3}{4}{3};\n"
        "DROP TRIGGER IF EXISTS {5} ON {7};\n"
        "DROP TRIGGER IF EXISTS {6} ON {7};\n"
        "CREATE TRIGGER {5} AFTER INSERT OR UPDATE OR DELETE ON {7}"
        " FOR EACH ROW EXECUTE FUNCTION {2}();\n"
        "CREATE TRIGGER {6} AFTER TRUNCATE ON {7} FOR EACH STATEMENT EXECUTE FUNCTION {2}();\n"
        "ALTER TABLE {7} ENABLE ALWAYS TRIGGER {5}, ENABLE ALWAYS TRIGGER {6};\n"
        "SELECT pg_catalog.nextval({9});\n"
        "COMMIT",
        quoted(names->counter), quoted(names->summary), quoted(names->function), tag, kCounterBody,
        conn_.quote_identifier(names->row_trigger), conn_.quote_identifier(names->truncate_trigger),
        qualified(), conn_.quote_literal(quoted(names->summary)),
        conn_.quote_literal(quoted(names->counter)), owner));
    summary_ready_ = true;
  } catch (const Error&) {
    // A racer, a privilege, a lock wait: no summary this time.
  }
}

void HistoryStore::refresh_summary() {
  if (!summary_ready_) return;
  // Under SHARE, no session can be writing the log: every writer that moved the counter has
  // committed, and this statement (READ COMMITTED: its snapshot is taken after the lock) sees
  // all they wrote. The counter value it hashes is then exactly the one the digest answers
  // for, and any later change moves it. setval is not transactional, and need not be: what it
  // stores is true of the log whether or not this transaction commits. A writer still open (a
  // lost runner's step) makes it give up after a second: the summary stays stale (safe).
  const auto names = *noop_summary_for(table_);
  try {
    execute_or_roll_back(
        fmt::format("BEGIN ISOLATION LEVEL READ COMMITTED;\n"
                    "SET LOCAL lock_timeout = '1s';\n"
                    "LOCK TABLE {0} IN SHARE MODE;\n"
                    "SELECT pg_catalog.setval({1}, {2});\n"
                    "COMMIT",
                    qualified(), conn_.quote_literal(quoted(names.summary)),
                    summary_hash_sql(
                        fmt::format("COALESCE(({}), 'none')", digest_sql()),
                        fmt::format("(SELECT CASE WHEN c.is_called THEN c.last_value ELSE 0 END"
                                    " FROM {} c)",
                                    quoted(names.counter)),
                        fmt::format("{}::pg_catalog.regclass", conn_.quote_literal(qualified())))));
  } catch (const Error&) {
    // Stale is safe: the no-op then digests the whole log.
  }
}

History HistoryStore::read(Detail detail) {
  // No ORDER BY and no formatting functions on the planning path: a fresh backend then needs
  // the fewest catalog lookups. History sorts by id itself.
  const bool full = detail == Detail::kFull;
  const auto full_sql = [&](bool format3) {
    return fmt::format(
        "SELECT id, version, direction, outcome, checksum, statements_done, name,"
        " ((extract(epoch FROM started_at)) OPERATOR(pg_catalog.*) (1000))::bigint,"
        " ((extract(epoch FROM finished_at)) OPERATOR(pg_catalog.*) (1000))::bigint,"
        " error, sqlstate{} FROM {} WHERE {}",
        format3 ? ", origin, notes" : "", qualified(), pg_eq("kind", "'migration'"));
  };
  Rows rows;
  try {
    if (full) {
      // A log of format 1 or 2 has no origin and notes columns (status and validate never
      // upgrade it): asked first, so that the read needs no error path inside validate's
      // snapshot and no per-row conversion (to_jsonb(row) cost 10x on 10,000 rows).
      const auto cols = conn_.query(
          "SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute WHERE (attrelid)"
          " OPERATOR(pg_catalog.=) (pg_catalog.to_regclass($1)) AND ((attname)"
          " OPERATOR(pg_catalog.=) ('origin') OR (attname) OPERATOR(pg_catalog.=) ('notes')) AND"
          " NOT attisdropped",
          {qualified()});
      rows = conn_.execute(full_sql(cols.at(0).at(0).value_or("0") == "2"));
    } else {
      rows = conn_.execute(
          fmt::format("SELECT id, version, direction, outcome, checksum, statements_done "
                      "FROM {} WHERE (kind) OPERATOR(pg_catalog.=) ('migration')",
                      qualified()));
    }
  } catch (const DbError& e) {
    // 42P01 undefined_table, 3F000 invalid_schema_name: nothing was ever applied here.
    if (e.sqlstate() == "42P01" || e.sqlstate() == "3F000") {
      History empty;
      empty.set_log_table_exists(false);
      return empty;
    }
    throw;
  }
  std::vector<Attempt> attempts;
  attempts.reserve(rows.size());
  for (const auto& r : rows) {
    Attempt a;
    a.id = to_ll(r[0]);
    // Text in format 2; a format-1 bigint reads as the same digits.
    auto version = Version::parse(r[1].value_or(""));
    if (!version)
      throw Error(ExitCode::kFailed,
                  fmt::format("the log table {} holds version {} (row id {}), which is not a "
                              "string of digits",
                              qualified(), printable(r[1].value_or("NULL"), 40), a.id),
                  "correct or remove that row by hand");
    a.version = std::move(*version);
    a.direction = r[2].value_or("up") == "down" ? Direction::kDown : Direction::kUp;
    a.outcome = parse_outcome(r[3].value_or("")).value_or(Outcome::kFailed);
    a.checksum = r[4].value_or("");
    a.statements_done = static_cast<int>(to_ll(r[5]));
    if (full) {
      a.name = r[6].value_or("");
      a.started_at = r[7] ? iso_utc(to_ll(r[7])) : "";
      a.finished_at = r[8] ? iso_utc(to_ll(r[8])) : "";
      a.error = r[9].value_or("");
      a.sqlstate = r[10].value_or("");
      a.origin = r.size() > 11 ? r[11].value_or("stepwise") : "stepwise";
      a.notes = r.size() > 12 ? r[12].value_or("") : "";
    }
    attempts.push_back(std::move(a));
  }
  return History(std::move(attempts));
}

std::optional<TableName> HistoryStore::ensure_table(
    const std::vector<TableName>& refuse_if_present) {
  std::string foreign;
  for (const auto& t : refuse_if_present)
    foreign += fmt::format("{}({}, {})", foreign.empty() ? "" : ", ", conn_.quote_literal(t.schema),
                           conn_.quote_literal(t.table));
  if (!foreign.empty())
    foreign = fmt::format(
        ", (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE (n.nspname, c.relname) IN ({0}) ORDER BY 1 LIMIT 1),"
        " (SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE (n.nspname, c.relname) IN ({0}) ORDER BY n.nspname"
        " LIMIT 1)",
        foreign);
  // Checked first: CREATE ... IF NOT EXISTS still needs CREATE rights on an existing schema.
  // The same query reads the version column's type: an older layout is upgraded in place.
  const auto rows = conn_.query(
      std::string(
          "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),"
          " EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
          " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2),"
          " (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a"
          " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n"
          " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2"
          " AND a.attname = 'version' AND NOT a.attisdropped),"
          " pg_catalog.current_setting('crdb_version', true),"
          " EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a"
          " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n"
          " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2"
          " AND a.attname = 'origin' AND NOT a.attisdropped)") +
          foreign,
      {table_.schema, table_.table});
  if (!foreign.empty() && rows.at(0).size() > 6 && rows.at(0).at(5) && rows.at(0).at(6))
    return TableName{*rows.at(0).at(5), *rows.at(0).at(6)};
  const bool schema_exists = rows.at(0).at(0).value_or("f") == "t";
  const bool table_exists = rows.at(0).at(1).value_or("f") == "t";
  const bool cockroach = !rows.at(0).at(3).value_or("").empty();  // it has no triggers
  if (table_exists) {
    const auto type = rows.at(0).at(2).value_or("");
    const bool version_text = type == "text" || type.empty();
    const bool has_origin = rows.at(0).size() > 4 && rows.at(0).at(4).value_or("f") == "t";
    if (!version_text || !has_origin) upgrade_layout(cockroach, version_text, has_origin);
    if (!cockroach) {
      refuse_row_rewriters();
      ensure_summary();
    }
    return std::nullopt;
  }
  std::string sql;
  if (!schema_exists)
    sql += fmt::format("CREATE SCHEMA IF NOT EXISTS {};\n", conn_.quote_identifier(table_.schema));
  sql += fmt::format(
      R"(CREATE TABLE IF NOT EXISTS {0} (
  id bigserial PRIMARY KEY,
  version text NOT NULL CHECK ({2}),
  name text NOT NULL,
  kind text NOT NULL DEFAULT 'migration' CHECK (kind IN ('migration', 'backup')),
  direction text NOT NULL CHECK (direction IN ('up', 'down', 'none')),
  outcome text NOT NULL
    CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted', 'abandoned')),
  checksum text NOT NULL,
  checksum_algorithm text NOT NULL,
  statements_done integer NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  finished_at timestamptz,
  duration_ms bigint,
  error text,
  sqlstate text,
  host text NOT NULL,
  pid integer NOT NULL,
  db_user text NOT NULL DEFAULT current_user,
  tool_version text NOT NULL,
  origin text NOT NULL DEFAULT 'stepwise' CHECK ({3}),
  notes text
);
COMMENT ON TABLE {0} IS {1};)",
      qualified(), conn_.quote_literal(fmt::format("stepwise attempt log, format {}", kLogFormat)),
      kVersionCheck, kOriginCheck);
  try {
    if (cockroach)
      conn_.execute(sql);
    else
      execute_or_roll_back(with_own_search_path(sql));
  } catch (const DbError& e) {
    // Another runner created it first. The lock normally rules this out, but not a session
    // lock forced through transaction pooling, nor a run without the lock (adopt's check).
    if (!is_concurrent_create_duplicate(e.sqlstate())) throw;
  }
  if (!cockroach) ensure_summary();
  return std::nullopt;
}

void HistoryStore::refuse_row_rewriters() {
  // A BEFORE row trigger returning NULL drops the attempt row without an error (the step would
  // run again at every `up`), and one that rewrites it, or a rule, can change what it says.
  // stepwise's own are AFTER triggers; a log created by another tool or a DBA may carry these.
  const auto log = fmt::format("{}::pg_catalog.regclass", conn_.quote_literal(qualified()));
  const auto rows = conn_.execute(fmt::format(
      "SELECT 'trigger', t.tgname FROM pg_catalog.pg_trigger t WHERE {} AND NOT t.tgisinternal"
      " AND NOT {} AND NOT {} UNION ALL SELECT 'rule', r.rulename FROM pg_catalog.pg_rewrite r"
      " WHERE {} ORDER BY 2 LIMIT 1",
      pg_eq("t.tgrelid", log), pg_eq(pg_op("t.tgtype", "&", "2"), "0"), pg_eq("t.tgenabled", "'D'"),
      pg_eq("r.ev_class", log)));
  if (rows.empty() || !rows[0].at(1)) return;
  const auto kind = rows[0].at(0).value_or("trigger");
  const auto& name = *rows[0].at(1);
  throw Error(
      ExitCode::kFailed,
      fmt::format("log table {} has {} {} that stepwise did not create: it could drop or rewrite "
                  "the attempt rows stepwise records, so nothing was applied",
                  table_.display(), kind == "rule" ? "a rule" : "an enabled BEFORE trigger",
                  conn_.quote_identifier(name)),
      fmt::format("remove it (DROP {} {} ON {}), or give stepwise a log of its own with "
                  "--log-table",
                  kind == "rule" ? "RULE" : "TRIGGER", conn_.quote_identifier(name), qualified()));
}

void HistoryStore::upgrade_layout(bool cockroach, bool version_text, bool has_origin) {
  // Format 1 -> 2: the bigint version becomes its digits as text (a bigint's text form is
  // already normalised). Format 2 -> 3: the origin and notes columns (existing rows were all
  // run by stepwise: the default says so). Only the lock holder gets here, and it checked the
  // columns first, so a second run, or one of many racing runners, changes nothing.
  std::vector<std::string> statements;
  if (!version_text) {
    statements.push_back(fmt::format(
        "ALTER TABLE {} ALTER COLUMN version TYPE text USING version::text", qualified()));
    statements.push_back(fmt::format("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})", qualified(),
                                     conn_.quote_identifier(table_.table + "_version_digits"),
                                     kVersionCheck));
  }
  if (!has_origin) {
    statements.push_back(fmt::format(
        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS origin text NOT NULL DEFAULT 'stepwise'",
        qualified()));
    statements.push_back(fmt::format("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})", qualified(),
                                     conn_.quote_identifier(table_.table + "_origin_known"),
                                     kOriginCheck));
    statements.push_back(
        fmt::format("ALTER TABLE {} ADD COLUMN IF NOT EXISTS notes text", qualified()));
  }
  statements.push_back(
      fmt::format("COMMENT ON TABLE {} IS {}", qualified(),
                  conn_.quote_literal(fmt::format("stepwise attempt log, format {}", kLogFormat))));
  if (cockroach) {
    // CockroachDB changes a column's type only outside an explicit transaction, each schema
    // change on its own; the type is changed first and checked first, so a run cut short
    // between the statements leaves at most the CHECK or the comment behind (and the origin
    // column, checked next time, is added again only when missing).
    if (!version_text) conn_.execute("SET enable_experimental_alter_column_type_general = true");
    for (const auto& st : statements) conn_.execute(st);
    return;
  }
  // PostgreSQL: one transaction, all or nothing.
  std::string sql;
  for (const auto& st : statements) sql += (sql.empty() ? "" : ";\n") + st;
  execute_or_roll_back(with_own_search_path(sql));
}

std::string HistoryStore::insert_sql(const Step& step, Outcome outcome, std::string_view extra_cols,
                                     std::string_view extra_vals) {
  const auto& m = *step.migration;
  const auto& script = step.script();
  return fmt::format(
      "INSERT INTO {} (version, name, direction, outcome, checksum, checksum_algorithm, host, pid,"
      " tool_version{}) VALUES ({}, {}, '{}', '{}', {}, {}, {}, {}, {}{}) RETURNING id",
      qualified(), extra_cols, conn_.quote_literal(m.version.to_string()),
      conn_.quote_literal(m.name), to_string(step.direction), to_string(outcome),
      conn_.quote_literal(script.checksum), conn_.quote_literal(kChecksumAlgorithm),
      conn_.quote_literal(who_.host), who_.pid, conn_.quote_literal(who_.tool_version), extra_vals);
}

std::string HistoryStore::attempt_row_sql(const Step& step, std::string_view setup) {
  // The row goes in first: if the script itself holds a COMMIT, the row commits with it.
  return fmt::format("{}{};\n", setup, insert_sql(step, Outcome::kSucceeded, "", ""));
}

void HistoryStore::execute_or_roll_back(std::string_view sql,
                                        std::span<const std::string> copy_data) {
  try {
    conn_.execute_with_copy(sql, copy_data);
  } catch (const DbError&) {
    try {
      conn_.execute("ROLLBACK");
    } catch (const DbError&) {
    }
    throw;
  }
}

void HistoryStore::run_transactional(const Step& step, std::string_view setup,
                                     std::string_view fence, std::string_view body,
                                     std::span<const std::string> copy_data) {
  // An error anywhere skips the rest of the text and leaves the transaction to roll back.
  if (!fence.empty()) execute_or_roll_back(fmt::format("BEGIN;\n{}", fence));
  const auto text = fmt::format("{}{}{}{}", fence.empty() ? "BEGIN;\n" : "",
                                attempt_row_sql(step, setup), body, transactional_suffix());
  execute_or_roll_back(text, copy_data);
}

int HistoryStore::lines_before_body(const Step& step, std::string_view setup, bool fenced) {
  const auto prefix =
      (fenced ? std::string() : std::string("BEGIN;\n")) + attempt_row_sql(step, setup);
  return static_cast<int>(std::count(prefix.begin(), prefix.end(), '\n'));
}

std::string HistoryStore::transactional_suffix() {
  // "\n;" ends a last statement without a semicolon or a trailing "--" comment. An unclosed
  // quote or comment in the script swallows the suffix and fails to parse: nothing runs.
  return fmt::format(
      "\n;\nUPDATE {} SET finished_at = pg_catalog.clock_timestamp(), statements_done = 1,"
      " duration_ms = {} WHERE {};\nCOMMIT",
      qualified(), duration_ms_sql(),
      pg_eq("id", fmt::format("SELECT pg_catalog.currval(pg_catalog.pg_get_serial_sequence({}, "
                              "'id'))",
                              conn_.quote_literal(qualified()))));
}

std::string HistoryStore::running_sql(const Step& step) {
  // A resumed step's new attempt starts where the last one stopped: were this run killed
  // before its first progress update, the next must not redo what is done.
  return insert_sql(step, Outcome::kRunning, ", statements_done",
                    fmt::format(", {}", std::max(step.resume_from, 0)));
}

long long HistoryStore::insert_running(const Step& step) {
  const auto rows = conn_.execute(running_sql(step));
  return to_ll(rows.at(0).at(0));
}

void HistoryStore::set_progress(long long id, int statements_done) {
  conn_.execute(progress_sql(id, statements_done));
}

void HistoryStore::run_with_progress(long long id, int statements_done, std::string_view statement,
                                     std::span<const std::string> copy_data) {
  // "BEGIN; " on the statement's first line keeps the server's LINE n right.
  execute_or_roll_back(
      fmt::format("BEGIN; {}\n;\n{};\nCOMMIT", statement, progress_sql(id, statements_done)),
      copy_data);
}

std::string HistoryStore::progress_sql(long long id, int statements_done) {
  return fmt::format("UPDATE {} SET statements_done = {} WHERE {}", qualified(), statements_done,
                     pg_eq("id", std::to_string(id)));
}

void HistoryStore::finish(long long id, Outcome outcome, int statements_done,
                          const DbError* error) {
  conn_.execute(fmt::format(
      "UPDATE {} SET outcome = '{}', statements_done = {}, finished_at ="
      " pg_catalog.clock_timestamp(), duration_ms = {}, error = {}, sqlstate = {} WHERE {}",
      qualified(), to_string(outcome), statements_done, duration_ms_sql(),
      error ? conn_.quote_literal(error_text(*error)) : "NULL",
      error && !error->sqlstate().empty() ? conn_.quote_literal(error->sqlstate()) : "NULL",
      pg_eq("id", std::to_string(id))));
}

void HistoryStore::insert_finished(const Step& step, Outcome outcome, double seconds,
                                   int statements_done, const DbError* error) {
  const auto vals = fmt::format(
      ", {}, pg_catalog.clock_timestamp(), {}, {}, {}, {}", ms_ago_sql(seconds * 1000),
      static_cast<long long>(seconds * 1000), statements_done,
      error ? conn_.quote_literal(error_text(*error)) : "NULL",
      error && !error->sqlstate().empty() ? conn_.quote_literal(error->sqlstate()) : "NULL");
  conn_.execute(
      insert_sql(step, outcome,
                 ", started_at, finished_at, duration_ms, statements_done, error, sqlstate", vals));
}

void HistoryStore::record_backup(const Version& database_version, const std::string& path,
                                 const std::string& checksum, double seconds) {
  conn_.execute(fmt::format(
      "INSERT INTO {} (kind, version, name, direction, outcome, checksum, checksum_algorithm, "
      "started_at,"
      " finished_at, duration_ms, host, pid, tool_version) VALUES ('backup', {}, {}, 'none', "
      "'succeeded', {}, {},"
      " {}, pg_catalog.clock_timestamp(), {}, {}, {}, {})",
      qualified(), conn_.quote_literal(database_version.to_string()), conn_.quote_literal(path),
      conn_.quote_literal(checksum), conn_.quote_literal(kChecksumAlgorithm),
      ms_ago_sql(seconds * 1000), static_cast<long long>(seconds * 1000),
      conn_.quote_literal(who_.host), who_.pid, conn_.quote_literal(who_.tool_version)));
}

void HistoryStore::record_repair(const Step& step, bool applied) {
  const auto note =
      applied ? "marked applied by stepwise repair" : "marked rolled back by stepwise repair";
  conn_.execute(insert_sql(
      step, applied ? Outcome::kSucceeded : Outcome::kAbandoned,
      ", started_at, finished_at, duration_ms, statements_done, error",
      fmt::format(", pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp(), 0, 0, {}",
                  conn_.quote_literal(note))));
}

void HistoryStore::record_adopted(const std::vector<AdoptedRow>& rows, std::string_view origin,
                                  std::string_view held_check) {
  if (rows.empty()) return;
  // One round trip, one transaction: every row or none. With a lock a pooler can lose, the
  // transaction first proves that its server session holds it.
  std::string sql = "BEGIN;\n";
  if (!held_check.empty()) {
    std::string tag = "$stepwise_adopt$";
    for (int i = 0; std::string(held_check).find(tag) != std::string::npos; ++i)
      tag = fmt::format("$stepwise_adopt{}$", i);
    sql += fmt::format(
        "DO {0}BEGIN IF NOT ({1}) THEN RAISE EXCEPTION 'the migration lock is not held by the "
        "server session recording the adoption' USING ERRCODE = '{2}'; END IF; END{0};\n",
        tag, held_check, kFenceSqlstate);
  }
  for (const auto& r : rows) {
    const auto& m = *r.migration;
    const auto at = r.applied_at_ms ? fmt::format("pg_catalog.to_timestamp({:.3f})",
                                                  static_cast<double>(*r.applied_at_ms) / 1000.0)
                                    : std::string("pg_catalog.clock_timestamp()");
    sql += fmt::format(
        "INSERT INTO {} (version, name, direction, outcome, checksum, checksum_algorithm, host, "
        "pid, tool_version, started_at, finished_at, duration_ms, statements_done, origin, notes)"
        " VALUES ({}, {}, 'up', 'succeeded', {}, {}, {}, {}, {}, {}, {}, 0, 0, {}, {});\n",
        qualified(), conn_.quote_literal(m.version.to_string()), conn_.quote_literal(m.name),
        conn_.quote_literal(m.up.checksum), conn_.quote_literal(kChecksumAlgorithm),
        conn_.quote_literal(who_.host), who_.pid, conn_.quote_literal(who_.tool_version), at, at,
        conn_.quote_literal(origin), r.notes.empty() ? "NULL" : conn_.quote_literal(r.notes));
  }
  sql += "COMMIT";
  try {
    conn_.execute(sql);
  } catch (const DbError&) {
    try {
      conn_.execute("ROLLBACK");
    } catch (const DbError&) {
    }
    throw;
  }
}

void HistoryStore::mark_abandoned(long long id) {
  conn_.execute(
      fmt::format("UPDATE {} SET outcome = 'abandoned', finished_at = pg_catalog.clock_timestamp(),"
                  " error = coalesce(error, 'the runner stopped before the step finished')"
                  " WHERE {} AND {}",
                  qualified(), pg_eq("id", std::to_string(id)), pg_eq("outcome", "'running'")));
}

std::string HistoryStore::step_fence(const Step& step, std::optional<long long> latest_attempt,
                                     std::string_view held_check) {
  const auto key = static_cast<unsigned long long>(lock_key(table_));
  const auto version = conn_.quote_literal(fmt::format("{}", step.migration->version));
  // The transaction-level lock (the two-int4 key space, apart from the session lock's bigint
  // one) makes step transactions of racing runners take turns, so that the second one's check
  // sees the first one's attempt row.
  // "newest IS DISTINCT FROM planned" without the `=` that IS DISTINCT FROM looks up by name
  // (in parentheses: PL/pgSQL's IF reads its condition up to the first THEN outside them).
  const auto planned = latest_attempt ? std::to_string(*latest_attempt) : std::string("NULL");
  auto body = fmt::format(
      "DECLARE newest bigint;\n"
      "BEGIN\n"
      "  PERFORM pg_catalog.pg_advisory_xact_lock({0}, {1});\n"
      "  IF NOT ({2}) THEN\n"
      "    RAISE EXCEPTION 'the migration lock is not held by the server session running this "
      "step' USING ERRCODE = '{3}';\n"
      "  END IF;\n"
      "  SELECT pg_catalog.max(id) INTO newest FROM {4} WHERE {7} AND {8};\n"
      "  IF (CASE WHEN newest IS NULL OR {6} IS NULL THEN newest IS NOT NULL OR {6} IS NOT NULL"
      " ELSE NOT ({9}) END) THEN\n"
      "    RAISE EXCEPTION 'another runner recorded an attempt of version % after this run "
      "planned it', {5} USING ERRCODE = '{3}';\n"
      "  END IF;\n"
      "END",
      static_cast<std::int32_t>(key >> 32), static_cast<std::int32_t>(key & 0xffffffffull),
      held_check, kFenceSqlstate, qualified(), version, planned, pg_eq("kind", "'migration'"),
      pg_eq("version", version), pg_eq("newest", planned));
  return fmt::format("DO {0}{1}{0};\n", dollar_tag(body, "stepwise_fence"), body);
}

long long HistoryStore::insert_running_fenced(const Step& step, std::string_view fence) {
  // Two round trips in one transaction: a pooler keeps the server session for the transaction.
  try {
    conn_.execute(fmt::format("BEGIN;\n{}", fence));
    const auto rows = conn_.execute(running_sql(step));
    conn_.execute("COMMIT");
    return to_ll(rows.at(0).at(0));
  } catch (const DbError&) {
    try {
      conn_.execute("ROLLBACK");
    } catch (const DbError&) {
    }
    throw;
  }
}

}  // namespace stepwise
