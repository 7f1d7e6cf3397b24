#pragma once
// Migration files: the name grammar, header directives, checksums, and the validated set.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/version_id.hpp"

namespace stepwise {

// Largest accepted migration file: far above any schema change, low enough to keep a run small.
inline constexpr std::size_t kMaxMigrationBytes = 16u * 1024u * 1024u;
inline constexpr std::string_view kChecksumAlgorithm = "sha256";

enum class TxMode { kTransaction, kNoTransaction };

// What the planning view checks of one file on its own, apart from its name and its pairing:
// its bytes (size, NUL, UTF-8), header directives, the lexer pass and transaction control. It
// depends on no other file, so a loader may work it out for many files at once.
struct FileCheck {
  std::string bytes_problem;          // set: the text was not checked further
  std::vector<std::string> problems;  // directives, lexer, transaction control; one line each
  TxMode tx = TxMode::kTransaction;
  bool resumable = true;
};

// A file as read from disk or from the embedded table: a base name and its bytes.
struct MigrationFile {
  std::string name;      // base name, e.g. "20240101120000_create_users.up.sql"
  std::string bytes;     // exact file contents
  std::string checksum;  // lowercase hex SHA-256 of bytes; computed when empty
  std::size_t size = 0;  // size on disk when larger than bytes (an oversized file is cut)
  // Listed by name only, not read (a down file in a folder's planning view: `up` never runs it,
  // and the full load before any work reads and checks it).
  bool unread = false;
  // check_file_text(*this), when the loader worked it out as it read (on several threads):
  // build_planning_set uses it instead of checking the text again. True of `bytes` as read: a
  // caller that changes `bytes` must reset it (and `checksum`).
  std::optional<FileCheck> checked{};
};

// `f` read (not `unread`); f.checksum is not looked at.
[[nodiscard]] FileCheck check_file_text(const MigrationFile& f);

enum class Direction { kUp, kDown };

[[nodiscard]] std::string_view to_string(Direction d);

// One script (up or down) of a migration. The texts are views into storage the MigrationSet
// keeps alive (static storage for the embedded set): a Script never outlives its set.
struct Script {
  std::string_view file;  // base name of the file it came from
  std::string_view sql;
  std::string_view checksum;  // hex SHA-256 of the file bytes
  TxMode tx = TxMode::kTransaction;
  // "-- stepwise:not-resumable": when run statement by statement (no-transaction, or on
  // CockroachDB) and interrupted part-way, it is not resumed automatically: `up` stops and
  // says what to check, and `stepwise repair` records the decision.
  bool resumable = true;
  bool operator==(const Script&) const = default;
};

struct Migration {
  Version version;        // never zero in a loaded set
  std::string_view name;  // the slug: "create_users" (a view, as Script's texts)
  Script up;
  std::optional<Script> down;
  bool operator==(const Migration&) const = default;
};

// Parsed "<VERSION>_<slug>.(up|down).sql"; nullopt when the name is not a migration file.
struct FileName {
  Version version;
  std::string slug;
  Direction direction;
};
// Returns the parse. For a name ending in ".sql" that cannot be parsed, returns nullopt and
// sets *problem to a one-line reason naming the file; for any other name (README.md,
// releases.json) returns nullopt and leaves *problem empty.
[[nodiscard]] std::optional<FileName> parse_file_name(std::string_view name, std::string* problem);

// Header directives: "-- stepwise:<directive>" in the leading comment lines.
struct Directives {
  TxMode tx = TxMode::kTransaction;
  bool resumable = true;
};
// An unknown or malformed directive sets *problem (naming `file`) and is otherwise ignored.
[[nodiscard]] Directives parse_directives(std::string_view file, std::string_view sql,
                                          std::string* problem);

// Hex SHA-256 of "<version> <up checksum>" for each migration, in byte order of the version
// digits ("10" before "9"), joined by ",": the text the attempt log's one-row digest query
// aggregates on the server.
[[nodiscard]] std::string log_digest_of(std::span<const Migration> sorted);

// The validated, version-sorted set. `storage` owns the text the migrations' views point into
// (null when it is static, as for the set stepwise-embed compiled in).
class MigrationSet {
 public:
  MigrationSet() = default;
  // `log_digest`: log_digest_of(sorted), when the caller has it already (stepwise-embed
  // computes it at build time); empty: computed by log_digest() when asked for.
  explicit MigrationSet(std::vector<Migration> sorted, std::shared_ptr<const void> storage = {},
                        std::string log_digest = {});
  // A set whose migrations are built only when first asked for (all(), find(), digest()):
  // size(), latest() and log_digest() answer without them, so the no-op `up` of a large
  // embedded set builds nothing. `build` must return `size` migrations, sorted, the newest
  // `latest`, and digesting to `log_digest`. Thread-safe.
  [[nodiscard]] static MigrationSet deferred(std::size_t size, Version latest,
                                             std::string log_digest,
                                             std::function<std::vector<Migration>()> build);

