#include "util/memory_trim.h"

#include <malloc.h>
#include <pthread.h>

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

}  // namespace cartwatch::util
