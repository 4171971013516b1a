// Time zones from the system's zoneinfo (Debian's tzdata): offsets across DST changes in
// both hemispheres, the POSIX rule after the last transition, and names that are no zone.
#include "rules/timezone.h"

#include <gtest/gtest.h>

#include "util/time.h"

namespace cartwatch::rules {
namespace {

std::int64_t At(const char* iso) { return *util::ParseIso8601(iso); }

TEST(TimeZoneTest, BerlinAcrossItsSummerTime) {
  auto berlin = TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(berlin) << "tzdata is not installed";
  EXPECT_EQ(berlin->OffsetSeconds(At("2026-01-15T12:00:00Z")), 3600);
  EXPECT_EQ(berlin->OffsetSeconds(At("2026-07-15T12:00:00Z")), 7200);
  // Summer time starts 2026-03-29 at 01:00 UTC, ends 2026-10-25 at 01:00 UTC.
  EXPECT_EQ(berlin->OffsetSeconds(At("2026-03-29T00:59:59Z")), 3600);
  EXPECT_EQ(berlin->OffsetSeconds(At("2026-03-29T01:00:00Z")), 7200);
  EXPECT_EQ(berlin->OffsetSeconds(At("2026-10-25T00:59:59Z")), 7200);
  EXPECT_EQ(berlin->OffsetSeconds(At("2026-10-25T01:00:00Z")), 3600);
}

TEST(TimeZoneTest, OtherZones) {
  EXPECT_EQ(TimeZone::Load("Europe/Moscow")->OffsetSeconds(At("2026-07-01T00:00:00Z")), 3 * 3600);
  EXPECT_EQ(TimeZone::Load("America/New_York")->OffsetSeconds(At("2026-01-01T00:00:00Z")), -5 * 3600);
  EXPECT_EQ(TimeZone::Load("America/New_York")->OffsetSeconds(At("2026-07-01T00:00:00Z")), -4 * 3600);
  // The southern hemisphere: summer time across the new year.
  auto sydney = TimeZone::Load("Australia/Sydney");
  ASSERT_TRUE(sydney);
  EXPECT_EQ(sydney->OffsetSeconds(At("2026-01-01T00:00:00Z")), 11 * 3600);
  EXPECT_EQ(sydney->OffsetSeconds(At("2026-07-01T00:00:00Z")), 10 * 3600);
  EXPECT_EQ(TimeZone::Load("Asia/Kolkata")->OffsetSeconds(At("2026-07-01T00:00:00Z")), 19800);
  EXPECT_EQ(TimeZone::Load("UTC")->OffsetSeconds(At("2026-07-01T00:00:00Z")), 0);
}

TEST(TimeZoneTest, ThePosixRuleGoesOnAfterTheLastTransition) {
  auto rule = TimeZone::FromPosixRule("CET-1CEST,M3.5.0,M10.5.0/3");
  ASSERT_TRUE(rule);
  // 2041: last Sunday of March is the 31st; of October the 27th.
  EXPECT_EQ(rule->OffsetSeconds(At("2041-03-31T00:59:59Z")), 3600);
  EXPECT_EQ(rule->OffsetSeconds(At("2041-03-31T01:00:00Z")), 7200);
  EXPECT_EQ(rule->OffsetSeconds(At("2041-10-27T00:59:59Z")), 7200);
  EXPECT_EQ(rule->OffsetSeconds(At("2041-10-27T01:00:00Z")), 3600);
  auto berlin = TimeZone::Load("Europe/Berlin");
  EXPECT_EQ(berlin->OffsetSeconds(At("2045-07-01T00:00:00Z")), 7200);
  EXPECT_EQ(berlin->OffsetSeconds(At("2045-12-01T00:00:00Z")), 3600);
  auto sydney = TimeZone::FromPosixRule("AEST-10AEDT,M10.1.0,M4.1.0/3");
  ASSERT_TRUE(sydney);
  EXPECT_EQ(sydney->OffsetSeconds(At("2045-01-01T00:00:00Z")), 11 * 3600);
  EXPECT_EQ(sydney->OffsetSeconds(At("2045-06-01T00:00:00Z")), 10 * 3600);
  EXPECT_EQ(TimeZone::FromPosixRule("<+03>-3")->OffsetSeconds(At("2045-06-01T00:00:00Z")), 3 * 3600);
  EXPECT_FALSE(TimeZone::FromPosixRule("nonsense"));
}

TEST(TimeZoneTest, NamesThatAreNoZone) {
  EXPECT_FALSE(TimeZone::Load("Mars/Olympus_Mons"));
  EXPECT_FALSE(TimeZone::Load("../../etc/passwd"));
  EXPECT_FALSE(TimeZone::Load("/etc/passwd"));
  EXPECT_FALSE(TimeZone::Parse("not a zone file"));
  TimeZones zones;
  EXPECT_EQ(zones.Get("Mars/Olympus_Mons").OffsetSeconds(At("2026-07-01T00:00:00Z")), 0);  // UTC
  EXPECT_EQ(zones.Get("Europe/Berlin").OffsetSeconds(At("2026-07-01T00:00:00Z")), 7200);
  EXPECT_EQ(&zones.Get("Europe/Berlin"), &zones.Get("Europe/Berlin"));  // loaded once
}

}  // namespace
}  // namespace cartwatch::rules
