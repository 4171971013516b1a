// The rule logic (rules/rules.h) against records built by the real transitions
// (profiles::Apply), with every time given: what each message arms, and what each timer
// does when it falls due.
#include "rules/rules.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/profiles/helpers.h"

namespace cartwatch::rules {
namespace {

namespace h = profiles::helpers;
using h::kT0;

// The records of one site, changed message by message as the store's writer does, and the
// timers each message arms.
class RulesWorld {
 public:
  explicit RulesWorld(RuleSet rules) : rules_(std::move(rules)) {}

  std::vector<Timer> Send(const std::string& json) {
    const profiles::Event e = h::Parse(json);
    profiles::Visitor* visitor = nullptr;
    if (!e.anonymous_id.empty()) visitor = &visitors_[e.anonymous_id];
    const std::string user_id(profiles::CustomerIdFor(e, visitor));
    profiles::Customer* customer = nullptr;
    bool customer_existed = false;
    if (!user_id.empty()) {
      customer_existed = customers_.contains(user_id);
      customer = &customers_[user_id];
    }
    const Before before = Snapshot(PersonOf(customer_existed ? customer : nullptr,
                                            customer == nullptr ? visitor : nullptr));
    const profiles::Outcome outcome = profiles::Apply(e, visitor, customer, options_);
    const Change change{.at = e.at,
                        .person = PersonOf(customer, customer == nullptr ? visitor : visitor),
                        .before = before,
                        .order_added = outcome.order_added};
    return Plan(rules_, change, options_);
  }

  Decision FireFor(const Timer& timer, const std::string& user_id, EpochMs now,
                   const Marks& marks = {}, int offset_minutes = 0) {
    const profiles::Customer& c = customers_.at(user_id);
    const profiles::CustomerStats stats = profiles::ComputeStats(c, now, options_);
    return Fire(rules_, timer, PersonOf(&c, nullptr), &stats, std::nullopt, marks, now,
                offset_minutes);
  }

  profiles::Customer& customer(const std::string& id) { return customers_.at(id); }

 private:
  RuleSet rules_;
  profiles::Options options_;
  std::map<std::string, profiles::Visitor> visitors_;
  std::map<std::string, profiles::Customer> customers_;
};

std::string AddToCart(std::string_view who, EpochMs at, std::string_view product, double price,
                      int quantity = 1) {
  return h::Track(who, "Product Added", at, h::ProductProps(product, price, quantity));
}

std::string RemoveFromCart(std::string_view who, EpochMs at, std::string_view product) {
  return h::Track(who, "Product Removed", at, h::ProductProps(product, 0, 1));
}

std::string Order(std::string_view who, EpochMs at, double total) {
  boost::json::object p = h::Products({h::ProductProps("p-ordered", total, 1)});
  p["order_id"] = "o-" + std::to_string(at);
  p["total"] = total;
  return h::Track(who, "Order Completed", at, std::move(p));
}

Rule Abandoned() {
  return Rule{.name = "abandoned",
              .kind = Kind::kAbandonedCart,
              .stages = {Stage{.after = kHour, .task = true, .email = true, .email_template = "abandoned_cart"},
                         Stage{.after = kDay, .email = true, .email_template = "abandoned_cart_2"}}};
}

Rule Filled() {
  return Rule{.name = "filled", .kind = Kind::kCartFilled, .stages = {Stage{.task = true}}};
}

Rule HighValue() {
  return Rule{.name = "high", .kind = Kind::kHighValueCart, .stages = {Stage{.task = true}}, .factor = 2};
}

Rule Dormant(bool adaptive) {
  return Rule{.name = "dormant",
              .kind = Kind::kDormantCustomer,
              .stages = {Stage{.email = true, .email_template = "win_back"}},
              .factor = 2.5,
              .after = 90 * kDay,
              .adaptive = adaptive};
}

TEST(RulesTest, AnAnonymousCartArmsNothingUntilThePersonIsKnown) {
  RulesWorld w({.rules = {Filled(), Abandoned()}});
  EXPECT_TRUE(w.Send(AddToCart("a:dev", kT0, "p1", 10)).empty());
  EXPECT_TRUE(w.Send(AddToCart("a:dev", kT0 + 1000, "p2", 10)).empty());
  // The identify links the device: the cart built anonymously is the customer's now.
  const auto timers = w.Send(h::Identify("a:dev,u:anna", kT0 + 2000));
  ASSERT_EQ(timers.size(), 2u);
  const std::uint64_t version = w.customer("anna").cart.version;
  EXPECT_EQ(timers[0], (Timer{0, 0, kT0 + 2000, version}));  // cart_filled at once
  EXPECT_EQ(timers[1].rule, 1);
  EXPECT_EQ(timers[1].stage, 0);
  EXPECT_EQ(timers[1].version, version);
  EXPECT_EQ(timers[1].due, kT0 + 2000 + kHour);
}

TEST(RulesTest, CartFilledOncePerCartLifetime) {
  RulesWorld w({.rules = {Filled()}});
  w.Send(h::Identify("a:dev,u:anna", kT0));
  ASSERT_EQ(w.Send(AddToCart("u:anna", kT0 + 1000, "p1", 10)).size(), 1u);
  EXPECT_TRUE(w.Send(AddToCart("u:anna", kT0 + 2000, "p2", 10)).empty());  // not empty before
  EXPECT_TRUE(w.Send(RemoveFromCart("u:anna", kT0 + 3000, "p1")).empty());
  EXPECT_TRUE(w.Send(RemoveFromCart("u:anna", kT0 + 4000, "p2")).empty());  // emptied
  EXPECT_EQ(w.Send(AddToCart("u:anna", kT0 + 5000, "p3", 10)).size(), 1u);  // a new lifetime
}

TEST(RulesTest, AbandonedCartReArmsOnEveryChangeAndOlderTimersGoStale) {
  RulesWorld w({.rules = {Abandoned()}});
  w.Send(h::Identify("a:dev,u:anna", kT0));
  const auto first = w.Send(AddToCart("u:anna", kT0 + kMinute, "p1", 10));
  ASSERT_EQ(first.size(), 1u);
  const auto second = w.Send(AddToCart("u:anna", kT0 + 2 * kMinute, "p2", 10));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].due, kT0 + 2 * kMinute + kHour);
  EXPECT_GT(second[0].version, first[0].version);

