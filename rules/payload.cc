#include "rules/payload.h"

#include <algorithm>
#include <cstdio>

#include "profiles/json_writer.h"

namespace cartwatch::rules {
namespace {

using profiles::JsonWriter;

constexpr std::size_t kLastViewed = 5;
constexpr std::size_t kLastPages = 5;

std::string DisplayName(const profiles::Traits& t) {
  if (!t.name.value.empty()) return t.name.value;
  std::string name = t.first_name.value;
  if (!t.last_name.value.empty()) {
    if (!name.empty()) name.push_back(' ');
    name += t.last_name.value;
  }
  return name;
}

std::string MoneyText(profiles::Amount a, std::string_view currency) {
  char buf[64];
  const bool negative = a < 0;
  const profiles::Amount abs = negative ? -a : a;
  // Two decimals, rounded half up (amounts carry four).
  const profiles::Amount cents = (abs + profiles::kAmountScale / 200) / (profiles::kAmountScale / 100);
  std::snprintf(buf, sizeof buf, "%s%lld.%02lld", negative ? "-" : "",
                static_cast<long long>(cents / 100), static_cast<long long>(cents % 100));
  std::string out(buf);
  if (!currency.empty()) {
    out.push_back(' ');
    out += currency;
  }
  return out;
}

// cart value / AOV, when both are known and in one currency.
std::optional<double> ValueToAov(const ActionContext& c, const profiles::CartTotals& totals) {
  if (c.stats == nullptr || c.stats->orders == 0 || c.stats->average_order_value <= 0) {
    return std::nullopt;
  }
  if (!c.stats->currency.empty() && !totals.currency.empty() && c.stats->currency != totals.currency) {
    return std::nullopt;
  }
  return static_cast<double>(totals.value) / static_cast<double>(c.stats->average_order_value);
}

void WriteFavourites(JsonWriter& j, const std::vector<profiles::Favourite>& list) {
  j.BeginArray();
  for (const profiles::Favourite& f : list) j.String(f.name);
  j.EndArray();
}

}  // namespace

std::string SummaryLine(const ActionContext& c) {
  const profiles::Traits& traits = c.person.traits();
  std::string who = DisplayName(traits);
  if (who.empty()) who = !traits.email.value.empty() ? traits.email.value : std::string(c.person.id());
  const profiles::Cart& cart = c.person.cart();
  const profiles::CartTotals totals = profiles::TotalsOf(cart);
  std::string cart_text = std::to_string(totals.items) + (totals.items == 1 ? " item (" : " items (") +
                          MoneyText(totals.value, totals.currency) + ")";
  std::string line;
  switch (c.rule->kind) {
    case Kind::kCartFilled:
      line = who + " is filling a cart: " + cart_text;
      break;
    case Kind::kAbandonedCart:
      line = who + " left a cart of " + cart_text;
      break;
    case Kind::kHighValueCart:
      line = "Call now: " + who + " has a cart of " + cart_text;
      break;
    case Kind::kDormantCustomer: {
      line = who + " has not ordered";
      if (c.stats && c.stats->last_order_at) {
        const auto days = (c.now - *c.stats->last_order_at) / kDay;
        line += " for " + std::to_string(days) + " days";
      }
      if (c.stats) line += " (" + std::to_string(c.stats->orders) + " orders before)";
      return line;
    }
  }
  if (auto ratio = ValueToAov(c, totals)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ", %.1fx their usual order", *ratio);
    line += buf;
  }
  return line;
}

