// Per-client rate limiting for the ingest routes: who a client is (its address, or what a
// trusted proxy says in X-Forwarded-For) and a token bucket per client in bounded memory.
//
// Private to collector/. Thread safety: ClientLimiter::Take may be called from any thread;
// the rest are pure.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "util/mutex.h"

namespace cartwatch::collector {

// An address block, "10.0.0.0/8", "2001:db8::/32", or one address ("127.0.0.1", "::1").
struct AddressBlock {
  boost::asio::ip::address base;
  unsigned prefix = 0;  // bits

  bool Contains(const boost::asio::ip::address& a) const;
};

// Parses `text` as an AddressBlock; nullopt when it is not one.
std::optional<AddressBlock> ParseAddressBlock(std::string_view text);

// The client a request came from: `peer` itself, unless `peer` is one of `trusted` proxies;
// then the rightmost address of X-Forwarded-For (`forwarded_for`, the header's values
// joined with commas) that is not a trusted proxy itself (the one the nearest untrusted hop
// reported, which a client cannot forge), or `peer` when the header has none. IPv4-mapped
// IPv6 addresses count as the IPv4 address.
boost::asio::ip::address ClientAddress(const boost::asio::ip::address& peer,
                                       std::string_view forwarded_for,
                                       const std::vector<AddressBlock>& trusted);

// A token bucket per client (an IPv4 address, or the /64 of an IPv6 address), in a fixed
// table: each client has two cells chosen by two hashes and is refused only when both are
// empty, so a client that drains its cells holds back another only if that one shares both
// of them (about (2k/cells)^2 with k heavy clients). Memory: 16 bytes a cell, whatever the
// number of clients.
class ClientLimiter {
 public:
  // `rate` requests a second, bursts of `burst` (at least 1). REQUIRES: rate > 0.
  ClientLimiter(double rate, double burst, std::size_t cells = 1u << 16);

  // Seconds until `client` may send again (>= 1) when it is over its limit; 0 when the
  // request may proceed (and a token was taken).
  long Take(const boost::asio::ip::address& client,
            std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  struct Cell {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled{};
  };
  void Refill(Cell& cell, std::chrono::steady_clock::time_point now) const REQUIRES(mu_);

  const double rate_;
  const double burst_;
  const std::size_t cell_count_;  // cells_.size(), which never changes
  util::Mutex mu_;
  std::vector<Cell> cells_ GUARDED_BY(mu_);
};

}  // namespace cartwatch::collector
