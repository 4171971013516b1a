// The event log as a commit stage (storage/commit_stage.h): the messages a round stores
// for a site go into the events column family as one record batch (docs/storage.md,
// "Record batches"), under the id of the last of them, or as the message alone when the
// round stored one for that site; a round that stored messages records the last id in
// meta, in the same batch, so that ids stay monotonic across restarts.
//
// And the reads of the log by other threads (exports, retention, the replay of the
// records): functions over the database, each a consistent scan of its own.
//
// Private to storage/. The stage is used by the committing thread only; the functions by
// any thread that holds the database open (RocksStore::db_mu_ shared).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include <rocksdb/db.h>

#include "storage/commit_stage.h"

namespace cartwatch::storage {

// meta: the id of the last event stored (u64 big-endian).
inline constexpr std::string_view kLastEventIdKey = "last_event_id";

// A record batch is closed, and another begun, once it holds this many bytes: an export
// page or a replay reads a batch whole.
inline constexpr std::size_t kMaxRecordBatchBytes = 256 * 1024;

class EventLogStage final : public CommitStage {
 public:
  // The column families to put into (after each open of the database).
  void Attach(rocksdb::ColumnFamilyHandle* events, rocksdb::ColumnFamilyHandle* meta) {
    events_ = events;
    meta_ = meta;
  }

  void Begin(const CommitRound& round) override { used_ = 0; }
  boost::system::error_code Stored(CommitRound& round, std::string_view site_prefix,
                                   std::uint64_t id, const Message& message) override;
  boost::system::error_code Finish(CommitRound& round) override;
  void End(const CommitRound& round, bool written) override { used_ = 0; }

 private:
  // A site's events of this round not yet put into the batch.
  struct Run {
    std::string prefix;
    std::uint64_t first_id = 0;
    std::uint64_t last_id = 0;
    const std::string* first_json = nullptr;  // the run's only event, until a second comes
    std::string value;                        // from the second event on: the record batch
  };
  void Put(CommitRound& round, Run& run);

  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  std::vector<Run> runs_;  // [0, used_) this round's, kept to reuse their buffers
  std::size_t used_ = 0;
  std::size_t last_run_ = 0;  // the run the previous message went to
  std::string key_;           // scratch
};

// The page of the site's events after the cursor `after` (empty: from the first): at most
// `limit` events, and fewer once they reach `max_bytes`. A cursor that does not decode is
// Errc::kInvalidArgument.
boost::system::result<EventPage> ReadEventPage(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events,
                                               std::string_view site_prefix,
                                               std::string_view after, std::size_t limit,
                                               std::size_t max_bytes);

// Deletes every site's events with an id below `cutoff` (range deletes, one seek a site).
boost::system::error_code DeleteEventsBelow(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events,
                                            std::uint64_t cutoff);

// Calls `apply(site_prefix, id, json)` for each event with an id from `from` on, site by
// site (a site's events in id order); the first error stops the scan and is returned. A
// value that does not decode is skipped, with an error in the log (after the events of it
// that did).
boost::system::error_code ForEachEventFrom(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events, std::uint64_t from,
    const std::function<boost::system::error_code(std::string_view site_prefix, std::uint64_t id,
                                                  std::string_view json)>& apply);

}  // namespace cartwatch::storage
