#include "storage/write_health.h"


#include "storage/data_dir.h"
#include "util/log.h"

namespace cartwatch::storage {

bool WriteHealth::NoteWriteFailure(const rocksdb::Status& status) {
  if (!status.IsNoSpace() && !status.IsIOError() && !status.IsCorruption()) return false;
  const Errc errc = status.IsNoSpace() ? Errc::kNoSpace : Errc::kIoError;
  {
    util::MutexLock lock(mu_);
    failure_text_ = status.ToString();
  }
  if (!db_failed_.exchange(true)) MarkFailedWrite(options_.data_dir);
  if (failure_.exchange(static_cast<int>(errc)) != 0) return false;
  log::Error("storage write failed: writes are refused until it recovers")
      .Add("error", status.ToString())
      .Add("check_every_ms", static_cast<std::int64_t>(options_.recovery_interval.count()));
  return true;
}

boost::system::error_code WriteHealth::CheckDiskSpace(std::uint64_t written, bool* started) {
  *started = false;
  const std::uint64_t min_free = options_.min_free_bytes;
  if (min_free == 0) return {};
  const auto now = std::chrono::steady_clock::now();
  if (now >= next_space_check_ || written - bytes_at_space_check_ > min_free / 8 ||
      free_bytes_ < min_free) {
    free_bytes_ = FreeBytes();
    next_space_check_ = now + std::chrono::milliseconds(100);
    bytes_at_space_check_ = written;
  }
  if (free_bytes_ >= min_free) return {};
  NoteLowSpace(free_bytes_);
  low_space_.store(true);
  if (failure_.exchange(static_cast<int>(Errc::kNoSpace)) == 0) {
    log::Error("the data directory's disk is below storage.min_free_mb: writes are refused "
               "until there is room")
        .Add("free_bytes", free_bytes_)
        .Add("min_free_bytes", min_free);
    *started = true;
  }
  return Errc::kNoSpace;
}

bool WriteHealth::DiskHasRoom() {
  if (!low_space_.load()) return true;
  const std::uint64_t free = FreeBytes();
  if (free < options_.min_free_bytes) {
    NoteLowSpace(free);
    return false;
  }
  low_space_.store(false);
  return true;
}

void WriteHealth::NoteRecoveryFailure(const rocksdb::Status& s) {
  // "Busy" (RocksDB recovering by itself) says less than the failure it follows.
  if (s.IsIOError() || s.IsCorruption()) NoteRecoveryFailure(s.ToString());
}

void WriteHealth::NoteRecoveryFailure(std::string text) {
  util::MutexLock lock(mu_);
  failure_text_ = std::move(text);
}

void WriteHealth::Recovered() {
  db_failed_.store(false);
  ClearFailedWriteMark(options_.data_dir);
  failure_.store(0);
  log::Info("storage is writable again");
}

void WriteHealth::ReportWalDamage(std::string report) {
  log::Error(report);
  util::MutexLock lock(mu_);
  wal_recovery_ = std::move(report);
  ++wal_damage_recoveries_;
}

void WriteHealth::Describe(Store::Health& health) {
  util::MutexLock lock(mu_);
  if (failed()) health.write_failure = failure_text_;
  health.wal_recovery = wal_recovery_;
  health.wal_damage_recoveries = wal_damage_recoveries_;
}

std::uint64_t WriteHealth::FreeBytes() const {
  if (options_.faults && options_.faults->free_bytes() >= 0) {
    return static_cast<std::uint64_t>(options_.faults->free_bytes());
  }
  return storage::FreeBytes(options_.data_dir);
}

void WriteHealth::NoteLowSpace(std::uint64_t free) {
  util::MutexLock lock(mu_);
  failure_text_ = "the data directory's disk has " + std::to_string(free) +
                  " bytes free, below storage.min_free_bytes (" +
                  std::to_string(options_.min_free_bytes) + ")";
}

}  // namespace cartwatch::storage
