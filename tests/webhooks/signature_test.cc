// Standard Webhooks signatures: the specification's example, secret rotation, and secrets
// that are not "whsec_" + base64. (tests/e2e verifies real deliveries with the
// `standardwebhooks` npm library.)
#include "webhooks/signature.h"

#include <gtest/gtest.h>

namespace cartwatch::webhooks {
namespace {

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::int64_t kTimestamp = 1614265330;
constexpr const char* kBody = R"({"test": 2432232314})";

TEST(SignatureTest, TheSpecificationsExample) {
  auto key = SecretKey(kSecret);
  ASSERT_TRUE(key);
  EXPECT_EQ(Sign(*key, kId, kTimestamp, kBody), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(SignatureTest, EveryChangeChangesTheSignature) {
  const std::string key = *SecretKey(kSecret);
  const std::string good = Sign(key, kId, kTimestamp, kBody);
  EXPECT_NE(Sign(key, kId, kTimestamp + 1, kBody), good);
  EXPECT_NE(Sign(key, "msg_other", kTimestamp, kBody), good);
  EXPECT_NE(Sign(key, kId, kTimestamp, R"({"test": 2432232315})"), good);
}

TEST(SignatureTest, DuringARotationBothSignaturesAreSent) {
  const std::string current = *SecretKey(kSecret);
  const std::string previous = *SecretKey("whsec_dGhlIHByZXZpb3VzIHNlY3JldA==");
  const std::string header = SignatureHeader({current, previous}, kId, kTimestamp, kBody);
  EXPECT_EQ(header, Sign(current, kId, kTimestamp, kBody) + " " +
                        Sign(previous, kId, kTimestamp, kBody));
  EXPECT_EQ(SignatureHeader({current}, kId, kTimestamp, kBody), Sign(current, kId, kTimestamp, kBody));
}

TEST(SignatureTest, SecretsThatAreNotWhsecBase64) {
  EXPECT_FALSE(SecretKey("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
  EXPECT_FALSE(SecretKey("whsec_"));
  EXPECT_FALSE(SecretKey("whsec_not base64!"));
  EXPECT_EQ(*SecretKey("whsec_YWJj"), "abc");
}

}  // namespace
}  // namespace cartwatch::webhooks
