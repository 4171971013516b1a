// fuzz_ingest: collector::ParseIngest, the parse and validation of every ingest body.
//
// The input is a request body (already decompressed); it is parsed once for each Route.
// What it proves, for any bytes and every route: no crash, leak or undefined behaviour, and
// the contract of collector/ingest.h:
//  - the body changes only where a lone surrogate escape is repaired (same length);
//  - a whole-request error has a status of 400 or 413 and comes with nothing accepted or
//    rejected; a body Boost.JSON parses (the repaired body, depth aside) is never
//    "malformed_json", and "malformed_json" is only for what Boost.JSON refuses too, what
//    is too deep for it, or a number whose exponent has more than 9 digits;
//    "batch_too_large" may come before the end of a malformed body;
//  - a single-message route accepts exactly one message or fails as a whole;
//  - rejections are in batch order;
//  - every accepted message is one line of compact JSON that Boost.JSON parses with its
//    defaults (depth 32, strict UTF-8), an object with exactly one "messageId" (a string
//    equal to Message::message_id), "type" (a Segment type; the route's for
//    single-message routes), "timestamp" and "receivedAt" (ISO-8601; receivedAt the time
//    given), no "writeKey", and at most one "sentAt", "originalTimestamp" and "context"; it
//    is at most max_message_bytes + 256 bytes.
// Error and rejection messages must be valid UTF-8 only with CARTWATCH_FUZZ_STRICT_UTF8.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "collector/ingest.h"
#include "fuzz_check.h"

namespace {

using namespace cartwatch;
namespace od = simdjson::ondemand;

constexpr util::EpochMs kReceivedAt = 1795437845123;  // 2026-11-23T09:24:05.123Z

// How often each top-level key occurs in `json` (Boost.JSON keeps only one of duplicates).
std::map<std::string, int> TopLevelKeys(const std::string& json) {
  thread_local od::parser parser;
  simdjson::padded_string padded(json);
  std::map<std::string, int> keys;
  od::document doc;
  od::object object;
  CARTWATCH_FUZZ_CHECK(!parser.iterate(padded).get(doc) && !doc.get_object().get(object), json);
  for (auto field : object) {
    std::string_view key;
    CARTWATCH_FUZZ_CHECK(!field.unescaped_key().get(key), json);
    ++keys[std::string(key)];
  }
  return keys;
}

// Whether `body` holds a number whose exponent has more than 9 significant digits (scanned
// as bytes: it may also match inside a string). Such numbers are 0 or infinite as doubles;
// Boost.JSON refuses those past INT_MAX, and ParseIngest may refuse all of them.
bool HasHugeExponent(std::string_view body) {
  for (std::size_t i = 1; i < body.size(); ++i) {
    if ((body[i] != 'e' && body[i] != 'E') || body[i - 1] < '0' || body[i - 1] > '9') continue;
    std::size_t j = i + 1;
    if (j < body.size() && (body[j] == '+' || body[j] == '-')) ++j;
    while (j < body.size() && body[j] == '0') ++j;
    std::size_t digits = 0;
    while (j < body.size() && body[j] >= '0' && body[j] <= '9') ++j, ++digits;
    if (digits > 9) return true;
  }
  return false;
}

// No whitespace outside strings (JSON strings hold none unescaped but spaces).
bool IsCompact(std::string_view json) {
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      else if (c == '\n' || c == '\r' || c == '\t') return false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      return false;
    }
  }
  return true;
}

void CheckText(std::string_view text) {
  if (!fuzz::IsValidUtf8(text)) fuzz::NonUtf8Body("ParseIngest error message", text, true);
}

