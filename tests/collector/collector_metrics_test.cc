// The sampled refusal log: a rate limit that reports what it dropped.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include "collector/collector_metrics.h"

namespace cartwatch::collector {
namespace {

TEST(SampledLogTest, LinesBeyondTheRateAreCountedAndReported) {
  using std::chrono::milliseconds;
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  SampledLog sampled(/*per_second=*/1, /*burst=*/2);
  int made = 0;
  auto fields = [&made](int a) {
    return [&made, a](log::Line& line) {
      ++made;
      line.Add("a", a);
    };
  };
  testing::internal::CaptureStderr();
  sampled.Write(log::Level::kWarn, "refused", fields(1), t0);
  sampled.Write(log::Level::kWarn, "refused", fields(2), t0);
  sampled.Write(log::Level::kWarn, "refused", fields(3), t0 + milliseconds(500));  // over the burst
  sampled.Write(log::Level::kWarn, "refused", fields(4), t0 + milliseconds(900));
  sampled.Write(log::Level::kWarn, "refused", fields(5), t0 + milliseconds(1100));  // says what it dropped
  sampled.Write(log::Level::kWarn, "refused", fields(6), t0 + milliseconds(1200));
  const std::string out = testing::internal::GetCapturedStderr();
  // The timestamps aside.
  const std::string lines = std::regex_replace(out, std::regex("ts=\\S+ "), "");
  EXPECT_EQ(lines,
            "level=warn msg=refused a=1\n"
            "level=warn msg=refused a=2\n"
            "level=warn msg=refused a=5 suppressed=2\n");
  EXPECT_EQ(made, 3);
}

TEST(SampledLogTest, ALevelThatIsNotLoggedTakesNoToken) {
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  SampledLog sampled(/*per_second=*/1, /*burst=*/1);
  log::SetLevel(log::Level::kError);
  int made = 0;
  testing::internal::CaptureStderr();
  sampled.Write(log::Level::kWarn, "refused", [&](log::Line&) { ++made; }, t0);
  log::SetLevel(log::Level::kInfo);
  sampled.Write(log::Level::kWarn, "refused", [&](log::Line&) { ++made; }, t0);
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(made, 1);
  EXPECT_NE(out.find("level=warn msg=refused\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("suppressed"), std::string::npos) << out;
}

}  // namespace
}  // namespace cartwatch::collector
