#pragma once
// The single fix script for a set of findings and the hazards of its statements. Pure. The
// statements themselves come from ddl.hpp; the findings from drift.hpp.
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/drift.hpp"

namespace stepwise {

// What a statement risks: strong locks, table rewrites, data loss (empty: nothing known).
[[nodiscard]] std::vector<std::string> statement_hazards(std::string_view statement);
// The hazards of every statement of `fix`, without duplicates.
[[nodiscard]] std::vector<std::string> fix_hazards(std::string_view fix);

// One script for all findings: `ALTER TYPE ... ADD VALUE` first (committed on its own: a label
// cannot be used in the transaction that adds it), then everything else in one transaction,
// in the findings' order (drops first, dependents before what they depend on; then creations,
// dependencies first). Each statement is preceded by the finding it fixes and its hazards.
[[nodiscard]] std::string fix_script(const std::vector<DriftItem>& items);

}  // namespace stepwise
