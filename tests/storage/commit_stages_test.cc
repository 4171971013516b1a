// The stages of the commit pipeline (storage/commit_stage.h) one by one: what each puts into
// a round's batch, and that a round that is not written leaves each as if it had not begun.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/dedup_index.h"
#include "storage/erase.h"
#include "storage/event_log.h"
#include "storage/keys.h"
#include "storage/state.h"
#include "storage/state_stage.h"
#include "tests/profiles/helpers.h"
#include "tests/storage/temp_db.h"

namespace cartwatch::storage {
namespace {

namespace h = profiles::helpers;

// Every key the batch puts, in order ("<column family id>:<key>").
std::vector<std::string> PutKeys(const rocksdb::WriteBatch& batch) {
  struct Keys : rocksdb::WriteBatch::Handler {
    std::vector<std::string> keys;
    rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
      keys.push_back(std::to_string(cf) + ":" + key.ToString());
      return rocksdb::Status::OK();
    }
  } handler;
  EXPECT_TRUE(batch.Iterate(&handler).ok());
  return handler.keys;
}

class CommitStagesTest : public TempDbTest {
 protected:
  rocksdb::WriteBatch batch_;
};

TEST_F(CommitStagesTest, TheEventLogPutsEachEventAndTheLastIdOfARoundThatStored) {
  EventLogStage log;
  log.Attach(cf(), cf());
  CommitRound round{.batch = &batch_, .last_event_id = 41};
  ASSERT_FALSE(log.Finish(round));
  EXPECT_TRUE(PutKeys(batch_).empty());  // nothing stored: not even the last id

  const Message m{"m-1", 1000, R"({"type":"page"})"};
  round.last_event_id = 42;
  round.stored = 1;
  ASSERT_FALSE(log.Stored(round, SitePrefix("shop"), 42, m));
  ASSERT_FALSE(log.Finish(round));
  EXPECT_EQ(PutKeys(batch_), (std::vector<std::string>{"0:" + EventKey(SitePrefix("shop"), 42),
                                                       "0:" + std::string(kLastEventIdKey)}));
}

TEST_F(CommitStagesTest, TheDedupIndexPutsItsRecordOnlyForARoundThatStored) {
  DedupIndex dedup(std::chrono::hours(24), 1000);
  ASSERT_FALSE(dedup.Load(*db_, cf()));
  const Message m{"m-1", 5000, "{}"};
  CommitRound round{.batch = &batch_, .commit_time = 5000, .last_event_id = 7};
  dedup.Begin(round);
  ASSERT_FALSE(dedup.Finish(round));
  EXPECT_TRUE(PutKeys(batch_).empty());
  EXPECT_TRUE(dedup.Admit(round, "p", m));
  EXPECT_FALSE(dedup.Admit(round, "p", m));  // the same id again within the round
  round.stored = 1;
  ASSERT_FALSE(dedup.Finish(round));
  EXPECT_EQ(PutKeys(batch_), std::vector<std::string>{"0:" + DedupLogKey(7)});
  // Not written: as if the round had not been.
  dedup.End(round, /*written=*/false);
  dedup.Begin(round);
  EXPECT_TRUE(dedup.Admit(round, "p", m));
}

TEST_F(CommitStagesTest, TheStateStageAppliesStagesAndDropsWhatARoundThatFailedApplied) {
  StateOptions options;
  options.write_delay_us = 0;  // every change is written in its round
  StateWriter writer(db_.get(), cf(), cf(), options);
  StateStage stage(/*apply=*/true);
  stage.Attach(&writer, cf());
  const std::string json = h::Page("a:anna", h::kT0, "/");
  const Message m{"m-1", h::kT0, json};

  CommitRound round{.batch = &batch_, .last_event_id = 0, .replay_from = 1};
  round.last_event_id = 1;
  round.stored = 1;
  ASSERT_FALSE(stage.Stored(round, SitePrefix("shop"), 1, m));
  EXPECT_EQ(writer.unwritten(), 1u);
  ASSERT_FALSE(stage.Finish(round));
  // The visitor's record, and the replay point moved past the round.
  EXPECT_EQ(PutKeys(batch_), (std::vector<std::string>{"0:" + PersonKey(SitePrefix("shop"), "anna"),
                                                       "0:" + std::string(kStateReplayFromKey)}));
  EXPECT_EQ(round.replay_from, 2u);
  stage.End(round, /*written=*/false);  // the batch was not written
  EXPECT_EQ(writer.unwritten(), 0u);
  EXPECT_EQ(writer.cached(), 0u);  // dropped: the store rebuilds from the event log

  // apply = false (StoreOptions::apply_state): no record at all.
  StateStage off(/*apply=*/false);
  off.Attach(&writer, cf());
  ASSERT_FALSE(off.Stored(round, SitePrefix("shop"), 2, m));
  EXPECT_EQ(writer.unwritten(), 0u);
}

TEST_F(CommitStagesTest, TheEraseStageNumbersJobsOnAndForgetsARoundThatFailed) {
  // An earlier run left job 5.
  ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), EraseJobKey(5), "x").ok());
  EraseStage erase;
  ASSERT_FALSE(erase.Load(*db_, cf(), cf(), cf(), nullptr));
  StateOptions options;
  StateWriter writer(db_.get(), cf(), cf(), options);
  const std::string prefix = SitePrefix("shop");
  ASSERT_FALSE(writer.Apply(prefix, 1, h::Identify("a:dev,u:anna", h::kT0)));

  CommitRound round{.batch = &batch_, .last_event_id = 1};
  EraseRequest request{.site = "shop", .user_id = "anna", .only_visitors = {}, .done = {}};
  EraseResult result;
  ASSERT_FALSE(erase.Apply(writer, request, round.last_event_id, round, result));
  EXPECT_TRUE(result.found);
  EXPECT_EQ(result.visitors, 1u);
  ASSERT_FALSE(erase.Finish(round));
  EXPECT_EQ(PutKeys(batch_), std::vector<std::string>{"0:" + EraseJobKey(6)});
  erase.End(round, /*written=*/false);
  EXPECT_FALSE(erase.wrote_jobs());

  // The next round numbers its job 6 again, and a written round moves on.
  batch_.Clear();
  ASSERT_FALSE(writer.Apply(prefix, 2, h::Identify("a:dev2,u:bob", h::kT0)));
  EraseRequest bob{.site = "shop", .user_id = "bob", .only_visitors = {}, .done = {}};
  ASSERT_FALSE(erase.Apply(writer, bob, 2, round, result));
  ASSERT_FALSE(erase.Finish(round));
  EXPECT_EQ(PutKeys(batch_), std::vector<std::string>{"0:" + EraseJobKey(6)});
  erase.End(round, /*written=*/true);
  EXPECT_TRUE(erase.wrote_jobs());
  batch_.Clear();
  ASSERT_FALSE(erase.Apply(writer, request, 3, round, result));
  ASSERT_FALSE(erase.Finish(round));
  EXPECT_EQ(PutKeys(batch_), std::vector<std::string>{"0:" + EraseJobKey(7)});
  // Only some visitors: no job.
  erase.End(round, true);
  batch_.Clear();
  EraseRequest some{.site = "shop", .user_id = "anna", .only_visitors = {"dev"}, .done = {}};
  ASSERT_FALSE(erase.Apply(writer, some, 3, round, result));
  ASSERT_FALSE(erase.Finish(round));
  EXPECT_TRUE(PutKeys(batch_).empty());
}

