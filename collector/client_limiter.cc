#include "collector/client_limiter.h"

#include "collector/options.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

namespace cartwatch::collector {
namespace {

namespace ip = boost::asio::ip;

// IPv4-mapped IPv6 ("::ffff:1.2.3.4") as the IPv4 address it stands for.
ip::address Unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  return a;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One X-Forwarded-For element: an address, possibly "[v6]:port" or "v4:port".
std::optional<ip::address> ParseForwarded(std::string_view text) {
  text = Trim(text);
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    text = text.substr(1, close - 1);
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    text = text.substr(0, text.find(':'));  // v4:port
  }
  boost::system::error_code ec;
  ip::address a = ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return Unmapped(a);
}

std::uint64_t Mix(std::uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The client's key: an IPv4 address, or the first 64 bits of an IPv6 address.
std::uint64_t ClientKey(const ip::address& client) {
  const ip::address a = Unmapped(client);
  if (a.is_v4()) return 0x4000000000000000ULL | a.to_v4().to_uint();
  const auto bytes = a.to_v6().to_bytes();
  std::uint64_t key = 0;
  for (int i = 0; i < 8; ++i) key = key << 8 | bytes[i];
  return key;
}

}  // namespace

bool AddressBlock::Contains(const ip::address& raw) const {
  const ip::address a = Unmapped(raw);
  if (a.is_v4() != base.is_v4()) return false;
  auto match = [this](const auto& x, const auto& y) {
    unsigned bits = prefix;
    for (std::size_t i = 0; i < x.size() && bits > 0; ++i) {
      const unsigned take = std::min(bits, 8u);
      const unsigned mask = (0xFF00u >> take) & 0xFFu;
      if ((x[i] & mask) != (y[i] & mask)) return false;
      bits -= take;
    }
    return true;
  };
  if (a.is_v4()) return match(a.to_v4().to_bytes(), base.to_v4().to_bytes());
  return match(a.to_v6().to_bytes(), base.to_v6().to_bytes());
}

std::optional<AddressBlock> ParseAddressBlock(std::string_view text) {
  const auto slash = text.find('/');
  boost::system::error_code ec;
  ip::address base = ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return std::nullopt;
  base = Unmapped(base);
  const unsigned max = base.is_v4() ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view bits = text.substr(slash + 1);
    auto [end, error] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
    if (error != std::errc() || end != bits.data() + bits.size() || bits.empty() || prefix > max) {
      return std::nullopt;
    }
  }
  return AddressBlock{base, prefix};
}

bool IsAddressBlock(std::string_view text) { return ParseAddressBlock(text).has_value(); }

ip::address ClientAddress(const ip::address& peer, std::string_view forwarded_for,
                          const std::vector<AddressBlock>& trusted) {
  auto is_trusted = [&trusted](const ip::address& a) {
    return std::any_of(trusted.begin(), trusted.end(),
                       [&a](const AddressBlock& b) { return b.Contains(a); });
  };
  const ip::address self = Unmapped(peer);
  if (trusted.empty() || !is_trusted(self)) return self;
  // From the right: each trusted hop appended the address it received the request from.
  while (!forwarded_for.empty()) {
    const auto comma = forwarded_for.rfind(',');
    const std::string_view element =
        comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
    forwarded_for = comma == std::string_view::npos ? std::string_view()
                                                    : forwarded_for.substr(0, comma);
    const auto hop = ParseForwarded(element);
    if (!hop) break;  // not an address: nothing further left can be trusted
    if (!is_trusted(*hop)) return *hop;
  }
  return self;
}

ClientLimiter::ClientLimiter(double rate, double burst, std::size_t cells)
    : rate_(rate),
      burst_(std::max(1.0, burst)),
      cell_count_(std::max<std::size_t>(cells, 2)),
      cells_(cell_count_, Cell{.tokens = burst_}) {}

void ClientLimiter::Refill(Cell& cell, std::chrono::steady_clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - cell.refilled).count();
  if (elapsed > 0) cell.tokens = std::min(burst_, cell.tokens + elapsed * rate_);
  cell.refilled = now;
}

long ClientLimiter::Take(const ip::address& client, std::chrono::steady_clock::time_point now) {
  const std::uint64_t key = ClientKey(client);
  const std::size_t n = cell_count_;
  const std::size_t a = Mix(key) % n;
  std::size_t b = Mix(key ^ 0x9e3779b97f4a7c15ULL) % n;
  if (b == a) b = (a + 1) % n;
  util::MutexLock lock(mu_);
  Cell& first = cells_[a];
  Cell& second = cells_[b];
  Refill(first, now);
  Refill(second, now);
  const double best = std::max(first.tokens, second.tokens);
  if (best >= 1) {
    first.tokens = std::max(0.0, first.tokens - 1);
    second.tokens = std::max(0.0, second.tokens - 1);
    return 0;
  }
  return static_cast<long>(std::clamp(std::ceil((1 - best) / rate_), 1.0, 86'400.0));
}

}  // namespace cartwatch::collector
