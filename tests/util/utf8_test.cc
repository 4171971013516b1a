#include "util/utf8.h"

#include <gtest/gtest.h>

namespace cartwatch::util {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, AcceptsWellFormed) {
  for (std::string s : {std::string(""), std::string("plain ascii"), std::string("\0x", 2),
                        std::string("caf\xC3\xA9"), std::string("\xE2\x82\xAC"),
                        std::string("\xF0\x9F\x98\x80"), std::string("\xF4\x8F\xBF\xBF"),
                        std::string("\xED\x9F\xBF")}) {
    EXPECT_TRUE(IsValidUtf8(s)) << s;
    EXPECT_EQ(ToValidUtf8(s), s);
  }
}

TEST(Utf8Test, RefusesIllFormed) {
  for (std::string s : {"\xFF", "\x80", "\xC0\xAF", "\xC3", "\xE0\x80\xAF", "\xED\xA0\x80",
                        "\xF4\x90\x80\x80", "\xF0\x9F\x98", "a\xF5\x80\x80\x80"}) {
    EXPECT_FALSE(IsValidUtf8(s)) << s;
  }
}

TEST(Utf8Test, ReplacesMaximalSubparts) {
  // The examples of Unicode 15, chapter 3, table 3-8.
  EXPECT_EQ(ToValidUtf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
  EXPECT_EQ(ToValidUtf8("/v1/customers/\xFF"), "/v1/customers/" + kFffd);
  EXPECT_EQ(ToValidUtf8("\xF0\x9F\x98"), kFffd);  // a cut emoji is one replacement
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // a surrogate: each byte
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8("\xC0\x80\xE0\x9F\xBF\xF8\x88\x80\x80\x80")));
}

}  // namespace
}  // namespace cartwatch::util
