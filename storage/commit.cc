// The commit round of RocksStore (storage/rocks_store.h), on the committing thread: the
// queries answered at its start, the requests through the stages into one WriteBatch,
// the answers; and the replay and writing of the visitor and customer records that the
// round may need first. Key layout: docs/storage.md.
#include <algorithm>
#include <chrono>
#include <future>
#include <limits>

#include "profiles/codec.h"
#include "storage/keys.h"
#include "storage/rocks_store.h"
#include "storage/status.h"
#include "util/log.h"

namespace cartwatch::storage {

// --- Queries and writes of every record, through the committing thread ---

void RocksStore::AnswerQueries(std::vector<Pending>& work) {
  const auto queries = std::stable_partition(work.begin(), work.end(),
                                             [](const Pending& p) { return !p.IsQuery(); });
  for (auto it = queries; it != work.end(); ++it) {
    // A failed commit dropped the records in memory: rebuilt first.
    std::get<ReadRequest>(it->request)
        .read(!db_                  ? health_.DbUnavailable()
              : state_needs_replay_ ? ReplayState()
                                    : boost::system::error_code());
  }
  work.erase(queries, work.end());
}

template <typename Record, typename Peek>
boost::system::result<std::optional<Record>> RocksStore::ReadState(std::string_view site,
                                                                   Peek&& peek) {
  using Result = boost::system::result<std::optional<Record>>;
  if (site.size() > kMaxSiteName) return boost::system::error_code(Errc::kInvalidArgument);
  std::promise<Result> done;
  ReadRequest query{.read = [&](boost::system::error_code ec) {
    if (ec) return done.set_value(ec);
    Result r = peek(SitePrefix(site));
    if (!r && r.error().category() == profiles::ProfilesCategory()) r = Errc::kCorruption;
    done.set_value(std::move(r));
  }};
  if (!commits_.QueueAndCommit(Pending{std::move(query)})) {
    return boost::system::error_code(Errc::kClosed);
  }
  return done.get_future().get();
}

boost::system::result<std::optional<profiles::Visitor>> RocksStore::ReadVisitor(
    std::string_view site, std::string_view anonymous_id) {
  return ReadState<profiles::Visitor>(site, [&](const std::string& prefix) {
    return state_->PeekVisitor(prefix, anonymous_id);
  });
}

boost::system::result<std::optional<profiles::Customer>> RocksStore::ReadCustomer(
    std::string_view site, std::string_view user_id) {
  return ReadState<profiles::Customer>(site, [&](const std::string& prefix) {
    return state_->PeekCustomer(prefix, user_id);
  });
}

boost::system::error_code RocksStore::WriteAllRecords() {
  std::promise<boost::system::error_code> done;
  ReadRequest write_all{.read = [&](boost::system::error_code ec) { done.set_value(ec); },
                        .write_state = true};
  if (!commits_.QueueAndCommit(Pending{std::move(write_all)})) return Errc::kClosed;
  return done.get_future().get();
}

boost::system::error_code RocksStore::EraseVisitors(std::string site, std::string user_id,
                                                    std::vector<std::string> anonymous_ids) {
  std::promise<boost::system::error_code> done;
  EraseRequest erase{.site = std::move(site),
                     .user_id = std::move(user_id),
                     .only_visitors = std::move(anonymous_ids),
                     .done = [&done](const EraseResult& r) { done.set_value(r.error); }};
  if (!commits_.QueueAndCommit(Pending{std::move(erase)})) return Errc::kClosed;
  return done.get_future().get();
}

// --- The records: replay and writing all ---

boost::system::error_code RocksStore::ReplayState() {
  state_->Discard();
  state_needs_replay_ = true;
  const std::uint64_t from = state_replay_from_;
  if (from > last_event_id_ || !options_.apply_state) {
    state_needs_replay_ = false;
    return {};
  }
  const auto started = std::chrono::steady_clock::now();
  std::size_t replayed = 0;
  // Site by site (each site's records depend on its own events only), each from `from`.
  auto ec = ForEachEventFrom(
      *db_, events_, from,
      [&](std::string_view prefix, std::uint64_t id, std::string_view json) {
        if (auto ec = state_->Apply(prefix, id, json)) return ec;
        ++replayed;
        // Written with the id of what they hold; the replay point moves only at the end.
        if (state_->unwritten() >= options_.state_max_unwritten) return WriteState(std::nullopt);
        // Records the replay only read (they hold the event already) are kept decoded until
        // a Finish: one every few thousand events keeps them to the cache's bounds.
        if (replayed % 4096 == 0) state_->Finish(/*written=*/true);  // nothing staged
        return boost::system::error_code();
      });
  if (ec) return ec;
  if (auto ec = WriteState(last_event_id_ + 1)) return ec;
  state_needs_replay_ = false;
  if (replayed > 0) {
    log::Info("rebuilt the unwritten visitor and customer records from the event log")
        .Add("events", replayed)
        .Add("duration_ms", static_cast<std::int64_t>(
                                std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - started)
                                    .count()));
  }
  return {};
}

