// Sessions: splitting on 30 minutes idle and on a new campaign, activity, late pages.
#include <gtest/gtest.h>

#include "profiles/profiles.h"
#include "tests/profiles/helpers.h"

namespace cartwatch::profiles {
namespace {

using namespace helpers;  // NOLINT: test helpers

constexpr char kWho[] = "a:v1";

boost::json::object Utm(std::string_view source, std::string_view name) {
  return {{"source", source}, {"medium", "cpc"}, {"name", name}};
}

class SessionTest : public ::testing::Test {
 protected:
  std::vector<Session> sessions() { return world_.visitor("v1").sessions; }
  World world_;
};

TEST_F(SessionTest, PagesWithinThirtyMinutesFormOneSession) {
  Outcome out = world_.Send(Page(kWho, kT0, "https://s/", Utm("google", "x"), "https://g/"));
  EXPECT_TRUE(out.session_started);
  out = world_.Send(Page(kWho, kT0 + 10 * kMinute, "https://s/shoes"));
  EXPECT_FALSE(out.session_started);
  world_.Send(Page(kWho, kT0 + 40 * kMinute, "https://s/cart"));  // 30 min after the last
  const std::vector<Session> s = sessions();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].start, kT0);
  EXPECT_EQ(s[0].end, kT0 + 40 * kMinute);
  EXPECT_EQ(s[0].duration(), 40 * kMinute);
  EXPECT_EQ(s[0].pages, 3);
  EXPECT_EQ(s[0].landing_url, "https://s/");
  EXPECT_EQ(s[0].landing_title, "Title of https://s/");
  EXPECT_EQ(s[0].exit_url, "https://s/cart");
  EXPECT_EQ(s[0].referrer, "https://g/");
  EXPECT_EQ(s[0].utm, (Campaign{"google", "cpc", "x", "", ""}));
  EXPECT_EQ(world_.visitor("v1").page_views, 3);
}

TEST_F(SessionTest, MoreThanThirtyMinutesIdleStartsANewSession) {
  world_.Send(Page(kWho, kT0, "https://s/a"));
  const Outcome out = world_.Send(Page(kWho, kT0 + 30 * kMinute + 1, "https://s/b"));
  EXPECT_TRUE(out.session_started);
  const std::vector<Session> s = sessions();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].pages, 1);
  EXPECT_EQ(s[0].duration(), 0);
  EXPECT_EQ(s[1].start, kT0 + 30 * kMinute + 1);
  EXPECT_EQ(s[1].landing_url, "https://s/b");
}

TEST_F(SessionTest, ANewCampaignStartsANewSession) {
  world_.Send(Page(kWho, kT0, "https://s/", Utm("google", "spring")));
  // Same campaign, and no campaign at all: the same session.
  EXPECT_FALSE(world_.Send(Page(kWho, kT0 + kMinute, "https://s/a", Utm("google", "spring")))
                   .session_started);
  EXPECT_FALSE(world_.Send(Page(kWho, kT0 + 2 * kMinute, "https://s/b")).session_started);
  // Another campaign a minute later: a new session.
  EXPECT_TRUE(world_.Send(Page(kWho, kT0 + 3 * kMinute, "https://s/c", Utm("newsletter", "nov")))
                  .session_started);
  // A campaign on a page of a session that had none: new too.
  world_.Send(Page("a:v2", kT0, "https://s/"));
  EXPECT_TRUE(
      world_.Send(Page("a:v2", kT0 + kMinute, "https://s/", Utm("fb", "x"))).session_started);

  const std::vector<Session> s = sessions();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].pages, 3);
  EXPECT_EQ(s[0].utm.name, "spring");
  EXPECT_EQ(s[1].utm.source, "newsletter");
  EXPECT_EQ(s[1].landing_url, "https://s/c");
}

TEST_F(SessionTest, CampaignFromTheLandingPageUrl) {
  world_.Send(Page(kWho, kT0, "https://s/?utm_source=bing&utm_campaign=c1"));
  world_.Send(Page(kWho, kT0 + kMinute, "https://s/next"));
  const std::vector<Session> s = sessions();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].utm.source, "bing");
  EXPECT_EQ(s[0].utm.name, "c1");
}

