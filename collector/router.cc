#include "collector/router.h"

#include <algorithm>
#include <cmath>

#include <boost/range/iterator_range.hpp>
#include <boost/json.hpp>
#include <simdjson.h>

#include "collector/gzip.h"
#include "collector/http_util.h"
#include "collector/ingest.h"
#include "collector/site_state.h"
#include "collector/store_metrics.h"
#include "collector/tracker_script.h"
#include "util/base64.h"
#include "util/mutex.h"
#include "util/time.h"

namespace cartwatch::collector {

static_assert(kBodyPadding >= simdjson::SIMDJSON_PADDING);

namespace {

constexpr std::string_view kSuccessBody = R"({"success":true})";

// The 1x1 transparent GIF of the pixel route.
constexpr unsigned char kPixelGif[] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};




std::optional<Route> RouteFromType(std::string_view type) {
  if (type == "track") return Route::kTrack;
  if (type == "page") return Route::kPage;
  if (type == "identify") return Route::kIdentify;
  if (type == "screen") return Route::kScreen;
  if (type == "alias") return Route::kAlias;
  if (type == "group") return Route::kGroup;
  return std::nullopt;
}





std::string RejectionsJson(const std::vector<Rejection>& rejected) {
  boost::json::array out;
  out.reserve(rejected.size());
  for (const Rejection& r : rejected) {
    out.push_back(boost::json::object{
        {"index", r.index}, {"code", r.code}, {"error", r.message}});
  }
  return boost::json::serialize(out);
}

}  // namespace

namespace {

// The route label of a request to the public listener.
RouteLabel PublicRouteLabel(std::string_view path);

}  // namespace

Router::Router(const Limits& limits, std::vector<Site> sites, storage::Store& store,
               metrics::Metrics* metrics)
    : metrics_(metrics), limits_(limits), store_(store) {
  if (metrics_ != nullptr) {
    counters_ = std::make_unique<CollectorMetrics>(metrics_->registry(), sites);
    store_figures_ = MakeStoreFigures(store_);
    metrics_->Register(store_figures_);
  }
  for (const std::string& block : limits.trusted_proxies) {
    // The config loader refused anything else.
    if (auto parsed = ParseAddressBlock(block)) trusted_proxies_.push_back(*parsed);
  }
  if (limits.client_rate_limit > 0) {
    client_limiter_ = std::make_unique<ClientLimiter>(
        limits.client_rate_limit,
        limits.client_rate_burst > 0 ? limits.client_rate_burst : limits.client_rate_limit);
  }
  auto now = std::chrono::steady_clock::now();
  for (Site& site : sites) {
    auto state = std::make_unique<SiteState>();
    state->site = std::move(site);
    // At least one whole request must fit in the bucket, or the site could never send.
    double& burst = state->site.rate_burst;
    burst = std::max(1.0, burst > 0 ? burst : state->site.rate_limit);
    {
      util::MutexLock lock(state->mu);  // not shared yet; the analysis wants it held
      state->tokens = state->site.rate_burst;
      state->refilled_at = now;
    }
    if (counters_) state->counters = counters_->ForSite(state->site.name);
    by_write_key_[state->site.write_key] = state.get();
    by_secret_key_[state->site.secret_key] = state.get();
    sites_.push_back(std::move(state));
  }
}

Router::~Router() = default;

void Router::Stop() {
  exports_.join();
  profile_reads_.join();
}

const Router::SiteState* Router::SiteByWriteKey(std::string_view key) const {
  auto it = by_write_key_.find(key);
  return it == by_write_key_.end() ? nullptr : it->second;
}

const Router::SiteState* Router::SiteBySecretKey(std::string_view key) const {
  auto it = by_secret_key_.find(key);
  return it == by_secret_key_.end() ? nullptr : it->second;
}

bool Router::OriginAllowed(const SiteState* site, std::string_view origin) const {
  // "null" is what sandboxed frames and file:// pages send; echoing it would let any such
  // page in, so it is never allowed.
  if (origin.empty() || origin == "null") return false;
  auto allows = [&](const SiteState& s) {
    for (const std::string& allowed : s.site.allowed_origins) {
      if (allowed == "*" || IEquals(allowed, origin)) return true;
    }
    return false;
  };
  if (site) return allows(*site);
  return std::any_of(sites_.begin(), sites_.end(), [&](const auto& s) { return allows(*s); });
}

