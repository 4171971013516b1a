// DedupIndex: the (site, messageId) hashes stored within the dedup window, in memory, made
// durable by the dedup_log column family: each commit that stores messages writes one
// record of their hashes, in its own WriteBatch, and Load rebuilds the index from those
// records at start. docs/storage.md, "The dedup index is in memory".
//
// A commit uses it in three steps: Begin, then Enter for each message in order (a repeat
// within the commit is a duplicate of its first occurrence), then End with whether the
// batch was written: when it was not, every id the commit entered is forgotten again, so
// that a retry stores them. As the first stage of the commit pipeline
// (storage/commit_stage.h) it does the same through Admit, puts the round's record into the
// batch in Finish; the store expires old ids (Expire) once the round's requests are answered.
//
// Private to storage/. Not thread-safe: used by the committing thread only (or before the
// store is shared).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/system/error_code.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <rocksdb/db.h>

#include "storage/commit_stage.h"
#include "storage/keys.h"
#include "util/split_table.h"

namespace cartwatch::storage {

class DedupIndex final : public CommitStage {
 public:
  // `window`: how long an id is remembered, in receive time; `max_ids`: beyond this many
  // the oldest are forgotten early (with a warning on stderr); `walk_budget`: about how
  // many ids one Expire looks up to drop at most (see there; at least 1).
  DedupIndex(std::chrono::milliseconds window, std::size_t max_ids,
             std::size_t walk_budget = kWalkBudget)
      : window_ms_(window.count()), max_ids_(max_ids), walk_budget_(std::max<std::size_t>(walk_budget, 1)) {}

  // Ids one Expire looks up to drop, about: a millisecond or two of the committing thread. At 18,000
  // messages a second a minute's ids are a million, 100 ms and more in one go.
  static constexpr std::size_t kWalkBudget = 16'384;

  // Empties the index, then fills it from the dedup log `log` of `db`, deleting the
  // records that have left the window (measured back from the newest record, as commits
  // measure it). The stage methods below write to that log from then on.
  boost::system::error_code Load(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* log);

  // The commit stage.
  void Begin(const CommitRound& round) override { Begin(round.commit_time); }
  bool Admit(const CommitRound& round, std::string_view site_prefix,
             const Message& message) override {
    return Enter(MessageIdHash(site_prefix, message.message_id), message.received_at_ms);
  }
  boost::system::error_code Finish(CommitRound& round) override;
  void End(const CommitRound& round, bool written) override;

  // Starts a commit whose dedup log record will have `commit_time` (its latest receivedAt,
  // Unix ms).
  void Begin(std::int64_t commit_time);

  // A message received at `received_at_ms` with this hash: true when it is new within the
  // window (it is entered, also into this commit's record), false when it is a duplicate.
  bool Enter(const IdHash& hash, std::int64_t received_at_ms);

  // This commit's dedup log record: its time and the hash of every message entered. Put it
  // into the commit's batch (at DedupLogKey) when at least one message was entered.
  const std::string& record() const { return record_; }

  // Ends the commit. `written`: its batch is durable (`stored`: it held messages, so the
  // record was in it); else every id it entered is forgotten.
  void End(bool written, bool stored);

  // Drops ids that have left the window (or, past max_ids, the oldest) and deletes their
  // records from the log. Walks the log from its oldest record, and only when that record
  // is a minute past the window: one sequential pass a minute, not work on every commit.
  // A walk stops after the record that takes it past the walk budget; the next calls go
  // on from there until it is done, so that no commit waits for a whole minute's ids.
  boost::system::error_code Expire(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* log);

  std::size_t size() const { return ids_.size(); }

  // An id in memory: 96 bits of its hash (two different ids colliding stays about one chance
  // in 10^21 a message with ten million ids) and its record's time in whole seconds, rounded
  // up (an id stays a duplicate up to a second past the window): 16 bytes, where the whole
  // hash and a time in ms took 24 (docs/storage.md, "The dedup index is in memory").
  struct Slot {
    std::uint64_t h1 = 0;
    std::uint32_t h2 = 0;              // the high half of IdHash::h2
    mutable std::uint32_t time_s = 0;  // not part of the key
  };
  static Slot SlotOf(const IdHash& hash, std::int64_t time_ms);

 private:
  // IdHash is already a uniformly distributed hash: its first word serves as is.
  struct SlotHasher {
    using is_avalanching = std::true_type;
    std::size_t operator()(const Slot& s) const noexcept { return static_cast<std::size_t>(s.h1); }
  };
  struct SlotEqual {
    bool operator()(const Slot& a, const Slot& b) const noexcept {
      return a.h1 == b.h1 && a.h2 == b.h2;
    }
  };
  struct Undo {
    Slot slot;
    bool added;                 // the commit added it; else its time was `previous`
    std::uint32_t previous = 0;
  };

  // Expire, or with `loading` the walk of Load that enters the records it keeps.
  boost::system::error_code Walk(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* log,
                                 bool loading);

  rocksdb::ColumnFamilyHandle* log_ = nullptr;  // as of Load
  const std::int64_t window_ms_;
  const std::size_t max_ids_;
  const std::size_t walk_budget_;
  // A walk that stopped at its budget: where it goes on, and what it keeps to.
  bool walk_pending_ = false;
  std::string walk_from_;
  std::size_t keep_at_most_ = SIZE_MAX;
  std::int64_t forgotten_until_ = 0;  // the newest record forgotten early, for the warning
  // Every id of the records in the log, with its record's time; split so that its growth
  // never stalls a commit for long (util/split_table.h).
  util::SplitTable<boost::unordered_flat_set<Slot, SlotHasher, SlotEqual>> ids_;
  std::int64_t clock_ms_ = 0;  // time of the newest record written
  std::int64_t oldest_record_ms_ = std::numeric_limits<std::int64_t>::max();
  // The commit in progress.
  std::int64_t commit_time_ = 0;
  std::string record_;
  std::vector<Undo> undo_;
};

}  // namespace cartwatch::storage
