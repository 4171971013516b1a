// Test helpers for profiles: Segment messages as the collector stores them, and a tiny
// in-memory "store" that applies them the way the storage writer does (load by id, Apply,
// write back), keeping every record encoded between events so that each test also
// exercises the codec.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>
#include <string>
#include <string_view>

#include "profiles/codec.h"
#include "profiles/event.h"
#include "profiles/profiles.h"
#include "util/time.h"

namespace cartwatch::profiles::helpers {

// 2026-11-23T17:24:02Z.
inline constexpr EpochMs kT0 = 1795454642000;
inline constexpr EpochMs kSecond = 1000;
inline constexpr EpochMs kMinute = 60 * kSecond;
inline constexpr EpochMs kHour = 60 * kMinute;
inline constexpr EpochMs kDay = 24 * kHour;

// 19.9 -> 199000.
inline constexpr Amount Money(double units) {
  return static_cast<Amount>(units * kAmountScale + (units >= 0 ? 0.5 : -0.5));
}

// A stored message: `fields` plus messageId, timestamp and receivedAt as the collector adds
// them. `who` is "a:<anonymousId>", "u:<userId>" or "a:<anonymousId>,u:<userId>".
inline std::string Message(std::string_view type, std::string_view who, EpochMs at,
                           boost::json::object fields = {}) {
  static int counter = 0;
  boost::json::object m = std::move(fields);
  m["type"] = type;
  std::string_view rest = who;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view part = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (part.substr(0, 2) == "a:") m["anonymousId"] = part.substr(2);
    if (part.substr(0, 2) == "u:") m["userId"] = part.substr(2);
  }
  if (!m.contains("messageId")) m["messageId"] = "msg-" + std::to_string(++counter);
  m["timestamp"] = util::FormatIso8601(at);
  m["receivedAt"] = util::FormatIso8601(at + 50);
  return boost::json::serialize(m);
}

inline std::string Track(std::string_view who, std::string_view event, EpochMs at,
                         boost::json::object properties = {}) {
  boost::json::object f;
  f["event"] = event;
  f["properties"] = std::move(properties);
  return Message("track", who, at, std::move(f));
}

inline std::string Page(std::string_view who, EpochMs at, std::string_view url,
                        boost::json::object campaign = {}, std::string_view referrer = "") {
  boost::json::object page;
  page["url"] = url;
  page["title"] = "Title of " + std::string(url);
  if (!referrer.empty()) page["referrer"] = referrer;
  boost::json::object context;
  context["page"] = std::move(page);
  if (!campaign.empty()) context["campaign"] = std::move(campaign);
  boost::json::object f;
  f["context"] = std::move(context);
  return Message("page", who, at, std::move(f));
}

inline std::string Identify(std::string_view who, EpochMs at, boost::json::object traits = {}) {
  boost::json::object f;
  f["traits"] = std::move(traits);
  return Message("identify", who, at, std::move(f));
}

// Properties of a Product Added / Removed / Viewed.
inline boost::json::object ProductProps(std::string_view id, double price, std::int64_t quantity,
                                        std::string_view currency = "EUR") {
  boost::json::object p;
  p["product_id"] = id;
  p["name"] = "Name " + std::string(id);
  p["price"] = price;
  p["quantity"] = quantity;
  if (!currency.empty()) p["currency"] = currency;
  return p;
}

// Properties with products[] (Cart Viewed, Order Completed).
inline boost::json::object Products(std::initializer_list<boost::json::object> products,
                                    std::string_view currency = "EUR") {
  boost::json::object p;
  boost::json::array list;
  for (const auto& product : products) list.push_back(product);
  p["products"] = std::move(list);
  if (!currency.empty()) p["currency"] = currency;
  return p;
}

inline Event Parse(std::string_view json) {
  std::optional<Event> e = ParseEvent(json);
  EXPECT_TRUE(e.has_value()) << json;
  return e ? *e : Event();
}

// The storage writer in miniature: records live encoded, as in RocksDB.
class World {
 public:
  Options options;

  Outcome Send(std::string_view json) {
    const std::optional<Event> e = ParseEvent(json);
    EXPECT_TRUE(e.has_value()) << json;
    if (!e) return {};
    std::optional<Visitor> visitor;
    if (!e->anonymous_id.empty()) visitor = LoadVisitor(e->anonymous_id);
    const std::string user_id(CustomerIdFor(*e, visitor ? &*visitor : nullptr));
    std::optional<Customer> customer;
    if (!user_id.empty()) customer = LoadCustomer(user_id);
    const Outcome out =
        Apply(*e, visitor ? &*visitor : nullptr, customer ? &*customer : nullptr, options);
    if (!out.previous_user_id.empty()) {
      Customer previous = LoadCustomer(out.previous_user_id);
      ForgetVisitor(previous, e->anonymous_id);
      customers_[previous.user_id] = Encode(previous);
    }
    if (visitor) visitors_[visitor->anonymous_id] = Encode(*visitor);
    if (customer) customers_[customer->user_id] = Encode(*customer);
    return out;
  }

  Visitor visitor(const std::string& id) { return LoadVisitor(id); }
  Customer customer(const std::string& id) { return LoadCustomer(id); }
  bool has_customer(const std::string& id) const { return customers_.contains(id); }

 private:
  Visitor LoadVisitor(const std::string& id) {
    auto it = visitors_.find(id);
    if (it == visitors_.end()) return Visitor();
    auto decoded = DecodeVisitor(it->second);
    EXPECT_TRUE(decoded.has_value());
    return decoded ? *decoded : Visitor();
  }
  Customer LoadCustomer(const std::string& id) {
    auto it = customers_.find(id);
    if (it == customers_.end()) return Customer();
    auto decoded = DecodeCustomer(it->second);
    EXPECT_TRUE(decoded.has_value());
    return decoded ? *decoded : Customer();
  }

  std::map<std::string, std::string> visitors_, customers_;
};

}  // namespace cartwatch::profiles::helpers