void Router::AddCors(const Request& request, const SiteState* site, Response& response) const {
  response.set(http::field::vary, "Origin");
  auto origin = request[http::field::origin];
  if (!OriginAllowed(site, origin)) return;
  response.set(http::field::access_control_allow_origin, origin);
  response.set(http::field::access_control_allow_credentials, "true");
  // Without this a browser script could not read the export cursor or a retry delay.
  response.set(http::field::access_control_expose_headers, "Cartwatch-Cursor, Retry-After");
}

long Router::TakeToken(const SiteState& s) const {
  if (s.site.rate_limit <= 0) return 0;
  util::MutexLock lock(s.mu);
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - s.refilled_at).count();
  s.tokens = std::min(s.site.rate_burst, s.tokens + elapsed * s.site.rate_limit);
  s.refilled_at = now;
  if (s.tokens >= 1) {
    s.tokens -= 1;
    return 0;
  }
  const double wait = std::ceil((1 - s.tokens) / s.site.rate_limit);
  return static_cast<long>(std::clamp(wait, 1.0, 86'400.0));  // config keeps rate >= 0.001
}

std::string_view OriginFormTarget(std::string_view target) {
  // RFC 9112 section 3.2.2: a server accepts the absolute form ("http://host/path?q") that
  // proxies send; what follows the authority is what the origin form would have been.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() && IEquals(target.substr(0, scheme.size()), scheme)) {
      const std::size_t path = target.find_first_of("/?", scheme.size());
      if (path == std::string_view::npos) return "/";
      return target.substr(path);
    }
  }
  return target;
}

namespace {

// The ingest route a path names, by its long name ("batch", "track", ...); empty for any
// other path. Besides the Segment HTTP API's own paths this takes the short forms that
// analytics.js 2.0 (@segment/analytics-next) posts to, one letter a type, and RudderStack's
// beacon route (docs/api.md lists which SDK sends which).
std::string_view IngestRoute(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kRoutes[] = {
      {"/v1/batch", "batch"},       {"/v1/track", "track"},   {"/v1/page", "page"},
      {"/v1/identify", "identify"}, {"/v1/screen", "screen"}, {"/v1/alias", "alias"},
      {"/v1/group", "group"},       {"/v1/import", "batch"},  {"/v1/b", "batch"},
      {"/v1/t", "track"},           {"/v1/p", "page"},        {"/v1/i", "identify"},
      {"/v1/s", "screen"},          {"/v1/a", "alias"},       {"/v1/g", "group"},
      {"/beacon/v1/batch", "batch"},
  };
  for (const auto& [route_path, name] : kRoutes) {
    if (path == route_path) return name;
  }
  return {};
}

Response InvalidAuthorization(unsigned version) {
  return ErrorResponse(401, "invalid_authorization",
                       "the Authorization header is not valid Basic auth; send the write key as "
                       "the user name and an empty password",
                       version);
}

Response UnknownWriteKey(unsigned version) {
  return ErrorResponse(401, "unknown_write_key", "the write key is not one of a configured site",
                       version);
}

}  // namespace

std::optional<Response> Router::CheckHeader(const Request& header) const {
  if (header.method() != http::verb::post) return std::nullopt;
  const std::string_view target = OriginFormTarget(header.target());
  if (IngestRoute(target.substr(0, target.find('?'))).empty()) return std::nullopt;
  bool malformed = false;
  const auto key = BasicAuthUser(header[http::field::authorization], &malformed);
  std::optional<Response> refused;
  if (malformed) {
    refused = InvalidAuthorization(header.version());
  } else if (key && !key->empty() && SiteByWriteKey(*key) == nullptr) {
    refused = UnknownWriteKey(header.version());
  }
  if (refused) AddCors(header, nullptr, *refused);
  return refused;
}

