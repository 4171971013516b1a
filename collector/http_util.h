// What the router's handlers share (collector/router.cc, query_api.cc, admin.cc): header
// parsing, query strings, JSON answers, and the answer to a storage error. Private to
// collector/. Pure functions: safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/system/error_code.hpp>

#include "collector/router.h"
#include "util/ascii.h"

namespace cartwatch::collector {

using util::IEquals;  // util/ascii.h

// Without leading and trailing spaces and tabs.
std::string_view Trim(std::string_view s);
// A JSON answer (Content-Type application/json, Cache-Control no-store).
Response JsonResponse(unsigned status, std::string body, unsigned version);

// "Basic base64(key:)" -> key. nullopt when the header is absent or not Basic.
// Sets *malformed for a Basic header that does not decode.
std::optional<std::string> BasicAuthUser(std::string_view header, bool* malformed);
// "Bearer <token>" -> token; nullopt when the header is absent or not Bearer.
std::optional<std::string_view> BearerToken(std::string_view header);
// "a%2Fb" -> "a/b". nullopt for a malformed percent escape.
std::optional<std::string> PercentDecode(std::string_view in);
// Splits "a=1&b=%2F" into decoded pairs. nullopt for a malformed percent escape.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view q);

// The CORS headers of the answer prepared for success, onto the error that replaces it.
void CopyCors(const Response& prepared, Response& error);

// What the failed storage operation was, for the 500's message.
enum class StorageOp { kStore, kRead, kErase, kChange };
// The answer to a storage error: 503 with Retry-After for what passes (overloaded, shutting
// down, a full disk, failing storage), else 500 saying what was not done.
Response StorageErrorResponse(const boost::system::error_code& ec, unsigned version,
                              StorageOp op = StorageOp::kStore);

}  // namespace cartwatch::collector
