// RocksDB implementation of Store. Key layout: docs/storage.md.
#include "storage/store.h"

#include "storage/data_dir.h"
#include "storage/commit_queue.h"
#include "storage/commit_stage.h"
#include "storage/dedup_index.h"
#include "storage/event_log.h"
#include "storage/fault_fs.h"
#include "storage/fault_injection.h"
#include "storage/info_log.h"
#include "storage/keys.h"
#include "storage/requests.h"
#include "storage/schema.h"
#include "storage/state.h"
#include "storage/state_stage.h"
#include "storage/status.h"

#include "profiles/codec.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <limits>
#include <map>
#include <unordered_map>
#include <mutex>
#include <optional>
#include <future>
#include <thread>

#include <filesystem>

#include "util/mutex.h"

namespace cartwatch::storage {
namespace {

class StoreErrorCategory : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "cartwatch.storage"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOverloaded: return "storage is overloaded";
      case Errc::kClosed: return "storage is closed";
      case Errc::kIoError: return "storage I/O error";
      case Errc::kNoSpace: return "no space left on the data directory's disk";
      case Errc::kCorruption: return "storage corruption";
      case Errc::kInvalidArgument: return "invalid argument";
      case Errc::kInternal: return "internal storage error";
    }
    return "unknown storage error";
  }
};

std::int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Written by TryToRecover to prove that the disk takes writes again; never read.
constexpr char kWritableProbeKey[] = "writable_probe";
// At most this many visitor and customer records (and the rest of their group) in one
// batch when the store writes all unwritten records (erase, scans, replay, close).
constexpr std::size_t kStateBatchRecords = 4096;

// What the store learns from RocksDB's own threads: a flush or compaction that failed.
// Its callbacks run on RocksDB's threads; it only records.
class WriteFailureListener final : public rocksdb::EventListener {
 public:
  explicit WriteFailureListener(std::function<void(const rocksdb::Status&)> on_failure)
      : on_failure_(std::move(on_failure)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    if (error != nullptr && !error->ok() && !error->IsShutdownInProgress()) on_failure_(*error);
  }

 private:
  std::function<void(const rocksdb::Status&)> on_failure_;
};

class RocksStore final : public Store, private CommitQueue::RoundWriter {
 public:
  explicit RocksStore(const StoreOptions& options) : options_(options) {}

  ~RocksStore() override { Close(); }

  // Opens RocksDB (db_ and the column family handles) with `recovery` for its write-ahead
  // log (storage/schema.h). On failure db_ is null and *error_message says why.
  rocksdb::Status OpenDb(rocksdb::WALRecoveryMode recovery, std::string* error_message) {
    OpenHooks hooks;
    if (options_.faults) {
      fault_env_ = NewFaultInjectionEnv(options_.faults);
      hooks.env = fault_env_.get();
    }
    hooks.listener = std::make_shared<WriteFailureListener>(
        [this](const rocksdb::Status& status) { NoteWriteFailure(status); });
    // RocksDB's own LOG, written so that a full disk loses lines instead of aborting.
    if (!info_log_) info_log_ = InfoLog::Open(options_.data_dir);
    hooks.info_log = info_log_;
    Database opened;
    rocksdb::Status s = OpenDatabase(options_, recovery, hooks, opened, error_message);
    if (!s.ok()) {
      opened.Close();
      return s;
    }
    db_ = std::move(opened.db);
    background_errors_recovered_.store(0);  // a new DB counts its own
    handles_ = std::move(opened.handles);
    events_ = opened.events;
    dedup_log_ = opened.dedup_log;
    meta_ = opened.meta;
    visitors_ = opened.visitors;
    customers_ = opened.customers;
    return s;
  }

  // Closes RocksDB without writing: after a failed write RocksDB may refuse to flush or
  // sync its write-ahead log (and Debian's build asserts when asked to), so the log files
  // are fsync'ed by name instead (SyncWalFiles).
  void CloseDbAfterFailure() {
    SyncWalFiles(options_.data_dir);
    state_stage_.Attach(nullptr, nullptr);
    state_.reset();
    handles_.clear();
    if (db_) db_->Close().PermitUncheckedError();
    db_.reset();
  }

  bool Open(std::string* error_message) {
    // The WAL is recovered strictly first: any damage (a checksum mismatch, a truncated or
    // torn record) fails that open. Then, by StoreOptions::wal_recovery, the store refuses
    // to start, or opens again recovering up to the damage and reports what was dropped.
    const bool strict = options_.wal_recovery == WalRecovery::kStrict ||
                        (options_.wal_recovery == WalRecovery::kAuto && options_.fsync);
    const WalFiles wal_before = WalFilesOf(options_.data_dir);
    // Left by a write that failed (NoteWriteFailure): the log may end in that write, half
    // written and never acknowledged.
    const bool failed_write = HasFailedWriteMark(options_.data_dir);
    rocksdb::Status s = OpenDb(rocksdb::WALRecoveryMode::kAbsoluteConsistency, error_message);
    std::string damage;
    if (s.IsCorruption() && !db_ && failed_write) {
      s = OpenDb(rocksdb::WALRecoveryMode::kPointInTimeRecovery, error_message);
      if (s.ok()) {
        std::fprintf(stderr,
                     "cartwatch: the write-ahead log ended in a write that failed (the disk was "
                     "full or failing before the last stop): recovered up to it; that write was "
                     "never acknowledged\n");
      }
    } else if (s.IsCorruption() && !db_) {
      damage = s.ToString();
      if (strict) {
        *error_message =
            "the write-ahead log in \"" + options_.data_dir + "\" is damaged (" + damage +
            "): starting would drop the messages written after the damage, acknowledged ones "
            "among them. To start anyway and drop them, set storage.wal_recovery = "
            "\"point_in_time\" (or --wal-recovery point_in_time) for one start; keep a copy of "
            "the data directory first if they matter";
        return false;
      }
      s = OpenDb(rocksdb::WALRecoveryMode::kPointInTimeRecovery, error_message);
    }
    if (!s.ok()) return false;

    if (!LoadFromDb(error_message)) return false;
    state_ = std::make_unique<StateWriter>(db_.get(), visitors_, customers_, MakeStateOptions());
    state_stage_.Attach(state_.get(), meta_);
    if (auto ec = ReplayState()) {
      *error_message = "cannot rebuild the visitor and customer records from the event log in \"" +
                       options_.data_dir + "\": " + ec.message();
      return false;
    }
    if (!damage.empty()) ReportWalDamage(WalDamageReport(damage, last_event_id_, wal_before));
    ClearFailedWriteMark(options_.data_dir);
    maintenance_ = std::thread([this] { MaintenanceLoop(); });
    return true;
  }

