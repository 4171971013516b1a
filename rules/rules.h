// The rule engine's logic (docs/rules.md): which timers a message arms, and what a due
// timer does when it fires. Pure, like profiles/: no I/O, no clock (every time is given),
// no RocksDB. storage/ runs it inside the commit: arming in the same WriteBatch as the
// message (storage/timer_stage.h), firing in one write with the timer's removal, the
// person's marks and the outbox entries (storage/firing.h).
//
// Cancelling is done at firing: a timer carries the version it was armed for (the cart's
// version, or the customer's order count for dormancy) and fires only if the person's
// records still say what armed it; otherwise it is dropped as stale. So arming never reads
// RocksDB, and a cart that changes ten times leaves ten small timers, each dropped when due.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "profiles/profiles.h"

namespace cartwatch::rules {

using profiles::Amount;
using profiles::EpochMs;

inline constexpr EpochMs kSecond = 1000;
inline constexpr EpochMs kMinute = 60 * kSecond;
inline constexpr EpochMs kHour = 60 * kMinute;
inline constexpr EpochMs kDay = 24 * kHour;

enum class Kind : std::uint8_t {
  kCartFilled,      // a known person puts the first item into an empty cart
  kAbandonedCart,   // a known person's cart unchanged for a stage's delay
  kHighValueCart,   // a cart worth more than factor x the customer's AOV
  kDormantCustomer, // no order for `after` (or factor x their own interval)
};
std::string_view KindName(Kind kind);  // "cart_filled", ...
std::optional<Kind> KindNamed(std::string_view name);

// One step of a rule: what to do, `after` its start (abandoned_cart: after the cart's
// last change; every other kind has one stage, after 0).
struct Stage {
  EpochMs after = 0;
  bool task = false;
  bool email = false;
  std::string email_template{};  // with `email`: the template's name (config/templates/)
};

struct Conditions {
  Amount min_cart_value = 0;          // the cart's value (its currency) at least this
  std::vector<std::string> segments{};  // RFM segment names (profiles::SegmentName); empty: any
  std::vector<std::string> abc{};       // "A", "B", "C"; empty: any
};

struct Rule {
  std::string name{};
  Kind kind = Kind::kAbandonedCart;
  std::vector<Stage> stages{};  // at least one
  Conditions conditions{};
  // high_value_cart: cart value / AOV above which it fires. dormant_customer (adaptive):
  // times the customer's mean interval between orders.
  double factor = 2;
  // dormant_customer: no order for this long (and the fallback of adaptive when the
  // customer has one order); with adaptive, at least min_after.
  EpochMs after = 90 * kDay;
  bool adaptive = false;
  EpochMs min_after = 14 * kDay;
  // Least time between two firings of this rule for one person; 0: none.
  EpochMs cooldown = 0;
};

// "22:00-08:00": e-mails due inside it (in the person's time zone) wait for its end.
struct QuietHours {
  int start_minute = 0;  // minutes after midnight
  int end_minute = 0;    // the window wraps midnight when end < start
};
std::optional<QuietHours> ParseQuietHours(std::string_view text);

struct Settings {
  EpochMs email_cooldown = 16 * kHour;  // at most one e-mail a person per this, all rules
  std::optional<QuietHours> quiet_hours{};
};

// What the actions of one site take from its config ([[sites]]).
struct SiteSettings {
  std::string timezone = "UTC";  // when the person's own (context.timezone) is not known
  std::string locale = "en";     // the e-mails' language when the person's is not known
  std::string cart_url{};          // the link back to the cart in e-mails; empty: a product's
};

struct RuleSet {
  std::vector<Rule> rules{};  // a timer names its rule by index: at most 255
  Settings settings{};
  std::map<std::string, SiteSettings, std::less<>> sites{};  // by site name

  // Whether a rule needs the cart's value from before a message (high_value_cart).
  bool ComparesCartValues() const;

  // The site's settings; the defaults for a site not listed.
  const SiteSettings& Site(std::string_view name) const;

  // The index of the rule whose RuleId is `id`; nullopt when no rule has it (a rule
  // removed from the config since its timers were armed).
  std::optional<std::uint8_t> IndexOf(std::uint32_t id) const;
};

// What stored timers name a rule by: a hash of its name (FNV-1a, 32 bits), so that timers
// armed before a restart find their rule whatever the rules' order in the config.
std::uint32_t RuleId(std::string_view name);

// Who a rule acts on: a customer (userId) or, before one is known, a visitor whose traits
// give an e-mail or a phone.
enum class SubjectKind : char { kCustomer = 'c', kVisitor = 'v' };

// A person's records as rules see them after a message. `customer` is set for a customer
// subject; `visitor` for a visitor subject (and may be set beside a customer: the device).
struct Person {
  SubjectKind kind = SubjectKind::kCustomer;
  const profiles::Customer* customer = nullptr;
  const profiles::Visitor* visitor = nullptr;

