#pragma once
#include <chrono>
#include <string>
#include <string_view>

namespace stepwise {
// Parses "500ms", "30s", "10m", "1h30m", "2.5s" or a bare number of seconds ("30").
// Throws UsageError naming `flag` and the value.
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view flag,
                                                       std::string_view text);
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);
}  // namespace stepwise