  // Reads what the committing thread keeps in memory from the open database: the last
  // event id, the dedup index, the erase job numbers and the replay point.
  // REQUIRES: the committing thread, or before the store is shared.
  bool LoadFromDb(std::string* error_message) {
    last_event_id_ = 0;
    next_erase_seq_ = 0;
    rocksdb::Status s;
    std::string value;
    s = db_->Get(rocksdb::ReadOptions(), meta_, kLastEventIdKey, &value);
    if (s.ok() && value.size() == 8) {
      last_event_id_ = GetBigEndian64(value.data());
    } else if (!s.ok() && !s.IsNotFound()) {
      *error_message = "cannot read \"" + options_.data_dir + "\": " + s.ToString();
      return false;
    }
    event_log_.Attach(events_, meta_);
    if (auto ec = dedup_.Load(*db_, dedup_log_)) {
      *error_message = "cannot read the dedup log in \"" + options_.data_dir + "\": " +
                       ec.message();
      return false;
    }
    {
      // Erase jobs are numbered on from the newest one left by an earlier run.
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
      std::string last = EraseJobKey(UINT64_MAX);
      for (it->SeekForPrev(last); it->Valid() && it->key().starts_with(kEraseJobPrefix);) {
        next_erase_seq_ = GetBigEndian64(it->key().data() + kEraseJobPrefix.size()) + 1;
        break;
      }
      if (!it->status().ok()) {
        *error_message = "cannot read \"" + options_.data_dir + "\": " + it->status().ToString();
        return false;
      }
    }
    state_replay_from_ = last_event_id_ + 1;  // a new database, or one written with its events
    s = db_->Get(rocksdb::ReadOptions(), meta_, kStateReplayFromKey, &value);
    if (s.ok() && value.size() == 8) {
      state_replay_from_ = GetBigEndian64(value.data());
    } else if (!s.ok() && !s.IsNotFound()) {
      *error_message = "cannot read \"" + options_.data_dir + "\": " + s.ToString();
      return false;
    }
    replay_floor_ = state_replay_from_;
    return true;
  }

  // After an open that recovered the write-ahead log only up to damage: says so at error
  // level and on /readyz (GetHealth).
  void ReportWalDamage(std::string report) {
    std::fprintf(stderr, "cartwatch: error: %s\n", report.c_str());
    util::MutexLock lock(health_mu_);
    wal_recovery_ = std::move(report);
    ++wal_damage_recoveries_;
  }

  void EraseCustomer(std::string site, std::string user_id, EraseCallback done) override {
    if (site.size() > kMaxSiteName) {
      done(EraseResult{.error = Errc::kInvalidArgument});
      return;
    }
    Pending erase{EraseRequest{.site = std::move(site),
                               .user_id = std::move(user_id),
                               .only_visitors = {},
                               .done = std::move(done)}};
    if (!commits_.Queue(erase)) {
      std::get<EraseRequest>(erase.request).done(EraseResult{.error = Errc::kClosed});
    }
  }

  boost::system::error_code PurgeErasedEvents() override {
    util::MutexLock purge(purge_mu_);
    if (commits_.closed()) return Errc::kClosed;
    util::ReaderLock db_lock(db_mu_);
    if (!db_) return DbUnavailable();
    std::vector<std::pair<std::string, EraseJob>> jobs;
    {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
      for (it->Seek(rocksdb::Slice(kEraseJobPrefix.data(), kEraseJobPrefix.size()));
           it->Valid() && it->key().starts_with(kEraseJobPrefix); it->Next()) {
        auto job = DecodeEraseJob(it->value().ToStringView());
        if (!job) {
          std::fprintf(stderr, "cartwatch: an erase job does not decode; it is dropped\n");
          job.emplace();
        }
        jobs.emplace_back(it->key().ToString(), std::move(*job));
      }
      if (auto ec = FromStatus(it->status())) return ec;
    }
    // One scan of a site's events serves all of its pending jobs.
    std::map<std::string, std::vector<const EraseJob*>> by_site;
    for (const auto& [key, job] : jobs) {
      if (!job.site_prefix.empty()) by_site[job.site_prefix].push_back(&job);
    }
    for (const auto& [site_prefix, site_jobs] : by_site) {
      if (auto ec = PurgeEvents(site_prefix, site_jobs)) return ec;
    }
    rocksdb::WriteBatch done;
    for (const auto& [key, job] : jobs) done.Delete(meta_, key);
    rocksdb::WriteOptions wo;
    wo.sync = options_.fsync;
    return FromStatus(db_->Write(wo, &done));
  }

  boost::system::result<std::optional<profiles::Visitor>> ReadVisitor(
      std::string_view site, std::string_view anonymous_id) override {
    return ReadState<profiles::Visitor>(site, [&](const std::string& prefix) {
      return state_->PeekVisitor(prefix, anonymous_id);
    });
  }

  boost::system::result<std::optional<profiles::Customer>> ReadCustomer(
      std::string_view site, std::string_view user_id) override {
    return ReadState<profiles::Customer>(site, [&](const std::string& prefix) {
      return state_->PeekCustomer(prefix, user_id);
    });
  }

