#include "metrics/metrics.h"

#include <algorithm>
#include <limits>
#include <utility>

#include <prometheus/text_serializer.h>

#include "metrics/process.h"

namespace cartwatch::metrics {

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()), process_(MakeProcessCollector()) {}

Metrics::~Metrics() = default;

void Metrics::Register(std::weak_ptr<prometheus::Collectable> collectable) {
  util::MutexLock lock(mu_);
  collectables_.push_back(std::move(collectable));
}

std::string Metrics::Exposition() {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  auto append = [&families](const prometheus::Collectable& c) {
    for (auto& family : c.Collect()) families.push_back(std::move(family));
  };
  std::vector<std::shared_ptr<prometheus::Collectable>> alive;
  {
    util::MutexLock lock(mu_);
    std::erase_if(collectables_, [](const auto& weak) { return weak.expired(); });
    for (const auto& weak : collectables_) {
      if (auto c = weak.lock()) alive.push_back(std::move(c));
    }
  }
  // Collected outside the lock: a collectable may take locks of its own.
  for (const auto& c : alive) append(*c);
  append(*process_);
  return prometheus::TextSerializer().Serialize(families);
}

namespace {

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

}  // namespace

prometheus::MetricFamily CounterFamily(std::string name, std::string help, double value) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Counter, value);
}

prometheus::MetricFamily GaugeFamily(std::string name, std::string help, double value) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Gauge, value);
}

namespace {

// A family of `type` with one sample per value of one label.
prometheus::MetricFamily LabelledFamily(std::string name, std::string help,
                                        prometheus::MetricType type, const std::string& label,
                                        const std::vector<std::pair<std::string, double>>& samples) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  for (const auto& [value, v] : samples) {
    prometheus::ClientMetric metric;
    metric.label.push_back(prometheus::ClientMetric::Label{label, value});
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = v;
    } else {
      metric.gauge.value = v;
    }
    family.metric.push_back(std::move(metric));
  }
  return family;
}

}  // namespace

prometheus::MetricFamily LabelledCounterFamily(
    std::string name, std::string help, const std::string& label,
    const std::vector<std::pair<std::string, double>>& samples) {
  return LabelledFamily(std::move(name), std::move(help), prometheus::MetricType::Counter, label,
                        samples);
}

prometheus::MetricFamily HistogramFamily(std::string name, std::string help,
                                         const util::Histogram::Snapshot& snapshot) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Histogram;
  prometheus::ClientMetric metric;
  metric.histogram.sample_count = snapshot.count;
  metric.histogram.sample_sum = snapshot.sum;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < snapshot.counts.size(); ++i) {
    cumulative += snapshot.counts[i];
    prometheus::ClientMetric::Bucket bucket;
    bucket.cumulative_count = cumulative;
    bucket.upper_bound = i < snapshot.bounds.size() ? snapshot.bounds[i]
                                                    : std::numeric_limits<double>::infinity();
    metric.histogram.bucket.push_back(bucket);
  }
  family.metric.push_back(std::move(metric));
  return family;
}

prometheus::MetricFamily LabelledGaugeFamily(
    std::string name, std::string help, const std::string& label,
    const std::vector<std::pair<std::string, double>>& samples) {
  return LabelledFamily(std::move(name), std::move(help), prometheus::MetricType::Gauge, label,
                        samples);
}

}  // namespace cartwatch::metrics
