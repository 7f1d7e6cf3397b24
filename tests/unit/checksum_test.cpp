#include <gtest/gtest.h>

#include <set>
#include <string>

#include "stepwise/checksum.hpp"

namespace stepwise {
namespace {

TEST(Sha256Hex, EmptyInputKnownVector) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Hex, AbcKnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Hex, TwoBlockKnownVector) {
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Hex, IsLowercaseHexOf64Chars) {
  const auto h = sha256_hex("hello");
  EXPECT_EQ(h, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  ASSERT_EQ(h.size(), 64u);
  for (char c : h) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << c;
}

TEST(Sha256Hex, HashesEmbeddedNulBytes) {
  const std::string with_nul("a\0b", 3);
  EXPECT_NE(sha256_hex(with_nul), sha256_hex("a"));
  EXPECT_NE(sha256_hex(with_nul), sha256_hex("ab"));
  EXPECT_EQ(sha256_hex(with_nul), sha256_hex(std::string("a\0b", 3)));
}

TEST(Sha256Hex, SensitiveToOneByteChange) {
  EXPECT_NE(sha256_hex("SELECT 1;"), sha256_hex("SELECT 2;"));
  EXPECT_NE(sha256_hex("SELECT 1;"), sha256_hex("SELECT 1; "));
}

TEST(Sha256Int64, KnownValuesAreFirstEightBytesBigEndian) {
  // First 8 bytes of SHA-256, read big-endian, as two's complement.
  EXPECT_EQ(sha256_int64(""), -2039914840885289964LL);      // e3b0c44298fc1c14
  EXPECT_EQ(sha256_int64("abc"), -5010229573455851542LL);   // ba7816bf8f01cfea
  EXPECT_EQ(sha256_int64("hello"), 3238736544897475342LL);  // 2cf24dba5fb0a30e
  EXPECT_EQ(sha256_int64("stepwise:public.stepwise_log"), 2350476344756043228LL);
}

TEST(Sha256Int64, StableAcrossCalls) {
  const auto a = sha256_int64("stepwise:public.stepwise_log");
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sha256_int64("stepwise:public.stepwise_log"), a);
}

TEST(Sha256Int64, DiffersByInput) {
  std::set<long long> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sha256_int64("input-" + std::to_string(i)));
  EXPECT_EQ(seen.size(), 200u);
  EXPECT_NE(sha256_int64("a"), sha256_int64("b"));
  EXPECT_NE(sha256_int64("stepwise:public.log"), sha256_int64("stepwise:public.log2"));
}

TEST(Sha256Int64, ConsistentWithHexDigest) {
  for (const char* in : {"", "x", "stepwise", "a longer input with spaces"}) {
    const auto hex = sha256_hex(in);
    const auto expected = static_cast<long long>(std::stoull(hex.substr(0, 16), nullptr, 16));
    EXPECT_EQ(sha256_int64(in), expected) << in;
  }
}

}  // namespace
}  // namespace stepwise
