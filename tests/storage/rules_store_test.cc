// The rule engine inside the real store (RocksDB on disk): timers armed in the batch of the
// message that armed them, fired with a time the test gives (the Clock seam is
// FireDueTimers' `now`), each action in the outbox exactly once, also across crashes,
// replays of the records and failed writes.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <future>
#include <random>
#include <thread>

#include <rocksdb/db.h>

#include "storage/fault_injection.h"
#include "storage/store.h"
#include "tests/profiles/helpers.h"

namespace cartwatch::storage {
namespace {

namespace fs = std::filesystem;
namespace h = profiles::helpers;
using h::kDay;
using h::kHour;
using h::kMinute;
using h::kT0;

Message ToMessage(const std::string& json) {
  auto v = boost::json::parse(json).as_object();
  return Message{std::string(v["messageId"].as_string()),
                 *util::ParseIso8601(v["receivedAt"].as_string()), json};
}

std::string AddToCart(std::string_view who, profiles::EpochMs at, std::string_view product,
                      double price) {
  return h::Track(who, "Product Added", at, h::ProductProps(product, price, 1));
}

std::string Order(std::string_view who, profiles::EpochMs at, double total) {
  boost::json::object p = h::Products({h::ProductProps("p-ordered", total, 1)});
  p["order_id"] = "o-" + std::to_string(at);
  p["total"] = total;
  return h::Track(who, "Order Completed", at, std::move(p));
}

rules::RuleSet ShopRules() {
  rules::RuleSet set;
  set.rules.push_back(rules::Rule{.name = "cart_filled",
                                  .kind = rules::Kind::kCartFilled,
                                  .stages = {rules::Stage{.task = true}}});
  set.rules.push_back(rules::Rule{
      .name = "abandoned_cart",
      .kind = rules::Kind::kAbandonedCart,
      .stages = {rules::Stage{.after = kHour, .task = true, .email = true, .email_template = "abandoned_cart"},
                 rules::Stage{.after = kDay, .email = true, .email_template = "abandoned_cart_2"}}});
  return set;
}

class RulesStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cartwatch-rules-store-" + std::to_string(std::random_device{}()));
    options_.data_dir = dir_.string();
    options_.thresholds_interval = std::chrono::hours(24 * 365);
    options_.dedup_window = std::chrono::hours(24 * 365);
    options_.rules = ShopRules();
    std::string error;
    auto templates = rules::EmailTemplates::Load(CARTWATCH_TEMPLATES_DIR, &error);
    ASSERT_TRUE(templates) << error;  // the templates Cartwatch ships
    options_.email_templates = std::make_shared<const rules::EmailTemplates>(std::move(*templates));
    options_.timer_tick = std::chrono::milliseconds(0);  // the test fires, with its own time
    options_.faults = faults_;
    options_.recovery_interval = std::chrono::milliseconds(20);
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    std::string error;
    auto opened = Store::Open(options_, &error);
    ASSERT_TRUE(opened.has_value()) << error;
    store_ = std::move(*opened);
  }
  // A crash: nothing unwritten is written at close (the records are replayed at open).
  void Crash() {
    options_.write_state_on_close = false;
    Reopen();
    options_.write_state_on_close = true;
  }
  void Send(const std::vector<std::string>& jsons) {
    std::vector<Message> messages;
    for (const auto& j : jsons) messages.push_back(ToMessage(j));
    std::promise<AppendResult> done;
    store_->Append("shop", std::move(messages), [&](const AppendResult& r) { done.set_value(r); });
    store_->Flush();
    ASSERT_FALSE(done.get_future().get().error);
  }
  FireResult Fire(profiles::EpochMs now) {
    const FireResult r = store_->FireDueTimers(now);
    EXPECT_FALSE(r.error) << r.error.message();
    return r;
  }
  std::vector<boost::json::object> Deliveries(std::string_view status = "") {
    std::vector<boost::json::object> out;
    auto page = store_->ReadDeliveries("shop", status, "", 1000);
    EXPECT_TRUE(page.has_value());
    if (!page) return out;
    for (const std::string& d : page->deliveries) out.push_back(boost::json::parse(d).as_object());
    return out;
  }
  // "<type> <rule> <stage> <status>" of each delivery.
  std::vector<std::string> Summary() {
    std::vector<std::string> out;
    for (const auto& d : Deliveries()) {
      out.push_back(std::string(d.at("type").as_string()) + " " +
                    std::string(d.at("rule").as_string()) + " " +
                    std::to_string(d.at("stage").as_int64()) + " " +
                    std::string(d.at("status").as_string()));
    }
    return out;
  }

