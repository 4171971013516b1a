#include "collector/tracker_script.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "collector/gzip.h"
#include "collector/http_util.h"

namespace cartwatch::embedded {
// Generated from sdk-js/dist/cartwatch.min.js by cmake/EmbedFile.cmake.
extern const unsigned char kTrackerScript[];
extern const std::size_t kTrackerScriptSize;
}  // namespace cartwatch::embedded

namespace cartwatch::collector {

namespace {

std::optional<TrackerScript> Build() {
  if (embedded::kTrackerScriptSize == 0) return std::nullopt;
  TrackerScript script;
  script.body = std::string_view(reinterpret_cast<const char*>(embedded::kTrackerScript),
                                 embedded::kTrackerScriptSize);
  script.gzipped = GzipCompress(script.body);
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (unsigned char c : script.body) hash = (hash ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  script.version = hex;
  script.etag = "\"" + script.version + "\"";
  return script;
}

}  // namespace

namespace {

// Whether an Accept-Encoding header accepts gzip: listed (or "*") with a q-value above 0.
bool AcceptsGzip(std::string_view accept_encoding) {
  while (!accept_encoding.empty()) {
    const std::size_t comma = accept_encoding.find(',');
    std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding = comma == std::string_view::npos ? std::string_view()
                                                      : accept_encoding.substr(comma + 1);
    const std::size_t semi = item.find(';');
    const std::string_view coding = Trim(item.substr(0, semi));
    if (!IEquals(coding, "gzip") && !IEquals(coding, "x-gzip") && coding != "*") continue;
    if (semi == std::string_view::npos) return true;
    std::string_view param = Trim(item.substr(semi + 1));
    if (param.size() < 2 || !IEquals(param.substr(0, 2), "q=")) return true;
    param.remove_prefix(2);
    // q=0, q=0.0, q=0.00, q=0.000 refuse it; anything else accepts.
    return param.find_first_not_of("0.") != std::string_view::npos;
  }
  return false;
}

// Whether an If-None-Match header matches `etag` (weak comparison, RFC 9110 13.1.2).
bool EtagMatches(std::string_view if_none_match, std::string_view etag) {
  if (Trim(if_none_match) == "*") return true;
  while (!if_none_match.empty()) {
    const std::size_t comma = if_none_match.find(',');
    std::string_view tag = Trim(if_none_match.substr(0, comma));
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

const TrackerScript* EmbeddedTracker() {
  static const std::optional<TrackerScript> script = Build();
  return script ? &*script : nullptr;
}

Response TrackerResponse(const Request& request, std::string_view query) {
  const unsigned version = request.version();
  const TrackerScript* script = EmbeddedTracker();
  if (script == nullptr) {
    Response res = ErrorResponse(404, "tracker_not_built",
                                 "this cartwatch was built without the tracker: run npm ci "
                                 "--prefix sdk-js && npm run --prefix sdk-js build, then build "
                                 "cartwatch again",
                                 version);
    res.set(http::field::access_control_allow_origin, "*");
    return res;
  }
  // A URL that names this version (?v=<version>, as the snippet in sdk-js/README.md may
  // pin) can be cached for good; the plain URL for an hour, then revalidated by ETag, so
  // that a new tracker reaches every storefront within the hour.
  bool pinned = false;
  if (auto params = ParseQuery(query)) {
    for (const auto& [name, value] : *params) {
      if (name == "v" && value == script->version) pinned = true;
    }
  }
  const bool gzip = AcceptsGzip(request[http::field::accept_encoding]);
  const bool not_modified = EtagMatches(request[http::field::if_none_match], script->etag);
  Response res{not_modified ? http::status::not_modified : http::status::ok, version};
  res.set(http::field::content_type, "text/javascript; charset=utf-8");
  res.set(http::field::cache_control,
          pinned ? "public, max-age=31536000, immutable" : "public, max-age=3600");
  res.set(http::field::etag, script->etag);
  res.set("Cartwatch-Tracker-Version", script->version);
  res.set(http::field::vary, "Accept-Encoding");
  // The script is public: any page may load it, also with crossorigin="anonymous" (for
  // Subresource Integrity) and under Cross-Origin-Embedder-Policy.
  res.set(http::field::access_control_allow_origin, "*");
  res.set("Cross-Origin-Resource-Policy", "cross-origin");
  res.set("X-Content-Type-Options", "nosniff");
  if (not_modified) return res;
  if (gzip) {
    res.set(http::field::content_encoding, "gzip");
    res.body() = script->gzipped;
  } else {
    res.body() = script->body;
  }
  return res;
}

}  // namespace cartwatch::collector
