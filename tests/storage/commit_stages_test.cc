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

// Every put of the batch as "<key>" -> value.
std::vector<std::pair<std::string, std::string>> Puts(const rocksdb::WriteBatch& batch) {
  struct All : rocksdb::WriteBatch::Handler {
    std::vector<std::pair<std::string, std::string>> puts;
    rocksdb::Status PutCF(uint32_t, const rocksdb::Slice& key, const rocksdb::Slice& value) override {
      puts.emplace_back(key.ToString(), value.ToString());
      return rocksdb::Status::OK();
    }
  } handler;
  EXPECT_TRUE(batch.Iterate(&handler).ok());
  return handler.puts;
}

// The events of a value, as "id=json".
std::vector<std::string> Decoded(std::string_view key, std::string_view value) {
  std::vector<std::string> seen;
  EXPECT_TRUE(ForEachEventOfValue(GetBigEndian64(key.data() + key.size() - 8), value,
                                  [&](std::uint64_t id, std::string_view json) {
                                    seen.push_back(std::to_string(id) + "=" + std::string(json));
                                    return true;
                                  }));
  return seen;
}

TEST_F(CommitStagesTest, TheEventLogPutsOneRecordBatchASiteARoundKeyedByItsLastEvent) {
  EventLogStage log;
  log.Attach(cf(), cf());
  const Message a1{"a1", 1000, R"({"n":"a1"})"}, b1{"b1", 1000, R"({"n":"b1"})"},
      a2{"a2", 1000, R"({"n":"a2"})"}, a3{"a3", 1000, R"({"n":"a3"})"};
  CommitRound round{.batch = &batch_, .last_event_id = 9};
  log.Begin(round);
  // Two sites' messages interleaved in one round.
  std::uint64_t id = 10;
  for (const auto& [site, m] : std::vector<std::pair<std::string, const Message*>>{
           {"shop", &a1}, {"blog", &b1}, {"shop", &a2}, {"shop", &a3}}) {
    round.last_event_id = id;
    ++round.stored;
    ASSERT_FALSE(log.Stored(round, SitePrefix(site), id, *m));
    id += 5;
  }
  ASSERT_FALSE(log.Finish(round));
  auto puts = Puts(batch_);
  ASSERT_EQ(puts.size(), 3u);
  EXPECT_EQ(puts[0].first, EventKey(SitePrefix("shop"), 25));  // its last event
  EXPECT_EQ(puts[0].second.front(), kEventBatchV1);
  EXPECT_EQ(Decoded(puts[0].first, puts[0].second),
            (std::vector<std::string>{R"(10={"n":"a1"})", R"(20={"n":"a2"})", R"(25={"n":"a3"})"}));
  // A site's only event of the round: the message alone, as before record batches.
  EXPECT_EQ(puts[1], std::make_pair(EventKey(SitePrefix("blog"), 15), b1.json));
  EXPECT_EQ(puts[2].first, kLastEventIdKey);
  log.End(round, true);

  // The next round starts afresh; a JSON that would read as a batch is never stored alone.
  batch_.Clear();
  const Message odd{"odd", 1000, std::string(1, kEventBatchV1) + "x"};
  round = CommitRound{.batch = &batch_, .last_event_id = 30, .stored = 1};
  log.Begin(round);
  ASSERT_FALSE(log.Stored(round, SitePrefix("shop"), 30, odd));
  ASSERT_FALSE(log.Finish(round));
  puts = Puts(batch_);
  ASSERT_EQ(puts.size(), 2u);
  EXPECT_EQ(puts[0].first, EventKey(SitePrefix("shop"), 30));
  EXPECT_EQ(Decoded(puts[0].first, puts[0].second), std::vector<std::string>{"30=" + odd.json});
}

