// The store's figures as Prometheus metrics, read at each scrape (docs/operations.md): its
// health, the rule engine's counts, RocksDB's properties, the commit queue and rounds.
//
// Thread safety: Collect may be called from any thread (the store's getters are).
#pragma once

#include <memory>

#include <prometheus/collectable.h>

#include "storage/store.h"

namespace cartwatch::collector {

// A collectable reading `store`, for metrics::Metrics::Register; `store` outlives it.
std::shared_ptr<prometheus::Collectable> MakeStoreFigures(storage::Store& store);

}  // namespace cartwatch::collector
