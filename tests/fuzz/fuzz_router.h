// What fuzz_http and fuzz_query share (tests/fuzz/README.md):
//  - CheckResponse: the invariants every response must keep;
//  - FakeStore: a storage::Store that answers at once from memory (no RocksDB, no threads),
//    built from the profiles library like the real one, so that requests reach the profile
//    rendering and the events export;
//  - RouterRun: one Router over a FakeStore; Handle() sends a request and checks that the
//    response callback runs exactly once and that the response is well formed.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "collector/options.h"
#include "collector/router.h"
#include "collector/session.h"
#include "profiles/codec.h"
#include "profiles/event.h"
#include "profiles/profiles.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "util/time.h"

#include "fuzz_check.h"

namespace cartwatch::fuzz {

namespace http = boost::beast::http;
using collector::Request;
using collector::Response;

// `json` as Boost.JSON reads it, UTF-8 aside (checked separately: NonUtf8Body); fails
// when it does not parse.
inline boost::json::value ParseJsonOrFail(std::string_view json, std::string_view where,
                                          unsigned status) {
  boost::json::parse_options options;
  options.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec, {}, options);
  if (ec == boost::json::error::exponent_overflow && Skipping("huge-exponent")) return {};
  if (ec) Fail("body that claims to be JSON does not parse with boost::json",
               std::string(where) + " (" + ec.message() + "): " + std::string(json));
  if (!IsValidUtf8(json)) NonUtf8Body(where, json, status >= 400);
  return v;
}

// The invariants of every response of the public listener (docs/api.md).
inline void CheckResponse(Response& res, std::string_view where) {
  const unsigned status = res.result_int();
  CARTWATCH_FUZZ_CHECK(status >= 200 && status <= 599, where);
  // No field value may break the head (CR, LF or NUL would split or truncate it).
  for (const auto& field : res) {
    const std::string_view v = field.value();
    CARTWATCH_FUZZ_CHECK(v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos,
                         std::string(where) + ": header " + std::string(field.name_string()) +
                             ": " + std::string(v));
  }
  const std::string_view type = res[http::field::content_type];
  if (type.starts_with("application/json")) {
    boost::json::value v = ParseJsonOrFail(res.body(), where, status);
    if (v.is_null() && Skipping("huge-exponent")) return;
    CARTWATCH_FUZZ_CHECK(v.is_object(), std::string(where) + ": " + res.body());
    if (status >= 400) {
      // Every error is {"error": {"code": "...", "message": "..."}, ...}.
      const auto* error = v.as_object().if_contains("error");
      CARTWATCH_FUZZ_CHECK(error && error->is_object() && error->as_object().contains("code") &&
                               error->as_object().at("code").is_string() &&
                               error->as_object().contains("message"),
                           std::string(where) + ": " + res.body());
    }
  } else if (type.starts_with("application/x-ndjson")) {
    std::string_view body = res.body();
    while (!body.empty()) {
      const std::size_t nl = body.find('\n');
      CARTWATCH_FUZZ_CHECK(nl != std::string_view::npos, std::string(where) + ": no final newline");
      ParseJsonOrFail(body.substr(0, nl), where, status);
      body.remove_prefix(nl + 1);
    }
  } else {
    CARTWATCH_FUZZ_CHECK(status < 400, std::string(where) + ": an error that is not JSON");
  }
  // The bytes Session writes (the fast path that replaces Beast's serializer).
  res.prepare_payload();
  std::string head;
  collector::SerializeHead(res, head);
  CARTWATCH_FUZZ_CHECK(head.ends_with("\r\n\r\n"), head);
}

// ---------------------------------------------------------------------------------------
// FakeStore: the Store contract (storage/store.h) in memory. Append applies the messages
// at once (profiles::ParseEvent + profiles::Apply, as storage/state.cc does) and answers on
// the calling thread; reads re-encode every record through the profiles codec and check
// that it decodes to the same record. Sites named "broken" fail every operation
// (overloaded appends, I/O errors on reads and erases), to reach the routers' error paths.
class FakeStore final : public storage::Store {
 public:
  FakeStore() {
    options_.max_sessions = 3;
    options_.max_viewed_products = 3;
    options_.max_cart_lines = 4;
    options_.max_orders = 3;
    options_.max_visits = 3;
    options_.max_linked_visitors = 2;
  }
  FakeStore(const FakeStore& other) : Store() { ResetTo(other); }
  // Makes this store hold what `other` holds.
  void ResetTo(const FakeStore& other) {
    std::scoped_lock lock(mu_, other.mu_);
    options_ = other.options_;
    sites_ = other.sites_;
  }

