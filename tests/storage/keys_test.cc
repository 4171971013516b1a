#include "storage/keys.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
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

// Every event of a value, as "id=json".
std::vector<std::string> EventsOf(std::uint64_t key_id, std::string_view value, bool* decoded) {
  std::vector<std::string> seen;
  *decoded = ForEachEventOfValue(key_id, value, [&](std::uint64_t id, std::string_view json) {
    seen.push_back(std::to_string(id) + "=" + std::string(json));
    return true;
  });
  return seen;
}

TEST(KeysTest, RecordBatchesRoundTripAndAPlainValueIsOneEvent) {
  std::string value;
  AppendBatchedEvent(value, 0, 1'000, R"({"a":1})");
  AppendBatchedEvent(value, 1'000, 1'001, "");
  AppendBatchedEvent(value, 1'001, 1'000'000'000, std::string(300, 'x'));  // multi-byte varints
  EXPECT_EQ(value.front(), kEventBatchV1);
  bool decoded = false;
  EXPECT_EQ(EventsOf(1'000'000'000, value, &decoded),
            (std::vector<std::string>{"1000={\"a\":1}", "1001=", "1000000000=" + std::string(300, 'x')}));
  EXPECT_TRUE(decoded);
  // The layout written before record batches: the value is the message, the key its id.
  EXPECT_EQ(EventsOf(7, R"({"b":2})", &decoded), std::vector<std::string>{"7={\"b\":2}"});
  EXPECT_TRUE(decoded);
  EXPECT_TRUE(StandsAlone("{}"));
  EXPECT_FALSE(StandsAlone(""));
  EXPECT_FALSE(StandsAlone(value));
  // f returning false stops the walk.
  std::size_t calls = 0;
  EXPECT_TRUE(ForEachEventOfValue(1'000'000'000, value, [&](std::uint64_t, std::string_view) {
    ++calls;
    return false;
  }));
  EXPECT_EQ(calls, 1u);
}

TEST(KeysTest, ARecordBatchThatDoesNotDecodeIsReportedAfterItsGoodEvents) {
  std::string value;
  AppendBatchedEvent(value, 0, 10, "one");
  AppendBatchedEvent(value, 10, 12, "two");
  bool decoded = true;
  // An event past the key's id: the key is not the batch's last event.
  EXPECT_EQ(EventsOf(11, value, &decoded), std::vector<std::string>{"10=one"});
  EXPECT_FALSE(decoded);
  EXPECT_TRUE(EventsOf(9, value, &decoded).empty());
  EXPECT_FALSE(decoded);
  // Cut anywhere inside the last event, or inside the header.
  for (std::size_t cut : {value.size() - 1, value.size() - 3, value.size() - 4, std::size_t{5}}) {
    EventsOf(12, std::string_view(value).substr(0, cut), &decoded);
    EXPECT_FALSE(decoded) << cut;
  }
  // An id that does not increase (a delta of 0).
  std::string repeated = value.substr(0, 9 + 1 + 3);
  repeated += std::string("\x00\x03two", 5);
  EventsOf(12, repeated, &decoded);
  EXPECT_FALSE(decoded);
  // A batch of no event (nothing writes one).
  EventsOf(12, value.substr(0, 9), &decoded);
  EXPECT_FALSE(decoded);
  // A varint that never ends.
  EventsOf(12, value.substr(0, 9) + std::string(11, '\xff'), &decoded);
  EXPECT_FALSE(decoded);
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
