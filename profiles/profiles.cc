// State transitions of visitors, carts and customers. The rules are in docs/profiles.md.
#include "profiles/profiles.h"

#include "profiles/transitions.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <utility>

namespace cartwatch::profiles {

namespace detail {

// Removals remembered per cart; the oldest is forgotten first.
constexpr std::size_t kMaxRemovals = 32;
// Category and brand sums an order archive keeps; the smallest are dropped first.
constexpr std::size_t kMaxArchivedSpends = 32;
constexpr std::int64_t kMaxQuantity = 1'000'000'000;

void Seen(EpochMs& first, EpochMs& last, EpochMs at) {
  if (first == 0 || at < first) first = at;
  if (at > last) last = at;
}

// ---- Traits ----

bool SetTrait(Trait& trait, const std::optional<std::string>& value, EpochMs at) {
  // An older message does not overwrite a newer value; at equal times the later applied wins.
  if (!value || at < trait.at) return false;
  trait.value = *value;
  trait.at = at;
  return true;
}

void ApplyTraits(Traits& traits, const TraitValues& values, EpochMs at) {
  SetTrait(traits.email, values.email, at);
  SetTrait(traits.phone, values.phone, at);
  SetTrait(traits.first_name, values.first_name, at);
  SetTrait(traits.last_name, values.last_name, at);
  SetTrait(traits.name, values.name, at);
}



// ---- Cart ----

CartLine* FindLine(Cart& cart, std::string_view key) {
  for (CartLine& line : cart.lines) {
    if (line.key == key) return &line;
  }
  return nullptr;
}

EpochMs RemovedAt(const Cart& cart, std::string_view key) {
  for (const CartRemoval& r : cart.removals) {
    if (r.key == key) return r.at;
  }
  return std::numeric_limits<EpochMs>::min();
}

void RememberRemoval(Cart& cart, const std::string& key, EpochMs at) {
  for (CartRemoval& r : cart.removals) {
    if (r.key == key) {
      r.at = std::max(r.at, at);
      return;
    }
  }
  cart.removals.push_back({key, at});
  if (cart.removals.size() > kMaxRemovals) {
    cart.removals.erase(
        std::min_element(cart.removals.begin(), cart.removals.end(),
                         [](const CartRemoval& a, const CartRemoval& b) { return a.at < b.at; }));
  }
}

// Removals at or before the last replace no longer matter: older deltas are ignored anyway.
void PruneRemovals(Cart& cart) {
  std::erase_if(cart.removals, [&cart](const CartRemoval& r) { return r.at <= cart.replaced_at; });
}

// Copies the attributes the product states (an absent one keeps the line's).
void FillLine(CartLine& line, const Product& p, const std::string& currency) {
  auto set = [](std::string& field, const std::string& value) {
    if (!value.empty()) field = value;
  };
  set(line.product_id, p.product_id);
  set(line.sku, p.sku);
  set(line.name, p.name);
  set(line.category, p.category);
  set(line.brand, p.brand);
  set(line.image_url, p.image_url);
  set(line.url, p.url);
  set(line.currency, currency);
  if (p.price) line.price = *p.price;
}

CartLine NewLine(const Product& p, std::int64_t quantity, const std::string& currency, EpochMs at) {
  CartLine line;
  line.key = p.key;
  FillLine(line, p, currency);
  line.quantity = quantity;
  line.updated_at = at;
  return line;
}

void Changed(Cart& cart, EpochMs at) {
  ++cart.version;
  cart.updated_at = std::max(cart.updated_at, at);
  if (cart.lines.empty()) {
    cart.stage = CartStage::kBrowsing;
    cart.checkout_started_at = 0;
  }
}

// Product Added / Product Removed.
bool ApplyDelta(Cart& cart, const Event& e, bool add, const Options& options) {
  if (e.at < cart.replaced_at) return false;  // a whole-cart replace or an order supersedes it
  bool changed = false;
  for (const Product& p : e.products) {
    CartLine* line = FindLine(cart, p.key);
    if (add) {
      const std::int64_t quantity = p.quantity.value_or(1);
      if (quantity <= 0) continue;
      if (RemovedAt(cart, p.key) > e.at) continue;  // removed by a newer event already applied
      if (line == nullptr) {
        if (cart.lines.size() >= options.max_cart_lines) continue;
        cart.lines.push_back(NewLine(p, quantity, e.currency, e.at));
      } else {
        line->quantity = std::min(kMaxQuantity, line->quantity + quantity);
        if (e.at >= line->updated_at) {
          FillLine(*line, p, e.currency);
          line->updated_at = e.at;
        }
      }
      changed = true;
      continue;
    }
    if (p.quantity && *p.quantity <= 0) continue;
    if (line == nullptr) {
      // Removed before its Product Added arrived: remember, so that it stays removed.
      RememberRemoval(cart, p.key, e.at);
      continue;
    }
    if (!p.quantity) {
      // "Remove the product": not when the line changed after it (re-added since).
      if (e.at < line->updated_at) continue;
      line->quantity = 0;
    } else {
      line->quantity -= *p.quantity;
      line->updated_at = std::max(line->updated_at, e.at);
    }
    if (line->quantity <= 0) {
      const std::string key = line->key;
      std::erase_if(cart.lines, [&key](const CartLine& l) { return l.key == key; });
      RememberRemoval(cart, key, e.at);
    }
    changed = true;
  }
  if (changed) Changed(cart, e.at);
  return changed;
}

bool SameContent(const CartLine& a, const CartLine& b) {
  return a.key == b.key && a.quantity == b.quantity && a.price == b.price &&
         a.currency == b.currency && a.product_id == b.product_id && a.sku == b.sku &&
         a.name == b.name && a.category == b.category && a.brand == b.brand &&
         a.image_url == b.image_url && a.url == b.url;
}

bool SameContent(const std::vector<CartLine>& a, const std::vector<CartLine>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const CartLine& x, const CartLine& y) { return SameContent(x, y); });
}

