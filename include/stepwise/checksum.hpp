#pragma once
#include <string>
#include <string_view>

namespace stepwise {
// Lowercase hex SHA-256 of the bytes.
[[nodiscard]] std::string sha256_hex(std::string_view bytes);
// First 8 bytes of SHA-256, as a signed 64-bit integer (an advisory-lock key).
[[nodiscard]] long long sha256_int64(std::string_view bytes);
}  // namespace stepwise
