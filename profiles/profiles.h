// Profiles: what Cartwatch knows about a person, built from their events. A Visitor is one
// browser or app install (an anonymousId): its sessions, and its cart while anonymous. A
// Customer is a known person (a userId): traits, the devices linked to them, the cart, orders
// and the statistics a CRM segments on (RFM, ABC, LTV). The rules are in docs/profiles.md.
//
// Everything here is a pure, deterministic function of its arguments: transitions use the
// event's time, never the wall clock, so replaying the event log rebuilds the same state, and
// only reads (ComputeStats, scoring) take a `now`. No I/O, no locks, no shared state: the
// caller owns the objects and serialises access to each (the storage writer of a partition).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "profiles/event.h"

namespace cartwatch::profiles {

struct Options {
  // A page after this much idleness opens a new session. Default 30 min.
  std::chrono::milliseconds session_timeout = std::chrono::minutes(30);
  // Sessions kept per visitor (the newest). Default 20.
  std::size_t max_sessions = 20;
  // Recently viewed products kept per person (the most recently viewed). Default 20.
  std::size_t max_viewed_products = 20;
  // Lines a cart holds; a Product Added for a new product beyond this is ignored. Default 200.
  std::size_t max_cart_lines = 200;
  // Orders a customer keeps one by one (the newest); older ones are folded into
  // Customer::archived, which keeps their count and sums but not their ids. Default 200.
  std::size_t max_orders = 200;
  // Session starts kept per customer (the newest), for visits in the last 30 days.
  // Default 200.
  std::size_t max_visits = 200;
  // Anonymous ids listed per customer (the most recently linked). Default 50.
  std::size_t max_linked_visitors = 50;
  // Other customers an alias may merge into one (Customer::merged_user_ids); an alias
  // beyond it merges nothing. Default 50.
  std::size_t max_merged_customers = 50;
  // Expected customer lifetime in years, the last factor of the LTV estimate. Default 3.
  double expected_lifetime_years = 3.0;
};

// One person trait and the event time it was set at (0: never set). The newest value wins,
// whatever order the messages arrive in.
struct Trait {
  std::string value;
  EpochMs at = 0;

  friend bool operator==(const Trait&, const Trait&) = default;
};

struct Traits {
  Trait email, phone, first_name, last_name, name;

  friend bool operator==(const Traits&, const Traits&) = default;
};

// ---- Cart ----

struct CartLine {
  std::string key;  // product_id, else sku: what identifies the line
  std::string product_id, sku, name, category, brand, image_url, url;
  std::string currency;       // upper-case ISO 4217; empty: not stated (counts as the cart's)
  std::int64_t quantity = 0;  // > 0
  Amount price = 0;           // unit price
  EpochMs updated_at = 0;     // newest event that changed this line

  friend bool operator==(const CartLine&, const CartLine&) = default;
};

// A line removed by a Product Removed, remembered so that an older Product Added of the same
// product that arrives late does not bring it back.
struct CartRemoval {
  std::string key;
  EpochMs at = 0;

  friend bool operator==(const CartRemoval&, const CartRemoval&) = default;
};

enum class CartStage : std::uint8_t { kBrowsing, kCheckout };

struct Cart {
  std::vector<CartLine> lines;  // in the order first added
  // +1 on every change of lines or stage (rules key on it). Never decreases, also across
  // the merge of a visitor's cart into a customer's.
  std::uint64_t version = 0;
  EpochMs updated_at = 0;   // newest event time that changed the cart; 0: never
  EpochMs replaced_at = 0;  // newest whole-cart replace or order; older deltas are ignored
  CartStage stage = CartStage::kBrowsing;
  EpochMs checkout_started_at = 0;    // when stage became kCheckout
  std::vector<CartRemoval> removals;  // the latest removals newer than replaced_at (<= 32)

  bool empty() const { return lines.empty(); }

  friend bool operator==(const Cart&, const Cart&) = default;
};

// A cart's money. The cart's currency is the currency of its most recently changed line
// that states one; `value` sums price x quantity of the lines in that currency and of the
// lines that state none; `by_currency` has every currency's sum (the cart's first).
struct CartTotals {
  std::string currency;  // empty when no line states one
  Amount value = 0;
  std::int64_t items = 0;  // sum of quantities, all lines
  struct PerCurrency {
    std::string currency;
    Amount value = 0;
  };
  std::vector<PerCurrency> by_currency;
};
CartTotals TotalsOf(const Cart& cart);

// ---- Visits and interest ----

struct Session {
  EpochMs start = 0;  // first page
  EpochMs end = 0;    // last activity (page or any other event) within the session
  std::int64_t pages = 0;
  std::string landing_url, landing_title;  // first page
  std::string exit_url, exit_title;        // latest page
  std::string referrer;                    // the first page's referrer
  Campaign utm;                            // the session's campaign; empty: none

