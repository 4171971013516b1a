// StateWriter: the visitor and customer records of the committing thread. For each stored
// message it loads the records the message touches (from its in-memory cache of hot records,
// else from RocksDB), applies the message (profiles::Apply), and stages the changed records
// into the commit's WriteBatch, so that a message and the state it implies are one atomic
// write. Key layout: docs/storage.md; transitions: docs/profiles.md.
//
// Private to storage/. Not thread-safe: used by the committing thread only (the store's
// commits are serialised), which is what makes its read-modify-write race-free.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <memory>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "profiles/profiles.h"

namespace cartwatch::storage {

class StateWriter {
 public:
  // `db` and the handles must outlive the writer. At most `cache_entries` records (visitors
  // and customers together) stay cached between commits; a commit may hold more while it runs.
  StateWriter(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* visitors,
              rocksdb::ColumnFamilyHandle* customers, const profiles::Options& options,
              std::size_t cache_entries);
  StateWriter(const StateWriter&) = delete;
  StateWriter& operator=(const StateWriter&) = delete;

  // Applies one stored message of the site (its JSON as stored). A message that changes no
  // profile (profiles::ParseEvent gives nullopt) is skipped. Fails only when a record cannot
  // be read from RocksDB; the commit must then fail as a whole (Finish(false)). A record
  // that does not decode is replaced by a new one (a warning is printed): it can be rebuilt
  // from the event log.
  boost::system::error_code Apply(std::string_view site_prefix, std::string_view json);

  struct Erased {
    bool found = false;                       // the customer had a record
    std::vector<std::string> anonymous_ids;   // the visitors erased with it
  };
  // Erases the customer `user_id` and every visitor linked to it. Later messages for them
  // start new records, also within the same commit.
  boost::system::result<Erased> Erase(std::string_view site_prefix, std::string_view user_id);

  // Erases those of `anonymous_ids` whose visitor record is still linked to `user_id`;
  // returns their ids. Erase uses it for the customer's list; the store, for visitors found
  // by scanning beyond that list.
  boost::system::result<std::vector<std::string>> EraseVisitors(std::string_view site_prefix,
                                                  std::string_view user_id,
                                                  const std::vector<std::string>& anonymous_ids);

  // Puts every record changed since the last Finish into `batch` (a Delete for an erased one).
  void Stage(rocksdb::WriteBatch& batch);

  // Ends the commit. `written`: the batch is durable, the changed records stay cached; else
  // they are dropped from the cache, so that they are read again from RocksDB, which still
  // has them as before the commit. Then trims the cache to its bound.
  void Finish(bool written);

  std::size_t cached() const { return visitors_.map.size() + customers_.map.size(); }

 private:
  struct LruNode {
    const std::string* key;  // Entry::key of an entry of visitors_ or customers_
    bool customer;           // which of the two
  };
  template <typename Record>
  struct Entry {
    std::string key;  // site prefix + id: the RocksDB key, and the map's key (a view of it)
    Record record;
    bool present = false;  // false: no such record (never was, or erased in this commit)
    bool dirty = false;    // changed in this commit
    std::list<LruNode>::iterator lru;
  };
  template <typename Record>
  struct Table {
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    // Entries live on the heap, so that pointers to them (and views of their keys) stay
    // valid while the flat map moves its slots.
    boost::unordered_flat_map<std::string_view, std::unique_ptr<Entry<Record>>> map;
    std::vector<Entry<Record>*> dirty;  // changed in this commit
  };

  template <typename Record>
  boost::system::result<Entry<Record>*> Load(Table<Record>& table, std::string_view site_prefix,
                                             std::string_view id);
  template <typename Record>
  void MarkDirty(Table<Record>& table, Entry<Record>& entry);
  template <typename Record>
  void StageTable(Table<Record>& table, rocksdb::WriteBatch& batch);
  template <typename Record>
  void FinishTable(Table<Record>& table, bool written);
  void Trim();

  rocksdb::DB* const db_;
  const profiles::Options options_;
  const std::size_t cache_entries_;
  Table<profiles::Visitor> visitors_;
  Table<profiles::Customer> customers_;
  std::list<LruNode> lru_;  // every cached record, most recently used first
  std::string key_;         // scratch: the key being looked up
};

}  // namespace cartwatch::storage
