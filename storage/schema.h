// The store's RocksDB database: its column families and their options (memtables, table
// format, bloom filters, compression by level), and how it is opened. What the keys and
// values of each column family are: docs/storage.md, "Column families and keys"; which
// thread writes which: "Which thread writes what".
//
// Private to storage/. A Database is used by the store that opened it; RocksDB's own
// thread-safety applies to the DB and the handles.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>

#include "storage/store.h"

namespace cartwatch::storage {

inline constexpr char kEventsCf[] = "events";
inline constexpr char kDedupLogCf[] = "dedup_log";
inline constexpr char kMetaCf[] = "meta";
inline constexpr char kVisitorsCf[] = "visitors";
inline constexpr char kCustomersCf[] = "customers";
inline constexpr char kTimersCf[] = "timers";  // the rule engine's timers and marks
inline constexpr char kOutboxCf[] = "outbox";  // the rule engine's actions
inline constexpr char kDeliveriesCf[] = "deliveries";  // their webhook deliveries
// The random-key dedup index of earlier versions; dropped when found (docs/storage.md).
inline constexpr char kLegacyDedupCf[] = "dedup";

// An open database and its column families. The handles are closed before the DB
// (members are destroyed in reverse order).
struct Database {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles;
  rocksdb::ColumnFamilyHandle* events = nullptr;     // the event log
  rocksdb::ColumnFamilyHandle* dedup_log = nullptr;  // the dedup index's log
  rocksdb::ColumnFamilyHandle* meta = nullptr;       // counters, replay point, jobs, thresholds
  rocksdb::ColumnFamilyHandle* visitors = nullptr;
  rocksdb::ColumnFamilyHandle* customers = nullptr;
  rocksdb::ColumnFamilyHandle* timers = nullptr;  // storage/timers.h
  rocksdb::ColumnFamilyHandle* outbox = nullptr;  // storage/outbox.h
  rocksdb::ColumnFamilyHandle* deliveries = nullptr;  // storage/deliveries.h

  // Closes the handles and the DB without writing anything more. Idempotent.
  void Close();
};

// What the store adds to RocksDB's options when it opens the database.
struct OpenHooks {
  rocksdb::Env* env = nullptr;  // null: RocksDB's default (tests: a file system with faults)
  std::shared_ptr<rocksdb::Logger> info_log;          // RocksDB's LOG
  std::shared_ptr<rocksdb::EventListener> listener;  // told of background errors
};

// Opens (or creates) the database in options.data_dir with every column family, recovering
// its write-ahead log with `recovery`, and drops the dedup index of earlier versions when it
// is there. Also lowers the CPU priority of RocksDB's flush and compaction threads, so that
// they yield to the threads that answer requests. On failure `out` holds nothing open and
// *error_message names the directory and RocksDB's reason.
rocksdb::Status OpenDatabase(const StoreOptions& options, rocksdb::WALRecoveryMode recovery,
                             const OpenHooks& hooks, Database& out, std::string* error_message);

}  // namespace cartwatch::storage
