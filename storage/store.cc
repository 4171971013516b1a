// RocksDB implementation of Store (storage/rocks_store.h): opening and closing the
// database, the public entry points of ingest and profiles, the background thread's jobs
// and recovery after a failed write. The rule engine's and the deliveries' entry points are
// in store_outbox.cc, the figures for /metrics in store_figures.cc, the commit round in
// commit.cc. Key layout: docs/storage.md.
#include "storage/rocks_store.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <future>

#include <rocksdb/options.h>
#include <rocksdb/utilities/checkpoint.h>

#include "profiles/codec.h"
#include "storage/data_dir.h"
#include "storage/fault_fs.h"
#include "storage/deliveries.h"
#include "storage/keys.h"
#include "storage/rocksdb_listener.h"
#include "storage/schema.h"
#include "storage/status.h"
#include "storage/thresholds.h"
#include "util/log.h"

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

// Written by TryToRecover to prove that the disk takes writes again; never read.
constexpr char kWritableProbeKey[] = "writable_probe";

}  // namespace

// --- Opening and closing ---

rocksdb::Status RocksStore::OpenDb(rocksdb::WALRecoveryMode recovery, std::string* error_message) {
  OpenHooks hooks;
  if (options_.faults) {
    fault_env_ = NewFaultInjectionEnv(options_.faults);
    hooks.env = fault_env_.get();
  }
  hooks.listener = std::make_shared<RocksDbListener>(
      [this](const rocksdb::Status& status, bool manifest) {
        // DB::Resume() after a failed MANIFEST write can trip an assertion in RocksDB
        // (Debian's build keeps them: "!versions_->descriptor_log_" in ResumeImpl) when the
        // write that failed was creating a new MANIFEST: RocksDB is reopened instead.
        if (manifest) manifest_failed_.store(true);
        NoteWriteFailure(status);
      });
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
  manifest_failed_.store(false);
  handles_ = std::move(opened.handles);
  events_ = opened.events;
  dedup_log_ = opened.dedup_log;
  meta_ = opened.meta;
  visitors_ = opened.visitors;
  customers_ = opened.customers;
  timers_cf_ = opened.timers;
  outbox_cf_ = opened.outbox;
  deliveries_cf_ = opened.deliveries;
  return s;
}

void RocksStore::CloseDbAfterFailure() {
  SyncWalFiles(options_.data_dir);
  DetachStages();
  state_.reset();
  handles_.clear();
  if (db_) db_->Close().PermitUncheckedError();
  db_.reset();
}

bool RocksStore::Open(std::string* error_message) {
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
      log::Warn("the write-ahead log ended in a write that failed (the disk was full or "
                "failing before the last stop): recovered up to it; that write was never "
                "acknowledged");
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
  AttachStages();
  if (auto ec = ReplayState()) {
    *error_message = "cannot rebuild the visitor and customer records from the event log in \"" +
                     options_.data_dir + "\": " + ec.message();
    return false;
  }
  if (!damage.empty()) {
    health_.ReportWalDamage(WalDamageReport(damage, last_event_id_, wal_before));
  }
  ClearFailedWriteMark(options_.data_dir);
  background_.Start();
  trimmer_ = std::make_unique<util::MemoryTrimmer>(options_.memory_trim_interval);
  return true;
}

bool RocksStore::LoadFromDb(std::string* error_message) {
  auto unreadable = [&](const std::string& what) {
    *error_message = "cannot read " + what + "\"" + options_.data_dir + "\": ";
  };
  last_event_id_ = 0;
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, kLastEventIdKey, &value);
  if (s.ok() && value.size() == 8) {
    last_event_id_ = GetBigEndian64(value.data());
  } else if (!s.ok() && !s.IsNotFound()) {
    unreadable("");
    *error_message += s.ToString();
    return false;
  }
  event_log_.Attach(events_, meta_);
  if (auto ec = dedup_.Load(*db_, dedup_log_)) {
    unreadable("the dedup log in ");
    *error_message += ec.message();
    return false;
  }
  if (auto ec = erase_.Load(*db_, meta_, timers_cf_, outbox_cf_, &deliveries_)) {
    unreadable("the erase jobs in ");
    *error_message += ec.message();
    return false;
  }
  if (auto ec = outbox_.Load(*db_, meta_, outbox_cf_, &deliveries_)) {
    unreadable("the outbox in ");
    *error_message += ec.message();
    return false;
  }
  if (auto ec = IndexDeadDeliveries(*db_, deliveries_cf_, meta_)) {
    *error_message = "cannot index the dead webhook deliveries in \"" + options_.data_dir +
                     "\" (written once, at the first open by this version): " + ec.message();
    return false;
  }
  state_replay_from_ = last_event_id_ + 1;  // a new database, or one written with its events
  s = db_->Get(rocksdb::ReadOptions(), meta_, kStateReplayFromKey, &value);
  if (s.ok() && value.size() == 8) {
    state_replay_from_ = GetBigEndian64(value.data());
  } else if (!s.ok() && !s.IsNotFound()) {
    unreadable("");
    *error_message += s.ToString();
    return false;
  }
  replay_floor_ = state_replay_from_;
  return true;
}