  boost::system::result<std::optional<profiles::SiteThresholds>> ReadThresholds(
      std::string_view site) override {
    if (site.size() > kMaxSiteName) return boost::system::error_code(Errc::kInvalidArgument);
    if (commits_.closed()) return boost::system::error_code(Errc::kClosed);
    util::ReaderLock db_lock(db_mu_);
    if (!db_) return DbUnavailable();
    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), meta_, ThresholdsKey(SitePrefix(site)), &value);
    if (s.IsNotFound()) return std::optional<profiles::SiteThresholds>();
    if (!s.ok()) return FromStatus(s);
    auto decoded = profiles::DecodeThresholds(value);
    if (!decoded) return boost::system::error_code(Errc::kCorruption);
    return std::optional<profiles::SiteThresholds>(std::move(*decoded));
  }

  boost::system::error_code RecomputeThresholds(util::EpochMs now) override {
    // Every customer as of now, not as last written.
    if (auto ec = WriteAllState()) return ec;
    // Taken after WriteAllState: a reopen (ReopenDb) holds the commit while it waits for
    // this lock.
    util::ReaderLock db_lock(db_mu_);
    if (!db_) return DbUnavailable();
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;  // a full scan would evict the hot records
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, customers_));
    std::string site;  // the prefix of the site being read
    std::vector<profiles::RfmValues> values;
    rocksdb::WriteBatch batch;
    auto finish_site = [&] {
      if (site.empty()) return;
      batch.Put(meta_, ThresholdsKey(site),
                profiles::Encode(profiles::ComputeThresholds(values, now)));
      values.clear();
    };
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (stopping_.load()) return Errc::kClosed;
      rocksdb::Slice key = it->key();
      const std::size_t prefix_size = 1 + static_cast<unsigned char>(key[0]);
      if (key.size() < prefix_size) continue;  // not a key of this layout
      if (site.size() != prefix_size || std::memcmp(site.data(), key.data(), prefix_size) != 0) {
        finish_site();
        site.assign(key.data(), prefix_size);
      }
      auto customer = profiles::DecodeCustomer(SplitStateValue(it->value().ToStringView()).record);
      if (!customer) continue;  // rebuilt from the event log; not counted meanwhile
      const profiles::CustomerStats stats = profiles::ComputeStats(*customer, now, options_.profiles);
      if (auto v = profiles::RfmValuesOf(stats, now)) values.push_back(*v);
    }
    if (auto ec = FromStatus(it->status())) return ec;
    finish_site();
    it.reset();
    if (batch.Count() == 0) return {};
    return FromStatus(db_->Write(rocksdb::WriteOptions(), &batch));
  }

  const profiles::Options& profile_options() const override { return options_.profiles; }

  void Append(std::string site, std::vector<Message> messages, AppendCallback done) override {
    if (site.size() > kMaxSiteName) {
      done(AppendResult{.error = Errc::kInvalidArgument});
      return;
    }
    std::size_t bytes = 0;
    for (const Message& m : messages) bytes += m.json.size() + m.message_id.size();
    AppendRequest request{.site = std::move(site),
                          .messages = std::move(messages),
                          .bytes = bytes,
                          .done = std::move(done)};
    if (auto refused = commits_.Append(request)) request.done(AppendResult{.error = refused});
  }

  void Flush() override { commits_.Flush(); }

  void SetFlushRequester(FlushRequester* requester) override {
    commits_.SetFlushRequester(requester);
  }

  boost::system::error_code DeleteEventsBefore(std::int64_t received_before_ms) override {
    if (received_before_ms <= 0) return {};
    if (commits_.closed()) return Errc::kClosed;
    util::ReaderLock db_lock(db_mu_);
    if (!db_) return DbUnavailable();
    // Never an event whose change to the records may be unwritten: a replay needs it.
    const std::uint64_t cutoff = std::min(static_cast<std::uint64_t>(received_before_ms) * 1000,
                                          replay_floor_.load());
    // Site prefixes are found by seeking from one site's range to the next: one seek per
    // site, however many events each holds.
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events_));
    for (it->SeekToFirst(); it->Valid();) {
      rocksdb::Slice key = it->key();
      const std::size_t prefix_size = 1 + static_cast<unsigned char>(key[0]);
      if (key.size() != prefix_size + 8) break;  // not an event key of this layout
      std::string prefix(key.data(), prefix_size);
      batch.DeleteRange(events_, EventKey(prefix, 0), EventKey(prefix, cutoff));
      it->Seek(prefix + std::string(9, '\xff'));  // past every key of this site
    }
    if (auto ec = FromStatus(it->status())) return ec;
    it.reset();
    if (batch.Count() == 0) return {};
    return FromStatus(db_->Write(rocksdb::WriteOptions(), &batch));
  }

  boost::system::result<EventPage> ReadEvents(std::string_view site, std::string_view after,
                                              std::size_t limit,
                                              std::size_t max_bytes) override {
    if (site.size() > kMaxSiteName) return boost::system::error_code(Errc::kInvalidArgument);
    if (commits_.closed()) return boost::system::error_code(Errc::kClosed);
    util::ReaderLock db_lock(db_mu_);
    if (!db_) return DbUnavailable();
    std::uint64_t start = 0;
    if (!after.empty()) {
      auto id = DecodeCursor(after);
      if (!id) return boost::system::error_code(Errc::kInvalidArgument);
      if (*id == UINT64_MAX) return EventPage{{}, std::string(after)};
      start = *id + 1;
    }
    std::string prefix = SitePrefix(site);
    std::string upper = prefix + std::string(9, '\xff');
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    ro.fill_cache = false;  // an export scan would evict the hot state

    EventPage page;
    page.next_cursor = std::string(after);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    std::string seek = EventKey(prefix, start);
    std::size_t bytes = 0;
    for (it->Seek(seek); it->Valid() && page.events.size() < limit; it->Next()) {
      rocksdb::Slice key = it->key();
      if (key.size() != prefix.size() + 8) continue;  // not an event key of this layout
      std::uint64_t id = GetBigEndian64(key.data() + prefix.size());
      page.events.push_back(StoredEvent{EncodeCursor(id), it->value().ToString()});
      page.next_cursor = page.events.back().cursor;
      bytes += it->value().size();
      if (bytes >= max_bytes) break;
    }
    if (auto ec = FromStatus(it->status())) return ec;
    return page;
  }

  boost::system::error_code CheckWritable() override {
    if (commits_.closed()) return Errc::kClosed;
    if (const int failure = write_failure_.load()) return static_cast<Errc>(failure);
    util::ReaderLock db_lock(db_mu_);
    if (!db_) return DbUnavailable();
    std::uint64_t stopped = 0, background_errors = 0;
    db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &stopped);
    db_->GetIntProperty(rocksdb::DB::Properties::kBackgroundErrors, &background_errors);
    if (stopped) return Errc::kOverloaded;
    // RocksDB's count is cumulative: the errors up to the last recovery are over.
    if (background_errors > background_errors_recovered_.load()) return Errc::kIoError;
    return {};
  }

  boost::system::error_code Checkpoint(const std::string& dir) override {
    if (dir.empty() || dir.front() != '/') return Errc::kInvalidArgument;
    std::error_code exists_error;
    if (std::filesystem::exists(dir, exists_error)) return Errc::kInvalidArgument;
    if (commits_.closed()) return Errc::kClosed;
    util::ReaderLock db_lock(db_mu_);
    if (!db_) return DbUnavailable();
    rocksdb::Checkpoint* raw = nullptr;
    if (auto ec = FromStatus(rocksdb::Checkpoint::Create(db_.get(), &raw))) return ec;
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // The WAL is copied with it: every acknowledged message is in the copy, flushed or not.
    return FromStatus(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/UINT64_MAX));
  }

  Health GetHealth() override {
    Health health;
    health.writable = CheckWritable();
    util::MutexLock lock(health_mu_);
    if (write_failure_.load()) health.write_failure = write_failure_text_;
    health.wal_recovery = wal_recovery_;
    health.wal_damage_recoveries = wal_damage_recoveries_;
    return health;
  }

  void Close() override {
    {
      util::MutexLock lock(maintenance_mu_);
      stopping_ = true;
    }
    maintenance_wake_.SignalAll();
    if (maintenance_.joinable()) maintenance_.join();
    commits_.Close();
    // After a failed write RocksDB may refuse to write or sync its log again: it is closed
    // without writing (the log files are fsync'ed by name) unless it can resume.
    if (db_ && db_failed_.load() && !db_->Resume().ok()) CloseDbAfterFailure();
    if (db_ && state_ && options_.write_state_on_close && !state_needs_replay_ &&
        !low_space_.load()) {
      if (auto ec = WriteState(last_event_id_ + 1)) {
        std::fprintf(stderr,
                     "cartwatch: writing the visitor and customer records at close failed (%s); "
                     "they are rebuilt from the event log at the next start\n",
                     ec.message().c_str());
        if (db_failed_.load()) CloseDbAfterFailure();
      }
    }
    if (db_) {
      // With fsync off the WAL may still be in the page cache: a clean stop syncs it.
      db_->FlushWAL(/*sync=*/true).PermitUncheckedError();
      state_stage_.Attach(nullptr, nullptr);
      state_.reset();
      handles_.clear();
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
  }

 private:
  // An Append, or an EraseCustomer (when `erased` is set).
  // A query (Pending::IsQuery): a read that writes nothing. Queries are answered at the start of a round,
  // before its writes: a query then shows every message acknowledged before it was queued
  // (committed by an earlier round, or it would not have been acknowledged) and none of
  // those still waiting for their commit, so it never waits for the round after it.

  // CommitQueue::RoundWriter: the committing thread's.
  void AnswerQueries(std::vector<Pending>& work) override {
    const auto queries = std::stable_partition(work.begin(), work.end(),
                                               [](const Pending& p) { return !p.IsQuery(); });
    for (auto it = queries; it != work.end(); ++it) {
      // A failed commit dropped the records in memory: rebuilt first.
      std::get<ReadRequest>(it->request)
          .read(!db_                 ? DbUnavailable()
                : state_needs_replay_ ? ReplayState()
                                      : boost::system::error_code());
    }
    work.erase(queries, work.end());
  }

  // Has the committing thread write every unwritten record, after every message queued
  // before (for a scan of the records in RocksDB).
  boost::system::error_code WriteAllState() {
    std::promise<boost::system::error_code> done;
    ReadRequest write_all{.read = [&](boost::system::error_code ec) { done.set_value(ec); },
                          .write_state = true};
    if (!QueueAndCommit(Pending{std::move(write_all)})) return Errc::kClosed;
    return done.get_future().get();
  }

  // Queues `p`, a request of a thread that is not an event loop's, and commits it here or
  // hands it on (CommitQueue::QueueAndCommit). false (nothing queued) once Close() has begun.
  bool QueueAndCommit(Pending p) { return commits_.QueueAndCommit(std::move(p)); }

  // Runs `peek(site prefix)` on the committing thread, at the start of a round (IsQuery).
  template <typename Record, typename Peek>
  boost::system::result<std::optional<Record>> ReadState(std::string_view site, Peek&& peek) {
    using Result = boost::system::result<std::optional<Record>>;
    if (site.size() > kMaxSiteName) return boost::system::error_code(Errc::kInvalidArgument);
    std::promise<Result> done;
    ReadRequest query{.read = [&](boost::system::error_code ec) {
      if (ec) return done.set_value(ec);
      Result r = peek(SitePrefix(site));
      if (!r && r.error().category() == profiles::ProfilesCategory()) r = Errc::kCorruption;
      done.set_value(std::move(r));
    }};
    if (!QueueAndCommit(Pending{std::move(query)})) {
      return boost::system::error_code(Errc::kClosed);
    }
    return done.get_future().get();
  }

  // Rebuilds the records from the event log: discards what is in memory and applies again
  // every event from state_replay_from_ on (StateWriter::Apply skips what the written
  // records already hold), then writes every record and moves state_replay_from_ past the
  // last event. At start-up, and after a failed commit dropped the records in memory.
  // REQUIRES: called by the committing thread (or before the store is shared).
  boost::system::error_code ReplayState() {
    state_->Discard();
    state_needs_replay_ = true;
    const std::uint64_t from = state_replay_from_;
    if (from > last_event_id_ || !options_.apply_state) {
      state_needs_replay_ = false;
      return {};
    }
    const auto started = std::chrono::steady_clock::now();
    std::size_t replayed = 0;
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    // Site by site (each site's records depend on its own events only), each from `from`.
    for (it->SeekToFirst(); it->Valid();) {
      const rocksdb::Slice key = it->key();
      const std::size_t prefix_size = 1 + static_cast<unsigned char>(key[0]);
      if (key.size() != prefix_size + 8) break;  // not an event key of this layout
      const std::string_view prefix(key.data(), prefix_size);
      const std::uint64_t id = GetBigEndian64(key.data() + prefix_size);
      if (id < from) {
        it->Seek(EventKey(prefix, from));
        continue;
      }
      if (auto ec = state_->Apply(prefix, id, it->value().ToStringView())) return ec;
      ++replayed;
      if (state_->unwritten() >= options_.state_max_unwritten) {
        // Written with the id of what they hold; the replay point moves only at the end.
        if (auto ec = WriteState(std::nullopt)) return ec;
      }
      it->Next();
    }
    if (auto ec = FromStatus(it->status())) return ec;
    it.reset();
    if (auto ec = WriteState(last_event_id_ + 1)) return ec;
    state_needs_replay_ = false;
    if (replayed > 0) {
      std::fprintf(stderr,
                   "cartwatch: rebuilt the unwritten visitor and customer records from %zu events "
                   "in %lld ms\n",
                   replayed,
                   static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - started)
                                              .count()));
    }
    return {};
  }

  // Writes every unwritten record, kStateBatchRecords records a batch (a batch of 100,000
  // records of a few KB each would stall the commit and the memtables), then, when given,
  // `replay_from` as the new replay point. Each batch is durable by itself and its records
  // hold only durable messages, so a crash between them only makes the replay longer.
  // After a failure the records in memory are dropped (StateWriter::Finish).
  // REQUIRES: called by the committing thread (or before the store is shared), between
  // commits (every record in memory holds only messages already written).
  boost::system::error_code WriteState(std::optional<std::uint64_t> replay_from) {
    rocksdb::WriteOptions wo;
    wo.sync = options_.fsync;
    rocksdb::WriteBatch batch;
    bool last = false;
    while (!last) {
      batch.Clear();
      state_->Stage(batch, last_event_id_, /*all=*/true, kStateBatchRecords);
      last = state_->unwritten() == 0;
      if (last && replay_from) {
        std::string value;
        PutBigEndian64(value, *replay_from);
        batch.Put(meta_, kStateReplayFromKey, value);
      }
      auto ec = batch.Count() == 0 ? boost::system::error_code()
                                   : FromStatus(db_->Write(wo, &batch));
      if (state_) state_->Finish(/*written=*/!ec);
      if (ec) {
        state_needs_replay_ = true;
        return ec;
      }
    }
    if (replay_from) {
      state_replay_from_ = *replay_from;
      replay_floor_ = *replay_from;
    }
    return {};
  }

  // Deletes the events of the site that name the user id or an anonymous id of one of
  // `jobs` and are not newer than that job, a thousand deletes a write.
  boost::system::error_code PurgeEvents(const std::string& site_prefix,
                                        const std::vector<const EraseJob*>& jobs) {
    // Each id with the newest event id any job erases it up to.
    std::unordered_map<std::string, std::uint64_t> users, devices;
    std::uint64_t last = 0;
    for (const EraseJob* job : jobs) {
      auto up_to = [&](auto& map, const std::string& id) {
        auto& v = map[id];
        v = std::max(v, job->up_to_event_id);
      };
      up_to(users, job->user_id);
      for (const std::string& id : job->anonymous_ids) up_to(devices, id);
      last = std::max(last, job->up_to_event_id);
    }
    auto erased_up_to = [](const auto& map, const std::string& id) -> std::uint64_t {
      if (id.empty()) return 0;
      auto it = map.find(id);
      return it == map.end() ? 0 : it->second;
    };
    if (auto ec = EraseUnlistedVisitors(site_prefix, users, devices)) return ec;
    std::string upper = EventKey(site_prefix, last);
    upper.push_back('\0');  // the next key: `last` itself is included
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    ro.fill_cache = false;
    rocksdb::WriteOptions wo;
    wo.sync = options_.fsync;
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events_));
    for (it->Seek(EventKey(site_prefix, 0)); it->Valid(); it->Next()) {
      if (stopping_.load()) return Errc::kClosed;
      rocksdb::Slice key = it->key();
      if (key.size() != site_prefix.size() + 8) continue;  // not an event key of this layout
      const std::uint64_t id = GetBigEndian64(key.data() + site_prefix.size());
      auto event = profiles::ParseEvent(it->value().ToStringView());
      if (!event) continue;
      // A message with a userId is that customer's, whatever the device (a shared device
      // keeps the other customer's messages); one without, its device's.
      const std::uint64_t up_to = event->user_id.empty()
                                      ? erased_up_to(devices, event->anonymous_id)
                                      : erased_up_to(users, event->user_id);
      if (id > up_to) continue;
      batch.Delete(events_, key);
      if (batch.Count() >= 1000) {
        if (auto ec = FromStatus(db_->Write(wo, &batch))) return ec;
        batch.Clear();
      }
    }
    if (auto ec = FromStatus(it->status())) return ec;
    it.reset();
    if (batch.Count() == 0) return {};
    return FromStatus(db_->Write(wo, &batch));
  }

  // Visitors still linked to an erased customer but not on its list of linked visitors
  // (which keeps the newest profiles::Options::max_linked_visitors): found by one scan of
  // the site's visitor records, erased through the committing thread like any erase, and
  // added to `devices` so that their anonymous events are purged too.
  boost::system::error_code EraseUnlistedVisitors(
      const std::string& site_prefix, const std::unordered_map<std::string, std::uint64_t>& users,
      std::unordered_map<std::string, std::uint64_t>& devices) {
    if (auto ec = WriteAllState()) return ec;  // the scan reads the records as of now
    std::string upper = site_prefix + std::string(1, '\xff');
    std::unordered_map<std::string, std::vector<std::string>> found;  // user -> devices
    {
      rocksdb::Slice upper_slice(upper);
      rocksdb::ReadOptions ro;
      ro.iterate_upper_bound = &upper_slice;
      ro.fill_cache = false;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, visitors_));
      for (it->Seek(site_prefix); it->Valid(); it->Next()) {
        if (stopping_.load()) return Errc::kClosed;
        if (!it->key().starts_with(site_prefix)) break;
        auto visitor = profiles::DecodeVisitor(SplitStateValue(it->value().ToStringView()).record);
        if (!visitor || visitor->user_id.empty()) continue;
        auto user = users.find(visitor->user_id);
        if (user == users.end()) continue;
        found[visitor->user_id].push_back(visitor->anonymous_id);
        auto& up_to = devices[visitor->anonymous_id];
        up_to = std::max(up_to, user->second);
      }
      if (auto ec = FromStatus(it->status())) return ec;
    }
    for (auto& [user, anonymous_ids] : found) {
      std::promise<boost::system::error_code> done;
      EraseRequest erase{.site = site_prefix.substr(1),
                         .user_id = user,
                         .only_visitors = std::move(anonymous_ids),
                         .done = [&done](const EraseResult& r) { done.set_value(r.error); }};
      if (!QueueAndCommit(Pending{std::move(erase)})) return Errc::kClosed;
      if (auto ec = done.get_future().get()) return ec;
    }
    return {};
  }

  // The store's background thread: event purges of erase jobs as soon as they are
  // committed, retention every StoreOptions::retention_interval, and the thresholds every
  // StoreOptions::thresholds_interval (first at once).
  void MaintenanceLoop() {
    using Clock = std::chrono::steady_clock;
    util::MutexLock lock(maintenance_mu_);
    // Thresholds are stored, so a restart needs no new ones at once; a first computation a
    // minute after opening (or sooner, with a shorter interval) serves a new database.
    Clock::time_point next_thresholds =
        Clock::now() + std::min<Clock::duration>(options_.thresholds_interval, std::chrono::minutes(1));
    Clock::time_point next_purge = Clock::now();  // jobs left by an earlier run, at once
    // Retention every StoreOptions::retention_interval, first at once: here, off the event
    // loops, which only commit.
    const bool retention = options_.retention.count() > 0;
    Clock::time_point next_retention = retention ? Clock::now() : Clock::time_point::max();
    while (!stopping_) {
      const Clock::time_point now = Clock::now();
      if (purge_requested_ || now >= next_purge) {
        purge_requested_ = false;
        next_purge = Clock::time_point::max();
        lock.Unlock();
        auto ec = PurgeErasedEvents();
        lock.Lock();
        if (ec && !stopping_) {
          std::fprintf(stderr, "cartwatch: deleting erased events failed (%s); retrying in 10 s\n",
                       ec.message().c_str());
          next_purge = Clock::now() + std::chrono::seconds(10);
        }
        continue;
      }
      if (now >= next_retention) {
        lock.Unlock();
        // A failure is retried at the next turn.
        (void)DeleteEventsBefore(WallNowMs() - options_.retention.count());
        lock.Lock();
        next_retention = Clock::now() + options_.retention_interval;
        continue;
      }
      if (now >= next_thresholds) {
        lock.Unlock();
        auto ec = RecomputeThresholds(util::NowMs());
        lock.Lock();
        if (ec && !stopping_) {
          std::fprintf(stderr, "cartwatch: recomputing RFM/ABC thresholds failed (%s)\n",
                       ec.message().c_str());
        }
        next_thresholds = Clock::now() + options_.thresholds_interval;
        continue;
      }
      if (write_failure_.load()) {
        lock.Unlock();
        TryToRecover();
        lock.Lock();
        if (write_failure_.load()) {
          maintenance_wake_.WaitUntil(maintenance_mu_, Clock::now() + options_.recovery_interval);
          continue;
        }
      }
      maintenance_wake_.WaitUntil(maintenance_mu_,
                                  std::min({next_thresholds, next_purge, next_retention}));
    }
  }

  // Bytes free for the store on the data directory's disk (StoreOptions::min_free_bytes);
  // UINT64_MAX when unknown (no check).
  std::uint64_t FreeBytes() const {
    if (options_.faults && options_.faults->free_bytes() >= 0) {
      return static_cast<std::uint64_t>(options_.faults->free_bytes());
    }
    return storage::FreeBytes(options_.data_dir);
  }

  // What GetHealth says while the disk has `free` bytes, below min_free_bytes.
  void NoteLowSpace(std::uint64_t free) {
    util::MutexLock lock(health_mu_);
    write_failure_text_ = "the data directory's disk has " + std::to_string(free) +
                          " bytes free, below storage.min_free_bytes (" +
                          std::to_string(options_.min_free_bytes) + ")";
  }

  // Errc::kNoSpace while the disk has less than min_free_bytes free (committing thread).
  // statvfs is asked at most every 100 ms, or sooner once an eighth of the margin may
  // have been written since, and at every commit while the disk is low.
  boost::system::error_code CheckDiskSpace() {
    const std::uint64_t min_free = options_.min_free_bytes;
    if (min_free == 0) return {};
    const auto now = std::chrono::steady_clock::now();
    const std::uint64_t written = bytes_committed_;
    if (now >= next_space_check_ || written - bytes_at_space_check_ > min_free / 8 ||
        free_bytes_ < min_free) {
      free_bytes_ = FreeBytes();
      next_space_check_ = now + std::chrono::milliseconds(100);
      bytes_at_space_check_ = written;
    }
    if (free_bytes_ >= min_free) return {};
    NoteLowSpace(free_bytes_);
    low_space_.store(true);
    if (write_failure_.exchange(static_cast<int>(Errc::kNoSpace)) == 0) {
      std::fprintf(stderr,
                   "cartwatch: error: the data directory's disk has %llu bytes free, below "
                   "storage.min_free_bytes (%llu): writes are refused until there is\n",
                   static_cast<unsigned long long>(free_bytes_),
                   static_cast<unsigned long long>(min_free));
      maintenance_wake_.SignalAll();
    }
    return Errc::kNoSpace;
  }

  // Records a failed write (any thread): the store is not writable (CheckWritable) until
  // TryToRecover succeeds. Logged once per failure, not once per refused write.
  void NoteWriteFailure(const rocksdb::Status& status) {
    const Errc errc = status.IsNoSpace() ? Errc::kNoSpace : Errc::kIoError;
    if (!status.IsNoSpace() && !status.IsIOError() && !status.IsCorruption()) return;
    {
      util::MutexLock lock(health_mu_);
      write_failure_text_ = status.ToString();
    }
    if (!db_failed_.exchange(true)) MarkFailedWrite(options_.data_dir);
    if (write_failure_.exchange(static_cast<int>(errc)) == 0) {
      std::fprintf(stderr,
                   "cartwatch: error: storage write failed, writes are refused until it recovers "
                   "(checked every %lld ms): %s\n",
                   static_cast<long long>(options_.recovery_interval.count()),
                   status.ToString().c_str());
      maintenance_wake_.SignalAll();
    }
  }

  // After a failed write (maintenance thread): asks RocksDB to leave its error state (a no-op
  // when it is in none) and proves with a small write that the disk takes writes again.
  void TryToRecover() {
    if (low_space_.load()) {
      const std::uint64_t free = FreeBytes();
      if (free < options_.min_free_bytes) return NoteLowSpace(free);
      low_space_.store(false);
    }
    rocksdb::Status s = db_ ? db_->Resume() : rocksdb::Status::IOError("RocksDB is closed");
    // RocksDB does not resume after a failed write to its log (the log may end in a partial
    // record), nor while its own recovery is stuck (Resume answers Busy on and on): it is
    // reopened, which recovers the log up to that write.
    if (!s.ok() && (!db_ || s.severity() >= rocksdb::Status::Severity::kFatalError ||
                    ++failed_resumes_ >= kResumesBeforeReopen)) {
      s = ReopenDb();
    }
    if (s.ok()) failed_resumes_ = 0;
    if (s.ok()) {
      rocksdb::WriteOptions wo;
      wo.sync = options_.fsync;
      std::string now;
      PutBigEndian64(now, static_cast<std::uint64_t>(WallNowMs()));
      s = db_->Put(wo, meta_, kWritableProbeKey, now);
    }
    if (!s.ok()) {
      // "Busy" (RocksDB recovering by itself) says less than the failure it follows.
      if (s.IsIOError() || s.IsCorruption()) {
        util::MutexLock lock(health_mu_);
        write_failure_text_ = s.ToString();
      }
      return;
    }
    db_failed_.store(false);
    ClearFailedWriteMark(options_.data_dir);
    {
      std::uint64_t background_errors = 0;
      db_->GetIntProperty(rocksdb::DB::Properties::kBackgroundErrors, &background_errors);
      background_errors_recovered_.store(background_errors);
    }
    write_failure_.store(0);
    std::fprintf(stderr, "cartwatch: storage is writable again\n");
    commits_.FlushOnce();  // what was queued while RocksDB was reopened
  }

  // What a request gets while RocksDB is closed for a reopen that has not succeeded yet.
  boost::system::error_code DbUnavailable() const {
    const int failure = write_failure_.load();
    return failure != 0 ? make_error_code(static_cast<Errc>(failure))
                        : make_error_code(Errc::kIoError);
  }

  StateOptions MakeStateOptions() const {
    StateOptions state;
    state.profiles = options_.profiles;
    state.cache_entries = options_.state_cache_entries;
    state.write_delay_us = static_cast<std::uint64_t>(options_.state_write_delay.count()) * 1000;
    state.max_unwritten = options_.state_max_unwritten;
    return state;
  }

  // After RocksDB refused to resume from a failed write (maintenance thread): closes it
  // and opens it again, recovering the write-ahead log up to the failed write (nothing
  // after it was acknowledged), and rebuilds the unwritten records from the event log.
  // Commits wait meanwhile (this thread holds the commit); reads get DbUnavailable while
  // it is closed. On failure (the disk still full) it stays closed; the next call retries.
  rocksdb::Status ReopenDb() {
    if (!commits_.HoldCommit()) return rocksdb::Status::ShutdownInProgress();
    rocksdb::Status s;
    {
      util::WriterLock db_lock(db_mu_);
      if (db_) CloseDbAfterFailure();
      std::string error;
      s = OpenDb(rocksdb::WALRecoveryMode::kPointInTimeRecovery, &error);
      // A write that failed may be in the log all the same (its sync failed, not its
      // append): what is in memory is read again from what was recovered.
      if (s.ok() && !LoadFromDb(&error)) s = rocksdb::Status::IOError(error);
      if (s.ok()) {
        state_ = std::make_unique<StateWriter>(db_.get(), visitors_, customers_, MakeStateOptions());
        state_stage_.Attach(state_.get(), meta_);
        state_needs_replay_ = true;
        if (auto ec = ReplayState()) s = rocksdb::Status::IOError(ec.message());
      } else if (db_) {
        CloseDbAfterFailure();
      }
      if (!s.ok()) {
        util::MutexLock lock(health_mu_);
        write_failure_text_ = "reopening RocksDB after a failed write: " + s.ToString();
      }
    }
    commits_.ReleaseCommit();
    return s;
  }



  // Answers every request of `work` with `ec`, writing nothing.
  static void RefuseRound(std::vector<Pending>& work, boost::system::error_code ec) {
    for (Pending& p : work) p.Refuse(ec);
  }

  // Writes every pending Append and erase as one WriteBatch, through the pipeline of
  // stages (stages_, storage/commit_stage.h), then answers them all.
  void Commit(std::vector<Pending>& work) override {
    Scratch& sc = scratch_;
    // The record time of this round's dedup entries: its latest receivedAt.
    std::int64_t commit_time = std::numeric_limits<std::int64_t>::min();
    for (const Pending& p : work) {
      if (const auto* append = std::get_if<AppendRequest>(&p.request)) {
        for (const Message& m : append->messages) {
          commit_time = std::max(commit_time, m.received_at_ms);
        }
      }
    }

    rocksdb::WriteBatch& batch = sc.batch;
    batch.Clear();
    std::vector<AppendResult>& results = sc.results;
    results.assign(work.size(), AppendResult{});
    std::vector<EraseResult>& erased = sc.erased;
    erased.assign(work.size(), EraseResult{});
    std::vector<EraseJob> jobs;
    // A failed commit dropped the records in memory: rebuilt first, or this one fails too.
    // Refused before anything is applied: the records in memory stay as they are.
    if (auto refused = db_ ? CheckDiskSpace() : DbUnavailable()) return RefuseRound(work, refused);
    boost::system::error_code ec;
    if (state_needs_replay_) ec = ReplayState();
    // An erase, or a scan to come, needs every record written with this commit. What is
    // unwritten now holds only durable messages: written first, in batches of bounded size,
    // so that this commit's own batch stays small.
    const bool write_all = std::any_of(work.begin(), work.end(), [](const Pending& p) {
      return std::holds_alternative<EraseRequest>(p.request) ||
             std::holds_alternative<ReadRequest>(p.request);  // queries left in AnswerQueries
    });
    if (!ec && write_all) ec = WriteState(std::nullopt);
    CommitRound round{.batch = &batch,
                      .commit_time = commit_time,
                      .last_event_id = last_event_id_,
                      .write_all = write_all,
                      .replay_from = state_replay_from_};
    for (CommitStage* stage : stages_) stage->Begin(round);
    for (std::size_t i = 0; i < work.size() && !ec; ++i) {
      if (std::holds_alternative<ReadRequest>(work[i].request)) continue;  // after the write
      if (auto* request = std::get_if<EraseRequest>(&work[i].request)) {
        ec = ApplyErase(*request, round.last_event_id, erased[i], jobs);
        continue;
      }
      const auto& append = std::get<AppendRequest>(work[i].request);
      const std::string prefix = SitePrefix(append.site);
      for (const Message& m : append.messages) {
        // Admitted one message at a time, so a messageId repeated within this round is a
        // duplicate of its first occurrence.
        if (!Admitted(round, prefix, m)) {
          ++results[i].duplicates;
          continue;
        }
        round.last_event_id =
            std::max(round.last_event_id + 1, static_cast<std::uint64_t>(m.received_at_ms) * 1000);
        ++round.stored;
        ++results[i].stored;
        for (CommitStage* stage : stages_) {
          if ((ec = stage->Stored(round, prefix, round.last_event_id, m))) break;
        }
        if (ec) break;
      }
    }
    for (CommitStage* stage : stages_) {
      if (ec) break;
      ec = stage->Finish(round);
    }

    if (!ec) {
      for (std::size_t j = 0; j < jobs.size(); ++j) {
        batch.Put(meta_, EraseJobKey(next_erase_seq_ + j), EncodeEraseJob(jobs[j]));
      }
      if (batch.Count() > 0) {
        rocksdb::WriteOptions wo;
        wo.sync = options_.fsync;
        // When flushes and compactions fall behind, RocksDB delays this write (its
        // slowdown) and so paces the committing I/O thread: that is the backpressure.
        // Failing fast instead (no_slowdown) turned ordinary bursts into 503s.
        const rocksdb::Status written = db_->Write(wo, &batch);
        ec = FromStatus(written);
        if (ec) NoteWriteFailure(written);
        bytes_committed_ += batch.GetDataSize();
      }
    }
    if (!ec) {
      if (round.stored > 0) last_event_id_ = round.last_event_id;
      next_erase_seq_ += jobs.size();
      state_replay_from_ = round.replay_from;
      replay_floor_ = round.replay_from;
    }
    for (CommitStage* stage : stages_) stage->End(round, /*written=*/!ec);
    if (ec) state_needs_replay_ = true;
    for (std::size_t i = 0; i < work.size(); ++i) {
      if (auto* erase = std::get_if<EraseRequest>(&work[i].request)) {
        if (ec) erased[i] = EraseResult{.error = ec};
        erase->done(erased[i]);
      } else if (auto* append = std::get_if<AppendRequest>(&work[i].request)) {
        if (ec) results[i] = AppendResult{.error = ec};
        append->done(results[i]);
      }
    }
    // The reads that asked for every record written (the queries were answered before,
    // in AnswerQueries).
    for (Pending& p : work) {
      if (auto* read = std::get_if<ReadRequest>(&p.request)) {
        read->read(ec ? ec : state_needs_replay_ ? ReplayState() : boost::system::error_code());
      }
    }
    // After the answers: a walk of the dedup log once a minute. A failure leaves records
    // past the window in the log: harmless (Load skips them), and retried later.
    if (!ec && db_) (void)dedup_.Expire(*db_, dedup_log_);
    if (!ec && !jobs.empty()) {
      {
        util::MutexLock lock(maintenance_mu_);
        purge_requested_ = true;
      }
      maintenance_wake_.SignalAll();
    }
  }

  // Whether every stage admits `m` (the first that does not decides).
  bool Admitted(const CommitRound& round, std::string_view prefix, const Message& m) {
    for (CommitStage* stage : stages_) {
      if (!stage->Admit(round, prefix, m)) return false;
    }
    return true;
  }

  // An erase request of a round: the customer's records (or only the visitors it names)
  // through the state writer, and for a whole customer the erase jobs that delete their
  // events once the round is written (`last_event_id`: events up to it are the erased ones).
  boost::system::error_code ApplyErase(const EraseRequest& request, std::uint64_t last_event_id,
                                       EraseResult& result, std::vector<EraseJob>& jobs) {
    const std::string prefix = SitePrefix(request.site);
    if (!request.only_visitors.empty()) {
      auto erase = state_->EraseVisitors(prefix, request.user_id, request.only_visitors);
      if (!erase) return erase.error();
      result.visitors = erase->size();
      return {};
    }
    auto erase = state_->Erase(prefix, request.user_id);
    if (!erase) return erase.error();
    result.found = erase->found;
    result.visitors = erase->anonymous_ids.size();
    // One job a customer erased (more than one when an alias had merged customers).
    for (std::string& user : erase->user_ids) {
      jobs.push_back(EraseJob{.site_prefix = prefix,
                              .up_to_event_id = last_event_id,
                              .user_id = std::move(user),
                              .anonymous_ids = std::move(erase->anonymous_ids)});
      erase->anonymous_ids.clear();  // moved-from: the first job has them
    }
    return {};
  }

  // Commit's working memory, kept between commits so a commit allocates little. Used by
  // the committing thread only.
  struct Scratch {
    rocksdb::WriteBatch batch;
    std::vector<AppendResult> results;
    std::vector<EraseResult> erased;
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
  std::unique_ptr<StateWriter> state_;  // used by the committing thread only
  std::uint64_t next_erase_seq_ = 0;    // used by the committing thread only
  std::uint64_t last_event_id_ = 0;  // used by the committing thread only
  // The durable replay point (kStateReplayFromKey), and whether the records in memory were
  // dropped and must be rebuilt (ReplayState). Used by the committing thread only.
  std::uint64_t state_replay_from_ = 1;
  bool state_needs_replay_ = true;  // until Open has replayed
  // state_replay_from_ as it was when the replay point last moved, for other threads.
  std::atomic<std::uint64_t> replay_floor_{0};
  Scratch scratch_;                  // used by the committing thread only
  // The stages of the commit pipeline, and the order of their calls
  // (storage/commit_stage.h). Used by the committing thread only.
  DedupIndex dedup_{options_.dedup_window, options_.dedup_max_ids};
  EventLogStage event_log_;
  StateStage state_stage_{options_.apply_state};
  CommitStage* const stages_[3] = {&dedup_, &event_log_, &state_stage_};

  // The queue of requests and who commits them; this store writes its rounds.
  CommitQueue commits_{CommitQueue::Bounds{.round_messages = options_.max_round_messages,
                                           .round_bytes = options_.max_round_bytes,
                                           .queued_messages = options_.max_queued_messages,
                                           .queued_bytes = options_.max_queued_bytes},
                       *this};

  util::Mutex purge_mu_;  // one PurgeErasedEvents at a time
  std::thread maintenance_;
  util::Mutex maintenance_mu_;
  util::CondVar maintenance_wake_;
  bool purge_requested_ GUARDED_BY(maintenance_mu_) = false;
  std::atomic<bool> stopping_{false};   // set under maintenance_mu_; read anywhere

  // The Errc of the write that failed (NoteWriteFailure), 0 while writes succeed.
  std::atomic<int> write_failure_{0};
  std::atomic<bool> low_space_{false};  // write_failure_ came from CheckDiskSpace
  std::atomic<bool> db_failed_{false};
  // Resume() calls that failed since the last recovery; after kResumesBeforeReopen of them
  // RocksDB is reopened. Used by the background thread only.
  static constexpr int kResumesBeforeReopen = 10;
  int failed_resumes_ = 0;
  // RocksDB's cumulative count of background errors (rocksdb.background-errors) when the
  // store last recovered: only errors beyond it make CheckWritable fail.
  std::atomic<std::uint64_t> background_errors_recovered_{0};  // a write of RocksDB's own failed (NoteWriteFailure)
  // Held shared by the threads that read RocksDB outside the commit (exports, thresholds,
  // purges, retention, CheckWritable), exclusively by ReopenDb while db_ is replaced; the
  // committing thread needs none (ReopenDb holds the commit).
  mutable util::SharedMutex db_mu_;
  // CheckDiskSpace's last reading; used by the committing thread only.
  std::uint64_t free_bytes_ = UINT64_MAX;
  std::chrono::steady_clock::time_point next_space_check_{};
  std::uint64_t bytes_at_space_check_ = 0;
  std::uint64_t bytes_committed_ = 0;  // bytes of the batches written
  util::Mutex health_mu_;
  std::string write_failure_text_ GUARDED_BY(health_mu_);
  std::string wal_recovery_ GUARDED_BY(health_mu_);  // set by Open
  std::uint64_t wal_damage_recoveries_ GUARDED_BY(health_mu_) = 0;
};

}  // namespace

const boost::system::error_category& StoreCategory() {
  static const StoreErrorCategory category;
  return category;
}

boost::system::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), StoreCategory()};
}

boost::system::result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options,
                                                          std::string* error_message) {
  auto store = std::make_unique<RocksStore>(options);
  if (!store->Open(error_message)) return boost::system::error_code(Errc::kIoError);
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace cartwatch::storage