// Cart Viewed / Cart Updated: products[] is the whole cart as of e.at.
bool ReplaceCart(Cart& cart, const Event& e, const Options& options) {
  if (e.at < cart.replaced_at) return false;  // older than a snapshot already applied
  std::vector<CartLine> lines;
  auto newer_line = [&cart, &e](std::string_view key) -> const CartLine* {
    for (const CartLine& l : cart.lines) {
      if (l.key == key && l.updated_at > e.at) return &l;
    }
    return nullptr;
  };
  for (const Product& p : e.products) {
    const std::int64_t quantity = p.quantity.value_or(1);
    if (quantity <= 0 || RemovedAt(cart, p.key) > e.at) continue;
    auto same = std::find_if(lines.begin(), lines.end(),
                             [&p](const CartLine& l) { return l.key == p.key; });
    if (same != lines.end()) {
      // Listed twice: one line, quantities added (unless a newer line stands for it).
      if (same->updated_at == e.at)
        same->quantity = std::min(kMaxQuantity, same->quantity + quantity);
      continue;
    }
    if (lines.size() >= options.max_cart_lines) continue;
    if (const CartLine* newer = newer_line(p.key)) {
      lines.push_back(*newer);  // changed after the snapshot was taken: keep the change
    } else {
      lines.push_back(NewLine(p, quantity, e.currency, e.at));
    }
  }
  // Lines added after the snapshot was taken stay.
  for (const CartLine& l : cart.lines) {
    if (l.updated_at <= e.at) continue;
    const bool listed =
        std::any_of(lines.begin(), lines.end(), [&l](const CartLine& x) { return x.key == l.key; });
    if (!listed && lines.size() < options.max_cart_lines) lines.push_back(l);
  }
  cart.replaced_at = e.at;
  PruneRemovals(cart);
  if (SameContent(lines, cart.lines)) return false;
  cart.lines = std::move(lines);
  Changed(cart, e.at);
  return true;
}

bool StartCheckout(Cart& cart, EpochMs at) {
  // An empty cart has nothing to check out (a cart this visitor built elsewhere, unseen).
  if (at < cart.replaced_at || cart.stage == CartStage::kCheckout || cart.empty()) return false;
  cart.stage = CartStage::kCheckout;
  cart.checkout_started_at = at;
  Changed(cart, at);
  return true;
}

// Order Completed: the lines last changed at or before the order are bought.
bool EmptyForOrder(Cart& cart, EpochMs at) {
  const std::size_t before = cart.lines.size();
  std::erase_if(cart.lines, [at](const CartLine& l) { return l.updated_at <= at; });
  bool changed = cart.lines.size() != before;
  cart.replaced_at = std::max(cart.replaced_at, at);
  PruneRemovals(cart);
  if (cart.stage == CartStage::kCheckout && cart.checkout_started_at <= at) {
    cart.stage = CartStage::kBrowsing;
    cart.checkout_started_at = 0;
    changed = true;
  }
  if (changed) Changed(cart, at);
  return changed;
}


// ---- Sessions ----

struct PageResult {
  bool started = false;  // a new session began at `start`
  bool moved = false;    // the current session now starts earlier: `moved_from` -> `start`
  EpochMs start = 0, moved_from = 0;
};

