// The store's background thread (storage/background.h) with jobs of the test's own: when
// it runs each job, and that it stops, without a database.
#include "storage/background.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "storage/store.h"

namespace cartwatch::storage {
namespace {

using namespace std::chrono_literals;

// Counts each job; WaitFor blocks until a count reaches a value (or 10 s pass).
class CountingJobs final : public Background::Jobs {
 public:
  boost::system::error_code PurgeErasedEvents() override {
    Count(purges);
    return purge_error;
  }
  boost::system::error_code ApplyRetention() override {
    Count(retentions);
    return {};
  }
  boost::system::error_code RecomputeThresholds() override {
    Count(thresholds);
    if (background != nullptr) {
      // A long scan sees Stop.
      while (block_thresholds && !background->stopping()) std::this_thread::sleep_for(1ms);
    }
    return {};
  }
  boost::system::error_code FireTimers() override {
    Count(ticks);
    return {};
  }
  bool WriteFailed() override { return failed.load(); }
  void TryToRecover() override {
    Count(recoveries);
    if (recoveries >= recover_after) failed = false;
  }

  bool WaitFor(const int& count, int value) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return count >= value; });
  }
  int Get(const int& count) {
    std::lock_guard lock(mu_);
    return count;
  }

  int purges = 0, retentions = 0, thresholds = 0, recoveries = 0, ticks = 0;
  boost::system::error_code purge_error;
  std::atomic<bool> failed{false};
  int recover_after = 1;
  std::atomic<bool> block_thresholds{false};
  const Background* background = nullptr;

 private:
  void Count(int& count) {
    {
      std::lock_guard lock(mu_);
      ++count;
    }
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
};

TEST(BackgroundTest, PurgesAtOnceAndWhenAskedRetentionOnItsInterval) {
  CountingJobs jobs;
  Background background(jobs, {.thresholds = 1h, .retention = 20ms, .recovery = 1h});
  background.Start();
  ASSERT_TRUE(jobs.WaitFor(jobs.purges, 1));  // jobs an earlier run left
  ASSERT_TRUE(jobs.WaitFor(jobs.retentions, 3));
  background.RequestPurge();
  ASSERT_TRUE(jobs.WaitFor(jobs.purges, 2));
  background.Stop();
  EXPECT_EQ(jobs.Get(jobs.thresholds), 0);  // the first a minute after the start
}

TEST(BackgroundTest, NoRetentionNorTimersWhenTheyAreOff) {
  CountingJobs jobs;
  Background background(jobs, {.thresholds = 10ms, .retention = 0ms, .recovery = 1h});
  background.Start();
  ASSERT_TRUE(jobs.WaitFor(jobs.thresholds, 3));
  background.Stop();
  EXPECT_EQ(jobs.Get(jobs.retentions), 0);
  EXPECT_EQ(jobs.Get(jobs.ticks), 0);
}

TEST(BackgroundTest, FiresTimersEveryTick) {
  CountingJobs jobs;
  Background background(jobs, {.thresholds = 1h, .retention = 0ms, .recovery = 1h, .timers = 10ms});
  background.Start();
  ASSERT_TRUE(jobs.WaitFor(jobs.ticks, 3));
  background.Stop();
}

TEST(BackgroundTest, AFailedPurgeIsRetriedLater) {
  CountingJobs jobs;
  jobs.purge_error = Errc::kIoError;
  Background background(jobs, {.thresholds = 1h, .retention = 0ms, .recovery = 1h});
  background.Start();
  ASSERT_TRUE(jobs.WaitFor(jobs.purges, 1));
  background.RequestPurge();  // asked again: not held back by the 10 s retry
  ASSERT_TRUE(jobs.WaitFor(jobs.purges, 2));
  background.Stop();
}

TEST(BackgroundTest, RecoversAfterAWakeUntilWritesSucceed) {
  CountingJobs jobs;
  jobs.recover_after = 3;
  Background background(jobs, {.thresholds = 1h, .retention = 0ms, .recovery = 5ms});
  background.Start();
  ASSERT_TRUE(jobs.WaitFor(jobs.purges, 1));
  jobs.failed = true;
  background.Wake();  // not the next hour's turn
  ASSERT_TRUE(jobs.WaitFor(jobs.recoveries, 3));
  background.Stop();
  EXPECT_FALSE(jobs.failed.load());
  EXPECT_EQ(jobs.Get(jobs.recoveries), 3);  // none once writable
}

TEST(BackgroundTest, StopEndsALongJobAndIsIdempotent) {
  CountingJobs jobs;
  Background background(jobs, {.thresholds = 1ms, .retention = 0ms, .recovery = 1h});
  jobs.background = &background;
  jobs.block_thresholds = true;
  background.Start();
  ASSERT_TRUE(jobs.WaitFor(jobs.thresholds, 1));
  background.Stop();  // returns only because the job saw stopping()
  EXPECT_TRUE(background.stopping());
  background.Stop();
}

}  // namespace
}  // namespace cartwatch::storage