void CheckMessage(const storage::Message& m, collector::Route route,
                  const collector::Limits& limits) {
  const std::string& json = m.json;
  CARTWATCH_FUZZ_CHECK(json.size() <= limits.max_message_bytes + 256, json);
  CARTWATCH_FUZZ_CHECK(IsCompact(json), "not one line of compact JSON: " + json);
  CARTWATCH_FUZZ_CHECK(m.received_at_ms == kReceivedAt, json);
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(json, ec);  // Boost.JSON's defaults
  CARTWATCH_FUZZ_CHECK(!ec, ec.message() + ": " + json);
  CARTWATCH_FUZZ_CHECK(v.is_object(), json);
  const boost::json::object& o = v.as_object();

  const std::map<std::string, int> keys = TopLevelKeys(json);
  auto count = [&](const char* key) {
    auto it = keys.find(key);
    return it == keys.end() ? 0 : it->second;
  };
  for (const char* key : {"messageId", "type", "timestamp", "receivedAt"}) {
    CARTWATCH_FUZZ_CHECK(count(key) == 1, std::string(key) + " in " + json);
  }
  for (const char* key : {"sentAt", "originalTimestamp", "context", "userId", "anonymousId",
                          "previousId", "event"}) {
    CARTWATCH_FUZZ_CHECK(count(key) <= 1, std::string(key) + " in " + json);
  }
  CARTWATCH_FUZZ_CHECK(count("writeKey") == 0, json);

  CARTWATCH_FUZZ_CHECK(o.at("messageId").is_string() && o.at("messageId").as_string() == m.message_id,
                       json);
  CARTWATCH_FUZZ_CHECK(!m.message_id.empty(), json);
  const auto& type = o.at("type");
  CARTWATCH_FUZZ_CHECK(type.is_string(), json);
  const std::string_view t = type.as_string();
  CARTWATCH_FUZZ_CHECK(t == "track" || t == "page" || t == "identify" || t == "screen" ||
                           t == "alias" || t == "group",
                       json);
  const std::string_view route_type = collector::RouteType(route);
  CARTWATCH_FUZZ_CHECK(route_type.empty() || t == route_type, json);
  for (const char* key : {"timestamp", "receivedAt"}) {
    CARTWATCH_FUZZ_CHECK(o.at(key).is_string() && util::ParseIso8601(o.at(key).as_string()), json);
  }
  CARTWATCH_FUZZ_CHECK(o.at("receivedAt").as_string() == util::FormatIso8601(kReceivedAt), json);
  if (const auto* sent_at = o.if_contains("sentAt"); sent_at && !sent_at->is_null()) {
    CARTWATCH_FUZZ_CHECK(sent_at->is_string() && util::ParseIso8601(sent_at->as_string()), json);
  }
}

// Boost.JSON's verdict on `body` with a depth limit of `max_depth` (strict UTF-8).
boost::system::error_code BoostVerdict(std::string_view body, std::size_t max_depth) {
  boost::json::parse_options options;
  options.max_depth = max_depth;
  boost::system::error_code ec;
  boost::json::parse(body, ec, {}, options);
  return ec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const collector::Limits limits = fuzz::FuzzLimits();
  if (fuzz::Skipping("huge-exponent") && HasHugeExponent(input)) return 0;

  for (collector::Route route :
       {collector::Route::kBatch, collector::Route::kTrack, collector::Route::kPage,
        collector::Route::kIdentify, collector::Route::kScreen, collector::Route::kAlias,
        collector::Route::kGroup}) {
    // No padding reserved: ParseIngest must reserve it itself.
    std::string body(input);
    collector::ParsedRequest parsed = collector::ParseIngest(body, route, kReceivedAt, limits);
    // ParseIngest repairs lone surrogate escapes in place (to \ufffd, the same length) and
    // changes nothing else; Boost.JSON judges the repaired body. Depth aside (messages may
    // nest 32 levels from themselves, a body 512 in all), which Boost.JSON bounds at 32.
    CARTWATCH_FUZZ_CHECK(body.size() == input.size(), input);
    const boost::system::error_code boost_ec = BoostVerdict(body, 1024);
    const boost::system::error_code boost_ec32 = BoostVerdict(body, 32);
    if (parsed.error) {
      const collector::RequestError& e = *parsed.error;
      CARTWATCH_FUZZ_CHECK(e.status == 400 || e.status == 413, e.code);
      CARTWATCH_FUZZ_CHECK(!e.code.empty() && !e.message.empty(), e.code);
      CARTWATCH_FUZZ_CHECK(parsed.accepted.empty() && parsed.rejected.empty(), e.code);
      CheckText(e.message);
      // malformed_json: what Boost.JSON refuses, or too deep for it (the depth rules), or a
      // number whose exponent has more than 9 digits. A batch over max_batch_messages is
      // refused as soon as the scan counts one too many, before the rest is read.
      const bool malformed = e.code == "malformed_json";
      CARTWATCH_FUZZ_CHECK(
          malformed ? boost_ec || boost_ec32 == boost::json::error::too_deep ||
                          HasHugeExponent(input)
                    : !boost_ec || e.code == "batch_too_large",
          e.code + " / Boost.JSON: " + (boost_ec ? boost_ec.message() : std::string("parses")) +
              ": " + std::string(input));
      continue;
    }
    CARTWATCH_FUZZ_CHECK(!boost_ec, "accepted a body Boost.JSON refuses (" + boost_ec.message() +
                                        "): " + std::string(input));
    CARTWATCH_FUZZ_CHECK(!parsed.accepted.empty() || !parsed.rejected.empty(), input);
    CARTWATCH_FUZZ_CHECK(route == collector::Route::kBatch ||
                             (parsed.rejected.empty() && parsed.accepted.size() == 1),
                         input);
    for (std::size_t i = 1; i < parsed.rejected.size(); ++i) {
      CARTWATCH_FUZZ_CHECK(parsed.rejected[i - 1].index < parsed.rejected[i].index, input);
    }
    for (const collector::Rejection& r : parsed.rejected) {
      CARTWATCH_FUZZ_CHECK(!r.code.empty() && !r.message.empty(), r.code);
      CheckText(r.message);
    }
    for (const storage::Message& m : parsed.accepted) CheckMessage(m, route, limits);
  }
  return 0;
}
