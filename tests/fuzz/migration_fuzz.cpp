// libFuzzer target: the migration-file grammar, header directives and the statement splitter.
// The input is "<file name>\0<file content>" (no NUL: all of it is the content of an up file).
// Besides "no crash, no sanitizer report", it checks what the headers promise:
//  - every problem is reported as a SourceError whose lines each name a file;
//  - statements are non-empty, trimmed views into the script, in order, with 1-based lines;
//  - is_comment_only(script) is split_sql(script).empty();
//  - strip_copy_data keeps the line count and every COPY data block;
//  - a built set is sorted by version, every version positive, every migration has an up file.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/errors.hpp"
#include "stepwise/migration.hpp"
#include "stepwise/sql_split.hpp"
#include "stepwise/text.hpp"

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

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void check_statements(std::string_view script) {
  const auto statements = stepwise::split_sql(script);
  check(stepwise::is_comment_only(script) == statements.empty(),
        "is_comment_only disagrees with split_sql");
  const char* previous_end = script.data();
  int previous_line = 1;
  for (const auto& st : statements) {
    check(!st.text.empty(), "empty statement");
    check(st.text.data() >= script.data() &&
              st.text.data() + st.text.size() <= script.data() + script.size(),
          "statement is not a view into the script");
    check(st.text.data() >= previous_end, "statements overlap or are out of order");
    check(!is_space(st.text.front()) && !is_space(st.text.back()), "statement is not trimmed");
    check(st.line >= previous_line, "statement lines go backwards");
    previous_end = st.text.data() + st.text.size();
    previous_line = st.line;
    // Helpers the runner and the loader apply to single statements.
    (void)stepwise::leading_keywords(st.text, 4);
    const auto tokens = stepwise::head_tokens(st.text, 16);
    check(tokens.size() <= 16, "head_tokens returned more than asked");
    for (const auto t : tokens) check(!t.empty(), "empty token");
    if (const auto index = stepwise::parse_create_index(st.text))
      check(!index->index.empty(), "CREATE INDEX parsed without a name");
    (void)stepwise::is_transaction_control(st.text);
    check(st.token_line >= st.line, "a statement's first token comes before its start");
    if (st.copy_data)
      check(st.copy_data->data() >= st.text.data() + st.text.size(),
            "COPY data is not after its statement");
  }
  // Cutting the COPY data out keeps every line where it was.
  const auto stripped = stepwise::strip_copy_data(script);
  const auto newlines = [](std::string_view s) {
    std::size_t n = 0;
    for (const char c : s) n += c == '\n';
    return n;
  };
  check(newlines(stripped.sql) == newlines(script), "strip_copy_data moved lines");
  std::size_t blocks = 0;
  for (const auto& st : statements) blocks += st.copy_data ? 1 : 0;
  check(stripped.copy_data.size() == blocks, "strip_copy_data lost a block");
}

void check_problem_lines(const std::string& what, const std::vector<std::string>& names) {
  check(!what.empty(), "SourceError without a message");
  std::size_t start = 0;
  while (start <= what.size()) {
    const auto nl = what.find('\n', start);
    const auto line = std::string_view(what).substr(
        start, nl == std::string::npos ? std::string::npos : nl - start);
    // Every line names its file, as it can stand in one line (control characters escaped).
    bool names_a_file = false;
    for (const auto& n : names)
      names_a_file = names_a_file ||
                     (!n.empty() && line.find(stepwise::display_name(n)) != std::string_view::npos);
    check(names_a_file, "a problem line does not name its file");
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
}

void check_set(const std::vector<stepwise::MigrationFile>& files) {
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.name);
  try {
    const auto set = stepwise::build_migration_set(files);
    stepwise::Version previous = 0;
    for (const auto& m : set.all()) {
      check(m.version > previous, "set not sorted by version, or a version not positive");
      previous = m.version;
      check(!m.up.file.empty(), "migration without an up file");
      check(m.up.checksum.size() == 64, "checksum is not SHA-256 hex");
      check(set.find(m.version) == &m, "find() does not return the migration");
    }
    (void)set.digest();
  } catch (const stepwise::SourceError& e) {
    check_problem_lines(e.what(), names);
  } catch (const std::exception& e) {
    // Anything but a SourceError reaches the CLI as "internal error", exit 1, not exit 3.
    if (known_finding(e.what())) return;
    std::fprintf(stderr, "build_migration_set threw something else than SourceError: %s\n",
                 e.what());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string name(nul == std::string_view::npos ? std::string_view("1_fuzz.up.sql")
                                                       : input.substr(0, nul));
  const std::string content(nul == std::string_view::npos ? input : input.substr(nul + 1));

  std::string problem;
  const auto parsed = stepwise::parse_file_name(name, &problem);
  check(!(parsed && !problem.empty()), "parse_file_name returned a parse and a problem");
  if (parsed) check(parsed->version > 0, "parsed version not positive");
  if (!problem.empty())
    check(problem.find(stepwise::display_name(name)) != std::string::npos || name.empty(),
          "problem does not name the file");

  (void)stepwise::parse_directives(name, content, &problem);
  if (!problem.empty())
    check(problem.find(stepwise::display_name(name)) != std::string::npos,
          "directive problem does not name the file");

  check_statements(content);

  // The file as named, next to a valid neighbour and a down file with the same bytes.
  std::vector<stepwise::MigrationFile> files;
  files.push_back({name, content, "", 0});
  files.push_back({"9000000000000000000_neighbour.up.sql", "SELECT 1;\n", "", 0});
  check_set(files);
  files.push_back({"1_fuzz.down.sql", content, "", 0});
  if (nul != std::string_view::npos) files.push_back({"1_fuzz.up.sql", content, "", 0});
  check_set(files);
  return 0;
}
