// The store under injected write failures (storage/fault_injection.h): a full disk is
// refused cleanly, nothing acknowledged is lost, the store recovers by itself once the disk
// takes writes again, and a clean stop still closes (and syncs) what it can.
#include "storage/fault_injection.h"
#include "storage/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

namespace cartwatch::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class FailureTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cartwatch-failure-test-" + std::to_string(std::random_device{}()));
    options_.data_dir = dir_.string();
    options_.fsync = GetParam();
    options_.recovery_interval = 20ms;
    options_.faults = faults_;
    Reopen();
  }
  void TearDown() override {
    faults_->SetDiskFull(false);
    faults_->SetCreateFailing(false);
    store_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    std::string error;
    auto opened = Store::Open(options_, &error);
    ASSERT_TRUE(opened.has_value()) << error;
    store_ = std::move(*opened);
  }
  AppendResult Append(const std::string& id) {
    std::promise<AppendResult> done;
    const std::string json = R"({"type":"track","event":"E","anonymousId":"a","messageId":")" +
                             id + R"("})";
    store_->Append("shop", {Message{id, util::NowMs(), json}},
                   [&](const AppendResult& r) { done.set_value(r); });
    store_->Flush();
    return done.get_future().get();
  }
  std::set<std::string> StoredIds() {
    std::set<std::string> ids;
    auto page = store_->ReadEvents("shop", "", 1'000'000, SIZE_MAX);
    EXPECT_TRUE(page.has_value()) << page.error().message();
    if (!page) return ids;
    for (const StoredEvent& e : page->events) {
      const auto at = e.json.find("\"messageId\":\"") + 13;
      ids.insert(e.json.substr(at, e.json.find('"', at) - at));
    }
    return ids;
  }
  std::size_t StoredCount() {
    auto page = store_->ReadEvents("shop", "", 1'000'000, SIZE_MAX);
    return page ? page->events.size() : 0;
  }
  // Waits (up to 5 s) until CheckWritable gives `want`.
  bool WaitWritable(bool want) {
    for (int i = 0; i < 500; ++i) {
      if (static_cast<bool>(!store_->CheckWritable()) == want) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  fs::path dir_;
  StoreOptions options_;
  std::shared_ptr<FaultInjection> faults_ = std::make_shared<FaultInjection>();
  std::unique_ptr<Store> store_;
};

TEST_P(FailureTest, FullDiskRefusesWritesThenRecoversByItself) {
  std::set<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "before-" + std::to_string(i);
    ASSERT_FALSE(Append(id).error);
    acknowledged.insert(id);
  }
  faults_->SetDiskFull(true);
  const AppendResult refused = Append("during-0");
  EXPECT_EQ(refused.error, make_error_code(Errc::kNoSpace)) << refused.error.message();
  EXPECT_EQ(store_->CheckWritable(), make_error_code(Errc::kNoSpace));
  const Store::Health health = store_->GetHealth();
  EXPECT_NE(health.write_failure.find("space"), std::string::npos) << health.write_failure;
  for (int i = 1; i < 5; ++i) {
    const AppendResult r = Append("during-" + std::to_string(i));
    EXPECT_TRUE(r.error) << "a write was acknowledged on a full disk";
  }
  // Still full: the store keeps trying and stays unwritable.
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(store_->CheckWritable(), make_error_code(Errc::kNoSpace));

  faults_->SetDiskFull(false);
  ASSERT_TRUE(WaitWritable(true)) << store_->CheckWritable().message() << ": " << store_->GetHealth().write_failure;
  EXPECT_TRUE(store_->GetHealth().write_failure.empty());
  for (int i = 0; i < 20; ++i) {
    const std::string id = "after-" + std::to_string(i);
    ASSERT_FALSE(Append(id).error) << id;
    acknowledged.insert(id);
  }
  // A refused message sent again is stored once.
  ASSERT_FALSE(Append("during-0").error);
  acknowledged.insert("during-0");
  EXPECT_EQ(StoredIds(), acknowledged);
  Reopen();
  EXPECT_EQ(StoredIds(), acknowledged);
}

