// Router: all HTTP meaning of the collector. Maps one parsed request to one response:
// routing, write/secret keys, CORS, content types, gzip, rate limits, ingest through the
// store's group commit (router.cc), the events export and the profile API (customers,
// visitors, erase: query_api.cc), and the admin listener (admin.cc). It does no socket
// I/O, so tests can call it directly.
//
// Private to collector/. Thread safety: Handle and HandleAdmin may be called concurrently
// from any number of I/O threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http.hpp>

#include "collector/client_limiter.h"
#include "collector/collector_metrics.h"
#include "collector/ingest.h"
#include "collector/options.h"
#include "metrics/metrics.h"
#include "storage/store.h"

namespace cartwatch::collector {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
// Receives the response. Called exactly once: on the calling thread, on the thread that
// commits the request's messages (Store::Flush), or on the export thread.
using Respond = std::function<void(Response&&)>;

// Spare capacity a request body needs beyond its size for the JSON parser
// (simdjson::SIMDJSON_PADDING; checked in router.cc). Reserving it while reading saves a copy.
inline constexpr std::size_t kBodyPadding = 64;

// The JSON error body of every error (docs/api.md): {"error": {"code": ..., "message": ...}},
// always valid UTF-8 (what `message` quotes of a request is repaired with U+FFFD).
Response ErrorResponse(unsigned status, std::string_view code, std::string_view message,
                       unsigned version = 11);

// The origin form ("/path?query") of a request target, also when it came in the absolute
// form ("http://host/path?query").
std::string_view OriginFormTarget(std::string_view target);

class Router {
 public:
  // `metrics` (may be null: nothing is counted, and /metrics answers 404) must outlive the
  // router.
  Router(const Limits& limits, std::vector<Site> sites, storage::Store& store,
         metrics::Metrics* metrics = nullptr);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // The public listener: ingest, pixel, CORS preflight, GET /v1/events, GET
  // /v1/customers/{userId}, DELETE /v1/customers/{userId}, GET /v1/visitors/{anonymousId}.
  // `peer` is the address the request came from (for the per-client rate limit); the
  // unspecified address when unknown.
  void Handle(Request&& request, Respond respond, const boost::asio::ip::address& peer = {});

  // What the header alone already decides, before a body is read: an ingest request whose
  // Basic auth names no site gets its 401 here. nullopt: read the body and Handle it.
  std::optional<Response> CheckHeader(const Request& header) const;

  // The admin listener: GET /healthz, GET /readyz, GET /metrics (Prometheus text format
  // 0.0.4), POST /checkpoint?dir=<absolute path> (Store::Checkpoint, run off the calling
  // thread).
  void HandleAdmin(const Request& request, Respond respond);

  // Waits for the exports and profile reads in progress to answer. Call after the listeners
  // stopped and before the I/O threads are joined.
  void Stop();

 private:
  struct SiteState;  // a Site plus its rate limiter and its counters

  void HandleAdminRoute(const Request& request, Respond respond);
  // Counts the refusal of a whole ingest request and logs it (sampled).
  void NoteRefused(const SiteState* site, std::string_view route, const Response& response,
                   const boost::asio::ip::address& client);
  // Counts and logs (sampled) the messages refused inside an accepted ingest request.
  void NoteRejected(const SiteState& site, std::string_view route,
                    const std::vector<Rejection>& rejected, const boost::asio::ip::address& client);

  // `client`: who sent it (ClientAddress), for the per-client rate limit.
  void HandleIngest(Request&& request, std::string_view route_name, std::string_view query,
                    Respond respond,
                    const boost::asio::ip::address& client);
  void HandlePixel(Request&& request, std::string_view type, std::string_view query,
                   Respond respond, const boost::asio::ip::address& client);
  void HandleEvents(const Request& request, std::string_view query, Respond respond);
  // GET /v1/deliveries: the outbox of the rule engine's actions, as JSON.
  void HandleDeliveries(const Request& request, std::string_view query, Respond respond);
  // POST /v1/deliveries/{id}/retry (kRetry, `name` the action id) and POST
  // /v1/endpoints/{name}/enable (kEnable).
  void HandleDeliveryChange(const Request& request, storage::DeliveryChange::Kind kind,
                            std::string_view name, Respond respond);
  enum class Profile { kCustomer, kVisitor };
  // /healthz, /readyz, and the 404 of the admin listener.
  Response HandleHealth(const Request& request);
  // GET (both) and DELETE (customers) of /v1/{customers,visitors}/{raw_id}.
  void HandleProfile(const Request& request, Profile kind, std::string_view raw_id,
                     Respond respond);
  // The site whose secret key is the request's Bearer token; else answers 401 and returns
  // nullptr.
  const SiteState* AuthenticateSecret(const Request& request, const Respond& respond) const;
  Response HandlePreflight(const Request& request);

  const SiteState* SiteByWriteKey(std::string_view key) const;
  const SiteState* SiteBySecretKey(std::string_view key) const;
  // Whether `origin` may send for `site` (nullptr: for any site).
  bool OriginAllowed(const SiteState* site, std::string_view origin) const;
  // Adds Access-Control-Allow-* and Vary for `request`'s Origin when it is allowed.
  void AddCors(const Request& request, const SiteState* site, Response& response) const;
  // Seconds to wait when `site` is over its rate limit; 0 when the request may proceed.
  long TakeToken(const SiteState& site) const;

  // Heterogeneous lookup: a key from a header is found without copying it.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const {
      return std::hash<std::string_view>{}(key);
    }
  };
  using KeyMap = std::unordered_map<std::string, const SiteState*, KeyHash, std::equal_to<>>;

  metrics::Metrics* const metrics_;                   // null: no metrics
  std::unique_ptr<CollectorMetrics> counters_;         // set with metrics_
  std::shared_ptr<prometheus::Collectable> store_figures_;  // registered with metrics_
  // Refused requests and messages, logged at most 5 lines/s (bursts of 20).
  mutable SampledLog refusals_{5, 20};
  const Limits limits_;
  std::vector<AddressBlock> trusted_proxies_;     // Limits::trusted_proxies, parsed
  std::unique_ptr<ClientLimiter> client_limiter_;  // null: no per-client limit
  std::vector<std::unique_ptr<SiteState>> sites_;
  KeyMap by_write_key_;
  KeyMap by_secret_key_;
  storage::Store& store_;
  // Exports and profile reads run off the I/O threads (an export reads RocksDB, possibly
  // from disk; a profile read waits for the store's committing thread), so they do not
  // stall the other connections of a loop; each on its own thread, so that a CRM's profile
  // lookups do not wait behind an export page of several MiB.
  boost::asio::thread_pool exports_{1};
  boost::asio::thread_pool profile_reads_{1};
};

}  // namespace cartwatch::collector
