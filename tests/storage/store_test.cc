#include "storage/store.h"
#include "util/time.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

namespace cartwatch::storage {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cartwatch-store-test-" + std::to_string(std::random_device{}()));
    options_.data_dir = dir_.string();
    Reopen();
  }
  void TearDown() override {
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
  // Appends and waits for the group commit.
  AppendResult AppendSync(const std::string& site, std::vector<Message> messages) {
    std::promise<AppendResult> done;
    store_->Append(site, std::move(messages), [&](const AppendResult& r) { done.set_value(r); });
    store_->Flush();
    return done.get_future().get();
  }
  std::vector<std::string> AllJson(const std::string& site) {
    auto page = store_->ReadEvents(site, "", 1'000'000, SIZE_MAX);
    EXPECT_TRUE(page.has_value());
    std::vector<std::string> out;
    for (auto& e : page->events) out.push_back(e.json);
    return out;
  }

  // Commits one message on another thread whose callback blocks that thread, the
  // committer, until UnblockWriterAndClose(): the queue then fills up behind it.
  void BlockWriter() {
    std::promise<void> blocked;
    store_->Append("shop", {Message{"blocker", 1, "{}"}}, [this, &blocked](const AppendResult&) {
      blocked.set_value();
      release_.get_future().wait();
    });
    committer_ = std::thread([this] { store_->Flush(); });
    blocked.get_future().wait();
  }
  void UnblockWriterAndClose() {
    release_.set_value();
    committer_.join();  // it commits what was queued behind the blocker, then returns
    store_->Close();
  }

  fs::path dir_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
  std::promise<void> release_;
  std::thread committer_;
};

Message Msg(std::string id, std::int64_t at = 1'700'000'000'000) {
  return Message{id, at, "{\"messageId\":\"" + id + "\"}"};
}

TEST_F(StoreTest, ReadsBackInArrivalOrderWithResumableCursor) {
  ASSERT_FALSE(AppendSync("shop", {Msg("a"), Msg("b")}).error);
  ASSERT_FALSE(AppendSync("shop", {Msg("c")}).error);

  auto first = store_->ReadEvents("shop", "", 2, SIZE_MAX);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->events.size(), 2u);
  EXPECT_EQ(first->events[0].json, "{\"messageId\":\"a\"}");
  EXPECT_EQ(first->events[1].json, "{\"messageId\":\"b\"}");
  EXPECT_EQ(first->next_cursor, first->events[1].cursor);

  auto rest = store_->ReadEvents("shop", first->next_cursor, 10, SIZE_MAX);
  ASSERT_TRUE(rest.has_value());
  ASSERT_EQ(rest->events.size(), 1u);
  EXPECT_EQ(rest->events[0].json, "{\"messageId\":\"c\"}");

  auto done = store_->ReadEvents("shop", rest->next_cursor, 10, SIZE_MAX);
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->events.empty());
  EXPECT_EQ(done->next_cursor, rest->next_cursor);  // resuming later starts from here
}

TEST_F(StoreTest, AppendWaitsForFlush) {
  bool answered = false;
  store_->Append("shop", {Msg("a")}, [&](const AppendResult& r) {
    EXPECT_FALSE(r.error);
    answered = true;
  });
  EXPECT_FALSE(answered);
  store_->Flush();  // commits on this thread and answers before returning
  EXPECT_TRUE(answered);
}

TEST_F(StoreTest, SitesAreSeparate) {
  ASSERT_FALSE(AppendSync("a", {Msg("1")}).error);
  ASSERT_FALSE(AppendSync("ab", {Msg("1")}).error);  // same id, other site: not a duplicate
  EXPECT_EQ(AllJson("a").size(), 1u);
  EXPECT_EQ(AllJson("ab").size(), 1u);
  EXPECT_TRUE(AllJson("b").empty());
}

TEST_F(StoreTest, DuplicateMessageIdIsAcknowledgedButStoredOnce) {
  AppendResult first = AppendSync("shop", {Msg("x"), Msg("x"), Msg("y")});
  EXPECT_FALSE(first.error);
  EXPECT_EQ(first.stored, 2u);
  EXPECT_EQ(first.duplicates, 1u);
  AppendResult again = AppendSync("shop", {Msg("y"), Msg("z")});
  EXPECT_EQ(again.stored, 1u);
  EXPECT_EQ(again.duplicates, 1u);
  EXPECT_EQ(AllJson("shop").size(), 3u);
}

