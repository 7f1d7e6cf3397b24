#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "stepwise/errors.hpp"
#include "stepwise/source.hpp"

namespace stepwise {

namespace fs = std::filesystem;

namespace {
std::string read_file(const fs::path& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SourceError(fmt::format("{}: cannot read: {}", path.string(), std::strerror(errno)));
  std::string bytes;
  bytes.resize(limit);
  in.read(bytes.data(), static_cast<std::streamsize>(limit));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}
}  // namespace

SourceFiles load_directory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw SourceError(fmt::format("--source {}: not a readable directory", dir));
  SourceFiles out;
  out.origin = dir;
  std::vector<fs::path> paths;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) paths.push_back(it->path());
  }
  if (ec) throw SourceError(fmt::format("--source {}: cannot list: {}", dir, ec.message()));
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    const auto name = p.filename().string();
    if (name == kReleasesFile) {
      out.releases_json = read_file(p, 4u * 1024u * 1024u);
      continue;
    }
    if (!name.ends_with(".sql")) continue;
    const auto size = fs::file_size(p, ec);
    MigrationFile f;
    f.name = name;
    // An oversized file is read only up to the limit; its real size goes to the validator.
    f.bytes = read_file(p, kMaxMigrationBytes + 1);
    f.size = ec ? f.bytes.size() : static_cast<std::size_t>(size);
    out.files.push_back(std::move(f));
  }
  return out;
}

Source validate_source(const SourceFiles& files) {
  Source out;
  out.origin = files.origin;
  std::string problems;
  try {
    out.migrations = build_migration_set(files.files);
  } catch (const SourceError& e) {
    problems = e.what();
  }
  if (files.releases_json && problems.empty()) {
    out.releases = parse_releases(*files.releases_json, out.migrations);
  }
  if (!problems.empty()) throw SourceError(problems);
  return out;
}

}  // namespace stepwise
