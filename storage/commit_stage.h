// The commit as a fixed pipeline of stages over one WriteBatch a round (docs/storage.md,
// "Group commit"). For each round the committing thread calls, in the order the stages
// are listed (RocksStore::stages_):
//
//   Begin            every stage, before the round's requests
//   Admit            for each message to store, until a stage says no (a duplicate)
//   Stored           every stage, for each admitted message, now event `id`
//   Finish           every stage, after the requests: what the round still owes the batch
//   (the batch is written, as one atomic write)
//   End              every stage, with whether the batch is durable
//
// A stage puts into the round's batch only; it never writes RocksDB itself. When the batch
// is not written (a failed write, or a stage's error), End(written = false) must leave the
// stage as if the round had never begun: the round's requests are all answered with the
// error, none acknowledged. Adding a stage is a class and one line in RocksStore::stages_.
//
// Private to storage/. Stages are used by the committing thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/system/error_code.hpp>
#include <rocksdb/write_batch.h>

#include "storage/types.h"

namespace cartwatch::storage {

// One round, as the stages see it.
struct CommitRound {
  rocksdb::WriteBatch* batch = nullptr;
  // The latest receivedAt of the round's messages (Unix ms); the dedup log record's time.
  std::int64_t commit_time = 0;
  // Before the round: the last event id stored; then the id of the last message admitted.
  std::uint64_t last_event_id = 0;
  std::size_t stored = 0;  // messages admitted and stored so far
  // Every unwritten record goes into this round (an erase, or a scan, needs them written).
  bool write_all = false;
  // In: the durable replay point of the visitor and customer records; out: the one this
  // round writes (the state stage sets it in Finish).
  std::uint64_t replay_from = 0;
};

class CommitStage {
 public:
  virtual ~CommitStage() = default;

  virtual void Begin(const CommitRound& round) {}
  // Whether `message` of the site is to be stored; false skips it (counted a duplicate).
  virtual bool Admit(const CommitRound& round, std::string_view site_prefix,
                     const Message& message) {
    return true;
  }
  // `message` is stored as event `id` (round.last_event_id == id). An error fails the round.
  // The round's messages stay where they are until End: a stage may keep pointers to them.
  virtual boost::system::error_code Stored(CommitRound& round, std::string_view site_prefix,
                                           std::uint64_t id, const Message& message) {
    return {};
  }
  // After the round's requests. An error fails the round.
  virtual boost::system::error_code Finish(CommitRound& round) { return {}; }
  virtual void End(const CommitRound& round, bool written) {}
};

}  // namespace cartwatch::storage
