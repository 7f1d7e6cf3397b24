#pragma once
// Inside the engine library only: before a statement that may have run already is run again
// (a step run statement by statement, interrupted or retried), what of it took effect.
#include <functional>
#include <string>
#include <string_view>

#include "stepwise/database.hpp"

namespace stepwise::detail {

// True when `statement` already took effect and must not run again; `note` hears why (and when
// an INVALID index left by an interrupted CREATE INDEX CONCURRENTLY is dropped, so that the
// statement builds it again).
[[nodiscard]] bool already_took_effect(Connection& conn, std::string_view statement,
                                       const std::function<void(const std::string&)>& note);

}  // namespace stepwise::detail