void RocksStore::AttachStages() {
  state_ = std::make_unique<StateWriter>(db_.get(), visitors_, customers_, MakeStateOptions());
  state_->ObserveChanges(timers_.active(), options_.rules.ComparesCartValues());
  state_stage_.Attach(state_.get(), meta_);
  timers_.Attach(state_.get(), timers_cf_);
  firing_.Attach(Firing::Parts{.db = db_.get(),
                               .timers = timers_cf_,
                               .meta = meta_,
                               .writer = state_.get(),
                               .outbox = &outbox_});
  deliveries_.Attach(db_.get(), deliveries_cf_, outbox_cf_);
}

void RocksStore::DetachStages() {
  state_stage_.Attach(nullptr, nullptr);
  timers_.Attach(nullptr, nullptr);
  firing_.Attach(Firing::Parts{});
  deliveries_.Attach(nullptr, nullptr, nullptr);
}

StateOptions RocksStore::MakeStateOptions() const {
  StateOptions state;
  state.profiles = options_.profiles;
  state.cache_entries = options_.state_cache_entries;
  state.cache_bytes = options_.state_cache_bytes;
  state.write_delay_us = static_cast<std::uint64_t>(options_.state_write_delay.count()) * 1000;
  state.max_unwritten = options_.state_max_unwritten;
  return state;
}

void RocksStore::Close() {
  trimmer_.reset();
  background_.Stop();
  commits_.Close();
  // After a failed write RocksDB may refuse to write or sync its log again: it is closed
  // without writing (the log files are fsync'ed by name) unless it can resume.
  if (db_ && health_.db_failed() && (manifest_failed_.load() || !db_->Resume().ok())) {
    CloseDbAfterFailure();
  }
  if (db_ && state_ && options_.write_state_on_close && !state_needs_replay_ &&
      !health_.low_space()) {
    if (auto ec = WriteState(last_event_id_ + 1)) {
      log::Error("writing the visitor and customer records at close failed; they are "
                 "rebuilt from the event log at the next start")
          .Add("error", ec.message());
      if (health_.db_failed()) CloseDbAfterFailure();
    }
  }
  if (db_) {
    // With fsync off the WAL may still be in the page cache: a clean stop syncs it.
    db_->FlushWAL(/*sync=*/true).PermitUncheckedError();
    DetachStages();
    state_.reset();
    handles_.clear();
    db_->Close().PermitUncheckedError();
    db_.reset();
  }
}

// --- The public entry points ---

void RocksStore::Append(std::string site, std::vector<Message> messages, AppendCallback done) {
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

void RocksStore::EraseCustomer(std::string site, std::string user_id, EraseCallback done) {
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

boost::system::result<EventPage> RocksStore::ReadEvents(std::string_view site,
                                                        std::string_view after, std::size_t limit,
                                                        std::size_t max_bytes) {
  if (site.size() > kMaxSiteName) return boost::system::error_code(Errc::kInvalidArgument);
  if (commits_.closed()) return boost::system::error_code(Errc::kClosed);
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  return ReadEventPage(*db_, events_, SitePrefix(site), after, limit, max_bytes);
}

boost::system::error_code RocksStore::PurgeErasedEvents() {
  util::MutexLock purge(purge_mu_);
  if (commits_.closed()) return Errc::kClosed;
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  return storage::PurgeErasedEvents(EraseTarget{.db = db_.get(),
                                                .meta = meta_,
                                                .events = events_,
                                                .visitors = visitors_,
                                                .fsync = options_.fsync},
                                    *this, background_);
}

boost::system::result<std::optional<profiles::SiteThresholds>> RocksStore::ReadThresholds(
    std::string_view site) {
  if (site.size() > kMaxSiteName) return boost::system::error_code(Errc::kInvalidArgument);
  if (commits_.closed()) return boost::system::error_code(Errc::kClosed);
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_, ThresholdsKey(SitePrefix(site)), &value);
  if (s.IsNotFound()) return std::optional<profiles::SiteThresholds>();
  if (!s.ok()) return FromStatus(s);
  auto decoded = profiles::DecodeThresholds(value);
  if (!decoded) return boost::system::error_code(Errc::kCorruption);
  return std::optional<profiles::SiteThresholds>(std::move(*decoded));
}

boost::system::error_code RocksStore::RecomputeThresholds(util::EpochMs now) {
  // Every customer as of now, not as last written.
  if (auto ec = WriteAllRecords()) return ec;
  // Taken after WriteAllRecords: a reopen (ReopenDb) holds the commit while it waits for
  // this lock.
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  return WriteSiteThresholds(*db_, customers_, meta_, now, options_.profiles, background_);
}

boost::system::error_code RocksStore::DeleteEventsBefore(std::int64_t received_before_ms) {
  if (received_before_ms <= 0) return {};
  if (commits_.closed()) return Errc::kClosed;
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  // Never an event whose change to the records may be unwritten: a replay needs it.
  const std::uint64_t cutoff = std::min(static_cast<std::uint64_t>(received_before_ms) * 1000,
                                        replay_floor_.load());
  return DeleteEventsBelow(*db_, events_, cutoff);
}

boost::system::error_code RocksStore::CheckWritable() {
  if (commits_.closed()) return Errc::kClosed;
  if (auto failure = health_.failure()) return failure;
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  std::uint64_t stopped = 0, background_errors = 0;
  db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &stopped);
  db_->GetIntProperty(rocksdb::DB::Properties::kBackgroundErrors, &background_errors);
  if (stopped) return Errc::kOverloaded;
  // RocksDB's count is cumulative: the errors up to the last recovery are over.
  if (background_errors > background_errors_recovered_.load()) return Errc::kIoError;
  return {};
}

