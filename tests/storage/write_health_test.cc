// Whether the store may write (storage/write_health.h): which RocksDB statuses are write
// failures, the low-disk check, recovery and what /readyz is told.
#include "storage/write_health.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <rocksdb/db.h>

#include <random>
#include <regex>

#include "storage/data_dir.h"
#include "storage/rocksdb_listener.h"

namespace cartwatch::storage {
namespace {

class WriteHealthTest : public ::testing::Test {
 protected:
  WriteHealthTest() {
    options_.data_dir = (std::filesystem::temp_directory_path() /
                         ("cartwatch-health-" + std::to_string(std::random_device{}())))
                            .string();
    std::filesystem::create_directories(options_.data_dir);
    options_.faults = faults_;
  }
  ~WriteHealthTest() override { std::filesystem::remove_all(options_.data_dir); }

  std::shared_ptr<FaultInjection> faults_ = std::make_shared<FaultInjection>();
  StoreOptions options_;
};

TEST_F(WriteHealthTest, OnlyIoErrorsFullDisksAndCorruptionAreWriteFailures) {
  WriteHealth health(options_);
  EXPECT_FALSE(health.NoteWriteFailure(rocksdb::Status::Busy()));
  EXPECT_FALSE(health.NoteWriteFailure(rocksdb::Status::NotFound()));
  EXPECT_FALSE(health.failed());

  EXPECT_TRUE(health.NoteWriteFailure(rocksdb::Status::IOError("injected: sync failed (EIO)")));
  EXPECT_EQ(health.failure(), make_error_code(Errc::kIoError));
  // Already failing: not a new failure, but the newest one is what writes are refused with.
  EXPECT_FALSE(health.NoteWriteFailure(rocksdb::Status::NoSpace("later")));
  EXPECT_EQ(health.failure(), make_error_code(Errc::kNoSpace));
  EXPECT_TRUE(health.db_failed());
  EXPECT_TRUE(HasFailedWriteMark(options_.data_dir));
  Store::Health described;
  health.Describe(described);
  EXPECT_NE(described.write_failure.find("later"), std::string::npos);  // the newest words

  health.NoteRecoveryFailure(rocksdb::Status::Busy());  // says less: not kept
  health.Describe(described);
  EXPECT_NE(described.write_failure.find("later"), std::string::npos);

  health.Recovered();
  EXPECT_FALSE(health.failed());
  EXPECT_FALSE(health.db_failed());
  EXPECT_FALSE(HasFailedWriteMark(options_.data_dir));
  described = {};
  health.Describe(described);
  EXPECT_TRUE(described.write_failure.empty());
}

TEST_F(WriteHealthTest, ALowDiskRefusesWritesUntilThereIsRoom) {
  options_.min_free_bytes = 1000;
  WriteHealth health(options_);
  bool started = false;
  faults_->SetFreeBytes(5000);
  EXPECT_FALSE(health.CheckDiskSpace(0, &started));
  faults_->SetFreeBytes(10);
  // Asked again only after 100 ms or an eighth of the margin written.
  EXPECT_FALSE(health.CheckDiskSpace(100, &started));
  EXPECT_EQ(health.CheckDiskSpace(300, &started), make_error_code(Errc::kNoSpace));
  EXPECT_TRUE(started);
  EXPECT_EQ(health.CheckDiskSpace(300, &started), make_error_code(Errc::kNoSpace));
  EXPECT_FALSE(started);
  EXPECT_TRUE(health.low_space());
  EXPECT_FALSE(health.db_failed());  // RocksDB never failed
  Store::Health described;
  health.Describe(described);
  EXPECT_NE(described.write_failure.find("10 bytes free"), std::string::npos);

  EXPECT_FALSE(health.DiskHasRoom());
  faults_->SetFreeBytes(2000);
  EXPECT_TRUE(health.DiskHasRoom());
  EXPECT_FALSE(health.low_space());
  health.Recovered();
  EXPECT_FALSE(health.CheckDiskSpace(400, &started));
}

TEST_F(WriteHealthTest, AWalDamageReportStays) {
  WriteHealth health(options_);
  health.ReportWalDamage("dropped what followed");
  Store::Health described;
  health.Describe(described);
  EXPECT_EQ(described.wal_recovery, "dropped what followed");
  EXPECT_EQ(described.wal_damage_recoveries, 1u);
}


// A real RocksDB whose level 0 slows writes down from its second table file (until the
// compaction the second file starts has run): each change of the stall condition is one
// log line, and a background error reaches the store.
TEST_F(WriteHealthTest, RocksDbWriteStallsAreLoggedAsTheyBeginAndEnd) {
  int failures = 0;
  auto listener = std::make_shared<RocksDbListener>([&](const rocksdb::Status&, bool) { ++failures; });
  rocksdb::Options options;
  options.create_if_missing = true;
  // RocksDB raises the slowdown trigger to the compaction trigger: two files start both.
  options.level0_file_num_compaction_trigger = 2;
  options.level0_slowdown_writes_trigger = 2;
  options.level0_stop_writes_trigger = 100;
  options.listeners.push_back(listener);
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, options_.data_dir + "/db", &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);

  testing::internal::CaptureStderr();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k" + std::to_string(i), "v").ok());
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
  }
  ASSERT_TRUE(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).ok());
  db.reset();
  // RocksDB tells each change from the thread that made it: two changes close together
  // (the flush's and the compaction's) may be told in either order.
  const std::string out = std::regex_replace(testing::internal::GetCapturedStderr(),
                                             std::regex("ts=\\S+ "), "");
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
  EXPECT_NE(out.find("level=warn msg=\"RocksDB slows writes down: flushes or compactions are behind\" "
                     "cf=default condition=delayed was=normal\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("level=info msg=\"RocksDB writes are no longer slowed down\" cf=default "
                     "was=delayed\n"),
            std::string::npos)
      << out;

  rocksdb::Status error = rocksdb::Status::IOError("injected");
  listener->OnBackgroundError(rocksdb::BackgroundErrorReason::kFlush, &error);
  rocksdb::Status shutdown = rocksdb::Status::ShutdownInProgress();
  listener->OnBackgroundError(rocksdb::BackgroundErrorReason::kCompaction, &shutdown);
  EXPECT_EQ(failures, 1);
}

}  // namespace
}  // namespace cartwatch::storage
