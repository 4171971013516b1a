// The HTTP(S) client that posts deliveries to one endpoint (docs/webhooks.md): Beast over
// Asio on the caller's event loop, keep-alive connections reused, at most
// `max_in_flight` requests at once, a timeout on each of resolve + connect, TLS handshake,
// write and read. The address a connection is about to use is checked after DNS
// (policy.h, RefusedAddress) unless the endpoint allows private addresses. HTTPS verifies
// the certificate chain (the system's CAs, or the endpoint's CA file) and the host name.
// Redirects are not followed (a 3xx is the attempt's result).
//
// Thread safety: a Client is used from its io_context's thread only (Post's callback is
// called there too).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "webhooks/policy.h"
#include "webhooks/url.h"

namespace cartwatch::webhooks {

struct ClientOptions {
  std::string url{};
  bool allow_private = false;
  std::chrono::milliseconds timeout = std::chrono::seconds(15);  // each phase
  std::size_t max_in_flight = 8;
  std::string ca_file{};  // PEM; empty: the system's CA certificates
  std::string user_agent = "Cartwatch-Webhooks/1";
};

// One POST's headers and body.
struct Post {
  std::string id{};                 // webhook-id
  std::int64_t timestamp = 0;     // webhook-timestamp (Unix seconds)
  std::string signature{};          // webhook-signature
  std::string body{};
};

class Client {
 public:
  virtual ~Client() = default;

  // Sends `post` now (when fewer than max_in_flight are in flight; the caller keeps
  // count: in_flight()). `done` gets the attempt's result: the status, or why there was
  // none ("connect: Connection refused", "timed out reading the response", "TLS:
  // certificate verify failed: Hostname mismatch", "refused address 10.0.0.5 (private)").
  virtual void Send(Post post, std::function<void(Attempt)> done) = 0;
  virtual std::size_t in_flight() const = 0;
  virtual std::size_t max_in_flight() const = 0;
  // Connections opened so far (keep-alive reuse shows as fewer than requests).
  virtual std::uint64_t connections_opened() const = 0;
  // Closes the idle connections and cancels what is in flight (their callbacks get an
  // error "cancelled").
  virtual void Close() = 0;
};

// A client of the endpoint at options.url, on `ioc`; nullptr with *error saying why: a bad
// URL, an unreadable CA file. Its coroutines keep it alive while they run.
std::shared_ptr<Client> CreateClient(boost::asio::io_context& ioc, const ClientOptions& options,
                                     std::string* error);

}  // namespace cartwatch::webhooks
