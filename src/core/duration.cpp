#include "stepwise/duration.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "stepwise/errors.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

std::chrono::milliseconds parse_duration(std::string_view flag, std::string_view text) {
  const auto bad = [&] {
    return UsageError(fmt::format("{}: invalid duration {}", flag, printable(text, 40)),
                      "use e.g. 500ms, 30s, 10m, 1h30m, or a number of seconds");
  };
  if (text.empty() || text.size() > 40) throw bad();
  double total_ms = 0;
  std::size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == '.')) ++j;
    if (j == i) throw bad();
    const std::string number(text.substr(i, j - i));
    if (number.find('.') != number.rfind('.') || number == ".") throw bad();
    const double value = std::strtod(number.c_str(), nullptr);
    std::size_t k = j;
    while (k < text.size() &&
           ((text[k] >= 'a' && text[k] <= 'z') || (text[k] >= 'A' && text[k] <= 'Z')))
      ++k;
    const auto unit = text.substr(j, k - j);
    double scale = 0;
    if (unit.empty()) {
      if (any || k != text.size()) throw bad();  // a bare number must stand alone
      scale = 1000;
    } else if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60'000;
    } else if (unit == "h") {
      scale = 3'600'000;
    } else {
      throw bad();
    }
    total_ms += value * scale;
    any = true;
    i = k;
  }
  if (!std::isfinite(total_ms) || total_ms > 1e12) throw bad();
  return std::chrono::milliseconds(static_cast<long long>(std::llround(total_ms)));
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000)
    return fmt::format("{}.{}s", ms / 1000, (ms % 1000) / 100);  // truncated, never "60.0s"
  const auto s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

}  // namespace stepwise
