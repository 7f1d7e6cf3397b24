#pragma once
// PostgreSQL's own operators in stepwise's own statements. A search_path that lists pg_catalog
// after another schema makes every unqualified operator resolve there first, so a role able to
// create in that schema could change what the log, the lock or the no-op answers (pg_dump and
// psql qualify theirs for the same reason). Operands are parenthesised: OPERATOR() binds as
// "any other operator" does, not as the operator it names.
#include <fmt/format.h>

#include <string>
#include <string_view>

namespace stepwise {

// "(a) OPERATOR(pg_catalog.<op>) (b)".
[[nodiscard]] inline std::string pg_op(std::string_view a, std::string_view op,
                                       std::string_view b) {
  return fmt::format("({}) OPERATOR(pg_catalog.{}) ({})", a, op, b);
}
[[nodiscard]] inline std::string pg_eq(std::string_view a, std::string_view b) {
  return pg_op(a, "=", b);
}

}  // namespace stepwise
