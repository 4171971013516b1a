#include "rules/rules.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "util/varint.h"

namespace cartwatch::rules {
namespace {

using util::GetVarint;
using util::PutVarint;

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// The customer's AOV in the cart's currency; 0 when it has no orders or the currencies
// differ (a cart in another currency is not compared).
Amount ComparableAov(const profiles::CustomerStats& stats, const profiles::CartTotals& cart) {
  if (stats.orders == 0 || stats.average_order_value <= 0) return 0;
  if (!stats.currency.empty() && !cart.currency.empty() && stats.currency != cart.currency) {
    return 0;
  }
  return stats.average_order_value;
}

bool Crosses(Amount value, Amount aov, double factor) {
  return aov > 0 && static_cast<double>(value) > factor * static_cast<double>(aov);
}

// When a dormancy armed at the last order falls due.
EpochMs DormantDue(const Rule& rule, const profiles::CustomerStats& stats) {
  const EpochMs last = stats.last_order_at.value_or(0);
  if (rule.adaptive && stats.mean_days_between_orders && *stats.mean_days_between_orders > 0) {
    // At most a hundred years: a huge factor must not overflow the conversion.
    const double own = std::min(rule.factor * *stats.mean_days_between_orders,
                                100.0 * 365) * static_cast<double>(kDay);
    return last + std::max(static_cast<EpochMs>(own), rule.min_after);
  }
  return last + rule.after;
}

}  // namespace

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kCartFilled: return "cart_filled";
    case Kind::kAbandonedCart: return "abandoned_cart";
    case Kind::kHighValueCart: return "high_value_cart";
    case Kind::kDormantCustomer: return "dormant_customer";
  }
  return "unknown";
}

std::optional<Kind> KindNamed(std::string_view name) {
  for (Kind k : {Kind::kCartFilled, Kind::kAbandonedCart, Kind::kHighValueCart,
                 Kind::kDormantCustomer}) {
    if (KindName(k) == name) return k;
  }
  return std::nullopt;
}

std::uint32_t RuleId(std::string_view name) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : name) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::optional<std::uint8_t> RuleSet::IndexOf(std::uint32_t id) const {
  for (std::size_t i = 0; i < rules.size() && i < 256; ++i) {
    if (RuleId(rules[i].name) == id) return static_cast<std::uint8_t>(i);
  }
  return std::nullopt;
}

const SiteSettings& RuleSet::Site(std::string_view name) const {
  static const SiteSettings kDefaults;
  auto it = sites.find(name);
  return it == sites.end() ? kDefaults : it->second;
}

std::optional<QuietHours> ParseQuietHours(std::string_view text) {
  auto minute = [](std::string_view hhmm) -> std::optional<int> {
    if (hhmm.size() != 5 || hhmm[2] != ':') return std::nullopt;
    int h = 0, m = 0;
    if (std::from_chars(hhmm.data(), hhmm.data() + 2, h).ptr != hhmm.data() + 2) return std::nullopt;
    if (std::from_chars(hhmm.data() + 3, hhmm.data() + 5, m).ptr != hhmm.data() + 5) {
      return std::nullopt;
    }
    if (h > 23 || m > 59 || h < 0 || m < 0) return std::nullopt;
    return h * 60 + m;
  };
  if (text.size() != 11 || text[5] != '-') return std::nullopt;
  auto start = minute(text.substr(0, 5));
  auto end = minute(text.substr(6, 5));
  if (!start || !end || *start == *end) return std::nullopt;
  return QuietHours{*start, *end};
}

std::string_view Person::id() const {
  return kind == SubjectKind::kCustomer ? std::string_view(customer->user_id)
                                        : std::string_view(visitor->anonymous_id);
}

const profiles::Cart& Person::cart() const {
  return kind == SubjectKind::kCustomer ? customer->cart : visitor->cart;
}

