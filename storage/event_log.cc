#include "storage/event_log.h"

#include <memory>

#include <rocksdb/iterator.h>

#include "storage/keys.h"
#include "storage/status.h"
#include "util/log.h"

namespace cartwatch::storage {

boost::system::error_code EventLogStage::Stored(CommitRound& round, std::string_view site_prefix,
                                                std::uint64_t id, const Message& message) {
  // Rounds mostly hold one site, or a few: a look at the previous message's run, then a
  // walk of the round's.
  Run* run = nullptr;
  if (last_run_ < used_ && runs_[last_run_].prefix == site_prefix) {
    run = &runs_[last_run_];
  } else {
    for (std::size_t i = 0; i < used_; ++i) {
      if (runs_[i].prefix == site_prefix) {
        run = &runs_[i];
        last_run_ = i;
        break;
      }
    }
  }
  if (run == nullptr || run->first_json == nullptr) {  // a new run (or the site's closed one)
    if (run == nullptr) {
      if (used_ == runs_.size()) runs_.emplace_back();
      last_run_ = used_++;
      run = &runs_[last_run_];
      run->prefix.assign(site_prefix);
    }
    run->first_id = run->last_id = id;
    run->first_json = &message.json;
    run->value.clear();
    return {};
  }
  if (run->value.empty()) AppendBatchedEvent(run->value, 0, run->first_id, *run->first_json);
  AppendBatchedEvent(run->value, run->last_id, id, message.json);
  run->last_id = id;
  if (run->value.size() >= kMaxRecordBatchBytes) Put(round, *run);
  return {};
}

void EventLogStage::Put(CommitRound& round, Run& run) {
  EventKeyInto(key_, run.prefix, run.last_id);
  if (run.value.empty() && StandsAlone(*run.first_json)) {
    round.batch->Put(events_, key_, *run.first_json);
  } else {
    if (run.value.empty()) AppendBatchedEvent(run.value, 0, run.first_id, *run.first_json);
    round.batch->Put(events_, key_, run.value);
  }
  run.first_json = nullptr;  // closed: the site's next event starts a new batch
  run.value.clear();
}

boost::system::error_code EventLogStage::Finish(CommitRound& round) {
  for (std::size_t i = 0; i < used_; ++i) {
    if (runs_[i].first_json != nullptr) Put(round, runs_[i]);
  }
  if (round.stored > 0) {
    std::string last;
    PutBigEndian64(last, round.last_event_id);
    round.batch->Put(meta_, kLastEventIdKey, last);
  }
  return {};
}

boost::system::result<EventPage> ReadEventPage(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events,
                                               std::string_view site_prefix,
                                               std::string_view after, std::size_t limit,
                                               std::size_t max_bytes) {
  std::uint64_t start = 0;
  if (!after.empty()) {
    auto id = DecodeCursor(after);
    if (!id) return boost::system::error_code(Errc::kInvalidArgument);
    if (*id == UINT64_MAX) return EventPage{{}, std::string(after)};
    start = *id + 1;
  }
  std::string upper = std::string(site_prefix) + std::string(9, '\xff');
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;  // an export scan would evict the hot state

  EventPage page;
  page.next_cursor = std::string(after);
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, events));
  std::size_t bytes = 0;
  // A record batch is keyed by its last event: the seek lands on the one that holds the
  // first event at or after `start`.
  bool full = limit == 0;
  for (it->Seek(EventKey(site_prefix, start)); it->Valid() && !full; it->Next()) {
    rocksdb::Slice key = it->key();
    if (key.size() != site_prefix.size() + 8) continue;  // not an event key of this layout
    const bool decoded = ForEachEventOfValue(
        GetBigEndian64(key.data() + site_prefix.size()), it->value().ToStringView(),
        [&](std::uint64_t id, std::string_view json) {
          if (id < start) return true;
          page.events.push_back(StoredEvent{EncodeCursor(id), std::string(json)});
          page.next_cursor = page.events.back().cursor;
          bytes += json.size();
          full = page.events.size() >= limit || bytes >= max_bytes;
          return !full;
        });
    if (!decoded) return boost::system::error_code(Errc::kCorruption);
  }
  if (auto ec = FromStatus(it->status())) return ec;
  return page;
}

boost::system::error_code DeleteEventsBelow(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events,
                                            std::uint64_t cutoff) {
  // Site prefixes are found by seeking from one site's range to the next: one seek per
  // site, however many events each holds. A record batch's key is its last event's id: a
  // batch goes once all of its events are below the cutoff.
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), events));
  for (it->SeekToFirst(); it->Valid();) {
    rocksdb::Slice key = it->key();
    const std::size_t prefix_size = 1 + static_cast<unsigned char>(key[0]);
    if (key.size() != prefix_size + 8) break;  // not an event key of this layout
    std::string prefix(key.data(), prefix_size);
    batch.DeleteRange(events, EventKey(prefix, 0), EventKey(prefix, cutoff));
    it->Seek(prefix + std::string(9, '\xff'));  // past every key of this site
  }
  if (auto ec = FromStatus(it->status())) return ec;
  it.reset();
  if (batch.Count() == 0) return {};
  return FromStatus(db.Write(rocksdb::WriteOptions(), &batch));
}

boost::system::error_code ForEachEventFrom(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events, std::uint64_t from,
    const std::function<boost::system::error_code(std::string_view site_prefix, std::uint64_t id,
                                                  std::string_view json)>& apply) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, events));
  for (it->SeekToFirst(); it->Valid();) {
    const rocksdb::Slice key = it->key();
    const std::size_t prefix_size = 1 + static_cast<unsigned char>(key[0]);
    if (key.size() != prefix_size + 8) break;  // not an event key of this layout
    const std::string_view prefix(key.data(), prefix_size);
    const std::uint64_t key_id = GetBigEndian64(key.data() + prefix_size);
    if (key_id < from) {  // the batch (keyed by its last event) holds none from `from` on
      it->Seek(EventKey(prefix, from));
      continue;
    }
    boost::system::error_code ec;
    const bool decoded =
        ForEachEventOfValue(key_id, it->value().ToStringView(),
                            [&](std::uint64_t id, std::string_view json) {
                              if (id >= from) ec = apply(prefix, id, json);
                              return !ec;
                            });
    if (ec) return ec;
    // As the replay skips a message that does not parse: the records go on from the rest.
    if (!decoded) {
      log::Error("an event log value does not decode; its events are skipped")
          .Add("key", key.ToString(/*hex=*/true));
    }
    it->Next();
  }
  return FromStatus(it->status());
}

}  // namespace cartwatch::storage
