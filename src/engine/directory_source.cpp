#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "stepwise/errors.hpp"
#include "stepwise/source.hpp"

namespace stepwise {

namespace {

constexpr std::size_t kMaxReleasesBytes = 4u * 1024u * 1024u;

// Reads at most `limit` bytes of an open file; returns its size on disk in *size.
// Plain POSIX calls: loading thousands of files sits on every `up`'s path.
std::string read_fd(int fd, const std::string& path, std::size_t limit, std::size_t* size) {
  struct stat st {};
  if (fstat(fd, &st) != 0)
    throw SourceError(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  *size = static_cast<std::size_t>(st.st_size);
  std::string bytes(std::min(*size, limit), '\0');
  std::size_t got = 0;
  while (got < bytes.size()) {
    const auto n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SourceError(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return bytes;
}

}  // namespace

SourceFiles load_directory(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr)
    throw SourceError(
        fmt::format("--source {}: not a readable directory: {}", dir, std::strerror(errno)));
  const int dfd = dirfd(d);
  SourceFiles out;
  out.origin = dir;
  std::vector<std::string> names;
  while (const dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name == kReleasesFile || (name.ends_with(".sql") && !name.starts_with(".")))
      names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const auto path = dir + "/" + name;
    // Only regular files (following links): a folder or a FIFO named x.sql is not opened.
    struct stat st {};
    if (fstatat(dfd, name.c_str(), &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
    const int fd = openat(dfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      closedir(d);
      throw SourceError(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
    }
    try {
      std::size_t size = 0;
      if (name == kReleasesFile) {
        out.releases_json = read_fd(fd, path, kMaxReleasesBytes, &size);
        if (size > kMaxReleasesBytes) {  // the catch below closes fd and d
          throw SourceError(fmt::format("{}: file is {} bytes, larger than the limit of {} bytes",
                                        kReleasesFile, size, kMaxReleasesBytes));
        }
      } else {
        MigrationFile f;
        f.name = name;
        // An oversized file is read only up to the limit; its real size goes to the validator.
        f.bytes = read_fd(fd, path, kMaxMigrationBytes + 1, &size);
        f.size = size;
        out.files.push_back(std::move(f));
      }
    } catch (...) {
      close(fd);
      closedir(d);
      throw;
    }
    close(fd);
  }
  closedir(d);
  // expected/*.json, when the folder has one.
  const auto exp_dir = dir + "/" + std::string(kExpectedDir);
  if (DIR* e = opendir(exp_dir.c_str())) {
    std::vector<std::string> json_names;
    while (const dirent* ent = readdir(e)) {
      std::string_view n = ent->d_name;
      if (n.ends_with(".json") && !n.starts_with(".")) json_names.emplace_back(n);
    }
    for (const auto& n : json_names) {
      const auto path = exp_dir + "/" + n;
      const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd < 0) continue;
      struct stat st {};
      std::size_t size = 0;
      if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        out.expected[n] = read_fd(fd, path, 64u << 20, &size);
      close(fd);
    }
    closedir(e);
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
  if (files.releases_json) {
    try {
      // With broken migrations, check the releases' own shape (versions are not known then).
      out.releases =
          parse_releases(*files.releases_json, problems.empty() ? &out.migrations : nullptr);
    } catch (const SourceError& e) {
      problems += (problems.empty() ? "" : "\n") + std::string(e.what());
    }
  }
  for (const auto& [name, text] : files.expected) {
    const auto stem = name.substr(0, name.size() - 5);
    const auto v = Version::parse(stem);  // any number of digits; leading zeros ignored
    if (!v || (problems.empty() && out.migrations.find(*v) == nullptr)) {
      problems += (problems.empty() ? "" : "\n") +
                  fmt::format("{}/{}: expected <VERSION>.json naming a known migration version",
                              kExpectedDir, name);
      continue;
    }
    if (!out.expected.emplace(*v, text).second) {
      problems +=
          (problems.empty() ? "" : "\n") +
          fmt::format("{}/{}: a second expected schema for version {}", kExpectedDir, name, *v);
      continue;
    }
  }
  if (!problems.empty()) throw SourceError(problems);
  return out;
}

}  // namespace stepwise
