// The database as storage/schema.cc opens it: every column family, the event log's
// compression as storage.compress_event_log says, and the write-back of its files.
#include "storage/schema.h"

#include <gtest/gtest.h>
#include <rocksdb/options.h>

#include <filesystem>
#include <random>

namespace cartwatch::storage {
namespace {

class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cartwatch-schema-" + std::to_string(std::random_device{}()));
    options_.data_dir = dir_.string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The events column family's compression by level, as opened.
  std::vector<rocksdb::CompressionType> EventLogCompression() {
    Database database;
    std::string error;
    rocksdb::Status s = OpenDatabase(options_, rocksdb::WALRecoveryMode::kAbsoluteConsistency,
                                     OpenHooks{}, database, &error);
    EXPECT_TRUE(s.ok()) << error;
    if (!s.ok()) return {};
    EXPECT_NE(database.events, nullptr);
    EXPECT_NE(database.deliveries, nullptr);
    auto levels = database.db->GetOptions(database.events).compression_per_level;
    database.Close();
    return levels;
  }

  std::filesystem::path dir_;
  StoreOptions options_;
};

TEST_F(SchemaTest, TheEventLogIsCompressedFromTheThirdLevelUnlessTurnedOff) {
  const auto on = EventLogCompression();
  ASSERT_EQ(on.size(), 7u);
  EXPECT_EQ(on[0], rocksdb::kNoCompression);  // flushes
  EXPECT_EQ(on[1], rocksdb::kNoCompression);
  EXPECT_NE(on[2], rocksdb::kNoCompression);  // LZ4 (or Snappy where there is no LZ4)
  EXPECT_EQ(on[6], on[2]);

  options_.compress_event_log = false;  // reopened: the same files, no compression from now on
  const auto off = EventLogCompression();
  for (auto level : off) EXPECT_EQ(level, rocksdb::kNoCompression);
  EXPECT_FALSE(off.empty());
}

// Both the tables and the write-ahead log are handed to the kernel a megabyte at a time: a
// flush then syncs a closed log with little left in it (docs/storage.md).
TEST_F(SchemaTest, TheLogAndTheTablesAreWrittenBackAsTheyGrow) {
  Database database;
  std::string error;
  ASSERT_TRUE(OpenDatabase(options_, rocksdb::WALRecoveryMode::kAbsoluteConsistency, OpenHooks{},
                           database, &error)
                  .ok())
      << error;
  const rocksdb::DBOptions opened = database.db->GetDBOptions();
  EXPECT_EQ(opened.wal_bytes_per_sync, 1u << 20);
  EXPECT_EQ(opened.bytes_per_sync, 1u << 20);
  database.Close();
}

}  // namespace
}  // namespace cartwatch::storage
