// What a delivery attempt's result means (docs/webhooks.md, "Outcomes"), and where an
// endpoint may be reached ("SSRF guard"). Pure functions: no I/O, times given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace cartwatch::webhooks {

using EpochMs = std::int64_t;

// The delays after failed attempts 1, 2, ... (Svix's schedule): a delivery whose attempt
// number delays.size() + 1 fails is dead. Each delay varies by +-`jitter` (a fraction), so
// that many deliveries failing together do not all come back at once.
struct Schedule {
  std::vector<EpochMs> delays = {5'000,          5 * 60'000,      30 * 60'000,     2 * 3'600'000,
                                 5 * 3'600'000, 10 * 3'600'000, 10 * 3'600'000};
  double jitter = 0.1;
  EpochMs max_retry_after = 24 * 3'600'000;  // a longer Retry-After is taken as this
};

// One attempt's result: the HTTP status (0: no response) and, for 0, why.
struct Attempt {
  int status = 0;
  std::string error{};                      // "connect: connection refused", ...
  std::optional<std::string> retry_after{};  // the Retry-After header, when sent
};

struct Verdict {
  enum class Kind : std::uint8_t {
    kDelivered,        // 2xx
    kRetry,            // try again at `next_attempt_at`
    kEndpointGone,     // 410: the endpoint is disabled; the delivery waits (not retried)
    kDead,             // the schedule is spent
  };
  Kind kind = Kind::kRetry;
  EpochMs next_attempt_at = 0;  // kRetry
  std::string reason{};         // what went wrong, for people ("HTTP 503", "redirect ...")
};

// Judges attempt number `attempt` (1 = the first) that ended at `now`. `random` in [0, 1)
// draws the jitter.
Verdict Judge(const Schedule& schedule, int attempt, const Attempt& result, EpochMs now,
              double random);

// Seconds, or an HTTP-date (RFC 9110 section 10.2.3: IMF-fixdate), as a delay from `now`
// (never negative); nullopt when it is neither.
std::optional<EpochMs> RetryAfterDelay(std::string_view value, EpochMs now);

// Why Cartwatch must not connect to `address` for an endpoint that does not set
// allow_private: "loopback", "private", "link-local", "shared address space (CGNAT)",
// "multicast", "unspecified", "reserved", "IPv4-mapped", ...; nullopt for a public address.
// Checked on the address a connection is about to use, after DNS, so that a name that
// resolves to an internal address (DNS rebinding) is refused too.
std::optional<std::string> RefusedAddress(const boost::asio::ip::address& address);

}  // namespace cartwatch::webhooks
