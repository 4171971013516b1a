// The delivery policy: what each outcome of an attempt means, Retry-After, the schedule
// with its jitter, and which addresses an endpoint may not resolve to.
#include "webhooks/policy.h"

#include <gtest/gtest.h>

#include "util/time.h"

namespace cartwatch::webhooks {
namespace {

constexpr EpochMs kNow = 1795454642000;
using Kind = Verdict::Kind;

Attempt Status(int status, std::optional<std::string> retry_after = std::nullopt) {
  return Attempt{.status = status, .error = {}, .retry_after = std::move(retry_after)};
}

TEST(PolicyTest, TwoHundredsAreDeliveredAndA410DisablesTheEndpoint) {
  const Schedule s;
  EXPECT_EQ(Judge(s, 1, Status(200), kNow, 0.5).kind, Kind::kDelivered);
  EXPECT_EQ(Judge(s, 3, Status(204), kNow, 0.5).kind, Kind::kDelivered);
  const Verdict gone = Judge(s, 1, Status(410), kNow, 0.5);
  EXPECT_EQ(gone.kind, Kind::kEndpointGone);
  EXPECT_NE(gone.reason.find("410"), std::string::npos);
}

TEST(PolicyTest, FailuresFollowTheScheduleThenDie) {
  const Schedule s;
  const EpochMs expected[] = {5'000, 300'000, 1'800'000, 7'200'000, 18'000'000, 36'000'000, 36'000'000};
  for (int attempt = 1; attempt <= 7; ++attempt) {
    const Verdict v = Judge(s, attempt, Status(500), kNow, 0.5);  // 0.5: no jitter
    ASSERT_EQ(v.kind, Kind::kRetry) << attempt;
    EXPECT_EQ(v.next_attempt_at, kNow + expected[attempt - 1]) << attempt;
  }
  const Verdict dead = Judge(s, 8, Status(500), kNow, 0.5);
  EXPECT_EQ(dead.kind, Kind::kDead);
  EXPECT_EQ(dead.reason, "HTTP 500");
}

TEST(PolicyTest, JitterStaysWithinItsFraction) {
  const Schedule s;
  EXPECT_EQ(Judge(s, 2, Status(503), kNow, 0.0).next_attempt_at, kNow + 270'000);
  EXPECT_EQ(Judge(s, 2, Status(503), kNow, 0.999999).next_attempt_at, kNow + 330'000);
}

TEST(PolicyTest, RedirectsAreFailuresNotFollowed) {
  const Verdict v = Judge(Schedule{}, 1, Status(301), kNow, 0.5);
  EXPECT_EQ(v.kind, Kind::kRetry);
  EXPECT_NE(v.reason.find("redirects are not followed"), std::string::npos);
}

TEST(PolicyTest, NoResponseSaysWhy) {
  const Verdict v = Judge(Schedule{}, 1, Attempt{.status = 0, .error = "connect: connection refused", .retry_after = {}}, kNow, 0.5);
  EXPECT_EQ(v.kind, Kind::kRetry);
  EXPECT_EQ(v.reason, "connect: connection refused");
}

TEST(PolicyTest, RetryAfterIsHonouredFor429And5xxOnly) {
  const Schedule s;
  EXPECT_EQ(Judge(s, 1, Status(429, "120"), kNow, 0.5).next_attempt_at, kNow + 120'000);
  EXPECT_EQ(Judge(s, 1, Status(503, "Tue, 24 Nov 2026 16:04:12 GMT"), kNow, 0.5).next_attempt_at,
            *util::ParseIso8601("2026-11-24T16:04:12Z"));
  // Not for a 400: the schedule.
  EXPECT_EQ(Judge(s, 1, Status(400, "120"), kNow, 0.5).next_attempt_at, kNow + 5'000);
  // Garbage: the schedule; a year: capped at a day.
  EXPECT_EQ(Judge(s, 1, Status(503, "soon"), kNow, 0.5).next_attempt_at, kNow + 5'000);
  EXPECT_EQ(Judge(s, 1, Status(503, "31536000"), kNow, 0.5).next_attempt_at, kNow + 86'400'000);
}

TEST(PolicyTest, RetryAfterForms) {
  EXPECT_EQ(RetryAfterDelay("0", kNow), 0);
  EXPECT_EQ(RetryAfterDelay(" 5 ", kNow), 5000);
  EXPECT_EQ(RetryAfterDelay("Sun, 06 Nov 1994 08:49:37 GMT", kNow), 0);  // past: now
  EXPECT_FALSE(RetryAfterDelay("-1", kNow));
  EXPECT_FALSE(RetryAfterDelay("Sunday, 06-Nov-94 08:49:37 GMT", kNow));
  EXPECT_FALSE(RetryAfterDelay("", kNow));
}

TEST(PolicyTest, PrivateAndSpecialAddressesAreRefused) {
  auto refused = [](const char* a) {
    return RefusedAddress(boost::asio::ip::make_address(a)).value_or("");
  };
  EXPECT_NE(refused("127.0.0.1").find("loopback"), std::string::npos);
  EXPECT_NE(refused("10.1.2.3").find("private"), std::string::npos);
  EXPECT_NE(refused("172.20.0.1").find("private"), std::string::npos);
  EXPECT_NE(refused("192.168.1.1").find("private"), std::string::npos);
  EXPECT_NE(refused("169.254.169.254").find("link-local"), std::string::npos);  // cloud metadata
  EXPECT_NE(refused("100.100.1.1").find("CGNAT"), std::string::npos);
  EXPECT_NE(refused("224.0.0.1").find("multicast"), std::string::npos);
  EXPECT_NE(refused("0.0.0.0").find("unspecified"), std::string::npos);
  EXPECT_NE(refused("255.255.255.255").find("reserved"), std::string::npos);
  EXPECT_NE(refused("::1").find("loopback"), std::string::npos);
  EXPECT_NE(refused("::").find("unspecified"), std::string::npos);
  EXPECT_NE(refused("::ffff:127.0.0.1").find("IPv4-mapped"), std::string::npos);
  EXPECT_NE(refused("::ffff:8.8.8.8").find("IPv4-mapped"), std::string::npos);
  EXPECT_NE(refused("fd00::1").find("unique local"), std::string::npos);
  EXPECT_NE(refused("fe80::1").find("link-local"), std::string::npos);
  EXPECT_NE(refused("ff02::1").find("multicast"), std::string::npos);
  EXPECT_NE(refused("64:ff9b::7f00:1").find("NAT64"), std::string::npos);
  // Public ones pass.
  EXPECT_EQ(refused("8.8.8.8"), "");
  EXPECT_EQ(refused("172.32.0.1"), "");
  EXPECT_EQ(refused("100.128.0.1"), "");
  EXPECT_EQ(refused("2606:4700:4700::1111"), "");
}

}  // namespace
}  // namespace cartwatch::webhooks