  void Append(std::string site, std::vector<storage::Message> messages,
              storage::AppendCallback done) override {
    if (site == "broken") return done({.error = storage::Errc::kOverloaded});
    storage::AppendResult result;
    {
      std::lock_guard lock(mu_);
      Site& s = sites_[site];
      for (storage::Message& m : messages) {
        if (!s.seen_ids.insert(m.message_id).second) {
          ++result.duplicates;
          continue;
        }
        const std::uint64_t id = ++s.last_event_id;
        ApplyLocked(s, m.json);
        s.events.emplace_back(id, std::move(m.json));
        ++result.stored;
      }
    }
    done(result);
  }
  void Flush() override {}
  void SetFlushRequester(storage::FlushRequester*) override {}

  boost::system::result<storage::EventPage> ReadEvents(std::string_view site,
                                                       std::string_view after, std::size_t limit,
                                                       std::size_t max_bytes) override {
    if (site == "broken") return boost::system::error_code(storage::Errc::kCorruption);
    std::uint64_t start = 0;
    if (!after.empty()) {  // as the real store: ReadEventPage in storage/event_log.cc
      auto id = storage::DecodeCursor(after);
      if (!id) return boost::system::error_code(storage::Errc::kInvalidArgument);
      if (*id == UINT64_MAX) return storage::EventPage{{}, std::string(after)};
      start = *id + 1;
    }
    std::lock_guard lock(mu_);
    storage::EventPage page;
    page.next_cursor = std::string(after);
    auto it = sites_.find(std::string(site));
    if (it == sites_.end()) return page;
    std::size_t bytes = 0;
    for (const auto& [id, json] : it->second.events) {
      if (id < start) continue;
      if (page.events.size() >= limit) break;
      page.events.push_back({storage::EncodeCursor(id), json});
      page.next_cursor = page.events.back().cursor;
      bytes += json.size();
      if (bytes >= max_bytes) break;
    }
    return page;
  }

  void EraseCustomer(std::string site, std::string user_id,
                     storage::EraseCallback done) override {
    if (site == "broken") return done({.error = storage::Errc::kIoError});
    storage::EraseResult result;
    {
      std::lock_guard lock(mu_);
      Site& s = sites_[site];
      if (auto c = s.customers.find(user_id); c != s.customers.end()) {
        result.found = true;
        for (const std::string& anonymous_id : c->second.anonymous_ids) {
          auto v = s.visitors.find(anonymous_id);
          if (v == s.visitors.end() || v->second.user_id != user_id) continue;
          s.visitors.erase(v);
          ++result.visitors;
        }
        s.customers.erase(c);
      }
    }
    done(result);
  }
  boost::system::error_code PurgeErasedEvents() override { return {}; }

