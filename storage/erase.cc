#include "storage/erase.h"

#include <algorithm>
#include <map>
#include <memory>
#include <unordered_map>

#include <rocksdb/iterator.h>

#include "profiles/codec.h"
#include "profiles/event.h"
#include "storage/outbox.h"
#include "storage/status.h"
#include "storage/timers.h"
#include "util/log.h"

namespace cartwatch::storage {

boost::system::error_code EraseStage::Load(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                                           rocksdb::ColumnFamilyHandle* timers,
                                           rocksdb::ColumnFamilyHandle* outbox,
                                           Deliveries* deliveries) {
  deliveries_ = deliveries;
  db_ = &db;
  meta_ = meta;
  timers_ = timers;
  outbox_ = outbox;
  next_seq_ = 0;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), meta));
  it->SeekForPrev(EraseJobKey(UINT64_MAX));
  if (it->Valid() && it->key().starts_with(kEraseJobPrefix)) {
    next_seq_ = GetBigEndian64(it->key().data() + kEraseJobPrefix.size()) + 1;
  }
  return FromStatus(it->status());
}

boost::system::error_code EraseStage::ForgetRules(CommitRound& round, const SubjectKey& person) {
  if (timers_ == nullptr || outbox_ == nullptr) return {};
  if (auto ec = ErasePersonTimers(*db_, *round.batch, timers_, person)) return ec;
  return ErasePersonDeliveries(*db_, *round.batch, outbox_, person, [&](std::uint64_t seq) {
    return deliveries_ ? deliveries_->Forget(round, seq) : boost::system::error_code();
  });
}

boost::system::error_code EraseStage::Apply(StateWriter& state, const EraseRequest& request,
                                            std::uint64_t last_event_id, CommitRound& round,
                                            EraseResult& result) {
  const std::string prefix = SitePrefix(request.site);
  auto forget = [&](rules::SubjectKind kind, std::string_view id) {
    return ForgetRules(round, SubjectKey{prefix, kind, id});
  };
  if (!request.only_visitors.empty()) {
    auto erase = state.EraseVisitors(prefix, request.user_id, request.only_visitors);
    if (!erase) return erase.error();
    result.visitors = erase->size();
    for (const std::string& id : *erase) {
      if (auto ec = forget(rules::SubjectKind::kVisitor, id)) return ec;
    }
    return {};
  }
  auto erase = state.Erase(prefix, request.user_id);
  if (!erase) return erase.error();
  result.found = erase->found;
  result.visitors = erase->anonymous_ids.size();
  if (auto ec = forget(rules::SubjectKind::kCustomer, request.user_id)) return ec;
  for (const std::string& user : erase->user_ids) {
    if (user == request.user_id) continue;
    if (auto ec = forget(rules::SubjectKind::kCustomer, user)) return ec;
  }
  for (const std::string& id : erase->anonymous_ids) {
    if (auto ec = forget(rules::SubjectKind::kVisitor, id)) return ec;
  }
  // One job a customer erased (more than one when an alias had merged customers).
  for (std::string& user : erase->user_ids) {
    jobs_.push_back(EraseJob{.site_prefix = prefix,
                             .up_to_event_id = last_event_id,
                             .user_id = std::move(user),
                             .anonymous_ids = std::move(erase->anonymous_ids)});
    erase->anonymous_ids.clear();  // moved-from: the first job has them
  }
  return {};
}

boost::system::error_code EraseStage::Finish(CommitRound& round) {
  for (std::size_t j = 0; j < jobs_.size(); ++j) {
    round.batch->Put(meta_, EraseJobKey(next_seq_ + j), EncodeEraseJob(jobs_[j]));
  }
  return {};
}

void EraseStage::End(const CommitRound& round, bool written) {
  wrote_jobs_ = written && !jobs_.empty();
  if (written) next_seq_ += jobs_.size();
  jobs_.clear();
}