  fs::path dir_;
  StoreOptions options_;
  std::shared_ptr<FaultInjection> faults_ = std::make_shared<FaultInjection>();
  std::unique_ptr<Store> store_;
};

TEST_F(RulesStoreTest, AKnownCustomersCartFiresEachStageOnceWhenDue) {
  Send({h::Identify("a:dev,u:anna", kT0, {{"email", "anna@example.com"}, {"name", "Anna Petrova"}}),
        AddToCart("u:anna", kT0 + kMinute, "p1", 40)});
  EXPECT_EQ(Fire(kT0 + kMinute).fired, 1u);  // cart_filled, at once
  EXPECT_EQ(Summary(), std::vector<std::string>{"task.created cart_filled 0 pending"});
  EXPECT_EQ(Fire(kT0 + 30 * kMinute).due, 0u);
  const FireResult hour = Fire(kT0 + kMinute + kHour);
  EXPECT_EQ(hour.fired, 1u);
  EXPECT_EQ(hour.actions, 2u);
  EXPECT_EQ(Fire(kT0 + 2 * kHour).due, 0u);  // the first stage is gone; the second waits
  EXPECT_EQ(Fire(kT0 + kMinute + kDay).fired, 1u);
  EXPECT_EQ(Fire(kT0 + 2 * kDay).due, 0u);
  EXPECT_EQ(Summary(), (std::vector<std::string>{
                           "task.created cart_filled 0 pending",
                           "task.created abandoned_cart 0 pending",
                           "email.triggered abandoned_cart 0 pending",
                           "email.triggered abandoned_cart 1 pending",
                       }));
  // What a manager and an e-mail get.
  const auto all = Deliveries();
  const auto& task = all[1].at("data").as_object();
  EXPECT_EQ(task.at("customer").at("user_id").as_string(), "anna");
  EXPECT_EQ(task.at("customer").at("email").as_string(), "anna@example.com");
  EXPECT_EQ(task.at("cart").at("lines").as_array().size(), 1u);
  EXPECT_NE(std::string(task.at("summary").as_string()).find("Anna Petrova left a cart"),
            std::string::npos)
      << task.at("summary");
  const auto& email = all[2].at("data").as_object();
  EXPECT_EQ(email.at("to").as_string(), "anna@example.com");
  EXPECT_EQ(email.at("template").as_string(), "abandoned_cart");
  EXPECT_EQ(email.at("language").as_string(), "en");  // neither she nor the site says otherwise
  EXPECT_EQ(email.at("subject").as_string(), "Your cart is waiting for you");
  const std::string html(email.at("html").as_string());
  EXPECT_NE(html.find("Name p1"), std::string::npos);
  EXPECT_NE(html.find("40.00 EUR"), std::string::npos);
  EXPECT_EQ(email.at("action").at("rule").as_string(), "abandoned_cart");
  EXPECT_TRUE(all[2].at("id").as_string().starts_with("act_"));
}

