#include "storage/state.h"

#include <algorithm>
#include <cassert>

#include "profiles/codec.h"
#include "storage/keys.h"
#include "storage/status.h"
#include "util/log.h"

namespace cartwatch::storage {
namespace {

boost::system::result<profiles::Visitor> Decode(std::string_view bytes, profiles::Visitor*) {
  return profiles::DecodeVisitor(bytes);
}
boost::system::result<profiles::Customer> Decode(std::string_view bytes, profiles::Customer*) {
  return profiles::DecodeCustomer(bytes);
}

// Merges rewrite the records merged before to point at the newest customer, so a chain is
// one hop long; longer ones only come from damaged records.
constexpr int kMaxMergeHops = 8;

// A result<bool> cannot be made from an error_code implicitly (bool is constructible from
// it too).
boost::system::result<bool> BoolFailure(boost::system::error_code ec) {
  return {boost::system::in_place_error, ec};
}

template <typename Record>
constexpr const char* kNoun = std::is_same_v<Record, profiles::Visitor> ? "visitor" : "customer";

}  // namespace

StateWriter::StateWriter(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* visitors,
                         rocksdb::ColumnFamilyHandle* customers, const StateOptions& options)
    : db_(db), options_(options) {
  visitors_.cf = visitors;
  customers_.cf = customers;
}

StateWriter::~StateWriter() { Discard(); }

template <typename Record>
boost::system::result<StateWriter::Entry<Record>*> StateWriter::Load(Table<Record>& table,
                                                                     std::string_view site_prefix,
                                                                     std::string_view id) {
  key_.assign(site_prefix);
  key_.append(id);
  if (auto* found = table.map.Find(std::string_view(key_))) {
    Entry<Record>* entry = found->second.get();
    if (!entry->dirty) lru_.splice(lru_.begin(), lru_, lru_.iterator_to(*entry));
    if (entry->decoded == nullptr) Expand(*entry);
    return entry;
  }
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), table.cf, key_, &value_);
  if (!s.ok() && !s.IsNotFound()) return FromStatus(s);
  auto entry = std::make_unique<Entry<Record>>();
  entry->key = key_;
  entry->customer = std::is_same_v<Record, profiles::Customer>;
  entry->decoded = std::make_unique<Record>();
  if (s.ok()) {
    const StateValue value = SplitStateValue(value_);
    auto decoded = Decode(value.record, static_cast<Record*>(nullptr));
    if (decoded) {
      entry->record() = std::move(*decoded);
      entry->present = true;
      entry->applied = value.applied;
      entry->stored.assign(value_);  // allocates its size: value_ keeps its capacity
    } else {
      log::Error("a stored record does not decode; it starts again from this message")
          .Add("record", kNoun<Record>)
          .Add("error", decoded.error().message());
    }
  }
  Entry<Record>* raw = entry.get();
  AddToCache(*raw);
  expanded_.push_back(raw);
  table.map.try_emplace(std::string_view(raw->key), std::move(entry));
  return raw;
}

template <typename Record>
void StateWriter::Expand(Entry<Record>& entry) {
  entry.decoded = std::make_unique<Record>();
  expanded_.push_back(&entry);
  if (!entry.present) return;
  auto decoded = Decode(SplitStateValue(entry.stored).record, static_cast<Record*>(nullptr));
  if (decoded) {
    entry.record() = std::move(*decoded);
    return;
  }
  // It decoded when it was read or written: only damaged memory gets here.
  log::Error("a cached record does not decode; it starts again from this message")
      .Add("record", kNoun<Record>)
      .Add("error", decoded.error().message());
  RemoveFromCache(entry);
  entry.present = false;
  std::string().swap(entry.stored);
  AddToCache(entry);
}

void StateWriter::Shrink(EntryBase& entry) {
  if (entry.customer) {
    static_cast<Entry<profiles::Customer>&>(entry).decoded.reset();
  } else {
    static_cast<Entry<profiles::Visitor>&>(entry).decoded.reset();
  }
}

std::size_t StateWriter::CachedFootprint(const EntryBase& entry) {
  // The entry's own allocation (and the allocator's header), its slot in the map (24 bytes
  // at a load of at most 7/8), and the heap blocks of its key and stored value when they
  // are too long for std::string's inline buffer.
  constexpr std::size_t kEntry =
      std::max(sizeof(Entry<profiles::Visitor>), sizeof(Entry<profiles::Customer>)) + 16 + 28;
  auto heap = [](const std::string& s) {
    return s.capacity() > 15 ? s.capacity() + 1 + 16 : 0;
  };
  return kEntry + heap(entry.key) + heap(entry.stored);
}

