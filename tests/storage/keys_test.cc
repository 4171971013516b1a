#include "storage/keys.h"

#include <gtest/gtest.h>

namespace cartwatch::storage {
namespace {

TEST(KeysTest, CursorRoundTripsAndRejectsGarbage) {
  for (std::uint64_t id : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0x00060f5a1b2c3d4e}, UINT64_MAX}) {
    std::string cursor = EncodeCursor(id);
    EXPECT_EQ(cursor.size(), 16u);
    EXPECT_EQ(DecodeCursor(cursor), id);
  }
  EXPECT_EQ(DecodeCursor("00000000000000FF"), 255u);
  EXPECT_FALSE(DecodeCursor(""));
  EXPECT_FALSE(DecodeCursor("0000000000000000a"));
  EXPECT_FALSE(DecodeCursor("000000000000000g"));
}

TEST(KeysTest, EventKeysSortByArrivalWithinASiteAndSitesDoNotInterleave) {
  std::string a = SitePrefix("a"), ab = SitePrefix("ab"), b = SitePrefix("b");
  EXPECT_LT(EventKey(a, 1), EventKey(a, 2));
  EXPECT_LT(EventKey(a, 255), EventKey(a, 256));  // big-endian, not lexicographic text
  // Every key of site "a" sorts before every key of "b", whatever the ids.
  EXPECT_LT(EventKey(a, UINT64_MAX), EventKey(b, 0));
  // "a" is not a prefix of "ab": the length byte comes first.
  EXPECT_NE(EventKey(ab, 0).substr(0, a.size()), a);
}

TEST(KeysTest, DedupKeyLeadsWithAStableHash) {
  std::string prefix = SitePrefix("shop");
  std::string key = DedupKey(prefix, "m-1");
  ASSERT_EQ(key.size(), 8 + prefix.size() + 3);
  EXPECT_EQ(GetBigEndian64(key.data()), StableHash64(prefix, "m-1"));
  EXPECT_EQ(key.substr(8), prefix + "m-1");
  // FNV-1a of the empty input is its offset basis: the hash is the specified one, so keys
  // written by one build are found by the next.
  EXPECT_EQ(StableHash64("", ""), 14695981039346656037ull);
  EXPECT_NE(DedupKey(SitePrefix("other"), "m-1"), key);
}

}  // namespace
}  // namespace cartwatch::storage
