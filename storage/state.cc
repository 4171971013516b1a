#include "storage/state.h"

#include <algorithm>
#include <cassert>
#include <cstdio>

#include "profiles/codec.h"
#include "storage/keys.h"
#include "storage/status.h"

namespace cartwatch::storage {
namespace {

boost::system::result<profiles::Visitor> Decode(std::string_view bytes, profiles::Visitor*) {
  return profiles::DecodeVisitor(bytes);
}
boost::system::result<profiles::Customer> Decode(std::string_view bytes, profiles::Customer*) {
  return profiles::DecodeCustomer(bytes);
}

}  // namespace

StateWriter::StateWriter(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* visitors,
                         rocksdb::ColumnFamilyHandle* customers, const profiles::Options& options,
                         std::size_t cache_entries)
    : db_(db), options_(options), cache_entries_(cache_entries) {
  visitors_.cf = visitors;
  customers_.cf = customers;
}

template <typename Record>
boost::system::result<StateWriter::Entry<Record>*> StateWriter::Load(Table<Record>& table,
                                                                     std::string_view site_prefix,
                                                                     std::string_view id) {
  key_.assign(site_prefix);
  key_.append(id);
  if (auto it = table.map.find(std::string_view(key_)); it != table.map.end()) {
    lru_.splice(lru_.begin(), lru_, it->second->lru);
    return it->second.get();
  }
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), table.cf, key_, &value);
  if (!s.ok() && !s.IsNotFound()) return FromStatus(s);
  auto entry = std::make_unique<Entry<Record>>();
  entry->key = key_;
  if (s.ok()) {
    auto decoded = Decode(value, static_cast<Record*>(nullptr));
    if (decoded) {
      entry->record = std::move(*decoded);
      entry->present = true;
    } else {
      std::fprintf(stderr,
                   "cartwatch: a stored %s record does not decode (%s); it starts again from "
                   "this message\n",
                   std::is_same_v<Record, profiles::Visitor> ? "visitor" : "customer",
                   decoded.error().message().c_str());
    }
  }
  lru_.push_front(LruNode{&entry->key, std::is_same_v<Record, profiles::Customer>});
  entry->lru = lru_.begin();
  Entry<Record>* raw = entry.get();
  table.map.emplace(std::string_view(raw->key), std::move(entry));
  return raw;
}

template <typename Record>
void StateWriter::MarkDirty(Table<Record>& table, Entry<Record>& entry) {
  if (entry.dirty) return;
  entry.dirty = true;
  table.dirty.push_back(&entry);
}

boost::system::error_code StateWriter::Apply(std::string_view site_prefix, std::string_view json) {
  std::optional<profiles::Event> event = profiles::ParseEvent(json);
  if (!event) return {};

  Entry<profiles::Visitor>* visitor = nullptr;
  if (!event->anonymous_id.empty()) {
    auto loaded = Load(visitors_, site_prefix, event->anonymous_id);
    if (!loaded) return loaded.error();
    visitor = *loaded;
    if (!visitor->present) {
      visitor->record = profiles::Visitor();
      visitor->present = true;
      MarkDirty(visitors_, *visitor);
    }
  }
  // A copy: Apply may re-link the visitor, which changes the string this would point into.
  std::string user_id(profiles::CustomerIdFor(*event, visitor ? &visitor->record : nullptr));
  Entry<profiles::Customer>* customer = nullptr;
  if (!user_id.empty()) {
    auto loaded = Load(customers_, site_prefix, user_id);
    if (!loaded) return loaded.error();
    customer = *loaded;
    if (!customer->present && event->user_id.empty()) {
      // The visitor is linked to a customer that has no record: one that was erased (a
      // device beyond the customer's list of linked visitors). Its anonymous messages must
      // not bring the customer back: the visitor is anonymous again.
      visitor->record.user_id.clear();
      visitor->record.linked_at = 0;
      user_id.clear();
      customer = nullptr;
    } else if (!customer->present) {
      customer->record = profiles::Customer();
      customer->present = true;
      MarkDirty(customers_, *customer);
    }
  }

  const profiles::Outcome outcome =
      profiles::Apply(*event, visitor ? &visitor->record : nullptr,
                      customer ? &customer->record : nullptr, options_);
  if (visitor) MarkDirty(visitors_, *visitor);
  if (customer) MarkDirty(customers_, *customer);

  if (!outcome.previous_user_id.empty()) {
    auto loaded = Load(customers_, site_prefix, outcome.previous_user_id);
    if (!loaded) return loaded.error();
    Entry<profiles::Customer>* previous = *loaded;
    if (previous->present) {
      profiles::ForgetVisitor(previous->record, event->anonymous_id);
      MarkDirty(customers_, *previous);
    }
  }
  return {};
}

