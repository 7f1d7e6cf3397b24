#include "stepwise/version_id.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <ostream>

namespace stepwise {

std::optional<Version> Version::parse(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  for (char c : digits)
    if (c < '0' || c > '9') return std::nullopt;
  const auto first = digits.find_first_not_of('0');
  Version v;
  if (first != std::string_view::npos) v.digits_.assign(digits.substr(first));
  return v;
}

Version Version::from_digits(std::string_view digits) {
  auto v = parse(digits);
  if (!v) throw std::invalid_argument("a version is a string of ASCII digits");
  return std::move(*v);
}

std::optional<std::int64_t> Version::to_int64() const noexcept {
  if (digits_.size() > 19) return std::nullopt;
  std::int64_t out = 0;
  const auto [ptr, ec] = std::from_chars(digits_.data(), digits_.data() + digits_.size(), out);
  if (ec != std::errc{} || ptr != digits_.data() + digits_.size()) return std::nullopt;
  return out;
}

std::ostream& operator<<(std::ostream& os, const Version& v) {
  return os << v.to_string();
}

void to_json(nlohmann::json& j, const Version& v) {
  if (const auto n = v.to_int64())
    j = *n;
  else
    j = v.to_string();
}

}  // namespace stepwise
