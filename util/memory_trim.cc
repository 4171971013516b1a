#include "util/memory_trim.h"

#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdio>

namespace cartwatch::util {

MemoryTrimmer::MemoryTrimmer(std::chrono::milliseconds interval) : interval_(interval) {
  if (interval_.count() <= 0) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "cartwatch-trim");
    Loop();
  });
}

MemoryTrimmer::~MemoryTrimmer() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void MemoryTrimmer::Loop() {
  MutexLock lock(mu_);
  auto next = std::chrono::steady_clock::now() + interval_;
  while (!stopping_) {
    if (std::chrono::steady_clock::now() < next) {
      wake_.WaitUntil(mu_, next);
      continue;
    }
    lock.Unlock();
    TrimMemory();
    trims_.fetch_add(1, std::memory_order_relaxed);
    lock.Lock();
    next = std::chrono::steady_clock::now() + interval_;
  }
}

bool TrimMemory() { return malloc_trim(0) != 0; }

std::uint64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace cartwatch::util
