#include "storage/commit_queue.h"

#include <cassert>
#include <iterator>
#include <utility>

namespace cartwatch::storage {

boost::system::error_code CommitQueue::Append(AppendRequest& request) {
  util::MutexLock lock(mu_);
  if (closing_) return Errc::kClosed;
  const bool idle = queued_messages_ == 0;  // one request alone is never refused
  const std::size_t messages = request.messages.size();
  if (!idle && (queued_messages_ + messages > bounds_.queued_messages ||
                queued_bytes_ + request.bytes > bounds_.queued_bytes)) {
    return Errc::kOverloaded;
  }
  queued_messages_ += messages;
  queued_bytes_ += request.bytes;
  queue_.push_back(Pending{std::move(request)});
  return {};
}

bool CommitQueue::Queue(Pending& request) {
  util::MutexLock lock(mu_);
  if (closing_) return false;
  queue_.push_back(std::move(request));
  return true;
}

bool CommitQueue::QueueAndCommit(Pending request) {
  request.own = true;
  {
    util::MutexLock lock(mu_);
    if (closing_) return false;
    if (request.IsQuery()) {
      queries_.push_back(std::move(request));
    } else {
      queue_.push_back(std::move(request));
      ++own_writes_;
    }
  }
  FlushOnce();
  return true;
}

bool CommitQueue::QueueForLoop(Pending request) {
  {
    util::MutexLock requester(requester_mu_);
    if (flush_requester_ == nullptr) {
      requester.Unlock();
      return QueueAndCommit(std::move(request));
    }
  }
  {
    util::MutexLock lock(mu_);
    if (closing_) return false;
    queue_.push_back(std::move(request));
  }
  util::MutexLock requester(requester_mu_);
  if (flush_requester_ != nullptr) {
    flush_requester_->RequestFlush();
    return true;
  }
  requester.Unlock();
  // The requester went away meanwhile (the server stopping): commit it here.
  util::MutexLock lock(mu_);
  if (!committing_) CommitQueued(/*bounded=*/false);
  return true;
}

void CommitQueue::Flush() {
  util::MutexLock lock(mu_);
  // That thread commits what we queued once its write is done, or (a round of FlushOnce)
  // has the flush requester call us again.
  if (committing_) return;
  CommitQueued(/*bounded=*/false);
}

void CommitQueue::SetFlushRequester(FlushRequester* requester) {
  util::MutexLock lock(requester_mu_);
  flush_requester_ = requester;
}

std::pair<std::size_t, std::size_t> CommitQueue::queued() const {
  util::MutexLock lock(mu_);
  return {queued_messages_, queued_bytes_};
}

bool CommitQueue::closed() const {
  util::MutexLock lock(mu_);
  return closing_;
}

bool CommitQueue::HoldCommit() {
  util::MutexLock lock(mu_);
  while (committing_) committed_.Wait(mu_);
  if (closing_) return false;
  committing_ = true;
  return true;
}

void CommitQueue::ReleaseCommit() {
  {
    util::MutexLock lock(mu_);
    committing_ = false;
  }
  committed_.SignalAll();
}

void CommitQueue::Close() {
  util::MutexLock lock(mu_);
  closing_ = true;
  while (committing_) committed_.Wait(mu_);
  CommitQueued(/*bounded=*/false);
}

// Unless another thread is committing, which then takes it (or hands it on): answers the
// queries at once and, when such a thread queued a request that writes, commits one round
// (TakeRound: every query, and the requests from the front up to the round cap; a write
// beyond the cap is handed on with the rest, to be committed by the event loop in order).
// With a flush requester such a thread never commits the event loops' requests on and on,
// nor any at all for a query alone: what is left is handed to a loop. Without one it
// commits the queue.
void CommitQueue::FlushOnce() {
  util::MutexLock lock(mu_);
  if (committing_) return;
  bool bounded;
  {
    util::MutexLock requester(requester_mu_);
    bounded = flush_requester_ != nullptr;
  }
  if (!bounded) return CommitQueued(/*bounded=*/false);
  if (own_writes_ > 0) {
    CommitQueued(/*bounded=*/true);
  } else {
    // Only queries of threads like this one: answered here, the event loops' requests
    // left queued.
    committing_ = true;
    std::vector<Pending> work;
    work.swap(queries_);
    lock.Unlock();
    writer_.AnswerQueries(work);
    lock.Lock();
    committing_ = false;
    committed_.SignalAll();
  }
  if (QueueEmpty()) return;
  lock.Unlock();
  {
    // Never mu_ while holding requester_mu_ (the order is mu_, then requester_mu_).
    util::MutexLock requester(requester_mu_);
    if (flush_requester_ != nullptr) {
      flush_requester_->RequestFlush();
      return;
    }
  }
  // The requester went away meanwhile (the server stopping): commit the rest here.
  lock.Lock();
  if (!committing_) CommitQueued(/*bounded=*/false);
}

void CommitQueue::TakeRound(std::vector<Pending>& work) {
  // queued_messages_ and queued_bytes_ count exactly what waits in queue_ here: what
  // earlier rounds took was subtracted when they were written. Under overload the queue
  // holds up to the queued bounds, and every Append waits for mu_ meanwhile: the work here
  // is in proportion to the round.
  if (queue_head_ == 0 && queued_messages_ <= bounds_.round_messages &&
      queued_bytes_ <= bounds_.round_bytes) {
    work.swap(queue_);  // the whole queue; both vectors keep their capacity
  } else {
    std::size_t messages = 0, bytes = 0;
    while (queue_head_ < queue_.size()) {
      Pending& p = queue_[queue_head_];
      if (!work.empty() && (messages + p.messages() > bounds_.round_messages ||
                            bytes + p.bytes() > bounds_.round_bytes)) {
        break;
      }
      messages += p.messages();
      bytes += p.bytes();
      work.push_back(std::move(p));
      ++queue_head_;
    }
    if (queue_head_ == queue_.size()) {
      queue_.clear();
      queue_head_ = 0;
    } else if (queue_head_ > queue_.size() / 2) {
      // Drops the moved-from front once it is the larger part: each request is moved at
      // most once more, whatever the length of the queue.
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(queue_head_));
      queue_head_ = 0;
    }
  }
  for (const Pending& p : work) own_writes_ -= p.own ? 1 : 0;
  work.insert(work.end(), std::make_move_iterator(queries_.begin()),
              std::make_move_iterator(queries_.end()));
  queries_.clear();
}

void CommitQueue::CommitQueued(bool bounded) {
  committing_ = true;
  std::vector<Pending>& work = round_;
  assert(work.empty());
  while (!QueueEmpty()) {
    TakeRound(work);
    mu_.unlock();
    writer_.AnswerQueries(work);
    if (!work.empty()) writer_.Commit(work);
    // Released only now: the bound covers what is being written, not just what waits.
    std::size_t messages = 0, bytes = 0;
    for (const Pending& p : work) {
      messages += p.messages();
      bytes += p.bytes();
    }
    work.clear();
    mu_.lock();
    queued_messages_ -= messages;
    queued_bytes_ -= bytes;
    if (bounded) break;
  }
  committing_ = false;
  committed_.SignalAll();
}

}  // namespace cartwatch::storage