  boost::system::result<std::optional<profiles::Visitor>> ReadVisitor(
      std::string_view site, std::string_view anonymous_id) override {
    if (site == "broken") return boost::system::error_code(storage::Errc::kIoError);
    std::lock_guard lock(mu_);
    auto s = sites_.find(std::string(site));
    if (s == sites_.end()) return std::optional<profiles::Visitor>();
    auto v = s->second.visitors.find(std::string(anonymous_id));
    if (v == s->second.visitors.end()) return std::optional<profiles::Visitor>();
    return std::optional<profiles::Visitor>(RoundTrip(v->second));
  }
  boost::system::result<std::optional<profiles::Customer>> ReadCustomer(
      std::string_view site, std::string_view user_id) override {
    if (site == "broken") return boost::system::error_code(storage::Errc::kIoError);
    std::lock_guard lock(mu_);
    auto s = sites_.find(std::string(site));
    if (s == sites_.end()) return std::optional<profiles::Customer>();
    auto c = s->second.customers.find(std::string(user_id));
    if (c == s->second.customers.end()) return std::optional<profiles::Customer>();
    return std::optional<profiles::Customer>(RoundTrip(c->second));
  }
  // Computed on every read from the site's customers, as RecomputeThresholds would.
  boost::system::result<std::optional<profiles::SiteThresholds>> ReadThresholds(
      std::string_view site) override {
    std::lock_guard lock(mu_);
    auto s = sites_.find(std::string(site));
    if (s == sites_.end()) return std::optional<profiles::SiteThresholds>();
    const util::EpochMs now = util::NowMs();
    std::vector<profiles::RfmValues> values;
    for (const auto& [id, customer] : s->second.customers) {
      if (auto v = profiles::RfmValuesOf(profiles::ComputeStats(customer, now, options_), now)) {
        values.push_back(*v);
      }
    }
    auto thresholds = profiles::ComputeThresholds(values, now);
    auto decoded = profiles::DecodeThresholds(profiles::Encode(thresholds));
    CARTWATCH_FUZZ_CHECK(decoded && *decoded == thresholds, "thresholds codec round trip");
    return std::optional<profiles::SiteThresholds>(thresholds);
  }
  boost::system::error_code RecomputeThresholds(util::EpochMs) override { return {}; }
  const profiles::Options& profile_options() const override { return options_; }
  boost::system::error_code DeleteEventsBefore(std::int64_t) override { return {}; }
  boost::system::error_code CheckWritable() override { return {}; }
  storage::FireResult FireDueTimers(std::int64_t, std::size_t) override { return {}; }
  boost::system::result<storage::PersonRules> ReadPersonRules(std::string_view, std::string_view,
                                                              std::size_t) override {
    return storage::PersonRules{};
  }
  boost::system::result<storage::DeliveryList> ReadDeliveries(std::string_view site,
                                                              std::string_view status,
                                                              std::string_view after,
                                                              std::size_t) override {
    if (!status.empty() && status != "pending" && status != "delivered" && status != "failed" &&
        status != "dead" && status != "skipped") {
      return boost::system::error_code(storage::Errc::kInvalidArgument);
    }
    return storage::DeliveryList{{}, std::string(after)};
  }
  Health GetHealth() override { return {}; }
  // No I/O: a directory naming "exists" is refused as an existing one would be, one naming
  // "fail" fails as a full disk would; any other absolute path succeeds.
  boost::system::error_code Checkpoint(const std::string& dir) override {
    if (dir.empty() || dir.front() != '/' || dir.find("exists") != std::string::npos) {
      return storage::Errc::kInvalidArgument;
    }
    if (dir.find("fail") != std::string::npos) return storage::Errc::kNoSpace;
    return {};
  }
  void Close() override {}

 private:
  struct Site {
    std::uint64_t last_event_id = 0;
    std::vector<std::pair<std::uint64_t, std::string>> events;
    std::set<std::string> seen_ids;
    std::map<std::string, profiles::Visitor> visitors;
    std::map<std::string, profiles::Customer> customers;
  };

  template <typename Record>
  static Record RoundTrip(const Record& record) {
    const std::string bytes = profiles::Encode(record);
    auto decoded = [&] {
      if constexpr (std::is_same_v<Record, profiles::Visitor>) {
        return profiles::DecodeVisitor(bytes);
      } else {
        return profiles::DecodeCustomer(bytes);
      }
    }();
    CARTWATCH_FUZZ_CHECK(decoded.has_value(), "a record the codec wrote does not decode");
    CARTWATCH_FUZZ_CHECK(*decoded == record, "codec round trip changed a record");
    return *decoded;
  }

  // storage/state.cc's StateWriter::Apply, without replay and write-behind.
  void ApplyLocked(Site& s, std::string_view json) {
    auto event = profiles::ParseEvent(json);
    if (!event) return;
    profiles::Visitor* visitor = nullptr;
    if (!event->anonymous_id.empty()) {
      auto [it, inserted] = s.visitors.try_emplace(event->anonymous_id);
      visitor = &it->second;
    }
    std::string user_id(profiles::CustomerIdFor(*event, visitor && !visitor->anonymous_id.empty()
                                                            ? visitor
                                                            : nullptr));
    profiles::Customer* customer = nullptr;
    if (!user_id.empty()) {
      auto c = s.customers.find(user_id);
      if (c == s.customers.end() && event->user_id.empty()) {
        // Linked to a customer that was erased: the visitor is anonymous again.
        visitor->user_id.clear();
        visitor->linked_at = 0;
      } else {
        customer = &s.customers[user_id];
      }
    }
    const profiles::Outcome outcome = profiles::Apply(*event, visitor, customer, options_);
    if (!outcome.previous_user_id.empty()) {
      if (auto p = s.customers.find(outcome.previous_user_id); p != s.customers.end()) {
        profiles::ForgetVisitor(p->second, event->anonymous_id);
      }
    }
  }

  mutable std::mutex mu_;
  profiles::Options options_;
  std::map<std::string, Site> sites_;
};

