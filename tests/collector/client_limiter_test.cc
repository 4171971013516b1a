#include "collector/client_limiter.h"
#include "collector/options.h"

#include <gtest/gtest.h>

#include <string>

namespace cartwatch::collector {
namespace {

namespace ip = boost::asio::ip;
using namespace std::chrono_literals;

ip::address A(const char* text) { return ip::make_address(text); }

std::vector<AddressBlock> Blocks(std::initializer_list<const char*> texts) {
  std::vector<AddressBlock> out;
  for (const char* t : texts) {
    auto b = ParseAddressBlock(t);
    EXPECT_TRUE(b) << t;
    if (b) out.push_back(*b);
  }
  return out;
}

TEST(AddressBlockTest, ParsesAndMatches) {
  auto ten = ParseAddressBlock("10.0.0.0/8");
  ASSERT_TRUE(ten);
  EXPECT_TRUE(ten->Contains(A("10.200.3.4")));
  EXPECT_FALSE(ten->Contains(A("11.0.0.1")));
  EXPECT_TRUE(ten->Contains(A("::ffff:10.1.2.3")));  // IPv4-mapped counts as IPv4
  EXPECT_FALSE(ten->Contains(A("::1")));
  auto odd = ParseAddressBlock("192.168.0.0/20");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->Contains(A("192.168.15.255")));
  EXPECT_FALSE(odd->Contains(A("192.168.16.0")));
  auto v6 = ParseAddressBlock("2001:db8::/32");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->Contains(A("2001:db8:ffff::1")));
  EXPECT_FALSE(v6->Contains(A("2001:db9::1")));
  auto one = ParseAddressBlock("127.0.0.1");
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->Contains(A("127.0.0.1")));
  EXPECT_FALSE(one->Contains(A("127.0.0.2")));
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "host", "1.2.3"}) {
    EXPECT_FALSE(ParseAddressBlock(bad)) << bad;
    EXPECT_FALSE(IsAddressBlock(bad)) << bad;
  }
}

TEST(ClientAddressTest, ForwardedForCountsOnlyFromTrustedProxies) {
  const auto trusted = Blocks({"127.0.0.1", "10.0.0.0/8"});
  // An untrusted peer cannot claim to be someone else.
  EXPECT_EQ(ClientAddress(A("203.0.113.9"), "1.2.3.4", trusted), A("203.0.113.9"));
  // A trusted proxy: the rightmost address it did not itself trust.
  EXPECT_EQ(ClientAddress(A("127.0.0.1"), "198.51.100.7", trusted), A("198.51.100.7"));
  EXPECT_EQ(ClientAddress(A("127.0.0.1"), "6.6.6.6, 198.51.100.7, 10.1.1.1", trusted),
            A("198.51.100.7"));  // the forged 6.6.6.6 is left of what the proxies saw
  EXPECT_EQ(ClientAddress(A("127.0.0.1"), "[2001:db8::5]:443, 10.0.0.2", trusted),
            A("2001:db8::5"));
  EXPECT_EQ(ClientAddress(A("127.0.0.1"), "198.51.100.7:5555", trusted), A("198.51.100.7"));
  // No header, or nothing usable: the proxy itself.
  EXPECT_EQ(ClientAddress(A("127.0.0.1"), "", trusted), A("127.0.0.1"));
  EXPECT_EQ(ClientAddress(A("127.0.0.1"), "unknown", trusted), A("127.0.0.1"));
  EXPECT_EQ(ClientAddress(A("::ffff:127.0.0.1"), "198.51.100.7", trusted), A("198.51.100.7"));
  // No trusted proxies configured: the header is never read.
  EXPECT_EQ(ClientAddress(A("127.0.0.1"), "198.51.100.7", {}), A("127.0.0.1"));
}

TEST(ClientLimiterTest, BurstThenRateWithADrivenClock) {
  ClientLimiter limiter(/*rate=*/2, /*burst=*/3);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  const ip::address client = A("198.51.100.1");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Take(client, t0), 0) << i;
  EXPECT_EQ(limiter.Take(client, t0), 1);  // half a second to the next token: rounded up
  EXPECT_EQ(limiter.Take(client, t0 + 500ms), 0);
  EXPECT_GE(limiter.Take(client, t0 + 500ms), 1);
  EXPECT_EQ(limiter.Take(client, t0 + 10s), 0);  // refilled, never beyond the burst
  EXPECT_EQ(limiter.Take(client, t0 + 10s), 0);
  EXPECT_EQ(limiter.Take(client, t0 + 10s), 0);
  EXPECT_GE(limiter.Take(client, t0 + 10s), 1);
}

TEST(ClientLimiterTest, OneHeavyClientDoesNotHoldBackOthers) {
  ClientLimiter limiter(/*rate=*/1, /*burst=*/3);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  const ip::address heavy = A("203.0.113.50");
  int heavy_allowed = 0;
  for (int i = 0; i < 1000; ++i) heavy_allowed += limiter.Take(heavy, t0) == 0;
  EXPECT_EQ(heavy_allowed, 3);
  // 5,000 other clients at the same instant, one request each: none is refused, though the
  // table has no room for a bucket of its own for each (the seeds are fixed: this is exact).
  int others_refused = 0;
  for (unsigned i = 0; i < 5000; ++i) {
    const ip::address other = ip::make_address_v4(0x0A000000u + i);
    others_refused += limiter.Take(other, t0) != 0;
  }
  EXPECT_EQ(others_refused, 0);
  // An IPv6 client is its /64: another address of the same /64 shares its budget.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Take(A("2001:db8:1:2::1"), t0), 0);
  EXPECT_NE(limiter.Take(A("2001:db8:1:2::ffff"), t0), 0);
  EXPECT_EQ(limiter.Take(A("2001:db8:1:3::1"), t0), 0);
}

}  // namespace
}  // namespace cartwatch::collector
