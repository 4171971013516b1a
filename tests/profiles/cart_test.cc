// Cart transitions: deltas, whole-cart replaces, checkout, orders, out-of-order and
// duplicate messages, mixed currencies.
#include <gtest/gtest.h>

#include "profiles/profiles.h"
#include "tests/profiles/helpers.h"

namespace cartwatch::profiles {
namespace {

using namespace helpers;  // NOLINT: test helpers

constexpr char kWho[] = "a:v1";

class CartTest : public ::testing::Test {
 protected:
  Cart cart() { return world_.visitor("v1").cart; }
  // quantity of the line `key`, 0 when absent
  std::int64_t Quantity(std::string_view key) {
    for (const CartLine& l : cart().lines) {
      if (l.key == key) return l.quantity;
    }
    return 0;
  }
  Outcome Add(std::string_view id, EpochMs at, std::int64_t quantity = 1, double price = 10,
              std::string_view currency = "EUR") {
    return world_.Send(
        Track(kWho, "Product Added", at, ProductProps(id, price, quantity, currency)));
  }
  Outcome Remove(std::string_view id, EpochMs at, std::optional<std::int64_t> quantity) {
    boost::json::object p;
    p["product_id"] = id;
    if (quantity) p["quantity"] = *quantity;
    return world_.Send(Track(kWho, "Product Removed", at, std::move(p)));
  }

  World world_;
};

TEST_F(CartTest, DeltasAddAndRemoveQuantities) {
  Outcome out = Add("p1", kT0, 2, 19.9);
  EXPECT_TRUE(out.cart_changed);
  Add("p2", kT0 + kMinute, 1, 5);
  Remove("p1", kT0 + 2 * kMinute, 1);
  Cart c = cart();
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.lines[0].key, "p1");  // lines keep the order they were first added in
  EXPECT_EQ(c.lines[0].quantity, 1);
  EXPECT_EQ(c.lines[0].price, Money(19.9));
  EXPECT_EQ(c.lines[0].name, "Name p1");
  EXPECT_EQ(c.lines[0].currency, "EUR");
  EXPECT_EQ(c.lines[1].quantity, 1);
  EXPECT_EQ(c.version, 3u);
  EXPECT_EQ(c.updated_at, kT0 + 2 * kMinute);
  CartTotals t = TotalsOf(c);
  EXPECT_EQ(t.value, Money(24.9));
  EXPECT_EQ(t.currency, "EUR");
  EXPECT_EQ(t.items, 2);

  // Product Removed without a quantity removes the line.
  out = Remove("p2", kT0 + 3 * kMinute, std::nullopt);
  EXPECT_TRUE(out.cart_changed);
  // Removing more than there is removes the line too.
  Remove("p1", kT0 + 4 * kMinute, 5);
  c = cart();
  EXPECT_TRUE(c.lines.empty());
  EXPECT_EQ(c.version, 5u);
  EXPECT_EQ(TotalsOf(c).value, 0);
}

TEST_F(CartTest, AddingAgainAddsQuantityAndTheNewerAttributesWin) {
  Add("p1", kT0, 1, 10);
  boost::json::object p = ProductProps("p1", 12, 2);
  p["name"] = "Renamed";
  p.erase("currency");
  world_.Send(Track(kWho, "Product Added", kT0 + kMinute, p));
  Cart c = cart();
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0].quantity, 3);
  EXPECT_EQ(c.lines[0].price, Money(12));
  EXPECT_EQ(c.lines[0].name, "Renamed");
  EXPECT_EQ(c.lines[0].currency, "EUR");  // not stated: kept
  // A late Product Added adds its quantity but not its older attributes.
  p = ProductProps("p1", 99, 1);
  p["name"] = "Old name";
  world_.Send(Track(kWho, "Product Added", kT0 - kMinute, p));
  c = cart();
  EXPECT_EQ(c.lines[0].quantity, 4);
  EXPECT_EQ(c.lines[0].price, Money(12));
  EXPECT_EQ(c.lines[0].name, "Renamed");
}

TEST_F(CartTest, ZeroOrNegativeQuantitiesChangeNothing) {
  EXPECT_FALSE(Add("p1", kT0, 0).cart_changed);
  EXPECT_FALSE(Add("p1", kT0, -2).cart_changed);
  EXPECT_TRUE(cart().lines.empty());
  EXPECT_EQ(cart().version, 0u);
}

