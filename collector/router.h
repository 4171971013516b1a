// Router: all HTTP meaning of the collector. Maps one parsed request to one response:
// routing, write/secret keys, CORS, content types, gzip, rate limits, ingest through the
// store's group commit, and the events export. It does no socket I/O, so tests can call
// it directly.
//
// Private to collector/. Thread safety: Handle and HandleAdmin may be called concurrently
// from any number of I/O threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/beast/http.hpp>

#include "collector/options.h"
#include "storage/store.h"

namespace cartwatch::collector {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
// Receives the response. Called exactly once, on the calling thread or on the store's
// writer thread.
using Respond = std::function<void(Response&&)>;

// The JSON error body of SPEC section 7: {"error": {"code": ..., "message": ...}}.
Response ErrorResponse(unsigned status, std::string_view code, std::string_view message,
                       unsigned version = 11);

class Router {
 public:
  Router(const Limits& limits, std::vector<Site> sites, storage::Store& store);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // The public listener: ingest, pixel, CORS preflight, GET /v1/events.
  void Handle(Request&& request, Respond respond);

  // The admin listener: /healthz, /readyz.
  Response HandleAdmin(const Request& request);

 private:
  struct SiteState;  // a Site plus its rate limiter

  void HandleIngest(Request&& request, std::string_view route_name, Respond respond);
  void HandlePixel(Request&& request, std::string_view type, std::string_view query,
                   Respond respond);
  void HandleEvents(const Request& request, std::string_view query, Respond respond);
  Response HandlePreflight(const Request& request);

  const SiteState* SiteByWriteKey(std::string_view key) const;
  const SiteState* SiteBySecretKey(std::string_view key) const;
  // Whether `origin` may send for `site` (nullptr: for any site).
  bool OriginAllowed(const SiteState* site, std::string_view origin) const;
  // Adds Access-Control-Allow-* and Vary for `request`'s Origin when it is allowed.
  void AddCors(const Request& request, const SiteState* site, Response& response) const;
  // Seconds to wait when `site` is over its rate limit; 0 when the request may proceed.
  long TakeToken(const SiteState& site) const;

  const Limits limits_;
  std::vector<std::unique_ptr<SiteState>> sites_;
  std::unordered_map<std::string, const SiteState*> by_write_key_;
  std::unordered_map<std::string, const SiteState*> by_secret_key_;
  storage::Store& store_;
};

}  // namespace cartwatch::collector
