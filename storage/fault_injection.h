// FaultInjection: makes the files RocksDB writes fail on purpose, as a full disk does, so
// that tests prove what the store does then (LevelDB's SpecialEnv, RocksDB's own
// fault-injection file systems) instead of waiting for a disk to fill.
//
// Tests only: set StoreOptions::faults before Store::Open. Thread safety: every method may be
// called from any thread while the store runs.
#pragma once

#include <atomic>
#include <cstdint>

namespace cartwatch::storage {

class FaultInjection {
 public:
  // While full, creating a file and every append, flush and sync of a file RocksDB writes
  // (WAL, SST files, MANIFEST) fails with ENOSPC ("No space left on device"); an append
  // writes the first half of its data first, as a real write does when the disk runs out
  // in the middle. Reads are not touched.
  void SetDiskFull(bool full) { disk_full_.store(full); }
  bool disk_full() const { return disk_full_.load(); }

  // While failing, every sync of a file RocksDB writes fails with an I/O error (EIO), as a
  // failing disk does; appends still reach the page cache. With StoreOptions::fsync each
  // commit syncs the write-ahead log, so each commit fails.
  void SetSyncFailing(bool failing) { sync_failing_.store(failing); }
  bool sync_failing() const { return sync_failing_.load(); }

  // While failing, creating (or reopening, or reusing) a file RocksDB writes fails with an
  // I/O error (EIO), as a failing disk or a lost mount does; files already open take
  // appends and syncs. The write-ahead log's next file, a flush's table file and a new
  // MANIFEST all fail to be created, so a memtable switch fails on the write path or on
  // RocksDB's flush thread.
  void SetCreateFailing(bool failing) { create_failing_.store(failing); }
  bool create_failing() const { return create_failing_.load(); }

  // While set (>= 0), the store sees this many bytes free on the data directory's disk
  // instead of what statvfs says (StoreOptions::min_free_bytes).
  void SetFreeBytes(std::int64_t bytes) { free_bytes_.store(bytes); }
  std::int64_t free_bytes() const { return free_bytes_.load(); }

  // Writes refused so far.
  std::uint64_t refused_writes() const { return refused_.load(); }
  void CountRefused() { refused_.fetch_add(1); }

 private:
  std::atomic<bool> disk_full_{false};
  std::atomic<bool> sync_failing_{false};
  std::atomic<bool> create_failing_{false};
  std::atomic<std::int64_t> free_bytes_{-1};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace cartwatch::storage
