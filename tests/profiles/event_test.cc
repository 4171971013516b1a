#include "profiles/event.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "tests/profiles/helpers.h"

namespace cartwatch::profiles {
namespace {

using namespace helpers;  // NOLINT: test helpers

TEST(ParseEventTest, TimeZoneAndLocaleFromContext) {
  const Event e = Parse(R"({"type":"track","event":"X","anonymousId":"a",
    "timestamp":"2026-11-24T10:00:00Z","context":{"timezone":"Europe/Moscow","locale":"ru-RU"}})");
  EXPECT_EQ(e.timezone, "Europe/Moscow");
  EXPECT_EQ(e.locale, "ru-RU");
  // Not shaped like an IANA name or a language tag: dropped, never a path into zoneinfo.
  const Event odd = Parse(R"({"type":"track","event":"X","anonymousId":"a",
    "timestamp":"2026-11-24T10:00:00Z","context":{"timezone":"../../etc/passwd","locale":"<b>"}})");
  EXPECT_TRUE(odd.timezone.empty());
  EXPECT_TRUE(odd.locale.empty());
  const Event number = Parse(R"({"type":"track","event":"X","anonymousId":"a",
    "timestamp":"2026-11-24T10:00:00Z","context":{"timezone":3}})");
  EXPECT_TRUE(number.timezone.empty());
}

TEST(ParseEventTest, PageFromContextWithCampaign) {
  const Event e = Parse(R"({"type":"page","name":"Home","anonymousId":"a-1","messageId":"m-1",
    "context":{"page":{"url":"https://shop.example/?utm_source=ignored","title":"Shop",
      "referrer":"https://google.com/"},
      "campaign":{"source":"newsletter","medium":"email","name":"black-friday","term":"shoes",
                  "content":"hero"},
      "userAgent":"Mozilla/5.0","library":{"name":"analytics.js","version":"5"}},
    "timestamp":"2026-11-23T17:24:02.123Z","receivedAt":"2026-11-23T17:24:03.000Z"})");
  EXPECT_EQ(e.type, EventType::kPage);
  EXPECT_EQ(e.anonymous_id, "a-1");
  EXPECT_EQ(e.user_id, "");
  EXPECT_EQ(e.message_id, "m-1");
  EXPECT_EQ(e.at, kT0 + 123);
  EXPECT_EQ(e.received_at, kT0 + 1000);
  EXPECT_EQ(e.url, "https://shop.example/?utm_source=ignored");
  EXPECT_EQ(e.title, "Shop");
  EXPECT_EQ(e.referrer, "https://google.com/");
  // context.campaign wins over the URL's utm_ parameters.
  EXPECT_EQ(e.campaign, (Campaign{"newsletter", "email", "black-friday", "shoes", "hero"}));
}

TEST(ParseEventTest, PagePropertiesWinAndCampaignComesFromTheUrl) {
  const Event e = Parse(
      R"({"properties":{"url":"https://s.example/p?a=1&utm_source=fb&utm_medium=cpc&utm_campaign=Winter%20Sale+2026#top",
      "title":"Winter","referrer":"https://facebook.com/"},
    "context":{"page":{"url":"https://other.example/","title":"Other"}},
    "type":"page","userId":"u-1","timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kPage);
  EXPECT_EQ(e.user_id, "u-1");
  EXPECT_EQ(e.url.substr(0, 22), "https://s.example/p?a=");
  EXPECT_EQ(e.title, "Winter");
  EXPECT_EQ(e.referrer, "https://facebook.com/");
  EXPECT_EQ(e.campaign, (Campaign{"fb", "cpc", "Winter Sale 2026", "", ""}));
  // Without receivedAt the event time stands in for it.
  EXPECT_EQ(e.received_at, kT0);
}

TEST(ParseEventTest, ScreenIsAPageNamedByItsName) {
  const Event e = Parse(
      R"({"type":"screen","name":"Basket","anonymousId":"a","timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kPage);
  EXPECT_EQ(e.url, "Basket");
  EXPECT_EQ(e.title, "Basket");
}

