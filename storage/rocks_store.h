// RocksStore: the Store on an embedded RocksDB. It owns the database and puts together the
// parts declared in their own headers; the layout, with which part may call which:
//
//   store.h (Store, the interface) <- rocks_store.h (this class)
//   rocks_store.h -> commit_queue.h   the queue of requests and its rounds (no RocksDB)
//                 -> commit_stage.h   the stages of a round: dedup_index.h, event_log.h,
//                                     state_stage.h (-> state.h), timers.h, erase.h,
//                                     firing.h, outbox.h, deliveries.h (timers and
//                                     firing -> rules/, deliveries -> webhooks/)
//                 -> background.h     the store's own thread (no RocksDB)
//                 -> write_health.h   whether writes succeed, and why not
//                 -> schema.h         opening the database; event_log.h, erase.h and
//                                     thresholds.h: the scans other threads run
//   None of those includes this header, nor another of them except as the arrows show.
//
// Threads (docs/storage.md, "Which thread writes what"): the event loops queue requests
// and one of them at a time commits a round (CommitQueue); the background thread
// (Background) purges, applies retention, computes thresholds and recovers after a failed
// write; clients' reads of the records are requests too (answered by the committing
// thread); event exports read RocksDB on the caller's thread. Only the committing thread
// writes what is derived from a person's events.
//
// Its methods are defined in store.cc (opening, closing, the entry points of ingest and
// profiles, recovery), store_outbox.cc (the rule engine's and the deliveries' entry points),
// store_figures.cc (GetStorageFigures) and commit.cc (the round: Commit, the queries, the
// records' replay).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/env.h>

#include "storage/background.h"
#include "storage/commit_queue.h"
#include "storage/commit_stage.h"
#include "storage/dedup_index.h"
#include "storage/deliveries.h"
#include "storage/erase.h"
#include "storage/event_log.h"
#include "storage/firing.h"
#include "storage/info_log.h"
#include "storage/outbox.h"
#include "storage/requests.h"
#include "storage/state.h"
#include "storage/state_stage.h"
#include "storage/store.h"
#include "storage/timers.h"
#include "storage/write_health.h"
#include "util/histogram.h"
#include "util/memory_trim.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace cartwatch::storage {

