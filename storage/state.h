// StateWriter: the visitor and customer records of the committing thread. For each stored
// message it loads the records the message touches (from memory, else from RocksDB) and
// applies the message (profiles::Apply). Key layout and value format: docs/storage.md;
// transitions: docs/profiles.md.
//
// Records are written behind: a changed record stays in memory ("unwritten") and is put into
// a later commit's WriteBatch, once it has been unwritten for `write_delay` (so that the
// messages of a visit rewrite it once, not once each) or when more than `max_unwritten`
// records wait. What makes that durable is the event log: every message is in the
// write-ahead log before it is acknowledged, each stored record carries the id of the last
// event applied to it, and the store persists the oldest event id whose change may be
// unwritten (replay_from()); after a crash the store replays the events from there through
// Apply, which skips an event its records already hold. Records one message changes
// together (a visitor and its customer, a re-linked visitor's former customer) are always
// written in the same batch, so a crash never leaves one of them ahead of the other.
//
// Private to storage/. Not thread-safe: used by the committing thread only (the store's
// commits are serialised), which is what makes its read-modify-write race-free.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/intrusive/list.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "profiles/profiles.h"
#include "rules/rules.h"
#include "util/split_table.h"

namespace cartwatch::storage {

struct StateOptions {
  profiles::Options profiles;
  // Clean records (all written) kept in memory as their stored bytes, least recently used
  // evicted first once there are more than `cache_entries` of them or they take more than
  // `cache_bytes` (CachedFootprint: the stored value, the key and the entry itself).
  std::size_t cache_entries = 200'000;
  std::size_t cache_bytes = std::size_t{256} << 20;
  // How long, in event ids (microseconds of receive time), a changed record may stay
  // unwritten. 0 writes every changed record in the commit of its message.
  std::uint64_t write_delay_us = 10'000'000;
  // Beyond this many unwritten records the oldest are written early.
  std::size_t max_unwritten = 100'000;
};

class StateWriter {
 public:
  // `db` and the handles must outlive the writer.
  StateWriter(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* visitors,
              rocksdb::ColumnFamilyHandle* customers, const StateOptions& options);
  StateWriter(const StateWriter&) = delete;
  StateWriter& operator=(const StateWriter&) = delete;
  ~StateWriter();

  // Applies the stored message `event_id` of the site (its JSON as stored). A message that
  // changes no profile (profiles::ParseEvent gives nullopt), or whose records already hold
  // it (a replay after a crash), is skipped.
  // REQUIRES: event ids given to Apply increase, except in a replay after Discard.
  // Fails only when a record cannot be read from RocksDB; the commit must then fail as a
  // whole (Finish(false)). A record that does not decode is replaced by a new one (a
  // warning is printed): it can be rebuilt from the event log.
  boost::system::error_code Apply(std::string_view site_prefix, std::uint64_t event_id,
                                  std::string_view json);

  // With `observe` on (the rule engine has rules), Apply keeps what the message did to the
  // person it belongs to (rules::Change, pointing into the records in memory), until the
  // next call of Apply, Erase or Finish: last_change(). Off, Apply skips that work.
  // `cart_values`: keep the cart's value from before too (RuleSet::ComparesCartValues).
  void ObserveChanges(bool observe, bool cart_values) {
    observe_changes_ = observe;
    observe_cart_values_ = cart_values;
  }
  // nullptr when the last Apply changed no person (skipped, replayed, or an alias merge).
  const rules::Change* last_change() const { return has_change_ ? &change_ : nullptr; }

  struct Erased {
    bool found = false;                       // the customer had a record
    // The customers erased: the one that held the data first, then those an alias had
    // merged into it (`user_id` itself when it had no record).
    std::vector<std::string> user_ids;
    std::vector<std::string> anonymous_ids;   // the visitors erased with it
  };
  // Erases the customer `user_id` and every visitor linked to it; when an alias merged
  // customers, the person they became: the customer that holds the data (also when
  // `user_id` is one merged into it) and the records of every customer merged into it.
  // Later messages for them start new records, also within the same commit. The commit
  // then writes every unwritten record (a replay must never run over an erase), so
  // replay_from() is past it.
  boost::system::result<Erased> Erase(std::string_view site_prefix, std::string_view user_id);

  // Erases those of `anonymous_ids` whose visitor record is still linked to `user_id`;
  // returns their ids. Erase uses it for the customer's list; the store, for visitors found
  // by scanning beyond that list. As Erase, makes the commit write everything.
  boost::system::result<std::vector<std::string>> EraseVisitors(std::string_view site_prefix,
                                                  std::string_view user_id,
                                                  const std::vector<std::string>& anonymous_ids);

  // Puts into `batch` the records due to be written: unwritten for write_delay_us before
  // `latest_event_id`, beyond max_unwritten, or all of them with `all` (and after an erase),
  // oldest first, and stops after the group that reaches `max_records`. A Delete for an
  // erased record. Returns how many.
  std::size_t Stage(rocksdb::WriteBatch& batch, std::uint64_t latest_event_id, bool all = false,
                    std::size_t max_records = SIZE_MAX);

  // The smallest event id whose change may not be in the written records once the staged
  // batch is durable; nullopt when every change is staged or written.
  std::optional<std::uint64_t> replay_from() const;

  // Ends the commit. `written`: the batch is durable; the staged records are clean (kept as
  // their stored bytes, as are the records read and left unchanged). Else everything in
  // memory is dropped (the caller must rebuild it: replay from the last durable
  // replay_from()). Then trims the clean records to cache_entries and cache_bytes.
  void Finish(bool written);

  // Drops every record in memory, written or not (see Finish).
  void Discard();

