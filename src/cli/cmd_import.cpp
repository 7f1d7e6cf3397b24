// `stepwise import --from TOOL SRC DEST`: another tool's migration folder in stepwise's layout.
// No database; DEST is written only when every file converts and the result loads as a set.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.hpp"
#include "stepwise/adopt.hpp"
#include "stepwise/text.hpp"

namespace stepwise::cli {

int run_import(Context& ctx, const ImportOptions& o) {
  namespace fs = std::filesystem;
  const auto tool = parse_tool(o.from);
  if (!tool)
    throw UsageError(
        fmt::format("import: --from {}: unknown tool (dbmate, golang-migrate, goose, "
                    "node-pg-migrate, postgrator, flyway, sqitch, graphile-migrate)",
                    printable(o.from, 40)));
  std::error_code ec;
  if (!fs::is_directory(o.src, ec))
    throw UsageError(fmt::format("import: {} is not a folder", printable(o.src, 200)));
  if (fs::exists(o.dest, ec) && !fs::is_empty(o.dest, ec))
    throw UsageError(
        fmt::format("import: {} exists and is not empty: nothing written", printable(o.dest, 200)));
  std::vector<MigrationFile> files;
  // sqitch keeps its scripts in deploy/ and revert/ beside sqitch.plan: named "deploy/x.sql".
  const auto read_folder = [&](const fs::path& dir, const std::string& prefix) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::ostringstream s;
      s << in.rdbuf();
      if (!in && !in.eof())
        throw SourceError(fmt::format("{}: cannot be read", printable(e.path().string(), 200)));
      MigrationFile f;
      f.name = prefix + e.path().filename().string();
      f.bytes = s.str();
      files.push_back(std::move(f));
    }
  };
  // graphile-migrate: its migrations folder (with committed/ and current.sql) or committed/.
  if (*tool == Tool::kGraphileMigrate && fs::is_directory(fs::path(o.src) / "committed", ec))
    read_folder(fs::path(o.src) / "committed", "");
  else
    read_folder(o.src, "");
  if (*tool == Tool::kSqitch)
    for (const char* sub : {"deploy", "revert"})
      if (fs::is_directory(fs::path(o.src) / sub, ec))
        read_folder(fs::path(o.src) / sub, std::string(sub) + "/");
  if (ec) throw UsageError(fmt::format("import: {}: {}", printable(o.src, 200), ec.message()));
  std::sort(files.begin(), files.end(),
            [](const MigrationFile& a, const MigrationFile& b) { return a.name < b.name; });
  std::vector<std::string> skipped;
  const auto out = import_folder(*tool, files, &skipped);
  const auto set = build_migration_set(out);  // the result must load: SourceError otherwise
  for (const auto& s : skipped) spdlog::info("skipped {} (not a {} migration)", s, o.from);
  fs::create_directories(o.dest, ec);
  if (ec)
    throw UsageError(
        fmt::format("import: cannot create {}: {}", printable(o.dest, 200), ec.message()));
  for (const auto& f : out) {
    std::ofstream w(fs::path(o.dest) / f.name, std::ios::binary);
    w << f.bytes;
    if (!w) throw UsageError(fmt::format("import: cannot write {}", printable(f.name, 200)));
  }
  if (ctx.output() == OutputFormat::kJson) {
    nlohmann::json names = nlohmann::json::array();
    for (const auto& f : out) names.push_back(f.name);
    ctx.print_json({{"command", "import"},
                    {"ok", true},
                    {"from", o.from},
                    {"files", names},
                    {"migrations", set.size()},
                    {"skipped", skipped}});
  } else {
    for (const auto& f : out) fmt::print("wrote {}\n", f.name);
    fmt::print("imported {} migration(s) ({} file(s)) from {} into {}\n", set.size(), out.size(),
               o.from, o.dest);
  }
  return 0;
}

}  // namespace stepwise::cli
