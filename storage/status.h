// The one place where rocksdb::Status becomes an error_code (LevelDB's PosixError idea).
// Private to storage/.
#pragma once

#include <rocksdb/status.h>

#include "storage/store.h"

namespace cartwatch::storage {

inline boost::system::error_code FromStatus(const rocksdb::Status& s) {
  if (s.ok()) return {};
  if (s.IsIncomplete() || s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    return Errc::kOverloaded;
  }
  if (s.IsNoSpace()) return Errc::kNoSpace;
  if (s.IsIOError()) return Errc::kIoError;
  if (s.IsCorruption()) return Errc::kCorruption;
  if (s.IsInvalidArgument()) return Errc::kInvalidArgument;
  return Errc::kInternal;
}

}  // namespace cartwatch::storage
