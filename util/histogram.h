// A histogram with fixed bucket bounds whose observations are lock-free (relaxed atomics),
// for figures kept where no metrics registry is (the store's commit rounds) and read at
// scrape time (docs/operations.md). Observe may be called from any thread; Read returns a
// consistent-enough copy (each count read once, not all at one instant).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace cartwatch::util {

class Histogram {
 public:
  // `bounds`: the upper bounds of the buckets, increasing (the last bucket, +Inf, is added).
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
  }

  void Observe(double value) {
    std::size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    // The sum as fixed point (micro-units), so that it can be an integer atomic.
    sum_micros_.fetch_add(static_cast<std::uint64_t>(value * 1e6 + 0.5), std::memory_order_relaxed);
  }

  struct Snapshot {
    std::vector<double> bounds;         // upper bounds, without +Inf
    std::vector<std::uint64_t> counts;  // per bucket (not cumulative), the last is +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot Read() const {
    Snapshot s{bounds_, std::vector<std::uint64_t>(bounds_.size() + 1), 0, 0};
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      s.counts[i] = counts_[i].load(std::memory_order_relaxed);
      s.count += s.counts[i];
    }
    s.sum = static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
    return s;
  }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> sum_micros_{0};
};

}  // namespace cartwatch::util