TEST_F(CommitStagesTest, AFullRecordBatchIsPutAndTheSiteStartsAnother) {
  EventLogStage log;
  log.Attach(cf(), cf());
  const Message big{"m", 1000, "{\"x\":\"" + std::string(100 * 1024, 'x') + "\"}"};
  CommitRound round{.batch = &batch_, .last_event_id = 0};
  log.Begin(round);
  for (std::uint64_t id = 1; id <= 7; ++id) {
    round.last_event_id = id;
    ++round.stored;
    ASSERT_FALSE(log.Stored(round, SitePrefix("shop"), id, big));
  }
  ASSERT_FALSE(log.Finish(round));
  // 100 KiB messages: a batch closes at its third (past kMaxRecordBatchBytes).
  std::vector<std::string> keys, events;
  for (const auto& [key, value] : Puts(batch_)) {
    if (key == kLastEventIdKey) continue;
    EXPECT_LE(value.size(), kMaxRecordBatchBytes + big.json.size());
    keys.push_back(key);
    for (const std::string& e : Decoded(key, value)) events.push_back(e.substr(0, e.find('=')));
  }
  EXPECT_EQ(keys, (std::vector<std::string>{EventKey(SitePrefix("shop"), 3),
                                            EventKey(SitePrefix("shop"), 6),
                                            EventKey(SitePrefix("shop"), 7)}));
  EXPECT_EQ(events, (std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7"}));
}

TEST_F(CommitStagesTest, TheScansReadRecordBatchesAndSingleEventsAlike) {
  // Site "s": events 10 and 20 stored alone (the layout before record batches), then a
  // batch of 30, 31, 32 (key 32), then 40 alone.
  rocksdb::WriteBatch batch;
  const std::string s = SitePrefix("s");
  batch.Put(EventKey(s, 10), "e10");
  batch.Put(EventKey(s, 20), "e20");
  std::string value;
  AppendBatchedEvent(value, 0, 30, "e30");
  AppendBatchedEvent(value, 30, 31, "e31");
  AppendBatchedEvent(value, 31, 32, "e32");
  batch.Put(EventKey(s, 32), value);
  batch.Put(EventKey(s, 40), "e40");
  ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());

  // Pages of two: the cursor falls inside the batch, and the next page goes on from there.
  std::vector<std::string> pages;
  std::string cursor;
  for (int i = 0; i < 10; ++i) {
    auto page = ReadEventPage(*db_, cf(), s, cursor, 2, 1 << 20);
    ASSERT_TRUE(page);
    if (page->events.empty()) break;
    std::string line;
    for (const auto& e : page->events) line += e.json + "@" + std::to_string(*DecodeCursor(e.cursor)) + " ";
    pages.push_back(line);
    cursor = page->next_cursor;
  }
  EXPECT_EQ(pages, (std::vector<std::string>{"e10@10 e20@20 ", "e30@30 e31@31 ", "e32@32 e40@40 "}));
  // A byte limit stops inside a batch too.
  auto page = ReadEventPage(*db_, cf(), s, EncodeCursor(20), 100, 1);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->next_cursor, EncodeCursor(30));

  std::vector<std::string> seen;
  auto collect = [&](std::string_view, std::uint64_t id, std::string_view json) {
    seen.push_back(std::string(json));
    return boost::system::error_code();
  };
  ASSERT_FALSE(ForEachEventFrom(*db_, cf(), 31, collect));
  EXPECT_EQ(seen, (std::vector<std::string>{"e31", "e32", "e40"}));

  // Retention deletes a batch once its newest event is below the cutoff: at 32 the batch
  // stays whole (31 and 30 with it), at 33 it goes.
  ASSERT_FALSE(DeleteEventsBelow(*db_, cf(), 32));
  seen.clear();
  ASSERT_FALSE(ForEachEventFrom(*db_, cf(), 0, collect));
  EXPECT_EQ(seen, (std::vector<std::string>{"e30", "e31", "e32", "e40"}));
  ASSERT_FALSE(DeleteEventsBelow(*db_, cf(), 33));
  seen.clear();
  ASSERT_FALSE(ForEachEventFrom(*db_, cf(), 0, collect));
  EXPECT_EQ(seen, std::vector<std::string>{"e40"});

  // A batch that does not decode is corruption to an export, not a short page; the replay
  // skips it (with an error in the log) and goes on.
  ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), EventKey(s, 50), std::string(1, kEventBatchV1) + "x").ok());
  ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), EventKey(s, 60), "e60").ok());
  EXPECT_EQ(ReadEventPage(*db_, cf(), s, "", 10, 1 << 20).error(), Errc::kCorruption);
  seen.clear();
  ASSERT_FALSE(ForEachEventFrom(*db_, cf(), 0, collect));
  EXPECT_EQ(seen, (std::vector<std::string>{"e40", "e60"}));
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
