// The identity merges (docs/profiles.md, "Identity" and "Alias"): a visitor's anonymous
// history into the customer it is linked to, and one customer into another by an alias.
#include <algorithm>
#include <cassert>
#include <string>
#include <utility>
#include <vector>

#include "profiles/profiles.h"
#include "profiles/transitions.h"

namespace cartwatch::profiles {

namespace detail {

void MergeTrait(Trait& into, const Trait& from) {
  if (from.at > into.at) into = from;
}

void MergeTraits(Traits& into, const Traits& from) {
  MergeTrait(into.email, from.email);
  MergeTrait(into.phone, from.phone);
  MergeTrait(into.first_name, from.first_name);
  MergeTrait(into.last_name, from.last_name);
  MergeTrait(into.name, from.name);
}

// The identity merge: `from` (a visitor's anonymous cart) into `into` (the customer's).
bool MergeCart(Cart& into, const Cart& from, const Options& options) {
  bool changed = false;
  for (const CartLine& line : from.lines) {
    CartLine* same = FindLine(into, line.key);
    if (same == nullptr) {
      if (into.lines.size() >= options.max_cart_lines) continue;
      into.lines.push_back(line);
      changed = true;
    } else if (line.updated_at > same->updated_at) {
      *same = line;  // the newer line wins; quantities are not added
      changed = true;
    }
  }
  if (from.stage == CartStage::kCheckout &&
      (into.stage != CartStage::kCheckout || from.checkout_started_at > into.checkout_started_at)) {
    into.stage = CartStage::kCheckout;
    into.checkout_started_at = from.checkout_started_at;
    changed = true;
  }
  for (const CartRemoval& r : from.removals) RememberRemoval(into, r.key, r.at);
  into.replaced_at = std::max(into.replaced_at, from.replaced_at);
  PruneRemovals(into);
  if (changed) {
    into.version = std::max(into.version, from.version) + 1;
    into.updated_at = std::max(into.updated_at, from.updated_at);
  }
  return changed;
}

void MergeViewed(std::vector<ViewedProduct>& into, const std::vector<ViewedProduct>& from,
                 const Options& options) {
  for (const ViewedProduct& p : from) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&p](const ViewedProduct& v) { return v.key == p.key; });
    if (it == into.end()) {
      into.push_back(p);
    } else {
      const std::int64_t views = it->views + p.views;
      if (p.viewed_at > it->viewed_at) *it = p;
      it->views = views;
    }
  }
  SortViewed(into, options);
}

// Two customers' archived orders as one archive.
void MergeArchive(OrderArchive& into, const OrderArchive& from) {
  if (from.count == 0) return;
  if (into.count == 0 || from.first_at < into.first_at) into.first_at = from.first_at;
  if (into.count == 0 || from.last_at > into.last_at) into.last_at = from.last_at;
  into.count += from.count;
  for (const CurrencyTotal& t : from.revenue) {
    auto it = std::find_if(into.revenue.begin(), into.revenue.end(),
                           [&t](const CurrencyTotal& u) { return u.currency == t.currency; });
    if (it == into.revenue.end()) {
      into.revenue.push_back(t);
    } else {
      it->orders += t.orders;
      it->revenue = AddAmounts(it->revenue, t.revenue);
    }
  }
  for (const Spend& s : from.categories) AddSpend(into.categories, s.currency, s.name, s.amount);
  for (const Spend& s : from.brands) AddSpend(into.brands, s.currency, s.name, s.amount);
  TrimSpends(into.categories);
  TrimSpends(into.brands);
}

void AddLinkedVisitor(Customer& c, const std::string& anonymous_id, const Options& options) {
  if (std::find(c.anonymous_ids.begin(), c.anonymous_ids.end(), anonymous_id) !=
      c.anonymous_ids.end()) {
    return;
  }
  c.anonymous_ids.push_back(anonymous_id);
  if (c.anonymous_ids.size() > options.max_linked_visitors) {
    c.anonymous_ids.erase(c.anonymous_ids.begin());
  }
}

// The first link of an anonymous visitor: what it did anonymously becomes the customer's.
void MergeIntoCustomer(Visitor& v, Customer& c, const Options& options, Outcome& out) {
  MergeTraits(c.traits, v.traits);
  if (MergeCart(c.cart, v.cart, options)) out.cart_changed = true;
  MergeViewed(c.viewed, v.viewed, options);
  for (Order& order : v.orders) {
    if (HasOrder(c.orders, order.order_id)) continue;
    AddCustomerOrder(c, std::move(order), options);
    out.order_added = true;
  }
  for (const Session& s : v.sessions) AddVisit(c, s.start, options);
  if (v.first_seen != 0) Seen(c.first_seen, c.last_seen, v.first_seen);
  if (v.last_seen != 0) Seen(c.first_seen, c.last_seen, v.last_seen);
  v.traits = Traits();
  v.cart = Cart();
  v.viewed.clear();
  v.orders.clear();
}

}  // namespace detail

using namespace detail;

void ForgetVisitor(Customer& customer, std::string_view anonymous_id) {
  std::erase(customer.anonymous_ids, anonymous_id);
}

// The ids `into` lists as merged once `from` is: `from`, then the customers merged into it
// before, after into's own.
std::vector<std::string> MergedIds(const Customer& into, const Customer& from) {
  std::vector<std::string> merged_ids = into.merged_user_ids;
  merged_ids.push_back(from.user_id);
  for (const std::string& id : from.merged_user_ids) {
    if (std::find(merged_ids.begin(), merged_ids.end(), id) == merged_ids.end()) {
      merged_ids.push_back(id);
    }
  }
  return merged_ids;
}

bool MergeFits(const Customer& into, const Customer& from, const Options& options) {
  return MergedIds(into, from).size() <= options.max_merged_customers;
}

bool MergeCustomers(Customer& into, Customer& from, EpochMs at, const Options& options,
                    Outcome& out) {
  assert(!into.user_id.empty() && !from.user_id.empty() && into.user_id != from.user_id);
  assert(!into.merged() && !from.merged());
  std::vector<std::string> merged_ids = MergedIds(into, from);
  if (merged_ids.size() > options.max_merged_customers) return false;

  MergeTraits(into.traits, from.traits);
  if (MergeCart(into.cart, from.cart, options)) out.cart_changed = true;
  MergeViewed(into.viewed, from.viewed, options);
  for (Order& order : from.orders) {
    if (HasOrder(into.orders, order.order_id)) continue;
    AddCustomerOrder(into, std::move(order), options);
    out.order_added = true;
  }
  MergeArchive(into.archived, from.archived);
  for (const EpochMs start : from.visits) AddVisit(into, start, options);
  for (const std::string& id : from.anonymous_ids) AddLinkedVisitor(into, id, options);
  if (from.first_seen != 0) Seen(into.first_seen, into.last_seen, from.first_seen);
  if (from.last_seen != 0) Seen(into.first_seen, into.last_seen, from.last_seen);
  Seen(into.first_seen, into.last_seen, at);
  into.merged_user_ids = std::move(merged_ids);

  Customer merged;
  merged.user_id = std::move(from.user_id);
  merged.merged_into = into.user_id;
  merged.merged_at = at;
  from = std::move(merged);
  return true;
}

}  // namespace cartwatch::profiles
