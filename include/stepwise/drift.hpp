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

}  // namespace stepwise
