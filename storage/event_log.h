// The event log as a commit stage (storage/commit_stage.h): each stored message is put into
// the events column family under its event id (docs/storage.md, "Column families and
// keys"), and a round that stored messages records the last id in meta, in the same batch,
// so that ids stay monotonic across restarts.
//
// Private to storage/. Used by the committing thread only.
#pragma once

#include <cstdint>
#include <string>

#include <rocksdb/db.h>

#include "storage/commit_stage.h"

namespace cartwatch::storage {

// meta: the id of the last event stored (u64 big-endian).
inline constexpr std::string_view kLastEventIdKey = "last_event_id";

class EventLogStage final : public CommitStage {
 public:
  // The column families to put into (after each open of the database).
  void Attach(rocksdb::ColumnFamilyHandle* events, rocksdb::ColumnFamilyHandle* meta) {
    events_ = events;
    meta_ = meta;
  }

  boost::system::error_code Stored(CommitRound& round, std::string_view site_prefix,
                                   std::uint64_t id, const Message& message) override;
  boost::system::error_code Finish(CommitRound& round) override;

 private:
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  std::string key_;  // scratch
};

}  // namespace cartwatch::storage
