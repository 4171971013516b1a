// The sampled refusal log: logfmt values, and a rate limit that reports what it dropped.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "collector/collector_metrics.h"

namespace cartwatch::collector {
namespace {

TEST(LogfmtTest, ValuesAreBareOrQuotedAndEscaped) {
  EXPECT_EQ(LogfmtValue("missing_event"), "missing_event");
  EXPECT_EQ(LogfmtValue(""), "\"\"");
  EXPECT_EQ(LogfmtValue("a track message"), "\"a track message\"");
  EXPECT_EQ(LogfmtValue(R"(say "hi" \ now)"), R"("say \"hi\" \\ now")");
  EXPECT_EQ(LogfmtValue("k=v"), "\"k=v\"");
  EXPECT_EQ(LogfmtValue("line\nnext\x01"), "\"line\\nnext\\u0001\"");
  EXPECT_EQ(LogfmtValue("bad \xff byte"), "\"bad \xef\xbf\xbd byte\"");  // U+FFFD
}

TEST(SampledLogTest, LinesBeyondTheRateAreCountedAndReported) {
  using std::chrono::milliseconds;
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  SampledLog log(/*per_second=*/1, /*burst=*/2);
  int made = 0;
  auto line = [&made](std::string text) {
    return [&made, text] {
      ++made;
      return text;
    };
  };
  testing::internal::CaptureStderr();
  log.Write(line("a=1"), t0);
  log.Write(line("a=2"), t0);
  log.Write(line("a=3"), t0 + milliseconds(500));  // over the burst: counted, not formatted
  log.Write(line("a=4"), t0 + milliseconds(900));
  log.Write(line("a=5"), t0 + milliseconds(1100));  // a token again: it says what it dropped
  log.Write(line("a=6"), t0 + milliseconds(1200));
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "cartwatch: a=1\ncartwatch: a=2\ncartwatch: a=5 suppressed=2\n");
  EXPECT_EQ(made, 3);
}

}  // namespace
}  // namespace cartwatch::collector