boost::system::error_code RocksStore::WriteState(std::optional<std::uint64_t> replay_from) {
  rocksdb::WriteOptions wo;
  wo.sync = options_.fsync;
  rocksdb::WriteBatch batch;
  bool last = false;
  while (!last) {
    batch.Clear();
    state_->Stage(batch, last_event_id_, /*all=*/true, kStateBatchRecords);
    last = state_->unwritten() == 0;
    if (last && replay_from) {
      std::string value;
      PutBigEndian64(value, *replay_from);
      batch.Put(meta_, kStateReplayFromKey, value);
    }
    auto ec = batch.Count() == 0 ? boost::system::error_code() : FromStatus(db_->Write(wo, &batch));
    if (state_) state_->Finish(/*written=*/!ec);
    if (ec) {
      state_needs_replay_ = true;
      return ec;
    }
  }
  if (replay_from) {
    state_replay_from_ = *replay_from;
    replay_floor_ = *replay_from;
  }
  return {};
}

// --- The round ---

namespace {

// Answers every request of `work` with `ec`, writing nothing.
void RefuseRound(std::vector<Pending>& work, boost::system::error_code ec) {
  for (Pending& p : work) p.Refuse(ec);
}

}  // namespace

void RocksStore::Commit(std::vector<Pending>& work) {
  Scratch& sc = scratch_;
  // The record time of this round's dedup entries: its latest receivedAt.
  std::int64_t commit_time = std::numeric_limits<std::int64_t>::min();
  for (const Pending& p : work) {
    if (const auto* append = std::get_if<AppendRequest>(&p.request)) {
      for (const Message& m : append->messages) {
        commit_time = std::max(commit_time, m.received_at_ms);
      }
    }
  }

  rocksdb::WriteBatch& batch = sc.batch;
  batch.Clear();
  std::vector<AppendResult>& results = sc.results;
  results.assign(work.size(), AppendResult{});
  std::vector<EraseResult>& erased = sc.erased;
  erased.assign(work.size(), EraseResult{});
  std::vector<FireResult>& fired = sc.fired;
  fired.assign(work.size(), FireResult{});
  std::vector<DeliveryResult>& changed = sc.changed;
  changed.assign(work.size(), DeliveryResult{});
  // A failed commit dropped the records in memory: rebuilt first, or this one fails too.
  // Refused before anything is applied: the records in memory stay as they are.
  bool low_space_started = false;
  if (auto refused = db_ ? health_.CheckDiskSpace(bytes_committed_, &low_space_started)
                         : health_.DbUnavailable()) {
    if (low_space_started) background_.Wake();
    return RefuseRound(work, refused);
  }
  boost::system::error_code ec;
  if (state_needs_replay_) ec = ReplayState();
  // An erase, or a scan to come, needs every record written with this commit. What is
  // unwritten now holds only durable messages: written first, in batches of bounded size,
  // so that this commit's own batch stays small.
  const bool write_all = std::any_of(work.begin(), work.end(), [](const Pending& p) {
    return std::holds_alternative<EraseRequest>(p.request) ||
           std::holds_alternative<ReadRequest>(p.request);  // queries left in AnswerQueries
  });
  if (!ec && write_all) ec = WriteState(std::nullopt);
  CommitRound round{.batch = &batch,
                    .commit_time = commit_time,
                    .last_event_id = last_event_id_,
                    .write_all = write_all,
                    .replay_from = state_replay_from_};
  for (CommitStage* stage : stages_) stage->Begin(round);
  for (std::size_t i = 0; i < work.size() && !ec; ++i) {
    if (std::holds_alternative<ReadRequest>(work[i].request)) continue;  // after the write
    if (auto* request = std::get_if<EraseRequest>(&work[i].request)) {
      ec = erase_.Apply(*state_, *request, round.last_event_id, round, erased[i]);
      continue;
    }
    if (auto* request = std::get_if<FireRequest>(&work[i].request)) {
      ec = firing_.Apply(*request, round, fired[i]);
      continue;
    }
    if (auto* request = std::get_if<DeliveryRequest>(&work[i].request)) {
      ec = deliveries_.Apply(*request, round, changed[i]);
      continue;
    }
    const auto& append = std::get<AppendRequest>(work[i].request);
    const std::string prefix = SitePrefix(append.site);
    for (const Message& m : append.messages) {
      // Admitted one message at a time, so a messageId repeated within this round is a
      // duplicate of its first occurrence.
      if (!Admitted(round, prefix, m)) {
        ++results[i].duplicates;
        continue;
      }
      round.last_event_id =
          std::max(round.last_event_id + 1, static_cast<std::uint64_t>(m.received_at_ms) * 1000);
      ++round.stored;
      ++results[i].stored;
      for (CommitStage* stage : stages_) {
        if ((ec = stage->Stored(round, prefix, round.last_event_id, m))) break;
      }
      if (ec) break;
    }
  }
  for (CommitStage* stage : stages_) {
    if (ec) break;
    ec = stage->Finish(round);
  }

  if (!ec) {
    if (batch.Count() > 0) {
      rocksdb::WriteOptions wo;
      wo.sync = options_.fsync;
      // When flushes and compactions fall behind, RocksDB delays this write (its
      // slowdown) and so paces the committing I/O thread: that is the backpressure.
      // Failing fast instead (no_slowdown) turned ordinary bursts into 503s.
      const auto started = std::chrono::steady_clock::now();
      const rocksdb::Status written = db_->Write(wo, &batch);
      ec = FromStatus(written);
      if (ec) NoteWriteFailure(written);
      bytes_committed_ += batch.GetDataSize();
      if (!ec) {
        commit_seconds_.Observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        commit_messages_.Observe(static_cast<double>(round.stored));
      }
    }
  }
  if (!ec) {
    if (round.stored > 0) last_event_id_ = round.last_event_id;
    state_replay_from_ = round.replay_from;
    replay_floor_ = round.replay_from;
  }
  for (CommitStage* stage : stages_) stage->End(round, /*written=*/!ec);
  if (ec) state_needs_replay_ = true;
  for (std::size_t i = 0; i < work.size(); ++i) {
    if (auto* fire = std::get_if<FireRequest>(&work[i].request)) {
      if (ec) {
        fired[i] = FireResult{.error = ec};
      } else {
        const FireResult& r = fired[i];
        rule_counts_.fired.fetch_add(r.fired, std::memory_order_relaxed);
        rule_counts_.stale.fetch_add(r.stale, std::memory_order_relaxed);
        rule_counts_.not_matched.fetch_add(r.not_matched, std::memory_order_relaxed);
        rule_counts_.held.fetch_add(r.held, std::memory_order_relaxed);
        const std::size_t tasks = r.actions - r.emails, tasks_skipped = r.skipped - r.emails_skipped;
        rule_counts_.tasks_pending.fetch_add(tasks - tasks_skipped, std::memory_order_relaxed);
        rule_counts_.tasks_skipped.fetch_add(tasks_skipped, std::memory_order_relaxed);
        rule_counts_.emails_pending.fetch_add(r.emails - r.emails_skipped, std::memory_order_relaxed);
        rule_counts_.emails_skipped.fetch_add(r.emails_skipped, std::memory_order_relaxed);
        for (std::size_t rule = 0; rule < r.fired_by_rule.size() && rule < options_.rules.rules.size(); ++rule) {
          rule_counts_.fired_by_rule[rule].fetch_add(r.fired_by_rule[rule], std::memory_order_relaxed);
        }
      }
      fire->done(fired[i]);
    } else if (auto* change = std::get_if<DeliveryRequest>(&work[i].request)) {
      if (ec) changed[i] = DeliveryResult{.error = ec};
      change->done(changed[i]);
    } else if (auto* erase = std::get_if<EraseRequest>(&work[i].request)) {
      if (ec) erased[i] = EraseResult{.error = ec};
      erase->done(erased[i]);
    } else if (auto* append = std::get_if<AppendRequest>(&work[i].request)) {
      if (ec) results[i] = AppendResult{.error = ec};
      append->done(results[i]);
    }
  }
  // The reads that asked for every record written (the queries were answered before,
  // in AnswerQueries).
  for (Pending& p : work) {
    if (auto* read = std::get_if<ReadRequest>(&p.request)) {
      read->read(ec ? ec : state_needs_replay_ ? ReplayState() : boost::system::error_code());
    }
  }
  // After the answers: a walk of the dedup log once a minute. A failure leaves records
  // past the window in the log: harmless (Load skips them), and retried later.
  if (!ec && db_) (void)dedup_.Expire(*db_, dedup_log_);
  dedup_ids_.store(dedup_.size(), std::memory_order_relaxed);
  if (state_) {
    records_cached_.store(state_->cached(), std::memory_order_relaxed);
    records_cached_bytes_.store(state_->cached_bytes(), std::memory_order_relaxed);
    records_unwritten_.store(state_->unwritten(), std::memory_order_relaxed);
  }
  if (erase_.wrote_jobs()) background_.RequestPurge();
}

bool RocksStore::Admitted(const CommitRound& round, std::string_view prefix, const Message& m) {
  for (CommitStage* stage : stages_) {
    if (!stage->Admit(round, prefix, m)) return false;
  }
  return true;
}

}  // namespace cartwatch::storage