PageResult ApplyPage(Visitor& v, const Event& e, const Options& options) {
  PageResult result;
  ++v.page_views;
  const EpochMs timeout = options.session_timeout.count();
  bool open = v.sessions.empty();
  if (!open) {
    Session& cur = v.sessions.back();
    if (e.at >= cur.start) {
      if (e.at > cur.end + timeout) {
        open = true;
      } else if (e.at >= cur.end && !e.campaign.empty() && e.campaign != cur.utm) {
        open = true;  // a new campaign starts a new visit, as in Google Analytics
      } else {
        ++cur.pages;
        if (e.at >= cur.end) {
          cur.end = e.at;
          cur.exit_url = e.url;
          cur.exit_title = e.title;
        }
        return result;
      }
    } else {
      // Earlier than the current session's start: it becomes the landing page when it is
      // close enough and no closer to the previous session; else it counts in page_views
      // only, since a closed session is never reopened.
      const Session* prev = v.sessions.size() >= 2 ? &v.sessions[v.sessions.size() - 2] : nullptr;
      const bool fits = cur.start - e.at <= timeout &&
                        (prev == nullptr || e.at > prev->end + timeout) &&
                        (e.campaign.empty() || cur.utm.empty() || e.campaign == cur.utm);
      if (!fits) return result;
      result.moved = true;
      result.moved_from = cur.start;
      result.start = e.at;
      cur.start = e.at;
      ++cur.pages;
      cur.landing_url = e.url;
      cur.landing_title = e.title;
      cur.referrer = e.referrer;
      if (!e.campaign.empty()) cur.utm = e.campaign;
      return result;
    }
  }
  Session s;
  s.start = s.end = e.at;
  s.pages = 1;
  s.landing_url = s.exit_url = e.url;
  s.landing_title = s.exit_title = e.title;
  s.referrer = e.referrer;
  s.utm = e.campaign;
  v.sessions.push_back(std::move(s));
  if (v.sessions.size() > options.max_sessions) {
    v.sessions.erase(
        v.sessions.begin(),
        v.sessions.begin() + static_cast<std::ptrdiff_t>(v.sessions.size() - options.max_sessions));
  }
  result.started = true;
  result.start = e.at;
  return result;
}

// Any other event is activity: it extends the current session when it falls within it.
void ExtendSession(Visitor& v, EpochMs at, const Options& options) {
  if (v.sessions.empty()) return;
  Session& cur = v.sessions.back();
  if (at > cur.end && at <= cur.end + options.session_timeout.count()) cur.end = at;
}

void AddVisit(Customer& c, EpochMs start, const Options& options) {
  auto it = std::lower_bound(c.visits.begin(), c.visits.end(), start);
  if (it != c.visits.end() && *it == start) return;
  c.visits.insert(it, start);
  if (c.visits.size() > options.max_visits) {
    c.visits.erase(c.visits.begin(), c.visits.begin() + static_cast<std::ptrdiff_t>(
                                                            c.visits.size() - options.max_visits));
  }
}

void MoveVisit(Customer& c, EpochMs from, EpochMs to, const Options& options) {
  auto it = std::lower_bound(c.visits.begin(), c.visits.end(), from);
  if (it != c.visits.end() && *it == from) c.visits.erase(it);
  AddVisit(c, to, options);
}

// ---- Product interest ----

void SortViewed(std::vector<ViewedProduct>& viewed, const Options& options) {
  std::stable_sort(
      viewed.begin(), viewed.end(),
      [](const ViewedProduct& a, const ViewedProduct& b) { return a.viewed_at > b.viewed_at; });
  if (viewed.size() > options.max_viewed_products) viewed.resize(options.max_viewed_products);
}

void AddViewed(std::vector<ViewedProduct>& viewed, const Event& e, const Options& options) {
  for (const Product& p : e.products) {
    auto it = std::find_if(viewed.begin(), viewed.end(),
                           [&p](const ViewedProduct& v) { return v.key == p.key; });
    if (it == viewed.end()) {
      ViewedProduct fresh;
      fresh.key = p.key;
      viewed.push_back(std::move(fresh));
      it = viewed.end() - 1;
    }
    ++it->views;
    if (e.at >= it->viewed_at) {
      it->viewed_at = e.at;
      auto set = [](std::string& field, const std::string& value) {
        if (!value.empty()) field = value;
      };
      set(it->name, p.name);
      set(it->category, p.category);
      set(it->brand, p.brand);
      set(it->url, p.url);
      set(it->image_url, p.image_url);
      set(it->currency, e.currency);
      if (p.price) it->price = p.price;
    }
  }
  SortViewed(viewed, options);
}