void StateWriter::AddToCache(EntryBase& entry) {
  entry.charged = CachedFootprint(entry);
  cache_bytes_ += entry.charged;
  lru_.push_front(entry);
}

void StateWriter::RemoveFromCache(EntryBase& entry) {
  cache_bytes_ -= entry.charged;
  entry.charged = 0;
  lru_.erase(lru_.iterator_to(entry));
}

template <typename Record>
boost::system::result<std::optional<Record>> StateWriter::Peek(Table<Record>& table,
                                                               std::string_view site_prefix,
                                                               std::string_view id) {
  key_.assign(site_prefix);
  key_.append(id);
  if (auto* found = table.map.Find(std::string_view(key_))) {
    Entry<Record>& entry = *found->second;
    if (!entry.present) return std::optional<Record>();
    if (entry.decoded != nullptr) return std::optional<Record>(entry.record());
    auto decoded = Decode(SplitStateValue(entry.stored).record, static_cast<Record*>(nullptr));
    if (!decoded) return boost::system::error_code(decoded.error());
    return std::optional<Record>(std::move(*decoded));
  }
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), table.cf, key_, &value_);
  if (s.IsNotFound()) return std::optional<Record>();
  if (!s.ok()) return FromStatus(s);
  auto decoded = Decode(SplitStateValue(value_).record, static_cast<Record*>(nullptr));
  if (!decoded) return boost::system::error_code(decoded.error());
  return std::optional<Record>(std::move(*decoded));
}

boost::system::result<std::optional<profiles::Visitor>> StateWriter::PeekVisitor(
    std::string_view site_prefix, std::string_view id) {
  return Peek(visitors_, site_prefix, id);
}

boost::system::result<std::optional<profiles::Customer>> StateWriter::PeekCustomer(
    std::string_view site_prefix, std::string_view id) {
  auto customer = Peek(customers_, site_prefix, id);
  for (int hop = 0; customer && *customer && (*customer)->merged(); ++hop) {
    if (hop == kMaxMergeHops) return std::optional<profiles::Customer>();
    const std::string into = std::move((*customer)->merged_into);
    customer = Peek(customers_, site_prefix, into);
  }
  return customer;
}

boost::system::result<StateWriter::Entry<profiles::Customer>*> StateWriter::Follow(
    std::string_view site_prefix, Entry<profiles::Customer>* merged) {
  assert(merged->present && merged->record().merged());
  Entry<profiles::Customer>* entry = merged;
  for (int hop = 0; entry->present && entry->record().merged(); ++hop) {
    if (hop == kMaxMergeHops) return nullptr;
    auto loaded = Load(customers_, site_prefix, entry->record().merged_into);
    if (!loaded) return loaded.error();
    entry = *loaded;
  }
  return entry->present ? entry : nullptr;
}

boost::system::result<bool> StateWriter::ApplyCustomerAlias(std::string_view site_prefix,
                                                           std::uint64_t event_id) {
  const profiles::Event& event = event_;
  auto previous = Load(customers_, site_prefix, event.previous_id);
  if (!previous) return BoolFailure(previous.error());
  Entry<profiles::Customer>* from = *previous;
  if (!from->present) return false;
  if (from->record().merged()) {
    auto target = Follow(site_prefix, from);
    if (!target) return BoolFailure(target.error());
    if (*target == nullptr) return false;  // merged into a customer since erased
    from = *target;
  }
  auto loaded = Load(customers_, site_prefix, event.user_id);
  if (!loaded) return BoolFailure(loaded.error());
  Entry<profiles::Customer>* into = *loaded;
  if (into->present && into->record().merged()) {
    auto target = Follow(site_prefix, into);
    if (!target) return BoolFailure(target.error());
    if (*target != nullptr) {
      into = *target;
    } else {
      into->present = false;  // merged into a customer since erased: starts afresh
    }
  }
  if (from == into) return true;  // already one person
  // Records changed together are written together: when one holds this event (a replay
  // after a crash), all of them do.
  if (from->applied >= event_id || (into->present && into->applied >= event_id)) return true;
  // Checked before `into` is created: an alias that merges nothing changes nothing.
  static const profiles::Customer kNoRecord;
  if (!profiles::MergeFits(into->present ? into->record() : kNoRecord, from->record(),
                           options_.profiles)) {
    return true;  // over max_merged_customers: the alias merges nothing (docs/profiles.md)
  }
  if (!into->present) {
    into->record() = profiles::Customer();
    into->record().user_id = event.user_id;
    into->present = true;
  }
  const std::string from_id = from->record().user_id;
  const std::vector<std::string> visitors = from->record().anonymous_ids;
  const std::vector<std::string> merged_before = from->record().merged_user_ids;
  profiles::Outcome outcome;
  const bool did_merge = profiles::MergeCustomers(into->record(), from->record(), event.at,
                                                  options_.profiles, outcome);
  assert(did_merge);  // MergeFits above
  (void)did_merge;
  Touch(*into, event_id);
  Touch(*from, event_id);
  Join(*into, *from);
  // The merged customer's devices are the merged-into customer's now; its list of them is
  // bounded, and a device beyond it finds its way there through the merged record.
  for (const std::string& id : visitors) {
    auto visitor = Load(visitors_, site_prefix, id);
    if (!visitor) return BoolFailure(visitor.error());
    Entry<profiles::Visitor>* v = *visitor;
    if (!v->present || v->record().user_id != from_id) continue;
    v->record().user_id = into->record().user_id;
    Touch(*v, event_id);
    Join(*v, *into);
  }
  // Customers merged into `from` before now point where it does: chains stay one hop long.
  for (const std::string& id : merged_before) {
    auto merged = Load(customers_, site_prefix, id);
    if (!merged) return BoolFailure(merged.error());
    Entry<profiles::Customer>* m = *merged;
    if (!m->present || m->record().merged_into != from_id) continue;
    m->record().merged_into = into->record().user_id;
    Touch(*m, event_id);
    Join(*m, *into);
  }
  return true;
}