TEST_F(CartTest, CartViewedReplacesTheWholeCart) {
  Add("p1", kT0, 1);
  Add("p2", kT0 + kSecond, 1);
  Outcome out = world_.Send(Track(kWho, "Cart Viewed", kT0 + kMinute,
                                  Products({ProductProps("p2", 7, 3), ProductProps("p3", 1, 1)})));
  EXPECT_TRUE(out.cart_changed);
  Cart c = cart();
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.lines[0].key, "p2");
  EXPECT_EQ(c.lines[0].quantity, 3);
  EXPECT_EQ(c.lines[0].price, Money(7));
  EXPECT_EQ(c.lines[1].key, "p3");
  EXPECT_EQ(c.version, 3u);
  EXPECT_EQ(c.replaced_at, kT0 + kMinute);

  // The same content again is not a change: the version stays.
  out = world_.Send(Track(kWho, "Cart Updated", kT0 + 2 * kMinute,
                          Products({ProductProps("p2", 7, 3), ProductProps("p3", 1, 1)})));
  EXPECT_FALSE(out.cart_changed);
  EXPECT_EQ(cart().version, 3u);
  EXPECT_EQ(cart().replaced_at, kT0 + 2 * kMinute);

  // An empty products[] empties the cart.
  out = world_.Send(Track(kWho, "Cart Updated", kT0 + 3 * kMinute, Products({})));
  EXPECT_TRUE(out.cart_changed);
  EXPECT_TRUE(cart().lines.empty());
  EXPECT_EQ(cart().version, 4u);
}

TEST_F(CartTest, ProductListedTwiceInASnapshotIsOneLine) {
  world_.Send(Track(kWho, "Cart Viewed", kT0,
                    Products({ProductProps("p", 2, 1), ProductProps("p", 2, 2)})));
  ASSERT_EQ(cart().lines.size(), 1u);
  EXPECT_EQ(cart().lines[0].quantity, 3);
}

TEST_F(CartTest, DeltaOlderThanTheLastReplaceIsIgnored) {
  world_.Send(Track(kWho, "Cart Viewed", kT0 + kMinute, Products({ProductProps("p1", 5, 1)})));
  const Outcome out = Add("p2", kT0, 1);  // happened before the snapshot: already in it or not
  EXPECT_FALSE(out.cart_changed);
  EXPECT_EQ(Quantity("p2"), 0);
  EXPECT_FALSE(Remove("p1", kT0 + 30 * kSecond, std::nullopt).cart_changed);
  EXPECT_EQ(Quantity("p1"), 1);
  EXPECT_EQ(cart().version, 1u);
}

TEST_F(CartTest, OlderSnapshotIsIgnoredAndNewerLinesSurviveASnapshot) {
  world_.Send(Track(kWho, "Cart Viewed", kT0 + 2 * kMinute, Products({ProductProps("p1", 5, 1)})));
  // An older snapshot arriving late changes nothing.
  EXPECT_FALSE(
      world_.Send(Track(kWho, "Cart Viewed", kT0 + kMinute, Products({ProductProps("old", 5, 1)})))
          .cart_changed);
  EXPECT_EQ(Quantity("old"), 0);

  // A line added after a snapshot's time stays when that snapshot arrives late.
  Add("p2", kT0 + 4 * kMinute, 2);
  world_.Send(Track(kWho, "Cart Viewed", kT0 + 3 * kMinute,
                    Products({ProductProps("p1", 5, 4), ProductProps("p3", 1, 1)})));
  EXPECT_EQ(Quantity("p1"), 4);
  EXPECT_EQ(Quantity("p2"), 2);
  EXPECT_EQ(Quantity("p3"), 1);
}

TEST_F(CartTest, RemoveThatOvertakesItsAddKeepsTheProductOut) {
  EXPECT_FALSE(Remove("p1", kT0 + kMinute, std::nullopt).cart_changed);
  EXPECT_FALSE(Add("p1", kT0, 1).cart_changed);  // older than its removal
  EXPECT_EQ(Quantity("p1"), 0);
  EXPECT_TRUE(Add("p1", kT0 + 2 * kMinute, 1).cart_changed);  // added again afterwards
  EXPECT_EQ(Quantity("p1"), 1);
}

TEST_F(CartTest, LateRemoveWithoutQuantityDoesNotUndoANewerAdd) {
  Add("p1", kT0, 1);
  Add("p1", kT0 + 2 * kMinute, 1);
  EXPECT_FALSE(Remove("p1", kT0 + kMinute, std::nullopt).cart_changed);
  EXPECT_EQ(Quantity("p1"), 2);
  // With a quantity, deltas commute.
  EXPECT_TRUE(Remove("p1", kT0 + kMinute, 1).cart_changed);
  EXPECT_EQ(Quantity("p1"), 1);
}

TEST_F(CartTest, CheckoutStage) {
  // Nothing to check out in an empty cart.
  EXPECT_FALSE(world_.Send(Track(kWho, "Checkout Started", kT0 - kMinute, {})).cart_changed);
  EXPECT_EQ(cart().stage, CartStage::kBrowsing);
  Add("p1", kT0, 1);
  Outcome out = world_.Send(Track(kWho, "Checkout Started", kT0 + kMinute, Products({})));
  EXPECT_TRUE(out.cart_changed);
  Cart c = cart();
  EXPECT_EQ(c.stage, CartStage::kCheckout);
  EXPECT_EQ(c.checkout_started_at, kT0 + kMinute);
  EXPECT_EQ(c.version, 2u);
  // Checkout Started does not replace the cart.
  EXPECT_EQ(Quantity("p1"), 1);
  // Starting again is not a change.
  out = world_.Send(Track(kWho, "Checkout Started", kT0 + 2 * kMinute, {}));
  EXPECT_FALSE(out.cart_changed);
  EXPECT_EQ(cart().checkout_started_at, kT0 + kMinute);
  // Emptying the cart ends the checkout.
  Remove("p1", kT0 + 3 * kMinute, std::nullopt);
  EXPECT_EQ(cart().stage, CartStage::kBrowsing);
  EXPECT_EQ(cart().checkout_started_at, 0);
}