class RocksStore final : public Store,
                         private CommitQueue::RoundWriter,
                         private Background::Jobs,
                         private EraseCommitter {
 public:
  explicit RocksStore(const StoreOptions& options) : options_(options) {
    rule_counts_.fired_by_rule.reset(new std::atomic<std::uint64_t>[options_.rules.rules.size()]);
    for (std::size_t i = 0; i < options_.rules.rules.size(); ++i) rule_counts_.fired_by_rule[i] = 0;
  }
  ~RocksStore() override { Close(); }

  // Opens the database, rebuilds the unwritten records and starts the background thread.
  // false with *error_message saying why (a damaged write-ahead log under strict recovery,
  // an unreadable directory).
  bool Open(std::string* error_message);

  // Store.
  void Append(std::string site, std::vector<Message> messages, AppendCallback done) override;
  void Flush() override { commits_.Flush(); }
  void SetFlushRequester(FlushRequester* requester) override {
    commits_.SetFlushRequester(requester);
  }
  boost::system::result<EventPage> ReadEvents(std::string_view site, std::string_view after,
                                              std::size_t limit, std::size_t max_bytes) override;
  void EraseCustomer(std::string site, std::string user_id, EraseCallback done) override;
  boost::system::error_code PurgeErasedEvents() override;
  boost::system::result<std::optional<profiles::Visitor>> ReadVisitor(
      std::string_view site, std::string_view anonymous_id) override;
  boost::system::result<std::optional<profiles::Customer>> ReadCustomer(
      std::string_view site, std::string_view user_id) override;
  boost::system::result<std::optional<profiles::SiteThresholds>> ReadThresholds(
      std::string_view site) override;
  boost::system::error_code RecomputeThresholds(util::EpochMs now) override;
  const profiles::Options& profile_options() const override { return options_.profiles; }
  boost::system::error_code DeleteEventsBefore(std::int64_t received_before_ms) override;
  boost::system::error_code CheckWritable() override;
  FireResult FireDueTimers(std::int64_t now, std::size_t limit) override;
  boost::system::result<PersonRules> ReadPersonRules(std::string_view site,
                                                     std::string_view user_id,
                                                     std::size_t max_actions) override;
  boost::system::result<DeliveryList> ReadDeliveries(std::string_view site,
                                                     std::string_view status,
                                                     std::string_view after,
                                                     std::size_t limit) override;
  Health GetHealth() override;
  RuleFigures GetRuleFigures() override;
  StorageFigures GetStorageFigures() override;
  boost::system::result<std::vector<DueDelivery>> ReadDueDeliveries(
      std::string_view endpoint, std::int64_t now, std::size_t limit,
      const std::set<std::uint64_t>& skip, DueCursor* cursor) override;
  boost::system::result<std::vector<std::string>> ReadDisabledEndpoints() override;
  boost::system::result<DeliveryCounts> CountDeliveries(std::string_view endpoint,
                                                        std::size_t cap) override;
  void ChangeDeliveries(DeliveryChange change, DeliveryCallback done, bool own_thread) override;
  boost::system::error_code Checkpoint(const std::string& dir) override;
  void Close() override;

 private:
  // --- store.cc: the database ---
  // Opens RocksDB (db_ and the column family handles) with `recovery` for its write-ahead
  // log. On failure db_ is null and *error_message says why.
  rocksdb::Status OpenDb(rocksdb::WALRecoveryMode recovery, std::string* error_message);
  // Reads what the committing thread keeps in memory from the open database: the last
  // event id, the dedup index, the erase job numbers and the replay point.
  // REQUIRES: the committing thread, or before the store is shared.
  bool LoadFromDb(std::string* error_message);
  // Creates the state writer over the open database and attaches the stages to it; before
  // the database closes, detaches them.
  void AttachStages();
  void DetachStages();
  // Closes RocksDB without writing: after a failed write RocksDB may refuse to flush or
  // sync its write-ahead log (and Debian's build asserts when asked to), so the log files
  // are fsync'ed by name instead (SyncWalFiles).
  void CloseDbAfterFailure();
  // After RocksDB refused to resume from a failed write (background thread): closes it and
  // opens it again, recovering the write-ahead log up to the failed write (nothing after it
  // was acknowledged), and rebuilds the unwritten records from the event log. Commits wait
  // meanwhile (this thread holds the commit); reads get DbUnavailable while it is closed.
  // On failure (the disk still full) it stays closed; the next call retries.
  rocksdb::Status ReopenDb();
  StateOptions MakeStateOptions() const;
  // The outbox's column families and the disabled endpoints, for its readers.
  // REQUIRES: db_mu_ held shared, db_ open.
  boost::system::result<OutboxView> ViewOutbox();
  // Records a failed write of any thread, and wakes the background thread's recovery.
  void NoteWriteFailure(const rocksdb::Status& status);

  // Background::Jobs (store.cc), on the background thread.
  boost::system::error_code ApplyRetention() override;
  boost::system::error_code RecomputeThresholds() override {
    return RecomputeThresholds(util::NowMs());
  }
  bool WriteFailed() override { return health_.failed(); }
  // Fires every due timer, a thousand a round (none without rules).
  boost::system::error_code FireTimers() override;
  // Counts the armed timers into timers_pending_, at most every timer_count_interval.
  void CountPendingTimers();
  // Asks RocksDB to leave its error state (a no-op when it is in none), reopening it when
  // it will not, and proves with a small write that the disk takes writes again.
  void TryToRecover() override;

  // EraseCommitter (commit.cc): through the committing thread.
  boost::system::error_code WriteAllRecords() override;
  boost::system::error_code EraseVisitors(std::string site, std::string user_id,
                                          std::vector<std::string> anonymous_ids) override;

  // --- commit.cc: the round ---
  // CommitQueue::RoundWriter, on the committing thread. Queries are answered at the start
  // of a round, before its writes: a query then shows every message acknowledged before it
  // was queued (committed by an earlier round, or it would not have been acknowledged) and
  // none of those still waiting for their commit, so it never waits for the round after it.
  void AnswerQueries(std::vector<Pending>& work) override;
  // Writes every pending Append and erase as one WriteBatch, through the pipeline of
  // stages (stages_, storage/commit_stage.h), then answers them all.
  void Commit(std::vector<Pending>& work) override;
  // Whether every stage admits `m` (the first that does not decides).
  bool Admitted(const CommitRound& round, std::string_view prefix, const Message& m);
  // Runs `peek(site prefix)` on the committing thread, at the start of a round.
  template <typename Record, typename Peek>
  boost::system::result<std::optional<Record>> ReadState(std::string_view site, Peek&& peek);
  // Rebuilds the records from the event log: discards what is in memory and applies again
  // every event from state_replay_from_ on (StateWriter::Apply skips what the written
  // records already hold), then writes every record and moves state_replay_from_ past the
  // last event. At start-up, and after a failed commit dropped the records in memory.
  // REQUIRES: the committing thread (or before the store is shared).
  boost::system::error_code ReplayState();
  // Writes every unwritten record, kStateBatchRecords records a batch (a batch of 100,000
  // records of a few KB each would stall the commit and the memtables), then, when given,
  // `replay_from` as the new replay point. Each batch is durable by itself and its records
  // hold only durable messages, so a crash between them only makes the replay longer.
  // After a failure the records in memory are dropped (StateWriter::Finish).
  // REQUIRES: the committing thread (or before the store is shared), between commits.
  boost::system::error_code WriteState(std::optional<std::uint64_t> replay_from);

  // At most this many visitor and customer records (and the rest of their group) in one
  // batch when the store writes all unwritten records (erase, scans, replay, close).
  static constexpr std::size_t kStateBatchRecords = 4096;

  // Commit's working memory, kept between commits so a commit allocates little.
  struct Scratch {
    rocksdb::WriteBatch batch;
    std::vector<AppendResult> results;
    std::vector<EraseResult> erased;
    std::vector<FireResult> fired;
    std::vector<DeliveryResult> changed;
  };

  const StoreOptions options_;
  std::unique_ptr<rocksdb::Env> fault_env_;  // with StoreOptions::faults; outlives db_
  std::shared_ptr<InfoLog> info_log_;        // RocksDB's LOG, kept across reopens
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles_;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* dedup_log_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* visitors_ = nullptr;
  rocksdb::ColumnFamilyHandle* customers_ = nullptr;
  rocksdb::ColumnFamilyHandle* timers_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* outbox_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* deliveries_cf_ = nullptr;
  // Held shared by the threads that read RocksDB outside the commit (exports, thresholds,
  // purges, retention, CheckWritable), exclusively by ReopenDb while db_ is replaced; the
  // committing thread needs none (ReopenDb holds the commit).
  mutable util::SharedMutex db_mu_;

  // The committing thread's (or before the store is shared).
  std::unique_ptr<StateWriter> state_;
  std::uint64_t last_event_id_ = 0;
  // The durable replay point (kStateReplayFromKey), and whether the records in memory were
  // dropped and must be rebuilt (ReplayState).
  std::uint64_t state_replay_from_ = 1;
  bool state_needs_replay_ = true;  // until Open has replayed
  std::uint64_t bytes_committed_ = 0;  // bytes of the batches written
  Scratch scratch_;
  // state_replay_from_ as it was when the replay point last moved, for other threads.
  std::atomic<std::uint64_t> replay_floor_{0};

  // The stages of the commit pipeline, in the order of their calls (storage/commit_stage.h).
  // The committing thread's.
  DedupIndex dedup_{options_.dedup_window, options_.dedup_max_ids};
  EventLogStage event_log_;
  StateStage state_stage_{options_.apply_state};
  TimerStage timers_{options_.rules, options_.profiles};
  EraseStage erase_;
  Firing firing_{options_.rules, options_.profiles, options_.email_templates};
  Outbox outbox_;
  Deliveries deliveries_{options_.webhooks, options_.delivery_schedule};
  CommitStage* const stages_[8] = {&dedup_, &event_log_, &state_stage_, &timers_,
                                   &erase_, &firing_,    &outbox_,      &deliveries_};

  // The queue of requests and who commits them; this store writes its rounds.
  CommitQueue commits_{CommitQueue::Bounds{.round_messages = options_.max_round_messages,
                                           .round_bytes = options_.max_round_bytes,
                                           .queued_messages = options_.max_queued_messages,
                                           .queued_bytes = options_.max_queued_bytes},
                       *this};

  WriteHealth health_{options_};
  std::unique_ptr<util::MemoryTrimmer> trimmer_;  // from a successful Open to Close
  Background background_{
      *this, Background::Intervals{.thresholds = options_.thresholds_interval,
                                   // Retention, when on, every retention_interval.
                                   .retention = options_.retention.count() > 0
                                                    ? options_.retention_interval
                                                    : std::chrono::milliseconds(0),
                                   .recovery = options_.recovery_interval,
                                   .timers = options_.rules.rules.empty()
                                                 ? std::chrono::milliseconds(0)
                                                 : options_.timer_tick}};
  util::Mutex purge_mu_;  // one PurgeErasedEvents at a time
  // Resume() calls that failed since the last recovery; after kResumesBeforeReopen of them
  // RocksDB is reopened. The background thread's.
  static constexpr int kResumesBeforeReopen = 10;
  int failed_resumes_ = 0;
  // The rule engine's counts (GetRuleFigures): added by the committing thread after each
  // written round, read by any.
  struct RuleCounters {
    std::atomic<std::uint64_t> fired{0}, stale{0}, not_matched{0}, held{0};
    std::atomic<std::uint64_t> tasks_pending{0}, tasks_skipped{0}, emails_pending{0}, emails_skipped{0};
    // By rule index; as many as there are rules (the rule set never changes while open).
    std::unique_ptr<std::atomic<std::uint64_t>[]> fired_by_rule;
  };
  RuleCounters rule_counts_;
  // Timers armed, counted by the background thread every StoreOptions::timer_count_interval
  // (a scan of the timers' due-order keys, up to kMaxCountedTimers).
  static constexpr std::size_t kMaxCountedTimers = 1'000'000;
  std::atomic<std::uint64_t> timers_pending_{0};
  std::chrono::steady_clock::time_point next_timer_count_{};  // the background thread's
  // The committing thread's in-memory figures after its last round, and the rounds' write
  // latency and size (GetStorageFigures).
  std::atomic<std::uint64_t> dedup_ids_{0}, records_cached_{0}, records_unwritten_{0};
  std::atomic<std::uint64_t> records_cached_bytes_{0};
  util::Histogram commit_seconds_{{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05, 0.1, 0.25, 0.5, 1}};
  util::Histogram commit_messages_{{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}};

  // A MANIFEST write failed since this RocksDB was opened: recovery reopens it rather than
  // calling DB::Resume (see OpenDb's listener). Set on RocksDB's threads, read anywhere.
  std::atomic<bool> manifest_failed_{false};
  // RocksDB's cumulative count of background errors (rocksdb.background-errors) when the
  // store last recovered: only errors beyond it make CheckWritable fail.
  std::atomic<std::uint64_t> background_errors_recovered_{0};
};

}  // namespace cartwatch::storage