void Router::Handle(Request&& request, Respond respond, const boost::asio::ip::address& peer) {
  const unsigned version = request.version();
  std::string_view target = OriginFormTarget(request.target());
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query =
      path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view();
  const http::verb method = request.method();
  if (counters_) {
    counters_->ReceivedBytes(request.body().size());
    respond = [counters = counters_.get(), route = PublicRouteLabel(path),
               respond = std::move(respond)](Response&& res) {
      counters->Request(route, res.result_int());
      respond(std::move(res));
    };
  }

  auto client = [&](const Request& r) {
    if (trusted_proxies_.empty()) return peer;
    std::string forwarded;
    for (const auto& field : boost::make_iterator_range(r.equal_range("X-Forwarded-For"))) {
      if (!forwarded.empty()) forwarded += ',';
      forwarded += field.value();
    }
    return ClientAddress(peer, forwarded, trusted_proxies_);
  };
  auto not_allowed = [&](std::string_view allow) {
    Response res = ErrorResponse(405, "method_not_allowed",
                                 std::string(request.method_string()) + " is not allowed on " +
                                     std::string(path) + "; use " + std::string(allow),
                                 version);
    res.set(http::field::allow, allow);
    AddCors(request, nullptr, res);
    respond(std::move(res));
  };

  if (path == "/cartwatch.js") {
    if (method == http::verb::get) return respond(TrackerResponse(request, query));
    if (method == http::verb::options) {
      Response res{http::status::no_content, version};
      res.set(http::field::allow, "GET, OPTIONS");
      res.set(http::field::access_control_allow_origin, "*");
      return respond(std::move(res));
    }
    return not_allowed("GET, OPTIONS");
  }
  if (std::string_view route = IngestRoute(path); !route.empty()) {
    if (method == http::verb::post) {
      return HandleIngest(std::move(request), route, query, std::move(respond), client(request));
    }
    if (method == http::verb::options) return respond(HandlePreflight(request));
    return not_allowed("POST, OPTIONS");
  }
  constexpr std::string_view kV1 = "/v1/";
  if (path.substr(0, kV1.size()) == kV1) {
    std::string_view rest = path.substr(kV1.size());
    constexpr std::string_view kPixel = "pixel/";
    if (rest.substr(0, kPixel.size()) == kPixel) {
      if (method == http::verb::get) {
        return HandlePixel(std::move(request), rest.substr(kPixel.size()), query,
                           std::move(respond), client(request));
      }
      if (method == http::verb::options) return respond(HandlePreflight(request));
      return not_allowed("GET, OPTIONS");
    }
    if (rest == "events") {
      if (method == http::verb::get) return HandleEvents(request, query, std::move(respond));
      if (method == http::verb::options) return respond(HandlePreflight(request));
      return not_allowed("GET, OPTIONS");
    }
    if (rest == "deliveries") {
      if (method == http::verb::get) return HandleDeliveries(request, query, std::move(respond));
      if (method == http::verb::options) return respond(HandlePreflight(request));
      return not_allowed("GET, OPTIONS");
    }
    // POST /v1/deliveries/{id}/retry, POST /v1/endpoints/{name}/enable.
    for (const auto& [prefix, suffix, kind] :
         {std::tuple{std::string_view("deliveries/"), std::string_view("/retry"),
                     storage::DeliveryChange::Kind::kRetry},
          std::tuple{std::string_view("endpoints/"), std::string_view("/enable"),
                     storage::DeliveryChange::Kind::kEnable}}) {
      if (!rest.starts_with(prefix) || !rest.ends_with(suffix) ||
          rest.size() <= prefix.size() + suffix.size()) {
        continue;
      }
      if (method == http::verb::post) {
        return HandleDeliveryChange(
            request, kind, rest.substr(prefix.size(), rest.size() - prefix.size() - suffix.size()),
            std::move(respond));
      }
      if (method == http::verb::options) return respond(HandlePreflight(request));
      return not_allowed("POST, OPTIONS");
    }
    for (const auto& [prefix, kind] : {std::pair{std::string_view("customers/"), Profile::kCustomer},
                                      std::pair{std::string_view("visitors/"), Profile::kVisitor}}) {
      if (rest.substr(0, prefix.size()) != prefix) continue;
      const bool customer = kind == Profile::kCustomer;
      if (method == http::verb::get || (customer && method == http::verb::delete_)) {
        return HandleProfile(request, kind, rest.substr(prefix.size()), std::move(respond));
      }
      if (method == http::verb::options) return respond(HandlePreflight(request));
      return not_allowed(customer ? "GET, DELETE, OPTIONS" : "GET, OPTIONS");
    }
  }
  Response res = ErrorResponse(404, "not_found",
                               "no such endpoint: " + std::string(path) +
                                   " (ingest is POST /v1/batch, /v1/track, /v1/page, "
                                   "/v1/identify, /v1/screen, /v1/alias, /v1/group; "
                                   "docs/api.md lists every route)",
                               version);
  AddCors(request, nullptr, res);
  respond(std::move(res));
}


