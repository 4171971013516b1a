// Options of the collector: listeners, timeouts, request limits and the sites it serves.
// Plain aggregates, filled by the config loader (app/config.h) and read-only afterwards.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cartwatch::collector {

struct ServerOptions {
  // Public listener: ingest and the query API. "host:port"; "[v6]:port" for IPv6.
  std::string listen = "0.0.0.0:8080";
  // Admin listener: /healthz, /readyz. Keep it off the public network.
  std::string admin_listen = "127.0.0.1:9464";
  // I/O threads, each with its own event loop. 0 = one per core. Default 0.
  int io_threads = 0;
  // How long a client may take to send one whole request once it has started it; past it
  // the client gets 408 and the connection closes. Default 10s.
  std::chrono::milliseconds read_timeout = std::chrono::seconds(10);
  // How long a keep-alive connection may sit idle between requests. Default 60s.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  // How long writing one response may take before the connection is dropped. Default 10s.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);
  // On SIGTERM/SIGINT: how long in-flight requests may take to finish. Default 10s.
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(10);
  // How long an event loop waits, from the first request of a commit round, before it
  // commits the round: the requests that arrive meanwhile share its RocksDB write and
  // its per-round work. 0 commits at the end of each pass of the loop. Default 200 us.
  std::uint32_t commit_delay_us = 200;
  // Connections the public listener keeps open at once; past it a new connection is closed
  // as soon as it is accepted. The server lowers it to three quarters of the process's file
  // descriptor limit (less 128) when it is higher, so that RocksDB and the admin listener
  // always have descriptors. Default 10,000.
  std::size_t max_connections = 10'000;
  // The same for the admin listener (/readyz, /metrics), which has descriptors of its own.
  std::size_t admin_max_connections = 64;
  // false: no metrics at all (no /metrics; nothing counted on the request path). Only to
  // measure what the metrics cost (bench/ab.sh). Default true.
  bool metrics = true;
};

struct Limits {
  // One message's JSON. Default 32 KiB.
  std::size_t max_message_bytes = 32 * 1024;
  // One request body, on the wire and again after gzip decompression. Default 500 KiB.
  std::size_t max_request_bytes = 500 * 1024;
  // Messages in one batch. Default 2,500.
  std::size_t max_batch_messages = 2500;
  // Request line plus headers. Default 8 KiB.
  std::size_t max_header_bytes = 8 * 1024;
  // Request bodies being received at once, all connections together (each counts its
  // Content-Length, or max_request_bytes when chunked, from its header to its handling);
  // a request that does not fit is answered 503 with Retry-After before its body is read.
  // 0 = no bound. Default 128 MiB.
  std::size_t max_receiving_bytes = 128u << 20;
  // Ingest requests a second accepted from one client (an IPv4 address, or an IPv6 /64),
  // whatever its site, before its site's own limit; past it 429 with Retry-After, so that
  // one client cannot use up a site's limit for the others. 0 = no limit. Default 0.
  double client_rate_limit = 0;
  // Requests a client may send at once before client_rate_limit applies. 0 =
  // client_rate_limit; at least 1. Default 0.
  double client_rate_burst = 0;
  // Proxies (addresses or blocks such as "10.0.0.0/8") whose X-Forwarded-For names the
  // client; from any other peer the header is ignored. Default none.
  std::vector<std::string> trusted_proxies;
  // Events in one GET /v1/events page: the default when `limit` is absent, and the most
  // allowed. Defaults 1,000 and 10,000.
  std::size_t events_page_default = 1000;
  std::size_t events_page_max = 10000;
};

// Whether `text` is an address or block usable in Limits::trusted_proxies ("10.0.0.0/8",
// "::1").
bool IsAddressBlock(std::string_view text);

// One storefront: its keys and the browser origins allowed to send for it.
struct Site {
  std::string name;
  std::string write_key;   // public: identifies the site on ingest
  std::string secret_key;  // private: Bearer token of the query API
  // Origins ("https://shop.example") whose browsers may send; "*" allows any origin.
  // Requests without an Origin header (server-side SDKs) are always allowed.
  std::vector<std::string> allowed_origins;
  // Sustained requests per second accepted for this site; 0 = unlimited. Default 0.
  double rate_limit = 0;
  // Requests allowed at once before rate_limit applies. 0 = rate_limit; at least 1.
  // Default 0.
  double rate_burst = 0;
};

}  // namespace cartwatch::collector
