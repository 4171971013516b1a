#include "storage/background.h"
#include "util/log.h"

#include <algorithm>

namespace cartwatch::storage {

void Background::Start() { thread_ = std::thread([this] { Loop(); }); }

void Background::Stop() {
  {
    util::MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void Background::RequestPurge() {
  {
    util::MutexLock lock(mu_);
    purge_requested_ = true;
  }
  wake_.SignalAll();
}

void Background::Wake() {
  {
    util::MutexLock lock(mu_);
    woken_ = true;
  }
  wake_.SignalAll();
}

void Background::Loop() {
  using Clock = std::chrono::steady_clock;
  util::MutexLock lock(mu_);
  // Thresholds are stored, so a restart needs no new ones at once; a first computation a
  // minute after opening (or sooner, with a shorter interval) serves a new database.
  Clock::time_point next_thresholds =
      Clock::now() + std::min<Clock::duration>(intervals_.thresholds, std::chrono::minutes(1));
  Clock::time_point next_purge = Clock::now();  // jobs left by an earlier run, at once
  const bool retention = intervals_.retention.count() > 0;
  Clock::time_point next_retention = retention ? Clock::now() : Clock::time_point::max();
  const bool timers = intervals_.timers.count() > 0;
  Clock::time_point next_timers = timers ? Clock::now() : Clock::time_point::max();
  while (!stopping_) {
    woken_ = false;
    const Clock::time_point now = Clock::now();
    if (purge_requested_ || now >= next_purge) {
      purge_requested_ = false;
      next_purge = Clock::time_point::max();
      lock.Unlock();
      auto ec = jobs_.PurgeErasedEvents();
      lock.Lock();
      if (ec && !stopping_) {
        log::Error("deleting erased events failed; retrying in 10 s").Add("error", ec.message());
        next_purge = Clock::now() + std::chrono::seconds(10);
      }
      continue;
    }
    if (now >= next_retention) {
      lock.Unlock();
      (void)jobs_.ApplyRetention();  // a failure is retried at the next turn
      lock.Lock();
      next_retention = Clock::now() + intervals_.retention;
      continue;
    }
    if (now >= next_timers) {
      lock.Unlock();
      auto ec = jobs_.FireTimers();
      lock.Lock();
      if (ec && !stopping_) {
        log::Error("firing due timers failed").Add("error", ec.message());
      }
      next_timers = Clock::now() + intervals_.timers;
      continue;
    }
    if (now >= next_thresholds) {
      lock.Unlock();
      auto ec = jobs_.RecomputeThresholds();
      lock.Lock();
      if (ec && !stopping_) {
        log::Error("recomputing RFM/ABC thresholds failed").Add("error", ec.message());
      }
      next_thresholds = Clock::now() + intervals_.thresholds;
      continue;
    }
    lock.Unlock();
    bool failed = jobs_.WriteFailed();
    if (failed) {
      jobs_.TryToRecover();
      failed = jobs_.WriteFailed();
    }
    lock.Lock();
    if (stopping_ || purge_requested_ || woken_) continue;
    wake_.WaitUntil(mu_, failed ? Clock::now() + intervals_.recovery
                                : std::min({next_thresholds, next_purge, next_retention, next_timers}));
  }
}

}  // namespace cartwatch::storage