boost::system::result<std::vector<std::string>> StateWriter::EraseVisitors(
    std::string_view site_prefix, std::string_view user_id,
    const std::vector<std::string>& anonymous_ids) {
  std::vector<std::string> erased;
  for (const std::string& anonymous_id : anonymous_ids) {
    auto visitor = Load(visitors_, site_prefix, anonymous_id);
    if (!visitor) return visitor.error();
    Entry<profiles::Visitor>* v = *visitor;
    // Gone, or re-linked to another customer since: that customer's now.
    if (!v->present || v->record.user_id != user_id) continue;
    v->record = profiles::Visitor();
    v->present = false;
    MarkDirty(visitors_, *v);
    erased.push_back(anonymous_id);
  }
  return erased;
}

boost::system::result<StateWriter::Erased> StateWriter::Erase(std::string_view site_prefix,
                                                             std::string_view user_id) {
  auto loaded = Load(customers_, site_prefix, user_id);
  if (!loaded) return loaded.error();
  Entry<profiles::Customer>* customer = *loaded;
  Erased erased;
  erased.found = customer->present;
  if (customer->present) {
    // A copy: loading visitors does not touch the customer, but the list is cleared below.
    const std::vector<std::string> listed = customer->record.anonymous_ids;
    auto visitors = EraseVisitors(site_prefix, user_id, listed);
    if (!visitors) return visitors.error();
    erased.anonymous_ids = std::move(*visitors);
  }
  customer->record = profiles::Customer();
  customer->present = false;
  MarkDirty(customers_, *customer);
  return erased;
}

template <typename Record>
void StateWriter::StageTable(Table<Record>& table, rocksdb::WriteBatch& batch) {
  // In key order: the memtable's skip list then inserts each record near the one before
  // (RocksDB keeps the last insert position), instead of searching from the top each time.
  std::sort(table.dirty.begin(), table.dirty.end(),
            [](const Entry<Record>* a, const Entry<Record>* b) { return a->key < b->key; });
  for (const Entry<Record>* entry : table.dirty) {
    if (entry->present) {
      batch.Put(table.cf, entry->key, profiles::Encode(entry->record));
    } else {
      batch.Delete(table.cf, entry->key);
    }
  }
}

void StateWriter::Stage(rocksdb::WriteBatch& batch) {
  StageTable(visitors_, batch);
  StageTable(customers_, batch);
}

template <typename Record>
void StateWriter::FinishTable(Table<Record>& table, bool written) {
  for (Entry<Record>* entry : table.dirty) {
    if (written) {
      entry->dirty = false;
    } else {
      lru_.erase(entry->lru);
      table.map.erase(table.map.find(std::string_view(entry->key)));  // frees the entry
    }
  }
  table.dirty.clear();
}

void StateWriter::Finish(bool written) {
  FinishTable(visitors_, written);
  FinishTable(customers_, written);
  Trim();
}

void StateWriter::Trim() {
  while (lru_.size() > cache_entries_) {
    const LruNode node = lru_.back();
    lru_.pop_back();
    // Found first, then erased: the key viewed is freed with the entry.
    if (node.customer) {
      customers_.map.erase(customers_.map.find(std::string_view(*node.key)));
    } else {
      visitors_.map.erase(visitors_.map.find(std::string_view(*node.key)));
    }
  }
}

}  // namespace cartwatch::storage
