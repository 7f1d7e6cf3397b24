#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "commands.hpp"
#include "output.hpp"
#include "stepwise/describe.hpp"
#include "stepwise/runner.hpp"

namespace stepwise::cli {

namespace {
// Creates a scratch database and drops it whatever happens.
class ScratchDatabase {
 public:
  ScratchDatabase(Connection& admin) : admin_(admin) {
    std::random_device rd;
    name_ = fmt::format("stepwise_scratch_{}_{:08x}", getpid(), rd());
    // From template0: whatever a DBA added to template1 (extensions, tables, grants) on the
    // generating server must not become "expected".
    admin_.execute("CREATE DATABASE " + admin_.quote_identifier(name_) + " TEMPLATE template0");
  }
  ~ScratchDatabase() {
    try {
      admin_.execute("DROP DATABASE IF EXISTS " + admin_.quote_identifier(name_) + " WITH (FORCE)");
    } catch (...) {
      spdlog::warn("could not drop the scratch database {}", name_);
    }
  }
  [[nodiscard]] const std::string& name() const { return name_; }
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

 private:
  Connection& admin_;
  std::string name_;
};
}  // namespace

// Applies the set release by release on a scratch database and writes the description at each
// release boundary (and at the head) to <out>/<VERSION>.json.
int run_generate_expected(Context& ctx, const GenerateExpectedOptions& options) {
  const auto& source = ctx.source();
  std::string out = options.out;
  if (out.empty()) {
    if (ctx.options().source_dir.empty())
      throw UsageError("generate-expected: --out DIR is required with the embedded migration set");
    out = ctx.options().source_dir + "/" + std::string(kExpectedDir);
  }
  std::set<Version> versions;
  for (const auto& r : source.releases.all()) versions.insert(r.schema);
  if (!source.migrations.empty()) versions.insert(source.migrations.latest());

  auto& admin = ctx.connect();
  ScratchDatabase scratch(admin);
  auto conn = ctx.open_database(scratch.name());
  HistoryStore store(*conn, ctx.log_table(), runner_identity());
  const auto& rules = ctx.engine().rules();
  // Nobody else knows the scratch database: the lock (the engine's own) only keeps the
  // runner's contract.
  LeaseLock::Options o;
  o.log_table = ctx.log_table();
  o.holder_id = fmt::format("generate-expected:{}", getpid());
  o.open_connection = [&ctx, &scratch] { return ctx.open_database(scratch.name()); };
  const auto lock = make_lock(rules.choose_lock(LockStrategy::kAuto, false), *conn, std::move(o));
  LogReporter reporter;
  Runner runner(
      *conn, store,
      [&] {
        ExecutionProfile p{lock.get(), rules.statement_by_statement(), rules.session_setup()};
        p.rules = &rules;
        return p;
      },
      reporter);
  std::filesystem::create_directories(out);
  for (const auto& v : versions) {
    RunOptions run;
    run.target = Target::at(v);
    run.stop = &ctx.stop;
    (void)runner.run(source.migrations, run);
    auto describe = ctx.describe_options({});
    describe.open_helper = [&ctx, &scratch] { return ctx.open_database(scratch.name()); };
    const auto json = to_json(ctx.describe(*conn, describe));
    const auto path = fmt::format("{}/{}.json", out, v);
    std::ofstream f(path, std::ios::binary);
    f << json;
    if (!f) throw Error(ExitCode::kFailed, fmt::format("{}: cannot write", path));
    fmt::print("wrote {}\n", path);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace stepwise::cli
