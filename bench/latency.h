// The load generator's latency records (bench/loadgen.cc): an HDR-style histogram of the
// whole window, and the 100-ms slices that --timeline writes. Header-only; one per thread,
// merged after the run.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace cartwatch::bench {

// Latency histogram: log-linear buckets in microseconds, HDR style. Values below 128 us
// have their own bucket; above, each power of two is split in 64 buckets, so a bucket is
// at most 1/64 (1.6%) wide and its midpoint within 0.8% of any value in it. 1 us to 60 s
// in 1,331 counters (10 KiB). Values above 60 s are counted in over_60s() and land in the
// last bucket (a quantile falling there reads as about 60 s, a lower bound); max() is exact.

constexpr int kSubBits = 6;                        // 64 buckets per power of two
constexpr std::uint64_t kLinear = 2u << kSubBits;  // 0..127 us: exact
constexpr std::uint64_t kMaxUs = 60'000'000;

constexpr std::size_t BucketIndex(std::uint64_t v) {
  if (v < kLinear) return static_cast<std::size_t>(v);
  const int shift = (63 - __builtin_clzll(v)) - kSubBits;  // >= 1
  return (static_cast<std::size_t>(shift) << kSubBits) + static_cast<std::size_t>(v >> shift);
}

class Histogram {
 public:
  void Record(std::uint64_t us) {
    us = std::max<std::uint64_t>(us, 1);
    max_ = std::max(max_, us);
    if (us > kMaxUs) ++over_;
    ++counts_[BucketIndex(std::min(us, kMaxUs))];
    ++total_;
  }

  void Merge(const Histogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    over_ += other.over_;
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t total() const { return total_; }
  std::uint64_t max() const { return max_; }
  std::uint64_t over_60s() const { return over_; }

  // The value at quantile q (0..1): the midpoint of the bucket holding the
  // ceil(q * total)-th smallest value (never above the maximum seen). 0 when empty.
  std::uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(Midpoint(i), max_);
    }
    return max_;
  }

 private:
  static std::uint64_t Midpoint(std::size_t i) {
    if (i < kLinear) return i;
    const std::size_t shift = (i >> kSubBits) - 1;
    const std::uint64_t low = static_cast<std::uint64_t>(i - (shift << kSubBits)) << shift;
    return low + ((std::uint64_t{1} << shift) - 1) / 2;
  }

  static constexpr std::size_t kBuckets = BucketIndex(kMaxUs) + 1;
  static_assert(kBuckets == 1331);
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t over_ = 0;  // values above kMaxUs (recorded in the last bucket)
  std::uint64_t max_ = 0;   // not clamped
};

// --timeline: one 100-ms slice of the window.
constexpr std::chrono::milliseconds kSlice{100};

struct Slice {
  std::uint64_t answers = 0;
  std::uint64_t over_1ms = 0;
  std::uint64_t over_10ms = 0;
  std::uint64_t max_us = 0;

  void Record(std::uint64_t us) {
    ++answers;
    over_1ms += us > 1'000 ? 1 : 0;
    over_10ms += us > 10'000 ? 1 : 0;
    max_us = std::max(max_us, us);
  }
  void Merge(const Slice& o) {
    answers += o.answers;
    over_1ms += o.over_1ms;
    over_10ms += o.over_10ms;
    max_us = std::max(max_us, o.max_us);
  }
};

}  // namespace cartwatch::bench
