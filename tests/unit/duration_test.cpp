#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "stepwise/duration.hpp"
#include "stepwise/errors.hpp"

namespace stepwise {
namespace {

using std::chrono::milliseconds;

milliseconds parse(std::string_view text) {
  return parse_duration("--lock-timeout", text);
}

TEST(ParseDuration, Milliseconds) {
  EXPECT_EQ(parse("500ms"), milliseconds(500));
}
TEST(ParseDuration, Seconds) {
  EXPECT_EQ(parse("30s"), milliseconds(30'000));
}
TEST(ParseDuration, Minutes) {
  EXPECT_EQ(parse("10m"), milliseconds(600'000));
}
TEST(ParseDuration, Hours) {
  EXPECT_EQ(parse("2h"), milliseconds(7'200'000));
}
TEST(ParseDuration, HoursAndMinutes) {
  EXPECT_EQ(parse("1h30m"), milliseconds(5'400'000));
}
TEST(ParseDuration, CompoundWithAllUnits) {
  EXPECT_EQ(parse("1h2m3s4ms"), milliseconds(3'600'000 + 120'000 + 3'000 + 4));
  EXPECT_EQ(parse("1m500ms"), milliseconds(60'500));
}
TEST(ParseDuration, FractionalSeconds) {
  EXPECT_EQ(parse("2.5s"), milliseconds(2'500));
}
TEST(ParseDuration, FractionalMinutes) {
  EXPECT_EQ(parse("1.5m"), milliseconds(90'000));
}
TEST(ParseDuration, FractionalMillisecondsRound) {
  EXPECT_EQ(parse("0.6ms"), milliseconds(1));
}
TEST(ParseDuration, BareNumberIsSeconds) {
  EXPECT_EQ(parse("30"), milliseconds(30'000));
}
TEST(ParseDuration, BareFractionIsSeconds) {
  EXPECT_EQ(parse("1.5"), milliseconds(1'500));
}
TEST(ParseDuration, Zero) {
  EXPECT_EQ(parse("0"), milliseconds(0));
  EXPECT_EQ(parse("0s"), milliseconds(0));
  EXPECT_EQ(parse("0ms"), milliseconds(0));
}

// Each invalid input must raise a UsageError whose message names the flag and the value.
void expect_invalid(std::string_view text) {
  try {
    (void)parse_duration("--statement-timeout", text);
    ADD_FAILURE() << "accepted invalid duration '" << text << "'";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--statement-timeout"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"" + std::string(text) + "\""), std::string::npos) << msg;
    EXPECT_EQ(e.code(), ExitCode::kUsage);
    EXPECT_FALSE(e.hint().empty());
  }
}

TEST(ParseDuration, EmptyIsInvalid) {
  try {
    (void)parse_duration("--connect-timeout", "");
    ADD_FAILURE() << "accepted an empty duration";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--connect-timeout"), std::string::npos) << e.what();
  }
}
TEST(ParseDuration, LettersOnlyInvalid) {
  expect_invalid("abc");
}
TEST(ParseDuration, UnknownUnitInvalid) {
  expect_invalid("10x");
}
TEST(ParseDuration, UnknownLongUnitInvalid) {
  expect_invalid("10sec");
}
TEST(ParseDuration, DaysNotSupported) {
  expect_invalid("1d");
}
TEST(ParseDuration, NegativeInvalid) {
  expect_invalid("-5s");
}
TEST(ParseDuration, TwoDecimalPointsInvalid) {
  expect_invalid("1.2.3s");
}
TEST(ParseDuration, TrailingBareNumberInvalid) {
  expect_invalid("5s5");
}
TEST(ParseDuration, BareNumberAfterUnitInvalid) {
  expect_invalid("10m30");
}
TEST(ParseDuration, UnitWithoutNumberInvalid) {
  expect_invalid("s");
}
TEST(ParseDuration, LoneDotInvalid) {
  expect_invalid(".s");
}
TEST(ParseDuration, SpacesInvalid) {
  expect_invalid(" 30s");
  expect_invalid("30 s");
  expect_invalid("30s ");
}
TEST(ParseDuration, PlusSignInvalid) {
  expect_invalid("+5s");
}
TEST(ParseDuration, HugeValueInvalid) {
  expect_invalid("99999999999999h");
}
TEST(ParseDuration, OverlongInputInvalid) {
  try {
    (void)parse_duration("--lock-timeout", std::string(100, '1'));
    ADD_FAILURE() << "accepted a 100-digit duration";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--lock-timeout"), std::string::npos);
  }
}
TEST(ParseDuration, ControlCharactersEscapedInMessage) {
  try {
    (void)parse_duration("--lock-timeout", "5\ns");
    ADD_FAILURE() << "accepted a duration with a newline";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("\\x0a"), std::string::npos) << msg;
  }
}

TEST(FormatDuration, BelowOneSecondInMilliseconds) {
  EXPECT_EQ(format_duration(milliseconds(0)), "0ms");
  EXPECT_EQ(format_duration(milliseconds(5)), "5ms");
  EXPECT_EQ(format_duration(milliseconds(999)), "999ms");
}
TEST(FormatDuration, SecondsWithOneDecimal) {
  EXPECT_EQ(format_duration(milliseconds(1000)), "1.0s");
  EXPECT_EQ(format_duration(milliseconds(2500)), "2.5s");
  EXPECT_EQ(format_duration(milliseconds(30'000)), "30.0s");
}
TEST(FormatDuration, MinutesAndSeconds) {
  EXPECT_EQ(format_duration(milliseconds(60'000)), "1m00s");
  EXPECT_EQ(format_duration(milliseconds(605'000)), "10m05s");
  EXPECT_EQ(format_duration(milliseconds(3'599'000)), "59m59s");
}
TEST(FormatDuration, HoursAndMinutes) {
  EXPECT_EQ(format_duration(milliseconds(3'600'000)), "1h00m");
  EXPECT_EQ(format_duration(milliseconds(5'400'000)), "1h30m");
  EXPECT_EQ(format_duration(milliseconds(90'000'000)), "25h00m");
}
TEST(FormatDuration, JustUnderAMinuteDoesNotReadAsSixtySeconds) {
  // 59.999 s is below one minute; "60.0s" reads as a minute, and 60.000 s prints "1m00s".
  const auto text = format_duration(milliseconds(59'999));
  EXPECT_NE(text, "60.0s") << "59999ms formats as " << text;
}
TEST(FormatDuration, RoundTripsThroughParse) {
  for (const char* in : {"500ms", "1m00s", "10m05s"})
    EXPECT_EQ(format_duration(parse(in)), in) << in;
  EXPECT_EQ(parse(format_duration(milliseconds(2500))), milliseconds(2500));
}

}  // namespace
}  // namespace stepwise
