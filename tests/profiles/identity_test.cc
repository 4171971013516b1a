// Identity: linking anonymous visitors to customers and merging what they did.
#include <gtest/gtest.h>

#include "profiles/profiles.h"
#include "tests/profiles/helpers.h"

namespace cartwatch::profiles {
namespace {

using namespace helpers;  // NOLINT: test helpers

std::int64_t Quantity(const Cart& cart, std::string_view key) {
  for (const CartLine& l : cart.lines) {
    if (l.key == key) return l.quantity;
  }
  return 0;
}

boost::json::object OrderProps(std::string_view id, double total,
                               std::initializer_list<boost::json::object> products = {}) {
  boost::json::object o = Products(products);
  o["order_id"] = id;
  if (total > 0) o["total"] = total;
  return o;
}

TEST(IdentityTest, TheNewestTimeZoneAndLocaleAreKept) {
  World w;
  auto with_context = [](std::string json, std::string_view timezone, std::string_view locale) {
    auto v = boost::json::parse(json).as_object();
    v["context"].emplace_object()["timezone"] = timezone;
    v["context"].as_object()["locale"] = locale;
    return boost::json::serialize(v);
  };
  w.Send(with_context(Identify("a:dev,u:ada", kT0), "Europe/Moscow", "ru-RU"));
  EXPECT_EQ(w.customer("ada").timezone, "Europe/Moscow");
  EXPECT_EQ(w.visitor("dev").locale, "ru-RU");
  // A late message (older than what was seen) does not move them back.
  w.Send(with_context(Track("u:ada", "X", kT0 - kHour), "Asia/Tokyo", "ja-JP"));
  EXPECT_EQ(w.customer("ada").timezone, "Europe/Moscow");
  w.Send(with_context(Track("u:ada", "X", kT0 + kHour), "Asia/Tokyo", "ja-JP"));
  EXPECT_EQ(w.customer("ada").timezone, "Asia/Tokyo");
  EXPECT_EQ(w.customer("ada").locale, "ja-JP");
}

TEST(IdentityTest, CustomerIdFor) {
  Event e;
  EXPECT_EQ(CustomerIdFor(e, nullptr), "");
  Visitor v;
  v.user_id = "u-linked";
  EXPECT_EQ(CustomerIdFor(e, &v), "u-linked");
  e.user_id = "u-event";
  EXPECT_EQ(CustomerIdFor(e, &v), "u-event");
}

TEST(IdentityTest, IdentifyLinksTheVisitorAndMovesItsCartAndHistory) {
  World w;
  w.Send(Page("a:v1", kT0, "https://s/"));
  w.Send(Track("a:v1", "Product Viewed", kT0 + kMinute, ProductProps("p1", 10, 1)));
  w.Send(Track("a:v1", "Product Added", kT0 + 2 * kMinute, ProductProps("p1", 10, 2)));
  w.Send(Track("a:v1", "Product Added", kT0 + 3 * kMinute, ProductProps("p2", 5, 1)));
  w.Send(Identify("a:v1", kT0 - kMinute, {{"email", "anon@example.com"}}));  // no userId yet
  EXPECT_FALSE(w.has_customer("u1"));
  EXPECT_EQ(w.visitor("v1").cart.version, 2u);
  EXPECT_EQ(w.visitor("v1").traits.email.value, "anon@example.com");

  const Outcome out = w.Send(
      Identify("a:v1,u:u1", kT0 + 4 * kMinute, {{"firstName", "Ada"}, {"phone", "+441234"}}));
  EXPECT_TRUE(out.linked);
  EXPECT_TRUE(out.cart_changed);
  EXPECT_EQ(out.previous_user_id, "");

  const Visitor v = w.visitor("v1");
  EXPECT_EQ(v.user_id, "u1");
  EXPECT_EQ(v.linked_at, kT0 + 4 * kMinute);
  EXPECT_TRUE(v.cart.lines.empty());  // moved
  EXPECT_TRUE(v.viewed.empty());
  ASSERT_EQ(v.sessions.size(), 1u);  // sessions stay with the device

  const Customer c = w.customer("u1");
  EXPECT_EQ(c.user_id, "u1");
  EXPECT_EQ(c.anonymous_ids, std::vector<std::string>{"v1"});
  EXPECT_EQ(Quantity(c.cart, "p1"), 2);
  EXPECT_EQ(Quantity(c.cart, "p2"), 1);
  EXPECT_EQ(c.cart.version, 3u);  // above the visitor cart's 2
  ASSERT_EQ(c.viewed.size(), 1u);
  EXPECT_EQ(c.viewed[0].key, "p1");
  EXPECT_EQ(c.traits.email.value, "anon@example.com");
  EXPECT_EQ(c.traits.first_name.value, "Ada");
  EXPECT_EQ(c.traits.phone.value, "+441234");
  EXPECT_EQ(c.visits, std::vector<EpochMs>{kT0});
  EXPECT_EQ(c.first_seen, kT0 - kMinute);
  EXPECT_EQ(c.last_seen, kT0 + 4 * kMinute);

  // From now on the visitor's anonymous events change the customer's cart.
  w.Send(Track("a:v1", "Product Removed", kT0 + 5 * kMinute, {{"product_id", "p2"}}));
  EXPECT_EQ(Quantity(w.customer("u1").cart, "p2"), 0);
  EXPECT_EQ(w.customer("u1").cart.version, 4u);
  EXPECT_TRUE(w.visitor("v1").cart.lines.empty());
  // ...and its new sessions count as the customer's visits.
  EXPECT_TRUE(w.Send(Page("a:v1", kT0 + 2 * kHour, "https://s/")).session_started);
  EXPECT_EQ(w.customer("u1").visits, (std::vector<EpochMs>{kT0, kT0 + 2 * kHour}));
}

TEST(IdentityTest, AnyMessageWithAUserIdLinks) {
  World w;
  w.Send(Track("a:v1", "Product Added", kT0, ProductProps("p1", 10, 1)));
  const Outcome out =
      w.Send(Track("a:v1,u:u1", "Product Added", kT0 + kMinute, ProductProps("p2", 10, 1)));
  EXPECT_TRUE(out.linked);
  const Customer c = w.customer("u1");
  EXPECT_EQ(c.cart.lines.size(), 2u);
  EXPECT_EQ(w.visitor("v1").user_id, "u1");
  // Linking again is not a new link.
  EXPECT_FALSE(w.Send(Page("a:v1,u:u1", kT0 + 2 * kMinute, "https://s/")).linked);
}

TEST(IdentityTest, TwoDevicesMergeIntoOneCustomer) {
  World w;
  // Device 1: a laptop.
  w.Send(Page("a:laptop", kT0, "https://s/"));
  w.Send(Track("a:laptop", "Product Added", kT0 + kMinute, ProductProps("shared", 10, 1)));
  w.Send(Track("a:laptop", "Product Added", kT0 + 2 * kMinute, ProductProps("laptop-only", 3, 1)));
  w.Send(Track("a:laptop", "Product Viewed", kT0 + 3 * kMinute, ProductProps("viewed", 1, 1)));
  w.Send(Identify("a:laptop,u:u1", kT0 + 4 * kMinute, {{"email", "a@example.com"}}));
  const std::uint64_t version_after_laptop = w.customer("u1").cart.version;

  // Device 2: a phone, anonymous the next day, with its own cart and a guest order.
  w.Send(Page("a:phone", kT0 + kDay, "https://m.s/"));
  w.Send(Track("a:phone", "Product Added", kT0 + kDay + kMinute, ProductProps("shared", 10, 3)));
  w.Send(Track("a:phone", "Product Added", kT0 + kDay + 2 * kMinute,
               ProductProps("phone-only", 7, 1)));
  w.Send(
      Track("a:phone", "Product Viewed", kT0 + kDay + 3 * kMinute, ProductProps("viewed", 1, 1)));
  w.Send(Track("a:phone", "Order Completed", kT0 + kDay + 4 * kMinute, OrderProps("guest-1", 40)));
  w.Send(Track("a:phone", "Product Added", kT0 + kDay + 5 * kMinute, ProductProps("after", 2, 1)));
  const Outcome out =
      w.Send(Identify("a:phone,u:u1", kT0 + kDay + 6 * kMinute, {{"email", "b@example.com"}}));
  EXPECT_TRUE(out.linked);
  EXPECT_TRUE(out.order_added);

  const Customer c = w.customer("u1");
  EXPECT_EQ(c.anonymous_ids, (std::vector<std::string>{"laptop", "phone"}));
  // The guest order emptied the phone's cart, so only "after" came from the phone; the
  // laptop's lines stay.
  EXPECT_EQ(Quantity(c.cart, "shared"), 1);
  EXPECT_EQ(Quantity(c.cart, "laptop-only"), 1);
  EXPECT_EQ(Quantity(c.cart, "phone-only"), 0);
  EXPECT_EQ(Quantity(c.cart, "after"), 1);
  EXPECT_GT(c.cart.version, version_after_laptop);
  ASSERT_EQ(c.orders.size(), 1u);
  EXPECT_EQ(c.orders[0].order_id, "guest-1");
  EXPECT_EQ(c.orders[0].revenue, Money(40));
  EXPECT_EQ(c.visits, (std::vector<EpochMs>{kT0, kT0 + kDay}));
  ASSERT_EQ(c.viewed.size(), 1u);
  EXPECT_EQ(c.viewed[0].views, 2);
  EXPECT_EQ(c.viewed[0].viewed_at, kT0 + kDay + 3 * kMinute);
  EXPECT_EQ(c.traits.email.value, "b@example.com");
  EXPECT_EQ(c.first_seen, kT0);
  EXPECT_TRUE(w.visitor("phone").orders.empty());
}

TEST(IdentityTest, TheNewerLineWinsWhenBothCartsHoldAProduct) {
  World w;
  w.Send(Track("a:d1", "Product Added", kT0, ProductProps("p", 10, 1)));
  w.Send(Identify("a:d1,u:u1", kT0 + kMinute));
  w.Send(Track("a:d2", "Product Added", kT0 + 2 * kMinute, ProductProps("p", 12, 4)));
  w.Send(Track("a:d3", "Product Added", kT0 - kHour, ProductProps("p", 8, 9)));
  w.Send(Identify("a:d2,u:u1", kT0 + 3 * kMinute));
  w.Send(Identify("a:d3,u:u1", kT0 + 4 * kMinute));
  const Customer c = w.customer("u1");
  ASSERT_EQ(c.cart.lines.size(), 1u);
  EXPECT_EQ(c.cart.lines[0].quantity, 4);  // not 1 + 4 + 9: the same product, not more
  EXPECT_EQ(c.cart.lines[0].price, Money(12));
}

TEST(IdentityTest, GuestOrderSeenTwiceIsCountedOnce) {
  World w;
  w.Send(Track("a:v1", "Order Completed", kT0, OrderProps("o-1", 20)));
  // The storefront's server reports the same order for the known customer.
  w.Send(Track("u:u1", "Order Completed", kT0 + kSecond, OrderProps("o-1", 20)));
  w.Send(Identify("a:v1,u:u1", kT0 + kMinute));
  const Customer c = w.customer("u1");
  ASSERT_EQ(c.orders.size(), 1u);
  EXPECT_EQ(ComputeStats(c, kT0 + kDay).revenue, Money(20));
}

TEST(IdentityTest, TraitsKeepTheNewestValueWhateverTheArrivalOrder) {
  World w;
  w.Send(Identify("u:u1", kT0 + kHour, {{"email", "new@example.com"}}));
  w.Send(Identify("u:u1", kT0, {{"email", "old@example.com"}, {"lastName", "Byron"}}));
  const Customer c = w.customer("u1");
  EXPECT_EQ(c.traits.email.value, "new@example.com");
  EXPECT_EQ(c.traits.email.at, kT0 + kHour);
  EXPECT_EQ(c.traits.last_name.value, "Byron");
  // context.traits of any message count too.
  w.Send(Message("track", "u:u1", kT0 + 2 * kHour,
                 {{"event", "x"}, {"context", {{"traits", {{"name", "Ada Byron"}}}}}}));
  EXPECT_EQ(w.customer("u1").traits.name.value, "Ada Byron");
}

TEST(IdentityTest, ASharedDeviceMovesToTheNewCustomer) {
  World w;
  w.Send(Track("a:v1,u:u1", "Product Added", kT0, ProductProps("p1", 10, 1)));
  const Outcome out = w.Send(Identify("a:v1,u:u2", kT0 + kHour));
  EXPECT_TRUE(out.linked);
  EXPECT_EQ(out.previous_user_id, "u1");
  EXPECT_EQ(w.visitor("v1").user_id, "u2");
  // What happened before stays with u1; u2 starts without it.
  EXPECT_EQ(Quantity(w.customer("u1").cart, "p1"), 1);
  EXPECT_TRUE(w.customer("u1").anonymous_ids.empty());
  EXPECT_TRUE(w.customer("u2").cart.lines.empty());
  EXPECT_EQ(w.customer("u2").anonymous_ids, std::vector<std::string>{"v1"});
  // Anonymous events of the device now go to u2.
  w.Send(Track("a:v1", "Product Added", kT0 + 2 * kHour, ProductProps("p2", 10, 1)));
  EXPECT_EQ(Quantity(w.customer("u2").cart, "p2"), 1);
  EXPECT_EQ(Quantity(w.customer("u1").cart, "p2"), 0);
}

TEST(IdentityTest, ServerSideEventsWithOnlyAUserIdGoToTheCustomer) {
  World w;
  w.Send(Track("u:u1", "Product Added", kT0, ProductProps("p1", 10, 1)));
  w.Send(Track("u:u1", "Order Completed", kT0 + kMinute, OrderProps("o-1", 10)));
  w.Send(Page("u:u1", kT0 + 2 * kMinute, "https://s/"));  // no device: no session
  const Customer c = w.customer("u1");
  EXPECT_TRUE(c.cart.lines.empty());
  EXPECT_EQ(c.orders.size(), 1u);
  EXPECT_TRUE(c.visits.empty());
  EXPECT_EQ(c.last_seen, kT0 + 2 * kMinute);
  EXPECT_TRUE(c.anonymous_ids.empty());
}

TEST(IdentityTest, LinkedVisitorsAreBounded) {
  World w;
  w.options.max_linked_visitors = 2;
  for (const char* id : {"a:d1,u:u1", "a:d2,u:u1", "a:d3,u:u1"}) w.Send(Identify(id, kT0));
  EXPECT_EQ(w.customer("u1").anonymous_ids, (std::vector<std::string>{"d2", "d3"}));
}

}  // namespace
}  // namespace cartwatch::profiles
