#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <future>
#include <thread>

#include "commands.hpp"
#include "stepwise/describe.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/validation.hpp"

namespace stepwise::cli {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// One full check: history (one query) and, when an expected description exists for the
// database's version, drift (catalog queries). Never writes, never locks.
namespace {
Validation check_in(Context& ctx, const ValidateOptions& options, const Expectation& exp,
                    bool snapshot) {
  const auto& source = ctx.source();
  auto& conn = ctx.connect();
  HistoryStore store(conn, ctx.log_table(), runner_identity());
  auto v = evaluate(source.migrations, store.read(HistoryStore::Detail::kFull), exp);
  if (!v.findings.empty() && v.findings.front().kind == FindingKind::kNotMigrated) return v;
  if (options.skip_drift) {
    v.notes.push_back("drift not checked (--skip-drift)");
    return v;
  }
  const auto it = source.expected.find(v.database_version);
  if (it == source.expected.end()) {
    v.notes.push_back(fmt::format("no expected schema recorded for version {}: drift not checked",
                                  v.database_version));
    return v;
  }
  // The expected description is parsed while the server answers the catalog queries: for a
  // large schema each takes about as long as the other.
  auto expected = std::async(std::launch::async, [&text = it->second, v = v.database_version] {
    return parse_schema_json(text, fmt::format("expected/{}.json", v));
  });
  auto d = ctx.describe_options(options.schemas);
  d.in_caller_transaction = snapshot;
  DiffOptions diff;
  diff.ignore = options.ignore;
  auto actual = describe_postgres(conn, d);
  add_drift(v, diff_schemas(expected.get(), actual, diff));
  return v;
}
}  // namespace

// The log and the catalogs are read in one read-only snapshot (PostgreSQL), so a migration
// committing in between cannot show as drift. Never writes, never takes the lock.
Validation check_database(Context& ctx, const ValidateOptions& options, const Expectation& exp) {
  if (ctx.engine().partial_catalog()) return check_in(ctx, options, exp, false);
  return in_read_only_snapshot(ctx.connect(), [&] { return check_in(ctx, options, exp, true); });
}

void print_validation(const Context& ctx, const Validation& v) {
  if (ctx.output() == OutputFormat::kJson) {
    nlohmann::json findings = nlohmann::json::array();
    for (const auto& f : v.findings)
      findings.push_back({{"kind", std::string(to_string(f.kind))},
                          {"object", f.object},
                          {"expected", f.expected},
                          {"actual", f.actual},
                          {"fix", f.fix}});
    ctx.print_json({{"command", "validate"},
                    {"ok", v.ok()},
                    {"exit_code", static_cast<int>(v.exit_code())},
                    {"database_version", v.database_version},
                    {"expected", v.expectation.label},
                    {"expected_min", v.expectation.min},
                    {"expected_max", v.expectation.max},
                    {"findings", findings},
                    {"notes", v.notes}});
    return;
  }
  for (const auto& f : v.findings) {
    fmt::print("{}\t{}\texpected: {}\tactual: {}\n", to_string(f.kind), f.object,
               f.expected.empty() ? "-" : f.expected, f.actual.empty() ? "-" : f.actual);
    if (!f.fix.empty()) {
      std::string fix = f.fix;
      for (std::size_t p = 0; (p = fix.find('\n', p)) != std::string::npos; p += 6)
        fix.replace(p, 1, "\n      ");
      fmt::print("  fix: {}\n", fix);
    }
  }
  for (const auto& n : v.notes) fmt::print("note: {}\n", n);
  if (v.ok())
    fmt::print("valid: database version {} fits {}\n", v.database_version, v.expectation.label);
  else
    fmt::print("invalid: {} finding(s); database version {}, expected {}\n", v.findings.size(),
               v.database_version, v.expectation.label);
  std::fflush(stdout);
}

int run_validate(Context& ctx, const ValidateOptions& options) {
  const auto& source = ctx.source();
  const auto exp = expectation_for(source.migrations, source.releases, options.release);
  if (!options.wait) {
    const auto v = check_database(ctx, options, exp);
    print_validation(ctx, v);
    return static_cast<int>(v.exit_code());
  }
  // --wait: poll cheaply while another runner migrates; give up on anything waiting cannot fix.
  const auto timeout = parse_duration("--timeout", options.timeout);
  const auto start = Clock::now();
  auto next_log = start;
  milliseconds nap{250};
  while (true) {
    const auto v = check_database(ctx, options, exp);
    const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    if (v.ok() || !v.worth_waiting()) {
      print_validation(ctx, v);
      return static_cast<int>(v.exit_code());
    }
    if (waited >= timeout || ctx.stop.load()) {
      print_validation(ctx, v);
      spdlog::error("the database did not validate within {}", format_duration(timeout));
      return static_cast<int>(ExitCode::kWaitTimeout);
    }
    if (Clock::now() >= next_log) {
      spdlog::info("waiting for the database to reach {} ({} so far): {} {}", exp.label,
                   format_duration(waited), to_string(v.findings.front().kind),
                   v.findings.front().actual);
      next_log = Clock::now() + milliseconds(5000);
    }
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, milliseconds(2000));
  }
}

}  // namespace stepwise::cli
