#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "stepwise/version_id.hpp"

namespace stepwise {
namespace {

Version v(std::string_view digits) {
  return Version::from_digits(digits);
}

TEST(Version, DefaultIsZero) {
  const Version zero;
  EXPECT_TRUE(zero.is_zero());
  EXPECT_EQ(zero.to_string(), "0");
  EXPECT_EQ(zero, Version(0));
  EXPECT_FALSE(Version(1).is_zero());
}

TEST(Version, LeadingZerosIgnored) {
  EXPECT_EQ(v("0001"), v("1"));
  EXPECT_EQ(v("0001").to_string(), "1");
  EXPECT_EQ(v("000000").to_string(), "0");
  EXPECT_TRUE(v("000000").is_zero());
  EXPECT_EQ(v("0"), Version());
  EXPECT_EQ(v("00120"), Version(120));
  EXPECT_EQ(std::hash<Version>{}(v("007")), std::hash<Version>{}(v("7")));
}

TEST(Version, OrderedNumericallyAcrossLengths) {
  EXPECT_LT(v("9"), v("10"));
  EXPECT_LT(v("0009"), v("10"));
  EXPECT_GT(v("100"), v("099"));
  EXPECT_LT(v("19"), v("20"));
  EXPECT_LT(v("9223372036854775807"), v("9223372036854775808"));
  EXPECT_LT(v("99999999999999999999"), v("100000000000000000000"));
  EXPECT_LE(v("5"), v("005"));
  EXPECT_GE(v("5"), v("005"));
  std::vector<Version> all{v("20150100000001000000"),
                           v("10"),
                           v("2"),
                           v("0"),
                           v("12345678901234567890123456789012345678"),
                           v("9")};
  std::sort(all.begin(), all.end());
  std::vector<std::string> got;
  for (const auto& x : all) got.push_back(x.to_string());
  EXPECT_EQ(got, (std::vector<std::string>{"0", "2", "9", "10", "20150100000001000000",
                                           "12345678901234567890123456789012345678"}));
}

TEST(Version, ThirtyEightDigitsAndMoreKeptLosslessly) {
  const std::string d38 = "12345678901234567890123456789012345678";
  EXPECT_EQ(v(d38).to_string(), d38);
  const std::string d60(60, '9');
  EXPECT_EQ(v(d60).to_string(), d60);
  EXPECT_GT(v(d60), v(d38));
  EXPECT_EQ(v("000" + d38), v(d38));
  EXPECT_NE(v(d38), v(d38.substr(0, 37) + "9"));
}

TEST(Version, RejectsWhatIsNotDigits) {
  for (const auto* bad : {"", " ", "-1", "+1", " 1", "1 ", "1a", "a1", "1_2", "1.0", "0x10",
                          "\xd9\xa1" /* Arabic-Indic one */, "1\n"}) {
    EXPECT_FALSE(Version::parse(bad).has_value()) << '"' << bad << '"';
    EXPECT_THROW((void)Version::from_digits(bad), std::invalid_argument) << bad;
  }
  EXPECT_THROW(Version(-1), std::invalid_argument);
}

TEST(Version, FromIntegers) {
  EXPECT_EQ(Version(42).to_string(), "42");
  EXPECT_EQ(Version(18446744073709551615ULL).to_string(), "18446744073709551615");
  EXPECT_EQ(Version(9223372036854775807LL).to_string(), "9223372036854775807");
}

TEST(Version, Int64WhenItFits) {
  EXPECT_EQ(v("9223372036854775807").to_int64(), 9223372036854775807LL);
  EXPECT_EQ(v("0").to_int64(), 0);
  EXPECT_FALSE(v("9223372036854775808").to_int64().has_value());
  EXPECT_FALSE(v("20150100000001000000").to_int64().has_value());
}

TEST(Version, JsonNumberWhenItFitsElseString) {
  nlohmann::json small = v("0042");
  EXPECT_TRUE(small.is_number_integer());
  EXPECT_EQ(small.get<long long>(), 42);
  nlohmann::json edge = v("9223372036854775807");
  EXPECT_TRUE(edge.is_number_integer());
  nlohmann::json big = v("20150100000001000000");
  ASSERT_TRUE(big.is_string());
  EXPECT_EQ(big.get<std::string>(), "20150100000001000000");
  EXPECT_EQ((nlohmann::json{{"version", v("9223372036854775808")}}).dump(),
            R"({"version":"9223372036854775808"})");
}

TEST(Version, FormatsAsItsDigits) {
  EXPECT_EQ(fmt::format("{}", v("00017")), "17");
  EXPECT_EQ(fmt::format("[{:>5}]", v("17")), "[   17]");
  std::ostringstream os;
  os << v("20150100000001000000");
  EXPECT_EQ(os.str(), "20150100000001000000");
  std::unordered_set<Version> set{v("1"), v("001"), v("2")};
  EXPECT_EQ(set.size(), 2u);
}

}  // namespace
}  // namespace stepwise