TEST_F(RulesStoreTest, EmailsInThePersonsLanguageAndQuietHoursInTheirTimeZone) {
  options_.rules.settings.quiet_hours = rules::ParseQuietHours("22:00-08:00");
  options_.rules.sites["shop"] = rules::SiteSettings{.timezone = "UTC", .locale = "en",
                                                     .cart_url = "https://shop.example/cart"};
  Reopen();
  auto with_context = [](std::string json) {
    auto v = boost::json::parse(json).as_object();
    v["context"].emplace_object()["timezone"] = "Europe/Moscow";  // UTC+3
    v["context"].as_object()["locale"] = "ru-RU";
    return boost::json::serialize(v);
  };
  // Added at 18:30 UTC: due at 19:30 UTC, 22:30 in Moscow: held until 08:00 there (05:00 UTC).
  const profiles::EpochMs day = (kT0 / kDay + 1) * kDay;
  Send({with_context(h::Identify("a:dev,u:olga", day, {{"email", "olga@example.ru"}, {"first_name", "Ольга"}})),
        with_context(AddToCart("u:olga", day + 18 * kHour + 30 * kMinute, "p1", 40))});
  const FireResult at_due = Fire(day + 19 * kHour + 30 * kMinute);
  EXPECT_EQ(at_due.held, 1u);
  EXPECT_EQ(at_due.fired, 1u);  // cart_filled (a task: not held)
  EXPECT_EQ(Fire(day + 29 * kHour - 1).due, 0u);
  const FireResult morning = Fire(day + 29 * kHour);
  EXPECT_EQ(morning.fired, 1u);
  const auto all = Deliveries();
  ASSERT_EQ(all.size(), 3u);
  const auto& email = all[2].at("data").as_object();
  EXPECT_EQ(email.at("locale").as_string(), "ru-RU");
  EXPECT_EQ(email.at("language").as_string(), "ru");
  EXPECT_EQ(email.at("subject").as_string(), "Ольга, ваша корзина ждёт вас");
  EXPECT_NE(std::string(email.at("html").as_string()).find("href=\"https://shop.example/cart\""),
            std::string::npos);
}

// The site's own time zone, with its summer time: the same UTC hour is inside the quiet
// hours in July (22:30 in Berlin) and outside in January (21:30).
TEST_F(RulesStoreTest, QuietHoursFollowTheSitesSummerTime) {
  options_.rules.settings.quiet_hours = rules::ParseQuietHours("22:00-08:00");
  options_.rules.sites["shop"] = rules::SiteSettings{.timezone = "Europe/Berlin", .locale = "en", .cart_url = ""};
  Reopen();
  const profiles::EpochMs july = *util::ParseIso8601("2026-07-01T19:30:00Z");
  const profiles::EpochMs january = *util::ParseIso8601("2026-01-15T19:30:00Z");
  Send({h::Identify("a:d1,u:summer", july, {{"email", "s@example.com"}}),
        AddToCart("u:summer", july, "p1", 40),
        h::Identify("a:d2,u:winter", january, {{"email", "w@example.com"}}),
        AddToCart("u:winter", january, "p1", 40)});
  // January: due 20:30 UTC, 21:30 in Berlin: sent.
  const FireResult winter = Fire(january + kHour);
  EXPECT_EQ(winter.held, 0u);
  EXPECT_EQ(winter.fired, 2u);  // cart_filled and the abandonment
  // July: due 20:30 UTC, 22:30 in Berlin: held until 08:00 there, 06:00 UTC. (So is the
  // winter customer's second e-mail, due since January: quiet hours are about when an
  // e-mail is sent.)
  const FireResult summer = Fire(july + kHour);
  EXPECT_EQ(summer.fired, 1u);  // the summer customer's cart_filled task: never held
  EXPECT_EQ(summer.held, 2u);
  EXPECT_EQ(Fire(*util::ParseIso8601("2026-07-02T05:59:59Z")).due, 0u);
  EXPECT_EQ(Fire(*util::ParseIso8601("2026-07-02T06:00:00Z")).fired, 2u);
}

TEST_F(RulesStoreTest, AnOrderEndsTheAbandonmentAndAnAnonymousCartArmsNothing) {
  Send({h::Identify("a:d1,u:bob", kT0, {{"email", "bob@example.com"}}),
        AddToCart("u:bob", kT0, "p1", 40), AddToCart("a:stranger", kT0, "p2", 10)});
  EXPECT_EQ(Fire(kT0).fired, 1u);  // cart_filled, on the next tick
  Send({Order("u:bob", kT0 + 10 * kMinute, 40)});
  const FireResult r = Fire(kT0 + 3 * kDay);
  EXPECT_EQ(r.fired, 0u);
  EXPECT_EQ(r.stale, 1u);  // the abandonment: ordered since
  EXPECT_EQ(Summary(), std::vector<std::string>{"task.created cart_filled 0 pending"});
}

TEST_F(RulesStoreTest, TheCartBuiltAnonymouslyCountsOnceThePersonIdentifies) {
  Send({AddToCart("a:later", kT0, "p1", 10)});
  EXPECT_EQ(Fire(kT0 + kDay).due, 0u);
  Send({h::Identify("a:later,u:carol", kT0 + kDay, {{"email", "carol@example.com"}})});
  EXPECT_EQ(Fire(kT0 + kDay + 2 * kHour).fired, 2u);  // cart_filled, then the abandonment
}