std::string ActionData(const ActionContext& c) {
  std::string out;
  JsonWriter j(out);
  const profiles::Traits& traits = c.person.traits();
  const profiles::Cart& cart = c.person.cart();
  const profiles::CartTotals totals = profiles::TotalsOf(cart);
  j.BeginObject();
  j.Key("site");
  j.String(c.site);
  j.Key("rule");
  j.String(c.rule->name);
  j.Key("kind");
  j.String(KindName(c.rule->kind));
  j.Key("stage");
  j.Int(c.timer.stage);
  j.Key("due_at");
  j.Time(c.timer.due);
  j.Key("summary");
  j.String(SummaryLine(c));

  j.Key("customer");
  j.BeginObject();
  j.Key("user_id");
  if (c.person.kind == SubjectKind::kCustomer) {
    j.String(c.person.id());
  } else {
    j.Null();
  }
  j.Key("anonymous_id");
  if (c.person.kind == SubjectKind::kVisitor) {
    j.String(c.person.id());
  } else if (c.person.visitor != nullptr) {
    j.String(c.person.visitor->anonymous_id);
  } else {
    j.Null();
  }
  j.Key("name");
  j.Text(DisplayName(traits));
  j.Key("first_name");
  j.Text(traits.first_name.value);
  j.Key("last_name");
  j.Text(traits.last_name.value);
  j.Key("email");
  j.Text(traits.email.value);
  j.Key("phone");
  j.Text(traits.phone.value);
  j.EndObject();

  j.Key("cart");
  j.BeginObject();
  j.Key("lines");
  j.BeginArray();
  for (const profiles::CartLine& l : cart.lines) {
    j.BeginObject();
    j.Key("product_id");
    j.Text(l.product_id.empty() && l.sku.empty() ? l.key : l.product_id);
    j.Key("sku");
    j.Text(l.sku);
    j.Key("name");
    j.Text(l.name);
    j.Key("category");
    j.Text(l.category);
    j.Key("quantity");
    j.Int(l.quantity);
    j.Key("price");
    j.Money(l.price);
    j.Key("currency");
    const std::string& currency = l.currency.empty() ? totals.currency : l.currency;
    j.Text(currency);
    // For people (a CRM's task view, the e-mails): "129.90 EUR".
    j.Key("price_text");
    j.String(MoneyText(l.price, currency));
    j.Key("total_text");
    j.String(MoneyText(l.price * l.quantity, currency));
    j.Key("image_url");
    j.Text(l.image_url);
    j.Key("url");
    j.Text(l.url);
    j.EndObject();
  }
  j.EndArray();
  j.Key("items");
  j.Int(totals.items);
  j.Key("value");
  j.Money(totals.value);
  j.Key("currency");
  j.Text(totals.currency);
  j.Key("value_text");
  j.String(MoneyText(totals.value, totals.currency));
  // Where an e-mail's button goes: the site's cart page, else the product changed last.
  j.Key("url");
  if (!c.cart_url.empty()) {
    j.String(c.cart_url);
  } else {
    const profiles::CartLine* newest = nullptr;
    for (const profiles::CartLine& l : cart.lines) {
      if (!l.url.empty() && (newest == nullptr || l.updated_at >= newest->updated_at)) newest = &l;
    }
    j.Text(newest != nullptr ? std::string_view(newest->url) : std::string_view());
  }
  j.Key("version");
  j.Int(static_cast<std::int64_t>(cart.version));
  j.Key("updated_at");
  j.Time(cart.updated_at);
  j.EndObject();

  j.Key("stats");
  if (c.stats == nullptr) {
    j.Null();
  } else {
    const profiles::CustomerStats& s = *c.stats;
    j.BeginObject();
    j.Key("orders");
    j.Int(s.orders);
    j.Key("revenue");
    j.Money(s.revenue);
    j.Key("average_order_value");
    j.Money(s.average_order_value);
    j.Key("average_order_value_text");
    j.String(MoneyText(s.average_order_value, s.currency));
    j.Key("currency");
    j.Text(s.currency);
    j.Key("last_order_at");
    j.Time(s.last_order_at.value_or(0));
    j.Key("mean_days_between_orders");
    if (s.mean_days_between_orders) {
      j.Number(*s.mean_days_between_orders, 1);
    } else {
      j.Null();
    }
    j.Key("favourite_categories");
    WriteFavourites(j, s.favourite_categories);
    j.Key("favourite_brands");
    WriteFavourites(j, s.favourite_brands);
    j.Key("rfm_segment");
    if (c.score) {
      j.String(profiles::SegmentName(c.score->segment));
    } else {
      j.Null();
    }
    j.Key("abc_class");
    if (c.score) {
      j.String(profiles::AbcName(c.score->abc));
    } else {
      j.Null();
    }
    j.Key("ltv");
    j.Money(s.ltv);
    j.EndObject();
  }

  // How this cart compares with the customer's usual order.
  j.Key("cart_value_to_aov");
  const auto ratio = ValueToAov(c, totals);
  if (ratio) {
    j.Number(*ratio, 2);
  } else {
    j.Null();
  }
  j.Key("cart_in_favourite_categories");
  if (c.stats == nullptr || c.stats->favourite_categories.empty()) {
    j.Null();
  } else {
    bool any = false;
    for (const profiles::CartLine& l : cart.lines) {
      for (const profiles::Favourite& f : c.stats->favourite_categories) {
        any = any || (!l.category.empty() && l.category == f.name);
      }
    }
    j.Bool(any);
  }

  // What they looked at last: products, and the pages their latest visits ended on.
  const std::vector<profiles::ViewedProduct>& viewed =
      c.person.kind == SubjectKind::kCustomer ? c.person.customer->viewed : c.person.visitor->viewed;
  j.Key("last_viewed_products");
  j.BeginArray();
  for (std::size_t i = 0; i < viewed.size() && i < kLastViewed; ++i) {
    j.BeginObject();
    j.Key("name");
    j.Text(viewed[i].name);
    j.Key("url");
    j.Text(viewed[i].url);
    j.Key("image_url");
    j.Text(viewed[i].image_url);
    j.Key("viewed_at");
    j.Time(viewed[i].viewed_at);
    j.EndObject();
  }
  j.EndArray();
  j.Key("last_pages");
  j.BeginArray();
  if (c.person.visitor != nullptr) {
    const auto& sessions = c.person.visitor->sessions;
    std::size_t n = 0;
    for (auto it = sessions.rbegin(); it != sessions.rend() && n < kLastPages; ++it, ++n) {
      j.BeginObject();
      j.Key("url");
      j.Text(it->exit_url);
      j.Key("title");
      j.Text(it->exit_title);
      j.Key("at");
      j.Time(it->end);
      j.EndObject();
    }
  }
  j.EndArray();
  j.EndObject();
  return out;
}

}  // namespace cartwatch::rules