TEST_F(StoreTest, DedupWindowExpires) {
  options_.dedup_window = std::chrono::hours(1);
  Reopen();
  const std::int64_t t0 = 1'700'000'000'000;
  EXPECT_EQ(AppendSync("shop", {Msg("x", t0)}).stored, 1u);
  EXPECT_EQ(AppendSync("shop", {Msg("x", t0 + 3'599'000)}).duplicates, 1u);
  EXPECT_EQ(AppendSync("shop", {Msg("x", t0 + 3'600'000)}).stored, 1u);
}

TEST_F(StoreTest, SurvivesReopenAndKeepsOrderAndDedup) {
  ASSERT_FALSE(AppendSync("shop", {Msg("a"), Msg("b")}).error);
  Reopen();
  EXPECT_EQ(AppendSync("shop", {Msg("a")}).duplicates, 1u);
  // An earlier receive time after restart (clock stepped back) still sorts after.
  ASSERT_FALSE(AppendSync("shop", {Msg("c", 1'600'000'000'000)}).error);
  auto all = AllJson("shop");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2], "{\"messageId\":\"c\"}");
}

TEST_F(StoreTest, DedupWindowIsMeasuredAcrossReopenAndExpiredIdsAreForgotten) {
  options_.dedup_window = std::chrono::hours(1);
  Reopen();
  const std::int64_t t0 = 1'700'000'000'000;
  ASSERT_EQ(AppendSync("shop", {Msg("old", t0)}).stored, 1u);
  ASSERT_EQ(AppendSync("shop", {Msg("recent", t0 + 3'000'000)}).stored, 1u);
  // Later on the receive clock, "old" has left the window (this commit's expiry pass
  // deletes its record) and "recent" has not; after a restart the index is rebuilt from
  // the dedup log and gives the same answers.
  ASSERT_EQ(AppendSync("shop", {Msg("now", t0 + 3'000'000 + 3'599'000)}).stored, 1u);
  Reopen();
  EXPECT_EQ(AppendSync("shop", {Msg("recent", t0 + 3'000'000 + 3'599'500)}).duplicates, 1u);
  EXPECT_EQ(AppendSync("shop", {Msg("old", t0 + 3'000'000 + 3'599'500)}).stored, 1u);
  EXPECT_EQ(AppendSync("shop", {Msg("now", t0 + 3'000'000 + 3'599'500)}).duplicates, 1u);
}

TEST_F(StoreTest, DedupIndexPastItsLimitForgetsTheOldestIds) {
  options_.dedup_max_ids = 1000;
  Reopen();
  const std::int64_t t0 = 1'700'000'000'000;
  for (int i = 0; i < 1200; ++i) {
    ASSERT_EQ(AppendSync("shop", {Msg("id-" + std::to_string(i), t0 + i)}).stored, 1u) << i;
  }
  // The oldest were forgotten to bring the index back under its limit; the newest are
  // still deduplicated, also after a restart (the forgotten ones' log records are gone).
  for (int pass = 0; pass < 2; ++pass) {
    EXPECT_EQ(AppendSync("shop", {Msg("id-1199", t0 + 2000)}).duplicates, 1u) << pass;
    EXPECT_EQ(AppendSync("shop", {Msg("id-" + std::to_string(pass), t0 + 2000)}).stored, 1u)
        << pass;
    Reopen();
  }
}

