// RocksStore::GetStorageFigures (storage/rocks_store.h): RocksDB's properties by column
// family, the commit queue, the in-memory indexes and the commit rounds, for /metrics.
#include "storage/rocks_store.h"

#include <cstdlib>
#include <map>
#include <tuple>

namespace cartwatch::storage {

Store::StorageFigures RocksStore::GetStorageFigures() {
  StorageFigures out;
  std::tie(out.queued_messages, out.queued_bytes) = commits_.queued();
  out.queued_messages_limit = options_.max_queued_messages;
  out.min_free_bytes = options_.min_free_bytes;
  if (const std::uint64_t free = health_.FreeBytes(); free != UINT64_MAX) out.disk_free_bytes = free;
  out.dedup_ids = dedup_ids_.load(std::memory_order_relaxed);
  out.records_cached = records_cached_.load(std::memory_order_relaxed);
  out.records_cached_bytes = records_cached_bytes_.load(std::memory_order_relaxed);
  out.records_unwritten = records_unwritten_.load(std::memory_order_relaxed);
  out.commit_seconds = commit_seconds_.Read();
  out.commit_messages = commit_messages_.Read();
  util::ReaderLock db_lock(db_mu_);
  if (!db_) return out;
  auto number = [&](rocksdb::ColumnFamilyHandle* cf, const std::string& property) {
    std::uint64_t value = 0;
    if (cf) {
      db_->GetIntProperty(cf, property, &value);
    } else {
      db_->GetIntProperty(property, &value);
    }
    return value;
  };
  using P = rocksdb::DB::Properties;
  for (const auto& handle : handles_) {
    rocksdb::ColumnFamilyHandle* cf = handle.get();
    StorageFigures::Family family{.name = cf->GetName(),
                                  .memtable_bytes = number(cf, P::kCurSizeAllMemTables),
                                  .sst_bytes = number(cf, P::kLiveSstFilesSize),
                                  .pending_compaction_bytes = number(cf, P::kEstimatePendingCompactionBytes),
                                  .live_data_bytes = number(cf, P::kEstimateLiveDataSize),
                                  .estimated_keys = number(cf, P::kEstimateNumKeys)};
    std::map<std::string, std::string> stats;
    if (db_->GetMapProperty(cf, P::kCFStats, &stats)) {
      auto read = [&](const char* key) -> std::uint64_t {
        auto it = stats.find(key);
        return it == stats.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
      };
      family.write_stops = read("io_stalls.total_stop");
      family.write_slowdowns = read("io_stalls.total_slowdown");
    }
    out.families.push_back(std::move(family));
  }
  out.block_cache_bytes = number(nullptr, P::kBlockCacheUsage);
  out.write_stopped = number(nullptr, P::kIsWriteStopped) != 0;
  out.delayed_write_rate = number(nullptr, P::kActualDelayedWriteRate);
  rocksdb::VectorLogPtr wal_files;
  if (db_->GetSortedWalFiles(wal_files).ok()) {
    for (const auto& f : wal_files) out.wal_bytes += f->SizeFileBytes();
  }
  return out;
}

}  // namespace cartwatch::storage
