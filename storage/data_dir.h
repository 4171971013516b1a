// The data directory as files, apart from what RocksDB does with them: free space, the
// write-ahead log files, the marker a failed write leaves, and the report of a log that was
// recovered only up to damage. Pure functions over the file system.
//
// Private to storage/. Thread safety: every function may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace cartwatch::storage {

// Bytes free for an unprivileged writer on the disk of `dir`; UINT64_MAX when unknown.
std::uint64_t FreeBytes(const std::string& dir);

// fsyncs every write-ahead log file (*.log) of `dir`, so that what was written to them
// reaches the disk even when RocksDB cannot sync them itself (after a failed write).
void SyncWalFiles(const std::string& dir);

struct WalFiles {
  std::int64_t newest_mtime_ms = 0;  // the newest modification time of the *.log files
  std::uint64_t bytes = 0;           // their total size
};
WalFiles WalFilesOf(const std::string& dir);

// The file in `dir` that says a RocksDB write failed since the log was last recovered: the
// log may end in a partial, unacknowledged write, which the next open recovers up to
// without calling it damage. Marking works on a full disk too (an empty file takes no data
// blocks); errors are ignored.
void MarkFailedWrite(const std::string& dir);
bool HasFailedWriteMark(const std::string& dir);
void ClearFailedWriteMark(const std::string& dir);

// The sentence said on stderr and /readyz after an open that recovered the write-ahead log
// only up to `damage` (RocksDB's words): the last message kept is known exactly (its event
// id `last_event_id` is its receive time in microseconds), the last one written before the
// stop only from the log files.
std::string WalDamageReport(const std::string& damage, std::uint64_t last_event_id,
                            const WalFiles& before_open);

}  // namespace cartwatch::storage