// While the disk is full the background thread reopens RocksDB every recovery_interval,
// holding the commit each time, and a Flush that finds the commit held leaves its request
// to the holder: a reopen that fails answers it too (refused), instead of leaving it queued
// until a recovery that the full disk postpones.
TEST_P(FailureTest, ARequestQueuedWhileAReopenFailsIsAnswered) {
  ASSERT_FALSE(Append("before").error);
  faults_->SetDiskFull(true);
  EXPECT_TRUE(Append("refused").error);
  std::this_thread::sleep_for(400ms);  // past the resumes: reopening, and failing, by now
  for (int i = 0; i < 200; ++i) {
    auto done = std::make_shared<std::promise<AppendResult>>();
    auto answer = done->get_future();
    store_->Append("shop", {Message{"m-" + std::to_string(i), util::NowMs(), "{}"}},
                   [done](const AppendResult& r) { done->set_value(r); });
    store_->Flush();
    ASSERT_EQ(answer.wait_for(5s), std::future_status::ready) << "request " << i << " left queued";
    EXPECT_TRUE(answer.get().error) << "acknowledged on a full disk";
    std::this_thread::sleep_for(1ms);
  }
  faults_->SetDiskFull(false);
  ASSERT_TRUE(WaitWritable(true)) << store_->GetHealth().write_failure;
}

TEST_P(FailureTest, CloseWhileTheDiskIsFullLosesNothingAcknowledged) {
  std::set<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "m-" + std::to_string(i);
    ASSERT_FALSE(Append(id).error);
    acknowledged.insert(id);
  }
  faults_->SetDiskFull(true);
  EXPECT_TRUE(Append("refused").error);
  store_->Close();  // must not abort
  faults_->SetDiskFull(false);
  Reopen();
  EXPECT_EQ(StoredIds(), acknowledged);
}

TEST_P(FailureTest, LowDiskSpaceRefusesWritesBeforeRocksDbRunsOut) {
  options_.min_free_bytes = 1 << 20;
  Reopen();
  ASSERT_FALSE(Append("plenty").error);
  faults_->SetFreeBytes(512 << 10);
  // Up to 100 ms of writes may pass before the store looks at the disk again.
  AppendResult refused;
  for (int i = 0; i < 50 && !refused.error; ++i) {
    refused = Append("low-" + std::to_string(i));
    if (!refused.error) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(refused.error, make_error_code(Errc::kNoSpace));
  EXPECT_EQ(store_->CheckWritable(), make_error_code(Errc::kNoSpace));
  EXPECT_NE(store_->GetHealth().write_failure.find("min_free_bytes"), std::string::npos)
      << store_->GetHealth().write_failure;
  EXPECT_EQ(faults_->refused_writes(), 0u);  // RocksDB itself never saw a full disk
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(Append("still-low").error);
  faults_->SetFreeBytes(2 << 20);
  ASSERT_TRUE(WaitWritable(true));
  EXPECT_FALSE(Append("after").error);
  const std::set<std::string> stored = StoredIds();
  EXPECT_TRUE(stored.count("plenty") && stored.count("after"));
  EXPECT_FALSE(stored.count("still-low"));
}

// A disk that cannot create files (the next write-ahead log, a flush's table file): the
// write that needs one fails and is not acknowledged, the store refuses writes (so /readyz
// is 503) until files can be created again, then recovers by itself; every acknowledged
// message survives, before and after a restart.
TEST_P(FailureTest, FailingFileCreationStopsWritesUntilItClears) {
  options_.write_buffer_bytes = 64 << 10;  // a memtable switch every few hundred messages
  Reopen();
  std::set<std::string> acknowledged;
  ASSERT_FALSE(Append("before").error);
  acknowledged.insert("before");
  faults_->SetCreateFailing(true);
  AppendResult refused;
  for (int i = 0; i < 20'000 && !refused.error; ++i) {
    const std::string id = "create-" + std::to_string(i) + std::string(200, 'x');
    refused = Append(id);
    if (!refused.error) acknowledged.insert(id);
  }
  ASSERT_TRUE(refused.error) << "no write needed a new file";
  EXPECT_EQ(refused.error, make_error_code(Errc::kIoError)) << refused.error.message();
  EXPECT_GT(faults_->refused_writes(), 0u);
  EXPECT_TRUE(store_->CheckWritable());
  EXPECT_NE(store_->GetHealth().write_failure.find("creating a file failed"), std::string::npos)
      << store_->GetHealth().write_failure;
  EXPECT_TRUE(Append("while-failing").error);

  faults_->SetCreateFailing(false);
  ASSERT_TRUE(WaitWritable(true)) << store_->GetHealth().write_failure;
  ASSERT_FALSE(Append("after").error);
  acknowledged.insert("after");
  EXPECT_EQ(StoredIds(), acknowledged);
  Reopen();
  EXPECT_EQ(StoredIds(), acknowledged);
}

// Writers and readers keep going while the disk fills and empties again, several times:
// no crash, every acknowledged message stored exactly once, refused ones not at all.
TEST_P(FailureTest, DiskFullComingAndGoingUnderLoad) {
  std::atomic<bool> done{false};
  std::mutex mu;
  std::set<std::string> acknowledged, refused;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !done.load(); ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        std::promise<AppendResult> result;
        const std::string json = R"({"type":"page","anonymousId":"a)" + std::to_string(t) +
                                 R"(","messageId":")" + id + R"("})";
        store_->Append("shop", {Message{id, util::NowMs(), json}},
                       [&](const AppendResult& r) { result.set_value(r); });
        store_->Flush();
        const AppendResult r = result.get_future().get();
        std::lock_guard lock(mu);
        (r.error ? refused : acknowledged).insert(id);
      }
    });
  }
  threads.emplace_back([&] {
    while (!done.load()) {
      (void)store_->ReadEvents("shop", "", 100, SIZE_MAX);
      (void)store_->CheckWritable();
      (void)store_->ReadVisitor("shop", "a0");
    }
  });
  for (int round = 0; round < 4; ++round) {
    std::this_thread::sleep_for(60ms);
    faults_->SetDiskFull(true);
    std::this_thread::sleep_for(60ms);
    faults_->SetDiskFull(false);
    ASSERT_TRUE(WaitWritable(true)) << store_->GetHealth().write_failure;
  }
  std::this_thread::sleep_for(30ms);
  done = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(refused.size(), 0u);
  EXPECT_GT(acknowledged.size(), 20u);
  std::set<std::string> stored = StoredIds();
  for (const std::string& id : acknowledged) EXPECT_TRUE(stored.count(id)) << id;
  // A refused message may have been stored all the same (its append reached the log, its
  // sync failed): sent again, as a sender does after a 503, it is stored once.
  for (const std::string& id : refused) ASSERT_FALSE(Append(id).error) << id;
  stored = StoredIds();
  EXPECT_EQ(stored.size(), acknowledged.size() + refused.size());
  EXPECT_EQ(StoredCount(), stored.size());  // nothing twice
  Reopen();
  EXPECT_EQ(StoredIds(), stored);
  EXPECT_EQ(StoredCount(), stored.size());
}

