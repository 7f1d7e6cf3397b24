#pragma once
// The differ: expected vs live schema description, as findings with a suggested fix. Pure.
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/schema.hpp"

namespace stepwise {

struct DriftItem {
  std::string kind;      // object kind: table, column, index ...
  std::string object;    // "public.tasks.note"
  std::string change;    // missing | unexpected | changed | invalid
  std::string field;     // for "changed": the attribute (type, not_null, default, definition ...)
  std::string expected;  // text, empty when missing from the expected side
  std::string actual;
  std::string fix;  // SQL that makes the live schema match the expected one (standalone)
  // The same without the dependents dropped and recreated around it (the fix script handles
  // those once for all findings), and what the fix risks (strong locks, rewrites, data loss).
  std::string script_fix;
  std::vector<std::string> drop_first;   // dependents dropped before the script's own fixes
  std::vector<std::string> create_last;  // and recreated (with their grants ...) after them
  std::vector<std::string> hazards;
  bool operator==(const DriftItem&) const = default;
};

struct DiffOptions {
  // Glob patterns (* and ?) on object names, e.g. public.audit_*, matched on schema.name,
  // schema.table.name and schema.table; "kind:K" ignores a kind (table, index, extension ...)
  // or a property group: owner, grant (privileges and default privileges), comment.
  std::vector<std::string> ignore;
};

[[nodiscard]] std::vector<DriftItem> diff_schemas(const SchemaDescription& expected,
                                                  const SchemaDescription& actual,
                                                  const DiffOptions& options = {});

[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text);

// Reading a live description against the expected one without holding what matches it
// (validate at 10,000 tables: the live description was a third of its memory). keep() says
// whether a live object must be kept: false when it equals the expected object of its key
// (noted). After the read, sweep() applies keep() to what was read before the matcher was
// ready; matches_all() says whether the live schema is exactly the expected one (no drift:
// diff_schemas would find nothing); restore() makes the kept description the one read in full
// (the kept objects and copies of the expected ones matched) for diff_schemas.
class ExpectedMatcher {
 public:
  explicit ExpectedMatcher(const SchemaDescription& expected);
  // From several threads at once for objects of distinct keys (a live description's).
  [[nodiscard]] bool keep(const SchemaObject& live);
  void sweep(SchemaDescription& kept);
  [[nodiscard]] bool matches_all(const SchemaDescription& kept) const;
  void restore(SchemaDescription& kept) const;

 private:
  const SchemaDescription& expected_;
  std::vector<const SchemaObject*> index_;  // by key; of equal keys the last
  std::vector<char> matched_;               // by place in index_ (not vector<bool>: threads)
};

}  // namespace stepwise
