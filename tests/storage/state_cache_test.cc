// The records cache of StateWriter (storage/state.h): written records kept as their stored
// bytes, bounded in entries and in bytes, decoded again when a message touches them.
#include <gtest/gtest.h>
#include <malloc.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "storage/keys.h"
#include "storage/state.h"
#include "tests/profiles/helpers.h"
#include "tests/sanitized_heap.h"
#include "tests/storage/temp_db.h"

namespace cartwatch::storage {
namespace {

namespace h = profiles::helpers;

using cartwatch::tests::kSanitizedHeap;

std::string Url(int visitor, int page) {
  return "https://shop.example/catalog/shoes/running/model-" + std::to_string(visitor) + "-" +
         std::to_string(page);
}

class StateCacheTest : public TempDbTest {
 protected:
  // One commit: applies `messages`, stages every changed record, writes the batch (unless
  // `write` is false: the writer is told it was) and finishes.
  void Commit(StateWriter& writer, const std::vector<std::string>& messages, bool write = true) {
    rocksdb::WriteBatch batch;
    for (const std::string& m : messages) {
      ASSERT_FALSE(writer.Apply(SitePrefix("shop"), ++last_id_, m));
    }
    writer.Stage(batch, last_id_, /*all=*/true);
    if (write) {
      ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
    }
    writer.Finish(true);
  }

  std::uint64_t last_id_ = 0;
};

TEST_F(StateCacheTest, WrittenRecordsAreBoundedInBytesAndReadAgainOnceEvicted) {
  StateOptions options;
  options.cache_entries = 1'000'000;
  options.cache_bytes = 32 << 10;
  StateWriter writer(db_.get(), cf(), cf(), options);
  constexpr int kVisitors = 200;
  for (int round = 1; round <= 2; ++round) {
    for (int v = 0; v < kVisitors; ++v) {
      Commit(writer, {h::Page("a:v" + std::to_string(v), h::kT0 + round * h::kHour + v,
                              Url(v, round))});
      ASSERT_LE(writer.cached_bytes(), options.cache_bytes);
    }
  }
  // Some, not all: the byte bound evicted the least recently used.
  EXPECT_GT(writer.cached(), 10u);
  EXPECT_LT(writer.cached(), static_cast<std::size_t>(kVisitors));
  EXPECT_EQ(writer.unwritten(), 0u);
  // The second page found each record, cached as its stored bytes or read from RocksDB.
  for (int v = 0; v < kVisitors; ++v) {
    auto visitor = writer.PeekVisitor(SitePrefix("shop"), "v" + std::to_string(v));
    ASSERT_TRUE(visitor && *visitor) << v;
    EXPECT_EQ((*visitor)->page_views, 2) << v;
    ASSERT_FALSE((*visitor)->sessions.empty());
    EXPECT_EQ((*visitor)->sessions.back().exit_url, Url(v, 2)) << v;
  }
  // The most recent ones are cached: a third page applies to the cached bytes.
  Commit(writer, {h::Page("a:v199", h::kT0 + 3 * h::kHour, Url(199, 3))});
  auto last = writer.PeekVisitor(SitePrefix("shop"), "v199");
  ASSERT_TRUE(last && *last);
  EXPECT_EQ((*last)->page_views, 3);

  writer.Discard();
  EXPECT_EQ(writer.cached(), 0u);
  EXPECT_EQ(writer.cached_bytes(), 0u);
}

TEST_F(StateCacheTest, NoBytesNoCache) {
  StateOptions options;
  options.cache_bytes = 0;
  StateWriter writer(db_.get(), cf(), cf(), options);
  Commit(writer, {h::Page("a:anna", h::kT0, Url(1, 1))});
  EXPECT_EQ(writer.cached(), 0u);
  EXPECT_EQ(writer.cached_bytes(), 0u);
  Commit(writer, {h::Page("a:anna", h::kT0 + h::kSecond, Url(1, 2))});
  auto anna = writer.PeekVisitor(SitePrefix("shop"), "anna");
  ASSERT_TRUE(anna && *anna);
  EXPECT_EQ((*anna)->page_views, 2);
}

// What cached_bytes counts is what the heap holds for the cache: the decoded records are
// freed once written, so the bound on bytes bounds memory.
TEST_F(StateCacheTest, TheBytesCountedAreTheHeapTheCacheHolds) {
  if (kSanitizedHeap) GTEST_SKIP() << "a sanitizer's allocator does not report mallinfo2";
  StateOptions options;
  options.cache_entries = 1'000'000;
  StateWriter writer(db_.get(), cf(), cf(), options);
  constexpr int kVisitors = 3000;
  std::vector<std::vector<std::string>> commits;
  for (int v = 0; v < kVisitors; v += 100) {
    std::vector<std::string> messages;
    for (int i = v; i < v + 100; ++i) {
      const std::string who = "a:visitor-" + std::to_string(i) + "-1c9e5a44-7d0e-4b1f";
      for (int page = 0; page < 3; ++page) {
        messages.push_back(h::Page(who, h::kT0 + page * h::kMinute + i, Url(i, page)));
      }
      messages.push_back(h::Track(who, "Product Viewed", h::kT0 + 4 * h::kMinute + i,
                                  {{"product_id", "p-" + std::to_string(i)},
                                   {"name", "Trail runner " + std::to_string(i)},
                                   {"category", "Shoes/Running"},
                                   {"price", 89.9},
                                   {"url", Url(i, 9)}}));
    }
    commits.push_back(std::move(messages));
  }
  // Not written to RocksDB: its memtable's arena would be counted too.
  Commit(writer, commits[0], /*write=*/false);  // the writer's own scratch space, first
  const std::size_t before = mallinfo2().uordblks;
  const std::size_t counted_before = writer.cached_bytes();
  for (std::size_t c = 1; c < commits.size(); ++c) Commit(writer, commits[c], /*write=*/false);
  ASSERT_EQ(writer.cached(), static_cast<std::size_t>(kVisitors));
  const double heap = static_cast<double>(mallinfo2().uordblks - before);
  const double counted = static_cast<double>(writer.cached_bytes() - counted_before);
  RecordProperty("heap_bytes_a_record", std::to_string(heap / (kVisitors - 100)));
  RecordProperty("counted_bytes_a_record", std::to_string(counted / (kVisitors - 100)));
  EXPECT_GT(heap, 0.75 * counted);
  EXPECT_LT(heap, 1.25 * counted);
}

}  // namespace
}  // namespace cartwatch::storage