void StateWriter::Touch(EntryBase& entry, std::uint64_t event_id) {
  entry.applied = std::max(entry.applied, event_id);
  if (entry.dirty) return;
  entry.dirty = true;
  entry.dirty_since = event_id;
  RemoveFromCache(entry);
  std::string().swap(entry.stored);  // the decoded record is what counts now
  // Ingest's event ids only grow, so the list stays ordered by dirty_since. Where they do
  // not (a replay goes site by site; an erase touches with the record's own id), the commit
  // stages everything (Stage with `all`, write_all_) before that order is relied on.
  unwritten_.push_back(entry);
}

StateWriter::EntryBase* StateWriter::Root(EntryBase* e) {
  while (e->parent != e) {
    e->parent = e->parent->parent;  // path halving
    e = e->parent;
  }
  return e;
}

void StateWriter::Join(EntryBase& a, EntryBase& b) {
  EntryBase* ra = Root(&a);
  EntryBase* rb = Root(&b);
  if (ra == rb) return;
  if (ra->group_size < rb->group_size) std::swap(ra, rb);
  rb->parent = ra;
  ra->group_size += rb->group_size;
  std::swap(ra->next, rb->next);  // splices the two rings into one
}

boost::system::error_code StateWriter::Apply(std::string_view site_prefix, std::uint64_t event_id,
                                             std::string_view json) {
  has_change_ = false;
  bool customer_created = false, visitor_created = false;
  // Parsed into the writer's own Event, which keeps its strings' memory for the next one.
  if (!profiles::ParseEventInto(json, event_)) return {};
  const profiles::Event& event = event_;
  if (event.type == profiles::EventType::kAlias) {
    auto merged = ApplyCustomerAlias(site_prefix, event_id);
    if (!merged) return merged.error();
    if (*merged) return {};
    // previousId is no customer: an anonymous id, linked to userId as an identify links.
    event_.anonymous_id = event_.previous_id;
  }

  Entry<profiles::Visitor>* visitor = nullptr;
  if (!event.anonymous_id.empty()) {
    auto loaded = Load(visitors_, site_prefix, event.anonymous_id);
    if (!loaded) return loaded.error();
    visitor = *loaded;
    // Records changed together are written together, so when one already holds this event
    // (a replay after a crash), all of them do.
    if (visitor->present && visitor->applied >= event_id) return {};
  }
  const profiles::Visitor* visitor_record =
      visitor && visitor->present ? &visitor->record() : nullptr;
  // A copy: Apply may re-link the visitor, which changes the string this would point into.
  std::string user_id(profiles::CustomerIdFor(event, visitor_record));
  Entry<profiles::Customer>* customer = nullptr;
  if (!user_id.empty()) {
    auto loaded = Load(customers_, site_prefix, user_id);
    if (!loaded) return loaded.error();
    customer = *loaded;
    bool stale_link = false;  // the visitor is linked to a customer merged into another
    if (customer->present && customer->record().merged()) {
      // An alias merged this customer into another: the message is that customer's.
      auto target = Follow(site_prefix, customer);
      if (!target) return target.error();
      if (*target != nullptr) {
        customer = *target;
        user_id = customer->record().user_id;
        if (!event.user_id.empty()) event_.user_id = user_id;
        stale_link = event.user_id.empty();
      } else {
        customer->present = false;  // merged into a customer since erased: starts afresh
      }
    }
    if (customer->present && customer->applied >= event_id) return {};
    if (stale_link) visitor->record().user_id = user_id;
    if (!customer->present && event.user_id.empty()) {
      // The visitor is linked to a customer that has no record: one that was erased (a
      // device beyond the customer's list of linked visitors). Its anonymous messages must
      // not bring the customer back: the visitor is anonymous again. The absent customer
      // still decided this, so it joins the visitor's group (its write is a Delete, of
      // nothing or of a record that does not decode): a replay must find both, or neither,
      // holding this message.
      visitor->record().user_id.clear();
      visitor->record().linked_at = 0;
      user_id.clear();
      Touch(*customer, event_id);
      Join(*visitor, *customer);
      customer = nullptr;
    } else if (!customer->present) {
      customer->record() = profiles::Customer();
      customer->present = true;
      customer_created = true;
    }
  }
  if (visitor && !visitor->present) {
    visitor->record() = profiles::Visitor();
    visitor->present = true;
    visitor_created = true;
  }

  // The person the message belongs to, before it: what the rule engine compares with.
  if (observe_changes_) {
    change_.before = rules::Snapshot(
        customer != nullptr
            ? rules::PersonOf(customer_created ? nullptr : &customer->record(), nullptr)
            : rules::PersonOf(nullptr, visitor_created ? nullptr : &visitor->record()),
        observe_cart_values_);
  }
  const profiles::Outcome outcome =
      profiles::Apply(event, visitor ? &visitor->record() : nullptr,
                      customer ? &customer->record() : nullptr, options_.profiles);
  if (observe_changes_ && (customer != nullptr || visitor != nullptr)) {
    change_.at = event.at;
    change_.person = rules::PersonOf(customer ? &customer->record() : nullptr,
                                     visitor ? &visitor->record() : nullptr);
    change_.order_added = outcome.order_added;
    has_change_ = true;
  }
  if (visitor) Touch(*visitor, event_id);
  if (customer) Touch(*customer, event_id);
  if (visitor && customer) Join(*visitor, *customer);

  if (!outcome.previous_user_id.empty()) {
    auto loaded = Load(customers_, site_prefix, outcome.previous_user_id);
    if (!loaded) return loaded.error();
    Entry<profiles::Customer>* previous = *loaded;
    if (previous->present) {
      profiles::ForgetVisitor(previous->record(), event.anonymous_id);
      Touch(*previous, event_id);
      Join(*visitor, *previous);
    }
  }
  return {};
}

