// MemoryTrimmer: hands the memory malloc holds free back to the kernel, every `interval`.
//
// glibc's malloc keeps what a thread frees in that thread's arena, and returns pages to the
// kernel only from the top of an arena: the middle of a fragmented arena stays resident.
// Cartwatch frees large amounts at once (a flushed RocksDB memtable, records written and
// decoded again, a round's WriteBatch), so without this the resident size settles near the
// sum of the peaks of each part rather than their sum now: in bench/rss.sh, 964 MiB fell to
// 640 MiB with one malloc_trim (bench/round2.md). malloc_trim(0) releases every free page of
// every arena (madvise MADV_DONTNEED), locking one arena at a time.
//
// Thread safety: the constructor starts a thread of its own; the destructor stops it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace cartwatch::util {

class MemoryTrimmer {
 public:
  // interval 0: no thread, nothing trimmed.
  explicit MemoryTrimmer(std::chrono::milliseconds interval);
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;
  ~MemoryTrimmer();

  // Trims so far.
  std::uint64_t trims() const { return trims_.load(std::memory_order_relaxed); }

 private:
  void Loop();

  const std::chrono::milliseconds interval_;
  Mutex mu_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::atomic<std::uint64_t> trims_{0};
  std::thread thread_;
};

// Hands the free memory back now (malloc_trim(0)); true when some was released.
bool TrimMemory();

}  // namespace cartwatch::util
