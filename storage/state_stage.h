// The visitor and customer records as a commit stage (storage/commit_stage.h): each stored
// message is applied to the records it changes (StateWriter::Apply, in memory), and each
// round puts the records due to be written, and the replay point when it moves, into its
// batch (written behind: docs/storage.md, "Visitor and customer state"). A round that is
// not written drops the records in memory (StateWriter::Finish); the store then rebuilds
// them from the event log before the next round.
//
// Private to storage/. Used by the committing thread only.
#pragma once

#include <cstdint>

#include <rocksdb/db.h>

#include "storage/commit_stage.h"
#include "storage/state.h"

namespace cartwatch::storage {

class StateStage final : public CommitStage {
 public:
  // `apply` false: messages build no records (StoreOptions::apply_state).
  explicit StateStage(bool apply) : apply_(apply) {}

  // The writer and the meta column family (after each open of the database).
  void Attach(StateWriter* writer, rocksdb::ColumnFamilyHandle* meta) {
    writer_ = writer;
    meta_ = meta;
  }

  boost::system::error_code Stored(CommitRound& round, std::string_view site_prefix,
                                   std::uint64_t id, const Message& message) override;
  // Sets round.replay_from to the replay point the round writes.
  boost::system::error_code Finish(CommitRound& round) override;
  void End(const CommitRound& round, bool written) override;

 private:
  const bool apply_;
  StateWriter* writer_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
};

}  // namespace cartwatch::storage
