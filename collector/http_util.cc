#include "collector/http_util.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <boost/json.hpp>

#include "storage/types.h"
#include "util/base64.h"
#include "util/utf8.h"

namespace cartwatch::collector {

Response ErrorResponse(unsigned status, std::string_view code, std::string_view message,
                       unsigned version) {
  // Messages quote what the client sent (a path, an origin, a header): Boost.JSON copies
  // strings' bytes as they are, so invalid UTF-8 would make the body invalid JSON.
  boost::json::object error{{"code", code}, {"message", util::ToValidUtf8(message)}};
  return JsonResponse(status, boost::json::serialize(boost::json::object{{"error", error}}),
                      version);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Response JsonResponse(unsigned status, std::string body, unsigned version) {
  Response res{static_cast<http::status>(status), version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

// "Basic base64(key:)" -> key. nullopt when the header is absent or not Basic.
// Sets *malformed for a Basic header that does not decode.
std::optional<std::string> BasicAuthUser(std::string_view header, bool* malformed) {
  header = Trim(header);
  if (header.size() < 6 || !IEquals(header.substr(0, 6), "basic ")) return std::nullopt;
  auto decoded = util::Base64Decode(Trim(header.substr(6)));
  if (!decoded) {
    *malformed = true;
    return std::nullopt;
  }
  return decoded->substr(0, decoded->find(':'));
}

std::optional<std::string_view> BearerToken(std::string_view header) {
  header = Trim(header);
  if (header.size() < 7 || !IEquals(header.substr(0, 7), "bearer ")) return std::nullopt;
  return Trim(header.substr(7));
}

// "a%2Fb" -> "a/b". nullopt for a malformed percent escape.
std::optional<std::string> PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16);
    if (ec != std::errc() || end != in.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

// Splits "a=1&b=%2F" into decoded pairs. nullopt for a malformed percent escape.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view q) {
  const auto decode = PercentDecode;
  std::vector<std::pair<std::string, std::string>> params;
  while (!q.empty()) {
    std::string_view part = q.substr(0, q.find('&'));
    q.remove_prefix(std::min(q.size(), part.size() + 1));
    if (part.empty()) continue;
    auto eq = part.find('=');
    auto key = decode(part.substr(0, eq));
    auto value = decode(eq == std::string_view::npos ? "" : part.substr(eq + 1));
    if (!key || !value) return std::nullopt;
    params.emplace_back(std::move(*key), std::move(*value));
  }
  return params;
}

// The CORS headers of the answer prepared for success, onto the error that replaces it.
void CopyCors(const Response& prepared, Response& error) {
  for (const char* h : {"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Vary"}) {
    if (auto v = prepared[h]; !v.empty()) error.set(h, v);
  }
}

Response StorageErrorResponse(const boost::system::error_code& ec, unsigned version,
                              StorageOp op) {
  using storage::Errc;
  if (ec == storage::make_error_code(Errc::kOverloaded)) {
    Response res = ErrorResponse(503, "overloaded",
                                 "the collector is writing as fast as it can; retry shortly",
                                 version);
    res.set(http::field::retry_after, "1");
    return res;
  }
  if (ec == storage::make_error_code(Errc::kClosed)) {
    Response res = ErrorResponse(503, "shutting_down",
                                 "the collector is shutting down; retry shortly", version);
    res.set(http::field::retry_after, "5");
    return res;
  }
  if (ec == storage::make_error_code(Errc::kNoSpace)) {
    Response res = ErrorResponse(503, "storage_full",
                                 "the collector's disk is full; nothing from this request was "
                                 "stored; retry after the Retry-After seconds",
                                 version);
    res.set(http::field::retry_after, "30");
    return res;
  }
  if (ec == storage::make_error_code(Errc::kIoError)) {
    Response res = ErrorResponse(503, "storage_unavailable",
                                 "the collector's storage is failing (" + ec.message() +
                                     "); nothing from this request was stored; retry after the "
                                     "Retry-After seconds",
                                 version);
    res.set(http::field::retry_after, "10");
    return res;
  }
  const std::string why = " (" + ec.message() + ")";
  switch (op) {
    case StorageOp::kRead:
      return ErrorResponse(500, "storage_error", "the stored data could not be read" + why,
                           version);
    case StorageOp::kErase:
      return ErrorResponse(500, "storage_error",
                           "the erase could not be written" + why + "; nothing was erased, retry",
                           version);
    case StorageOp::kChange:
      return ErrorResponse(500, "storage_error",
                           "the change could not be written" + why + "; nothing changed, retry",
                           version);
    case StorageOp::kStore:
      break;
  }
  return ErrorResponse(500, "storage_error",
                       "the messages could not be stored" + why +
                           "; nothing from this request was kept, retry later",
                       version);
}

}  // namespace cartwatch::collector