TEST_F(CommitStagesTest, EventLogScansSeekSiteBySite) {
  rocksdb::WriteBatch batch;
  for (const char* site : {"a", "bb", "c"}) {
    for (std::uint64_t id : {10, 20, 30}) batch.Put(EventKey(SitePrefix(site), id), site);
  }
  ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
  std::vector<std::string> seen;
  ASSERT_FALSE(ForEachEventFrom(*db_, cf(), 20,
                                [&](std::string_view prefix, std::uint64_t id, std::string_view json) {
                                  seen.push_back(std::string(json) + std::to_string(id));
                                  return boost::system::error_code();
                                }));
  // Sites in key order: a site prefix is its length, then its name.
  EXPECT_EQ(seen, (std::vector<std::string>{"a20", "a30", "c20", "c30", "bb20", "bb30"}));

  auto page = ReadEventPage(*db_, cf(), SitePrefix("bb"), "", 2, 1 << 20);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->events.size(), 2u);
  EXPECT_EQ(page->next_cursor, EncodeCursor(20));
  page = ReadEventPage(*db_, cf(), SitePrefix("bb"), page->next_cursor, 10, 1 << 20);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].json, "bb");
  EXPECT_FALSE(ReadEventPage(*db_, cf(), SitePrefix("bb"), "nope", 10, 1 << 20));

  ASSERT_FALSE(DeleteEventsBelow(*db_, cf(), 30));
  seen.clear();
  ASSERT_FALSE(ForEachEventFrom(*db_, cf(), 0,
                                [&](std::string_view, std::uint64_t id, std::string_view json) {
                                  seen.push_back(std::string(json) + std::to_string(id));
                                  return boost::system::error_code();
                                }));
  EXPECT_EQ(seen, (std::vector<std::string>{"a30", "c30", "bb30"}));
}

}  // namespace
}  // namespace cartwatch::storage
