#include "webhooks/policy.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include "util/time.h"

namespace cartwatch::webhooks {
namespace {

bool InV4(std::uint32_t a, std::uint32_t net, int bits) {
  const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t(0) << (32 - bits);
  return (a & mask) == (net & mask);
}

constexpr std::uint32_t V4(int a, int b, int c, int d) {
  return (std::uint32_t(a) << 24) | (std::uint32_t(b) << 16) | (std::uint32_t(c) << 8) |
         std::uint32_t(d);
}

std::optional<std::string> RefusedV4(std::uint32_t a) {
  struct Range {
    std::uint32_t net;
    int bits;
    const char* why;
  };
  static constexpr Range kRanges[] = {
      {V4(0, 0, 0, 0), 8, "unspecified (0.0.0.0/8)"},
      {V4(10, 0, 0, 0), 8, "private (10.0.0.0/8)"},
      {V4(100, 64, 0, 0), 10, "shared address space, CGNAT (100.64.0.0/10)"},
      {V4(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"},
      {V4(169, 254, 0, 0), 16, "link-local (169.254.0.0/16)"},
      {V4(172, 16, 0, 0), 12, "private (172.16.0.0/12)"},
      {V4(192, 0, 0, 0), 24, "reserved (192.0.0.0/24)"},
      {V4(192, 0, 2, 0), 24, "reserved for documentation (192.0.2.0/24)"},
      {V4(192, 88, 99, 0), 24, "reserved (192.88.99.0/24)"},
      {V4(192, 168, 0, 0), 16, "private (192.168.0.0/16)"},
      {V4(198, 18, 0, 0), 15, "reserved for benchmarking (198.18.0.0/15)"},
      {V4(198, 51, 100, 0), 24, "reserved for documentation (198.51.100.0/24)"},
      {V4(203, 0, 113, 0), 24, "reserved for documentation (203.0.113.0/24)"},
      {V4(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"},
      {V4(240, 0, 0, 0), 4, "reserved (240.0.0.0/4)"},
  };
  for (const Range& r : kRanges) {
    if (InV4(a, r.net, r.bits)) return std::string(r.why);
  }
  return std::nullopt;
}

bool InV6(const std::array<unsigned char, 16>& a, std::initializer_list<unsigned char> prefix,
          int bits) {
  auto p = prefix.begin();
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const unsigned char want = p != prefix.end() ? *p++ : 0;
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((a[i] & mask) != (want & mask)) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> RefusedAddress(const boost::asio::ip::address& address) {
  if (address.is_v4()) return RefusedV4(address.to_v4().to_uint());
  const boost::asio::ip::address_v6 v6 = address.to_v6();
  const auto a = v6.to_bytes();
  if (v6.is_unspecified()) return "unspecified (::)";
  if (v6.is_loopback()) return "loopback (::1)";
  if (v6.is_v4_mapped()) return "IPv4-mapped (::ffff:0:0/96)";
  if (InV6(a, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 96)) return "IPv4-compatible (::/96)";
  if (InV6(a, {0x00, 0x64, 0xff, 0x9b}, 96)) return "NAT64 (64:ff9b::/96)";
  if (InV6(a, {0xfc}, 7)) return "private, unique local (fc00::/7)";
  if (InV6(a, {0xfe, 0x80}, 10)) return "link-local (fe80::/10)";
  if (InV6(a, {0xfe, 0xc0}, 10)) return "site-local (fec0::/10)";
  if (InV6(a, {0xff}, 8)) return "multicast (ff00::/8)";
  if (InV6(a, {0x20, 0x01, 0x0d, 0xb8}, 32)) return "reserved for documentation (2001:db8::/32)";
  if (InV6(a, {0x01, 0x00}, 64)) return "reserved, discard (100::/64)";
  if (InV6(a, {0x20, 0x02}, 16)) return "6to4 (2002::/16)";
  if (InV6(a, {0x20, 0x01, 0x00, 0x00}, 32)) return "Teredo (2001::/32)";
  return std::nullopt;
}

std::optional<EpochMs> RetryAfterDelay(std::string_view value, EpochMs now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    return std::min<std::int64_t>(seconds, 10LL * 365 * 86400) * 1000;
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  if (value.size() != 29 || value.substr(3, 2) != ", " || value.substr(25) != " GMT") {
    return std::nullopt;
  }
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const std::string_view month = value.substr(8, 3);
  const auto m = kMonths.find(month);
  if (m == std::string_view::npos || m % 3 != 0) return std::nullopt;
  std::string iso;
  iso += value.substr(12, 4);
  iso += '-';
  const int month_number = static_cast<int>(m / 3) + 1;
  iso += month_number < 10 ? "0" : "";
  iso += std::to_string(month_number);
  iso += '-';
  iso += value.substr(5, 2);
  iso += 'T';
  iso += value.substr(17, 8);
  iso += 'Z';
  auto at = util::ParseIso8601(iso);
  if (!at) return std::nullopt;
  return std::max<EpochMs>(0, *at - now);
}

Verdict Judge(const Schedule& schedule, int attempt, const Attempt& result, EpochMs now,
              double random) {
  Verdict v;
  const int status = result.status;
  if (status >= 200 && status < 300) {
    v.kind = Verdict::Kind::kDelivered;
    return v;
  }
  if (status == 410) {
    v.kind = Verdict::Kind::kEndpointGone;
    v.reason = "HTTP 410: the endpoint is gone; it is disabled until enabled again";
    return v;
  }
  if (status == 0) {
    v.reason = result.error.empty() ? "no response" : result.error;
  } else if (status >= 300 && status < 400) {
    v.reason = "HTTP " + std::to_string(status) + ": redirects are not followed";
  } else {
    v.reason = "HTTP " + std::to_string(status);
  }
  if (attempt > static_cast<int>(schedule.delays.size())) {
    v.kind = Verdict::Kind::kDead;
    return v;
  }
  const EpochMs base = schedule.delays[static_cast<std::size_t>(std::max(attempt, 1) - 1)];
  EpochMs delay = base + static_cast<EpochMs>(std::llround(
                             static_cast<double>(base) * schedule.jitter * (2 * random - 1)));
  // 429 and 5xx: the receiver may say when (Retry-After), and is taken at its word.
  if ((status == 429 || status >= 500) && result.retry_after) {
    if (auto asked = RetryAfterDelay(*result.retry_after, now)) {
      delay = std::min(*asked, schedule.max_retry_after);
    }
  }
  v.kind = Verdict::Kind::kRetry;
  v.next_attempt_at = now + std::max<EpochMs>(delay, 0);
  return v;
}

}  // namespace cartwatch::webhooks
