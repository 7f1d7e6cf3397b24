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
  std::string fix;  // SQL that makes the live schema match the expected one
  bool operator==(const DriftItem&) const = default;
};

struct DiffOptions {
  std::vector<std::string> ignore;  // glob patterns (* and ?) on object names, e.g. public.audit_*
};

[[nodiscard]] std::vector<DriftItem> diff_schemas(const SchemaDescription& expected,
                                                  const SchemaDescription& actual,
                                                  const DiffOptions& options = {});

[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace stepwise
