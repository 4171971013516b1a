// What the collector counts for Prometheus (docs/operations.md, "Metrics"): requests by
// route and status code, request body bytes, ingest latency, and messages accepted by site
// and type, stored again (duplicates) and rejected by site and reason. Also the sampled log
// of rejections. Private to collector/.
//
// Thread safety: every member may be called from any thread. The children of the hot
// families are made once (at construction, or on first use through an atomic slot) and then
// incremented lock-free.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "collector/ingest.h"
#include "collector/options.h"
#include "util/log.h"
#include "util/mutex.h"

namespace cartwatch::collector {

// The `route` label: a bounded name for what a request asked for (the short forms of
// analytics.js count as their long ones; every unknown path is "other").
enum class RouteLabel : std::uint8_t {
  kBatch, kTrack, kPage, kIdentify, kScreen, kAlias, kGroup, kPixel, kTracker, kEvents,
  kCustomers, kVisitors, kDeliveries, kEndpoints, kOther, kHealthz, kReadyz, kMetrics, kCheckpoint, kCount
};
std::string_view RouteLabelName(RouteLabel route);

class CollectorMetrics {
 public:
  // The families of one site, made at construction.
  struct SiteCounters {
    std::string name;
    std::array<prometheus::Counter*, kMessageTypes.size()> accepted{};  // by type
    prometheus::Counter* duplicates = nullptr;
  };

  // Adds the collector's families to `registry` (which must outlive this), with the
  // children of each of `sites`.
  CollectorMetrics(prometheus::Registry& registry, const std::vector<Site>& sites);

  void Request(RouteLabel route, unsigned status);
  void ReceivedBytes(std::size_t bytes) { received_bytes_.Increment(static_cast<double>(bytes)); }
  // From the arrival of an ingest request to its answer (the commit included).
  void IngestDuration(std::chrono::steady_clock::duration d);
  // nullptr for a site that is not configured.
  const SiteCounters* ForSite(std::string_view site) const;
  // A message of an ingest request refused for `reason` (a snake_case code of docs/api.md).
  void Rejected(const SiteCounters& site, std::string_view reason);

 private:
  static constexpr std::size_t kStatuses = 600;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Counter& received_bytes_;
  prometheus::Histogram& ingest_duration_;
  prometheus::Family<prometheus::Counter>& accepted_;
  prometheus::Family<prometheus::Counter>& duplicates_;
  prometheus::Family<prometheus::Counter>& rejected_;
  std::vector<std::unique_ptr<SiteCounters>> sites_;
  // requests_'s child of each (route, status), made on first use.
  std::array<std::array<std::atomic<prometheus::Counter*>, kStatuses>,
             static_cast<std::size_t>(RouteLabel::kCount)>
      by_status_{};
};

// A log of refusals that cannot flood stderr: lines pass at up to `per_second` (with bursts
// of `burst`); the rest are counted and the count is reported on the next line that passes
// (`suppressed=N`). Lines go to util/log.h (docs/operations.md, "Logs").
class SampledLog {
 public:
  SampledLog(double per_second, double burst) : per_second_(per_second), burst_(burst), tokens_(burst) {}
  // Writes the line `msg` at `level`, with the fields `add_fields(log::Line&)` adds, when
  // the level is logged and the rate allows at `now`; otherwise add_fields is not called.
  template <typename AddFields>
  void Write(log::Level level, std::string_view msg, AddFields&& add_fields,
             std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    std::uint64_t suppressed = 0;
    if (!log::Enabled(level) || !Admit(now, suppressed)) return;
    log::Line line(level, msg);
    add_fields(line);
    if (suppressed > 0) line.Add("suppressed", suppressed);
  }

 private:
  // Takes a token; false when there is none (the line is counted as suppressed). On true,
  // `suppressed` is how many lines were dropped since the last one written.
  bool Admit(std::chrono::steady_clock::time_point now, std::uint64_t& suppressed) EXCLUDES(mu_);

  const double per_second_, burst_;
  util::Mutex mu_;
  double tokens_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point refilled_at_ GUARDED_BY(mu_){};  // none yet: full
  std::uint64_t suppressed_ GUARDED_BY(mu_) = 0;
};

}  // namespace cartwatch::collector