  std::string_view id() const;
  const profiles::Cart& cart() const;
  const profiles::Traits& traits() const;
  const std::vector<profiles::Order>& orders() const;
  // Has a userId, an e-mail or a phone: someone a manager or an e-mail can reach.
  bool known() const;
};

// The person a message belongs to: its customer when it has one, else its visitor. Null
// pointers: no such record (then the person is not known).
Person PersonOf(const profiles::Customer* customer, const profiles::Visitor* visitor);

// What rules need of a person from before a message: the cart and whether they were known.
struct Before {
  std::uint64_t cart_version = 0;
  bool cart_empty = true;
  Amount cart_value = 0;
  bool known = false;
};
// Of `person`'s records before the message (none, for a person the message creates).
// `cart_value`: whether a rule compares the cart's value before and after (a
// high_value_cart rule; RuleSet::ComparesCartValues): summing the cart is most of the cost.
Before Snapshot(const Person& person, bool cart_value = true);

// What one message did to the person it belongs to.
struct Change {
  EpochMs at = 0;  // the event's stored time
  Person person{};   // after the message
  Before before{};
  bool order_added = false;
};

// A timer: rule `rule`'s stage `stage` for a person, due at `due`, armed for `version`.
struct Timer {
  std::uint8_t rule = 0;
  std::uint8_t stage = 0;
  EpochMs due = 0;
  std::uint64_t version = 0;  // cart rules: the cart's version; dormancy: the order count
  friend bool operator==(const Timer&, const Timer&) = default;
};

// The timers `change` arms (none when the person is not known). `options` is what the
// records were built with (the customer's statistics for AOV).
std::vector<Timer> Plan(const RuleSet& rules, const Change& change,
                        const profiles::Options& options);

// What the engine remembers about a person between firings (stored by the firing).
struct Marks {
  EpochMs last_email_at = 0;
  struct Fired {
    std::uint8_t rule = 0;
    EpochMs at = 0;
    friend bool operator==(const Fired&, const Fired&) = default;
  };
  std::vector<Fired> fired{};  // the last firing of each rule, for its cooldown
  friend bool operator==(const Marks&, const Marks&) = default;
};
std::string EncodeMarks(const Marks& marks);
std::optional<Marks> DecodeMarks(std::string_view value);

enum class ActionType : std::uint8_t { kTask, kEmail };
std::string_view ActionEvent(ActionType type);  // "task.created", "email.triggered"

// One action of a firing: delivered (pending), or recorded as skipped with a reason.
struct Action {
  ActionType type = ActionType::kTask;
  bool skipped = false;
  std::string reason{};  // why skipped ("email_cooldown", "no_email_address")
  std::string email_template{};
};

struct Decision {
  enum class Outcome : std::uint8_t {
    kStale,     // the records no longer say what armed it: dropped
    kNotMatched,// conditions (value, segment, class, cooldown) not met: dropped
    kFired,     // actions taken (some may be skipped)
    kHeld,      // an e-mail in quiet hours: `next` is the same timer at the window's end
  };
  Outcome outcome = Outcome::kStale;
  std::string reason{};            // for kStale / kNotMatched, a word for logs and metrics
  std::vector<Action> actions{};   // kFired
  std::optional<Timer> next{};     // the next stage, or the held timer
  Marks marks{};                   // the person's marks after this firing
};

// Why `timer` no longer applies to `person` as their records are now ("cart_changed",
// "cart_emptied", "below_factor", "ordered_since"); nullopt while it still does. `stats`:
// the customer's (nullptr for a visitor).
std::optional<std::string_view> StaleReason(const Rule& rule, const Timer& timer,
                                           const Person& person,
                                           const profiles::CustomerStats* stats);

// Decides what `timer` does at `now` for `person` (the records as of now), with the
// person's customer statistics and RFM score (when computed), their marks, and the offset
// of their time zone from UTC at `now` (for quiet hours).
Decision Fire(const RuleSet& rules, const Timer& timer, const Person& person,
              const profiles::CustomerStats* stats, const std::optional<profiles::Score>& score,
              const Marks& marks, EpochMs now, int utc_offset_minutes = 0);

}  // namespace cartwatch::rules
