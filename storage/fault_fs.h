// The RocksDB file system behind FaultInjection. Private to storage/.
#pragma once

#include <memory>

#include <rocksdb/env.h>

#include "storage/fault_injection.h"

namespace cartwatch::storage {

// An Env over the default file system whose writes fail as `faults` says.
std::unique_ptr<rocksdb::Env> NewFaultInjectionEnv(std::shared_ptr<FaultInjection> faults);

}  // namespace cartwatch::storage