Store::Health RocksStore::GetHealth() {
  Health health;
  health.writable = CheckWritable();
  health_.Describe(health);
  return health;
}

boost::system::error_code RocksStore::Checkpoint(const std::string& dir) {
  if (dir.empty() || dir.front() != '/') return Errc::kInvalidArgument;
  std::error_code exists_error;
  if (std::filesystem::exists(dir, exists_error)) return Errc::kInvalidArgument;
  if (commits_.closed()) return Errc::kClosed;
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return health_.DbUnavailable();
  rocksdb::Checkpoint* raw = nullptr;
  if (auto ec = FromStatus(rocksdb::Checkpoint::Create(db_.get(), &raw))) return ec;
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // The WAL is copied with it: every acknowledged message is in the copy, flushed or not.
  return FromStatus(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/UINT64_MAX));
}

// --- The background thread's jobs, and recovery ---

boost::system::error_code RocksStore::ApplyRetention() {
  return DeleteEventsBefore(util::NowMs() - options_.retention.count());
}

boost::system::error_code RocksStore::FireTimers() {
  // Nothing fires while writes fail: the round would be refused.
  if (health_.failed()) return {};
  for (;;) {
    const FireResult r = FireDueTimers(util::NowMs(), 1000);
    if (r.error || !r.more || background_.stopping()) {
      if (!r.error) CountPendingTimers();
      return r.error;
    }
  }
}

void RocksStore::CountPendingTimers() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_timer_count_) return;
  next_timer_count_ = now + options_.timer_count_interval;
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return;
  if (auto n = CountTimers(*db_, timers_cf_, kMaxCountedTimers)) {
    timers_pending_.store(*n, std::memory_order_relaxed);
  }
}

void RocksStore::NoteWriteFailure(const rocksdb::Status& status) {
  if (health_.NoteWriteFailure(status)) background_.Wake();
}

void RocksStore::TryToRecover() {
  if (!health_.DiskHasRoom()) return;
  rocksdb::Status s = !db_ ? rocksdb::Status::IOError("RocksDB is closed")
                      : manifest_failed_.load()
                          ? rocksdb::Status::IOError("the MANIFEST write failed: reopening")
                          : db_->Resume();
  // RocksDB does not resume after a failed write to its log (the log may end in a partial
  // record), nor while its own recovery is stuck (Resume answers Busy on and on): it is
  // reopened, which recovers the log up to that write.
  if (!s.ok() && (!db_ || manifest_failed_.load() ||
                  s.severity() >= rocksdb::Status::Severity::kFatalError ||
                  ++failed_resumes_ >= kResumesBeforeReopen)) {
    s = ReopenDb();
  }
  if (s.ok()) {
    failed_resumes_ = 0;
    rocksdb::WriteOptions wo;
    wo.sync = options_.fsync;
    std::string now;
    PutBigEndian64(now, static_cast<std::uint64_t>(util::NowMs()));
    s = db_->Put(wo, meta_, kWritableProbeKey, now);
  }
  if (s.ok()) {
    std::uint64_t background_errors = 0;
    db_->GetIntProperty(rocksdb::DB::Properties::kBackgroundErrors, &background_errors);
    background_errors_recovered_.store(background_errors);
    health_.Recovered();
  } else {
    health_.NoteRecoveryFailure(s);
  }
  // What was queued while ReopenDb held the commit (a Flush that finds it held leaves its
  // requests to the holder): committed now, or refused when RocksDB is still failing,
  // never left waiting for a recovery that a full disk may postpone for long.
  commits_.FlushOnce();
}

rocksdb::Status RocksStore::ReopenDb() {
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
      AttachStages();
      state_needs_replay_ = true;
      if (auto ec = ReplayState()) s = rocksdb::Status::IOError(ec.message());
    } else if (db_) {
      CloseDbAfterFailure();
    }
    if (!s.ok()) {
      health_.NoteRecoveryFailure("reopening RocksDB after a failed write: " + s.ToString());
    }
  }
  commits_.ReleaseCommit();
  return s;
}

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