  const Decision stale = w.FireFor(first[0], "anna", first[0].due);
  EXPECT_EQ(stale.outcome, Decision::Outcome::kStale);
  EXPECT_EQ(stale.reason, "cart_changed");

  const Decision fired = w.FireFor(second[0], "anna", second[0].due);
  ASSERT_EQ(fired.outcome, Decision::Outcome::kFired);
  ASSERT_EQ(fired.actions.size(), 2u);  // no e-mail address: the e-mail is recorded skipped
  EXPECT_EQ(fired.actions[0].type, ActionType::kTask);
  EXPECT_EQ(fired.actions[1].type, ActionType::kEmail);
  EXPECT_TRUE(fired.actions[1].skipped);
  EXPECT_EQ(fired.actions[1].reason, "no_email_address");
  // The second stage, a day after the cart's last change, for the same version.
  ASSERT_TRUE(fired.next.has_value());
  EXPECT_EQ(fired.next->stage, 1);
  EXPECT_EQ(fired.next->version, second[0].version);
  EXPECT_EQ(fired.next->due, kT0 + 2 * kMinute + kDay);
}

TEST(RulesTest, AnOrderOrAnEmptiedCartEndsTheAbandonment) {
  RulesWorld w({.rules = {Abandoned()}});
  w.Send(h::Identify("a:dev,u:anna", kT0, {{"email", "anna@example.com"}}));
  const auto armed = w.Send(AddToCart("u:anna", kT0 + kMinute, "p1", 10));
  ASSERT_EQ(armed.size(), 1u);
  EXPECT_TRUE(w.Send(Order("u:anna", kT0 + 2 * kMinute, 10)).empty());
  const Decision after_order = w.FireFor(armed[0], "anna", armed[0].due);
  EXPECT_EQ(after_order.outcome, Decision::Outcome::kStale);

  const auto again = w.Send(AddToCart("u:anna", kT0 + 3 * kMinute, "p1", 10));
  ASSERT_EQ(again.size(), 1u);
  w.Send(RemoveFromCart("u:anna", kT0 + 4 * kMinute, "p1"));
  EXPECT_EQ(w.FireFor(again[0], "anna", again[0].due).reason, "cart_emptied");
}

