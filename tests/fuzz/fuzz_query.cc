// fuzz_query: the query API's ids and cursors.
//
// Input: ID '\n' AFTER '\n' LIMIT (each part raw bytes; later parts may be missing).
//  1. storage::DecodeCursor on AFTER and on ID: it accepts exactly 16 hex digits, and then
//     EncodeCursor gives them back in lower case and decodes to the same number; any 8
//     bytes of the input, as a number, survive EncodeCursor + DecodeCursor.
//  2. Through Router::Handle (with Authorization: Bearer sk, over a FakeStore that already
//     holds a few customers and visitors): GET /v1/customers/ID, GET /v1/visitors/ID,
//     GET /v1/events?after=AFTER&limit=LIMIT, DELETE /v1/customers/ID. Nothing is escaped:
//     each request line is parsed by Beast first, as a connection would be, and skipped when
//     Beast refuses it. Answers are 200, 202, 400 or 404 only, with the checks of every
//     response (fuzz_router.h); an export with a well-formed cursor and limit is a 200 whose
//     Cartwatch-Cursor is a cursor.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "collector/ingest.h"
#include "fuzz_router.h"

namespace {

using namespace cartwatch;
namespace http = boost::beast::http;

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsCursor(std::string_view s) {
  if (s.size() != 16) return false;
  for (char c : s) {
    if (!IsHex(c)) return false;
  }
  return true;
}

void CheckCursor(std::string_view s) {
  const std::optional<std::uint64_t> v = storage::DecodeCursor(s);
  CARTWATCH_FUZZ_CHECK(v.has_value() == IsCursor(s), s);
  if (!v) return;
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  CARTWATCH_FUZZ_CHECK(storage::EncodeCursor(*v) == lower, s);
}

void CheckNumber(std::uint64_t v) {
  const std::string s = storage::EncodeCursor(v);
  CARTWATCH_FUZZ_CHECK(IsCursor(s) && storage::DecodeCursor(s) == v, s);
}

// A store with a few people in it, built once through ParseIngest as the collector would.
const fuzz::FakeStore& Prototype() {
  static const fuzz::FakeStore* const store = [] {
    auto* s = new fuzz::FakeStore;
    std::string body = R"({"batch":[
      {"type":"identify","anonymousId":"a-1","userId":"ada","traits":{"email":"ada@example.com","firstName":"Ada"},"timestamp":"2026-11-23T12:00:00Z"},
      {"type":"page","anonymousId":"a-1","name":"Home","properties":{"url":"https://shop.example/?utm_source=news"}},
      {"type":"track","anonymousId":"a-1","event":"Product Added","properties":{"product_id":"sku-1","price":19.9,"quantity":2,"category":"Shoes","brand":"Acme"}},
      {"type":"track","userId":"ada","event":"Order Completed","properties":{"order_id":"o-1","total":39.8,"currency":"EUR","products":[{"product_id":"sku-1","price":19.9,"quantity":2}]}},
      {"type":"identify","anonymousId":"v/2","userId":"a/b","traits":{"name":"Slash"}},
      {"type":"page","anonymousId":"x y","name":"Spaced"},
      {"type":"identify","anonymousId":"\u00fc-1","userId":"\u00fcser","traits":{"name":"\u00dc"}}
    ]})";
    auto parsed = collector::ParseIngest(body, collector::Route::kBatch, util::NowMs(),
                                         fuzz::FuzzLimits());
    s->Append("shop", std::move(parsed.accepted), [](const storage::AppendResult&) {});
    return s;
  }();
  return *store;
}

// `line` + Host and the secret key, parsed as a connection would; nullopt when Beast refuses.
std::optional<collector::Request> Parse(const std::string& line) {
  const std::string raw = line + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk\r\n\r\n";
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(raw), ec);
  if (ec || !parser.is_done()) return std::nullopt;
  return parser.release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nl1 = input.find('\n');
  const std::string_view id = input.substr(0, nl1);
  std::optional<std::string_view> after, limit;
  if (nl1 != std::string_view::npos) {
    const std::string_view rest = input.substr(nl1 + 1);
    const std::size_t nl2 = rest.find('\n');
    after = rest.substr(0, nl2);
    if (nl2 != std::string_view::npos) limit = rest.substr(nl2 + 1);
  }

  // 1. The cursor codec.
  CheckCursor(id);
  if (after) CheckCursor(*after);
  if (size >= 8) {
    std::uint64_t v;
    std::memcpy(&v, data, 8);
    CheckNumber(v);
    CheckNumber(~v);
  }

  // 2. The query API. One Router for every input (building one costs more than the requests:
  // its two threads), over a store reset to the prototype's contents; site "shop" has no
  // rate limit, so the answers depend on the input alone.
  static fuzz::FakeStore store;
  static fuzz::RouterRun run(store);
  store.ResetTo(Prototype());
  auto handle = [&](const std::string& line) -> std::optional<collector::Response> {
    auto request = Parse(line);
    if (!request) return std::nullopt;
    collector::Response res = run.Handle(std::move(*request));
    const unsigned status = res.result_int();
    CARTWATCH_FUZZ_CHECK(status == 200 || status == 202 || status == 400 || status == 404,
                         line + " -> " + std::to_string(status) + " " + res.body());
    return res;
  };
  handle("GET /v1/customers/" + std::string(id));
  handle("GET /v1/visitors/" + std::string(id));

  std::string events = "GET /v1/events";
  if (after) events += "?after=" + std::string(*after);
  if (limit) events += "&limit=" + std::string(*limit);
  if (auto res = handle(events); res && after && IsCursor(*after)) {
    // A cursor needs no escape; the limit is fine when it is a number from 1 to the maximum.
    std::size_t n = 0;
    bool limit_ok = true;
    if (limit) {
      auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
      limit_ok = ec == std::errc() && end == limit->data() + limit->size() && n >= 1 &&
                 n <= fuzz::FuzzLimits().events_page_max;
    }
    if (limit_ok) {
      CARTWATCH_FUZZ_CHECK(res->result_int() == 200, events + " -> " + res->body());
      const std::string_view cursor = (*res)["Cartwatch-Cursor"];
      CARTWATCH_FUZZ_CHECK(cursor == *after || (IsCursor(cursor) && storage::DecodeCursor(cursor) >
                                                                        storage::DecodeCursor(*after)),
                           std::string(cursor));
    }
  }
  handle("DELETE /v1/customers/" + std::string(id));
  run.Drain();
  return 0;
}