  [[nodiscard]] const std::vector<Migration>& all() const { return built(); }
  [[nodiscard]] const Migration* find(const Version& v) const;
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] std::size_t size() const noexcept {
    return deferred_ ? deferred_->size : migrations_.size();
  }
  [[nodiscard]] Version latest() const {
    if (deferred_) return deferred_->latest;
    return migrations_.empty() ? Version() : migrations_.back().version;
  }
  // A digest over every file name and checksum: names the set in --version and status.
  [[nodiscard]] std::string digest() const;
  // What the attempt log digests to when exactly this set is applied and nothing else
  // (AttemptLog::matches): the no-op `up` compares one value instead of reading every row.
  // Only the no-op check of a large set asks for it, so a set never pays for it otherwise.
  [[nodiscard]] std::string log_digest() const {
    return log_digest_.empty() ? log_digest_of(built()) : log_digest_;
  }

 private:
  struct Deferred {
    std::size_t size = 0;
    Version latest;
    std::function<std::vector<Migration>()> build;
    std::once_flag once;
    std::vector<Migration> migrations;
  };
  [[nodiscard]] const std::vector<Migration>& built() const;

  std::vector<Migration> migrations_;
  std::shared_ptr<const void> storage_;
  std::string log_digest_;
  std::shared_ptr<Deferred> deferred_;  // set by deferred(): migrations_ stays empty
};

// Validates files (all problems at once, one line each, every line naming its file) and
// builds the set. Files that are not *.sql are ignored. Throws SourceError.
[[nodiscard]] MigrationSet build_migration_set(std::span<const MigrationFile> files);

// The planning view of a folder for a no-op `up`: every check build_migration_set makes on the
// files it was given (the same problems, the same SourceError), but no text is copied and a
// BEGIN ... COMMIT wrapper is not blanked, so the set is for planning only: a run with work to
// do loads and validates the folder with build_migration_set and applies from that. A file
// marked `unread` (a down file the loader only listed) takes part in the naming and pairing
// checks only; its script has a name and no text or checksum. The views point into `files`,
// which must outlive the set.
[[nodiscard]] MigrationSet build_planning_set(std::span<const MigrationFile> files);

// A migration as stepwise-embed wrote it: validated at build time, texts in static storage.
struct EmbeddedScript {
  std::string_view file;
  std::string_view sql;  // after BOM removal and wrapper blanking, ready to run
  std::string_view checksum;
  TxMode tx = TxMode::kTransaction;
  bool resumable = true;
};
struct EmbeddedMigration {
  std::string_view version;  // normalised digits
  std::string_view name;
  EmbeddedScript up;
  bool has_down = false;
  EmbeddedScript down;
};
// The set from already-validated entries: no validation, no copy of any text, no hashing.
// `log_digest` as MigrationSet's (computed at build time), or empty.
[[nodiscard]] MigrationSet migration_set_from(std::span<const EmbeddedMigration> entries,
                                              std::string log_digest = {});
// The same, deferred (MigrationSet::deferred): `entries` is called when the migrations are
// first asked for; `count` and `latest_digits` describe what it returns.
[[nodiscard]] MigrationSet deferred_migration_set_from(
    std::size_t count, std::string_view latest_digits, std::string log_digest,
    std::function<std::vector<EmbeddedMigration>()> entries);

}  // namespace stepwise
