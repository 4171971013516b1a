// A RocksDB of its own in a temporary directory, for tests of the store's parts that take a
// database (dedup index, commit stages); removed with the fixture.
#pragma once

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>

namespace cartwatch::storage {

class TempDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cartwatch-temp-db-" + std::to_string(std::random_device{}()));
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.string(), &db).ok());
    db_.reset(db);
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  rocksdb::ColumnFamilyHandle* cf() { return db_->DefaultColumnFamily(); }

  std::filesystem::path dir_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace cartwatch::storage