Response Router::HandlePreflight(const Request& request) {
  auto origin = request[http::field::origin];
  if (origin.empty()) {
    // Not a CORS preflight: a plain OPTIONS asking what the resource allows.
    Response res{http::status::no_content, request.version()};
    res.set(http::field::allow, "GET, POST, DELETE, OPTIONS");
    return res;
  }
  if (!OriginAllowed(nullptr, origin)) {
    Response res = ErrorResponse(
        403, "origin_not_allowed",
        "origin " + std::string(origin) +
            " is not in allowed_origins of any site; add it to the site's allowed_origins",
        request.version());
    res.set(http::field::vary, "Origin");
    return res;
  }
  Response res{http::status::no_content, request.version()};
  res.set(http::field::access_control_allow_origin, origin);
  res.set(http::field::access_control_allow_credentials, "true");
  res.set(http::field::access_control_allow_methods, "POST, GET, DELETE, OPTIONS");
  auto asked = request[http::field::access_control_request_headers];
  res.set(http::field::access_control_allow_headers,
          asked.empty() ? std::string_view("Authorization, Content-Type, Content-Encoding")
                        : std::string_view(asked));
  res.set(http::field::access_control_max_age, "86400");
  res.set(http::field::vary, "Origin, Access-Control-Request-Headers");
  return res;
}

