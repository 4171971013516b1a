// Stored form (round trips, corrupt input) and the query API's JSON documents.
#include "profiles/codec.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <random>

#include "tests/profiles/helpers.h"

namespace cartwatch::profiles {
namespace {

using namespace helpers;  // NOLINT: test helpers
namespace json = boost::json;

// A shop day: a campaign visit on a laptop, cart, identify, checkout, an order, more
// shopping; two days later an anonymous visit on a phone, identified too.
class ShopDay : public ::testing::Test {
 protected:
  void SetUp() override {
    w_.Send(Page("a:laptop", kT0, "https://s/?utm_source=news&utm_medium=email&utm_campaign=nov",
                 {}, "https://mail.example/"));
    w_.Send(Track("a:laptop", "Product Viewed", kT0 + kMinute,
                  {{"product_id", "boot"},
                   {"name", "Boot \"Tall\""},
                   {"category", "Shoes"},
                   {"brand", "Acme"},
                   {"price", 79.95},
                   {"currency", "EUR"}}));
    boost::json::object boot = ProductProps("boot", 79.95, 1);
    boot["category"] = "Shoes";
    boot["brand"] = "Acme";
    w_.Send(Track("a:laptop", "Product Added", kT0 + 2 * kMinute, boot));
    w_.Send(Page("a:laptop", kT0 + 4 * kMinute, "https://s/cart"));
    w_.Send(Identify("a:laptop,u:ada", kT0 + 5 * kMinute,
                     {{"email", "ada@example.com"}, {"firstName", "Ada"}, {"lastName", "L"}}));
    w_.Send(Track("a:laptop", "Checkout Started", kT0 + 6 * kMinute, {}));
    boost::json::object order = Products({boot});
    order["order_id"] = "o-1";
    order["total"] = 84.9;
    w_.Send(Track("a:laptop", "Order Completed", kT0 + 7 * kMinute, order));
    w_.Send(Track("a:laptop", "Product Added", kT0 + 8 * kMinute, ProductProps("sock", 4.5, 3)));
    w_.Send(Page("a:phone", kT0 + 2 * kDay, "https://m.s/"));
    w_.Send(Track("a:phone", "Product Added", kT0 + 2 * kDay + kMinute,
                  ProductProps("hat", 20, 1, "USD")));
    w_.Send(Identify("a:phone,u:ada", kT0 + 2 * kDay + 2 * kMinute));
  }
  World w_;
};

TEST_F(ShopDay, VisitorRoundTrips) {
  const Visitor v = w_.visitor("laptop");
  ASSERT_EQ(v.sessions.size(), 1u);
  const std::string bytes = Encode(v);
  EXPECT_EQ(bytes[0], 'V');
  EXPECT_EQ(bytes[1], 3);
  const auto decoded = DecodeVisitor(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(*decoded, v);
  EXPECT_EQ(decoded->sessions[0].utm.name, "nov");
  EXPECT_EQ(decoded->user_id, "ada");
}

TEST(CodecTest, AnonymousVisitorWithEverythingRoundTrips) {
  World w;
  w.Send(Page("a:v", kT0, "https://s/"));
  w.Send(Identify("a:v", kT0, {{"phone", "+1"}}));
  w.Send(Track("a:v", "Product Viewed", kT0 + 1, ProductProps("p", 1.2345, 1)));
  w.Send(Track("a:v", "Product Added", kT0 + 2, ProductProps("p", 1.2345, 2)));
  w.Send(Track("a:v", "Product Removed", kT0 + 3, {{"product_id", "gone"}}));
  w.Send(Track("a:v", "Checkout Started", kT0 + 4, {}));
  boost::json::object order = Products({ProductProps("x", 3, 1)});
  order["order_id"] = "o";
  w.Send(Track("a:v", "Order Completed", kT0 - kDay, order));
  const Visitor v = w.visitor("v");
  ASSERT_EQ(v.orders.size(), 1u);
  ASSERT_EQ(v.cart.removals.size(), 1u);
  ASSERT_EQ(v.viewed.size(), 1u);
  EXPECT_EQ(v.cart.stage, CartStage::kCheckout);
  EXPECT_EQ(v.traits.phone.value, "+1");
  EXPECT_EQ(*DecodeVisitor(Encode(v)), v);
  EXPECT_EQ(*DecodeVisitor(Encode(Visitor())), Visitor());
  // EncodeTo appends the same bytes to what is there.
  std::string out = "S12345678";
  EncodeTo(out, v);
  EXPECT_EQ(out, "S12345678" + Encode(v));
}

TEST_F(ShopDay, CustomerRoundTrips) {
  Customer c = w_.customer("ada");
  ASSERT_EQ(c.orders.size(), 1u);
  ASSERT_EQ(c.visits.size(), 2u);
  // Exercise the archive too.
  c.archived.count = 3;
  c.archived.first_at = kT0 - 400 * kDay;
  c.archived.last_at = kT0 - 100 * kDay;
  c.archived.revenue = {CurrencyTotal{"EUR", 3, Money(120)}};
  c.archived.categories = {Spend{"EUR", "Shoes", Money(100)}};
  c.archived.brands = {Spend{"EUR", "Acme", Money(100)}, Spend{"", "Bic", -5}};
  const auto decoded = DecodeCustomer(Encode(c));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(*decoded, c);
  EXPECT_EQ(*DecodeCustomer(Encode(Customer())), Customer());
  std::string out = "prefix";
  EncodeTo(out, c);
  EXPECT_EQ(out, "prefix" + Encode(c));

  // The merge fields (format version 2), both kinds: a customer others were merged into,
  // and one merged into another.
  c.merged_user_ids = {"old-1", "old-2"};
  const auto with_merges = DecodeCustomer(Encode(c));
  ASSERT_TRUE(with_merges.has_value()) << with_merges.error().message();
  EXPECT_EQ(*with_merges, c);
  Customer merged;
  merged.user_id = "old-1";
  merged.merged_into = "ada";
  merged.merged_at = kT0;
  EXPECT_EQ(*DecodeCustomer(Encode(merged)), merged);
}

// A record written before version 2 (no merge fields) still reads, with none.
TEST_F(ShopDay, CustomerOfVersion1Decodes) {
  const Customer c = w_.customer("ada");
  std::string bytes = Encode(c);
  // Version 2 appended: a count of merged ids (0), an empty merged_into, merged_at (0); version
  // 3 an empty time zone and locale: one byte each as varints.
  ASSERT_EQ(bytes.substr(bytes.size() - 5), std::string(5, '\0'));
  bytes.resize(bytes.size() - 5);
  bytes[1] = 1;
  const auto decoded = DecodeCustomer(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(*decoded, c);
}

// Records of version 2 read with no time zone nor locale; version 3 keeps them.
TEST_F(ShopDay, TimeZoneAndLocaleOfVersion3) {
  Customer c = w_.customer("ada");
  std::string bytes = Encode(c);
  bytes.resize(bytes.size() - 2);
  bytes[1] = 2;
  ASSERT_TRUE(DecodeCustomer(bytes).has_value());
  Visitor v = w_.visitor("laptop");
  std::string vbytes = Encode(v);
  vbytes.resize(vbytes.size() - 2);
  vbytes[1] = 2;
  ASSERT_TRUE(DecodeVisitor(vbytes).has_value());
  EXPECT_EQ(*DecodeVisitor(vbytes), v);

  c.timezone = "Europe/Moscow";
  c.locale = "ru-RU";
  v.timezone = "America/New_York";
  v.locale = "en-US";
  EXPECT_EQ(*DecodeCustomer(Encode(c)), c);
  EXPECT_EQ(*DecodeVisitor(Encode(v)), v);
}

TEST(CodecTest, ThresholdsRoundTrip) {
  SiteThresholds t;
  t.customers = 1234;
  t.computed_at = kT0;
  t.recency_days = {3, 10, 30, 90};
  t.frequency = {1, 1, 2, 4};
  t.monetary = {Money(10), Money(25.5), Money(80), Money(250)};
  t.abc_a_min = Money(180);
  t.abc_b_min = Money(40);
  EXPECT_EQ(*DecodeThresholds(Encode(t)), t);
  const SiteThresholds empty = ComputeThresholds({}, kT0);
  EXPECT_EQ(*DecodeThresholds(Encode(empty)), empty);
}

TEST_F(ShopDay, EveryTruncationIsAnErrorNotACrash) {
  for (const std::string& bytes : {Encode(w_.visitor("laptop")), Encode(w_.customer("ada"))}) {
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      const std::string_view prefix(bytes.data(), n);
      const auto error =
          bytes[0] == 'V' ? DecodeVisitor(prefix).error() : DecodeCustomer(prefix).error();
      EXPECT_TRUE(error == Errc::kTruncated || error == Errc::kCorrupt) << n;
    }
  }
}

TEST_F(ShopDay, CorruptBytesAreAnErrorOrARecordNeverACrash) {
  const std::string good = Encode(w_.customer("ada"));
  std::mt19937 random(42);
  int errors = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string bytes = good;
    for (int flips = 1 + static_cast<int>(random() % 3); flips > 0; --flips) {
      bytes[2 + random() % (bytes.size() - 2)] = static_cast<char>(random());
    }
    errors += DecodeCustomer(bytes).has_value() ? 0 : 1;
  }
  EXPECT_GT(errors, 0);
}

TEST(CodecTest, RefusesOtherRecordsNewerVersionsAndGarbage) {
  const std::string visitor = Encode(Visitor());
  EXPECT_EQ(DecodeCustomer(visitor).error(), Errc::kWrongRecord);
  EXPECT_EQ(DecodeThresholds(visitor).error(), Errc::kWrongRecord);
  std::string newer = visitor;
  newer[1] = 4;
  EXPECT_EQ(DecodeVisitor(newer).error(), Errc::kUnknownVersion);
  EXPECT_EQ(DecodeVisitor(visitor + "x").error(), Errc::kCorrupt);  // trailing bytes
  // A length far beyond the input: refused before allocating.
  std::string huge = "V\x01\xff\xff\xff\xff\x0f";
  EXPECT_EQ(DecodeVisitor(huge).error(), Errc::kCorrupt);
  // A cart stage that does not exist.
  Visitor v;
  std::string bytes = Encode(v);
  // Layout of an empty visitor: 2 header bytes, 2 empty strings, 4 zeros, no sessions, 5
  // traits of 2 bytes, then the cart: 0 lines, version, updated, replaced, then the stage.
  const std::size_t stage_at = 2 + 2 + 4 + 1 + 10 + 4;
  ASSERT_EQ(bytes[stage_at], 0);
  bytes[stage_at] = 7;
  EXPECT_EQ(DecodeVisitor(bytes).error(), Errc::kCorrupt);
  EXPECT_EQ(DecodeVisitor("").error(), Errc::kTruncated);
  EXPECT_STREQ(ProfilesCategory().name(), "cartwatch.profiles");
  EXPECT_EQ(make_error_code(Errc::kCorrupt).message(), "profile record is corrupt");
}

TEST_F(ShopDay, CustomerDocument) {
  std::vector<RfmValues> site;
  for (int i = 1; i <= 10; ++i) site.push_back(RfmValues{i * 10, i, Money(20.0 * i)});
  const SiteThresholds thresholds = ComputeThresholds(site, kT0);
  const EpochMs now = kT0 + 3 * kDay;
  const std::string body = RenderCustomer(w_.customer("ada"), &thresholds, now);
  // Money is written as exact decimals, never in exponent form.
  EXPECT_NE(body.find("\"revenue\":84.9,"), std::string::npos) << body;
  EXPECT_NE(body.find("\"price\":79.95,"), std::string::npos) << body;

  const json::object doc = json::parse(body).as_object();
  EXPECT_EQ(doc.at("user_id"), "ada");
  const json::object& traits = doc.at("traits").as_object();
  EXPECT_EQ(traits.at("email"), "ada@example.com");
  EXPECT_EQ(traits.at("first_name"), "Ada");
  EXPECT_EQ(traits.at("last_name"), "L");
  EXPECT_TRUE(traits.at("phone").is_null());
  EXPECT_EQ(doc.at("anonymous_ids"), (json::array{"laptop", "phone"}));
  EXPECT_EQ(doc.at("first_seen"), "2026-11-23T17:24:02.000Z");
  EXPECT_EQ(doc.at("last_seen"), "2026-11-25T17:26:02.000Z");

  // The order bought the boot; the socks added after it (EUR) and the phone's hat (USD)
  // are in the cart.
  const json::object& cart = doc.at("cart").as_object();
  const json::array& lines = cart.at("lines").as_array();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("product_id"), "sock");
  EXPECT_EQ(lines[0].at("quantity"), 3);
  EXPECT_EQ(lines[0].at("price"), 4.5);
  EXPECT_EQ(lines[0].at("currency"), "EUR");
  EXPECT_EQ(lines[0].at("updated_at"), "2026-11-23T17:32:02.000Z");
  EXPECT_TRUE(lines[0].at("sku").is_null());
  EXPECT_EQ(lines[1].at("product_id"), "hat");
  EXPECT_EQ(cart.at("items"), 4);
  EXPECT_EQ(cart.at("currency"), "USD");
  EXPECT_EQ(cart.at("value"), 20);
  EXPECT_EQ(cart.at("value_by_currency"),
            (json::array{json::object{{"currency", "USD"}, {"value", 20}},
                         json::object{{"currency", "EUR"}, {"value", 13.5}}}));
  EXPECT_EQ(cart.at("stage"), "browsing");
  EXPECT_TRUE(cart.at("checkout_started_at").is_null());
  EXPECT_EQ(cart.at("version"), 6);
  EXPECT_EQ(cart.at("updated_at"), "2026-11-25T17:25:02.000Z");

