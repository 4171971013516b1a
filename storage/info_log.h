// InfoLog: RocksDB's own log (the LOG file of the data directory) written with plain stdio.
//
// RocksDB's default logger writes through its WritableFileWriter, which Debian's build of
// RocksDB 7.8 compiles with assertions on: once one write of the LOG failed (a full disk),
// the next log line aborts the process. This logger drops lines it cannot write instead.
//
// Private to storage/. Thread safety: Logv may be called from any thread.
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include <rocksdb/env.h>

namespace cartwatch::storage {

class InfoLog final : public rocksdb::Logger {
 public:
  // Opens `dir`/LOG, keeping the previous one as LOG.old. Null when it cannot be opened
  // (RocksDB then logs nowhere).
  static std::shared_ptr<InfoLog> Open(const std::string& dir);
  ~InfoLog() override;

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  void Flush() override;

 private:
  explicit InfoLog(std::FILE* file) : file_(file) {}
  rocksdb::Status CloseImpl() override;

  std::mutex mu_;
  std::FILE* file_;  // guarded by mu_; null once closed
};

}  // namespace cartwatch::storage