TEST_F(RulesStoreTest, ACrashNeitherLosesNorRepeatsATimer) {
  Send({h::Identify("a:dev,u:anna", kT0, {{"email", "anna@example.com"}}),
        AddToCart("u:anna", kT0, "p1", 40)});
  // A crash before it is due: the timer was written with the message.
  Crash();
  EXPECT_EQ(Fire(kT0 + 2 * kHour).fired, 2u);
  const std::size_t after_firing = Deliveries().size();
  EXPECT_EQ(after_firing, 3u);
  // A crash after firing: the records are rebuilt from the event log, which arms nothing.
  Crash();
  EXPECT_EQ(Fire(kT0 + 2 * kHour).due, 0u);
  EXPECT_EQ(Deliveries().size(), after_firing);
  // The second stage is still there, once.
  EXPECT_EQ(Fire(kT0 + 2 * kDay).fired, 1u);
  EXPECT_EQ(Deliveries().size(), after_firing + 1);
}

TEST_F(RulesStoreTest, AFailedFiringActsExactlyOnceAfterRecovery) {
  options_.fsync = true;
  Reopen();
  Send({h::Identify("a:dev,u:anna", kT0, {{"email", "anna@example.com"}}),
        AddToCart("u:anna", kT0, "p1", 40)});
  faults_->SetSyncFailing(true);
  const FireResult failed = store_->FireDueTimers(kT0 + 2 * kHour);
  EXPECT_TRUE(failed.error);
  faults_->SetSyncFailing(false);
  bool writable = false;
  for (int i = 0; i < 500 && !writable; ++i) {
    writable = !store_->CheckWritable();
    if (!writable) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(writable);
  // The failed write was never acknowledged, but its sync failed, not its append: RocksDB,
  // reopened, may have recovered it from the log. Whole or not at all, so firing again
  // leaves each action exactly once.
  Fire(kT0 + 2 * kHour);
  EXPECT_EQ(Summary(), (std::vector<std::string>{
                           "task.created cart_filled 0 pending",
                           "task.created abandoned_cart 0 pending",
                           "email.triggered abandoned_cart 0 pending",
                       }));
  EXPECT_EQ(Fire(kT0 + 2 * kHour).due, 0u);
}

TEST_F(RulesStoreTest, DeliveriesByStatusAndCursor) {
  Send({h::Identify("a:dev,u:nomail", kT0), AddToCart("u:nomail", kT0, "p1", 40)});
  Fire(kT0 + 2 * kHour);
  // No e-mail address: the e-mail is recorded as skipped, with the reason.
  const auto skipped = Deliveries("skipped");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].at("reason").as_string(), "no_email_address");
  EXPECT_EQ(Deliveries("pending").size(), 2u);
  auto first = store_->ReadDeliveries("shop", "", "", 1);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->deliveries.size(), 1u);
  auto rest = store_->ReadDeliveries("shop", "", first->next_cursor, 10);
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->deliveries.size(), 2u);
  EXPECT_EQ(store_->ReadDeliveries("shop", "lost", "", 10).error(),
            make_error_code(Errc::kInvalidArgument));
  EXPECT_EQ(store_->ReadDeliveries("shop", "", "nope", 10).error(),
            make_error_code(Errc::kInvalidArgument));
  EXPECT_TRUE(store_->ReadDeliveries("other", "", "", 10)->deliveries.empty());
}