  EpochMs duration() const { return end - start; }

  friend bool operator==(const Session&, const Session&) = default;
};

struct ViewedProduct {
  std::string key, name, category, brand, url, image_url, currency;
  std::optional<Amount> price;
  std::int64_t views = 0;
  EpochMs viewed_at = 0;  // latest view

  friend bool operator==(const ViewedProduct&, const ViewedProduct&) = default;
};

// ---- Orders ----

// One product of an order: what favourite categories and brands are computed from.
struct OrderItem {
  std::string category, brand;
  Amount amount = 0;  // price x quantity

  friend bool operator==(const OrderItem&, const OrderItem&) = default;
};

struct Order {
  std::string order_id;  // `order_id`, else "message:<messageId>"
  EpochMs at = 0;
  Amount revenue = 0;    // total, else revenue, else value, else sum of items; may be 0
  std::string currency;  // empty: not stated
  std::vector<OrderItem> items;

  friend bool operator==(const Order&, const Order&) = default;
};

struct CurrencyTotal {
  std::string currency;
  std::int64_t orders = 0;
  Amount revenue = 0;

  friend bool operator==(const CurrencyTotal&, const CurrencyTotal&) = default;
};

struct Spend {
  std::string currency, name;
  Amount amount = 0;

  friend bool operator==(const Spend&, const Spend&) = default;
};

// Orders folded out of Customer::orders (Options::max_orders): their sums, not their ids.
struct OrderArchive {
  std::int64_t count = 0;
  EpochMs first_at = 0, last_at = 0;  // oldest and newest archived order (when count > 0)
  std::vector<CurrencyTotal> revenue;
  std::vector<Spend> categories, brands;  // the 32 largest each

  friend bool operator==(const OrderArchive&, const OrderArchive&) = default;
};

// ---- The two records ----

struct Visitor {
  std::string anonymous_id;
  std::string user_id;  // the linked customer; empty while anonymous
  EpochMs first_seen = 0, last_seen = 0;
  EpochMs linked_at = 0;          // event time of the link to user_id
  std::int64_t page_views = 0;    // every page, also late ones that join no session
  std::vector<Session> sessions;  // by start, oldest first; the last is the current one

  // What the visitor did anonymously. Moved into the customer at the link and empty from
  // then on: once linked, carts, orders and interest live in the Customer.
  Traits traits;
  Cart cart;
  std::vector<ViewedProduct> viewed;  // most recent first
  std::vector<Order> orders;          // by time, oldest first

  // The newest context.timezone and context.locale the device sent; empty: none yet.
  std::string timezone, locale;

  friend bool operator==(const Visitor&, const Visitor&) = default;
};

struct Customer {
  std::string user_id;
  Traits traits;
  std::vector<std::string> anonymous_ids;  // linked visitors, in link order
  EpochMs first_seen = 0, last_seen = 0;
  Cart cart;
  std::vector<ViewedProduct> viewed;  // most recent first
  std::vector<Order> orders;          // by time, oldest first
  OrderArchive archived;
  std::vector<EpochMs> visits;  // session starts of all linked visitors, ascending
  // Customers an alias merged into this one (their ids, in merge order); each keeps a
  // record that says so (merged_into), so that their later messages reach this one.
  std::vector<std::string> merged_user_ids;
  // Set: an alias merged this customer into that one, at merged_at; the record holds
  // nothing else (its data moved there), and its messages belong to that customer.
  std::string merged_into;
  EpochMs merged_at = 0;

  // The newest context.timezone and context.locale any of their devices sent.
  std::string timezone, locale;

  bool merged() const { return !merged_into.empty(); }