  const json::array& viewed = doc.at("recently_viewed").as_array();
  ASSERT_EQ(viewed.size(), 1u);
  EXPECT_EQ(viewed[0].at("name"), "Boot \"Tall\"");
  EXPECT_EQ(viewed[0].at("views"), 1);

  const json::array& orders = doc.at("recent_orders").as_array();
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].at("order_id"), "o-1");
  EXPECT_EQ(orders[0].at("at"), "2026-11-23T17:31:02.000Z");

  const json::object& stats = doc.at("stats").as_object();
  EXPECT_EQ(stats.at("orders"), 1);
  EXPECT_EQ(stats.at("revenue"), 84.9);
  EXPECT_EQ(stats.at("currency"), "EUR");
  EXPECT_EQ(stats.at("average_order_value"), 84.9);
  EXPECT_EQ(stats.at("first_order_at"), "2026-11-23T17:31:02.000Z");
  EXPECT_EQ(stats.at("last_order_at"), "2026-11-23T17:31:02.000Z");
  EXPECT_TRUE(stats.at("mean_days_between_orders").is_null());
  EXPECT_EQ(stats.at("favourite_categories"),
            (json::array{json::object{{"name", "Shoes"}, {"spend", 79.95}}}));
  EXPECT_EQ(stats.at("favourite_brands"),
            (json::array{json::object{{"name", "Acme"}, {"spend", 79.95}}}));
  EXPECT_EQ(stats.at("last_seen"), "2026-11-25T17:26:02.000Z");
  EXPECT_EQ(stats.at("visits_last_30_days"), 2);
  // Site cut points: recency 20/40/60/80 days, frequency 2/4/6/8, monetary 40/80/120/160.
  // Recency 2 days: R 5; one order: F 1; 84.9: M 3; FM = (1 + 3 + 1) / 2 = 2.
  const json::object& rfm = stats.at("rfm").as_object();
  EXPECT_EQ(rfm.at("recency_days"), 2);
  EXPECT_EQ(rfm.at("frequency"), 1);
  EXPECT_EQ(rfm.at("monetary"), 84.9);
  EXPECT_EQ(rfm.at("r"), 5);
  EXPECT_EQ(rfm.at("f"), 1);
  EXPECT_EQ(rfm.at("m"), 3);
  EXPECT_EQ(rfm.at("score"), "513");
  EXPECT_EQ(rfm.at("segment"), "potential_loyalist");
  EXPECT_EQ(rfm.at("thresholds_computed_at"), "2026-11-23T17:24:02.000Z");
  // The site's revenue is 1100: A is 200 down to 100 (800 before it, under 880), B 80 down to
  // 40 (1040 before it, under 1045).
  EXPECT_EQ(thresholds.abc_a_min, Money(100));
  EXPECT_EQ(thresholds.abc_b_min, Money(40));
  EXPECT_EQ(stats.at("abc"), "B");
  EXPECT_EQ(stats.at("orders_a_year"), 1);
  EXPECT_EQ(stats.at("ltv"), 254.7);  // 84.9 x 1 x 3
  EXPECT_EQ(stats.at("ltv_lifetime_years"), 3);
}