boost::system::result<std::vector<std::string>> StateWriter::EraseVisitors(
    std::string_view site_prefix, std::string_view user_id,
    const std::vector<std::string>& anonymous_ids) {
  write_all_ = true;
  has_change_ = false;
  std::vector<std::string> erased;
  for (const std::string& anonymous_id : anonymous_ids) {
    auto visitor = Load(visitors_, site_prefix, anonymous_id);
    if (!visitor) return visitor.error();
    Entry<profiles::Visitor>* v = *visitor;
    // Gone, or re-linked to another customer since: that customer's now.
    if (!v->present || v->record().user_id != user_id) continue;
    v->record() = profiles::Visitor();
    v->present = false;
    Touch(*v, v->applied);
    erased.push_back(anonymous_id);
  }
  return erased;
}

boost::system::result<StateWriter::Erased> StateWriter::Erase(std::string_view site_prefix,
                                                             std::string_view user_id) {
  write_all_ = true;
  has_change_ = false;
  auto loaded = Load(customers_, site_prefix, user_id);
  if (!loaded) return loaded.error();
  Entry<profiles::Customer>* customer = *loaded;
  Erased erased;
  auto erase = [this](Entry<profiles::Customer>& entry) {
    entry.record() = profiles::Customer();
    entry.present = false;
    Touch(entry, entry.applied);
  };
  if (customer->present && customer->record().merged()) {
    auto target = Follow(site_prefix, customer);
    if (!target) return target.error();
    if (*target == nullptr) {  // merged into a customer since erased: only this record
      erased.found = true;
      erased.user_ids.emplace_back(user_id);
      erase(*customer);
      return erased;
    }
    customer = *target;
  }
  erased.found = customer->present;
  if (!customer->present) {
    erased.user_ids.emplace_back(user_id);
    return erased;
  }
  // Copies: the record is cleared below.
  const std::string id = customer->record().user_id;
  const std::vector<std::string> listed = customer->record().anonymous_ids;
  const std::vector<std::string> merged = customer->record().merged_user_ids;
  erased.user_ids.push_back(id);
  auto visitors = EraseVisitors(site_prefix, id, listed);
  if (!visitors) return visitors.error();
  erased.anonymous_ids = std::move(*visitors);
  erase(*customer);
  for (const std::string& merged_id : merged) {
    auto loaded_merged = Load(customers_, site_prefix, merged_id);
    if (!loaded_merged) return loaded_merged.error();
    Entry<profiles::Customer>* m = *loaded_merged;
    erased.user_ids.push_back(merged_id);
    if (m->present && m->record().merged()) erase(*m);
  }
  return erased;
}