TEST(ParseEventTest, IdsMayBeNumbersAndEmptyStringsAreAbsent) {
  const Event e = Parse(R"({"type":"track","event":"Signed Up","userId":12345,"anonymousId":"",
               "timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kActivity);
  EXPECT_EQ(e.user_id, "12345");
  EXPECT_EQ(e.anonymous_id, "");
  EXPECT_FALSE(ParseEvent(R"({"type":"page","anonymousId":"","userId":"",
                              "timestamp":"2026-11-23T17:24:02Z"})"));
}

TEST(ParseEventTest, ProductAddedReadsOneProductAndToleratesStringNumbers) {
  const Event e = Parse(R"({"type":"track","event":"Product Added","anonymousId":"a",
    "properties":{"product_id":507,"sku":"G-32","name":"Monopoly","category":"Games",
      "brand":"Hasbro","price":"19.90","quantity":2.5,"currency":"eur",
      "url":"https://s.example/monopoly","image_url":"https://s.example/m.jpg"},
    "timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kProductAdded);
  ASSERT_EQ(e.products.size(), 1u);
  const Product& p = e.products[0];
  EXPECT_EQ(p.key, "507");  // product_id first, numbers as their text
  EXPECT_EQ(p.product_id, "507");
  EXPECT_EQ(p.sku, "G-32");
  EXPECT_EQ(p.name, "Monopoly");
  EXPECT_EQ(p.category, "Games");
  EXPECT_EQ(p.brand, "Hasbro");
  EXPECT_EQ(p.price, Money(19.9));
  EXPECT_EQ(p.quantity, 3);  // rounded
  EXPECT_EQ(p.url, "https://s.example/monopoly");
  EXPECT_EQ(p.image_url, "https://s.example/m.jpg");
  EXPECT_EQ(e.currency, "EUR");
  EXPECT_EQ(e.url, "");  // a product URL is not a page URL
}

TEST(ParseEventTest, SkuKeysAProductWithoutIdAndKeylessProductsAreDropped) {
  Event e = Parse(R"({"type":"track","event":"Product Removed","anonymousId":"a",
    "properties":{"sku":"G-32"},"timestamp":"2026-11-23T17:24:02Z"})");
  ASSERT_EQ(e.products.size(), 1u);
  EXPECT_EQ(e.products[0].key, "G-32");
  EXPECT_FALSE(e.products[0].quantity.has_value());
  e = Parse(R"({"type":"track","event":"Product Added","anonymousId":"a",
    "properties":{"name":"no id"},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kProductAdded);
  EXPECT_TRUE(e.products.empty());
}

TEST(ParseEventTest, CartViewedReadsProductsAndWithoutThemIsActivity) {
  Event e = Parse(R"({"type":"track","event":"Cart Viewed","anonymousId":"a",
    "properties":{"cart_id":"c1","currency":"USD","products":[
      {"product_id":"p1","price":10,"quantity":1},{"sku":"s2","price":5.5},"junk",
      {"name":"keyless"}]},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kCartReplaced);
  ASSERT_EQ(e.products.size(), 2u);
  EXPECT_EQ(e.products[0].key, "p1");
  EXPECT_EQ(e.products[1].key, "s2");
  EXPECT_EQ(e.products[1].price, Money(5.5));
  EXPECT_EQ(e.currency, "USD");

  e = Parse(R"({"type":"track","event":"Cart Updated","anonymousId":"a",
    "properties":{"products":[]},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kCartReplaced);  // an empty cart
  EXPECT_TRUE(e.products.empty());

  e = Parse(R"({"type":"track","event":"Cart Viewed","anonymousId":"a",
    "properties":{"cart_id":"c1"},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kActivity);
}

TEST(ParseEventTest, OrderCompletedTotalPrecedenceAndSyntheticOrderId) {
  Event e = Parse(R"({"type":"track","event":"Order Completed","userId":"u",
    "messageId":"m-9","properties":{"order_id":"o-1","total":30,"revenue":25,"value":20,
    "currency":"EUR","products":[{"product_id":"p","price":10,"quantity":2,"category":"C"}]},
    "timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kOrderCompleted);
  EXPECT_EQ(e.order_id, "o-1");
  EXPECT_EQ(e.total, Money(30));
  ASSERT_EQ(e.products.size(), 1u);
  EXPECT_EQ(e.products[0].category, "C");

  e = Parse(R"({"type":"track","event":"Order Completed","userId":"u","messageId":"m-9",
    "properties":{"revenue":25,"value":20},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.order_id, "message:m-9");
  EXPECT_EQ(e.total, Money(25));
  e = Parse(R"({"type":"track","event":"Order Completed","userId":"u","messageId":"m-9",
    "properties":{"value":20},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.total, Money(20));
  e = Parse(R"({"type":"track","event":"Order Completed","userId":"u","messageId":"m-9",
    "properties":{"order_id":77},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.order_id, "77");
  EXPECT_FALSE(e.total.has_value());
  EXPECT_TRUE(e.products.empty());
}

TEST(ParseEventTest, IdentifyTraitsOverlayContextTraits) {
  Event e = Parse(R"({"type":"identify","userId":"u","anonymousId":"a",
    "context":{"traits":{"email":"old@example.com","phone":"+100"}},
    "traits":{"email":"new@example.com","firstName":"Ada","last_name":"Lovelace","name":"Ada L",
              "plan":"pro"},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kIdentify);
  EXPECT_EQ(e.traits.email, "new@example.com");
  EXPECT_EQ(e.traits.phone, "+100");
  EXPECT_EQ(e.traits.first_name, "Ada");
  EXPECT_EQ(e.traits.last_name, "Lovelace");
  EXPECT_EQ(e.traits.name, "Ada L");

  // Only identify reads top-level "traits"; any message reads context.traits.
  e = Parse(R"({"type":"track","event":"x","userId":"u","traits":{"email":"no@example.com"},
    "context":{"traits":{"phone":5550100}},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_FALSE(e.traits.email.has_value());
  EXPECT_EQ(e.traits.phone, "5550100");
}

TEST(ParseEventTest, OtherTrackEventsSkipTheirProperties) {
  const Event e = Parse(R"({"type":"track","event":"Video Played","anonymousId":"a",
    "properties":{"product_id":"p","products":[{"product_id":"q"}],"currency":"EUR"},
    "timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kActivity);
  EXPECT_TRUE(e.products.empty());
  EXPECT_EQ(e.currency, "");
}

TEST(ParseEventTest, PropertiesBeforeTypeAndEventAreRead) {
  const Event e = Parse(R"({"properties":{"product_id":"p","price":2},"anonymousId":"a",
    "timestamp":"2026-11-23T17:24:02Z","event":"product_added","type":"track"})");
  EXPECT_EQ(e.type, EventType::kProductAdded);  // snake_case event names are accepted
  ASSERT_EQ(e.products.size(), 1u);
  EXPECT_EQ(e.products[0].price, Money(2));
}

TEST(ParseEventTest, WrongTypesAreTreatedAsAbsent) {
  Event e = Parse(R"({"type":"track","event":"Product Added","anonymousId":"a",
    "properties":{"product_id":"p","price":{"amount":3},"quantity":"lots","name":7,
                  "currency":["EUR"]},"timestamp":"2026-11-23T17:24:02Z"})");
  ASSERT_EQ(e.products.size(), 1u);
  EXPECT_FALSE(e.products[0].price.has_value());
  EXPECT_FALSE(e.products[0].quantity.has_value());
  EXPECT_EQ(e.products[0].name, "");
  EXPECT_EQ(e.currency, "");
  e = Parse(R"({"type":"track","event":"Cart Viewed","anonymousId":"a",
    "properties":{"products":{"product_id":"p"}},"timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kCartReplaced);
  EXPECT_TRUE(e.products.empty());
  e = Parse(R"({"type":"page","anonymousId":"a","properties":"x","context":[1],
    "timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.type, EventType::kPage);
  EXPECT_EQ(e.url, "");
}

TEST(ParseEventTest, LastDuplicateKeyWins) {
  const Event e = Parse(R"({"type":"page","anonymousId":"a","anonymousId":"b",
    "timestamp":"2026-11-23T17:24:02Z"})");
  EXPECT_EQ(e.anonymous_id, "b");
}

TEST(ParseEventTest, MessagesThatChangeNothing) {
  EXPECT_FALSE(ParseEvent(""));
  EXPECT_FALSE(ParseEvent("not json"));
  EXPECT_FALSE(ParseEvent("[1,2]"));
  EXPECT_FALSE(ParseEvent(R"({"type":"page","anonymousId":"a")"));  // truncated
  EXPECT_FALSE(ParseEvent(R"({"type":"bogus","anonymousId":"a","timestamp":"2026-11-23"})"));
  EXPECT_FALSE(ParseEvent(R"({"type":"page","anonymousId":"a"})"));  // no time
  EXPECT_FALSE(ParseEvent(R"({"type":"page","anonymousId":"a","timestamp":"yesterday"})"));
  EXPECT_FALSE(ParseEvent(R"({"type":"track","anonymousId":"a","timestamp":"2026-11-23"})"));
  EXPECT_FALSE(ParseEvent(R"({"anonymousId":"a","timestamp":"2026-11-23"})"));
  // group is activity of the person it names; so is an alias without both of its ids.
  const Event group = Parse(R"({"type":"group","groupId":"g","userId":"u",
    "timestamp":"2026-11-23"})");
  EXPECT_EQ(group.type, EventType::kActivity);
  const Event half_alias = Parse(R"({"type":"alias","anonymousId":"a","userId":"u",
    "timestamp":"2026-11-23"})");
  EXPECT_EQ(half_alias.type, EventType::kActivity);
  EXPECT_EQ(half_alias.previous_id, "");
}

TEST(ParseEventTest, AliasJoinsTwoIdentities) {
  const Event alias = Parse(R"({"type":"alias","previousId":"a-1","userId":"u-1",
    "timestamp":"2026-11-23"})");
  EXPECT_EQ(alias.type, EventType::kAlias);
  EXPECT_EQ(alias.previous_id, "a-1");
  EXPECT_EQ(alias.user_id, "u-1");
  const Event numeric = Parse(R"({"type":"alias","previousId":42,"userId":"u-1",
    "timestamp":"2026-11-23"})");
  EXPECT_EQ(numeric.previous_id, "42");
  // previousId means nothing on other types.
  const Event page = Parse(R"({"type":"page","previousId":"a-1","userId":"u-1",
    "timestamp":"2026-11-23"})");
  EXPECT_EQ(page.previous_id, "");
}

