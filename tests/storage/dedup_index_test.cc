// DedupIndex on its own, over a real RocksDB: duplicates within the window, expiry, the undo
// of a commit that was not written, and the rebuild from the dedup log.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <string>

#include "storage/dedup_index.h"
#include "storage/keys.h"
#include "tests/storage/temp_db.h"

namespace cartwatch::storage {
namespace {

using std::chrono::hours;

constexpr std::int64_t kHour = 3'600'000;

class DedupIndexTest : public TempDbTest {
 protected:
  // One commit of `ids` received at `at`, written (or not) as the store writes it.
  std::vector<bool> Commit(DedupIndex& index, std::vector<std::string> ids, std::int64_t at,
                           bool written = true) {
    index.Begin(at);
    std::vector<bool> entered;
    for (const auto& id : ids) entered.push_back(index.Enter(MessageIdHash("s:", id), at));
    const bool stored = std::find(entered.begin(), entered.end(), true) != entered.end();
    if (written && stored) {
      EXPECT_TRUE(db_->Put(rocksdb::WriteOptions(), DedupLogKey(++last_id_), index.record()).ok());
    }
    index.End(written, stored);
    return entered;
  }
  rocksdb::ColumnFamilyHandle* log() { return cf(); }
  std::size_t LogRecords() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    std::size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }

