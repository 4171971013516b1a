#include "storage/rocksdb_listener.h"

#include "util/log.h"

namespace cartwatch::storage {

void RocksDbListener::OnBackgroundError(rocksdb::BackgroundErrorReason reason,
                                        rocksdb::Status* error) {
  if (error == nullptr || error->ok() || error->IsShutdownInProgress()) return;
  const bool manifest = reason == rocksdb::BackgroundErrorReason::kManifestWrite ||
                        reason == rocksdb::BackgroundErrorReason::kManifestWriteNoWAL;
  on_failure_(*error, manifest);
}

void RocksDbListener::OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) {
  const rocksdb::WriteStallCondition now = info.condition.cur;
  if (now == info.condition.prev) return;
  if (now == rocksdb::WriteStallCondition::kNormal) {
    log::Info("RocksDB writes are no longer slowed down")
        .Add("cf", info.cf_name)
        .Add("was", WriteStallName(info.condition.prev));
    return;
  }
  log::Warn(now == rocksdb::WriteStallCondition::kStopped
                ? "RocksDB stopped writes: flushes or compactions are behind"
                : "RocksDB slows writes down: flushes or compactions are behind")
      .Add("cf", info.cf_name)
      .Add("condition", WriteStallName(now))
      .Add("was", WriteStallName(info.condition.prev));
}

std::string_view WriteStallName(rocksdb::WriteStallCondition condition) {
  switch (condition) {
    case rocksdb::WriteStallCondition::kNormal: return "normal";
    case rocksdb::WriteStallCondition::kDelayed: return "delayed";
    case rocksdb::WriteStallCondition::kStopped: return "stopped";
  }
  return "unknown";
}

}  // namespace cartwatch::storage
