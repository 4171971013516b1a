// Whether the store may write (storage/write_health.h): which RocksDB statuses are write
// failures, the low-disk check, recovery and what /readyz is told.
#include "storage/write_health.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "storage/data_dir.h"
#include <random>

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

}  // namespace
}  // namespace cartwatch::storage
