// CockroachDB's side of the engine seam (stepwise/engine.hpp): the lease lock, statement by
// statement steps, a partial pg_catalog and its spelling of types.
#include <cctype>

#include "stepwise/engine.hpp"
#include "stepwise/errors.hpp"

namespace stepwise {

void CockroachRules::check_lock_strategy(LockStrategy requested) const {
  if (requested == LockStrategy::kAdvisory)
    throw UsageError(
        "--lock-strategy advisory: CockroachDB has no working advisory locks; use lease (the "
        "default there)");
}

LockKind CockroachRules::choose_lock(LockStrategy requested, bool /*pooled*/) const {
  // Advisory locks are no-ops there; the lease row is the lock.
  check_lock_strategy(requested);
  return LockKind::kLease;
}

std::string CockroachRules::session_setup() const {
  // Our statements run one per implicit transaction; should one ever arrive inside an explicit
  // transaction, do not let the server commit it silently before a schema change (the v25.1
  // default) — fail loudly instead.
  return on_server_ ? "SET autocommit_before_ddl = false" : "";
}

SchemaDescription CockroachRules::describe(Connection& conn, const DescribeOptions& options) const {
  // No snapshot (validate reads the log and the catalogs apart); each catalog query on its own,
  // a kind the server cannot report is unknown (options.partial_catalog).
  auto read = options;
  read.in_caller_transaction = true;
  read.partial_catalog = true;
  read.keep = nullptr;  // objects are normalized after reading: nothing can be left out before
  SchemaDescription d;
  if (options.in_caller_transaction) {
    d = read_catalogs(conn, read);
  } else {
    conn.execute("SET search_path = ''");
    d = read_catalogs(conn, read);
    conn.execute("RESET search_path");
  }
  normalize_catalog(d);
  return d;
}

void CockroachRules::normalize_catalog(SchemaDescription& d) const {
  normalize_cockroach(d);
}

std::string normalize_cockroach_type(std::string_view type) {
  static const std::pair<std::string_view, std::string_view> kAliases[] = {
      {"int8", "bigint"},
      {"int", "bigint"},
      {"int64", "bigint"},
      {"int4", "integer"},
      {"int2", "smallint"},
      {"float8", "double precision"},
      {"float", "double precision"},
      {"float4", "real"},
      {"json", "jsonb"},
      {"string", "text"},
      {"bool", "boolean"},
      {"timestamptz", "timestamp with time zone"},
      {"timestamp", "timestamp without time zone"},
      {"decimal", "numeric"},
      {"bytes", "bytea"}};
  std::string t(type);
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string suffix;
  if (t.ends_with("[]")) {
    suffix = "[]";
    t.resize(t.size() - 2);
  }
  for (const auto& [from, to] : kAliases)
    if (t == from) return std::string(to) + suffix;
  return std::string(type);
}

void normalize_cockroach(SchemaDescription& d) {
  std::erase_if(d.objects, [](const SchemaObject& o) {
    if (o.kind == "column") return o.name == "rowid" && o.attr("default") == "unique_rowid()";
    const auto def = o.attr("definition");
    if (o.kind == "constraint" || o.kind == "index")
      return def.find("(rowid") != std::string::npos &&
             def.find("PRIMARY KEY") != std::string::npos;
    return false;
  });
  for (auto& o : d.objects) {
    if (o.kind == "column" && o.attrs.count("type"))
      o.attrs["type"] = normalize_cockroach_type(o.attrs["type"]);
    if (o.kind == "type" && o.attrs.count("base_type"))
      o.attrs["base_type"] = normalize_cockroach_type(o.attrs["base_type"]);
  }
  canonicalize(d);
}

}  // namespace stepwise