TEST_F(CartTest, OrderCompletedEmptiesTheCartButNotLinesAddedAfterIt) {
  Add("p1", kT0, 1);
  world_.Send(Track(kWho, "Checkout Started", kT0 + kMinute, {}));
  Add("p2", kT0 + 5 * kMinute, 1);  // the order (at +2 min) arrives after this
  boost::json::object order = Products({ProductProps("p1", 10, 1)});
  order["order_id"] = "o-1";
  Outcome out = world_.Send(Track(kWho, "Order Completed", kT0 + 2 * kMinute, order));
  EXPECT_TRUE(out.order_added);
  EXPECT_TRUE(out.cart_changed);
  Cart c = cart();
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0].key, "p2");
  EXPECT_EQ(c.stage, CartStage::kBrowsing);
  EXPECT_EQ(c.replaced_at, kT0 + 2 * kMinute);
  // A delta from before the order that arrives late is ignored: the order bought it.
  EXPECT_FALSE(Add("p1", kT0 + kMinute, 1).cart_changed);
  EXPECT_EQ(Quantity("p1"), 0);
  // So is a Checkout Started from before the order.
  EXPECT_FALSE(world_.Send(Track(kWho, "Checkout Started", kT0 + kMinute, {})).cart_changed);
}

TEST_F(CartTest, DuplicateOrderIsCountedOnceAndDoesNotEmptyTheCartAgain) {
  boost::json::object order = Products({ProductProps("p1", 10, 1)});
  order["order_id"] = "o-1";
  EXPECT_TRUE(world_.Send(Track(kWho, "Order Completed", kT0, order)).order_added);
  Add("p2", kT0 + kMinute, 1);
  // The same order again (another messageId, even a later time): a duplicate.
  const Outcome out = world_.Send(Track(kWho, "Order Completed", kT0 + 2 * kMinute, order));
  EXPECT_TRUE(out.duplicate_order);
  EXPECT_FALSE(out.order_added);
  EXPECT_FALSE(out.cart_changed);
  EXPECT_EQ(Quantity("p2"), 1);
  EXPECT_EQ(world_.visitor("v1").orders.size(), 1u);
}

TEST_F(CartTest, MixedCurrencies) {
  Add("eur", kT0, 2, 10, "EUR");
  Add("usd", kT0 + kMinute, 1, 15, "USD");
  Add("none", kT0 + 2 * kMinute, 1, 1, "");  // no currency: counts as the cart's
  CartTotals t = TotalsOf(cart());
  // The cart's currency is that of the most recently changed line that states one.
  EXPECT_EQ(t.currency, "USD");
  EXPECT_EQ(t.value, Money(16));
  EXPECT_EQ(t.items, 4);
  ASSERT_EQ(t.by_currency.size(), 2u);
  EXPECT_EQ(t.by_currency[0].currency, "USD");
  EXPECT_EQ(t.by_currency[0].value, Money(16));
  EXPECT_EQ(t.by_currency[1].currency, "EUR");
  EXPECT_EQ(t.by_currency[1].value, Money(20));

  // Touching the EUR line makes EUR the cart's currency.
  Add("eur", kT0 + 3 * kMinute, 1, 10, "EUR");
  t = TotalsOf(cart());
  EXPECT_EQ(t.currency, "EUR");
  EXPECT_EQ(t.value, Money(31));
  EXPECT_EQ(t.by_currency[1].currency, "USD");
  EXPECT_EQ(t.by_currency[1].value, Money(15));
}

TEST_F(CartTest, CartWithoutAnyCurrency) {
  Add("p", kT0, 3, 2.5, "");
  const CartTotals t = TotalsOf(cart());
  EXPECT_EQ(t.currency, "");
  EXPECT_EQ(t.value, Money(7.5));
  EXPECT_EQ(TotalsOf(Cart()).by_currency.size(), 0u);
}

TEST_F(CartTest, LinesAreBounded) {
  world_.options.max_cart_lines = 2;
  Add("p1", kT0);
  Add("p2", kT0 + 1);
  EXPECT_FALSE(Add("p3", kT0 + 2).cart_changed);
  EXPECT_TRUE(Add("p1", kT0 + 3).cart_changed);  // an existing line still grows
  EXPECT_EQ(cart().lines.size(), 2u);
}

}  // namespace
}  // namespace cartwatch::profiles