const profiles::Traits& Person::traits() const {
  return kind == SubjectKind::kCustomer ? customer->traits : visitor->traits;
}

const std::vector<profiles::Order>& Person::orders() const {
  return kind == SubjectKind::kCustomer ? customer->orders : visitor->orders;
}

bool Person::known() const {
  if (kind == SubjectKind::kCustomer) return customer != nullptr;
  if (visitor == nullptr) return false;
  return !visitor->traits.email.value.empty() || !visitor->traits.phone.value.empty();
}

Person PersonOf(const profiles::Customer* customer, const profiles::Visitor* visitor) {
  if (customer != nullptr) return Person{.kind = SubjectKind::kCustomer, .customer = customer, .visitor = visitor};
  return Person{.kind = SubjectKind::kVisitor, .customer = nullptr, .visitor = visitor};
}

Before Snapshot(const Person& person, bool cart_value) {
  if (person.kind == SubjectKind::kCustomer ? person.customer == nullptr : person.visitor == nullptr) {
    return Before{};
  }
  const profiles::Cart& cart = person.cart();
  const bool known = person.known();
  // Only a known person's value is ever compared (an unknown one's cart counts as new).
  return Before{.cart_version = cart.version,
                .cart_empty = cart.empty(),
                .cart_value = cart_value && known && !cart.empty() ? profiles::TotalsOf(cart).value : 0,
                .known = known};
}

bool RuleSet::ComparesCartValues() const {
  return std::any_of(rules.begin(), rules.end(),
                     [](const Rule& r) { return r.kind == Kind::kHighValueCart; });
}

std::vector<Timer> Plan(const RuleSet& rules, const Change& change,
                        const profiles::Options& options) {
  std::vector<Timer> timers;
  if (!change.person.known()) return timers;
  const profiles::Cart& cart = change.person.cart();
  // A person who becomes known with a cart (an identify after browsing anonymously): the
  // cart counts from now, as if it had just been filled.
  const bool became_known = !change.before.known;
  const bool cart_news = cart.version != change.before.cart_version || became_known;
  const bool filled = !cart.empty() && (change.before.cart_empty || became_known) && cart_news;
  std::optional<profiles::CustomerStats> stats;
  auto customer_stats = [&]() -> const profiles::CustomerStats* {
    if (change.person.customer == nullptr) return nullptr;
    if (!stats) stats = profiles::ComputeStats(*change.person.customer, change.at, options);
    return &*stats;
  };
  for (std::size_t i = 0; i < rules.rules.size() && i < 256; ++i) {
    const Rule& rule = rules.rules[i];
    const auto index = static_cast<std::uint8_t>(i);
    switch (rule.kind) {
      case Kind::kCartFilled:
        if (filled) timers.push_back(Timer{index, 0, change.at, cart.version});
        break;
      case Kind::kAbandonedCart:
        // Every change of a non-empty cart re-arms the first stage for the new version;
        // the timers of older versions are dropped when due (stale).
        if (cart_news && !cart.empty()) {
          const EpochMs since = std::max(cart.updated_at, change.at);
          timers.push_back(Timer{index, 0, since + rule.stages.front().after, cart.version});
        }
        break;
      case Kind::kHighValueCart: {
        if (!cart_news || cart.empty()) break;
        const profiles::CustomerStats* s = customer_stats();
        if (s == nullptr) break;
        const profiles::CartTotals totals = profiles::TotalsOf(cart);
        const Amount aov = ComparableAov(*s, totals);
        // Once per crossing: the cart was below the line (or empty) before this message.
        const bool before = !change.before.cart_empty && !became_known &&
                            Crosses(change.before.cart_value, aov, rule.factor);
        if (Crosses(totals.value, aov, rule.factor) && !before) {
          timers.push_back(Timer{index, 0, change.at, cart.version});
        }
        break;
      }
      case Kind::kDormantCustomer: {
        if (!change.order_added && !became_known) break;
        const profiles::CustomerStats* s = customer_stats();
        if (s == nullptr || s->orders == 0) break;
        timers.push_back(
            Timer{index, 0, DormantDue(rule, *s), static_cast<std::uint64_t>(s->orders)});
        break;
      }
    }
  }
  return timers;
}