INSTANTIATE_TEST_SUITE_P(Fsync, FailureTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "fsync" : "no_fsync"; });

// The write-ahead log damaged while the store was down: never silent. With fsync (or
// wal_recovery = strict) the store refuses to open, naming the option that accepts the
// loss; with point-in-time recovery it opens with every message up to the damage and says
// what was dropped.
class WalDamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cartwatch-wal-test-" + std::to_string(std::random_device{}()));
    options_.data_dir = dir_.string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `n` messages in commits of 10 and closes; returns their ids in order.
  std::vector<std::string> WriteAndClose(int n) {
    std::string error;
    auto store = Store::Open(options_, &error);
    EXPECT_TRUE(store.has_value()) << error;
    std::vector<std::string> ids;
    for (int i = 0; i < n; i += 10) {
      std::vector<Message> batch;
      for (int j = i; j < i + 10 && j < n; ++j) {
        const std::string id = "m-" + std::to_string(1000 + j);
        batch.push_back(Message{id, util::NowMs(),
                                R"({"type":"page","anonymousId":"a","messageId":")" + id +
                                    R"(","properties":{"pad":")" + std::string(200, 'x') + R"("}})"});
        ids.push_back(id);
      }
      std::promise<AppendResult> done;
      (*store)->Append("shop", std::move(batch), [&](const AppendResult& r) { done.set_value(r); });
      (*store)->Flush();
      EXPECT_FALSE(done.get_future().get().error);
    }
    (*store)->Close();
    return ids;
  }
  fs::path NewestWal() {
    fs::path newest;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".log" && (newest.empty() || e.path() > newest)) newest = e.path();
    }
    return newest;
  }
  std::vector<std::string> StoredIds(Store& store) {
    std::vector<std::string> ids;
    auto page = store.ReadEvents("shop", "", 1'000'000, SIZE_MAX);
    EXPECT_TRUE(page.has_value());
    if (!page) return ids;
    for (const StoredEvent& e : page->events) {
      const auto at = e.json.find("\"messageId\":\"") + 13;
      ids.push_back(e.json.substr(at, e.json.find('"', at) - at));
    }
    return ids;
  }

  fs::path dir_;
  StoreOptions options_;
};