// ---- Orders ----

Amount LineAmount(Amount price, std::int64_t quantity) {
  const __int128 v = static_cast<__int128>(price) * quantity;
  return v > kMaxAmount ? kMaxAmount : v < -kMaxAmount ? -kMaxAmount : static_cast<Amount>(v);
}

Order MakeOrder(const Event& e) {
  Order order;
  order.order_id = e.order_id;
  order.at = e.at;
  order.currency = e.currency;
  Amount sum = 0;
  for (const Product& p : e.products) {
    const Amount amount = LineAmount(p.price.value_or(0), p.quantity.value_or(1));
    sum = AddAmounts(sum, amount);
    if (!p.category.empty() || !p.brand.empty()) {
      order.items.push_back(OrderItem{p.category, p.brand, amount});
    }
  }
  order.revenue = e.total ? *e.total : sum;
  return order;
}

bool HasOrder(const std::vector<Order>& orders, std::string_view id) {
  return std::any_of(orders.begin(), orders.end(),
                     [id](const Order& o) { return o.order_id == id; });
}

void InsertOrder(std::vector<Order>& orders, Order order) {
  auto it = std::upper_bound(orders.begin(), orders.end(), order.at,
                             [](EpochMs at, const Order& o) { return at < o.at; });
  orders.insert(it, std::move(order));
}

void AddSpend(std::vector<Spend>& spends, const std::string& currency, const std::string& name,
              Amount amount) {
  if (name.empty()) return;
  for (Spend& s : spends) {
    if (s.currency == currency && s.name == name) {
      s.amount = AddAmounts(s.amount, amount);
      return;
    }
  }
  spends.push_back(Spend{currency, name, amount});
}

void TrimSpends(std::vector<Spend>& spends) {
  if (spends.size() <= kMaxArchivedSpends) return;
  std::stable_sort(spends.begin(), spends.end(),
                   [](const Spend& a, const Spend& b) { return a.amount > b.amount; });
  spends.resize(kMaxArchivedSpends);
}

void Archive(OrderArchive& archive, const Order& order) {
  if (archive.count == 0 || order.at < archive.first_at) archive.first_at = order.at;
  if (archive.count == 0 || order.at > archive.last_at) archive.last_at = order.at;
  ++archive.count;
  auto it = std::find_if(archive.revenue.begin(), archive.revenue.end(),
                         [&order](const CurrencyTotal& t) { return t.currency == order.currency; });
  if (it == archive.revenue.end()) {
    archive.revenue.push_back(CurrencyTotal{order.currency, 0, 0});
    it = archive.revenue.end() - 1;
  }
  ++it->orders;
  it->revenue = AddAmounts(it->revenue, order.revenue);
  for (const OrderItem& item : order.items) {
    AddSpend(archive.categories, order.currency, item.category, item.amount);
    AddSpend(archive.brands, order.currency, item.brand, item.amount);
  }
  TrimSpends(archive.categories);
  TrimSpends(archive.brands);
}


void AddCustomerOrder(Customer& c, Order order, const Options& options) {
  InsertOrder(c.orders, std::move(order));
  while (c.orders.size() > options.max_orders) {
    Archive(c.archived, c.orders.front());
    c.orders.erase(c.orders.begin());
  }
}

void AddVisitorOrder(Visitor& v, Order order, const Options& options) {
  InsertOrder(v.orders, std::move(order));
  while (v.orders.size() > options.max_orders) v.orders.erase(v.orders.begin());
}

// ---- Identity ----



}  // namespace detail

using namespace detail;

CartTotals TotalsOf(const Cart& cart) {
  CartTotals totals;
  const CartLine* newest = nullptr;
  for (const CartLine& line : cart.lines) {
    if (!line.currency.empty() && (newest == nullptr || line.updated_at >= newest->updated_at)) {
      newest = &line;
    }
  }
  if (newest != nullptr) totals.currency = newest->currency;
  totals.by_currency.push_back({totals.currency, 0});
  for (const CartLine& line : cart.lines) {
    totals.items += line.quantity;
    const std::string& currency = line.currency.empty() ? totals.currency : line.currency;
    auto it = std::find_if(
        totals.by_currency.begin(), totals.by_currency.end(),
        [&currency](const CartTotals::PerCurrency& p) { return p.currency == currency; });
    if (it == totals.by_currency.end()) {
      totals.by_currency.push_back({currency, 0});
      it = totals.by_currency.end() - 1;
    }
    it->value = AddAmounts(it->value, LineAmount(line.price, line.quantity));
  }
  std::sort(totals.by_currency.begin() + 1, totals.by_currency.end(),
            [](const CartTotals::PerCurrency& a, const CartTotals::PerCurrency& b) {
              return a.currency < b.currency;
            });
  totals.value = totals.by_currency.front().value;
  if (cart.lines.empty()) totals.by_currency.clear();
  return totals;
}