  friend bool operator==(const Customer&, const Customer&) = default;
};

// ---- Transitions ----

// The customer an event belongs to: its userId, else the visitor's linked customer; empty
// when none. `visitor` is the state of event.anonymous_id (nullptr when it has none or the
// visitor is new).
std::string_view CustomerIdFor(const Event& event, const Visitor* visitor);

// What Apply did, beyond updating the records.
struct Outcome {
  // This event linked the visitor to the customer: a first link merged the visitor's
  // anonymous history into the customer; a re-link (previous_user_id) merged nothing.
  bool linked = false;
  // The visitor was linked to this other customer until this event (a shared device):
  // call ForgetVisitor on that customer. Empty otherwise.
  std::string previous_user_id;
  bool session_started = false;
  bool cart_changed = false;     // the cart's version is new
  bool order_added = false;      // a new order was counted
  bool duplicate_order = false;  // an Order Completed for an order already counted
};

// Applies one event. `visitor` is the state of event.anonymous_id, `customer` that of
// CustomerIdFor(event, visitor); a new one is a default-constructed object, whose id Apply
// fills in.
// REQUIRES: visitor != nullptr exactly when event.anonymous_id is not empty, customer !=
// nullptr exactly when CustomerIdFor(event, visitor) is not empty, and their ids (when set)
// match. Both records are changed in place (last_seen moves on nearly every event): store
// both afterwards.
Outcome Apply(const Event& event, Visitor* visitor, Customer* customer,
              const Options& options = {});

// Drops `anonymous_id` from the customer's linked visitors (after Outcome::previous_user_id).
void ForgetVisitor(Customer& customer, std::string_view anonymous_id);

// An alias of two customers (`previousId` is a customer): merges `from` into `into` as of
// the alias's time `at`: traits (the newer value wins), cart (as a visitor's cart merges at
// its link), viewed products, orders (an order id both have counts once), archived orders,
// visits, linked visitors and merged ids; `from` becomes a record that says it was merged
// into `into` (Customer::merged_into). Returns false and changes nothing when `into` would
// then list more than options.max_merged_customers merged ids.
// REQUIRES: both have their user_id set, differ, and neither is merged().
bool MergeCustomers(Customer& into, Customer& from, EpochMs at, const Options& options,
                    Outcome& out);
// Whether MergeCustomers(into, from, ...) would merge: false when `into` would then list
// more than options.max_merged_customers merged ids. `into` may be a new, empty record.
bool MergeFits(const Customer& into, const Customer& from, const Options& options);

// ---- Statistics and scores ----

struct Favourite {
  std::string name;
  Amount spend = 0;
};

// Customer statistics as of `now`. Money is in `currency`: the currency of the newest order
// that states one; orders in other currencies count in `orders` and recency but only in
// `revenue_by_currency`. Orders that state no currency count as `currency`.
struct CustomerStats {
  std::int64_t orders = 0;
  std::string currency;
  Amount revenue = 0;
  Amount average_order_value = 0;  // revenue / orders in `currency`
  std::optional<EpochMs> first_order_at, last_order_at;
  std::optional<double> mean_days_between_orders;                 // (last - first) / (orders - 1)
  std::vector<Favourite> favourite_categories, favourite_brands;  // top 3 by spend
  std::vector<CurrencyTotal> revenue_by_currency;                 // largest first
  EpochMs last_seen = 0;
  std::int64_t visits_last_30_days = 0;  // sessions started in (now - 30 days, now]
  double orders_a_year = 0;              // orders / max(1, years since the first order)
  Amount ltv = 0;  // average_order_value x orders_a_year x expected_lifetime_years
};
CustomerStats ComputeStats(const Customer& customer, EpochMs now, const Options& options = {});

// A customer's RFM inputs. Only customers with at least one order have them.
struct RfmValues {
  std::int64_t recency_days = 0;  // whole days since the last order
  std::int64_t frequency = 0;     // orders
  Amount monetary = 0;            // revenue
};
std::optional<RfmValues> RfmValuesOf(const CustomerStats& stats, EpochMs now);

// Per-site cut points, recomputed in the background from every customer's RfmValues.
struct SiteThresholds {
  std::int64_t customers = 0;  // customers with orders they were computed from; 0: none
  EpochMs computed_at = 0;
  // Quintile cut points, ascending: the values at the 20th, 40th, 60th, 80th percentile.
  std::array<std::int64_t, 4> recency_days{};
  std::array<std::int64_t, 4> frequency{};
  std::array<Amount, 4> monetary{};
  // ABC: revenue at or above abc_a_min is A (the customers making the top 80% of the
  // site's revenue), at or above abc_b_min B (the next 15%), else C.
  Amount abc_a_min = 0;
  Amount abc_b_min = 0;

  friend bool operator==(const SiteThresholds&, const SiteThresholds&) = default;
};
SiteThresholds ComputeThresholds(std::span<const RfmValues> customers, EpochMs computed_at);

enum class RfmSegment : std::uint8_t {
  kChampions,
  kLoyal,
  kPotentialLoyalist,
  kNew,
  kPromising,
  kNeedAttention,
  kAboutToSleep,
  kAtRisk,
  kCantLose,
  kHibernating,
  kLost,
};
std::string_view SegmentName(RfmSegment segment);  // "champions", "cant_lose", ...

// The segment of R and FM = (F + M + 1) / 2 on the grid in docs/profiles.md.
// REQUIRES: each score in 1..5.
RfmSegment SegmentOf(int r, int f, int m);

enum class AbcClass : std::uint8_t { kA, kB, kC };
std::string_view AbcName(AbcClass abc);  // "A", "B", "C"

struct Score {
  int r = 0, f = 0, m = 0;  // 1..5
  RfmSegment segment = RfmSegment::kLost;
  AbcClass abc = AbcClass::kC;
};
// nullopt when the thresholds are empty (customers == 0).
std::optional<Score> ScoreCustomer(const RfmValues& values, const SiteThresholds& thresholds);

}  // namespace cartwatch::profiles
