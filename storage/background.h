// Background: the store's own thread for the work that is neither an ingest commit nor a
// client's read: the event purges of erase jobs (as soon as a round commits one), retention
// (every StoreOptions::retention_interval, first at once), the sites' RFM/ABC thresholds
// (every StoreOptions::thresholds_interval, the first a minute after opening), the rule
// engine's due timers (every StoreOptions::timer_tick) and, after a failed write, the
// attempts to recover (every StoreOptions::recovery_interval).
//
// It knows no RocksDB: it decides when, and Jobs (the store) does the work. Each job runs
// with no lock of this class held, so a job may block on the committing thread.
//
// Private to storage/. Thread safety: every method may be called from any thread; Jobs
// methods are called on the background thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include <boost/system/error_code.hpp>

#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace cartwatch::storage {

class Background {
 public:
  // The work, done by the store.
  class Jobs {
   public:
    virtual ~Jobs() = default;
    // Deletes the events of every committed erase job; an error retries in 10 s.
    virtual boost::system::error_code PurgeErasedEvents() = 0;
    // Deletes the events older than the retention; an error retries at the next interval.
    virtual boost::system::error_code ApplyRetention() = 0;
    // Recomputes every site's RFM quintiles and ABC classes; an error is logged.
    virtual boost::system::error_code RecomputeThresholds() = 0;
    // Fires the rule engine's due timers.
    virtual boost::system::error_code FireTimers() = 0;
    // Whether a write failed and the store is not writable (WriteHealth).
    virtual bool WriteFailed() = 0;
    // One attempt to make the store writable again.
    virtual void TryToRecover() = 0;
  };

  struct Intervals {
    std::chrono::milliseconds thresholds{std::chrono::hours(1)};
    std::chrono::milliseconds retention{0};  // how often retention runs; 0: no retention
    std::chrono::milliseconds recovery{std::chrono::seconds(1)};
    std::chrono::milliseconds timers{0};  // 0: no timers to fire
  };

  Background(Jobs& jobs, Intervals intervals) : jobs_(jobs), intervals_(intervals) {}
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() { Stop(); }

  void Start();
  // Stops the thread (a running job sees stopping() and returns early) and joins it.
  // Idempotent.
  void Stop();
  // Whether Stop has begun: long scans check it between records.
  bool stopping() const { return stopping_.load(); }

  // A round committed erase jobs: their purge runs next.
  void RequestPurge();
  // A write failed (or the disk ran low): recovery attempts start now.
  void Wake();

 private:
  void Loop();

  Jobs& jobs_;
  const Intervals intervals_;
  std::thread thread_;
  util::Mutex mu_;
  util::CondVar wake_;
  bool purge_requested_ GUARDED_BY(mu_) = false;
  bool woken_ GUARDED_BY(mu_) = false;  // Wake() since the loop last looked
  std::atomic<bool> stopping_{false};  // set under mu_, read anywhere
};

}  // namespace cartwatch::storage
