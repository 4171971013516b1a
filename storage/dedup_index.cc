#include "storage/dedup_index.h"

#include <algorithm>
#include <memory>

#include "storage/status.h"
#include "util/log.h"

namespace cartwatch::storage {

boost::system::error_code DedupIndex::Load(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* log) {
  log_ = log;
  ids_.clear();
  walk_pending_ = false;
  clock_ms_ = 0;
  oldest_record_ms_ = std::numeric_limits<std::int64_t>::max();
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), log));
  it->SeekToLast();
  if (!it->Valid()) return FromStatus(it->status());
  auto newest = ForEachDedupLogHash(it->value().ToStringView(), [](const IdHash&) {});
  if (newest) clock_ms_ = *newest;
  it.reset();
  return Walk(db, log, /*loading=*/true);
}

void DedupIndex::Begin(std::int64_t commit_time) {
  commit_time_ = commit_time;
  record_.clear();
  AppendDedupLogTime(record_, commit_time);
  undo_.clear();
}

DedupIndex::Slot DedupIndex::SlotOf(const IdHash& hash, std::int64_t time_ms) {
  constexpr std::int64_t kMaxMs = std::int64_t{std::numeric_limits<std::uint32_t>::max()} * 1000;
  const std::int64_t ms = std::clamp<std::int64_t>(time_ms, 0, kMaxMs);
  return Slot{hash.h1, static_cast<std::uint32_t>(hash.h2 >> 32),
              static_cast<std::uint32_t>((ms + 999) / 1000)};
}

bool DedupIndex::Enter(const IdHash& hash, std::int64_t received_at_ms) {
  const Slot slot = SlotOf(hash, commit_time_);
  auto [id, inserted] = ids_.insert(slot);
  if (!inserted) {
    if (received_at_ms - std::int64_t{id->time_s} * 1000 < window_ms_) return false;
    undo_.push_back(Undo{slot, false, id->time_s});  // expired: seen again, a new entry
    id->time_s = slot.time_s;
  } else {
    undo_.push_back(Undo{slot, true});
  }
  AppendDedupLogHash(record_, hash);
  return true;
}

void DedupIndex::End(bool written, bool stored) {
  if (written) {
    if (stored) {
      clock_ms_ = std::max(clock_ms_, commit_time_);
      oldest_record_ms_ = std::min(oldest_record_ms_, commit_time_);
    }
  } else {
    // Nothing was written: forget the ids entered, so a retry stores them.
    for (auto u = undo_.rbegin(); u != undo_.rend(); ++u) {
      if (u->added) {
        ids_.erase(u->slot);
      } else if (const Slot* id = ids_.Find(u->slot)) {
        id->time_s = u->previous;
      }
    }
  }
  undo_.clear();
}

boost::system::error_code DedupIndex::Finish(CommitRound& round) {
  if (round.stored > 0) round.batch->Put(log_, DedupLogKey(round.last_event_id), record_);
  return {};
}

void DedupIndex::End(const CommitRound& round, bool written) { End(written, round.stored > 0); }

boost::system::error_code DedupIndex::Expire(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* log) {
  return Walk(db, log, /*loading=*/false);
}

boost::system::error_code DedupIndex::Walk(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* log,
                                           bool loading) {
  const std::int64_t cutoff = clock_ms_ - window_ms_;  // records at or before: expired
  constexpr std::int64_t kSlackMs = 60'000;
  if (!walk_pending_) {
    const bool over_limit = ids_.size() > max_ids_;
    if (!loading && !over_limit && oldest_record_ms_ > cutoff - kSlackMs) return {};
    // Past the limit, forget the oldest ids until a tenth of the limit is free again.
    keep_at_most_ = over_limit ? max_ids_ - max_ids_ / 10 : SIZE_MAX;
    forgotten_until_ = 0;
  }

  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), log));
  std::string delete_until;  // exclusive end of the records to delete
  std::size_t walked = 0;    // ids this call looked up to drop
  oldest_record_ms_ = std::numeric_limits<std::int64_t>::max();
  // Went on from where the last call stopped (the records before it are deleted).
  if (walk_pending_) {
    it->Seek(walk_from_);
  } else {
    it->SeekToFirst();
  }
  walk_pending_ = false;
  for (; it->Valid(); it->Next()) {
    const std::string_view record = it->value().ToStringView();
    auto time = ForEachDedupLogHash(record, [](const IdHash&) {});
    const bool expired = !time || *time <= cutoff;
    if (!expired && ids_.size() <= keep_at_most_) {
      if (!loading) {
        oldest_record_ms_ = *time;
        break;
      }
      ForEachDedupLogHash(record, [&](const IdHash& h) {
        const Slot slot = SlotOf(h, *time);
        auto [id, inserted] = ids_.insert(slot);
        if (!inserted) id->time_s = std::max(id->time_s, slot.time_s);
      });
      oldest_record_ms_ = std::min(oldest_record_ms_, *time);
      continue;
    }
    if (!loading && walked >= walk_budget_) {
      // This call's share is done: the next one goes on from this record.
      walk_pending_ = true;
      walk_from_ = it->key().ToString();
      oldest_record_ms_ = time.value_or(std::numeric_limits<std::int64_t>::min());
      break;
    }
    if (time && !loading) {
      ForEachDedupLogHash(record, [&](const IdHash& h) {
        const Slot slot = SlotOf(h, *time);
        ids_.erase_if(slot, [&](const Slot& id) { return id.time_s == slot.time_s; });
        ++walked;  // erased or not (seen again since, or gone already), a lookup
      });
    }
    if (time && !expired) forgotten_until_ = *time;
    delete_until = it->key().ToString();
    delete_until.push_back('\0');  // the next key after this one
  }
  if (auto ec = FromStatus(it->status())) {
    walk_pending_ = false;
    return ec;
  }
  it.reset();
  if (forgotten_until_ != 0 && !walk_pending_) {
    log::Warn("dedup index at storage.dedup_max_ids: older message ids are no longer deduplicated")
        .Add("dedup_max_ids", max_ids_)
        .Add("forgotten_age_ms", static_cast<std::int64_t>(clock_ms_ - forgotten_until_));
  }
  if (delete_until.empty()) return {};
  return FromStatus(db.DeleteRange(rocksdb::WriteOptions(), log, "", delete_until));
}

}  // namespace cartwatch::storage