TEST_F(RulesStoreTest, ACustomersPendingTimersAndActionsAndTheirErase) {
  Send({h::Identify("a:dev,u:anna", kT0, {{"email", "anna@example.com"}}),
        AddToCart("u:anna", kT0, "p1", 40)});
  auto rules = store_->ReadPersonRules("shop", "anna", 10);
  ASSERT_TRUE(rules);
  ASSERT_EQ(rules->pending.size(), 2u);
  EXPECT_EQ(rules->pending[0].rule, "cart_filled");
  EXPECT_EQ(rules->pending[1].rule, "abandoned_cart");
  EXPECT_EQ(rules->pending[1].due_at, kT0 + kHour);
  // A change re-arms; the older timer no longer applies and is not listed.
  Send({AddToCart("u:anna", kT0 + kMinute, "p2", 10)});
  rules = store_->ReadPersonRules("shop", "anna", 10);
  ASSERT_EQ(rules->pending.size(), 2u);
  EXPECT_EQ(rules->pending[1].due_at, kT0 + kMinute + kHour);
  EXPECT_EQ(Fire(kT0 + kMinute).fired, 1u);
  rules = store_->ReadPersonRules("shop", "anna", 10);
  ASSERT_EQ(rules->pending.size(), 1u);
  ASSERT_EQ(rules->actions.size(), 1u);
  EXPECT_NE(rules->actions[0].find("\"cart_filled\""), std::string::npos);

  // The erase takes the timers, the marks and the actions not delivered with it.
  std::promise<EraseResult> erased;
  store_->EraseCustomer("shop", "anna", [&](const EraseResult& r) { erased.set_value(r); });
  store_->Flush();
  ASSERT_FALSE(erased.get_future().get().error);
  rules = store_->ReadPersonRules("shop", "anna", 10);
  ASSERT_TRUE(rules);
  EXPECT_TRUE(rules->pending.empty());
  EXPECT_TRUE(rules->actions.empty());
  EXPECT_TRUE(Deliveries().empty());
  EXPECT_EQ(Fire(kT0 + 3 * kDay).due, 0u);
}

TEST_F(RulesStoreTest, WithoutRulesNothingIsArmed) {
  options_.rules = {};
  Reopen();
  Send({h::Identify("a:dev,u:anna", kT0), AddToCart("u:anna", kT0, "p1", 40)});
  EXPECT_EQ(Fire(kT0 + 2 * kDay).due, 0u);
}

// --- Webhook deliveries (storage/deliveries.h) -------------------------------------------

class DeliveriesStoreTest : public RulesStoreTest {
 protected:
  void SetUp() override {
    options_.webhooks = {WebhookEndpoint{.name = "crm", .events = {}},
                         WebhookEndpoint{.name = "mail", .events = {"email.triggered"}}};
    options_.delivery_schedule = webhooks::Schedule{.delays = {1000, 2000}, .jitter = 0};
    RulesStoreTest::SetUp();
  }
  std::vector<DueDelivery> Due(std::string_view endpoint, profiles::EpochMs now,
                               const std::set<std::uint64_t>& skip = {}) {
    auto due = store_->ReadDueDeliveries(endpoint, now, 100, skip);
    EXPECT_TRUE(due.has_value());
    return due ? *due : std::vector<DueDelivery>{};
  }
  DeliveryResult Change(DeliveryChange change) {
    std::promise<DeliveryResult> done;
    store_->ChangeDeliveries(std::move(change), [&](const DeliveryResult& r) { done.set_value(r); },
                             /*own_thread=*/true);
    return done.get_future().get();
  }
  DeliveryResult Attempt(const DueDelivery& d, int status, profiles::EpochMs at,
                         std::string error = "") {
    return Change(DeliveryChange{
        .kind = DeliveryChange::Kind::kAttempts,
        .attempts = {DeliveryAttemptDone{.seq = d.seq,
                                         .endpoint = d.endpoint,
                                         .result = webhooks::Attempt{.status = status, .error = error},
                                         .at = at,
                                         .duration_ms = 3}}});
  }
  boost::json::object Entry(std::string_view id) {
    for (auto& d : Deliveries()) {
      if (d.at("id").as_string() == id) return d;
    }
    ADD_FAILURE() << "no entry " << id;
    return {};
  }
  DeliveryCounts Counts(std::string_view endpoint) {
    auto counts = store_->CountDeliveries(endpoint, 1000);
    EXPECT_TRUE(counts.has_value());
    return counts ? *counts : DeliveryCounts{};
  }
  // Anna's cart: cart_filled at once, the abandoned-cart task and e-mail an hour later.
  void AnnasCart() {
    Send({h::Identify("a:dev,u:anna", kT0, {{"email", "anna@example.com"}}),
          AddToCart("u:anna", kT0, "p1", 40)});
    Fire(kT0 + kHour + kMinute);
  }
};

