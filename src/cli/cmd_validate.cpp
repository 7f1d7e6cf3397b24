#include <fmt/format.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "commands.hpp"
#include "stepwise/describe.hpp"
#include "stepwise/drift.hpp"
#include "stepwise/duration.hpp"
#include "stepwise/fix_script.hpp"
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
  // large schema each takes about as long as the other. Once it is, live objects equal to
  // theirs are not kept (ExpectedMatcher): on a schema without drift almost nothing is.
  struct Expected {
    explicit Expected(SchemaDescription d) : description(std::move(d)), matcher(description) {}
    SchemaDescription description;
    ExpectedMatcher matcher;
  };
  std::atomic<Expected*> ready{nullptr};
  auto expected = std::async(
      std::launch::async, [&ctx, &ready, &text = it->second,
                           release = options.release_expected_text, v = v.database_version] {
        auto e =
            std::make_unique<Expected>(parse_schema_json(text, fmt::format("expected/{}.json", v)));
        if (release) ctx.release_expected_text(v);
        ready.store(e.get(), std::memory_order_release);
        return e;
      });
  auto d = ctx.describe_options(options.schemas);
  d.in_caller_transaction = snapshot;
  d.keep = [&ready](const SchemaObject& o) {
    auto* e = ready.load(std::memory_order_acquire);
    return e == nullptr || e->matcher.keep(o);
  };
  DiffOptions diff;
  diff.ignore = options.ignore;
  if (options.ignore_extensions) diff.ignore.emplace_back("kind:extension");
  auto actual = ctx.describe(conn, d);
  const auto e = expected.get();
  e->matcher.sweep(actual);
  if (e->matcher.matches_all(actual)) return v;  // no drift
  e->matcher.restore(actual);
  add_drift(v, diff_schemas(e->description, actual, diff));
  return v;
}
}  // namespace

// The log and the catalogs are read in one read-only snapshot (PostgreSQL), so a migration
// committing in between cannot show as drift. Never writes, never takes the lock.
Validation check_database(Context& ctx, const ValidateOptions& options, const Expectation& exp) {
  if (!ctx.engine().rules().snapshot_reads()) return check_in(ctx, options, exp, false);
  return in_read_only_snapshot(ctx.connect(), [&] { return check_in(ctx, options, exp, true); });
}

namespace {
// A value fit for one line: as it is when short and single-line, else a hint (a function's
// definition: the first line that differs from `other`); the full text is in the JSON output.
std::string one_line(const std::string& value, const std::string& other) {
  if (value.empty()) return "-";
  if (value.find('\n') == std::string::npos && value.size() <= 160) return value;
  std::size_t line = 1, a = 0, b = 0;
  while (true) {
    const auto ea = value.find('\n', a);
    const auto eb = other.find('\n', b);
    const auto la = value.substr(a, ea == std::string::npos ? std::string::npos : ea - a);
    const auto lb = b >= other.size()
                        ? std::string()
                        : other.substr(b, eb == std::string::npos ? std::string::npos : eb - b);
    if (la != lb || ea == std::string::npos) {
      auto shown = la;
      while (!shown.empty() && shown.front() == ' ') shown.erase(0, 1);
      if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
      return fmt::format("({} lines) line {}: {}", std::count(value.begin(), value.end(), '\n') + 1,
                         line, shown);
    }
    a = ea + 1;
    b = eb == std::string::npos ? other.size() : eb + 1;
    ++line;
  }
}
}  // namespace

nlohmann::json validation_json(const Validation& v) {
  nlohmann::json findings = nlohmann::json::array();
  std::size_t drift = 0;
  for (const auto& f : v.findings) {
    nlohmann::json j = {{"kind", std::string(to_string(f.kind))},
                        {"object", f.object},
                        {"expected", f.expected},
                        {"actual", f.actual},
                        {"fix", f.fix}};
    if (f.kind == FindingKind::kDrift && drift < v.drift.size()) {
      const auto& d = v.drift[drift++];
      j["object_kind"] = d.kind;
      j["name"] = d.object;
      j["change"] = d.change;
      j["field"] = d.field;
      j["hazards"] = d.hazards;
    }
    findings.push_back(std::move(j));
  }
  return {{"command", "validate"},
          {"ok", v.ok()},
          {"exit_code", static_cast<int>(v.exit_code())},
          {"database_version", v.database_version},
          {"expected", v.expectation.label},
          {"expected_min", v.expectation.min},
          {"expected_max", v.expectation.max},
          {"findings", findings},
          {"notes", v.notes}};
}

void print_validation(const Context& ctx, const Validation& v) {
  if (ctx.output() == OutputFormat::kJson) {
    ctx.print_json(validation_json(v));
    return;
  }
  for (const auto& f : v.findings) {
    fmt::print("{}\t{}\texpected: {}\tactual: {}\n", to_string(f.kind), f.object,
               one_line(f.expected, f.actual), one_line(f.actual, f.expected));
    if (f.fix.empty()) continue;
    if (f.fix.find('\n') == std::string::npos && f.fix.size() <= 200)
      fmt::print("  fix: {}\n", f.fix);
    else if (f.kind == FindingKind::kDrift)
      fmt::print(
          "  fix: {} lines of SQL (validate --fix-script FILE writes them; --output json "
          "shows them)\n",
          std::count(f.fix.begin(), f.fix.end(), '\n') + 1);
    else
      fmt::print("  fix: {}\n", one_line(f.fix, ""));
  }
  for (const auto& n : v.notes) fmt::print("note: {}\n", n);
  if (v.ok())
    fmt::print("valid: database version {} fits {}\n", v.database_version, v.expectation.label);
  else
    fmt::print("invalid: {} finding(s); database version {}, expected {}\n", v.findings.size(),
               v.database_version, v.expectation.label);
  std::fflush(stdout);
}

namespace {
// --fix-script FILE: the script for every drift finding (an empty transaction when none).
void write_fix_script(const ValidateOptions& options, const Validation& v) {
  if (options.fix_script.empty()) return;
  std::ofstream f(options.fix_script, std::ios::binary | std::ios::trunc);
  f << fix_script(v.drift);
  f.close();
  if (!f)
    throw Error(ExitCode::kFailed,
                fmt::format("--fix-script {}: cannot write", options.fix_script));
}
}  // namespace

int run_validate(Context& ctx, const ValidateOptions& options) {
#if defined(__GLIBC__)
  // One malloc arena: the expected description is read on one thread while two others build
  // the live one; with an arena each, what one frees is not reused by the others (5 MB more
  // peak RSS at 10,000 tables, and no measurable time saved).
  (void)mallopt(M_ARENA_MAX, 1);
#endif
  const auto& source = ctx.source();
  const auto exp = expectation_for(source.migrations, source.releases, options.release);
  if (!options.wait) {
    auto once = options;
    once.release_expected_text = true;
    const auto v = check_database(ctx, once, exp);
    write_fix_script(options, v);
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
      write_fix_script(options, v);
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