  std::uint64_t last_id_ = 0;
};

TEST_F(DedupIndexTest, AnIdIsADuplicateWithinTheWindowAndNewAfterIt) {
  DedupIndex index(hours(24), 1000);
  EXPECT_EQ(Commit(index, {"a", "b", "a"}, 0), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(Commit(index, {"a"}, 23 * kHour), std::vector<bool>{false});
  EXPECT_EQ(Commit(index, {"a"}, 24 * kHour), std::vector<bool>{true});  // the window passed
  EXPECT_EQ(index.size(), 2u);
}

// The index keeps each id in 16 bytes: 96 bits of its hash and its time in whole seconds,
// rounded up, so an id stays a duplicate up to a second past the window, never less.
TEST_F(DedupIndexTest, TheWindowIsKeptToTheSecondRoundedUp) {
  static_assert(sizeof(DedupIndex::Slot) == 16);
  DedupIndex index(hours(24), 1000);
  Commit(index, {"a", "b"}, 500);  // kept as second 1
  EXPECT_EQ(Commit(index, {"a"}, 24 * kHour + 499), std::vector<bool>{false});
  EXPECT_EQ(Commit(index, {"a"}, 24 * kHour + 999), std::vector<bool>{false});  // rounded up
  EXPECT_EQ(Commit(index, {"b"}, 24 * kHour + 1'000), std::vector<bool>{true});
  // The on-disk record keeps the time in ms and the whole hash: a reload rounds the same.
  const IdHash h = MessageIdHash("p", "x");
  const DedupIndex::Slot slot = DedupIndex::SlotOf(h, 1'500);
  EXPECT_EQ(slot.h1, h.h1);
  EXPECT_EQ(slot.h2, static_cast<std::uint32_t>(h.h2 >> 32));
  EXPECT_EQ(slot.time_s, 2u);
  EXPECT_EQ(DedupIndex::SlotOf(h, 2'000).time_s, 2u);
  EXPECT_EQ(DedupIndex::SlotOf(h, -5).time_s, 0u);
}

TEST_F(DedupIndexTest, ACommitThatWasNotWrittenForgetsWhatItEntered) {
  DedupIndex index(hours(24), 1000);
  Commit(index, {"a"}, 0);
  EXPECT_EQ(Commit(index, {"b", "a"}, kHour, /*written=*/false),
            (std::vector<bool>{true, false}));
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(Commit(index, {"b"}, 2 * kHour), std::vector<bool>{true});  // the retry stores it
}

TEST_F(DedupIndexTest, LoadRebuildsTheIndexFromTheLogAndExpireDeletesOldRecords) {
  DedupIndex index(hours(24), 1000);
  Commit(index, {"old"}, 0);
  Commit(index, {"new"}, 30 * kHour);
  DedupIndex loaded(hours(24), 1000);
  ASSERT_FALSE(loaded.Load(*db_, log()));
  // "old" left the window (measured back from the newest record) and its record is gone.
  EXPECT_EQ(loaded.size(), 1u);
  EXPECT_EQ(LogRecords(), 1u);
  EXPECT_EQ(Commit(loaded, {"new", "old"}, 31 * kHour), (std::vector<bool>{false, true}));

  // Expire walks the log only once its oldest record is a minute past the window.
  ASSERT_FALSE(loaded.Expire(*db_, log()));
  EXPECT_EQ(LogRecords(), 2u);
  Commit(loaded, {"later"}, 54 * kHour + 61'000);
  ASSERT_FALSE(loaded.Expire(*db_, log()));
  EXPECT_EQ(LogRecords(), 2u);  // "new" (30 h) expired; "old" (31 h) and "later" remain
  EXPECT_EQ(loaded.size(), 2u);
}

TEST_F(DedupIndexTest, PastItsLimitTheOldestIdsAreForgotten) {
  DedupIndex index(hours(24), 10);
  for (int i = 0; i < 12; ++i) Commit(index, {"id" + std::to_string(i)}, i * 1000);
  testing::internal::CaptureStderr();
  ASSERT_FALSE(index.Expire(*db_, log()));
  EXPECT_NE(testing::internal::GetCapturedStderr().find("no longer deduplicated"),
            std::string::npos);
  EXPECT_LE(index.size(), 9u);
  EXPECT_EQ(Commit(index, {"id0"}, 20'000), std::vector<bool>{true});  // forgotten
  EXPECT_EQ(Commit(index, {"id11"}, 21'000), std::vector<bool>{false});  // kept
}

// A minute's ids at a high rate are a million: Expire drops about its budget a call (here 3)
// and goes on from there in the next calls, so that no commit waits for the whole walk.
TEST_F(DedupIndexTest, ExpireDropsAboutItsBudgetACallAndGoesOn) {
  DedupIndex index(hours(24), 1000, /*walk_budget=*/3);
  for (int i = 0; i < 10; ++i) Commit(index, {"a" + std::to_string(i), "b" + std::to_string(i)}, i);
  Commit(index, {"late"}, 24 * kHour + 61'000);  // the ten records are a minute past the window
  ASSERT_EQ(index.size(), 21u);
  std::vector<std::size_t> sizes;
  for (int call = 0; call < 10 && index.size() > 1; ++call) {
    ASSERT_FALSE(index.Expire(*db_, log()));
    sizes.push_back(index.size());
  }
  // Two records (4 ids, the first past the budget of 3) a call: 17, 13, 9, 5, 1.
  EXPECT_EQ(sizes, (std::vector<std::size_t>{17, 13, 9, 5, 1}));
  EXPECT_EQ(LogRecords(), 1u);
  EXPECT_EQ(Commit(index, {"a0", "late"}, 24 * kHour + 62'000), (std::vector<bool>{true, false}));
  // Nothing more to walk: the next call does nothing.
  ASSERT_FALSE(index.Expire(*db_, log()));
  EXPECT_EQ(index.size(), 2u);
}

TEST_F(DedupIndexTest, PastItsLimitTheOldestAreForgottenABudgetAtATime) {
  DedupIndex index(hours(24), 10, /*walk_budget=*/1);
  for (int i = 0; i < 12; ++i) Commit(index, {"id" + std::to_string(i)}, i * 1000);
  testing::internal::CaptureStderr();
  ASSERT_FALSE(index.Expire(*db_, log()));  // over the limit: forgets id0, and goes on
  EXPECT_EQ(index.size(), 11u);
  ASSERT_FALSE(index.Expire(*db_, log()));
  ASSERT_FALSE(index.Expire(*db_, log()));
  EXPECT_EQ(index.size(), 9u);  // a tenth of the limit free again
  ASSERT_FALSE(index.Expire(*db_, log()));  // done: nothing more forgotten
  EXPECT_EQ(index.size(), 9u);
  const std::string err = testing::internal::GetCapturedStderr();
  // Warned once, when the walk ended.
  const auto first = err.find("no longer deduplicated");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(err.find("no longer deduplicated", first + 1), std::string::npos) << err;
  EXPECT_EQ(Commit(index, {"id2"}, 20'000), std::vector<bool>{true});   // forgotten
  EXPECT_EQ(Commit(index, {"id3"}, 21'000), std::vector<bool>{false});  // kept
}

}  // namespace
}  // namespace cartwatch::storage
