// Metrics: the process's Prometheus registry and its exposition at GET /metrics on the admin
// listener (docs/operations.md, "Metrics", lists every metric). main makes one and hands it
// to the subsystems, which add their families to registry() and keep the labelled children
// they increment; figures that already live elsewhere (the store's health) are read at
// scrape time through a registered prometheus::Collectable. The standard process_* metrics
// (CPU, memory, file descriptors, start time) are read from /proc at each scrape.
//
// Thread safety: all of it may be used from any thread. prometheus-cpp's counters, gauges
// and histograms are lock-free atomics; Family::Add takes the family's mutex, so hot paths
// add their children once and keep the references (they live as long as the registry).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "util/histogram.h"
#include "util/mutex.h"

namespace cartwatch::metrics {

// The Content-Type of Exposition(): Prometheus text format 0.0.4.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  ~Metrics();

  prometheus::Registry& registry() { return *registry_; }

  // Adds figures collected at each scrape; dropped once `collectable` expires, so its owner
  // unregisters by destroying it.
  void Register(std::weak_ptr<prometheus::Collectable> collectable);

  // Every family (the registry's, the registered collectables', process_*), serialized in
  // the Prometheus text format 0.0.4.
  std::string Exposition();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> process_;
  util::Mutex mu_;
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_ GUARDED_BY(mu_);
};

// One family of one unlabelled sample, for collectables.
prometheus::MetricFamily CounterFamily(std::string name, std::string help, double value);
prometheus::MetricFamily GaugeFamily(std::string name, std::string help, double value);
// A counter family of one sample per value of one label: {label: value -> count}.
prometheus::MetricFamily LabelledCounterFamily(
    std::string name, std::string help, const std::string& label,
    const std::vector<std::pair<std::string, double>>& samples);

// A histogram family of one sample from a util::Histogram snapshot (cumulative buckets, as
// Prometheus wants them).
prometheus::MetricFamily HistogramFamily(std::string name, std::string help,
                                         const util::Histogram::Snapshot& snapshot);

// A gauge family of one sample per value of one label.
prometheus::MetricFamily LabelledGaugeFamily(
    std::string name, std::string help, const std::string& label,
    const std::vector<std::pair<std::string, double>>& samples);

}  // namespace cartwatch::metrics
