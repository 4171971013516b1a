// Customer statistics, RFM and ABC thresholds and scores, LTV.
#include <gtest/gtest.h>

#include <set>

#include "profiles/profiles.h"
#include "tests/profiles/helpers.h"

namespace cartwatch::profiles {
namespace {

using namespace helpers;  // NOLINT: test helpers

boost::json::object OrderProps(std::string_view id, std::optional<double> total,
                               std::initializer_list<boost::json::object> products = {},
                               std::string_view currency = "EUR") {
  boost::json::object o = Products(products, currency);
  if (!id.empty()) o["order_id"] = id;
  if (total) o["total"] = *total;
  return o;
}

boost::json::object Item(std::string_view id, double price, std::int64_t quantity,
                         std::string_view category, std::string_view brand) {
  boost::json::object p = ProductProps(id, price, quantity, "");
  p["category"] = category;
  p["brand"] = brand;
  return p;
}

TEST(StatsTest, NoOrders) {
  Customer c;
  c.last_seen = kT0;
  c.visits = {kT0 - 40 * kDay, kT0 - 29 * kDay, kT0 - kHour, kT0 + kHour};
  const CustomerStats s = ComputeStats(c, kT0);
  EXPECT_EQ(s.orders, 0);
  EXPECT_EQ(s.revenue, 0);
  EXPECT_EQ(s.average_order_value, 0);
  EXPECT_FALSE(s.first_order_at);
  EXPECT_FALSE(s.mean_days_between_orders);
  EXPECT_EQ(s.last_seen, kT0);
  EXPECT_EQ(s.visits_last_30_days, 2);  // not the one 40 days ago, nor the one after `now`
  EXPECT_EQ(s.ltv, 0);
  EXPECT_FALSE(RfmValuesOf(s, kT0));
}

TEST(StatsTest, OrdersRevenueAverageAndIntervals) {
  World w;
  w.Send(Track("u:u1", "Order Completed", kT0, OrderProps("o1", 30)));
  w.Send(Track("u:u1", "Order Completed", kT0 + 10 * kDay,
               OrderProps("o2", std::nullopt, {Item("p", 12.5, 2, "Shoes", "Acme")})));
  // No products and no total: an order worth 0 that still counts.
  w.Send(Track("u:u1", "Order Completed", kT0 + 4 * kDay, OrderProps("o3", std::nullopt)));
  // revenue, then value, when there is no total.
  boost::json::object o4 = OrderProps("o4", std::nullopt);
  o4["revenue"] = 15;
  o4["value"] = 99;
  w.Send(Track("u:u1", "Order Completed", kT0 + 30 * kDay, o4));

  const Customer c = w.customer("u1");
  ASSERT_EQ(c.orders.size(), 4u);
  EXPECT_EQ(c.orders[1].order_id, "o3");  // kept in time order
  EXPECT_EQ(c.orders[1].revenue, 0);
  EXPECT_EQ(c.orders[2].revenue, Money(25));  // sum of price x quantity

  const CustomerStats s = ComputeStats(c, kT0 + 40 * kDay);
  EXPECT_EQ(s.orders, 4);
  EXPECT_EQ(s.currency, "EUR");
  EXPECT_EQ(s.revenue, Money(70));
  EXPECT_EQ(s.average_order_value, Money(17.5));
  EXPECT_EQ(s.first_order_at, kT0);
  EXPECT_EQ(s.last_order_at, kT0 + 30 * kDay);
  ASSERT_TRUE(s.mean_days_between_orders);
  EXPECT_DOUBLE_EQ(*s.mean_days_between_orders, 10.0);
  ASSERT_EQ(s.revenue_by_currency.size(), 1u);
  EXPECT_EQ(s.revenue_by_currency[0].orders, 4);

  const std::optional<RfmValues> rfm = RfmValuesOf(s, kT0 + 40 * kDay + kHour);
  ASSERT_TRUE(rfm);
  EXPECT_EQ(rfm->recency_days, 10);
  EXPECT_EQ(rfm->frequency, 4);
  EXPECT_EQ(rfm->monetary, Money(70));
}

// Twelve orders of 9.9e13 would overflow an int64 of ten-thousandths: sums saturate at
// kMaxAmount (10^14 units) instead of turning negative, and an amount of 10^14 or more is
// not taken at all.
TEST(StatsTest, HugeAmountsSaturateInsteadOfOverflowing) {
  World w;
  for (int i = 0; i < 12; ++i) {
    w.Send(Track("u:u1", "Order Completed", kT0 + i * kDay,
                 OrderProps("o" + std::to_string(i), 9.9e13,
                            {Item("p", 9.9e13, 1'000'000, "Shoes", "Acme")})));
  }
  w.Send(Track("u:u1", "Product Added", kT0 + 20 * kDay, ProductProps("big", 9.9e13, 500'000'000)));
  w.Send(Track("u:u1", "Product Added", kT0 + 20 * kDay, ProductProps("big2", 9.9e13, 500'000'000)));
  const Customer c = w.customer("u1");
  ASSERT_EQ(c.orders.size(), 12u);
  const CustomerStats s = ComputeStats(c, kT0 + 30 * kDay);
  EXPECT_EQ(s.orders, 12);
  EXPECT_EQ(s.revenue, kMaxAmount);
  EXPECT_GT(s.average_order_value, 0);
  EXPECT_EQ(s.average_order_value, kMaxAmount / 12 + (kMaxAmount % 12 >= 6 ? 1 : 0));
  EXPECT_GT(s.ltv, 0);
  EXPECT_LE(s.ltv, kMaxAmount);
  ASSERT_FALSE(s.favourite_categories.empty());
  EXPECT_EQ(s.favourite_categories[0].spend, kMaxAmount);
  const CartTotals cart = TotalsOf(c.cart);
  EXPECT_EQ(cart.value, kMaxAmount);
  // 10^14 itself is beyond what an amount holds: the total is not taken (the order counts,
  // with the sum of its products).
  World big;
  big.Send(Track("u:u2", "Order Completed", kT0, OrderProps("o", 1e14, {Item("p", 2, 1, "", "")})));
  EXPECT_EQ(big.customer("u2").orders.at(0).revenue, Money(2));
  EXPECT_EQ(AddAmounts(kMaxAmount, kMaxAmount), kMaxAmount);
  EXPECT_EQ(AddAmounts(-kMaxAmount, -1), -kMaxAmount);
}

// Found by reading the paths fuzz_http reached (tests/fuzz/regressions/fuzz_http/
// order_products_amount_overflow.http): one order of several saturated lines.
TEST(StatsTest, AnOrderOfTwoHugeLinesSaturates) {
  World w;
  w.Send(Track("u:u1", "Order Completed", kT0,
               Products({ProductProps("a", 1e13, 100'000'000, ""),
                         ProductProps("b", -1e13, 100'000'000, ""),
                         ProductProps("c", 1e13, 100'000'000, ""),
                         ProductProps("d", 1e13, 100'000'000, "")})));
  const Customer c = w.customer("u1");
  ASSERT_EQ(c.orders.size(), 1u);
  EXPECT_EQ(c.orders[0].revenue, kMaxAmount);
  EXPECT_EQ(ComputeStats(c, kT0 + kDay).revenue, kMaxAmount);
}

TEST(StatsTest, FavouriteCategoriesAndBrandsAreTheTopThreeBySpend) {
  World w;
  w.Send(Track("u:u1", "Order Completed", kT0,
               OrderProps("o1", std::nullopt,
                          {Item("a", 10, 1, "Shoes", "Acme"), Item("b", 100, 1, "Coats", "Zed"),
                           Item("c", 5, 3, "Hats", "Acme"), Item("d", 1, 1, "Socks", "Bic")})));
  w.Send(Track("u:u1", "Order Completed", kT0 + kDay,
               OrderProps("o2", std::nullopt, {Item("a", 10, 2, "Shoes", "Bic")})));
  const CustomerStats s = ComputeStats(w.customer("u1"), kT0 + kDay);
  ASSERT_EQ(s.favourite_categories.size(), 3u);
  EXPECT_EQ(s.favourite_categories[0].name, "Coats");
  EXPECT_EQ(s.favourite_categories[0].spend, Money(100));
  EXPECT_EQ(s.favourite_categories[1].name, "Shoes");
  EXPECT_EQ(s.favourite_categories[1].spend, Money(30));
  EXPECT_EQ(s.favourite_categories[2].name, "Hats");
  ASSERT_EQ(s.favourite_brands.size(), 3u);
  EXPECT_EQ(s.favourite_brands[0].name, "Zed");
  EXPECT_EQ(s.favourite_brands[1].name, "Acme");
  EXPECT_EQ(s.favourite_brands[1].spend, Money(25));
  EXPECT_EQ(s.favourite_brands[2].name, "Bic");
  EXPECT_EQ(s.favourite_brands[2].spend, Money(21));
}

TEST(StatsTest, MixedCurrencyOrders) {
  World w;
  w.Send(Track("u:u1", "Order Completed", kT0, OrderProps("o1", 100, {}, "USD")));
  w.Send(Track("u:u1", "Order Completed", kT0 + kDay, OrderProps("o2", 30, {}, "EUR")));
  w.Send(Track("u:u1", "Order Completed", kT0 + 2 * kDay, OrderProps("o3", 20, {}, "")));
  const CustomerStats s = ComputeStats(w.customer("u1"), kT0 + 3 * kDay);
  // Money is counted in the newest stated currency; no currency counts as that one.
  EXPECT_EQ(s.currency, "EUR");
  EXPECT_EQ(s.orders, 3);
  EXPECT_EQ(s.revenue, Money(50));
  EXPECT_EQ(s.average_order_value, Money(25));
  ASSERT_EQ(s.revenue_by_currency.size(), 2u);
  EXPECT_EQ(s.revenue_by_currency[0].currency, "USD");
  EXPECT_EQ(s.revenue_by_currency[0].revenue, Money(100));
  EXPECT_EQ(s.revenue_by_currency[1].currency, "EUR");
  EXPECT_EQ(s.revenue_by_currency[1].orders, 2);
}

TEST(StatsTest, LifetimeValue) {
  Customer c;
  c.orders = {Order{"o1", kT0, Money(40), "EUR", {}},
              Order{"o2", kT0 + 60 * kDay, Money(60), "EUR", {}}};
  // Two orders within a year: the tenure counts as one year, 2 orders a year.
  CustomerStats s = ComputeStats(c, kT0 + 100 * kDay);
  EXPECT_DOUBLE_EQ(s.orders_a_year, 2.0);
  EXPECT_EQ(s.ltv, Money(50 * 2 * 3));
  Options five_years;
  five_years.expected_lifetime_years = 5;
  EXPECT_EQ(ComputeStats(c, kT0 + 100 * kDay, five_years).ltv, Money(50 * 2 * 5));
  // Two years after the first order: one order a year.
  const EpochMs two_years = kT0 + static_cast<EpochMs>(2 * 365.25 * kDay);
  s = ComputeStats(c, two_years);
  EXPECT_DOUBLE_EQ(s.orders_a_year, 1.0);
  EXPECT_EQ(s.ltv, Money(150));
}

TEST(StatsTest, OldOrdersAreFoldedButStillCount) {
  World w;
  w.options.max_orders = 2;
  w.Send(Track("u:u1", "Order Completed", kT0,
               OrderProps("o1", 10, {Item("a", 10, 1, "Shoes", "Acme")})));
  w.Send(Track("u:u1", "Order Completed", kT0 + kDay, OrderProps("o2", 20, {}, "USD")));
  w.Send(Track("u:u1", "Order Completed", kT0 + 2 * kDay, OrderProps("o3", 30)));
  // An order older than all others arrives late: straight into the archive.
  w.Send(Track("u:u1", "Order Completed", kT0 - kDay, OrderProps("o0", 5)));
  const Customer c = w.customer("u1");
  ASSERT_EQ(c.orders.size(), 2u);
  EXPECT_EQ(c.orders[0].order_id, "o2");
  EXPECT_EQ(c.archived.count, 2);
  EXPECT_EQ(c.archived.first_at, kT0 - kDay);
  EXPECT_EQ(c.archived.last_at, kT0);
  const CustomerStats s = ComputeStats(c, kT0 + 3 * kDay, w.options);
  EXPECT_EQ(s.orders, 4);
  EXPECT_EQ(s.currency, "EUR");
  EXPECT_EQ(s.revenue, Money(45));
  EXPECT_EQ(s.first_order_at, kT0 - kDay);
  EXPECT_EQ(s.last_order_at, kT0 + 2 * kDay);
  ASSERT_EQ(s.favourite_categories.size(), 1u);
  EXPECT_EQ(s.favourite_categories[0].name, "Shoes");
  // A duplicate of a kept order is still recognised.
  EXPECT_TRUE(w.Send(Track("u:u1", "Order Completed", kT0, OrderProps("o3", 30))).duplicate_order);
}

TEST(ThresholdsTest, QuintilesAndAbcCutOffs) {
  // Ten customers: recency 1..10 days, frequency 1..10, monetary 10..100 (x10).
  std::vector<RfmValues> values;
  for (int i = 1; i <= 10; ++i) values.push_back(RfmValues{i, i, Money(10.0 * i)});
  const SiteThresholds t = ComputeThresholds(values, kT0);
  EXPECT_EQ(t.customers, 10);
  EXPECT_EQ(t.computed_at, kT0);
  EXPECT_EQ(t.recency_days, (std::array<std::int64_t, 4>{2, 4, 6, 8}));
  EXPECT_EQ(t.frequency, (std::array<std::int64_t, 4>{2, 4, 6, 8}));
  EXPECT_EQ(t.monetary, (std::array<Amount, 4>{Money(20), Money(40), Money(60), Money(80)}));
  // Total revenue 550. From the top: A while the revenue before a customer is under 80%
  // (440): down to 50, which has 400 before it (40 has 450). B while under 95% (522.5): 40,
  // 30 and 20, which has 520 before it (10 has 540).
  EXPECT_EQ(t.abc_a_min, Money(50));
  EXPECT_EQ(t.abc_b_min, Money(20));
}

TEST(ThresholdsTest, AbcOnASkewedSite) {
  std::vector<RfmValues> values;
  for (double m : {50.0, 30.0, 10.0, 5.0, 3.0, 2.0, 0.0}) {
    values.push_back(RfmValues{1, 1, Money(m)});
  }
  const SiteThresholds t = ComputeThresholds(values, kT0);
  EXPECT_EQ(t.abc_a_min, Money(30));  // 50 + 30 = 80%
  EXPECT_EQ(t.abc_b_min, Money(5));   // + 10 + 5 = 95%
  auto abc = [&t](double m) { return ScoreCustomer(RfmValues{1, 1, Money(m)}, t)->abc; };
  EXPECT_EQ(abc(50), AbcClass::kA);
  EXPECT_EQ(abc(30), AbcClass::kA);
  EXPECT_EQ(abc(10), AbcClass::kB);
  EXPECT_EQ(abc(5), AbcClass::kB);
  EXPECT_EQ(abc(3), AbcClass::kC);
  EXPECT_EQ(abc(0), AbcClass::kC);
}

TEST(ThresholdsTest, EmptyAndSingleCustomer) {
  const SiteThresholds empty = ComputeThresholds({}, kT0);
  EXPECT_EQ(empty.customers, 0);
  EXPECT_FALSE(ScoreCustomer(RfmValues{1, 1, 1}, empty));

  const std::vector<RfmValues> one = {RfmValues{3, 2, Money(10)}};
  const SiteThresholds t = ComputeThresholds(one, kT0);
  EXPECT_EQ(t.recency_days, (std::array<std::int64_t, 4>{3, 3, 3, 3}));
  const Score s = *ScoreCustomer(one[0], t);
  EXPECT_EQ(s.r, 5);
  EXPECT_EQ(s.f, 1);
  EXPECT_EQ(s.m, 1);
  EXPECT_EQ(s.abc, AbcClass::kA);  // the only customer makes all the revenue

  // Nobody spent anything: everyone is C.
  const std::vector<RfmValues> zero = {RfmValues{3, 1, 0}, RfmValues{4, 1, 0}};
  EXPECT_EQ(ScoreCustomer(zero[0], ComputeThresholds(zero, kT0))->abc, AbcClass::kC);
}

TEST(ThresholdsTest, ScoresAgainstQuintiles) {
  std::vector<RfmValues> values;
  for (int i = 1; i <= 10; ++i) values.push_back(RfmValues{i, i, Money(10.0 * i)});
  const SiteThresholds t = ComputeThresholds(values, kT0);
  // Bought yesterday, often, a lot.
  Score s = *ScoreCustomer(RfmValues{1, 10, Money(100)}, t);
  EXPECT_EQ(s.r, 5);
  EXPECT_EQ(s.f, 5);
  EXPECT_EQ(s.m, 5);
  EXPECT_EQ(s.segment, RfmSegment::kChampions);
  // Long ago, once, little.
  s = *ScoreCustomer(RfmValues{400, 1, Money(5)}, t);
  EXPECT_EQ(s.r, 1);
  EXPECT_EQ(s.f, 1);
  EXPECT_EQ(s.m, 1);
  EXPECT_EQ(s.segment, RfmSegment::kLost);
  // On the cut point: the lower quintile.
  s = *ScoreCustomer(RfmValues{4, 4, Money(40)}, t);
  EXPECT_EQ(s.r, 4);
  EXPECT_EQ(s.f, 2);
  EXPECT_EQ(s.m, 2);
  EXPECT_EQ(s.segment, RfmSegment::kPotentialLoyalist);
  // Long ago, but a big spender: can't lose them.
  s = *ScoreCustomer(RfmValues{9, 9, Money(90)}, t);
  EXPECT_EQ(s.r, 1);
  EXPECT_EQ(s.segment, RfmSegment::kCantLose);
}

TEST(SegmentTest, GridAndNames) {
  EXPECT_EQ(SegmentOf(5, 1, 1), RfmSegment::kNew);
  EXPECT_EQ(SegmentOf(5, 5, 4), RfmSegment::kChampions);  // FM = (5 + 4 + 1) / 2 = 5
  EXPECT_EQ(SegmentOf(4, 1, 1), RfmSegment::kPromising);
  EXPECT_EQ(SegmentOf(4, 2, 2), RfmSegment::kPotentialLoyalist);
  EXPECT_EQ(SegmentOf(4, 3, 2), RfmSegment::kLoyal);  // FM = (3 + 2 + 1) / 2 = 3
  EXPECT_EQ(SegmentOf(3, 5, 5), RfmSegment::kLoyal);
  EXPECT_EQ(SegmentOf(3, 2, 2), RfmSegment::kNeedAttention);
  EXPECT_EQ(SegmentOf(3, 1, 1), RfmSegment::kAboutToSleep);
  EXPECT_EQ(SegmentOf(2, 4, 4), RfmSegment::kAtRisk);
  EXPECT_EQ(SegmentOf(1, 5, 5), RfmSegment::kCantLose);
  EXPECT_EQ(SegmentOf(2, 1, 2), RfmSegment::kHibernating);
  EXPECT_EQ(SegmentOf(1, 2, 1), RfmSegment::kLost);
  EXPECT_EQ(SegmentName(RfmSegment::kCantLose), "cant_lose");
  EXPECT_EQ(SegmentName(RfmSegment::kPotentialLoyalist), "potential_loyalist");
  EXPECT_EQ(SegmentName(RfmSegment::kNeedAttention), "need_attention");
  EXPECT_EQ(SegmentName(RfmSegment::kAboutToSleep), "about_to_sleep");
  EXPECT_EQ(AbcName(AbcClass::kB), "B");
  // Every segment is reachable.
  std::set<RfmSegment> seen;
  for (int r = 1; r <= 5; ++r) {
    for (int f = 1; f <= 5; ++f) {
      for (int m = 1; m <= 5; ++m) seen.insert(SegmentOf(r, f, m));
    }
  }
  EXPECT_EQ(seen.size(), 11u);
}

}  // namespace
}  // namespace cartwatch::profiles