std::string_view CustomerIdFor(const Event& event, const Visitor* visitor) {
  if (!event.user_id.empty()) return event.user_id;
  if (visitor != nullptr) return visitor->user_id;
  return {};
}

Outcome Apply(const Event& e, Visitor* visitor, Customer* customer, const Options& options) {
  assert((visitor != nullptr) == !e.anonymous_id.empty());
  assert((customer != nullptr) == !CustomerIdFor(e, visitor).empty());
  Outcome out;
  if (visitor == nullptr && customer == nullptr) return out;
  // Where and in what language the person is, as their newest message says.
  auto place = [&e](std::string& timezone, std::string& locale, EpochMs last_seen) {
    if (e.at < last_seen) return;
    if (!e.timezone.empty()) timezone = e.timezone;
    if (!e.locale.empty()) locale = e.locale;
  };
  if (visitor != nullptr) {
    if (visitor->anonymous_id.empty()) visitor->anonymous_id = e.anonymous_id;
    place(visitor->timezone, visitor->locale, visitor->last_seen);
    Seen(visitor->first_seen, visitor->last_seen, e.at);
  }
  if (customer != nullptr) {
    if (customer->user_id.empty()) customer->user_id = CustomerIdFor(e, visitor);
    place(customer->timezone, customer->locale, customer->last_seen);
    Seen(customer->first_seen, customer->last_seen, e.at);
  }

  if (visitor != nullptr && customer != nullptr) {
    if (!e.user_id.empty() && visitor->user_id != e.user_id) {
      if (visitor->user_id.empty()) {
        MergeIntoCustomer(*visitor, *customer, options, out);
      } else {
        // A shared device: from now on it is this customer's; what happened before stays
        // with the previous one.
        out.previous_user_id = visitor->user_id;
      }
      visitor->user_id = e.user_id;
      visitor->linked_at = e.at;
      out.linked = true;
    }
    AddLinkedVisitor(*customer, visitor->anonymous_id, options);
  }

  // Once a visitor is linked, the person's cart, orders and interest are the customer's.
  Cart& cart = customer != nullptr ? customer->cart : visitor->cart;
  std::vector<ViewedProduct>& viewed = customer != nullptr ? customer->viewed : visitor->viewed;
  if (!e.traits.empty()) {
    ApplyTraits(customer != nullptr ? customer->traits : visitor->traits, e.traits, e.at);
  }

  if (visitor != nullptr) {
    if (e.type == EventType::kPage) {
      const PageResult page = ApplyPage(*visitor, e, options);
      out.session_started = page.started;
      if (customer != nullptr && page.started) AddVisit(*customer, page.start, options);
      if (customer != nullptr && page.moved) {
        MoveVisit(*customer, page.moved_from, page.start, options);
      }
    } else {
      ExtendSession(*visitor, e.at, options);
    }
  }

  switch (e.type) {
    case EventType::kProductViewed:
      AddViewed(viewed, e, options);
      break;
    case EventType::kProductAdded:
    case EventType::kProductRemoved:
      out.cart_changed =
          ApplyDelta(cart, e, e.type == EventType::kProductAdded, options) || out.cart_changed;
      break;
    case EventType::kCartReplaced:
      out.cart_changed = ReplaceCart(cart, e, options) || out.cart_changed;
      break;
    case EventType::kCheckoutStarted:
      out.cart_changed = StartCheckout(cart, e.at) || out.cart_changed;
      break;
    case EventType::kOrderCompleted: {
      const bool known = customer != nullptr ? HasOrder(customer->orders, e.order_id)
                                             : HasOrder(visitor->orders, e.order_id);
      if (known) {
        out.duplicate_order = true;  // counted once; the cart was emptied then
        break;
      }
      if (customer != nullptr) {
        AddCustomerOrder(*customer, MakeOrder(e), options);
      } else {
        AddVisitorOrder(*visitor, MakeOrder(e), options);
      }
      out.order_added = true;
      out.cart_changed = EmptyForOrder(cart, e.at) || out.cart_changed;
      break;
    }
    case EventType::kActivity:
    case EventType::kPage:
    case EventType::kIdentify:
    case EventType::kAlias:  // linked above, as an identify (the store passes previousId)
      break;
  }
  return out;
}



}  // namespace cartwatch::profiles
