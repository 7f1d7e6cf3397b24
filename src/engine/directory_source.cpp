#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "stepwise/checksum.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/source.hpp"

namespace stepwise {

namespace {

// strerror() is not promised to be thread-safe, and the readers run on several threads.
std::string error_text(int code) {
  return std::error_code(code, std::generic_category()).message();
}

constexpr std::size_t kMaxReleasesBytes = 4u * 1024u * 1024u;

// Reads at most `limit` bytes of an open file; returns its size on disk in *size.
// Plain POSIX calls: loading thousands of files sits on every `up`'s path.
// `known_size`: the size open_checked's fstat saw (one system call fewer per file).
std::string read_fd(int fd, const std::string& path, std::size_t limit, std::size_t* size,
                    std::size_t known_size) {
  *size = known_size;
  std::string bytes(std::min(*size, limit), '\0');
  std::size_t got = 0;
  while (got < bytes.size()) {
    const auto n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SourceError(fmt::format("{}: cannot read: {}", path, error_text(errno)));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return bytes;
}

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// The canonical path of the folder, to tell whether a link leads out of it.
std::string real_path(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  if (r == nullptr) return {};
  std::string out(r);
  std::free(r);
  return out;
}

// Opens `name` in the folder for reading when it is a regular file, or a symlink to a regular
// file inside the folder; anything else is refused with a reason (appended to *problems) and
// -1 returned. Never blocks: FIFOs are refused before they are opened, and opened non-blocking.
// *size: the opened file's size.
int open_checked(int dfd, const std::string& dir_real, const std::string& dir,
                 const std::string& name, const std::string& shown,
                 std::vector<std::string>* problems, std::size_t* size,
                 bool listed_regular = false) {
  // readdir said "regular file": open it without following a link and check what was opened,
  // one system call fewer per file. Anything else (a link, or a file swapped since) takes the
  // careful path below.
  if (listed_regular) {
    const int fd = openat(dfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    struct stat opened {};
    if (fd >= 0 && fstat(fd, &opened) == 0 && S_ISREG(opened.st_mode)) {
      *size = static_cast<std::size_t>(opened.st_size);
      return fd;
    }
    if (fd >= 0) close(fd);
  }
  const auto path = dir + "/" + name;
  struct stat st {};
  if (fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    problems->push_back(fmt::format("{}: cannot read: {}", shown, error_text(errno)));
    return -1;
  }
  std::string target;  // where a symlink resolves; the file itself otherwise
  if (S_ISLNK(st.st_mode)) {
    target = real_path(path);
    if (target.empty()) {
      problems->push_back(
          fmt::format("{}: a symlink that does not resolve: {}", shown, error_text(errno)));
      return -1;
    }
    if (dir_real.empty() || !target.starts_with(dir_real + "/")) {
      problems->push_back(fmt::format(
          "{}: a symlink to {}, outside the source folder; migration files must be inside it "
          "(copy the file in instead)",
          shown, target));
      return -1;
    }
    if (stat(target.c_str(), &st) != 0) {
      problems->push_back(fmt::format("{}: cannot read: {}", shown, error_text(errno)));
      return -1;
    }
  }
  if (!S_ISREG(st.st_mode)) {
    problems->push_back(fmt::format("{}: {}{}, not a regular file; only regular files are read",
                                    shown, target.empty() ? "" : "a symlink to ",
                                    kind_of(st.st_mode)));
    return -1;
  }
  const int fd = target.empty()
                     ? openat(dfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)
                     : open(target.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  struct stat opened {};
  if (fd < 0 || fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode)) {
    // Swapped between the check and the open.
    problems->push_back(
        fmt::format("{}: cannot read: {}", shown,
                    fd < 0 ? error_text(errno) : std::string("it changed while being read")));
    if (fd >= 0) close(fd);
    return -1;
  }
  *size = static_cast<std::size_t>(opened.st_size);
  return fd;
}

void throw_problems(const std::vector<std::string>& problems) {
  if (problems.empty()) return;
  std::string all;
  for (const auto& p : problems) all += (all.empty() ? "" : "\n") + p;
  throw SourceError(all);
}

// One name of the folder (file.name, set by the listing) and what reading it gave.
struct Entry {
  bool listed_regular = false;
  bool holds_file = false;
  MigrationFile file;
  std::vector<std::string> problems;
  std::exception_ptr error;
};

// The listing hands names to the readers in batches as it goes, so reading starts with the
// first batch: a folder of thousands of small files costs mostly system calls (getdents, then
// openat, fstat, read, close per file), and those of different files run in parallel.
class BatchQueue {
 public:
  void push(std::vector<Entry>* batch) {
    {
      std::lock_guard lock(mutex_);
      pending_.push_back(batch);
    }
    ready_.notify_one();
  }
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }
  // The next batch; null once the listing is over and every batch is taken.
  std::vector<Entry>* pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return closed_ || next_ < pending_.size(); });
    return next_ < pending_.size() ? pending_[next_++] : nullptr;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<std::vector<Entry>*> pending_;
  std::size_t next_ = 0;
  bool closed_ = false;
};

constexpr std::size_t kBatch = 64;
// One more reader for every this many files listed: a thread costs more than a few files.
constexpr std::size_t kFilesPerThread = 128;
constexpr unsigned kMaxThreads = 4;  // a container's CPU quota is rarely what the host shows

// The cores this process may run on (its affinity mask, which taskset and cpusets narrow);
// a CPU quota is not seen, hence the cap above.
unsigned usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return static_cast<unsigned>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

SourceFiles load_directory(const std::string& dir, bool migrations_only) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr)
    throw SourceError(
        fmt::format("--source {}: not a readable directory: {}", dir, error_text(errno)));
  const int dfd = dirfd(d);
  const auto dir_real = real_path(dir);
  SourceFiles out;
  out.origin = dir;

  const auto read_one = [&](Entry& e) {
    MigrationFile& f = e.file;
    const auto& name = f.name;
    // The planning view of `up` never runs a down file: listed, and read by the full load that
    // comes before any work.
    if (migrations_only && name.ends_with(".down.sql")) {
      f.unread = true;
      e.holds_file = true;
      return;
    }
    // Regular files only; a symlink only to a regular file inside the folder. A folder, FIFO or
    // device named x.sql is refused without being read.
    std::size_t on_disk = 0;
    const int fd =
        open_checked(dfd, dir_real, dir, name, name, &e.problems, &on_disk, e.listed_regular);
    if (fd < 0) return;
    const auto path = dir + "/" + name;
    struct Closer {
      int fd;
      ~Closer() { close(fd); }
    } closer{fd};
    std::size_t size = 0;
    if (name == kReleasesFile) {
      out.releases_json = read_fd(fd, path, kMaxReleasesBytes, &size, on_disk);
      if (size > kMaxReleasesBytes) {
        throw SourceError(fmt::format("{}: file is {} bytes, larger than the limit of {} bytes",
                                      kReleasesFile, size, kMaxReleasesBytes));
      }
    } else if (name == kCheckAllowFile) {
      out.check_allow = read_fd(fd, path, kMaxReleasesBytes, &size, on_disk);
    } else {
      // An oversized file is read only up to the limit; its real size goes to the validator.
      f.bytes = read_fd(fd, path, kMaxMigrationBytes + 1, &size, on_disk);
      f.size = size;
      // Worked out here, on the reading threads: the set's checksum and the planning view's
      // checks of the text on its own (build_planning_set takes them as they are).
      // (An oversized file is refused by its size: not hashed.)
      if (size <= kMaxMigrationBytes) f.checksum = sha256_hex(f.bytes);
      if (migrations_only) f.checked = check_file_text(f);
      e.holds_file = true;
    }
  };
  BatchQueue queue;
  // noexcept: a reader that stopped half-way would leave files silently unread; a queue whose
  // mutex fails ends the process instead.
  const auto read_batches = [&]() noexcept {
    while (auto* batch = queue.pop()) {
      for (auto& e : *batch) {
        try {
          read_one(e);
        } catch (...) {
          e.error = std::current_exception();
        }
      }
    }
  };

  std::deque<std::vector<Entry>> batches;  // elements never move: readers hold pointers
  std::vector<std::thread> readers;
  const auto max_readers = std::min(usable_cores(), kMaxThreads) - 1;
  std::size_t listed = 0;
  std::exception_ptr listing_error;
  try {
    std::vector<Entry> batch;
    const auto hand_over = [&] {
      queue.push(&batches.emplace_back(std::move(batch)));
      batch.clear();
      if (readers.size() < max_readers && listed >= (readers.size() + 1) * kFilesPerThread) {
        try {
          readers.emplace_back(read_batches);
        } catch (const std::system_error&) {
          // no thread to be had: the others read the rest
        }
      }
    };
    while (const dirent* de = readdir(d)) {
      std::string_view name = de->d_name;
      if (((name == kReleasesFile || name == kCheckAllowFile) && !migrations_only) ||
          (name.ends_with(".sql") && !name.starts_with("."))) {
        auto& e = batch.emplace_back();
        e.file.name = name;
        e.listed_regular = de->d_type == DT_REG;
        if (++listed % kBatch == 0) hand_over();
      }
    }
    if (!batch.empty()) hand_over();
  } catch (...) {
    listing_error = std::current_exception();
  }
  queue.close();
  read_batches();  // this thread reads too, once the listing is done
  for (auto& r : readers) r.join();
  if (listing_error) {
    closedir(d);
    std::rethrow_exception(listing_error);
  }

  // Read in any order, reported in name order: the same files, the same problems and the
  // same first error as one thread reading the sorted names would give.
  std::vector<Entry*> sorted;
  sorted.reserve(listed);
  for (auto& batch : batches)
    for (auto& e : batch) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](const Entry* a, const Entry* b) { return a->file.name < b->file.name; });
  std::vector<std::string> problems;
  for (auto* e : sorted) {
    problems.insert(problems.end(), e->problems.begin(), e->problems.end());
    if (e->error) {
      closedir(d);
      std::rethrow_exception(e->error);
    }
  }
  out.files.reserve(sorted.size());
  for (auto* e : sorted)
    if (e->holds_file) out.files.push_back(std::move(e->file));
  closedir(d);
  // expected/*.json and (for check) checks/*.sql, when the folder has them.
  const auto read_subdir = [&](std::string_view sub, std::string_view suffix,
                               std::map<std::string, std::string>& into) {
    const auto sub_dir = dir + "/" + std::string(sub);
    DIR* e = migrations_only ? nullptr : opendir(sub_dir.c_str());
    if (e == nullptr) return;
    std::vector<std::string> found;
    while (const dirent* ent = readdir(e)) {
      std::string_view n = ent->d_name;
      if (n.ends_with(suffix) && !n.starts_with(".")) found.emplace_back(n);
    }
    std::sort(found.begin(), found.end());
    for (const auto& n : found) {
      const auto path = sub_dir + "/" + n;
      std::size_t on_disk = 0;
      const int fd = open_checked(dirfd(e), dir_real, sub_dir, n, std::string(sub) + "/" + n,
                                  &problems, &on_disk);
      if (fd < 0) continue;
      std::size_t size = 0;
      try {
        into[n] = read_fd(fd, path, 64u << 20, &size, on_disk);
      } catch (...) {
        close(fd);
        closedir(e);
        throw;
      }
      close(fd);
    }
    closedir(e);
  };
  read_subdir(kExpectedDir, ".json", out.expected);
  read_subdir(kChecksDir, ".sql", out.checks);
  throw_problems(problems);
  return out;
}

Source validate_source(const SourceFiles& files) {
  Source out;
  out.origin = files.origin;
  out.checks = files.checks;
  out.check_allow = files.check_allow;
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