TEST_F(DeliveriesStoreTest, EachActionGetsOneDeliveryPerEndpointThatSubscribesToItsType) {
  AnnasCart();
  ASSERT_EQ(Deliveries().size(), 3u);
  const auto crm = Due("crm", kT0 + 2 * kHour);
  const auto mail = Due("mail", kT0 + 2 * kHour);
  ASSERT_EQ(crm.size(), 3u);
  ASSERT_EQ(mail.size(), 1u);
  EXPECT_EQ(crm[0].id, "act_0000000000000001");
  EXPECT_EQ(crm[0].attempts, 0);
  // The body: the action's type, its creation time and its data, as listed.
  const auto body = boost::json::parse(mail[0].body).as_object();
  EXPECT_EQ(body.size(), 3u);
  EXPECT_EQ(body.at("type").as_string(), "email.triggered");
  const auto entry = Entry(mail[0].id);
  EXPECT_EQ(body.at("timestamp"), entry.at("created_at"));
  EXPECT_EQ(body.at("data"), entry.at("data"));
  EXPECT_EQ(entry.at("endpoints").as_array().size(), 2u);
  EXPECT_EQ(entry.at("status").as_string(), "pending");
  // In flight ones are left out; none is due before its time.
  EXPECT_EQ(Due("crm", kT0 + 2 * kHour, {crm[0].seq, crm[1].seq}).size(), 1u);
  EXPECT_TRUE(Due("crm", kT0 - 1).empty());
  EXPECT_TRUE(Due("unknown", kT0 + 2 * kHour).empty());
}

TEST_F(DeliveriesStoreTest, AttemptsAreJudgedDurablyAndTheStatusAddsUpTheEndpoints) {
  AnnasCart();
  const profiles::EpochMs t = kT0 + 2 * kHour;
  const auto due = Due("crm", t);
  ASSERT_EQ(due.size(), 3u);
  const DueDelivery task = due[0];
  // A 503: retried after the first delay.
  DeliveryResult r = Attempt(task, 503, t);
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].second, DeliveryOutcome::kRetrying);
  EXPECT_EQ(Entry(task.id).at("status").as_string(), "failed");
  EXPECT_EQ(Due("crm", t + 999).size(), 2u);
  Crash();
  ASSERT_EQ(Due("crm", t + 1000).size(), 3u);
  EXPECT_EQ(Due("crm", t + 1000)[2].attempts, 1);
  r = Attempt(task, 200, t + 1000);
  EXPECT_EQ(r.outcomes[0].second, DeliveryOutcome::kDelivered);
  auto entry = Entry(task.id);
  EXPECT_EQ(entry.at("status").as_string(), "delivered");
  const auto& attempts = entry.at("attempts").as_array();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].at("status").as_int64(), 503);
  EXPECT_EQ(attempts[1].at("status").as_int64(), 200);
  EXPECT_EQ(attempts[1].at("endpoint").as_string(), "crm");
  const auto& endpoint = entry.at("endpoints").as_array()[0].as_object();
  EXPECT_EQ(endpoint.at("state").as_string(), "delivered");
  EXPECT_EQ(endpoint.at("attempts").as_int64(), 2);
  EXPECT_TRUE(endpoint.at("next_attempt_at").is_null());
  EXPECT_EQ(Deliveries("delivered").size(), 1u);
  // A late result of a delivery already delivered changes nothing.
  r = Attempt(task, 500, t + 1100);
  EXPECT_TRUE(r.outcomes.empty());

  // The e-mail to both endpoints: delivered to one, dead at the other -> dead.
  const DueDelivery email = due[2];
  const DueDelivery email_mail = Due("mail", t)[0];
  ASSERT_EQ(email.seq, email_mail.seq);
  Attempt(email_mail, 204, t);
  EXPECT_EQ(Entry(email.id).at("status").as_string(), "pending");
  Attempt(email, 0, t, "connect: Connection refused");
  Attempt(email, 500, t + 1000);
  r = Attempt(email, 500, t + 3000);
  EXPECT_EQ(r.outcomes[0].second, DeliveryOutcome::kDead);
  entry = Entry(email.id);
  EXPECT_EQ(entry.at("status").as_string(), "dead");
  const auto& tries = entry.at("attempts").as_array();
  ASSERT_EQ(tries.size(), 4u);  // oldest first, each with its endpoint
  EXPECT_EQ(tries[0].at("endpoint").as_string(), "crm");
  EXPECT_EQ(tries[0].at("error").as_string(), "connect: Connection refused");
  EXPECT_TRUE(tries[0].at("status").is_null());
  EXPECT_EQ(tries[1].at("endpoint").as_string(), "mail");
  EXPECT_EQ(tries[1].at("status").as_int64(), 204);
  EXPECT_EQ(Deliveries("dead").size(), 1u);
  EXPECT_TRUE(Due("crm", t + kDay, {due[1].seq}).empty());
  EXPECT_EQ(Counts("crm").dead, 1u);
  EXPECT_EQ(Counts("crm").queued, 1u);  // due[1]
  EXPECT_EQ(Counts("mail").dead, 0u);

  // Retried by hand: one more attempt, then dead again; another site's id is not found.
  r = Change(DeliveryChange{.kind = DeliveryChange::Kind::kRetry, .site = "shop", .id = email.id, .now = t + 5000});
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.retried, 1u);  // the dead one; the delivered one stays
  EXPECT_EQ(Entry(email.id).at("status").as_string(), "failed");
  ASSERT_EQ(Due("crm", t + 5000, {due[1].seq}).size(), 1u);
  EXPECT_EQ(Counts("crm").dead, 0u);
  EXPECT_EQ(Counts("crm").queued, 2u);
  r = Attempt(email, 500, t + 6000);
  EXPECT_EQ(r.outcomes[0].second, DeliveryOutcome::kDead);
  EXPECT_EQ(Counts("crm").dead, 1u);
  EXPECT_FALSE(Change(DeliveryChange{.kind = DeliveryChange::Kind::kRetry, .site = "other", .id = email.id}).found);
  EXPECT_FALSE(Change(DeliveryChange{.kind = DeliveryChange::Kind::kRetry, .site = "shop", .id = "act_00000000000000ff"}).found);
  r = Change(DeliveryChange{.kind = DeliveryChange::Kind::kRetry, .site = "shop", .id = task.id});
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.retried, 0u);
}

