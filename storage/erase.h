// Erasing a customer (docs/storage.md, "Erasing a customer"), in two halves:
//
// - EraseStage, a commit stage (storage/commit_stage.h): an erase request of a round
//   erases the customer's records (or only the visitors it names) through the state
//   writer, and for a whole customer puts an erase job into the round's batch: the events
//   that name the customer or one of their devices, up to the round's last event id, are
//   still to be deleted. Jobs are numbered on from the newest one an earlier run left.
// - PurgeErasedEvents, on the background thread: deletes the events of every committed
//   job, then the jobs. Visitors linked to the customer beyond its list of linked visitors
//   are found by a scan and erased through the committing thread (EraseCommitter), like
//   any erase.
//
// Private to storage/. EraseStage is used by the committing thread only; PurgeErasedEvents
// by one thread at a time that holds the database open.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/system/error_code.hpp>
#include <rocksdb/db.h>

#include "storage/background.h"
#include "storage/commit_stage.h"
#include "storage/deliveries.h"
#include "storage/keys.h"
#include "storage/requests.h"
#include "storage/state.h"
#include "storage/subject.h"

namespace cartwatch::storage {

class EraseStage final : public CommitStage {
 public:
  // After each open of the database: the column families, and the number of the next job
  // read from meta (an error when it cannot be read).
  // `deliveries` forgets the delivery records of the actions erased (null: none).
  boost::system::error_code Load(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                                 rocksdb::ColumnFamilyHandle* timers,
                                 rocksdb::ColumnFamilyHandle* outbox, Deliveries* deliveries);

  // Erases what `request` names through `state` (the round's last event id so far:
  // `last_event_id`), filling `result`; with the records, the rule engine's pending
  // timers, marks and undelivered actions of each person erased (read from the database,
  // deleted in the round's batch).
  boost::system::error_code Apply(StateWriter& state, const EraseRequest& request,
                                  std::uint64_t last_event_id, CommitRound& round,
                                  EraseResult& result);

  boost::system::error_code Finish(CommitRound& round) override;
  void End(const CommitRound& round, bool written) override;

  // Whether the last round wrote jobs (their purge is to be requested).
  bool wrote_jobs() const { return wrote_jobs_; }

 private:
  // Deletes the person's timers, marks and undelivered actions (and their deliveries) in
  // the round's batch.
  boost::system::error_code ForgetRules(CommitRound& round, const SubjectKey& person);

  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* timers_ = nullptr;
  rocksdb::ColumnFamilyHandle* outbox_ = nullptr;
  Deliveries* deliveries_ = nullptr;
  std::uint64_t next_seq_ = 0;
  std::vector<EraseJob> jobs_{};  // the round's
  bool wrote_jobs_ = false;
};

// How the purge reaches the committing thread.
class EraseCommitter {
 public:
  virtual ~EraseCommitter() = default;
  // Has every unwritten record written (the purge scans the records in RocksDB).
  virtual boost::system::error_code WriteAllRecords() = 0;
  // Erases only `anonymous_ids` of the customer `user_id` of the site.
  virtual boost::system::error_code EraseVisitors(std::string site, std::string user_id,
                                                  std::vector<std::string> anonymous_ids) = 0;
};

struct EraseTarget {
  rocksdb::DB* db = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* events = nullptr;
  rocksdb::ColumnFamilyHandle* visitors = nullptr;
  bool fsync = false;
};

// Deletes the events of every erase job in meta, then the jobs. Stops early with
// Errc::kClosed once `background` is stopping.
boost::system::error_code PurgeErasedEvents(const EraseTarget& target, EraseCommitter& committer,
                                            const Background& background);

}  // namespace cartwatch::storage
