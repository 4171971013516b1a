#include "collector/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace cartwatch::collector {
namespace {

// Compresses `data` as one gzip member, as `gzip` or a browser's CompressionStream would.
std::string Gzip(const std::string& data, int level = Z_DEFAULT_COMPRESSION) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

constexpr std::size_t kPadding = 64;

TEST(GunzipTest, DecodesOneMember) {
  const std::string json = R"({"batch":[{"type":"track","event":"Product Added"}]})";
  std::string out = "stale contents";
  ASSERT_EQ(Gunzip(Gzip(json), 1 << 20, kPadding, out), InflateResult::kOk);
  EXPECT_EQ(out, json);
  EXPECT_GE(out.capacity(), out.size() + kPadding);
}

TEST(GunzipTest, DecodesLargeBodyWithPadding) {
  std::string data;
  for (int i = 0; data.size() < 400 * 1024; ++i) data += "{\"i\":" + std::to_string(i) + "},";
  std::string out;
  ASSERT_EQ(Gunzip(Gzip(data), 500 * 1024, kPadding, out), InflateResult::kOk);
  EXPECT_EQ(out, data);
  EXPECT_GE(out.capacity(), out.size() + kPadding);
}

TEST(GunzipTest, DecodesEmptyPayload) {
  std::string out = "x";
  ASSERT_EQ(Gunzip(Gzip(""), 100, kPadding, out), InflateResult::kOk);
  EXPECT_EQ(out, "");
  EXPECT_GE(out.capacity(), kPadding);
}

TEST(GunzipTest, AcceptsOutputExactlyAtTheCap) {
  const std::string data(1000, 'a');
  std::string out;
  EXPECT_EQ(Gunzip(Gzip(data), 1000, kPadding, out), InflateResult::kOk);
  EXPECT_EQ(out, data);
  EXPECT_EQ(Gunzip(Gzip(data), 999, kPadding, out), InflateResult::kTooLarge);
}

TEST(GunzipTest, StopsAZipBomb) {
  const std::string zeros(10 * 1024 * 1024, '\0');
  const std::string bomb = Gzip(zeros, Z_BEST_COMPRESSION);
  ASSERT_LT(bomb.size(), 20 * 1024u);  // 10 MB of zeros squeeze into ~10 KB
  std::string out;
  EXPECT_EQ(Gunzip(bomb, 500 * 1024, kPadding, out), InflateResult::kTooLarge);
  // It gave up near the cap instead of inflating the whole 10 MB.
  EXPECT_LE(out.capacity(), 2 * 500 * 1024u + kPadding);
}

TEST(GunzipTest, DecodesConcatenatedMembers) {
  std::string out;
  ASSERT_EQ(Gunzip(Gzip("{\"a\":") + Gzip("1}"), 100, kPadding, out), InflateResult::kOk);
  EXPECT_EQ(out, "{\"a\":1}");
}

TEST(GunzipTest, CapCountsAllMembers) {
  const std::string member = Gzip(std::string(600, 'x'));
  std::string out;
  EXPECT_EQ(Gunzip(member + member, 1000, kPadding, out), InflateResult::kTooLarge);
  EXPECT_EQ(Gunzip(member + member, 1200, kPadding, out), InflateResult::kOk);
  EXPECT_EQ(out, std::string(1200, 'x'));
}

TEST(GunzipTest, RejectsNonGzip) {
  std::string out;
  EXPECT_EQ(Gunzip("", 100, kPadding, out), InflateResult::kCorrupt);
  EXPECT_EQ(Gunzip("{\"batch\":[]}", 100, kPadding, out), InflateResult::kCorrupt);
  // A zlib (RFC 1950) stream is not gzip.
  std::string zlib(compressBound(5), '\0');
  uLongf zlib_size = zlib.size();
  ASSERT_EQ(compress(reinterpret_cast<Bytef*>(zlib.data()), &zlib_size,
                     reinterpret_cast<const Bytef*>("hello"), 5),
            Z_OK);
  zlib.resize(zlib_size);
  EXPECT_EQ(Gunzip(zlib, 100, kPadding, out), InflateResult::kCorrupt);
}

TEST(GunzipTest, RejectsTruncatedStream) {
  const std::string gz = Gzip(std::string(5000, 'y') + "tail");
  std::string out;
  for (std::size_t cut :
       {std::size_t{1}, std::size_t{10}, gz.size() / 2, gz.size() - 8, gz.size() - 1}) {
    EXPECT_EQ(Gunzip(gz.substr(0, cut), 1 << 20, kPadding, out), InflateResult::kCorrupt) << cut;
  }
}

TEST(GunzipTest, RejectsBadChecksum) {
  std::string gz = Gzip("{\"type\":\"page\"}");
  gz[gz.size() - 8] ^= 0x01;  // CRC-32 of the trailer
  std::string out;
  EXPECT_EQ(Gunzip(gz, 100, kPadding, out), InflateResult::kCorrupt);

  gz = Gzip("{\"type\":\"page\"}");
  gz[gz.size() - 1] ^= 0x01;  // ISIZE
  EXPECT_EQ(Gunzip(gz, 100, kPadding, out), InflateResult::kCorrupt);
}

TEST(GunzipTest, RejectsCorruptData) {
  std::string gz = Gzip(std::string(2000, 'z') + "0123456789");
  gz[12] ^= 0x55;
  std::string out;
  EXPECT_EQ(Gunzip(gz, 1 << 20, kPadding, out), InflateResult::kCorrupt);
}

TEST(GunzipTest, RejectsTrailingGarbage) {
  std::string out;
  EXPECT_EQ(Gunzip(Gzip("{}") + "junk", 100, kPadding, out), InflateResult::kCorrupt);
}

}  // namespace
}  // namespace cartwatch::collector