TEST_F(StoreTest, DeleteEventsBeforeCutsEverySiteAtTheTime) {
  const std::int64_t t0 = 1'700'000'000'000;
  // In arrival order, as the collector stamps them.
  ASSERT_FALSE(AppendSync("a", {Msg("old-a", t0)}).error);
  ASSERT_FALSE(AppendSync("b", {Msg("old-b", t0 + 1)}).error);
  ASSERT_FALSE(AppendSync("a", {Msg("new-a", t0 + 10'000)}).error);
  ASSERT_FALSE(AppendSync("b", {Msg("new-b", t0 + 20'000)}).error);
  ASSERT_FALSE(store_->DeleteEventsBefore(t0 + 5'000));
  EXPECT_EQ(AllJson("a"), (std::vector<std::string>{"{\"messageId\":\"new-a\"}"}));
  EXPECT_EQ(AllJson("b"), (std::vector<std::string>{"{\"messageId\":\"new-b\"}"}));
  // Appends go on as before, after the cut.
  ASSERT_FALSE(AppendSync("a", {Msg("later", t0 + 30'000)}).error);
  EXPECT_EQ(AllJson("a").size(), 2u);
}

// A page view of visitor `anonymous_id`: a message that changes the visitor's record.
Message PageView(std::string id, std::string anonymous_id, std::int64_t at) {
  return Message{id, at,
                 "{\"type\":\"page\",\"messageId\":\"" + id + "\",\"anonymousId\":\"" +
                     anonymous_id + "\",\"receivedAt\":\"" + util::FormatIso8601(at) + "\"}"};
}

TEST_F(StoreTest, DeleteEventsBeforeKeepsTheEventsWhoseChangesAreUnwritten) {
  options_.state_write_delay = std::chrono::minutes(1);
  Reopen();
  const std::int64_t t0 = 1'700'000'000'000;
  ASSERT_FALSE(AppendSync("shop", {PageView("a", "v1", t0)}).error);
  ASSERT_FALSE(AppendSync("shop", {PageView("b", "v2", t0 + 10'000)}).error);
  // Both records are unwritten (a minute has not passed on the receive clock): a replay
  // would need both events, so neither goes.
  ASSERT_FALSE(store_->DeleteEventsBefore(t0 + 20'000));
  EXPECT_EQ(AllJson("shop").size(), 2u);
  // Two minutes later v1's and v2's records are written with this commit; now only the
  // new event's change is unwritten.
  ASSERT_FALSE(AppendSync("shop", {PageView("c", "v3", t0 + 120'000)}).error);
  ASSERT_FALSE(store_->DeleteEventsBefore(t0 + 20'000));
  ASSERT_EQ(AllJson("shop").size(), 1u);
  // The visitors are whole, also after a restart.
  Reopen();
  for (const char* id : {"v1", "v2", "v3"}) {
    auto visitor = store_->ReadVisitor("shop", id);
    ASSERT_TRUE(visitor.has_value());
    ASSERT_TRUE(visitor->has_value()) << id;
    EXPECT_EQ((*visitor)->page_views, 1) << id;
  }
}

// The benchmarks' baseline (StoreOptions::apply_state = false): the messages are stored
// and deduplicated as always, no visitor record is built, also not by the replay at the
// next open.
TEST_F(StoreTest, WithoutStateMessagesAreStoredAndDeduplicatedButNoRecordIsBuilt) {
  options_.apply_state = false;
  Reopen();
  const std::int64_t t0 = 1'700'000'000'000;
  AppendResult r = AppendSync("shop", {PageView("a", "v1", t0), PageView("a", "v1", t0)});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.stored, 1u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(AllJson("shop").size(), 1u);
  auto visitor = store_->ReadVisitor("shop", "v1");
  ASSERT_TRUE(visitor.has_value());
  EXPECT_FALSE(visitor->has_value());
  Reopen();
  visitor = store_->ReadVisitor("shop", "v1");
  ASSERT_TRUE(visitor.has_value());
  EXPECT_FALSE(visitor->has_value());
  // The same store with state on builds the record from the message.
  ASSERT_FALSE(AppendSync("shop", {PageView("b", "v2", t0 + 1'000)}).error);
  options_.apply_state = true;
  Reopen();
  ASSERT_FALSE(AppendSync("shop", {PageView("c", "v3", t0 + 2'000)}).error);
  visitor = store_->ReadVisitor("shop", "v3");
  ASSERT_TRUE(visitor.has_value());
  ASSERT_TRUE(visitor->has_value());
  EXPECT_EQ((*visitor)->page_views, 1);
}

// Retention runs on the store's background thread, not on the threads that commit.
TEST_F(StoreTest, RetentionRunsInTheBackground) {
  options_.retention = std::chrono::hours(1);
  options_.retention_interval = std::chrono::milliseconds(20);
  Reopen();
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  // Received two hours ago (a replayed import, say) and now, each its own commit: a record
  // batch goes as a whole, once its newest event is past the retention
  // (CommitStagesTest.TheScansReadRecordBatchesAndSingleEventsAlike).
  ASSERT_FALSE(AppendSync("shop", {Msg("old", now - 7'200'000)}).error);
  ASSERT_FALSE(AppendSync("shop", {Msg("new", now)}).error);
  std::vector<std::string> all = AllJson("shop");
  for (const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       all.size() > 1 && std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(std::chrono::milliseconds(5))) {
    all = AllJson("shop");
  }
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], "{\"messageId\":\"new\"}");
}

TEST_F(StoreTest, RejectsMalformedCursor) {
  for (std::string bad : {"xyz", "00000000000000zz", "0123"}) {
    auto page = store_->ReadEvents("shop", bad, 10, SIZE_MAX);
    ASSERT_FALSE(page.has_value()) << bad;
    EXPECT_EQ(page.error(), make_error_code(Errc::kInvalidArgument));
  }
}

TEST_F(StoreTest, PageStopsAtByteBudgetButReturnsAtLeastOne) {
  ASSERT_FALSE(AppendSync("shop", {Msg("a"), Msg("b"), Msg("c")}).error);
  auto page = store_->ReadEvents("shop", "", 10, 1);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->events.size(), 1u);
}

TEST_F(StoreTest, ConcurrentAppendsAndFlushesCommitEverything) {
  constexpr int kThreads = 8, kPerThread = 500;
  std::atomic<int> stored{0}, failed{0}, answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        store_->Append("shop", {Msg(std::to_string(t) + "-" + std::to_string(i))},
                       [&](const AppendResult& r) {
                         r.error ? ++failed : stored += static_cast<int>(r.stored);
                         ++answered;
                       });
        if (i % 7 == 0) store_->Flush();  // often another thread is committing already
      }
    });
  }
  for (auto& t : threads) t.join();
  store_->Close();  // commits everything queued before it returns
  EXPECT_EQ(answered.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(stored.load(), kThreads * kPerThread);
  Reopen();
  EXPECT_EQ(AllJson("shop").size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST_F(StoreTest, RefusesAppendsAfterClose) {
  store_->Close();
  AppendResult r = AppendSync("shop", {Msg("a")});
  EXPECT_EQ(r.error, make_error_code(Errc::kClosed));
  EXPECT_EQ(store_->CheckWritable(), make_error_code(Errc::kClosed));
}

TEST_F(StoreTest, RefusesWhenQueueIsFull) {
  // The writer cannot drain while we hold its callback, so the queue fills.
  options_.max_queued_messages = 2;
  Reopen();
  BlockWriter();
  std::atomic<int> overloaded{0};
  for (int i = 0; i < 3; ++i) {
    store_->Append("shop", {Msg("b" + std::to_string(i))}, [&](const AppendResult& r) {
      if (r.error == make_error_code(Errc::kOverloaded)) ++overloaded;
    });
  }
  // The message being committed still counts: one more fits, the other two are refused.
  EXPECT_EQ(overloaded.load(), 2);
  UnblockWriterAndClose();  // the callbacks above use this test's locals
}

TEST_F(StoreTest, QueueIsAlsoBoundedInBytes) {
  options_.max_queued_bytes = 100;
  Reopen();
  BlockWriter();
  Message big = Msg("big");
  big.json = std::string(200, ' ');
  AppendResult refused;
  store_->Append("shop", {big}, [&](const AppendResult& r) { refused = r; });
  EXPECT_EQ(refused.error, make_error_code(Errc::kOverloaded));
  UnblockWriterAndClose();
}

TEST_F(StoreTest, CheckWritableSucceedsWhenOpen) { EXPECT_FALSE(store_->CheckWritable()); }

TEST(StoreOpenTest, ReportsDirectoryAndReason) {
  auto file = fs::temp_directory_path() / "cartwatch-store-test-not-a-dir";
  std::ofstream(file) << "x";
  StoreOptions options;
  options.data_dir = file.string();
  std::string error;
  auto opened = Store::Open(options, &error);
  EXPECT_FALSE(opened.has_value());
  EXPECT_NE(error.find(file.string()), std::string::npos) << error;
  fs::remove(file);
}

}  // namespace
}  // namespace cartwatch::storage
