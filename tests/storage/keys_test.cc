#include "storage/keys.h"

#include <gtest/gtest.h>

#include <vector>

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

TEST(KeysTest, MurmurHash3MatchesTheReferenceVectors) {
  // Published MurmurHash3_x64_128 outputs (seed 0): the hash is the specified one, so the
  // dedup log written by one build is understood by the next, on any platform.
  EXPECT_EQ(MurmurHash3x64_128(""), (IdHash{0, 0}));
  EXPECT_EQ(MurmurHash3x64_128("hello"), (IdHash{0xcbd8a7b341bd9b02ull, 0x5b1e906a48ae1d19ull}));
  EXPECT_EQ(MurmurHash3x64_128("The quick brown fox jumps over the lazy dog"),
            (IdHash{0xe34bbc7bbc071b6cull, 0x7a433ca9c49a9347ull}));
}

TEST(KeysTest, MessageIdHashSeparatesSitesAndLongIds) {
  const std::string shop = SitePrefix("shop");
  EXPECT_EQ(MessageIdHash(shop, "m-1"), MurmurHash3x64_128(shop + "m-1"));
  EXPECT_NE(MessageIdHash(shop, "m-1"), MessageIdHash(SitePrefix("other"), "m-1"));
  // The length byte keeps ("ab", "c") and ("a", "bc") apart.
  EXPECT_NE(MessageIdHash(SitePrefix("ab"), "c"), MessageIdHash(SitePrefix("a"), "bc"));
  // Past the stack buffer, the same function of the same bytes.
  const std::string long_id(1000, 'x');
  EXPECT_EQ(MessageIdHash(shop, long_id), MurmurHash3x64_128(shop + long_id));
}

TEST(KeysTest, DedupLogRecordsRoundTrip) {
  EXPECT_LT(DedupLogKey(255), DedupLogKey(256));  // commit order is key order
  std::string record;
  AppendDedupLogTime(record, 1'700'000'000'123);
  const IdHash a{1, 2}, b{0xfffffffffffffffeull, 7};
  AppendDedupLogHash(record, a);
  AppendDedupLogHash(record, b);
  std::vector<IdHash> seen;
  auto time = ForEachDedupLogHash(record, [&](const IdHash& h) { seen.push_back(h); });
  EXPECT_EQ(time, 1'700'000'000'123);
  EXPECT_EQ(seen, (std::vector<IdHash>{a, b}));
  // A torn or foreign value is refused as a whole.
  EXPECT_FALSE(ForEachDedupLogHash(record.substr(0, 20), [&](const IdHash&) { ADD_FAILURE(); }));
  EXPECT_FALSE(ForEachDedupLogHash("", [&](const IdHash&) { ADD_FAILURE(); }));
}

}  // namespace
}  // namespace cartwatch::storage
