#pragma once
// Where migrations come from: a folder read at run time, or the set embedded at build time.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stepwise/migration.hpp"
#include "stepwise/releases.hpp"

namespace stepwise {

struct SourceFiles {
  std::vector<MigrationFile> files;          // every regular file of the folder, sorted by name
  std::optional<std::string> releases_json;  // releases.json, when present
  // expected/<VERSION>.json: the schema description each release (and the head) should have.
  std::map<std::string, std::string> expected;  // file name -> JSON text
  std::string origin;                           // "embedded" or the folder path, for messages
  // Read by `check` only (never part of the set, so no checksum covers them):
  // checks/<release>.sql, the statements each release's code runs (file name -> SQL), and
  // check-allow.txt, the folder's allow list.
  std::map<std::string, std::string> checks;
  std::optional<std::string> check_allow;
};

inline constexpr std::string_view kExpectedDir = "expected";
inline constexpr std::string_view kChecksDir = "checks";
inline constexpr std::string_view kCheckAllowFile = "check-allow.txt";

// Reads the folder. Throws SourceError naming the folder or file when it cannot be read.
// migrations_only: the *.sql files alone (the no-op `up` reads no releases.json or expected/).
[[nodiscard]] SourceFiles load_directory(const std::string& dir, bool migrations_only = false);

// The set embedded at build time (defined in the generated embedded-migrations library).
[[nodiscard]] SourceFiles load_embedded();
// The same set as stepwise-embed validated it at build time: no validation, copy or hashing at
// run time (the start-up path of `up`). Releases and expected schemas: load_embedded().
[[nodiscard]] MigrationSet embedded_migrations();

// A validated source: migrations and releases (releases empty when there is no releases.json).
struct Source {
  MigrationSet migrations;
  Releases releases;
  std::map<Version, std::string> expected;  // version -> description JSON (parsed when used)
  std::string origin;
  std::map<std::string, std::string> checks;  // as SourceFiles::checks, not validated here
  std::optional<std::string> check_allow;
};
// Validates migrations and releases together; all problems at once. Throws SourceError.
[[nodiscard]] Source validate_source(const SourceFiles& files);

}  // namespace stepwise