namespace {

// Visitors still linked to an erased customer but not on its list of linked visitors
// (which keeps the newest profiles::Options::max_linked_visitors): found by one scan of
// the site's visitor records, erased through the committing thread like any erase, and
// added to `devices` so that their anonymous events are purged too.
boost::system::error_code EraseUnlistedVisitors(
    const EraseTarget& target, EraseCommitter& committer, const Background& background,
    const std::string& site_prefix, const std::unordered_map<std::string, std::uint64_t>& users,
    std::unordered_map<std::string, std::uint64_t>& devices) {
  if (auto ec = committer.WriteAllRecords()) return ec;  // the scan reads them as of now
  std::string upper = site_prefix + std::string(1, '\xff');
  std::unordered_map<std::string, std::vector<std::string>> found;  // user -> devices
  {
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(target.db->NewIterator(ro, target.visitors));
    for (it->Seek(site_prefix); it->Valid(); it->Next()) {
      if (background.stopping()) return Errc::kClosed;
      if (!it->key().starts_with(site_prefix)) break;
      auto visitor = profiles::DecodeVisitor(SplitStateValue(it->value().ToStringView()).record);
      if (!visitor || visitor->user_id.empty()) continue;
      auto user = users.find(visitor->user_id);
      if (user == users.end()) continue;
      found[visitor->user_id].push_back(visitor->anonymous_id);
      auto& up_to = devices[visitor->anonymous_id];
      up_to = std::max(up_to, user->second);
    }
    if (auto ec = FromStatus(it->status())) return ec;
  }
  for (auto& [user, anonymous_ids] : found) {
    if (auto ec = committer.EraseVisitors(site_prefix.substr(1), user, std::move(anonymous_ids))) {
      return ec;
    }
  }
  return {};
}

// A purge writes a thousand deletes or rewritten record batches at a time, or fewer once
// the rewritten batches reach this size.
constexpr std::size_t kMaxPurgeWriteBytes = 4 << 20;

// Deletes the events of the site that name the user id or an anonymous id of one of
// `jobs` and are not newer than that job.
boost::system::error_code PurgeEvents(const EraseTarget& target, EraseCommitter& committer,
                                      const Background& background, const std::string& site_prefix,
                                      const std::vector<const EraseJob*>& jobs) {
  // Each id with the newest event id any job erases it up to.
  std::unordered_map<std::string, std::uint64_t> users, devices;
  std::uint64_t last = 0;
  for (const EraseJob* job : jobs) {
    auto up_to = [&](auto& map, const std::string& id) {
      auto& v = map[id];
      v = std::max(v, job->up_to_event_id);
    };
    up_to(users, job->user_id);
    for (const std::string& id : job->anonymous_ids) up_to(devices, id);
    last = std::max(last, job->up_to_event_id);
  }
  auto erased_up_to = [](const auto& map, const std::string& id) -> std::uint64_t {
    if (id.empty()) return 0;
    auto it = map.find(id);
    return it == map.end() ? 0 : it->second;
  };
  if (auto ec = EraseUnlistedVisitors(target, committer, background, site_prefix, users, devices)) {
    return ec;
  }
  // Every key of the site: a record batch that holds events up to `last` and after it is
  // keyed by its last event, above `last`. The scan ends at the first value that begins
  // after `last`.
  const std::string upper = site_prefix + std::string(9, '\xff');
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  rocksdb::WriteOptions wo;
  wo.sync = target.fsync;
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(target.db->NewIterator(ro, target.events));
  std::string kept;  // a record batch's events that stay, re-encoded
  for (it->Seek(EventKey(site_prefix, 0)); it->Valid(); it->Next()) {
    if (background.stopping()) return Errc::kClosed;
    rocksdb::Slice key = it->key();
    if (key.size() != site_prefix.size() + 8) continue;  // not an event key of this layout
    // A value is one event or a record batch of several (docs/storage.md): the erased
    // events go, a batch that keeps some is written again under the same key.
    std::size_t events = 0, erased = 0;
    std::uint64_t first = 0, kept_last = 0;
    kept.clear();
    const bool decoded = ForEachEventOfValue(
        GetBigEndian64(key.data() + site_prefix.size()), it->value().ToStringView(),
        [&](std::uint64_t id, std::string_view json) {
          if (events++ == 0) first = id;
          if (first > last) return false;  // came after every job
          // A message with a userId is that customer's, whatever the device (a shared
          // device keeps the other customer's messages); one without, its device's.
          auto event = profiles::ParseEvent(json);
          const std::uint64_t up_to = !event                   ? 0
                                      : event->user_id.empty() ? erased_up_to(devices, event->anonymous_id)
                                                               : erased_up_to(users, event->user_id);
          if (id <= up_to) {
            ++erased;
          } else {
            AppendBatchedEvent(kept, kept_last, id, json);
            kept_last = id;
          }
          return true;
        });
    if (decoded && events > 0 && first > last) break;
    if (!decoded) {
      log::Error("an event log value does not decode; the erase cannot check its events")
          .Add("key", key.ToString(/*hex=*/true));
      continue;
    }
    if (erased == 0) continue;
    if (erased == events) {
      batch.Delete(target.events, key);
    } else {
      batch.Put(target.events, key, kept);
    }
    if (batch.Count() >= 1000 || batch.GetDataSize() >= kMaxPurgeWriteBytes) {
      if (auto ec = FromStatus(target.db->Write(wo, &batch))) return ec;
      batch.Clear();
    }
  }
  if (auto ec = FromStatus(it->status())) return ec;
  it.reset();
  if (batch.Count() == 0) return {};
  return FromStatus(target.db->Write(wo, &batch));
}

}  // namespace

boost::system::error_code PurgeErasedEvents(const EraseTarget& target, EraseCommitter& committer,
                                            const Background& background) {
  std::vector<std::pair<std::string, EraseJob>> jobs;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        target.db->NewIterator(rocksdb::ReadOptions(), target.meta));
    for (it->Seek(rocksdb::Slice(kEraseJobPrefix.data(), kEraseJobPrefix.size()));
         it->Valid() && it->key().starts_with(kEraseJobPrefix); it->Next()) {
      auto job = DecodeEraseJob(it->value().ToStringView());
      if (!job) {
        log::Error("an erase job does not decode; it is dropped").Add("key", it->key().ToString(true));
        job.emplace();
      }
      jobs.emplace_back(it->key().ToString(), std::move(*job));
    }
    if (auto ec = FromStatus(it->status())) return ec;
  }
  // One scan of a site's events serves all of its pending jobs.
  std::map<std::string, std::vector<const EraseJob*>> by_site;
  for (const auto& [key, job] : jobs) {
    if (!job.site_prefix.empty()) by_site[job.site_prefix].push_back(&job);
  }
  for (const auto& [site_prefix, site_jobs] : by_site) {
    if (auto ec = PurgeEvents(target, committer, background, site_prefix, site_jobs)) return ec;
  }
  rocksdb::WriteBatch done;
  for (const auto& [key, job] : jobs) done.Delete(target.meta, key);
  rocksdb::WriteOptions wo;
  wo.sync = target.fsync;
  return FromStatus(target.db->Write(wo, &done));
}

}  // namespace cartwatch::storage
