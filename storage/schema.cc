#include "storage/schema.h"

#include <algorithm>

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

namespace cartwatch::storage {

rocksdb::Status OpenDatabase(const StoreOptions& options, rocksdb::WALRecoveryMode recovery,
                             const OpenHooks& hooks, Database& out, std::string* error_message) {
  out = Database();
  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);

  // Flushes and compactions yield to the I/O threads that commit and answer requests: on
  // a busy core a background job otherwise takes whole scheduler slices (milliseconds) and
  // every request waiting meanwhile sees it in its latency. When they fall far behind,
  // RocksDB's write slowdown paces the committers and the background gets the CPU.
  rocksdb::Env* env = rocksdb::Env::Default();
  env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow)
      .PermitUncheckedError();
  env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::HIGH, rocksdb::CpuPriority::kLow)
      .PermitUncheckedError();

  rocksdb::DBOptions db_options;
  if (hooks.env != nullptr) db_options.env = hooks.env;
  if (hooks.listener) db_options.listeners.push_back(hooks.listener);
  db_options.create_if_missing = true;
  db_options.wal_recovery_mode = recovery;
  db_options.info_log = hooks.info_log;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = options.max_background_jobs;
  db_options.bytes_per_sync = 1 << 20;
  // With several column families a flush first syncs the closed log: written back a
  // megabyte at a time as it grows, that sync has little left to do. Synced whole (32 MiB),
  // it stopped every request for 9-17 ms at each memtable switch (docs/storage.md).
  db_options.wal_bytes_per_sync = 1 << 20;
  // Commits are serialised (one committing thread at a time).
  db_options.allow_concurrent_memtable_write = false;
  // The event log is the only big writer; keep total WAL bounded so restarts are quick.
  db_options.max_total_wal_size = 4 * options.write_buffer_bytes;

  auto table_options = [&](bool bloom) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    if (bloom) {
      t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      t.whole_key_filtering = true;
    }
    // Debian's RocksDB is built portable: its CRC32c is the slow software one, so SST
    // blocks are checksummed with XXH3 instead (the WAL always uses CRC32c).
    t.checksum = rocksdb::kXXH3;
    return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(t));
  };
  auto supported = rocksdb::GetSupportedCompressions();
  auto has = [&](rocksdb::CompressionType c) {
    return std::find(supported.begin(), supported.end(), c) != supported.end();
  };
  rocksdb::CompressionType compression =
      has(rocksdb::kLZ4Compression)      ? rocksdb::kLZ4Compression
      : has(rocksdb::kSnappyCompression) ? rocksdb::kSnappyCompression
                                         : rocksdb::kNoCompression;

  // Flushes and the first compactions write uncompressed: compressing every byte on its
  // way into L0 and L1 cost the flush thread more than anything else it did.
  std::vector<rocksdb::CompressionType> per_level = {rocksdb::kNoCompression,
                                                     rocksdb::kNoCompression};
  per_level.resize(7, compression);

  rocksdb::ColumnFamilyOptions events;
  // storage.compress_event_log = false writes every level uncompressed.
  events.compression_per_level =
      options.compress_event_log ? per_level : std::vector<rocksdb::CompressionType>{rocksdb::kNoCompression};
  events.write_buffer_size = options.write_buffer_bytes;
  // Room for memtables waiting to be flushed, so a slow flush does not stop writes.
  events.max_write_buffer_number = 4;
  events.table_factory = table_options(false);

  // Appended in commit order and read back only at start-up and when ids expire.
  rocksdb::ColumnFamilyOptions dedup_log;
  dedup_log.write_buffer_size = options.write_buffer_bytes / 4;
  dedup_log.max_write_buffer_number = 4;
  dedup_log.compression_per_level = per_level;
  dedup_log.table_factory = table_options(false);

  rocksdb::ColumnFamilyOptions meta;
  meta.table_factory = table_options(false);

  // Point lookups by id, many of them misses (a new visitor): bloom filters answer those
  // without reading a block.
  rocksdb::ColumnFamilyOptions people;
  people.compression_per_level = per_level;
  people.write_buffer_size = options.write_buffer_bytes;
  people.max_write_buffer_number = 4;
  people.table_factory = table_options(true);
  // A new visitor's first message looks up a key that is nowhere: the memtable bloom
  // filter answers that without searching the memtables' skip lists.
  people.memtable_prefix_bloom_size_ratio = 0.05;
  people.memtable_whole_key_filtering = true;

  // Timers are written once and deleted once, in due order; the outbox is appended; a
  // delivery record is rewritten a few times.
  rocksdb::ColumnFamilyOptions rules;
  rules.compression_per_level = per_level;
  rules.table_factory = table_options(false);

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, meta},
      {kEventsCf, events},
      {kDedupLogCf, dedup_log},
      {kMetaCf, meta},
      {kVisitorsCf, people},
      {kCustomersCf, people},
      {kTimersCf, rules},
      {kOutboxCf, rules},
      {kDeliveriesCf, rules},
  };
  std::vector<std::string> existing;
  bool legacy_dedup = false;
  if (rocksdb::DB::ListColumnFamilies(db_options, options.data_dir, &existing).ok()) {
    legacy_dedup = std::find(existing.begin(), existing.end(), kLegacyDedupCf) != existing.end();
    if (legacy_dedup) cfs.push_back({kLegacyDedupCf, rocksdb::ColumnFamilyOptions()});
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.data_dir, cfs, &handles, &raw);
  if (!s.ok()) {
    *error_message = "cannot open RocksDB in \"" + options.data_dir + "\": " + s.ToString();
    return s;
  }
  out.db.reset(raw);
  for (auto* h : handles) out.handles.emplace_back(h);
  out.events = handles[1];
  out.dedup_log = handles[2];
  out.meta = handles[3];
  out.visitors = handles[4];
  out.customers = handles[5];
  out.timers = handles[6];
  out.outbox = handles[7];
  out.deliveries = handles[8];
  if (legacy_dedup) {
    s = out.db->DropColumnFamily(handles.back());
    if (!s.ok()) {
      *error_message = "cannot drop the old dedup index in \"" + options.data_dir +
                       "\": " + s.ToString();
      return s;
    }
    out.handles.pop_back();
  }
  return s;
}

void Database::Close() {
  handles.clear();
  if (db) db->Close().PermitUncheckedError();
  db.reset();
  events = dedup_log = meta = visitors = customers = timers = outbox = deliveries = nullptr;
}

}  // namespace cartwatch::storage
