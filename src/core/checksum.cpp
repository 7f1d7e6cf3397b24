#include "stepwise/checksum.hpp"

// The low-level SHA-256 calls are deprecated in OpenSSL 3 in favour of EVP, whose per-call
// provider lookups (locks, allocations) cost more than hashing a small file.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace stepwise {
namespace {

using Digest = std::array<unsigned char, 32>;

Digest digest(std::string_view bytes) {
  Digest out{};
  SHA256_CTX ctx;
  if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, bytes.data(), bytes.size()) != 1 ||
      SHA256_Final(out.data(), &ctx) != 1)
    throw std::runtime_error("SHA-256 failed in OpenSSL");
  return out;
}
}  // namespace

std::string sha256_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(64);
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