// The committing thread parses every message into the same Event (ParseEventInto), which
// keeps its strings' memory: nothing of one message may show in the next. Each message
// below sets fields the others leave unset; every order of them must give, message by
// message, exactly what a fresh ParseEvent gives.
TEST(ParseEventTest, ParsingIntoAReusedEventGivesWhatAFreshParseGives) {
  const std::vector<std::string> messages = {
      R"({"type":"page","name":"Home","anonymousId":"a-1","messageId":"m-1",
        "context":{"page":{"url":"https://shop.example/?x=1","title":"Shop","referrer":"https://g.example/"},
          "campaign":{"source":"news","medium":"email","name":"bf","term":"shoes","content":"hero"},
          "traits":{"email":"ada@example.com","firstName":"Ada"}},
        "timestamp":"2026-11-23T17:24:02.123Z","receivedAt":"2026-11-23T17:24:03.000Z"})",
      R"({"type":"page","userId":"u-1","properties":{"url":"https://s.example/p?utm_source=fb",
        "title":"Winter","referrer":"https://f.example/"},"timestamp":"2026-11-23T17:24:02Z"})",
      R"({"type":"screen","name":"Basket","anonymousId":"a-2","timestamp":"2026-11-23T17:24:02Z"})",
      R"({"type":"track","event":"Product Added","anonymousId":"a-3","messageId":"m-3",
        "properties":{"product_id":"p-1","sku":"S-1","name":"Tie","category":"Ties","brand":"B",
          "image_url":"https://i.example/t.png","url":"https://s.example/tie","quantity":"2",
          "price":"19.90","currency":"eur"},"timestamp":"2026-11-23T17:24:02Z"})",
      R"({"type":"track","event":"Cart Viewed","anonymousId":"a-4","properties":{"currency":"USD",
        "products":[{"sku":"S-2","quantity":1,"price":5},{"product_id":"p-3","name":"Hat"}]},
        "timestamp":"2026-11-23T17:24:02Z"})",
      R"({"type":"track","event":"Order Completed","userId":"u-2","properties":{"order_id":"o-1",
        "total":42.5,"revenue":40,"currency":"gbp","products":[{"product_id":"p-4","price":42.5}]},
        "timestamp":"2026-11-23T17:24:02Z","receivedAt":"2026-11-23T17:24:05Z"})",
      R"({"type":"track","event":"Order Completed","anonymousId":"a-5","messageId":"m-5",
        "properties":{"value":"7"},"timestamp":"2026-11-23T17:24:02Z"})",
      R"({"type":"identify","userId":"u-3","anonymousId":"a-6","traits":{"email":"b@example.com",
        "phone":"+44 1","last_name":"Lovelace","name":"Ada L"},
        "context":{"traits":{"email":"old@example.com"}},"timestamp":"2026-11-23T17:24:02Z"})",
      R"({"type":"track","event":"Signed Up","userId":12345,"properties":{"url":"x","title":"y"},
        "timestamp":"2026-11-23T17:24:02Z"})",
      R"({"type":"track","event":"Checkout Started","anonymousId":"a-7","properties":{
        "products":[{"product_id":"p-5"}]},"timestamp":"2026-11-23T17:24:02Z"})",
      R"({"type":"page","anonymousId":"a-8"})",
      R"({"type":"bogus","anonymousId":"a","timestamp":"2026-11-23"})",
      "not json",
      R"({"type":"alias","previousId":"a","userId":"u","timestamp":"2026-11-23"})",
  };
  std::vector<std::size_t> order(messages.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937 rng(7);
  Event reused;
  for (int round = 0; round < 20; ++round) {
    if (round == 1) std::reverse(order.begin(), order.end());
    if (round > 1) std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t i : order) {
      const std::optional<Event> fresh = ParseEvent(messages[i]);
      ASSERT_EQ(ParseEventInto(messages[i], reused), fresh.has_value()) << messages[i];
      if (fresh) {
        EXPECT_TRUE(reused == *fresh) << "round " << round << ": " << messages[i];
      }
    }
  }
}

