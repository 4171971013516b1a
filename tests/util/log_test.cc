// The service log: logfmt values, the line format, levels.
#include "util/log.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "util/logfmt.h"

namespace cartwatch {
namespace {

using util::LogfmtValue;

TEST(LogfmtTest, ValuesAreBareOrQuotedAndEscaped) {
  EXPECT_EQ(LogfmtValue("missing_event"), "missing_event");
  EXPECT_EQ(LogfmtValue(""), "\"\"");
  EXPECT_EQ(LogfmtValue("a track message"), "\"a track message\"");
  EXPECT_EQ(LogfmtValue(R"(say "hi" \ now)"), R"("say \"hi\" \\ now")");
  EXPECT_EQ(LogfmtValue("k=v"), "\"k=v\"");
  EXPECT_EQ(LogfmtValue("line\nnext\x01"), "\"line\\nnext\\u0001\"");
  EXPECT_EQ(LogfmtValue("bad \xff byte"), "\"bad \xef\xbf\xbd byte\"");  // U+FFFD
}

// Runs `f` with the log captured and returns what it wrote.
template <typename F>
std::string Captured(F&& f) {
  testing::internal::CaptureStderr();
  f();
  return testing::internal::GetCapturedStderr();
}

TEST(LogTest, ALineIsTimestampLevelMessageAndFieldsInLogfmt) {
  const std::string out = Captured([] {
    log::Warn("endpoint disabled")
        .Add("endpoint", "crm")
        .Add("status", 410)
        .Add("url", "https://x/y z")
        .Add("ratio", 0.5)
        .Add("big", std::uint64_t{18446744073709551615u})
        .Add("negative", std::int64_t{-3})
        .Add("ok", false);
  });
  EXPECT_TRUE(std::regex_match(
      out, std::regex("ts=20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}Z "
                      "level=warn msg=\"endpoint disabled\" endpoint=crm status=410 "
                      "url=\"https://x/y z\" ratio=0.5 big=18446744073709551615 negative=-3 "
                      "ok=false\n")))
      << out;
}

TEST(LogTest, LinesBelowTheLevelAreNotWritten) {
  log::SetLevel(log::Level::kWarn);
  const std::string out = Captured([] {
    log::Debug("d");
    log::Info("i").Add("k", "v");
    log::Warn("w");
    log::Error("e").AddRaw("a=1 b=2");
  });
  log::SetLevel(log::Level::kInfo);
  EXPECT_FALSE(log::Enabled(log::Level::kDebug));
  EXPECT_TRUE(log::Enabled(log::Level::kInfo));
  const std::string lines = std::regex_replace(out, std::regex("ts=\\S+ "), "");
  EXPECT_EQ(lines, "level=warn msg=w\nlevel=error msg=e a=1 b=2\n");
}

TEST(LogTest, LevelsAreNamedAsInTheConfig) {
  for (auto level : {log::Level::kDebug, log::Level::kInfo, log::Level::kWarn, log::Level::kError}) {
    EXPECT_EQ(log::ParseLevel(log::LevelName(level)), level);
  }
  EXPECT_FALSE(log::ParseLevel("warning"));
  EXPECT_FALSE(log::ParseLevel("INFO"));
  EXPECT_FALSE(log::ParseLevel(""));
}

TEST(LogTest, AMessageWithControlCharactersStaysOneLine) {
  const std::string out = Captured([] { log::Error("a\nb").Add("error", "x\ny"); });
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find(R"(msg="a\nb" error="x\ny")"), std::string::npos) << out;
}

}  // namespace
}  // namespace cartwatch
