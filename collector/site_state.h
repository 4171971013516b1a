// Router::SiteState: a configured site as the router's handlers see it (router.cc,
// query_api.cc). Private to collector/. Thread safety: the token bucket is guarded by `mu`;
// the rest is immutable once the router is built.
#pragma once

#include <chrono>

#include "collector/collector_metrics.h"
#include "collector/options.h"
#include "collector/router.h"
#include "util/mutex.h"

namespace cartwatch::collector {

struct Router::SiteState {
  Site site;
  const CollectorMetrics::SiteCounters* counters = nullptr;  // null without metrics
  // Token bucket of Site::rate_limit.
  mutable util::Mutex mu;
  mutable double tokens GUARDED_BY(mu) = 0;
  mutable std::chrono::steady_clock::time_point refilled_at GUARDED_BY(mu);
};

}  // namespace cartwatch::collector
