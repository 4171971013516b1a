#include "collector/collector_metrics.h"

#include <algorithm>
#include <cstdio>

#include "util/utf8.h"

namespace cartwatch::collector {

namespace {

constexpr std::array<std::string_view, static_cast<std::size_t>(RouteLabel::kCount)> kRouteNames = {
    "batch",  "track",     "page",     "identify", "screen",  "alias",   "group",
    "pixel",  "tracker",   "events",   "customers", "visitors", "deliveries", "endpoints", "other",  "healthz",
    "readyz", "metrics",   "checkpoint"};

// Seconds: from a fast loopback answer to a commit stalled behind a slow disk.
const prometheus::Histogram::BucketBoundaries kDurationBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

std::string_view RouteLabelName(RouteLabel route) {
  return kRouteNames[static_cast<std::size_t>(route)];
}

CollectorMetrics::CollectorMetrics(prometheus::Registry& registry, const std::vector<Site>& sites)
    : requests_(prometheus::BuildCounter()
                    .Name("cartwatch_http_requests_total")
                    .Help("HTTP requests answered, by route and status code.")
                    .Register(registry)),
      received_bytes_(prometheus::BuildCounter()
                          .Name("cartwatch_received_bytes_total")
                          .Help("Request body bytes received on the public listener, as sent "
                                "(before gzip is inflated).")
                          .Register(registry)
                          .Add({})),
      ingest_duration_(prometheus::BuildHistogram()
                           .Name("cartwatch_ingest_duration_seconds")
                           .Help("Time from an ingest request's arrival to its answer, the "
                                 "commit to RocksDB's write-ahead log included.")
                           .Register(registry)
                           .Add({}, kDurationBuckets)),
      accepted_(prometheus::BuildCounter()
                    .Name("cartwatch_messages_accepted_total")
                    .Help("Messages acknowledged (durable, or duplicates of durable ones), by "
                          "site and type.")
                    .Register(registry)),
      duplicates_(prometheus::BuildCounter()
                      .Name("cartwatch_messages_duplicate_total")
                      .Help("Acknowledged messages not stored again: their messageId was seen "
                            "within the dedup window.")
                      .Register(registry)),
      rejected_(prometheus::BuildCounter()
                    .Name("cartwatch_messages_rejected_total")
                    .Help("Messages refused inside an ingest request, by site and reason "
                          "(docs/api.md).")
                    .Register(registry)) {
  for (const Site& site : sites) {
    auto counters = std::make_unique<SiteCounters>();
    counters->name = site.name;
    for (std::size_t t = 0; t < kMessageTypes.size(); ++t) {
      counters->accepted[t] =
          &accepted_.Add({{"site", site.name}, {"type", std::string(kMessageTypes[t])}});
    }
    counters->duplicates = &duplicates_.Add({{"site", site.name}});
    sites_.push_back(std::move(counters));
  }
}

void CollectorMetrics::Request(RouteLabel route, unsigned status) {
  if (status >= kStatuses) status = 599;  // Beast allows at most 999; we answer below 600
  std::atomic<prometheus::Counter*>& slot =
      by_status_[static_cast<std::size_t>(route)][status];
  prometheus::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Family::Add gives the same child for the same labels, so a race only stores it twice.
    counter = &requests_.Add(
        {{"route", std::string(RouteLabelName(route))}, {"code", std::to_string(status)}});
    slot.store(counter, std::memory_order_release);
  }
  counter->Increment();
}

void CollectorMetrics::IngestDuration(std::chrono::steady_clock::duration d) {
  ingest_duration_.Observe(std::chrono::duration<double>(d).count());
}

const CollectorMetrics::SiteCounters* CollectorMetrics::ForSite(std::string_view site) const {
  for (const auto& s : sites_) {
    if (s->name == site) return s.get();
  }
  return nullptr;
}

void CollectorMetrics::Rejected(const SiteCounters& site, std::string_view reason) {
  // Rare next to accepted messages: the family's own lookup is enough.
  rejected_.Add({{"site", site.name}, {"reason", std::string(reason)}}).Increment();
}

bool SampledLog::Admit(std::chrono::steady_clock::time_point now, std::uint64_t& suppressed) {
  util::MutexLock lock(mu_);
  if (now > refilled_at_) {
    if (refilled_at_ != std::chrono::steady_clock::time_point{}) {
      tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - refilled_at_).count() *
                                               per_second_);
    }
    refilled_at_ = now;
  }
  if (tokens_ < 1) {
    ++suppressed_;
    return false;
  }
  tokens_ -= 1;
  suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace cartwatch::collector
