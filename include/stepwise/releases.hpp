#pragma once
// migrations/releases.json: the product's releases in order, each with the last migration
// version it ships (schema) and the oldest schema version its code runs against (min_schema).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/migration.hpp"

namespace stepwise {

struct Release {
  std::string name;
  Version schema = 0;
  Version min_schema = 0;
  bool operator==(const Release&) const = default;
};

class Releases {
 public:
  Releases() = default;
  explicit Releases(std::vector<Release> r) : releases_(std::move(r)) {}
  [[nodiscard]] const std::vector<Release>& all() const noexcept { return releases_; }
  [[nodiscard]] bool empty() const noexcept { return releases_.empty(); }
  [[nodiscard]] const Release* find(std::string_view name) const;
  // The release whose schema equals v, if any.
  [[nodiscard]] const Release* with_schema(const Version& v) const;

 private:
  std::vector<Release> releases_;
};

inline constexpr std::string_view kReleasesFile = "releases.json";

// Parses and validates against the migration set (when `set` is null, versions are not checked
// for being known); every problem is one line naming the release and the field.
// Throws SourceError.
[[nodiscard]] Releases parse_releases(std::string_view json_text, const MigrationSet* set);
[[nodiscard]] inline Releases parse_releases(std::string_view json_text, const MigrationSet& set) {
  return parse_releases(json_text, &set);
}

}  // namespace stepwise
