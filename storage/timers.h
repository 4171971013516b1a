// The rule engine's timers as a commit stage (storage/commit_stage.h): for each stored
// message, the timers the rules arm for the person it changed (rules::Plan, over what the
// state writer applied: StateWriter::last_change) are put into the round's batch, so that
// a message and the timers it arms are durable together. Nothing is read: a timer that a
// later message makes pointless is dropped when it falls due (docs/rules.md, "Timers").
// The records' replay after a crash applies messages outside the stages, so it never arms
// a timer again.
//
// Column family `timers`:
//   "T" + u64 big-endian due time (Unix ms) + u32 big-endian rules::RuleId + stage (1 byte)
//       + site prefix + subject kind ('c' customer, 'v' visitor) + subject id
//       ->  u64 big-endian version
//   "P" + person (storage/subject.h) + u64 big-endian due + u32 rule id + stage  ->  version:
//       the same timer indexed by person (their pending timers; an erase deletes them)
//   "M" + site prefix + subject kind + subject id  ->  the person's marks (rules::Marks)
// Timers sort by due time, so firing reads exactly what is due. A timer and its "P" entry
// are always written and deleted in the same batch.
//
// Private to storage/. The stage is used by the committing thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include <rocksdb/db.h>

#include "rules/rules.h"
#include "storage/commit_stage.h"
#include "storage/state.h"
#include "storage/subject.h"

namespace cartwatch::storage {

inline constexpr char kTimerPrefix = 'T';
inline constexpr char kMarksPrefix = 'M';

inline constexpr char kPersonTimerPrefix = 'P';

// `timer.rule` is the index of its rule in `rules`.
void TimerKeyInto(std::string& out, const rules::RuleSet& rules, const rules::Timer& timer,
                  const SubjectKey& subject);
std::string TimerKey(const rules::RuleSet& rules, const rules::Timer& timer,
                     const SubjectKey& subject);
// The first key of the timers due after `due` (every key below it is due by then).
std::string TimerKeyLimit(rules::EpochMs due);
struct StoredTimer {
  rules::Timer timer{};  // `rule`: its index in `rules`, when `known_rule`
  bool known_rule = false;
  std::uint32_t rule_id = 0;
  SubjectKey subject{};  // views into the key
};
// Deletes a stored timer and its "P" entry (also one whose rule is no longer configured).
void DeleteStoredTimer(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* timers,
                       const StoredTimer& stored);
std::optional<StoredTimer> DecodeTimer(const rules::RuleSet& rules, std::string_view key,
                                       std::string_view value);

// The "P" entry of `timer`.
void PersonTimerKeyInto(std::string& out, const rules::RuleSet& rules, const rules::Timer& timer,
                        const SubjectKey& subject);
// Puts (or deletes) a timer and its "P" entry.
void PutTimer(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* timers,
              const rules::RuleSet& rules, const rules::Timer& timer, const SubjectKey& subject);
void DeleteTimer(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* timers,
                 const rules::RuleSet& rules, const rules::Timer& timer, const SubjectKey& subject);

// A person's pending timer, read from the "P" index.
struct PersonTimer {
  std::uint32_t rule_id = 0;
  int stage = 0;
  rules::EpochMs due = 0;
};
// Decodes the part of a "P" key after the person's prefix.
std::optional<PersonTimer> DecodePersonTimer(std::string_view suffix);

std::string MarksKey(const SubjectKey& subject);

// Reads the person's pending timers ("P" entries, soonest first) with their versions.
struct PendingTimer {
  PersonTimer timer;
  std::uint64_t version = 0;
};
boost::system::result<std::vector<PendingTimer>> ReadPersonTimers(rocksdb::DB& db,
                                                                  rocksdb::ColumnFamilyHandle* timers,
                                                                  const SubjectKey& subject);

// How many timers are armed (pending: not fired or dropped yet), counted up to `cap`.
boost::system::result<std::size_t> CountTimers(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* timers,
                                               std::size_t cap);

// Puts into `batch` the deletes of every timer of the person and of their marks.
boost::system::error_code ErasePersonTimers(rocksdb::DB& db, rocksdb::WriteBatch& batch,
                                            rocksdb::ColumnFamilyHandle* timers,
                                            const SubjectKey& subject);

class TimerStage final : public CommitStage {
 public:
  // `rules` and `options` outlive the stage.
  TimerStage(const rules::RuleSet& rules, const profiles::Options& options)
      : rules_(rules), options_(options) {}

  // After each open of the database: the state writer to ask and the timers column family.
  void Attach(StateWriter* writer, rocksdb::ColumnFamilyHandle* timers) {
    writer_ = writer;
    timers_ = timers;
  }
  bool active() const { return !rules_.rules.empty(); }

  boost::system::error_code Stored(CommitRound& round, std::string_view site_prefix,
                                   std::uint64_t id, const Message& message) override;

  // Timers armed by written rounds, since the store opened. Any thread.
  std::uint64_t armed() const { return armed_.load(std::memory_order_relaxed); }
  void Begin(const CommitRound& round) override { round_armed_ = 0; }
  void End(const CommitRound& round, bool written) override {
    if (written && round_armed_ > 0) armed_.fetch_add(round_armed_, std::memory_order_relaxed);
  }

 private:
  const rules::RuleSet& rules_;
  const profiles::Options& options_;
  StateWriter* writer_ = nullptr;
  rocksdb::ColumnFamilyHandle* timers_ = nullptr;
  std::uint64_t round_armed_ = 0;
  std::atomic<std::uint64_t> armed_{0};
};

}  // namespace cartwatch::storage
