#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "stepwise/checksum.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/source.hpp"

namespace stepwise {
namespace {

TEST(Embedded, SameFilesAsTheMigrationsFolder) {
  const auto embedded = load_embedded();
  const auto dir = load_directory(STEPWISE_MIGRATIONS_DIR);
  EXPECT_EQ(embedded.origin, "embedded");
  EXPECT_EQ(dir.origin, STEPWISE_MIGRATIONS_DIR);
  ASSERT_FALSE(dir.files.empty());
  ASSERT_EQ(embedded.files.size(), dir.files.size());
  for (std::size_t i = 0; i < dir.files.size(); ++i) {
    const auto& e = embedded.files[i];
    const auto& d = dir.files[i];
    EXPECT_EQ(e.name, d.name);
    EXPECT_EQ(e.bytes.size(), d.bytes.size()) << d.name;
    EXPECT_TRUE(e.bytes == d.bytes) << d.name << ": embedded bytes differ from the file";
    EXPECT_EQ(d.size, d.bytes.size()) << d.name;
    EXPECT_EQ(e.checksum, sha256_hex(d.bytes)) << d.name;
    EXPECT_EQ(e.checksum.size(), 64u) << d.name;
  }
}

TEST(Embedded, SameReleasesFile) {
  const auto embedded = load_embedded();
  const auto dir = load_directory(STEPWISE_MIGRATIONS_DIR);
  ASSERT_TRUE(dir.releases_json.has_value());
  ASSERT_TRUE(embedded.releases_json.has_value());
  EXPECT_EQ(*embedded.releases_json, *dir.releases_json);
}

// check's probe files (checks/<release>.sql) and allow list (check-allow.txt) are embedded too,
// so `stepwise check` of the embedded set sees what `--source migrations check` sees.
TEST(Embedded, SameCheckProbesAndAllowList) {
  const auto embedded = load_embedded();
  const auto dir = load_directory(STEPWISE_MIGRATIONS_DIR);
  EXPECT_FALSE(dir.checks.empty());
  EXPECT_EQ(embedded.checks, dir.checks);
  ASSERT_TRUE(dir.check_allow.has_value());
  ASSERT_TRUE(embedded.check_allow.has_value());
  EXPECT_EQ(*embedded.check_allow, *dir.check_allow);
  const auto source = validate_source(embedded);
  EXPECT_EQ(source.checks, dir.checks);
  EXPECT_EQ(source.check_allow, dir.check_allow);
  // The planning read (migrations only) skips them.
  const auto planning = load_directory(STEPWISE_MIGRATIONS_DIR, /*migrations_only=*/true);
  EXPECT_TRUE(planning.checks.empty());
  EXPECT_FALSE(planning.check_allow.has_value());
}

TEST(Embedded, ValidatesWithReleases) {
  const auto source = validate_source(load_embedded());
  EXPECT_EQ(source.origin, "embedded");
  EXPECT_FALSE(source.migrations.empty());
  EXPECT_FALSE(source.releases.empty());
  // Every release points at known migrations, and the last one ships the newest migration.
  for (const auto& r : source.releases.all()) {
    EXPECT_NE(source.migrations.find(r.schema), nullptr) << r.name;
    EXPECT_NE(source.migrations.find(r.min_schema), nullptr) << r.name;
    EXPECT_LE(r.min_schema, r.schema) << r.name;
  }
  EXPECT_EQ(source.releases.all().back().schema, source.migrations.latest());
}

TEST(Embedded, SameSetAsTheFolder) {
  const auto a = validate_source(load_embedded());
  const auto b = validate_source(load_directory(STEPWISE_MIGRATIONS_DIR));
  EXPECT_EQ(a.migrations.all(), b.migrations.all());
  EXPECT_EQ(a.migrations.digest(), b.migrations.digest());
  EXPECT_EQ(a.releases.all(), b.releases.all());
}

TEST(Embedded, CompiledEntriesAreTheValidatedSet) {
  // The start-up path builds the set from stepwise-embed's entries without checking again: it
  // must be exactly the set full validation of the same files gives.
  const auto compiled = embedded_migrations();
  const auto validated = validate_source(load_embedded());
  ASSERT_FALSE(compiled.empty());
  EXPECT_EQ(compiled.all(), validated.migrations.all());
  EXPECT_EQ(compiled.digest(), validated.migrations.digest());
  for (const auto& m : compiled.all()) EXPECT_EQ(m.up.checksum.size(), 64u) << m.up.file;
}

TEST(Embedded, EmbeddedChecksumsMatchTheirBytes) {
  for (const auto& f : load_embedded().files) EXPECT_EQ(f.checksum, sha256_hex(f.bytes)) << f.name;
}

// ------------------------------------------------------------------ load_directory /
// validate_source

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("stepwise-unit-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(path_ / name, std::ios::binary);
    out << bytes;
  }
  [[nodiscard]] std::string str() const { return path_.string(); }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(LoadDirectory, ReadsSqlFilesSortedAndReleases) {
  TempDir dir;
  dir.write("2_b.up.sql", "SELECT 2;");
  dir.write("1_a.up.sql", "SELECT 1;");
  dir.write("1_a.down.sql", "SELECT 0;");
  dir.write("README.md", "docs");
  dir.write("releases.json", R"({"releases":[{"name":"1","schema":2,"min_schema":1}]})");
  const auto files = load_directory(dir.str());
  EXPECT_EQ(files.origin, dir.str());
  ASSERT_EQ(files.files.size(), 3u);
  EXPECT_EQ(files.files[0].name, "1_a.down.sql");
  EXPECT_EQ(files.files[1].name, "1_a.up.sql");
  EXPECT_EQ(files.files[2].name, "2_b.up.sql");
  EXPECT_EQ(files.files[1].bytes, "SELECT 1;");
  EXPECT_EQ(files.files[1].size, 9u);
  ASSERT_TRUE(files.releases_json.has_value());
  const auto source = validate_source(files);
  EXPECT_EQ(source.migrations.size(), 2u);
  ASSERT_EQ(source.releases.all().size(), 1u);
  EXPECT_EQ(source.releases.all()[0].schema, 2);
}

TEST(LoadDirectory, MissingFolderNamed) {
  const std::string missing = "/nonexistent/stepwise-unit-folder";
  try {
    (void)load_directory(missing);
    FAIL() << "no error";
  } catch (const SourceError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

TEST(LoadDirectory, OversizedFileCutButItsSizeKept) {
  TempDir dir;
  dir.write("1_big.up.sql", std::string(kMaxMigrationBytes + 10, ' ') + "SELECT 1;");
  const auto files = load_directory(dir.str());
  ASSERT_EQ(files.files.size(), 1u);
  EXPECT_EQ(files.files[0].bytes.size(), kMaxMigrationBytes + 1);
  EXPECT_EQ(files.files[0].size, kMaxMigrationBytes + 19);
  try {
    (void)validate_source(files);
    FAIL() << "oversized file accepted";
  } catch (const SourceError& e) {
    const std::string msg = e.what();
    EXPECT_TRUE(msg.starts_with("1_big.up.sql: ")) << msg.substr(0, 200);
    EXPECT_NE(msg.find(std::to_string(kMaxMigrationBytes + 19)), std::string::npos) << msg;
  }
}

TEST(LoadDirectory, FifoNamedLikeAMigrationIsNotOpened) {
  // A FIFO (or device) named *.sql is not a migration file. Opening it for reading blocks until a
  // writer appears: the loader must check the file type before opening. A helper thread plays
  // the writer, so a loader that does block is unblocked and the test still ends.
  TempDir dir;
  dir.write("1_a.up.sql", "SELECT 1;");
  const auto fifo = dir.path() / "2_pipe.up.sql";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::atomic<bool> done{false};
  std::atomic<bool> reader_was_blocked{false};
  std::thread writer([&] {
    while (!done.load()) {
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) {  // succeeds only while a reader has the FIFO open
        reader_was_blocked = true;
        ::close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::string error;
  try {
    (void)load_directory(dir.str());
  } catch (const SourceError& e) {
    error = e.what();
  } catch (...) {
    done = true;
    writer.join();
    throw;
  }
  done = true;
  writer.join();
  EXPECT_FALSE(reader_was_blocked.load()) << "load_directory opened the FIFO and blocked on it";
  // Refused, naming the file and why: a step silently left out would be a false success.
  EXPECT_EQ(error, "2_pipe.up.sql: a FIFO, not a regular file; only regular files are read");
}

TEST(LoadDirectory, DirectoryOrOutsideLinkNamedLikeAMigrationIsRefused) {
  TempDir dir;
  dir.write("1_a.up.sql", "SELECT 1;");
  fs::create_directories(dir.path() / "3_sub.up.sql");
  TempDir outside;
  outside.write("x.sql", "SELECT 2;");
  fs::create_symlink(outside.path() / "x.sql", dir.path() / "2_out.up.sql");
  fs::create_symlink("1_a.up.sql", dir.path() / "4_in.up.sql");  // inside: allowed
  try {
    (void)load_directory(dir.str());
    FAIL() << "accepted";
  } catch (const SourceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(
        msg.find("2_out.up.sql: a symlink to " + fs::canonical(outside.path() / "x.sql").string() +
                 ", outside the source folder"),
        std::string::npos)
        << msg;
    EXPECT_NE(msg.find("\n3_sub.up.sql: a directory, not a regular file"), std::string::npos)
        << msg;
    EXPECT_EQ(msg.find("4_in"), std::string::npos) << msg;
  }
  fs::remove(dir.path() / "2_out.up.sql");
  fs::remove(dir.path() / "3_sub.up.sql");
  const auto files = load_directory(dir.str());
  ASSERT_EQ(files.files.size(), 2u);
  EXPECT_EQ(files.files[1].name, "4_in.up.sql");
  EXPECT_EQ(files.files[1].bytes, "SELECT 1;");
}

TEST(LoadDirectory, AThousandFilesReadOnSeveralThreadsComeBackAsOneThreadWouldGiveThem) {
  // Enough files for every reader thread: the outcome is in name order whatever thread read
  // what, every problem is reported in that order, and the planning view's checks come along.
  TempDir dir;
  for (int i = 1; i <= 1000; ++i) {
    const auto v = fmt::format("{:04}", i);
    dir.write(v + "_t.up.sql", "CREATE TABLE t_" + v + " ();\n");
    dir.write(v + "_t.down.sql", "DROP TABLE t_" + v + ";\n");
  }
  const auto files = load_directory(dir.str(), /*migrations_only=*/true);
  ASSERT_EQ(files.files.size(), 2000u);
  for (std::size_t i = 0; i < files.files.size(); ++i) {
    const auto& f = files.files[i];
    const auto v = fmt::format("{:04}", i / 2 + 1);
    if (i % 2 == 0) {  // "0001_t.down.sql" sorts before "0001_t.up.sql"
      EXPECT_EQ(f.name, v + "_t.down.sql");
      EXPECT_TRUE(f.unread);
      continue;
    }
    ASSERT_EQ(f.name, v + "_t.up.sql");
    EXPECT_EQ(f.bytes, "CREATE TABLE t_" + v + " ();\n");
    EXPECT_EQ(f.checksum, sha256_hex(f.bytes));
    ASSERT_TRUE(f.checked.has_value()) << f.name;
    EXPECT_TRUE(f.checked->bytes_problem.empty());
    EXPECT_TRUE(f.checked->problems.empty());
  }
  // The full load reads the down files too and leaves the text checks to the set.
  const auto full = load_directory(dir.str());
  ASSERT_EQ(full.files.size(), 2000u);
  EXPECT_EQ(full.files[0].bytes, "DROP TABLE t_0001;\n");
  EXPECT_FALSE(full.files[1].checked.has_value());

  // Problems spread over the folder come back in name order, one line each.
  fs::remove(dir.path() / "0999_t.up.sql");
  fs::create_directories(dir.path() / "0999_t.up.sql");
  fs::remove(dir.path() / "0003_t.up.sql");
  fs::create_directories(dir.path() / "0003_t.up.sql");
  TempDir outside;
  outside.write("x.sql", "SELECT 2;");
  fs::remove(dir.path() / "0500_t.up.sql");
  fs::create_symlink(outside.path() / "x.sql", dir.path() / "0500_t.up.sql");
  try {
    (void)load_directory(dir.str(), /*migrations_only=*/true);
    FAIL() << "accepted";
  } catch (const SourceError& e) {
    const std::string msg = e.what();
    const auto at3 = msg.find("0003_t.up.sql: a directory");
    const auto at500 = msg.find("0500_t.up.sql: a symlink to");
    const auto at999 = msg.find("0999_t.up.sql: a directory");
    ASSERT_NE(at3, std::string::npos) << msg;
    ASSERT_NE(at500, std::string::npos) << msg;
    ASSERT_NE(at999, std::string::npos) << msg;
    EXPECT_EQ(at3, 0u) << msg;
    EXPECT_LT(at3, at500);
    EXPECT_LT(at500, at999);
    EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 2) << msg;
  }
}

TEST(LoadDirectory, TheLoadersChecksAreThoseOfTheSet) {
  // A broken file among many: the planning set built from what the loader worked out refuses
  // it with the same message as the set that checks every text itself.
  TempDir dir;
  for (int i = 1; i <= 300; ++i) dir.write(fmt::format("{:03}_t.up.sql", i), "SELECT 1;\n");
  dir.write("150_t.up.sql", "SELECT 'open;\n");
  dir.write("151_t.up.sql", std::string("SELECT \xff;\n"));
  dir.write("152_t.up.sql", "-- stepwise:no-transaction\nBEGIN;\nSELECT 1;\n");
  const auto planning = load_directory(dir.str(), /*migrations_only=*/true);
  const auto full = load_directory(dir.str());
  std::string from_loader, from_set;
  try {
    (void)build_planning_set(planning.files);
  } catch (const SourceError& e) {
    from_loader = e.what();
  }
  try {
    (void)build_migration_set(full.files);
  } catch (const SourceError& e) {
    from_set = e.what();
  }
  EXPECT_NE(from_set.find("150_t.up.sql:1:"), std::string::npos) << from_set;
  EXPECT_NE(from_set.find("151_t.up.sql: file is not valid UTF-8"), std::string::npos) << from_set;
  EXPECT_NE(from_set.find("152_t.up.sql:2: BEGIN"), std::string::npos) << from_set;
  EXPECT_EQ(from_loader, from_set);
}

TEST(ValidateSource, BadReleasesReported) {
  SourceFiles files;
  files.files.push_back({"1_a.up.sql", "SELECT 1;", "", 0});
  files.releases_json = R"({"releases":[{"name":"1","schema":7,"min_schema":1}]})";
  try {
    (void)validate_source(files);
    FAIL() << "bad releases accepted";
  } catch (const SourceError& e) {
    EXPECT_NE(std::string(e.what()).find("releases.json"), std::string::npos) << e.what();
  }
}

TEST(ValidateSource, NoReleasesFileMeansNoReleases) {
  SourceFiles files;
  files.files.push_back({"1_a.up.sql", "SELECT 1;", "", 0});
  const auto source = validate_source(files);
  EXPECT_TRUE(source.releases.empty());
  EXPECT_EQ(source.migrations.size(), 1u);
}

TEST(ValidateSource, ExpectedSchemaNamedByAnyFormOfTheVersion) {
  SourceFiles files;
  files.files.push_back({"000002_a.up.sql", "SELECT 1;", "", 0});
  files.files.push_back({"20150100000001000000_b.up.sql", "", "", 0});
  files.expected["0002.json"] = "{}";
  files.expected["20150100000001000000.json"] = "{}";
  const auto source = validate_source(files);
  ASSERT_EQ(source.expected.size(), 2u);
  EXPECT_EQ(source.expected.count(Version(2)), 1u);
  EXPECT_EQ(source.expected.count(Version::from_digits("20150100000001000000")), 1u);
}

TEST(ValidateSource, TwoExpectedSchemasForOneVersionRefused) {
  SourceFiles files;
  files.files.push_back({"2_a.up.sql", "SELECT 1;", "", 0});
  files.expected["2.json"] = "{}";
  files.expected["02.json"] = "{}";
  try {
    (void)validate_source(files);
    FAIL() << "accepted";
  } catch (const SourceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("expected/2.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("version 2"), std::string::npos) << msg;
  }
}

TEST(ValidateSource, MigrationAndReleaseProblemsReportedTogether) {
  // "all problems at once": a broken releases.json is reported along with a bad migration file.
  SourceFiles files;
  files.files.push_back({"1_a.up.sql", "SELECT 1;", "", 0});
  files.files.push_back({"2_b.up.sql", "-- stepwise:bogus\nSELECT 2;", "", 0});
  files.releases_json = R"({"releases": [ {"name": )";
  try {
    (void)validate_source(files);
    FAIL() << "accepted";
  } catch (const SourceError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("2_b.up.sql"), std::string::npos) << msg;
    EXPECT_NE(msg.find("releases.json"), std::string::npos) << msg;
  }
}

// stepwise-embed computes the log digest at build time; the no-op check compares it with the
// server's. A build-time value that differs from the set's own would make every no-op fall
// back to reading the log, unnoticed.
TEST(Embedded, BuildTimeLogDigestIsTheSetsOwn) {
  const auto set = embedded_migrations();
  const auto folder = validate_source(load_directory(STEPWISE_MIGRATIONS_DIR));
  EXPECT_EQ(set.log_digest(), log_digest_of(set.all()));
  EXPECT_EQ(set.log_digest(), folder.migrations.log_digest());
  EXPECT_EQ(set.log_digest().size(), 64u);
}

}  // namespace
}  // namespace stepwise