TEST_F(SessionTest, OtherEventsExtendTheSessionButDoNotOpenOne) {
  world_.Send(Track(kWho, "Product Viewed", kT0 - kHour, ProductProps("p", 1, 1)));
  EXPECT_TRUE(sessions().empty());
  world_.Send(Page(kWho, kT0, "https://s/"));
  world_.Send(Track(kWho, "Product Added", kT0 + 20 * kMinute, ProductProps("p", 1, 1)));
  world_.Send(Track(kWho, "Video Played", kT0 + 45 * kMinute, {}));
  world_.Send(Track(kWho, "Video Played", kT0 + 2 * kHour, {}));  // idle: no session
  std::vector<Session> s = sessions();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].end, kT0 + 45 * kMinute);
  EXPECT_EQ(s[0].pages, 1);
  EXPECT_EQ(s[0].exit_url, "https://s/");
  // A page 30 minutes after that activity still belongs to the session.
  EXPECT_FALSE(world_.Send(Page(kWho, kT0 + 75 * kMinute, "https://s/x")).session_started);
  EXPECT_EQ(world_.visitor("v1").last_seen, kT0 + 2 * kHour);
}

TEST_F(SessionTest, ALatePageJustBeforeTheSessionBecomesItsLandingPage) {
  world_.Send(Page(kWho, kT0 + 5 * kMinute, "https://s/second"));
  const Outcome out =
      world_.Send(Page(kWho, kT0, "https://s/first", Utm("google", "x"), "https://g/"));
  EXPECT_FALSE(out.session_started);
  const std::vector<Session> s = sessions();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].start, kT0);
  EXPECT_EQ(s[0].end, kT0 + 5 * kMinute);
  EXPECT_EQ(s[0].pages, 2);
  EXPECT_EQ(s[0].landing_url, "https://s/first");
  EXPECT_EQ(s[0].exit_url, "https://s/second");
  EXPECT_EQ(s[0].referrer, "https://g/");
  EXPECT_EQ(s[0].utm.source, "google");
  EXPECT_EQ(world_.visitor("v1").first_seen, kT0);
}

TEST_F(SessionTest, APageOlderThanTheSessionCountsButReopensNothing) {
  world_.Send(Page(kWho, kT0, "https://s/1"));
  world_.Send(Page(kWho, kT0 + 2 * kHour, "https://s/2"));
  // Between the two sessions, and before the first: no session changes.
  EXPECT_FALSE(world_.Send(Page(kWho, kT0 + kHour, "https://s/late")).session_started);
  EXPECT_FALSE(world_.Send(Page(kWho, kT0 - kHour, "https://s/early")).session_started);
  const std::vector<Session> s = sessions();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].start, kT0);
  EXPECT_EQ(s[0].pages, 1);
  EXPECT_EQ(s[1].start, kT0 + 2 * kHour);
  EXPECT_EQ(s[1].pages, 1);
  EXPECT_EQ(world_.visitor("v1").page_views, 4);
  EXPECT_EQ(world_.visitor("v1").first_seen, kT0 - kHour);

  // 25 min before the current session, but only 20 min after the previous one ended: it
  // could belong to either, so it joins neither.
  world_.Send(Page("a:v2", kT0, "https://s/1"));
  world_.Send(Page("a:v2", kT0 + 45 * kMinute, "https://s/2"));
  world_.Send(Page("a:v2", kT0 + 20 * kMinute, "https://s/between"));
  const std::vector<Session> v2 = world_.visitor("v2").sessions;
  ASSERT_EQ(v2.size(), 2u);
  EXPECT_EQ(v2[0].pages, 1);
  EXPECT_EQ(v2[1].pages, 1);
  EXPECT_EQ(v2[1].start, kT0 + 45 * kMinute);
}

TEST_F(SessionTest, ALatePageWithinTheSessionJoinsWithoutMovingTheExit) {
  world_.Send(Page(kWho, kT0, "https://s/1"));
  world_.Send(Page(kWho, kT0 + 10 * kMinute, "https://s/3"));
  world_.Send(Page(kWho, kT0 + 5 * kMinute, "https://s/2", Utm("other", "campaign")));
  const std::vector<Session> s = sessions();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].pages, 3);
  EXPECT_EQ(s[0].exit_url, "https://s/3");
  EXPECT_TRUE(s[0].utm.empty());
}

TEST_F(SessionTest, KeepsTheNewestSessions) {
  world_.options.max_sessions = 3;
  for (int i = 0; i < 5; ++i) world_.Send(Page(kWho, kT0 + i * kHour, "https://s/"));
  const std::vector<Session> s = sessions();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].start, kT0 + 2 * kHour);
  EXPECT_EQ(s[2].start, kT0 + 4 * kHour);
  EXPECT_EQ(world_.visitor("v1").page_views, 5);
}

TEST_F(SessionTest, SessionTimeoutIsAnOption) {
  world_.options.session_timeout = std::chrono::minutes(5);
  world_.Send(Page(kWho, kT0, "https://s/"));
  EXPECT_TRUE(world_.Send(Page(kWho, kT0 + 6 * kMinute, "https://s/")).session_started);
}

}  // namespace
}  // namespace cartwatch::profiles
