// A delivery's record: its transitions through attempts (with the policy's verdicts), a
// 410, a manual retry, the endpoint enabled again; the outbox status they add up to; and
// its stored form.
#include "webhooks/delivery.h"

#include <gtest/gtest.h>

namespace cartwatch::webhooks {
namespace {

constexpr EpochMs kNow = 1795454642000;

Attempt Status(int status) { return Attempt{.status = status, .error = {}, .retry_after = {}}; }

// One attempt judged by the default schedule (no jitter).
bool Try(Delivery& d, const Attempt& a, EpochMs at) {
  return RecordAttempt(d, a, Judge(Schedule{}, d.attempts + 1, a, at, 0.5), at, 12);
}

TEST(DeliveryTest, FailuresThenSuccess) {
  Delivery d;
  EXPECT_FALSE(Try(d, Status(503), kNow));
  EXPECT_EQ(d.state, State::kPending);
  EXPECT_EQ(d.attempts, 1);
  EXPECT_EQ(d.next_attempt_at, kNow + 5'000);
  EXPECT_EQ(d.last_error, "HTTP 503");
  EXPECT_EQ(Aggregate({d}), "failed");
  Try(d, Attempt{.status = 0, .error = "read: timed out", .retry_after = {}}, kNow + 5'000);
  EXPECT_EQ(d.history.back().error, "read: timed out");
  Try(d, Status(200), kNow + 400'000);
  EXPECT_EQ(d.state, State::kDelivered);
  EXPECT_TRUE(d.last_error.empty());
  EXPECT_EQ(d.attempts, 3);
  ASSERT_EQ(d.history.size(), 3u);
  EXPECT_EQ(d.history[0].status, 503);
  EXPECT_EQ(Aggregate({d}), "delivered");
  EXPECT_FALSE(RetryNow(d, kNow));  // delivered: nothing to retry
}

TEST(DeliveryTest, EightFailuresAreDeadAndAManualRetryGivesOneMore) {
  Delivery d;
  for (int i = 0; i < 8; ++i) Try(d, Status(500), kNow + i);
  EXPECT_EQ(d.state, State::kDead);
  EXPECT_EQ(d.attempts, 8);
  EXPECT_EQ(d.history.size(), 8u);
  EXPECT_EQ(Aggregate({d}), "dead");
  ASSERT_TRUE(RetryNow(d, kNow + 100));
  EXPECT_EQ(d.state, State::kPending);
  EXPECT_EQ(d.next_attempt_at, kNow + 100);
  Try(d, Status(500), kNow + 200);
  EXPECT_EQ(d.state, State::kDead);  // the schedule stays spent
  for (int i = 0; i < 5; ++i) {
    RetryNow(d, kNow);
    Try(d, Status(500), kNow);
  }
  EXPECT_EQ(d.history.size(), kMaxHistory);  // the newest ten
}

TEST(DeliveryTest, A410DisablesTheEndpointAndItsDeliveriesWait) {
  Delivery d;
  EXPECT_TRUE(Try(d, Status(410), kNow));
  EXPECT_EQ(d.state, State::kWaiting);
  EXPECT_EQ(Aggregate({d}), "failed");
  EXPECT_FALSE(RetryNow(d, kNow));  // waits for the endpoint, not for a retry
  EndpointEnabled(d, kNow + 1000);
  EXPECT_EQ(d.state, State::kPending);
  EXPECT_EQ(d.next_attempt_at, kNow + 1000);
  Delivery fresh;
  EXPECT_FALSE(RetryNow(fresh, kNow));  // never attempted
}

TEST(DeliveryTest, TheStatusOfAnActionSentToSeveralEndpoints) {
  Delivery delivered, failed, dead, fresh;
  Try(delivered, Status(204), kNow);
  Try(failed, Status(500), kNow);
  for (int i = 0; i < 8; ++i) Try(dead, Status(500), kNow);
  EXPECT_EQ(Aggregate({delivered, delivered}), "delivered");
  EXPECT_EQ(Aggregate({delivered, fresh}), "pending");
  EXPECT_EQ(Aggregate({delivered, failed}), "failed");
  EXPECT_EQ(Aggregate({failed, dead}), "dead");
  EXPECT_EQ(Aggregate({}), "pending");
}

TEST(DeliveryTest, StoredFormRoundTripsAndRefusesGarbage) {
  Delivery d;
  Try(d, Status(503), kNow);
  Try(d, Attempt{.status = 0, .error = "connect: refused address: loopback (127.0.0.0/8)", .retry_after = {}}, kNow + 5000);
  const std::string bytes = EncodeDelivery(d);
  auto back = DecodeDelivery(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, d);
  EXPECT_FALSE(DecodeDelivery(""));
  EXPECT_FALSE(DecodeDelivery(bytes + "x"));
  EXPECT_FALSE(DecodeDelivery(bytes.substr(0, bytes.size() - 1)));
  std::string bad_state = bytes;
  bad_state[1] = 9;
  EXPECT_FALSE(DecodeDelivery(bad_state));
  // Every truncation is refused, never a crash.
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(DecodeDelivery(bytes.substr(0, n))) << n;
}

}  // namespace
}  // namespace cartwatch::webhooks