std::string EncodeMarks(const Marks& marks) {
  std::string out;
  out.push_back('\x01');  // format
  PutVarint(out, static_cast<std::uint64_t>(marks.last_email_at));
  PutVarint(out, marks.fired.size());
  for (const Marks::Fired& f : marks.fired) {
    out.push_back(static_cast<char>(f.rule));
    PutVarint(out, static_cast<std::uint64_t>(f.at));
  }
  return out;
}

std::optional<Marks> DecodeMarks(std::string_view in) {
  if (in.empty() || in.front() != '\x01') return std::nullopt;
  in.remove_prefix(1);
  Marks marks;
  std::uint64_t v = 0, n = 0;
  if (!GetVarint(in, v)) return std::nullopt;
  marks.last_email_at = static_cast<EpochMs>(v);
  if (!GetVarint(in, n) || n > 256) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (in.empty()) return std::nullopt;
    Marks::Fired f;
    f.rule = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    if (!GetVarint(in, v)) return std::nullopt;
    f.at = static_cast<EpochMs>(v);
    marks.fired.push_back(f);
  }
  if (!in.empty()) return std::nullopt;
  return marks;
}

std::string_view ActionEvent(ActionType type) {
  return type == ActionType::kTask ? "task.created" : "email.triggered";
}

namespace {

// The first minute at or after `local_minute` (minutes after local midnight) outside the
// quiet window; 0 when it is already outside.
int MinutesUntilQuietEnds(const QuietHours& quiet, int local_minute) {
  const bool wraps = quiet.end_minute < quiet.start_minute;
  const bool inside = wraps ? (local_minute >= quiet.start_minute || local_minute < quiet.end_minute)
                            : (local_minute >= quiet.start_minute && local_minute < quiet.end_minute);
  if (!inside) return 0;
  return (quiet.end_minute - local_minute + 24 * 60) % (24 * 60);
}

Decision Drop(Decision::Outcome outcome, std::string reason, const Marks& marks) {
  Decision d;
  d.outcome = outcome;
  d.reason = std::move(reason);
  d.marks = marks;
  return d;
}

}  // namespace

std::optional<std::string_view> StaleReason(const Rule& rule, const Timer& timer,
                                           const Person& person,
                                           const profiles::CustomerStats* stats) {
  const profiles::Cart& cart = person.cart();
  switch (rule.kind) {
    case Kind::kCartFilled:
      if (cart.empty()) return "cart_emptied";
      break;
    case Kind::kAbandonedCart:
      if (cart.empty()) return "cart_emptied";
      if (cart.version != timer.version) return "cart_changed";
      break;
    case Kind::kHighValueCart: {
      if (cart.empty()) return "cart_emptied";
      const profiles::CartTotals totals = profiles::TotalsOf(cart);
      const Amount aov = stats ? ComparableAov(*stats, totals) : 0;
      if (!Crosses(totals.value, aov, rule.factor)) return "below_factor";
      break;
    }
    case Kind::kDormantCustomer:
      if (stats == nullptr || static_cast<std::uint64_t>(stats->orders) != timer.version) {
        return "ordered_since";
      }
      break;
  }
  return std::nullopt;
}