void Router::HandleIngest(Request&& request, std::string_view route_name, std::string_view query,
                          Respond respond, const boost::asio::ip::address& client) {
  const unsigned version = request.version();
  const auto arrived = std::chrono::steady_clock::now();
  auto fail = [&](const SiteState* site, Response res) {
    NoteRefused(site, route_name, res, client);
    AddCors(request, site, res);
    respond(std::move(res));
  };

  // One client over its own limit is refused before it can use up its site's.
  if (client_limiter_) {
    if (long wait = client_limiter_->Take(client)) {
      Response res = ErrorResponse(
          429, "client_rate_limited",
          "this client (" + client.to_string() + ") is over its rate limit of " +
              std::to_string(limits_.client_rate_limit) +
              " requests/s; retry after the Retry-After seconds",
          version);
      res.set(http::field::retry_after, std::to_string(wait));
      return fail(nullptr, std::move(res));
    }
  }

  // Write key from Basic auth, when given: checked before any parsing.
  const SiteState* site = nullptr;
  bool malformed_auth = false;
  auto header_key = BasicAuthUser(request[http::field::authorization], &malformed_auth);
  if (malformed_auth) {
    return fail(nullptr, InvalidAuthorization(version));
  }
  auto resolve_site = [&](std::string_view key) -> std::optional<Response> {
    if (key.empty()) {
      return ErrorResponse(401, "missing_write_key",
                           "no write key: send it as the Basic auth user name or as "
                           "\"writeKey\" in the body",
                           version);
    }
    site = SiteByWriteKey(key);
    if (!site) return UnknownWriteKey(version);
    auto origin = request[http::field::origin];
    if (!origin.empty() && !OriginAllowed(site, origin)) {
      return ErrorResponse(403, "origin_not_allowed",
                           "origin " + std::string(origin) + " is not in allowed_origins of site " +
                               site->site.name,
                           version);
    }
    if (long wait = TakeToken(*site)) {
      Response res = ErrorResponse(429, "rate_limited",
                                   "site " + site->site.name + " is over its rate limit of " +
                                       std::to_string(site->site.rate_limit) +
                                       " requests/s; retry after the Retry-After seconds",
                                   version);
      res.set(http::field::retry_after, std::to_string(wait));
      return res;
    }
    return std::nullopt;
  };
  // Else from the query ("?writeKey=", RudderStack's beacon route), else from the body.
  if (!header_key && !query.empty()) {
    auto params = ParseQuery(query);
    if (!params) {
      return fail(nullptr, ErrorResponse(400, "invalid_query",
                                         "the query string has a malformed %-escape", version));
    }
    for (auto& [name, value] : *params) {
      if (name == "writeKey") header_key = std::move(value);
    }
  }
  if (header_key) {
    if (auto refused = resolve_site(*header_key)) return fail(site, std::move(*refused));
  }

  std::string body = std::move(request.body());
  auto encoding = Trim(request[http::field::content_encoding]);
  if (IEquals(encoding, "gzip") || IEquals(encoding, "x-gzip")) {
    std::string inflated;
    switch (Gunzip(body, limits_.max_request_bytes, simdjson::SIMDJSON_PADDING, inflated)) {
      case InflateResult::kOk:
        body = std::move(inflated);
        break;
      case InflateResult::kTooLarge:
        return fail(site, ErrorResponse(413, "payload_too_large",
                                        "the gzip body inflates to more than " +
                                            std::to_string(limits_.max_request_bytes) +
                                            " bytes; send smaller batches",
                                        version));
      case InflateResult::kCorrupt:
        return fail(site, ErrorResponse(400, "malformed_gzip",
                                        "Content-Encoding is gzip but the body is not a "
                                        "complete gzip stream",
                                        version));
    }
  } else if (!encoding.empty() && !IEquals(encoding, "identity")) {
    return fail(site, ErrorResponse(415, "unsupported_content_encoding",
                                    "Content-Encoding " + std::string(encoding) +
                                        " is not accepted; send gzip or no encoding",
                                    version));
  }

  Route route = Route::kBatch;
  if (route_name != "batch" && route_name != "import") route = *RouteFromType(route_name);
  ParsedRequest parsed = ParseIngest(body, route, util::NowMs(), limits_);
  if (parsed.error) {
    // The body is read as JSON whatever its declared type, as Segment's and RudderStack's
    // servers do; a sender whose form or multipart body fails says so here.
    std::string message = std::move(parsed.error->message);
    auto content_type = request[http::field::content_type];
    std::string_view media = Trim(content_type.substr(0, content_type.find(';')));
    if (parsed.error->code == "malformed_json" && !media.empty() &&
        !IEquals(media, "application/json") && !IEquals(media, "text/plain")) {
      message += " (the body is read as JSON whatever its Content-Type; this one was declared " +
                 std::string(media) + ")";
    }
    return fail(site, ErrorResponse(parsed.error->status, parsed.error->code, message, version));
  }
  if (!site) {
    if (auto refused = resolve_site(parsed.write_key)) return fail(site, std::move(*refused));
  }
  if (!parsed.rejected.empty()) NoteRejected(*site, route_name, parsed.rejected, client);
  if (parsed.accepted.empty()) {
    // Only a batch gets here (a single bad message is parsed.error): nothing to store.
    boost::json::object body_json{
        {"error", boost::json::object{{"code", "no_valid_messages"},
                                      {"message", "none of the " +
                                                      std::to_string(parsed.rejected.size()) +
                                                      " messages is valid; see \"rejected\""}}},
        {"accepted", 0},
        {"rejected", boost::json::parse(RejectionsJson(parsed.rejected))}};
    return fail(site, JsonResponse(400, boost::json::serialize(body_json), version));
  }

  // Everything needed after the commit is moved into the callback; the request is gone.
  Response ok = JsonResponse(200, "", version);
  AddCors(request, site, ok);
  if (parsed.rejected.empty()) {
    ok.body() = kSuccessBody;
  } else {
    ok.body() = R"({"success":true,"accepted":)" + std::to_string(parsed.accepted.size()) +
                R"(,"rejected":)" + RejectionsJson(parsed.rejected) + "}";
  }
  store_.Append(site->site.name, std::move(parsed.accepted),
                [ok = std::move(ok), respond = std::move(respond), version, arrived,
                 counters = counters_.get(), site_counters = site->counters,
                 by_type = parsed.accepted_by_type](const storage::AppendResult& result) mutable {
                  if (result.error) {
                    Response res = StorageErrorResponse(result.error, version);
                    CopyCors(ok, res);
                    return respond(std::move(res));
                  }
                  if (site_counters != nullptr) {
                    for (std::size_t t = 0; t < by_type.size(); ++t) {
                      if (by_type[t] > 0) site_counters->accepted[t]->Increment(by_type[t]);
                    }
                    if (result.duplicates > 0) {
                      site_counters->duplicates->Increment(static_cast<double>(result.duplicates));
                    }
                  }
                  if (counters != nullptr) {
                    counters->IngestDuration(std::chrono::steady_clock::now() - arrived);
                  }
                  respond(std::move(ok));
                });
}

void Router::NoteRefused(const SiteState* site, std::string_view route, const Response& response,
                         const boost::asio::ip::address& client) {
  refusals_.Write(log::Level::kWarn, "request refused", [&](log::Line& line) {
    // The error body is ours: {"error": {"code": ..., ...}}.
    std::string code;
    boost::system::error_code ec;
    const boost::json::value doc = boost::json::parse(response.body(), ec);
    if (const auto* error = doc.is_object() ? doc.as_object().if_contains("error") : nullptr;
        error && error->is_object()) {
      if (const auto* c = error->as_object().if_contains("code"); c && c->is_string()) {
        code = c->as_string();
      }
    }
    line.Add("site", site ? std::string_view(site->site.name) : "")
        .Add("route", route)
        .Add("status", response.result_int())
        .Add("reason", code)
        .Add("client", client.to_string());
  });
}

