#include "stepwise/checksum.hpp"

#include <openssl/sha.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace stepwise {
namespace {
std::array<unsigned char, SHA256_DIGEST_LENGTH> digest(std::string_view bytes) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> out{};
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out.data());
  return out;
}
}  // namespace

std::string sha256_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest(bytes)) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 0xf]);
  }
  return hex;
}

long long sha256_int64(std::string_view bytes) {
  const auto d = digest(bytes);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | d[static_cast<std::size_t>(i)];
  long long out = 0;
  std::memcpy(&out, &v, sizeof out);  // two's complement reinterpretation, well defined
  return out;
}
}  // namespace stepwise
