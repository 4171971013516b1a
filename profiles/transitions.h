// The building blocks of the transitions that profiles.cc (applying one event) and merge.cc
// (merging identities) share. Private to profiles/. Pure functions on the records.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "profiles/profiles.h"

namespace cartwatch::profiles::detail {

// Widens [first, last] to include `at` (0: unset).
void Seen(EpochMs& first, EpochMs& last, EpochMs at);

// ---- profiles.cc ----
CartLine* FindLine(Cart& cart, std::string_view key);
// Remembers that the line `key` was removed at `at` (the newest 32 removals are kept).
void RememberRemoval(Cart& cart, const std::string& key, EpochMs at);
// Forgets the removals not newer than the cart's last whole-cart replace.
void PruneRemovals(Cart& cart);
// Most recent first, at most Options::max_viewed_products.
void SortViewed(std::vector<ViewedProduct>& viewed, const Options& options);
// Adds a session start to the customer's visits (ascending, at most Options::max_visits).
void AddVisit(Customer& c, EpochMs start, const Options& options);
bool HasOrder(const std::vector<Order>& orders, std::string_view id);
// Adds an order in time order, folding the oldest into the archive past Options::max_orders.
void AddCustomerOrder(Customer& c, Order order, const Options& options);
// Adds `amount` to the (currency, name) spend; nothing for an empty name.
void AddSpend(std::vector<Spend>& spends, const std::string& currency, const std::string& name,
              Amount amount);
// Keeps the largest spends of an archive.
void TrimSpends(std::vector<Spend>& spends);

// ---- merge.cc ----
// The identity merge: `from` (a visitor's anonymous cart) into `into` (the customer's);
// true when the merged cart changed.
bool MergeCart(Cart& into, const Cart& from, const Options& options);
// Lists the visitor on the customer (the newest Options::max_linked_visitors).
void AddLinkedVisitor(Customer& c, const std::string& anonymous_id, const Options& options);
// The first link of an anonymous visitor: what it did anonymously becomes the customer's.
void MergeIntoCustomer(Visitor& v, Customer& c, const Options& options, Outcome& out);

}  // namespace cartwatch::profiles::detail
