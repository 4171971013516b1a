// What the store learns from RocksDB's own threads: a flush or compaction that failed (told
// to the store, which refuses writes until it recovers) and write stalls (logged: RocksDB
// slows or stops writes while flushes and compactions fall behind). Its callbacks run on
// RocksDB's threads; they only record and log.
#pragma once

#include <functional>
#include <string_view>

#include <rocksdb/listener.h>

namespace cartwatch::storage {

class RocksDbListener final : public rocksdb::EventListener {
 public:
  // `on_failure(status, manifest)`: `manifest` when the write that failed was RocksDB's
  // MANIFEST.
  explicit RocksDbListener(std::function<void(const rocksdb::Status&, bool)> on_failure)
      : on_failure_(std::move(on_failure)) {}

  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override;
  // One log line a change: a warning when writes are slowed ("delayed") or stopped, an info
  // line when they are normal again.
  void OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) override;

 private:
  std::function<void(const rocksdb::Status&, bool)> on_failure_;
};

// "normal", "delayed", "stopped".
std::string_view WriteStallName(rocksdb::WriteStallCondition condition);

}  // namespace cartwatch::storage
