// CommitQueue on its own, with a RoundWriter that records what it is given (no RocksDB):
// rounds hold whole requests within the bounds, appends are refused beyond the queue's
// bounds and after Close, queries are answered before a round's writes, a thread that is
// not an event loop's hands what it leaves to the flush requester, and a held commit keeps
// every other thread from committing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/commit_queue.h"

namespace cartwatch::storage {
namespace {

// Records each round as the sizes of its appends ("a3" for three messages), "q" for a
// query answered, "r" for a read after the writes.
class Recorder final : public CommitQueue::RoundWriter {
 public:
  void AnswerQueries(std::vector<Pending>& work) override {
    std::string line;
    std::erase_if(work, [&](Pending& p) {
      if (!p.IsQuery()) return false;
      line += "q";
      std::get<ReadRequest>(p.request).read({});
      return true;
    });
    if (!line.empty()) log.push_back(line);
  }
  void Commit(std::vector<Pending>& work) override {
    std::string line;
    for (Pending& p : work) {
      if (auto* append = std::get_if<AppendRequest>(&p.request)) {
        line += "a" + std::to_string(append->messages.size());
        AppendResult result;
        result.stored = append->messages.size();
        append->done(result);
      } else if (auto* read = std::get_if<ReadRequest>(&p.request)) {
        line += "r";
        read->read({});
      } else {
        line += "e";
        std::get<EraseRequest>(p.request).done({});
      }
    }
    log.push_back(line);
  }
  std::vector<std::string> log;
};

class Requester final : public FlushRequester {
 public:
  void RequestFlush() override { ++requests; }
  int requests = 0;
};

AppendRequest Messages(std::size_t n, int* answered) {
  AppendRequest request;
  request.site = "shop";
  request.messages.resize(n);
  request.bytes = n * 10;
  request.done = [answered](const AppendResult& r) {
    if (!r.error) ++*answered;
  };
  return request;
}

TEST(CommitQueueTest, RoundsHoldWholeRequestsWithinTheBounds) {
  Recorder writer;
  CommitQueue queue({.round_messages = 5, .round_bytes = 1000}, writer);
  int answered = 0;
  for (std::size_t n : {2, 2, 4, 9}) {
    AppendRequest request = Messages(n, &answered);
    ASSERT_FALSE(queue.Append(request));
  }
  queue.Flush();
  // 2+2 fit, 4 would not; 4 alone; 9 is over the cap but a round holds at least one.
  EXPECT_EQ(writer.log, (std::vector<std::string>{"a2a2", "a4", "a9"}));
  EXPECT_EQ(answered, 4);
}

TEST(CommitQueueTest, AppendsAreRefusedBeyondTheQueueBoundsAndAfterClose) {
  Recorder writer;
  CommitQueue queue({.queued_messages = 10, .queued_bytes = 1000}, writer);
  int answered = 0;
  AppendRequest big = Messages(50, &answered);
  EXPECT_FALSE(queue.Append(big));  // alone in the queue: never refused
  AppendRequest more = Messages(1, &answered);
  EXPECT_EQ(queue.Append(more), make_error_code(Errc::kOverloaded));
  EXPECT_EQ(more.messages.size(), 1u);  // left to the caller, who answers it
  queue.Flush();
  AppendRequest after = Messages(1, &answered);
  EXPECT_FALSE(queue.Append(after));  // the bound counts what waits or is being written
  queue.Close();  // commits what is queued
  EXPECT_EQ(answered, 2);
  AppendRequest closed = Messages(1, &answered);
  EXPECT_EQ(queue.Append(closed), make_error_code(Errc::kClosed));
  EraseRequest erase_request;
  erase_request.done = [](const EraseResult&) {};
  Pending erase{std::move(erase_request)};
  EXPECT_FALSE(queue.Queue(erase));
  EXPECT_TRUE(queue.closed());
}

TEST(CommitQueueTest, AnotherThreadsQueryIsAnsweredAndTheLoopsRequestsHandedOn) {
  Recorder writer;
  CommitQueue queue({}, writer);
  Requester requester;
  queue.SetFlushRequester(&requester);
  int answered = 0;
  AppendRequest loop_request = Messages(3, &answered);
  ASSERT_FALSE(queue.Append(loop_request));  // an event loop's, not flushed yet
  bool read = false;
  ASSERT_TRUE(queue.QueueAndCommit(Pending{ReadRequest{.read = [&](auto) { read = true; }}}));
  // The query is answered at once; the loop's append is left for the loop, which is asked.
  EXPECT_TRUE(read);
  EXPECT_EQ(writer.log, std::vector<std::string>{"q"});
  EXPECT_EQ(requester.requests, 1);
  EXPECT_EQ(answered, 0);
  queue.Flush();  // what the requested flush does
  EXPECT_EQ(answered, 1);
  queue.SetFlushRequester(nullptr);
  // Without a requester such a thread commits the whole queue itself.
  AppendRequest again = Messages(1, &answered);
  ASSERT_FALSE(queue.Append(again));
  ASSERT_TRUE(queue.QueueAndCommit(
      Pending{ReadRequest{.read = [](auto) {}, .write_state = true}}));
  EXPECT_EQ(writer.log.back(), "a1r");
  EXPECT_EQ(answered, 2);
}

TEST(CommitQueueTest, AHeldCommitKeepsOtherThreadsFromCommitting) {
  Recorder writer;
  CommitQueue queue({}, writer);
  int answered = 0;
  ASSERT_TRUE(queue.HoldCommit());
  AppendRequest request = Messages(1, &answered);
  ASSERT_FALSE(queue.Append(request));
  queue.Flush();  // another thread commits: it is held, so this one leaves it queued
  EXPECT_EQ(answered, 0);
  queue.ReleaseCommit();
  queue.FlushOnce();  // the holder, done, has what was queued meanwhile committed
  EXPECT_EQ(answered, 1);
}

}  // namespace
}  // namespace cartwatch::storage
