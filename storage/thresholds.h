// The sites' RFM quintiles and ABC classes (docs/profiles.md), computed from every
// customer record in RocksDB and stored in meta under ThresholdsKey, one scan for all
// sites. Run by the background thread after the committing thread has written every
// record (so the scan sees them as of now).
//
// Private to storage/. Any thread that holds the database open.
#pragma once

#include <boost/system/error_code.hpp>
#include <rocksdb/db.h>

#include "profiles/profiles.h"
#include "storage/background.h"
#include "util/time.h"

namespace cartwatch::storage {

// Stops early with Errc::kClosed once `background` is stopping.
boost::system::error_code WriteSiteThresholds(rocksdb::DB& db,
                                              rocksdb::ColumnFamilyHandle* customers,
                                              rocksdb::ColumnFamilyHandle* meta, util::EpochMs now,
                                              const profiles::Options& options,
                                              const Background& background);

}  // namespace cartwatch::storage