TEST(ParseEventTest, LongStringsAreCutAtACharacterBoundary) {
  std::string title(2047, 'x');
  title += "\xC3\xA9\xC3\xA9";  // "éé": the cut at 2048 bytes falls inside the first
  const Event e = Parse(Message("page", "a:a", kT0, {{"properties", {{"title", title}}}}));
  EXPECT_EQ(e.title, std::string(2047, 'x'));
}

TEST(ParseEventTest, MangledMessagesNeverCrash) {
  const std::string good = R"({"type":"track","event":"Order Completed","anonymousId":"a",
    "userId":7,"properties":{"order_id":"o","total":"12.5","currency":"usd","products":[
    {"product_id":"p","sku":"s","price":3,"quantity":2,"category":"c","brand":"b"}]},
    "context":{"traits":{"email":"e"},"campaign":{"source":"x"},"page":{"url":"u"}},
    "timestamp":"2026-11-23T17:24:02Z","receivedAt":"2026-11-23T17:24:03Z"})";
  ASSERT_TRUE(ParseEvent(good));
  std::mt19937 random(7);
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = good.substr(0, random() % (good.size() + 1));
    if (!bytes.empty() && i % 2 == 0) {
      bytes[random() % bytes.size()] = "{}[]\",:0a\x01"[random() % 10];
    }
    const std::optional<Event> e = ParseEvent(bytes);
    if (e) {
      EXPECT_FALSE(e->anonymous_id.empty() && e->user_id.empty());
    }
  }
}