TEST(RulesTest, EmailsRespectTheCooldownAcrossRules) {
  RuleSet rules{.rules = {Abandoned()}};
  RulesWorld w(rules);
  w.Send(h::Identify("a:dev,u:anna", kT0, {{"email", "anna@example.com"}}));
  const auto armed = w.Send(AddToCart("u:anna", kT0, "p1", 10));
  const Decision first = w.FireFor(armed[0], "anna", armed[0].due);
  ASSERT_EQ(first.outcome, Decision::Outcome::kFired);
  EXPECT_FALSE(first.actions[1].skipped);
  EXPECT_EQ(first.marks.last_email_at, armed[0].due);
  // Another e-mail within 16 h: recorded as skipped, the task still goes out.
  const Decision second = w.FireFor(armed[0], "anna", armed[0].due + kHour, first.marks);
  ASSERT_EQ(second.outcome, Decision::Outcome::kFired);
  EXPECT_TRUE(second.actions[1].skipped);
  EXPECT_EQ(second.actions[1].reason, "email_cooldown");
  EXPECT_EQ(second.marks.last_email_at, first.marks.last_email_at);
}

TEST(RulesTest, HighValueCartOncePerCrossing) {
  RulesWorld w({.rules = {HighValue()}});
  w.Send(h::Identify("a:dev,u:anna", kT0));
  w.Send(Order("u:anna", kT0, 100));  // AOV 100
  EXPECT_TRUE(w.Send(AddToCart("u:anna", kT0 + 1000, "p1", 150)).empty());  // 150: below 2x
  const auto crossed = w.Send(AddToCart("u:anna", kT0 + 2000, "p2", 60));   // 210
  ASSERT_EQ(crossed.size(), 1u);
  EXPECT_EQ(crossed[0].due, kT0 + 2000);
  EXPECT_TRUE(w.Send(AddToCart("u:anna", kT0 + 3000, "p3", 10)).empty());  // still above
  EXPECT_EQ(w.FireFor(crossed[0], "anna", kT0 + 4000).outcome, Decision::Outcome::kFired);
  // Falls below, crosses again: once more.
  w.Send(RemoveFromCart("u:anna", kT0 + 5000, "p2"));
  EXPECT_EQ(w.Send(AddToCart("u:anna", kT0 + 6000, "p4", 100)).size(), 1u);
}

TEST(RulesTest, HighValueNeedsAnOrder) {
  RulesWorld w({.rules = {HighValue()}});
  w.Send(h::Identify("a:dev,u:anna", kT0));
  EXPECT_TRUE(w.Send(AddToCart("u:anna", kT0 + 1000, "p1", 5000)).empty());
}

TEST(RulesTest, DormancyAfterAFixedTimeAndAnOrderReArms) {
  RulesWorld w({.rules = {Dormant(false)}});
  w.Send(h::Identify("a:dev,u:anna", kT0, {{"email", "anna@example.com"}}));
  const auto first = w.Send(Order("u:anna", kT0, 50));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].due, kT0 + 90 * kDay);
  EXPECT_EQ(first[0].version, 1u);
  const auto second = w.Send(Order("u:anna", kT0 + 10 * kDay, 50));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(w.FireFor(first[0], "anna", first[0].due).reason, "ordered_since");
  const Decision fired = w.FireFor(second[0], "anna", second[0].due);
  ASSERT_EQ(fired.outcome, Decision::Outcome::kFired);
  EXPECT_EQ(fired.actions.size(), 1u);
  EXPECT_FALSE(fired.next.has_value());  // once per dormancy
}

TEST(RulesTest, AdaptiveDormancyUsesTheCustomersOwnCadence) {
  RulesWorld w({.rules = {Dormant(true)}});
  w.Send(h::Identify("a:dev,u:anna", kT0));
  // One order: no cadence yet, the fixed 90 days.
  EXPECT_EQ(w.Send(Order("u:anna", kT0, 50))[0].due, kT0 + 90 * kDay);
  // Every 10 days: 2.5 x 10 = 25 days after the last.
  w.Send(Order("u:anna", kT0 + 10 * kDay, 50));
  const auto timers = w.Send(Order("u:anna", kT0 + 20 * kDay, 50));
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].due, kT0 + 20 * kDay + 25 * kDay);
  // Every day: 2.5 days, but at least min_after (14 days).
  RulesWorld daily({.rules = {Dormant(true)}});
  daily.Send(h::Identify("a:dev,u:bob", kT0));
  daily.Send(Order("u:bob", kT0, 50));
  const auto d = daily.Send(Order("u:bob", kT0 + kDay, 50));
  EXPECT_EQ(d[0].due, kT0 + kDay + 14 * kDay);
}

