// The query API's JSON documents (docs/profiles.md, "Query API documents").
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

#include "profiles/codec.h"
#include "profiles/json_writer.h"

namespace cartwatch::profiles {

namespace {

// Number of recent orders a customer document lists.
constexpr std::size_t kRecentOrders = 10;

void WriteTraits(JsonWriter& j, const Traits& t) {
  j.BeginObject();
  j.Key("email");
  j.Text(t.email.value);
  j.Key("phone");
  j.Text(t.phone.value);
  j.Key("first_name");
  j.Text(t.first_name.value);
  j.Key("last_name");
  j.Text(t.last_name.value);
  j.Key("name");
  j.Text(t.name.value);
  j.EndObject();
}

void WriteCart(JsonWriter& j, const Cart& cart) {
  const CartTotals totals = TotalsOf(cart);
  j.BeginObject();
  j.Key("lines");
  j.BeginArray();
  for (const CartLine& l : cart.lines) {
    j.BeginObject();
    j.Key("product_id");
    j.Text(l.product_id.empty() && l.sku.empty() ? l.key : l.product_id);
    j.Key("sku");
    j.Text(l.sku);
    j.Key("name");
    j.Text(l.name);
    j.Key("category");
    j.Text(l.category);
    j.Key("brand");
    j.Text(l.brand);
    j.Key("quantity");
    j.Int(l.quantity);
    j.Key("price");
    j.Money(l.price);
    j.Key("currency");
    j.Text(l.currency.empty() ? totals.currency : l.currency);
    j.Key("image_url");
    j.Text(l.image_url);
    j.Key("url");
    j.Text(l.url);
    j.Key("updated_at");
    j.Time(l.updated_at);
    j.EndObject();
  }
  j.EndArray();
  j.Key("items");
  j.Int(totals.items);
  j.Key("value");
  j.Money(totals.value);
  j.Key("currency");
  j.Text(totals.currency);
  j.Key("value_by_currency");
  j.BeginArray();
  for (const CartTotals::PerCurrency& p : totals.by_currency) {
    j.BeginObject();
    j.Key("currency");
    j.Text(p.currency);
    j.Key("value");
    j.Money(p.value);
    j.EndObject();
  }
  j.EndArray();
  j.Key("stage");
  j.String(cart.stage == CartStage::kCheckout ? "checkout" : "browsing");
  j.Key("checkout_started_at");
  j.Time(cart.checkout_started_at);
  j.Key("version");
  j.Int(static_cast<std::int64_t>(cart.version));
  j.Key("updated_at");
  j.Time(cart.updated_at);
  j.EndObject();
}

void WriteViewed(JsonWriter& j, const std::vector<ViewedProduct>& viewed) {
  j.BeginArray();
  for (const ViewedProduct& p : viewed) {
    j.BeginObject();
    j.Key("product_id");
    j.Text(p.key);
    j.Key("name");
    j.Text(p.name);
    j.Key("category");
    j.Text(p.category);
    j.Key("brand");
    j.Text(p.brand);
    j.Key("price");
    if (p.price) {
      j.Money(*p.price);
    } else {
      j.Null();
    }
    j.Key("currency");
    j.Text(p.currency);
    j.Key("url");
    j.Text(p.url);
    j.Key("image_url");
    j.Text(p.image_url);
    j.Key("views");
    j.Int(p.views);
    j.Key("viewed_at");
    j.Time(p.viewed_at);
    j.EndObject();
  }
  j.EndArray();
}

void WriteFavourites(JsonWriter& j, const std::vector<Favourite>& favourites) {
  j.BeginArray();
  for (const Favourite& f : favourites) {
    j.BeginObject();
    j.Key("name");
    j.String(f.name);
    j.Key("spend");
    j.Money(f.spend);
    j.EndObject();
  }
  j.EndArray();
}

void WriteOptionalTime(JsonWriter& j, const std::optional<EpochMs>& t) {
  if (t) {
    j.Time(*t);
  } else {
    j.Null();
  }
}

void WritePage(JsonWriter& j, const std::string& url, const std::string& title) {
  j.BeginObject();
  j.Key("url");
  j.Text(url);
  j.Key("title");
  j.Text(title);
  j.EndObject();
}

void WriteRfm(JsonWriter& j, const RfmValues& values, const Score& score, EpochMs computed_at) {
  j.BeginObject();
  j.Key("recency_days");
  j.Int(values.recency_days);
  j.Key("frequency");
  j.Int(values.frequency);
  j.Key("monetary");
  j.Money(values.monetary);
  j.Key("r");
  j.Int(score.r);
  j.Key("f");
  j.Int(score.f);
  j.Key("m");
  j.Int(score.m);
  const char digits[] = {static_cast<char>('0' + score.r), static_cast<char>('0' + score.f),
                         static_cast<char>('0' + score.m)};
  j.Key("score");
  j.String(std::string_view(digits, sizeof digits));
  j.Key("segment");
  j.String(SegmentName(score.segment));
  j.Key("thresholds_computed_at");
  j.Time(computed_at);
  j.EndObject();
}

}  // namespace

std::string RenderCustomer(const Customer& c, const SiteThresholds* thresholds, EpochMs now,
                           const Options& options) {
  const CustomerStats stats = ComputeStats(c, now, options);
  std::string out;
  out.reserve(2048);
  JsonWriter j(out);
  j.BeginObject();
  j.Key("user_id");
  j.String(c.user_id);
  j.Key("traits");
  WriteTraits(j, c.traits);
  j.Key("anonymous_ids");
  j.BeginArray();
  for (const std::string& id : c.anonymous_ids) j.String(id);
  j.EndArray();
  j.Key("merged_user_ids");
  j.BeginArray();
  for (const std::string& id : c.merged_user_ids) j.String(id);
  j.EndArray();
  j.Key("first_seen");
  j.Time(c.first_seen);
  j.Key("last_seen");
  j.Time(c.last_seen);
  j.Key("cart");
  WriteCart(j, c.cart);
  j.Key("recently_viewed");
  WriteViewed(j, c.viewed);

  j.Key("recent_orders");
  j.BeginArray();
  const std::size_t shown = std::min(c.orders.size(), kRecentOrders);
  for (auto it = c.orders.rbegin(); it != c.orders.rbegin() + static_cast<std::ptrdiff_t>(shown);
       ++it) {
    j.BeginObject();
    j.Key("order_id");
    j.String(it->order_id);
    j.Key("at");
    j.Time(it->at);
    j.Key("revenue");
    j.Money(it->revenue);
    j.Key("currency");
    j.Text(it->currency.empty() ? stats.currency : it->currency);
    j.EndObject();
  }
  j.EndArray();

  j.Key("stats");
  j.BeginObject();
  j.Key("orders");
  j.Int(stats.orders);
  j.Key("revenue");
  j.Money(stats.revenue);
  j.Key("currency");
  j.Text(stats.currency);
  j.Key("average_order_value");
  j.Money(stats.average_order_value);
  j.Key("revenue_by_currency");
  j.BeginArray();
  for (const CurrencyTotal& t : stats.revenue_by_currency) {
    j.BeginObject();
    j.Key("currency");
    j.Text(t.currency);
    j.Key("orders");
    j.Int(t.orders);
    j.Key("revenue");
    j.Money(t.revenue);
    j.EndObject();
  }
  j.EndArray();
  j.Key("first_order_at");
  WriteOptionalTime(j, stats.first_order_at);
  j.Key("last_order_at");
  WriteOptionalTime(j, stats.last_order_at);
  j.Key("mean_days_between_orders");
  if (stats.mean_days_between_orders) {
    j.Number(*stats.mean_days_between_orders, 2);
  } else {
    j.Null();
  }
  j.Key("favourite_categories");
  WriteFavourites(j, stats.favourite_categories);
  j.Key("favourite_brands");
  WriteFavourites(j, stats.favourite_brands);
  j.Key("last_seen");
  j.Time(stats.last_seen);
  j.Key("visits_last_30_days");
  j.Int(stats.visits_last_30_days);

  const std::optional<RfmValues> values = RfmValuesOf(stats, now);
  std::optional<Score> score;
  if (values && thresholds != nullptr) score = ScoreCustomer(*values, *thresholds);
  j.Key("rfm");
  if (score) {
    WriteRfm(j, *values, *score, thresholds->computed_at);
  } else {
    j.Null();
  }
  j.Key("abc");
  if (score) {
    j.String(AbcName(score->abc));
  } else {
    j.Null();
  }
  j.Key("orders_a_year");
  j.Number(stats.orders_a_year, 2);
  j.Key("ltv");
  j.Money(stats.ltv);
  j.Key("ltv_lifetime_years");
  j.Number(options.expected_lifetime_years, 2);
  j.EndObject();

  j.EndObject();
  return out;
}

std::string RenderVisitor(const Visitor& v, const Customer* customer) {
  std::string out;
  out.reserve(2048);
  JsonWriter j(out);
  j.BeginObject();
  j.Key("anonymous_id");
  j.String(v.anonymous_id);
  j.Key("user_id");
  j.Text(v.user_id);
  j.Key("linked_at");
  j.Time(v.linked_at);
  j.Key("first_seen");
  j.Time(v.first_seen);
  j.Key("last_seen");
  j.Time(v.last_seen);
  j.Key("page_views");
  j.Int(v.page_views);
  const bool linked = customer != nullptr && !v.user_id.empty();
  j.Key("cart");
  WriteCart(j, linked ? customer->cart : v.cart);
  j.Key("recently_viewed");
  WriteViewed(j, linked ? customer->viewed : v.viewed);
  j.Key("sessions");
  j.BeginArray();
  for (auto it = v.sessions.rbegin(); it != v.sessions.rend(); ++it) {
    const Session& s = *it;
    j.BeginObject();
    j.Key("start");
    j.Time(s.start);
    j.Key("end");
    j.Time(s.end);
    j.Key("duration_seconds");
    j.Int(s.duration() / 1000);
    j.Key("pages");
    j.Int(s.pages);
    j.Key("landing_page");
    WritePage(j, s.landing_url, s.landing_title);
    j.Key("exit_page");
    WritePage(j, s.exit_url, s.exit_title);
    j.Key("referrer");
    j.Text(s.referrer);
    j.Key("utm");
    if (s.utm.empty()) {
      j.Null();
    } else {
      j.BeginObject();
      j.Key("source");
      j.Text(s.utm.source);
      j.Key("medium");
      j.Text(s.utm.medium);
      j.Key("name");
      j.Text(s.utm.name);
      j.Key("term");
      j.Text(s.utm.term);
      j.Key("content");
      j.Text(s.utm.content);
      j.EndObject();
    }
    j.EndObject();
  }
  j.EndArray();
  j.EndObject();
  return out;
}

}  // namespace cartwatch::profiles
