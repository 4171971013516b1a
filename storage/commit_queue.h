// CommitQueue: the store's queue of requests and who commits them (docs/storage.md, "Group
// commit"). It knows no RocksDB: a RoundWriter (the store) answers queries and writes
// rounds; the queue decides which thread does it and when.
//
// One thread commits at a time. An event loop's Flush commits everything queued, round
// after round, unless another thread is committing (that one then takes what was queued
// meanwhile). A thread that is not an event loop's (a query, the background thread) queues
// with QueueAndCommit: its queries are answered at once, and when it queued a write, one
// round is committed there; what is left is handed to an event loop through the
// FlushRequester, so that such a thread never commits the event loops' requests on and on.
//
// Thread safety: every public method may be called from any thread; RoundWriter's methods
// run on the committing thread only, without the queue's lock, one call at a time.
#pragma once

#include <cstddef>
#include <vector>

#include <boost/system/error_code.hpp>

#include "storage/requests.h"
#include "storage/store.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace cartwatch::storage {

class CommitQueue {
 public:
  class RoundWriter {
   public:
    virtual ~RoundWriter() = default;
    // Answers the queries of `work` (Pending::IsQuery), in their order, and removes them.
    virtual void AnswerQueries(std::vector<Pending>& work) = 0;
    // Writes the requests of `work` (no queries) as one round and answers each.
    virtual void Commit(std::vector<Pending>& work) = 0;
  };

  struct Bounds {
    // A round holds whole requests, at least one, up to these (StoreOptions).
    std::size_t round_messages = 10'000;
    std::size_t round_bytes = 16u << 20;
    // Appends are refused (Errc::kOverloaded) beyond these many waiting or being written.
    std::size_t queued_messages = 200'000;
    std::size_t queued_bytes = 256u << 20;
  };

  // `writer` must outlive the queue.
  CommitQueue(const Bounds& bounds, RoundWriter& writer) : bounds_(bounds), writer_(writer) {}
  CommitQueue(const CommitQueue&) = delete;
  CommitQueue& operator=(const CommitQueue&) = delete;

  // Queues an append for the next Flush. Errc::kOverloaded beyond the bounds (one request
  // alone is never refused), Errc::kClosed after Close: nothing queued, `request.done` not
  // called (the caller answers).
  boost::system::error_code Append(AppendRequest& request) EXCLUDES(mu_);
  // Queues another request for the next Flush (moved from `request`); false (nothing
  // queued, `request` as it was) after Close.
  bool Queue(Pending& request) EXCLUDES(mu_);
  // Queues `request` of a thread that is not an event loop's and commits it here, or the
  // thread committing now takes it (see above); false (nothing queued) after Close.
  bool QueueAndCommit(Pending request) EXCLUDES(mu_, requester_mu_);

  // Queues `request` of a thread that is not an event loop's for an event loop to commit
  // with its own requests (the flush requester asks one to); without a flush requester it
  // is committed here, as QueueAndCommit does. false (nothing queued) after Close.
  bool QueueForLoop(Pending request) EXCLUDES(mu_, requester_mu_);
  // Commits everything queued on this thread, unless another thread is committing.
  void Flush() EXCLUDES(mu_);
  // For a thread that is not an event loop's, with nothing of its own queued (the store
  // after RocksDB takes writes again): commits at most a round here, hands the rest to an
  // event loop, as QueueAndCommit does.
  void FlushOnce() EXCLUDES(mu_, requester_mu_);
  void SetFlushRequester(FlushRequester* requester) EXCLUDES(requester_mu_);

  // Messages and their JSON bytes waiting for a commit or being written.
  std::pair<std::size_t, std::size_t> queued() const EXCLUDES(mu_);
  // Whether Close has begun.
  bool closed() const EXCLUDES(mu_);

  // Keeps every other thread from committing until ReleaseCommit (the store reopening
  // RocksDB): waits for the thread committing now. false (nothing held) after Close.
  bool HoldCommit() EXCLUDES(mu_);
  void ReleaseCommit() EXCLUDES(mu_);

  // Refuses everything queued from now on (Errc::kClosed), waits for the thread
  // committing now, then commits what is queued on this thread.
  void Close() EXCLUDES(mu_);

 private:
  // Commits the queue, a round at a time, until it is empty (`bounded`: one round), with
  // this thread as the one committer. REQUIRES: no other thread is committing.
  void CommitQueued(bool bounded) REQUIRES(mu_);
  // Nothing waits for a commit.
  bool QueueEmpty() const REQUIRES(mu_) {
    return queries_.empty() && queue_head_ == queue_.size();
  }
  // Moves the next round into `work`: every query, and the requests from the front of the
  // queue, whole and in order, within the round bounds (at least one). Takes time in
  // proportion to the round, not to the queue. REQUIRES: `work` empty.
  void TakeRound(std::vector<Pending>& work) REQUIRES(mu_);

  const Bounds bounds_;
  RoundWriter& writer_;

  mutable util::Mutex mu_;
  util::CondVar committed_;  // signalled when committing_ turns false
  // Requests that write, in arrival order, from queue_[queue_head_] on (TakeRound); the
  // queries, answered at the start of the next round whatever their place.
  std::vector<Pending> queue_ GUARDED_BY(mu_);
  std::size_t queue_head_ GUARDED_BY(mu_) = 0;
  std::vector<Pending> queries_ GUARDED_BY(mu_);
  std::size_t own_writes_ GUARDED_BY(mu_) = 0;  // requests with `own` in queue_[queue_head_..]
  std::size_t queued_messages_ GUARDED_BY(mu_) = 0;
  std::size_t queued_bytes_ GUARDED_BY(mu_) = 0;
  bool closing_ GUARDED_BY(mu_) = false;
  bool committing_ GUARDED_BY(mu_) = false;  // a thread commits (or holds the commit)
  // The round being committed. Swapped with queue_ when a round takes the whole queue, so
  // both keep their capacity. Used by the committing thread only.
  std::vector<Pending> round_;
  util::Mutex requester_mu_;  // held while flush_requester_ is set or called; after mu_
  FlushRequester* flush_requester_ GUARDED_BY(requester_mu_) = nullptr;
};

}  // namespace cartwatch::storage
