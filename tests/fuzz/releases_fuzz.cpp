// libFuzzer target: the releases.json loader against a small fixed migration set, and the
// other parsers of untrusted text: --log-table names, durations, and the redaction of secrets.
// Besides "no crash, no sanitizer report", it checks what the headers promise:
//  - parse_releases either returns releases in order (schema strictly increasing, min_schema
//    never decreasing and never newer than schema, both known versions) or throws SourceError
//    whose every line names releases.json;
//  - a table name that parses holds no quote, semicolon or other punctuation, parts of 1..63 bytes;
//  - a duration that parses is not negative;
//  - redact() never lets a known secret (3 bytes or more) through.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/duration.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/migration.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/releases.hpp"
#include "stepwise/table_name.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) broken(what);
}

// STEPWISE_FUZZ_IGNORE=<text>: an exception whose message holds <text> is a known, reported
// finding; skip it so that a long run can look past it (e.g. out_of_range.406).
bool known_finding(const char* what) {
  static const char* ignore = std::getenv("STEPWISE_FUZZ_IGNORE");
  return ignore != nullptr && *ignore != '\0' && std::strstr(what, ignore) != nullptr;
}

const stepwise::MigrationSet& fixed_set() {
  static const stepwise::MigrationSet set = [] {
    std::vector<stepwise::MigrationFile> files;
    for (const char* name : {"1_a.up.sql", "2_b.up.sql", "3_c.up.sql",
                             "20240112100000_tasks.up.sql", "20240215120000_index.up.sql",
                             "20240315100000_status.up.sql", "9223372036854775807_last.up.sql"})
      files.push_back({name, "SELECT 1;\n", "", 0});
    return stepwise::build_migration_set(files);
  }();
  return set;
}

void check_releases(std::string_view text, const stepwise::MigrationSet* set) {
  try {
    const auto releases = stepwise::parse_releases(text, set);
    check(!releases.empty(), "parsed an empty release list");
    const stepwise::Release* previous = nullptr;
    for (const auto& r : releases.all()) {
      check(!r.name.empty(), "release without a name");
      check(r.schema > 0 && r.min_schema > 0, "release version not positive");
      check(r.min_schema <= r.schema, "min_schema newer than schema");
      if (set != nullptr)
        check(set->find(r.schema) != nullptr && set->find(r.min_schema) != nullptr,
              "release names an unknown version");
      if (previous != nullptr) {
        check(r.schema > previous->schema, "schema not strictly increasing");
        check(r.min_schema >= previous->min_schema, "min_schema decreasing");
      }
      check(releases.find(r.name) == &r, "find(name) does not return the release");
      previous = &r;
    }
  } catch (const stepwise::SourceError& e) {
    const std::string what = e.what();
    check(!what.empty(), "SourceError without a message");
    std::size_t start = 0;
    while (start <= what.size()) {
      const auto nl = what.find('\n', start);
      check(what.compare(start, stepwise::kReleasesFile.size(), stepwise::kReleasesFile) == 0,
            "a releases problem line does not start with releases.json");
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  } catch (const std::exception& e) {
    // Anything but a SourceError reaches the CLI as "internal error", exit 1, not exit 3.
    if (known_finding(e.what())) return;
    std::fprintf(stderr, "parse_releases threw something else than SourceError: %s\n", e.what());
    std::abort();
  }
}

bool allowed_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || c == '-' || c == ' ';
}

void check_table_name(std::string_view text) {
  try {
    const auto t = stepwise::parse_table_name("--log-table", text);
    for (const auto* part : {&t.schema, &t.table}) {
      check(!part->empty() && part->size() <= 63, "table name part empty or longer than 63 bytes");
      for (char c : *part) check(allowed_name_char(c), "table name holds a character not allowed");
    }
  } catch (const stepwise::UsageError& e) {
    check(std::string_view(e.what()).starts_with("--log-table: "), "error does not name the flag");
  }
}

void check_duration(std::string_view text) {
  try {
    const auto d = stepwise::parse_duration("--lock-timeout", text);
    check(d.count() >= 0, "negative duration");
    (void)stepwise::format_duration(d);
  } catch (const stepwise::UsageError& e) {
    check(std::string_view(e.what()).starts_with("--lock-timeout: "),
          "error does not name the flag");
  }
}

void check_redact(std::string_view text) {
  // The input itself as a secret, and a fixed one planted in it.
  const std::string planted = std::string(text) + " hunter2-secret " + std::string(text);
  std::vector<std::string> secrets{"hunter2-secret"};
  if (text.size() >= 3) secrets.emplace_back(text);
  const auto out = stepwise::redact(planted, secrets);
  check(out.find("hunter2-secret") == std::string::npos, "a known secret is printed");
  // A URL's userinfo password is masked whatever it holds, short of '@', '/', ':' and newlines.
  std::string pw;
  for (char c : text)
    if (c != '@' && c != '/' && c != '\n' && c != ':') pw.push_back(c);
  if (!pw.empty() && pw.find_first_not_of('*') != std::string::npos) {
    const auto url = "postgres://app:" + pw + "@db.example:5432/app";
    const auto masked = stepwise::redact(url, {});
    check(masked.find(":" + pw + "@") == std::string::npos, "a URL password is printed");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_releases(text, &fixed_set());
  check_releases(text, nullptr);
  check_table_name(text);
  check_duration(text);
  check_redact(text);
  return 0;
}