TEST_F(ShopDay, CustomerDocumentWithoutThresholds) {
  const json::object doc =
      json::parse(RenderCustomer(w_.customer("ada"), nullptr, kT0 + kDay)).as_object();
  EXPECT_TRUE(doc.at("stats").at("rfm").is_null());
  EXPECT_TRUE(doc.at("stats").at("abc").is_null());
  const SiteThresholds empty;
  const json::object doc2 =
      json::parse(RenderCustomer(w_.customer("ada"), &empty, kT0 + kDay)).as_object();
  EXPECT_TRUE(doc2.at("stats").at("rfm").is_null());
}

TEST_F(ShopDay, VisitorDocument) {
  // Linked: the current cart is the customer's.
  const Customer ada = w_.customer("ada");
  json::object doc = json::parse(RenderVisitor(w_.visitor("laptop"), &ada)).as_object();
  EXPECT_EQ(doc.at("anonymous_id"), "laptop");
  EXPECT_EQ(doc.at("user_id"), "ada");
  EXPECT_EQ(doc.at("linked_at"), "2026-11-23T17:29:02.000Z");
  EXPECT_EQ(doc.at("page_views"), 2);
  EXPECT_EQ(doc.at("cart").at("lines").as_array().size(), 2u);
  EXPECT_EQ(doc.at("recently_viewed").as_array().size(), 1u);
  const json::array& sessions = doc.at("sessions").as_array();
  ASSERT_EQ(sessions.size(), 1u);
  const json::object& s = sessions[0].as_object();
  EXPECT_EQ(s.at("start"), "2026-11-23T17:24:02.000Z");
  // The Product Added at +8 min was the last activity.
  EXPECT_EQ(s.at("end"), "2026-11-23T17:32:02.000Z");
  EXPECT_EQ(s.at("duration_seconds"), 480);
  EXPECT_EQ(s.at("pages"), 2);
  EXPECT_EQ(
      s.at("landing_page"),
      (json::object{
          {"url", "https://s/?utm_source=news&utm_medium=email&utm_campaign=nov"},
          {"title", "Title of https://s/?utm_source=news&utm_medium=email&utm_campaign=nov"}}));
  EXPECT_EQ(s.at("exit_page").at("url"), "https://s/cart");
  EXPECT_EQ(s.at("referrer"), "https://mail.example/");
  EXPECT_EQ(s.at("utm"), (json::object{{"source", "news"},
                                       {"medium", "email"},
                                       {"name", "nov"},
                                       {"term", nullptr},
                                       {"content", nullptr}}));

  // Without the customer the visitor's own (moved, so empty) cart is shown.
  doc = json::parse(RenderVisitor(w_.visitor("laptop"), nullptr)).as_object();
  EXPECT_EQ(doc.at("cart").at("lines").as_array().size(), 0u);
  EXPECT_EQ(doc.at("cart").at("value"), 0);
  EXPECT_TRUE(doc.at("cart").at("currency").is_null());
  EXPECT_TRUE(doc.at("cart").at("updated_at").is_null());
}

TEST(RenderTest, AnonymousVisitorDocument) {
  World w;
  w.Send(Page("a:v", kT0, "https://s/a\n\x01"));
  w.Send(Page("a:v", kT0 + kHour, "https://s/b"));
  w.Send(Track("a:v", "Product Added", kT0 + kHour + 1, ProductProps("p", -0.5, 1)));
  const std::string body = RenderVisitor(w.visitor("v"), nullptr);
  EXPECT_NE(body.find(R"("url":"https://s/a\n\u0001")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("price":-0.5,)"), std::string::npos) << body;
  const json::object doc = json::parse(body).as_object();
  EXPECT_TRUE(doc.at("user_id").is_null());
  const json::array& sessions = doc.at("sessions").as_array();
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_EQ(sessions[0].at("landing_page").at("url"), "https://s/b");  // newest first
  EXPECT_TRUE(sessions[0].at("utm").is_null());
  EXPECT_TRUE(sessions[0].at("referrer").is_null());
  EXPECT_EQ(doc.at("cart").at("lines").as_array().size(), 1u);
}

}  // namespace
}  // namespace cartwatch::profiles
