// fuzz_http: the bytes a client sends on one connection, up to and through the Router.
//
// The input is parsed as collector/session.cc parses a connection: a Beast
// request_parser<string_body> per request, with the header and body limits of the
// collector's Limits; from the header alone CheckFraming and Router::CheckHeader may refuse
// it; the body is reserved with kBodyPadding once Content-Length is known; pipelined
// requests are read one after the other until one is incomplete, malformed, refused or not
// keep-alive. Each whole request goes to Router::HandleAdmin and Router::Handle (three
// sites, per-client rate limits from a trusted proxy when the input has an X-Forwarded-For,
// over an in-memory FakeStore: fuzz_router.h).
//
// What it proves, for any bytes: no crash, leak or undefined behaviour in Beast's parsing
// with our limits, in the Router, ingest, gzip, the profiles library and its codec, and the
// rendering of profiles; each request's response callback runs exactly once; every JSON
// response (and every line of an export) parses with Boost.JSON; every error is
// {"error":{"code","message"}}; no response header carries CR, LF or NUL. (UTF-8 of JSON
// bodies: only reported, unless built with CARTWATCH_FUZZ_STRICT_UTF8.)
#include <cstddef>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_router.h"

namespace {

using namespace cartwatch;
namespace http = boost::beast::http;

constexpr int kMaxRequests = 12;  // per input: enough to store, then read back and erase

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  // Per-client rate limits only for inputs that name a client (X-Forwarded-For, any case):
  // their table would cost every input more than its requests.
  std::string lower(rest);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool client_limits = lower.find("x-forwarded-for") != std::string::npos;
  const collector::Limits limits = fuzz::FuzzLimits(client_limits);
  fuzz::FakeStore store;
  fuzz::RouterRun run(store, client_limits);

  for (int n = 0; n < kMaxRequests && !rest.empty(); ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_request_bytes);
    boost::system::error_code ec;

    // The header first, then what Session::OnHeader decides from it alone (ambiguous
    // framing, an unknown write key: answered, then the connection closes), then the body's
    // capacity as Session reserves it.
    parser.eager(false);
    rest.remove_prefix(parser.put(boost::asio::buffer(rest.data(), rest.size()), ec));
    if (ec || !parser.is_header_done()) return 0;  // incomplete, or Session answers 4xx and closes
    std::optional<collector::Response> refused = collector::CheckFraming(parser.get());
    if (!refused && !parser.is_done()) refused = run.router().CheckHeader(parser.get());
    if (refused) {
      fuzz::CheckResponse(*refused, "refused from the header");
      return 0;
    }
    if (auto length = parser.content_length(); length && *length <= limits.max_request_bytes) {
      parser.get().body().reserve(static_cast<std::size_t>(*length) + collector::kBodyPadding);
    }
    parser.eager(true);
    while (!parser.is_done()) {
      const std::size_t used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(used);
      if (ec == http::error::need_more && used > 0 && !rest.empty()) continue;
      if (ec || used == 0) return 0;  // incomplete, over the body limit, or malformed
    }

    const bool keep_alive = parser.get().keep_alive();
    run.Handle(parser.release());
    if (!keep_alive) break;  // Session closes after answering
  }
  return 0;
}