  // The record as the messages applied so far left it (unwritten changes included): from
  // memory, else read from RocksDB (not cached). nullopt when there is none. A customer an
  // alias merged into another is read as that other customer (docs/profiles.md, "Alias").
  boost::system::result<std::optional<profiles::Visitor>> PeekVisitor(std::string_view site_prefix,
                                                                      std::string_view id);
  boost::system::result<std::optional<profiles::Customer>> PeekCustomer(
      std::string_view site_prefix, std::string_view id);

  std::size_t cached() const { return visitors_.map.size() + customers_.map.size(); }
  // What the clean records take, as counted against cache_bytes.
  std::size_t cached_bytes() const { return cache_bytes_; }
  std::size_t unwritten() const { return unwritten_.size(); }

 private:
  using Hook = boost::intrusive::list_member_hook<>;
  // What both kinds of entry share: the intrusive lists and the grouping.
  //
  // A clean record is kept as it is stored (`stored`: the RocksDB value), which takes a
  // fraction of the decoded record's memory; Load decodes it when a message touches it,
  // and Finish drops the decoded copy again once the record is clean. A dirty record is
  // kept decoded only.
  struct EntryBase {
    std::string key;  // site prefix + id: the RocksDB key, and the map's key (a view of it)
    // The value as stored, while clean (empty for no record, and once dirty: the decoded
    // record is what counts then).
    std::string stored;
    std::size_t charged = 0;  // bytes counted in cache_bytes_ while on lru_
    bool customer = false;
    bool present = false;  // false: no such record (never was, or erased)
    bool dirty = false;    // changed since last written: on unwritten_, else on lru_
    bool staged = false;   // in the batch being written
    std::uint64_t applied = 0;      // id of the last event applied to the record
    std::uint64_t dirty_since = 0;  // id of the first event applied since it was written
    // Records written together: a union-find tree (parent, size at the root) whose members
    // form a ring through `next`. Only meaningful while dirty.
    EntryBase* parent = this;
    EntryBase* next = this;
    std::size_t group_size = 1;
    Hook hook;  // in lru_ (clean) or unwritten_ (dirty), never both
  };
  template <typename Record>
  struct Entry : EntryBase {
    // Set while the entry is dirty or staged, and from a Load until the commit's Finish.
    std::unique_ptr<Record> decoded;
    Record& record() {
      assert(decoded != nullptr);
      return *decoded;
    }
  };
  using List = boost::intrusive::list<
      EntryBase, boost::intrusive::member_hook<EntryBase, Hook, &EntryBase::hook>,
      boost::intrusive::constant_time_size<true>>;
  template <typename Record>
  struct Table {
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    // Entries live on the heap, so that pointers to them (and views of their keys) stay
    // valid while the flat map moves its slots; split so that its growth never stalls a
    // commit for long (util/split_table.h).
    util::SplitTable<boost::unordered_flat_map<std::string_view, std::unique_ptr<Entry<Record>>>>
        map;
  };

  template <typename Record>
  boost::system::result<Entry<Record>*> Load(Table<Record>& table, std::string_view site_prefix,
                                             std::string_view id);
  template <typename Record>
  boost::system::result<std::optional<Record>> Peek(Table<Record>& table,
                                                    std::string_view site_prefix,
                                                    std::string_view id);
  // The customer that holds the data of `merged` (a record an alias merged into another):
  // the end of its merged_into chain. nullptr when the chain ends at no record or runs
  // over kMaxMergeHops. REQUIRES: merged->present && merged->record.merged().
  boost::system::result<Entry<profiles::Customer>*> Follow(std::string_view site_prefix,
                                                           Entry<profiles::Customer>* merged);
  // The kAlias event_ whose previousId is a customer: merges that customer into userId's.
  // false (nothing done) when previousId has no customer record: it is an anonymous id.
  boost::system::result<bool> ApplyCustomerAlias(std::string_view site_prefix,
                                                 std::uint64_t event_id);
  // Marks the entry changed by event `event_id`.
  void Touch(EntryBase& entry, std::uint64_t event_id);
  static EntryBase* Root(EntryBase* e);
  void Join(EntryBase& a, EntryBase& b);  // both dirty
  void StageGroup(EntryBase& member);
  void Put(rocksdb::WriteBatch& batch, EntryBase& entry);
  // Decodes a clean entry's stored value for a message to use (see EntryBase).
  template <typename Record>
  void Expand(Entry<Record>& entry);
  // Drops the decoded record of a clean entry: it is kept as its stored value.
  static void Shrink(EntryBase& entry);
  // What a clean entry takes in memory, as counted against cache_bytes.
  static std::size_t CachedFootprint(const EntryBase& entry);
  void AddToCache(EntryBase& entry);       // to the front of lru_, charged
  void RemoveFromCache(EntryBase& entry);  // off lru_, uncharged
  void Trim();

  rocksdb::DB* const db_;
  const StateOptions options_;
  Table<profiles::Visitor> visitors_;
  Table<profiles::Customer> customers_;
  List lru_;        // clean records, most recently used first
  List unwritten_;  // dirty records, by dirty_since, oldest first
  std::vector<EntryBase*> staged_;  // in the batch being written
  std::vector<EntryBase*> expanded_;  // decoded by Load in this commit: Shrink at Finish
  std::size_t cache_bytes_ = 0;       // CachedFootprint of the entries on lru_
  bool write_all_ = false;          // an erase in this commit: stage everything
  std::string key_;                 // scratch: the key being looked up
  profiles::Event event_;           // scratch: the message being applied
  bool observe_changes_ = false;
  bool observe_cart_values_ = false;
  bool has_change_ = false;
  rules::Change change_;            // the last Apply's, when has_change_
  std::string value_;               // scratch: a value being read or written
};

}  // namespace cartwatch::storage
