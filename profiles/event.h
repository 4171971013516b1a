// Profile events: the few facts of one stored Segment message that visitor, cart and
// customer state depend on, read out of the message's JSON (docs/profiles.md, "Events").
//
// Pure functions, no shared state: safe from any thread (each thread parses with its own
// simdjson parser, kept thread-local inside event.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/time.h"

namespace cartwatch::profiles {

using util::EpochMs;

// A money amount in ten-thousandths of the currency unit (19.90 EUR is 199'000): exact
// sums, any ISO 4217 minor unit (0 to 4 decimals). Prices with more decimals are rounded.
using Amount = std::int64_t;
inline constexpr Amount kAmountScale = 10'000;
// The largest magnitude of any amount, sum, average or estimate: 10^14 currency units.
// A single amount at or beyond it is not accepted (AmountFromDouble); sums saturate at it
// (AddAmounts), so that no total can overflow.
inline constexpr Amount kMaxAmount = 100'000'000'000'000 * kAmountScale;

// a + b, saturated to [-kMaxAmount, kMaxAmount]. REQUIRES: |a|, |b| <= kMaxAmount (then the
// sum itself cannot overflow an int64).
constexpr Amount AddAmounts(Amount a, Amount b) {
  const Amount sum = a + b;
  return sum > kMaxAmount ? kMaxAmount : sum < -kMaxAmount ? -kMaxAmount : sum;
}

// Converts a decimal number to an Amount, rounding half away from zero. nullopt when it is
// not finite or too large to represent (|value| >= 1e14).
std::optional<Amount> AmountFromDouble(double value);

// UTM parameters of a visit (Segment `context.campaign`). Equal when all five are equal.
struct Campaign {
  std::string source, medium, name, term, content;

  bool empty() const {
    return source.empty() && medium.empty() && name.empty() && term.empty() && content.empty();
  }
  friend bool operator==(const Campaign&, const Campaign&) = default;
};

// Person traits a message carries (identify `traits`, any message's `context.traits`).
// Unset: the message does not mention it. Both camelCase (Segment) and snake_case keys are
// read for the names.
struct TraitValues {
  std::optional<std::string> email, phone, first_name, last_name, name;

  bool empty() const { return !email && !phone && !first_name && !last_name && !name; }
  friend bool operator==(const TraitValues&, const TraitValues&) = default;
};

// One product of an e-commerce event: the event's `properties` for single-product events
// (Product Viewed/Added/Removed), each element of `properties.products` otherwise.
struct Product {
  std::string key;  // product_id, else sku, else id (Segment v1); numbers as their JSON text
  std::string product_id, sku, name, category, brand, image_url, url;
  std::optional<std::int64_t> quantity;  // rounded to a whole number; unset: not given
  std::optional<Amount> price;           // unit price; unset: not given
  friend bool operator==(const Product&, const Product&) = default;
};

enum class EventType : std::uint8_t {
  kActivity,         // any other message (track, alias, group): last seen, session activity
  kPage,             // page, and screen (the app's page view)
  kIdentify,         // identify: traits, and the link of anonymousId to userId
  kProductViewed,    // product interest
  kProductAdded,     // cart line delta +
  kProductRemoved,   // cart line delta -
  kCartReplaced,     // Cart Viewed, Cart Updated: products[] is the whole cart
  kCheckoutStarted,  // checkout stage reached
  kOrderCompleted,   // an order; empties the cart
  kAlias,            // alias with both `previousId` and `userId`: two identities become one
};

// What state needs from one message. Strings are copies: an Event outlives the JSON.
struct Event {
  EventType type = EventType::kActivity;
  std::string message_id;
  std::string anonymous_id;  // empty: none
  std::string user_id;       // empty: none
  std::string previous_id;   // kAlias: `previousId` (never empty then); empty otherwise
  EpochMs at = 0;            // event time: the stored (skew-corrected) `timestamp`
  EpochMs received_at = 0;   // `receivedAt`; equals `at` when missing

  // kPage: `properties` first, then `context.page`; a screen's url is its `name`.
  std::string url, title, referrer;
  // kPage: `context.campaign`, else the utm_* parameters of the page URL.
  Campaign campaign;

  // Traits from `traits` (identify only) overlaid on `context.traits` (any message).
  TraitValues traits;

  // `context.timezone` (an IANA name, e.g. "Europe/Berlin", as analytics.js sends it) and
  // `context.locale` ("ru-RU"); empty when absent or not shaped like one.
  std::string timezone, locale;

  // E-commerce events.
  std::vector<Product> products;
  std::string currency;         // `properties.currency`, upper-cased; empty: not given
  std::string order_id;         // kOrderCompleted: `order_id` (else "message:<messageId>")
  std::optional<Amount> total;  // kOrderCompleted: `total`, else `revenue`, else `value`

  friend bool operator==(const Event&, const Event&) = default;
};

// Reads one message as the collector stores it (docs/api.md, "What is stored").
// Returns nullopt when the message cannot change any profile: not a JSON object, no
// `anonymousId` nor `userId` (strings or numbers; empty strings are absent), no valid
// `timestamp` nor `receivedAt`, a `type` that is not a Segment type, or a track without
// `event`. Fields of the wrong type are treated as absent; numbers given as strings
// ("19.90") are accepted. Other track events, alias and group are kActivity: their
// properties are skipped unread (the cheap path); an alias with both `previousId` and
// `userId` is kAlias, else kActivity. Never throws. The full mapping is in
// docs/profiles.md, "Events".
std::optional<Event> ParseEvent(std::string_view stored_json);

// The same, into `out`, reusing the memory of its strings (a caller that parses message
// after message keeps one Event and saves most of the allocations): true with `out` equal
// to what ParseEvent gives, or false (and `out` unspecified) where it gives nullopt.
bool ParseEventInto(std::string_view stored_json, Event& out);

// The utm_* query parameters of `url` (percent-decoded, '+' as space); empty when none.
Campaign CampaignFromUrl(std::string_view url);

}  // namespace cartwatch::profiles