void Router::NoteRejected(const SiteState& site, std::string_view route,
                          const std::vector<Rejection>& rejected,
                          const boost::asio::ip::address& client) {
  if (site.counters != nullptr) {
    for (const Rejection& r : rejected) counters_->Rejected(*site.counters, r.code);
  }
  // One line a request, naming its first refusal and how many there were.
  refusals_.Write(log::Level::kWarn, "messages rejected", [&](log::Line& line) {
    const Rejection& first = rejected.front();
    line.Add("site", site.site.name)
        .Add("route", route)
        .Add("rejected", rejected.size())
        .Add("reason", first.code)
        .Add("index", first.index)
        .Add("detail", first.message)
        .Add("client", client.to_string());
  });
}

void Router::HandlePixel(Request&& request, std::string_view type, std::string_view query,
                         Respond respond, const boost::asio::ip::address& client) {
  const unsigned version = request.version();
  auto route = RouteFromType(type);
  if (!route) {
    return respond(ErrorResponse(404, "not_found",
                                 "no pixel for type \"" + std::string(type) +
                                     "\"; use /v1/pixel/track, page, identify, screen, alias "
                                     "or group",
                                 version));
  }
  std::optional<std::string> data;
  auto params = ParseQuery(query);
  if (!params) {
    return respond(ErrorResponse(400, "invalid_query",
                                 "the query string has a malformed %-escape", version));
  }
  for (auto& [key, value] : *params) {
    if (key == "data") data = value;
  }
  if (!data) {
    return respond(ErrorResponse(400, "missing_data",
                                 "the pixel needs ?data=<base64 of one JSON message>", version));
  }
  // Pixels are often built without percent-encoding, and a raw '+' then reads as a space.
  std::replace(data->begin(), data->end(), ' ', '+');
  auto decoded = util::Base64Decode(*data);
  if (!decoded) {
    return respond(ErrorResponse(400, "invalid_data", "?data= is not valid base64", version));
  }
  Request inner{http::verb::post, std::string("/v1/") + std::string(type), version};
  inner.set(http::field::content_type, "application/json");
  for (auto field : {http::field::authorization, http::field::origin}) {
    if (auto v = request[field]; !v.empty()) inner.set(field, v);
  }
  inner.body() = std::move(*decoded);
  HandleIngest(std::move(inner), type, {}, [respond = std::move(respond)](Response&& res) {
                 if (res.result() == http::status::ok) {
                   Response gif{http::status::ok, res.version()};
                   gif.set(http::field::content_type, "image/gif");
                   gif.set(http::field::cache_control, "no-store");
                   gif.body().assign(reinterpret_cast<const char*>(kPixelGif), sizeof kPixelGif);
                   return respond(std::move(gif));
                 }
                 respond(std::move(res));
               }, client);
}




namespace {

RouteLabel PublicRouteLabel(std::string_view path) {
  static constexpr std::pair<std::string_view, RouteLabel> kIngest[] = {
      {"batch", RouteLabel::kBatch},       {"track", RouteLabel::kTrack},
      {"page", RouteLabel::kPage},         {"identify", RouteLabel::kIdentify},
      {"screen", RouteLabel::kScreen},     {"alias", RouteLabel::kAlias},
      {"group", RouteLabel::kGroup}};
  if (const std::string_view route = IngestRoute(path); !route.empty()) {
    for (const auto& [name, label] : kIngest) {
      if (name == route) return label;
    }
  }
  if (path == "/cartwatch.js") return RouteLabel::kTracker;
  if (path == "/v1/events") return RouteLabel::kEvents;
  if (path == "/v1/deliveries" || path.starts_with("/v1/deliveries/")) return RouteLabel::kDeliveries;
  if (path.starts_with("/v1/endpoints/")) return RouteLabel::kEndpoints;
  if (path.starts_with("/v1/pixel/")) return RouteLabel::kPixel;
  if (path.starts_with("/v1/customers/")) return RouteLabel::kCustomers;
  if (path.starts_with("/v1/visitors/")) return RouteLabel::kVisitors;
  return RouteLabel::kOther;
}


}  // namespace




}  // namespace cartwatch::collector