TEST(AmountTest, FromDoubleRoundsToTenThousandths) {
  EXPECT_EQ(AmountFromDouble(19.9), 199'000);
  EXPECT_EQ(AmountFromDouble(0.00005), 1);
  EXPECT_EQ(AmountFromDouble(-2.5), -25'000);
  EXPECT_FALSE(AmountFromDouble(1e15));
  EXPECT_FALSE(AmountFromDouble(std::nan("")));
}

TEST(CampaignFromUrlTest, ReadsUtmParameters) {
  EXPECT_EQ(CampaignFromUrl("https://x/?utm_source=a%2Fb&utm_term=c+d&utm_content=e&x=1"),
            (Campaign{"a/b", "", "", "c d", "e"}));
  EXPECT_TRUE(CampaignFromUrl("https://x/#utm_source=a").empty());
  EXPECT_TRUE(CampaignFromUrl("https://x/?utm_source").empty());
  EXPECT_EQ(CampaignFromUrl("https://x/?utm_source=%zz%4").source, "%zz%4");
  // Escapes of bytes that are not UTF-8 are repaired, so documents showing them stay JSON.
  EXPECT_EQ(CampaignFromUrl("https://x/?utm_source=a%FFb&utm_term=%C3%A9").source,
            "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(CampaignFromUrl("https://x/?utm_term=%C3%A9").term, "\xC3\xA9");
}

}  // namespace
}  // namespace cartwatch::profiles