// The sites every Router of the harnesses serves.
//  - shop: write key "wk", secret "sk", browsers from https://shop.example;
//  - limited: "wk2"/"sk2", any origin, one request, then 429 (rate limit);
//  - broken: "wk3"/"sk3", a site whose storage fails (FakeStore).
inline std::vector<collector::Site> FuzzSites() {
  return {
      {.name = "shop", .write_key = "wk", .secret_key = "sk",
       .allowed_origins = {"https://shop.example"}},
      {.name = "limited", .write_key = "wk2", .secret_key = "sk2", .allowed_origins = {"*"},
       .rate_limit = 0.01, .rate_burst = 1},
      {.name = "broken", .write_key = "wk3", .secret_key = "sk3"},
  };
}

// A Router over `store` (sites FuzzSites(), limits FuzzLimits()). Handle() sends a request,
// waits for its response (as a Session does before it reads the next request) and checks
// it. Every response callback must run exactly once: checked by the destructor, which stops
// the Router first (its export and profile threads finish what they were given), and by
// Drain(), for a RouterRun kept from input to input.
class RouterRun {
 public:
  // `client_limits`: FuzzLimits(client_limits). Requests come from 10.1.2.3, a trusted
  // proxy then: its X-Forwarded-For names the client.
  explicit RouterRun(storage::Store& store, bool client_limits = false)
      : router_(FuzzLimits(client_limits), FuzzSites(), store),
        peer_(boost::asio::ip::make_address("10.1.2.3")) {}
  RouterRun(const RouterRun&) = delete;
  ~RouterRun() {
    router_.Stop();
    CheckCalls();
  }

  // The public listener's answer (a copy). The admin listener gets every request too (it
  // only knows /healthz, /readyz and POST /checkpoint): AdminHandle.
  Response Handle(Request request) {
    AdminHandle(request);
    return Wait(Start("", [&](Respond respond) {
      router_.Handle(std::move(request), std::move(respond), peer_);
    }, request));
  }
  Response AdminHandle(const Request& request) {
    return Wait(Start("admin ", [&](Respond respond) {
      router_.HandleAdmin(request, std::move(respond));
    }, request));
  }

  collector::Router& router() { return router_; }

  // Without stopping the Router: waits until the work its threads were given so far is
  // done (one export and one profile read behind it: each kind runs on one thread, in
  // order), then checks the calls and forgets them.
  void Drain() {
    for (const char* target : {"/v1/events?limit=1", "/v1/visitors/-"}) {
      Request sentinel{http::verb::get, target, 11};
      sentinel.set(http::field::authorization, "Bearer sk");
      Handle(std::move(sentinel));
    }
    CheckCalls();
    slots_.clear();
  }

 private:
  using Respond = collector::Respond;
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    int calls = 0;
    Response response;
    std::string what;
  };

  // Calls `handle` with a response callback that checks the response and counts its calls.
  template <typename F>
  std::shared_ptr<Slot> Start(const char* listener, F&& handle, const Request& request) {
    auto slot = std::make_shared<Slot>();
    slot->what = listener + std::string(request.method_string()) + " " +
                 std::string(request.target());
    slots_.push_back(slot);
    handle([slot](Response&& res) {
      CheckResponse(res, slot->what);
      std::lock_guard lock(slot->mu);
      if (++slot->calls == 1) slot->response = res;
      slot->cv.notify_all();
    });
    return slot;
  }

  // The slot's first response, once it came (as a Session waits before the next request).
  Response Wait(const std::shared_ptr<Slot>& slot) {
    std::unique_lock lock(slot->mu);
    if (!slot->cv.wait_for(lock, std::chrono::seconds(20), [&] { return slot->calls > 0; })) {
      Fail("no response within 20 s", slot->what);
    }
    // CARTWATCH_FUZZ_VERBOSE=1: each request and its answer, to see what an input reaches.
    static const bool verbose = std::getenv("CARTWATCH_FUZZ_VERBOSE") != nullptr;
    if (verbose) {
      std::fprintf(stderr, "%s -> %u %.200s\n", slot->what.c_str(),
                   slot->response.result_int(), slot->response.body().c_str());
    }
    return slot->response;
  }

  void CheckCalls() {
    for (const auto& slot : slots_) {
      std::lock_guard lock(slot->mu);
      CARTWATCH_FUZZ_CHECK(slot->calls == 1, "the response callback must run exactly once: " +
                                                 std::to_string(slot->calls) + " calls for " +
                                                 slot->what);
    }
  }

  collector::Router router_;
  const boost::asio::ip::address peer_;
  std::vector<std::shared_ptr<Slot>> slots_;
};

}  // namespace cartwatch::fuzz