void StateWriter::StageGroup(EntryBase& member) {
  EntryBase* e = &member;
  do {
    EntryBase* next = e->next;
    assert(e->dirty && !e->staged);
    unwritten_.erase(unwritten_.iterator_to(*e));
    e->staged = true;
    staged_.push_back(e);
    e->parent = e;
    e->next = e;
    e->group_size = 1;
    e = next;
  } while (e != &member);
}

void StateWriter::Put(rocksdb::WriteBatch& batch, EntryBase& entry) {
  rocksdb::ColumnFamilyHandle* cf = entry.customer ? customers_.cf : visitors_.cf;
  if (!entry.present) {
    batch.Delete(cf, entry.key);
    return;
  }
  value_.clear();
  AppendStateValueHeader(value_, entry.applied);
  if (entry.customer) {
    profiles::EncodeTo(value_, static_cast<Entry<profiles::Customer>&>(entry).record());
  } else {
    profiles::EncodeTo(value_, static_cast<Entry<profiles::Visitor>&>(entry).record());
  }
  batch.Put(cf, entry.key, value_);
  entry.stored.assign(value_);  // what the cache keeps once the batch is written
}

std::size_t StateWriter::Stage(rocksdb::WriteBatch& batch, std::uint64_t latest_event_id,
                               bool all, std::size_t max_records) {
  all = all || write_all_ || options_.write_delay_us == 0;
  const std::size_t before = staged_.size();
  const std::uint64_t due =
      latest_event_id > options_.write_delay_us ? latest_event_id - options_.write_delay_us : 0;
  while (!unwritten_.empty() && staged_.size() - before < max_records) {
    EntryBase& oldest = unwritten_.front();
    if (!all && oldest.dirty_since > due && unwritten_.size() <= options_.max_unwritten) break;
    StageGroup(oldest);
  }
  // In key order, visitors then customers: the memtable's skip list then inserts each record
  // near the one before (RocksDB keeps the last insert position).
  std::sort(staged_.begin() + before, staged_.end(), [](const EntryBase* a, const EntryBase* b) {
    return a->customer != b->customer ? b->customer : a->key < b->key;
  });
  for (auto it = staged_.begin() + before; it != staged_.end(); ++it) Put(batch, **it);
  return staged_.size() - before;
}

std::optional<std::uint64_t> StateWriter::replay_from() const {
  if (unwritten_.empty()) return std::nullopt;
  return unwritten_.front().dirty_since;
}

void StateWriter::Finish(bool written) {
  write_all_ = false;
  has_change_ = false;
  if (!written) {
    Discard();
    return;
  }
  for (EntryBase* e : staged_) {
    e->staged = false;
    e->dirty = false;
    Shrink(*e);
    AddToCache(*e);
  }
  staged_.clear();
  // Records read for this commit's messages and left unchanged are clean: stored only.
  for (EntryBase* e : expanded_) {
    if (!e->dirty) Shrink(*e);
  }
  expanded_.clear();
  Trim();
}

void StateWriter::Discard() {
  has_change_ = false;
  lru_.clear();
  cache_bytes_ = 0;
  unwritten_.clear();
  staged_.clear();
  expanded_.clear();
  write_all_ = false;
  visitors_.map.clear();
  customers_.map.clear();
}

void StateWriter::Trim() {
  while (!lru_.empty() &&
         (lru_.size() > options_.cache_entries || cache_bytes_ > options_.cache_bytes)) {
    EntryBase& oldest = lru_.back();
    RemoveFromCache(oldest);
    // The key viewed is freed with the entry: SplitTable::erase does not read it after.
    if (oldest.customer) {
      customers_.map.erase(std::string_view(oldest.key));
    } else {
      visitors_.map.erase(std::string_view(oldest.key));
    }
  }
}

}  // namespace cartwatch::storage