TEST(RulesTest, ConditionsThatDoNotMatchNeverFire) {
  Rule rule = Abandoned();
  rule.conditions.min_cart_value = h::Money(100);
  Rule segment = Filled();
  segment.conditions.segments = {"champions"};
  RulesWorld w({.rules = {rule, segment}});
  w.Send(h::Identify("a:dev,u:anna", kT0));
  const auto timers = w.Send(AddToCart("u:anna", kT0, "p1", 20));
  ASSERT_EQ(timers.size(), 2u);
  for (const Timer& t : timers) {
    const Decision d = w.FireFor(t, "anna", t.due);
    EXPECT_EQ(d.outcome, Decision::Outcome::kNotMatched) << int(t.rule);
    EXPECT_EQ(d.reason, t.rule == 0 ? "min_cart_value" : "segment");
  }
}

TEST(RulesTest, ARulesCooldownSkipsItsNextFiring) {
  Rule rule = Filled();
  rule.cooldown = kDay;
  RulesWorld w({.rules = {rule}});
  w.Send(h::Identify("a:dev,u:anna", kT0));
  const auto timers = w.Send(AddToCart("u:anna", kT0, "p1", 20));
  const Decision first = w.FireFor(timers[0], "anna", kT0);
  ASSERT_EQ(first.outcome, Decision::Outcome::kFired);
  EXPECT_EQ(w.FireFor(timers[0], "anna", kT0 + kHour, first.marks).reason, "cooldown");
  EXPECT_EQ(w.FireFor(timers[0], "anna", kT0 + kDay, first.marks).outcome,
            Decision::Outcome::kFired);
}

TEST(RulesTest, QuietHoursHoldAnEmailUntilTheWindowEndsInThePersonsTime) {
  RuleSet rules{.rules = {Abandoned()}};
  rules.settings.quiet_hours = ParseQuietHours("22:00-08:00");
  ASSERT_TRUE(rules.settings.quiet_hours);
  RulesWorld w(rules);
  w.Send(h::Identify("a:dev,u:anna", kT0, {{"email", "anna@example.com"}}));
  const auto timers = w.Send(AddToCart("u:anna", kT0, "p1", 20));
  // 23:30 UTC; the person is at UTC+3: 02:30 local, 5 h 30 min before 08:00 local.
  const EpochMs day = (kT0 / kDay + 1) * kDay;
  const EpochMs now = day + 23 * kHour + 30 * kMinute;
  const Decision held = w.FireFor(timers[0], "anna", now, {}, 180);
  ASSERT_EQ(held.outcome, Decision::Outcome::kHeld);
  ASSERT_TRUE(held.next);
  EXPECT_EQ(held.next->due, now + 5 * kHour + 30 * kMinute);
  EXPECT_EQ(held.next->stage, 0);
  // At UTC-5 it is 18:30: sent at once.
  EXPECT_EQ(w.FireFor(timers[0], "anna", now, {}, -300).outcome, Decision::Outcome::kFired);
}

TEST(RulesTest, QuietHoursParse) {
  EXPECT_TRUE(ParseQuietHours("22:00-08:00"));
  EXPECT_TRUE(ParseQuietHours("13:15-14:45"));
  EXPECT_FALSE(ParseQuietHours("22:00-22:00"));
  EXPECT_FALSE(ParseQuietHours("24:00-08:00"));
  EXPECT_FALSE(ParseQuietHours("22-08"));
}

TEST(RulesTest, MarksRoundTrip) {
  Marks marks{.last_email_at = kT0, .fired = {{0, kT0}, {3, kT0 + 5}}};
  auto decoded = DecodeMarks(EncodeMarks(marks));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, marks);
  EXPECT_FALSE(DecodeMarks(""));
  EXPECT_FALSE(DecodeMarks(EncodeMarks(marks) + "x"));
}

}  // namespace
}  // namespace cartwatch::rules
