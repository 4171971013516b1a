#include "util/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace cartwatch::util {
namespace {

TEST(Base64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
}

TEST(Base64Test, EncodesWithStandardAlphabet) {
  EXPECT_EQ(Base64Encode(std::string("\xfb\xff\xbf", 3)), "+/+/");
  EXPECT_EQ(Base64Encode(std::string("\0\0\0", 3)), "AAAA");
}

TEST(Base64Test, DecodesRfc4648Vectors) {
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_EQ(Base64Decode("Zg=="), "f");
  EXPECT_EQ(Base64Decode("Zm8="), "fo");
  EXPECT_EQ(Base64Decode("Zm9v"), "foo");
  EXPECT_EQ(Base64Decode("Zm9vYg=="), "foob");
  EXPECT_EQ(Base64Decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(Base64Decode("Zm9vYmFy"), "foobar");
}

TEST(Base64Test, DecodesWithoutPadding) {
  EXPECT_EQ(Base64Decode("Zg"), "f");
  EXPECT_EQ(Base64Decode("Zm8"), "fo");
  EXPECT_EQ(Base64Decode("Zm9vYg"), "foob");
}

TEST(Base64Test, DecodesBothAlphabets) {
  const std::string bytes("\xfb\xff\xbf\x00\x10", 5);
  EXPECT_EQ(Base64Decode("+/+/ABA="), bytes);
  EXPECT_EQ(Base64Decode("-_-_ABA="), bytes);
  EXPECT_EQ(Base64Decode("-_-_ABA"), bytes);
}

TEST(Base64Test, RoundTripsEveryByte) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  for (std::size_t len = 0; len <= bytes.size(); len += 37) {
    const std::string part = bytes.substr(0, len);
    EXPECT_EQ(Base64Decode(Base64Encode(part)), part);
  }
}

TEST(Base64Test, DecodesASegmentPixelPayload) {
  const std::string json = R"({"type":"track","event":"Email Opened","userId":"u1"})";
  EXPECT_EQ(Base64Decode(Base64Encode(json)), json);
}

TEST(Base64Test, RejectsInvalidCharacters) {
  for (const char* text :
       {"Zm9v!", "Zm 9v", "Zm9v\n", "Zm9*", "Zm.v", "Z=9v", "=Zm9", "Zm9v===="}) {
    EXPECT_FALSE(Base64Decode(text)) << text;
  }
  EXPECT_FALSE(Base64Decode(std::string("Zm\0v", 4)));
}

TEST(Base64Test, RejectsImpossibleLengthsAndPadding) {
  for (const char* text : {"Z", "Zm9vY", "Z===", "Zg=", "Zm8==", "=", "==", "Zm9vY==="}) {
    EXPECT_FALSE(Base64Decode(text)) << text;
  }
}

}  // namespace
}  // namespace cartwatch::util