TEST_F(DeliveriesStoreTest, A410DisablesTheEndpointAndItsDeliveriesWaitUntilItIsEnabled) {
  AnnasCart();
  const profiles::EpochMs t = kT0 + 2 * kHour;
  const auto due = Due("crm", t);
  DeliveryResult r = Attempt(due[0], 410, t);
  EXPECT_EQ(r.outcomes[0].second, DeliveryOutcome::kGone);
  EXPECT_EQ(r.disabled, std::vector<std::string>{"crm"});
  EXPECT_EQ(*store_->ReadDisabledEndpoints(), std::vector<std::string>{"crm"});
  for (const auto& d : Deliveries()) {
    EXPECT_EQ(d.at("endpoints").as_array()[0].at("state").as_string(), "waiting") << d.at("id");
  }
  EXPECT_EQ(Entry(due[0].id).at("status").as_string(), "failed");
  Crash();
  EXPECT_EQ(*store_->ReadDisabledEndpoints(), std::vector<std::string>{"crm"});
  r = Change(DeliveryChange{.kind = DeliveryChange::Kind::kEnable, .endpoint = "crm", .now = t + 10});
  EXPECT_TRUE(r.found);
  EXPECT_TRUE(r.was_disabled);
  EXPECT_TRUE(store_->ReadDisabledEndpoints()->empty());
  EXPECT_EQ(Entry(due[0].id).at("endpoints").as_array()[0].at("state").as_string(), "pending");
  EXPECT_EQ(Due("crm", t + 10).size(), 3u);
  r = Change(DeliveryChange{.kind = DeliveryChange::Kind::kEnable, .endpoint = "crm", .now = t + 20});
  EXPECT_FALSE(r.was_disabled);
  EXPECT_FALSE(Change(DeliveryChange{.kind = DeliveryChange::Kind::kEnable, .endpoint = "nope"}).found);
}