Decision Fire(const RuleSet& rules, const Timer& timer, const Person& person,
              const profiles::CustomerStats* stats, const std::optional<profiles::Score>& score,
              const Marks& marks, EpochMs now, int utc_offset_minutes) {
  using Outcome = Decision::Outcome;
  if (timer.rule >= rules.rules.size()) return Drop(Outcome::kStale, "rule_removed", marks);
  const Rule& rule = rules.rules[timer.rule];
  if (timer.stage >= rule.stages.size()) return Drop(Outcome::kStale, "stage_removed", marks);
  if (!person.known()) return Drop(Outcome::kStale, "not_known", marks);
  const profiles::Cart& cart = person.cart();
  const profiles::CartTotals totals = profiles::TotalsOf(cart);

  // Still what armed it?
  if (auto stale = StaleReason(rule, timer, person, stats)) {
    return Drop(Outcome::kStale, std::string(*stale), marks);
  }

  // Conditions.
  const bool cart_rule = rule.kind != Kind::kDormantCustomer;
  if (cart_rule && totals.value < rule.conditions.min_cart_value) {
    return Drop(Outcome::kNotMatched, "min_cart_value", marks);
  }
  if (!rule.conditions.segments.empty() &&
      (!score || !Contains(rule.conditions.segments, profiles::SegmentName(score->segment)))) {
    return Drop(Outcome::kNotMatched, "segment", marks);
  }
  if (!rule.conditions.abc.empty() &&
      (!score || !Contains(rule.conditions.abc, profiles::AbcName(score->abc)))) {
    return Drop(Outcome::kNotMatched, "abc", marks);
  }
  auto fired = std::find_if(marks.fired.begin(), marks.fired.end(),
                            [&](const Marks::Fired& f) { return f.rule == timer.rule; });
  // The cooldown holds between firings of the rule's first stage: later stages belong
  // to the firing that began them.
  if (timer.stage == 0 && rule.cooldown > 0 && fired != marks.fired.end() &&
      now - fired->at < rule.cooldown) {
    return Drop(Outcome::kNotMatched, "cooldown", marks);
  }

  const Stage& stage = rule.stages[timer.stage];
  if (stage.email && rules.settings.quiet_hours) {
    const EpochMs local = now + static_cast<EpochMs>(utc_offset_minutes) * kMinute;
    const int local_minute =
        static_cast<int>(((local % kDay) + kDay) % kDay / kMinute);
    if (const int wait = MinutesUntilQuietEnds(*rules.settings.quiet_hours, local_minute)) {
      Decision held = Drop(Outcome::kHeld, "quiet_hours", marks);
      Timer next = timer;
      // To the window's end, on the minute.
      next.due = now - (local % kMinute + kMinute) % kMinute + static_cast<EpochMs>(wait) * kMinute;
      held.next = next;
      return held;
    }
  }

  Decision d;
  d.outcome = Outcome::kFired;
  d.marks = marks;
  if (stage.task) d.actions.push_back(Action{.type = ActionType::kTask});
  if (stage.email) {
    Action email{.type = ActionType::kEmail, .email_template = stage.email_template};
    if (person.traits().email.value.empty()) {
      email.skipped = true;
      email.reason = "no_email_address";
    } else if (marks.last_email_at > 0 && now - marks.last_email_at < rules.settings.email_cooldown) {
      email.skipped = true;
      email.reason = "email_cooldown";
    } else {
      d.marks.last_email_at = now;
    }
    d.actions.push_back(std::move(email));
  }
  if (timer.stage == 0) {
    auto f = std::find_if(d.marks.fired.begin(), d.marks.fired.end(),
                          [&](const Marks::Fired& m) { return m.rule == timer.rule; });
    if (f == d.marks.fired.end()) {
      d.marks.fired.push_back(Marks::Fired{timer.rule, now});
    } else {
      f->at = now;
    }
  }
  if (static_cast<std::size_t>(timer.stage) + 1 < rule.stages.size()) {
    // The next stage counts from the same start as this one (the cart's last change).
    Timer next = timer;
    next.stage = static_cast<std::uint8_t>(timer.stage + 1);
    next.due = timer.due - stage.after + rule.stages[next.stage].after;
    next.due = std::max(next.due, now);
    d.next = next;
  }
  return d;
}

}  // namespace cartwatch::rules
