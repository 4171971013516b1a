#include "util/time.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>

namespace cartwatch::util {
namespace {

using std::chrono::milliseconds;

// 2026-11-23T17:24:02Z, checked with `date -u -d 2026-11-23T17:24:02Z +%s`.
constexpr EpochMs kSample = 1795454642000;

TEST(ParseIso8601Test, UtcWithMilliseconds) {
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02.123Z"), kSample + 123);
  EXPECT_EQ(ParseIso8601("1970-01-01T00:00:00.000Z"), 0);
  EXPECT_EQ(ParseIso8601("1970-01-01T00:00:00.001Z"), 1);
}

TEST(ParseIso8601Test, WithoutOffsetIsUtc) {
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02"), kSample);
  EXPECT_EQ(ParseIso8601("2026-11-23 17:24:02"), kSample);
  EXPECT_EQ(ParseIso8601("2026-11-23t17:24:02z"), kSample);
}

TEST(ParseIso8601Test, BareDateIsMidnightUtc) {
  EXPECT_EQ(ParseIso8601("2026-11-23"), kSample - (17 * 3600 + 24 * 60 + 2) * 1000);
  EXPECT_EQ(ParseIso8601("1970-01-02"), 86400000);
}

TEST(ParseIso8601Test, Offsets) {
  // 17:24:02+01:00 is 16:24:02Z.
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02+01:00"), kSample - 3600000);
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02+0100"), kSample - 3600000);
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02+01"), kSample - 3600000);
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02-00:00"), kSample);
  // 17:24:02.5-03:30 is 20:54:02.5Z.
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02.5-0330"), kSample + 3 * 3600000 + 1800000 + 500);
  // An offset can move the instant across a day boundary.
  EXPECT_EQ(ParseIso8601("1970-01-01T00:30:00+01:00"), -1800000);
}

TEST(ParseIso8601Test, FractionsAreTruncatedToMilliseconds) {
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02.1Z"), kSample + 100);
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02.12Z"), kSample + 120);
  EXPECT_EQ(ParseIso8601("2026-11-23T17:24:02.123999999Z"), kSample + 123);
}

TEST(ParseIso8601Test, LeapYears) {
  EXPECT_TRUE(ParseIso8601("2024-02-29T00:00:00Z"));
  EXPECT_TRUE(ParseIso8601("2000-02-29"));   // divisible by 400
  EXPECT_FALSE(ParseIso8601("1900-02-29"));  // divisible by 100 only
  EXPECT_FALSE(ParseIso8601("2026-02-29T00:00:00Z"));
  EXPECT_EQ(*ParseIso8601("2024-03-01") - *ParseIso8601("2024-02-28"), 2 * 86400000);
  EXPECT_EQ(*ParseIso8601("2026-03-01") - *ParseIso8601("2026-02-28"), 86400000);
}

TEST(ParseIso8601Test, YearRange) {
  EXPECT_EQ(ParseIso8601("0000-01-01T00:00:00Z"), -62167219200000);
  EXPECT_EQ(ParseIso8601("9999-12-31T23:59:59.999Z"), 253402300799999);
  EXPECT_FALSE(ParseIso8601("10000-01-01T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("-0001-01-01T00:00:00Z"));
}

TEST(ParseIso8601Test, RejectsOutOfRangeFields) {
  EXPECT_FALSE(ParseIso8601("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-00-01T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-02-30T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-04-31T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-01-00T00:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-01-01T24:00:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-01-01T23:60:00Z"));
  EXPECT_FALSE(ParseIso8601("2026-01-01T23:59:60Z"));
  EXPECT_FALSE(ParseIso8601("2026-01-01T00:00:00+24:00"));
  EXPECT_FALSE(ParseIso8601("2026-01-01T00:00:00+01:60"));
}

TEST(ParseIso8601Test, RejectsOtherForms) {
  for (const char* text : {"",
                           "2026",
                           "2026-11",
                           "2026-1-23",
                           "26-11-23",
                           "2026/11/23",
                           "2026-11-23T",
                           "2026-11-23T17:24",
                           "2026-11-23T17:24:2Z",
                           "2026-11-23T17:24:02.Z",
                           "2026-11-23T17:24:02ZZ",
                           "2026-11-23T17:24:02 Z",
                           "2026-11-23T17:24:02+1",
                           "2026-11-23T17:24:02+01:",
                           "2026-11-23T17:24:02+01:0",
                           "2026-11-23T17:24:02+01:00:00",
                           "2026-11-23X17:24:02Z",
                           " 2026-11-23T17:24:02Z",
                           "2026-11-23T17:24:02Z ",
                           "1795454642000",
                           "next tuesday",
                           "2026-11-23T17:24:02.123Zjunk"}) {
    EXPECT_FALSE(ParseIso8601(text)) << text;
  }
}

TEST(FormatIso8601Test, AlwaysUtcWithMilliseconds) {
  EXPECT_EQ(FormatIso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(kSample + 7), "2026-11-23T17:24:02.007Z");
  EXPECT_EQ(FormatIso8601(*ParseIso8601("2024-02-29T23:59:59.999Z")), "2024-02-29T23:59:59.999Z");
  EXPECT_EQ(FormatIso8601(-1), "1969-12-31T23:59:59.999Z");
}

TEST(FormatIso8601Test, AppendsToExistingText) {
  std::string out = "at ";
  AppendIso8601(kSample, out);
  EXPECT_EQ(out, "at 2026-11-23T17:24:02.000Z");
}

TEST(FormatIso8601Test, ClampsToFourDigitYears) {
  EXPECT_EQ(FormatIso8601(-62167219200001), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(253402300800000), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIso8601(INT64_MIN), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(INT64_MAX), "9999-12-31T23:59:59.999Z");
}

TEST(FormatIso8601Test, RoundTripsThroughParse) {
  for (EpochMs ms = -62167219200000; ms < 253402300799999; ms += 86400000LL * 365 * 7 + 12345) {
    EXPECT_EQ(ParseIso8601(FormatIso8601(ms)), ms) << FormatIso8601(ms);
  }
}

TEST(ParseDurationTest, Units) {
  EXPECT_EQ(ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(ParseDuration("15s"), milliseconds(15000));
  EXPECT_EQ(ParseDuration("5m"), milliseconds(300000));
  EXPECT_EQ(ParseDuration("1h"), milliseconds(3600000));
  EXPECT_EQ(ParseDuration("90d"), milliseconds(90LL * 86400000));
  EXPECT_EQ(ParseDuration("2w"), milliseconds(14LL * 86400000));
  EXPECT_EQ(ParseDuration("0"), milliseconds(0));
  EXPECT_EQ(ParseDuration("0s"), milliseconds(0));
}

TEST(ParseDurationTest, RejectsOtherForms) {
  for (const char* text : {"", "s", "15", "00", "1", "-5s", "+5s", "1.5h", "15 s", " 15s", "15s ",
                           "15S", "15sec", "1h30m", "5y", "ms"}) {
    EXPECT_FALSE(ParseDuration(text)) << text;
  }
}

TEST(ParseDurationTest, RejectsOverflow) {
  EXPECT_EQ(ParseDuration("9223372036854775807ms"), milliseconds(INT64_MAX));
  EXPECT_FALSE(ParseDuration("9223372036854775808ms"));
  EXPECT_FALSE(ParseDuration("9223372036854775807s"));
  EXPECT_FALSE(ParseDuration("99999999999999999999999d"));
  EXPECT_TRUE(ParseDuration("15250w"));
}

TEST(NowMsTest, IsCurrentWallClock) {
  const EpochMs before =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const EpochMs now = NowMs();
  EXPECT_GE(now, before);
  EXPECT_LT(now - before, 10000);
  EXPECT_GT(now, *ParseIso8601("2024-01-01"));
}

}  // namespace
}  // namespace cartwatch::util