TEST_F(DeliveriesStoreTest, AnEraseTakesTheUndeliveredDeliveriesWithIt) {
  AnnasCart();
  const profiles::EpochMs t = kT0 + 2 * kHour;
  const auto due = Due("crm", t);
  Attempt(due[0], 200, t);
  Attempt(due[2], 500, t);
  Attempt(due[2], 500, t + 1000);
  Attempt(due[2], 500, t + 3000);
  EXPECT_EQ(Counts("crm").dead, 1u);
  std::promise<EraseResult> erased;
  store_->EraseCustomer("shop", "anna", [&](const EraseResult& r) { erased.set_value(r); });
  store_->Flush();
  ASSERT_FALSE(erased.get_future().get().error);
  EXPECT_TRUE(Due("crm", t + kDay).empty());
  EXPECT_TRUE(Due("mail", t + kDay).empty());
  EXPECT_EQ(Counts("crm").dead, 0u);
  EXPECT_EQ(Counts("crm").queued, 0u);
  EXPECT_EQ(Counts("mail").queued, 0u);
  // The delivered one stays listed; a late result for an erased one records nothing.
  EXPECT_EQ(Deliveries().size(), 1u);
  EXPECT_TRUE(Attempt(due[1], 200, t).outcomes.empty());
  EXPECT_EQ(Deliveries().size(), 1u);
}

// A data directory written before the dead index existed: its dead deliveries are indexed
// at the first open, once.
TEST_F(DeliveriesStoreTest, DeadDeliveriesOfAnOlderDataDirectoryAreIndexedAtOpen) {
  AnnasCart();
  const profiles::EpochMs t = kT0 + 2 * kHour;
  const auto due = Due("crm", t);
  for (profiles::EpochMs at : {t, t + 1000, t + 3000}) Attempt(due[0], 500, at);
  ASSERT_EQ(Counts("crm").dead, 1u);
  store_.reset();
  {
    // What the older version left: the records without 'D' keys, no marker.
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_.string(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_.string(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle *deliveries = nullptr, *meta = nullptr;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "deliveries") deliveries = handles[i];
      if (names[i] == "meta") meta = handles[i];
    }
    ASSERT_TRUE(deliveries && meta);
    int removed = 0;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), deliveries));
    for (it->Seek("D"); it->Valid() && it->key().starts_with("D"); it->Next()) {
      ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), deliveries, it->key()).ok());
      ++removed;
    }
    it.reset();
    EXPECT_EQ(removed, 1);
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), meta, "deliveries_dead_index").ok());
    for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
  }
  Reopen();
  EXPECT_EQ(Counts("crm").dead, 1u);
  EXPECT_EQ(Counts("mail").dead, 0u);
  // Retried by hand, it leaves the index as any other.
  Change(DeliveryChange{.kind = DeliveryChange::Kind::kRetry, .site = "shop", .id = due[0].id, .now = t + 5000});
  EXPECT_EQ(Counts("crm").dead, 0u);
}

// The armed timers are counted by the background thread, as they are armed and fired.
TEST_F(RulesStoreTest, TheBackgroundThreadCountsThePendingTimers) {
  options_.timer_tick = std::chrono::milliseconds(5);
  options_.timer_count_interval = std::chrono::milliseconds(5);
  Reopen();
  auto pending_becomes = [&](std::uint64_t want) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (store_->GetRuleFigures().timers_pending != want &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return store_->GetRuleFigures().timers_pending;
  };
  EXPECT_EQ(pending_becomes(0), 0u);
  // Now: cart_filled is due at once (fired by the background thread), abandoned_cart in an hour.
  const profiles::EpochMs now = util::NowMs();
  Send({h::Identify("a:dev,u:anna", now, {{"email", "anna@example.com"}}), AddToCart("u:anna", now, "p1", 40)});
  EXPECT_EQ(pending_becomes(1), 1u);
  Send({h::Identify("a:dev2,u:bob", now, {{"email", "bob@example.com"}}), AddToCart("u:bob", now, "p1", 40)});
  EXPECT_EQ(pending_becomes(2), 2u);
  // An hour later (the test's clock), both fire; the next stage (a day on) is armed for each.
  Fire(now + kHour + kMinute);
  EXPECT_EQ(pending_becomes(2), 2u);
  Fire(now + kHour + kDay + kMinute);
  EXPECT_EQ(pending_becomes(0), 0u);
}

}  // namespace
}  // namespace cartwatch::storage
