// WriteHealth: whether the store can write, and why not. A write RocksDB refused (on the
// committing thread or on RocksDB's own flush and compaction threads), or a disk with less
// than StoreOptions::min_free_bytes free, makes the store refuse writes with that error
// until the background thread's recovery (RocksStore::TryToRecover) proves the disk takes
// writes again. What it says is what Store::GetHealth and /readyz say.
//
// It knows no database, only RocksDB's statuses: reopening and resuming RocksDB are the
// store's. Private to storage/. Thread safety: as each method says.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/system/error_code.hpp>
#include <rocksdb/status.h>

#include "storage/fault_injection.h"
#include "storage/store.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace cartwatch::storage {

class WriteHealth {
 public:
  explicit WriteHealth(const StoreOptions& options) : options_(options) {}

  // The Errc of the failure that refuses writes; an empty code while writes succeed.
  // Any thread.
  boost::system::error_code failure() const {
    const int failure = failure_.load();
    return failure == 0 ? boost::system::error_code() : make_error_code(static_cast<Errc>(failure));
  }
  bool failed() const { return failure_.load() != 0; }
  // What a request gets while RocksDB is closed for a reopen that has not succeeded yet.
  boost::system::error_code DbUnavailable() const {
    return failed() ? failure() : make_error_code(Errc::kIoError);
  }
  // Whether a RocksDB write failed since the last recovery (not just a low disk): RocksDB
  // may then refuse to write or sync its log again. Any thread.
  bool db_failed() const { return db_failed_.load(); }
  // The failure came from CheckDiskSpace (the disk is low), not from RocksDB. Any thread.
  bool low_space() const { return low_space_.load(); }

  // Records a failed RocksDB write (any thread): statuses other than I/O errors, a full
  // disk and corruption are not write failures and are ignored. Logged once per failure,
  // not once per refused write. true when this starts a failure (recovery is to begin).
  bool NoteWriteFailure(const rocksdb::Status& status);

  // Errc::kNoSpace while the disk has less than min_free_bytes free, with `written` bytes
  // committed so far (committing thread only). statvfs is asked at most every 100 ms, or
  // sooner once an eighth of the margin may have been written since, and at every commit
  // while the disk is low. *started: this call started a failure.
  boost::system::error_code CheckDiskSpace(std::uint64_t written, bool* started);

  // Recovery, on the background thread. First: false while the disk is still low (nothing
  // else to try); true when the disk has room again or never was the problem.
  bool DiskHasRoom();
  // A recovery step failed with `s`: kept as the reason when it says more than "Busy".
  void NoteRecoveryFailure(const rocksdb::Status& s);
  void NoteRecoveryFailure(std::string text);
  // The store is writable again.
  void Recovered();

  // After an open that recovered the write-ahead log only up to damage: said at error
  // level, and on /readyz from now on. Any thread.
  void ReportWalDamage(std::string report);

  // Fills what Store::Health takes from here (all but `writable`). Any thread.
  void Describe(Store::Health& health);

  // The data directory's disk's free bytes now (statvfs), UINT64_MAX when it cannot be
  // asked. Any thread.
  std::uint64_t FreeBytes() const;

 private:
  void NoteLowSpace(std::uint64_t free);

  const StoreOptions& options_;
  std::atomic<int> failure_{0};  // an Errc; 0 while writes succeed
  std::atomic<bool> low_space_{false};
  std::atomic<bool> db_failed_{false};
  // CheckDiskSpace's last reading: committing thread only.
  std::uint64_t free_bytes_ = UINT64_MAX;
  std::chrono::steady_clock::time_point next_space_check_{};
  std::uint64_t bytes_at_space_check_ = 0;

  util::Mutex mu_;
  std::string failure_text_ GUARDED_BY(mu_);
  std::string wal_recovery_ GUARDED_BY(mu_);
  std::uint64_t wal_damage_recoveries_ GUARDED_BY(mu_) = 0;
};

}  // namespace cartwatch::storage
