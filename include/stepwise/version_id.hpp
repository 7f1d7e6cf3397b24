#pragma once
// A migration version: any string of ASCII digits, compared as a number of any length.
// "0001" and "1" are the same version; 20150100000001000000 (20 digits) and 38-digit versions
// are as valid as 42. Held as its normalised digits (no leading zeros, "0" for zero), which is
// also how the log table stores it (a text column, format 2).
#include <fmt/format.h>

#include <compare>
#include <concepts>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace stepwise {

class Version {
 public:
  // Zero: "before the first migration" (no migration file has version 0).
  Version() = default;

  // From a non-negative integer (tests, counters). Negative values throw std::invalid_argument.
  template <std::integral T>
  requires(!std::same_as<std::remove_cv_t<T>, bool> && !std::same_as<std::remove_cv_t<T>, char>)
      Version(
          T n) {  // NOLINT(google-explicit-constructor): versions read like the numbers they are
    if constexpr (std::is_signed_v<T>) {
      if (n < 0) throw std::invalid_argument("a version is never negative");
    }
    digits_ = std::to_string(static_cast<std::uintmax_t>(n));
  }

  // Digits only, at least one; leading zeros are dropped. nullopt for an empty string or any
  // other character (sign, space, '_', a decimal point ...).
  [[nodiscard]] static std::optional<Version> parse(std::string_view digits);
  // As parse(), but throws std::invalid_argument: for text that was checked already.
  [[nodiscard]] static Version from_digits(std::string_view digits);

  // The normalised digits: "1" for "0001", "0" for zero.
  [[nodiscard]] const std::string& to_string() const noexcept { return digits_; }
  [[nodiscard]] bool is_zero() const noexcept { return digits_ == "0"; }
  // The value as a signed 64-bit integer when it fits (JSON output keeps numbers there).
  [[nodiscard]] std::optional<std::int64_t> to_int64() const noexcept;

  friend bool operator==(const Version&, const Version&) = default;
  // Numeric order: more digits is larger; equal lengths compare byte by byte.
  friend std::strong_ordering operator<=>(const Version& a, const Version& b) noexcept {
    if (a.digits_.size() != b.digits_.size()) return a.digits_.size() <=> b.digits_.size();
    const int c = a.digits_.compare(b.digits_);
    return c < 0   ? std::strong_ordering::less
           : c > 0 ? std::strong_ordering::greater
                   : std::strong_ordering::equal;
  }

 private:
  std::string digits_ = "0";
};

// Test output (gtest) and streams: the digits.
std::ostream& operator<<(std::ostream& os, const Version& v);

// JSON: a number when the value fits a signed 64-bit integer, else a string of digits.
void to_json(nlohmann::json& j, const Version& v);

}  // namespace stepwise

template <>
struct std::hash<stepwise::Version> {
  std::size_t operator()(const stepwise::Version& v) const noexcept {
    return std::hash<std::string>{}(v.to_string());
  }
};

template <>
struct fmt::formatter<stepwise::Version> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const stepwise::Version& v, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(v.to_string(), ctx);
  }
};