void Overwrite(const fs::path& file, std::uintmax_t at, std::size_t n) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(at));
  const std::string junk(n, '\x5a');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

TEST_F(WalDamageTest, StrictRefusesToOpenAndNamesTheOption) {
  options_.fsync = true;  // wal_recovery = auto means strict
  const std::vector<std::string> written = WriteAndClose(200);
  const fs::path wal = NewestWal();
  ASSERT_FALSE(wal.empty());
  const auto size = fs::file_size(wal);
  ASSERT_GT(size, 20'000u);
  Overwrite(wal, size / 2, 64);
  std::string error;
  auto refused = Store::Open(options_, &error);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(error.find("write-ahead log"), std::string::npos) << error;
  EXPECT_NE(error.find("storage.wal_recovery = \"point_in_time\""), std::string::npos) << error;
  EXPECT_NE(error.find("--wal-recovery point_in_time"), std::string::npos) << error;
  EXPECT_EQ(fs::file_size(wal), size);  // nothing was dropped by the refusal

  // The operator accepts the loss for one start.
  options_.wal_recovery = WalRecovery::kPointInTime;
  auto opened = Store::Open(options_, &error);
  ASSERT_TRUE(opened.has_value()) << error;
  const Store::Health health = (*opened)->GetHealth();
  EXPECT_NE(health.wal_recovery.find("damaged"), std::string::npos) << health.wal_recovery;
  const std::vector<std::string> kept = StoredIds(**opened);
  ASSERT_GT(kept.size(), 0u);
  ASSERT_LT(kept.size(), written.size());
  // What was kept is exactly what came before the damage.
  EXPECT_TRUE(std::equal(kept.begin(), kept.end(), written.begin()));
  EXPECT_FALSE((*opened)->CheckWritable());
  (*opened)->Close();
  // The next start is clean again: the damaged log is gone.
  options_.wal_recovery = WalRecovery::kAuto;
  auto again = Store::Open(options_, &error);
  ASSERT_TRUE(again.has_value()) << error;
  EXPECT_TRUE((*again)->GetHealth().wal_recovery.empty());
  EXPECT_EQ(StoredIds(**again), kept);
}

TEST_F(WalDamageTest, PointInTimeRecoversTheIntactPartAndSaysWhatWasDropped) {
  for (const bool truncate : {false, true}) {
    SCOPED_TRACE(truncate ? "truncated" : "overwritten");
    fs::remove_all(dir_);
    options_.fsync = false;  // wal_recovery = auto means point in time
    const std::vector<std::string> written = WriteAndClose(200);
    const fs::path wal = NewestWal();
    const auto size = fs::file_size(wal);
    if (truncate) {
      fs::resize_file(wal, size / 2 + 7);  // inside a record
    } else {
      Overwrite(wal, size / 2, 64);
    }
    std::string error;
    auto opened = Store::Open(options_, &error);
    ASSERT_TRUE(opened.has_value()) << error;
    const std::string report = (*opened)->GetHealth().wal_recovery;
    EXPECT_EQ((*opened)->GetHealth().wal_damage_recoveries, 1u);
    EXPECT_NE(report.find("write-ahead log was damaged"), std::string::npos) << report;
    EXPECT_NE(report.find("may be lost"), std::string::npos) << report;
    const std::vector<std::string> kept = StoredIds(**opened);
    ASSERT_GT(kept.size(), 0u);
    ASSERT_LT(kept.size(), written.size());
    EXPECT_TRUE(std::equal(kept.begin(), kept.end(), written.begin()));
  }
}

TEST_F(WalDamageTest, AnIntactLogReportsNothing) {
  WriteAndClose(50);
  std::string error;
  auto opened = Store::Open(options_, &error);
  ASSERT_TRUE(opened.has_value()) << error;
  EXPECT_TRUE((*opened)->GetHealth().wal_recovery.empty());
  EXPECT_EQ((*opened)->GetHealth().wal_damage_recoveries, 0u);
  EXPECT_EQ(StoredIds(**opened).size(), 50u);
}

}  // namespace
}  // namespace cartwatch::storage
