#include "storage/deliveries.h"

#include <algorithm>
#include <memory>

#include <rocksdb/iterator.h>

#include "profiles/json_writer.h"
#include "storage/keys.h"
#include "storage/outbox.h"
#include "storage/status.h"
#include "util/log.h"
#include "util/varint.h"

namespace cartwatch::storage {
namespace {

constexpr char kRecordTag = 'R';
constexpr char kQueueTag = 'Q';
constexpr char kDisabledTag = 'E';
constexpr char kDeadTag = 'D';
// In `meta`: the dead index ('D' keys) is complete. Data directories written before it
// existed get it at their first open (IndexDeadDeliveries).
constexpr char kDeadIndexKey[] = "deliveries_dead_index";

std::string QueuePrefix(std::string_view endpoint) {
  std::string key(1, kQueueTag);
  key.push_back(static_cast<char>(std::min<std::size_t>(endpoint.size(), 255)));
  key.append(endpoint.substr(0, 255));
  return key;
}

std::string QueueKey(std::string_view endpoint, std::int64_t due, std::uint64_t seq) {
  std::string key = QueuePrefix(endpoint);
  PutBigEndian64(key, static_cast<std::uint64_t>(std::max<std::int64_t>(due, 0)));
  PutBigEndian64(key, seq);
  return key;
}

std::string DeadPrefix(std::string_view endpoint) {
  std::string key(1, kDeadTag);
  key.push_back(static_cast<char>(std::min<std::size_t>(endpoint.size(), 255)));
  key.append(endpoint.substr(0, 255));
  return key;
}

std::string DeadKey(std::string_view endpoint, std::uint64_t seq) {
  std::string key = DeadPrefix(endpoint);
  PutBigEndian64(key, seq);
  return key;
}

bool Dead(const webhooks::Delivery& d) { return d.state == webhooks::State::kDead; }

std::string DisabledKey(std::string_view endpoint) {
  std::string key(1, kDisabledTag);
  key.append(endpoint);
  return key;
}

std::string RecordPrefix(std::uint64_t seq) {
  std::string key(1, kRecordTag);
  PutBigEndian64(key, seq);
  return key;
}

bool Queued(const webhooks::Delivery& d) {
  return d.state == webhooks::State::kPending || d.state == webhooks::State::kWaiting;
}

std::string EncodeRecord(std::string_view site_prefix, const webhooks::Delivery& d) {
  std::string value;
  util::PutLengthPrefixed(value, site_prefix);
  value += webhooks::EncodeDelivery(d);
  return value;
}

bool DecodeRecord(std::string_view value, std::string& site_prefix, webhooks::Delivery& d) {
  if (!util::GetLengthPrefixed(value, site_prefix)) return false;
  auto decoded = webhooks::DecodeDelivery(value);
  if (!decoded) return false;
  d = std::move(*decoded);
  return true;
}

std::string OutboxEntryKey(std::string_view site_prefix, std::uint64_t seq) {
  std::string key(site_prefix);
  PutBigEndian64(key, seq);
  return key;
}

// Calls f(key, value) for each key of `cf` that starts with `prefix`, in key order, until f
// returns false.
template <typename F>
boost::system::error_code ForEachWithPrefix(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                                            std::string_view prefix, F&& f) {
  std::string upper(prefix);
  while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xff) upper.pop_back();
  if (!upper.empty()) upper.back() = static_cast<char>(upper.back() + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, cf));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    if (!it->key().starts_with(rocksdb::Slice(prefix.data(), prefix.size()))) break;
    if (!f(it->key(), it->value())) break;
  }
  return FromStatus(it->status());
}

DeliveryStatus StatusNamed(std::string_view name) {
  auto status = DeliveryStatusNamed(name);
  return status ? *status : DeliveryStatus::kPending;
}

}  // namespace

std::string DeliveryRecordKey(std::uint64_t seq, std::string_view endpoint) {
  std::string key = RecordPrefix(seq);
  key.append(endpoint);
  return key;
}

std::size_t Deliveries::Created(CommitRound& round, std::string_view site_prefix,
                                std::uint64_t seq, std::string_view type, std::int64_t now) {
  if (cf_ == nullptr) return 0;
  std::size_t n = 0;
  for (const WebhookEndpoint& endpoint : endpoints_) {
    if (!endpoint.Subscribes(type)) continue;
    Put(round, seq, endpoint.name, nullptr,
        Record{std::string(site_prefix), webhooks::Delivery{.next_attempt_at = now}});
    ++n;
  }
  return n;
}

void Deliveries::Put(CommitRound& round, std::uint64_t seq, const std::string& endpoint,
                     const webhooks::Delivery* before, const Record& record) {
  if (before && Queued(*before)) {
    round.batch->Delete(cf_, QueueKey(endpoint, before->next_attempt_at, seq));
  }
  if (Queued(record.delivery)) {
    round.batch->Put(cf_, QueueKey(endpoint, record.delivery.next_attempt_at, seq), rocksdb::Slice());
  }
  if (before && Dead(*before) && !Dead(record.delivery)) {
    round.batch->Delete(cf_, DeadKey(endpoint, seq));
    --round_dead_[endpoint];
  }
  if (Dead(record.delivery) && !(before && Dead(*before))) {
    round.batch->Put(cf_, DeadKey(endpoint, seq), rocksdb::Slice());
    ++round_dead_[endpoint];
  }
  std::string key = DeliveryRecordKey(seq, endpoint);
  std::string value = EncodeRecord(record.site_prefix, record.delivery);
  round.batch->Put(cf_, key, value);
  round_[std::move(key)] = std::move(value);
}

boost::system::result<std::map<std::string, Deliveries::Record>> Deliveries::RecordsOf(
    std::uint64_t seq) {
  std::map<std::string, std::optional<std::string>> values;
  const std::string prefix = RecordPrefix(seq);
  auto ec = ForEachWithPrefix(*db_, cf_, prefix, [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
    values[key.ToString()] = value.ToString();
    return true;
  });
  if (ec) return ec;
  for (auto it = round_.lower_bound(prefix); it != round_.end() && it->first.starts_with(prefix);
       ++it) {
    values[it->first] = it->second;
  }
  std::map<std::string, Record> out;
  for (auto& [key, value] : values) {
    if (!value) continue;
    Record record;
    if (!DecodeRecord(*value, record.site_prefix, record.delivery)) {
      return boost::system::error_code(Errc::kCorruption);
    }
    out.emplace(key.substr(prefix.size()), std::move(record));
  }
  return out;
}

boost::system::error_code Deliveries::UpdateStatus(CommitRound& round, std::uint64_t seq) {
  auto records = RecordsOf(seq);
  if (!records) return records.error();
  if (records->empty()) return {};
  std::vector<webhooks::Delivery> all;
  for (const auto& [endpoint, record] : *records) all.push_back(record.delivery);
  const DeliveryStatus status = StatusNamed(webhooks::Aggregate(all));
  const std::string key = OutboxEntryKey(records->begin()->second.site_prefix, seq);
  std::string value;
  if (auto it = round_outbox_.find(key); it != round_outbox_.end()) {
    if (!it->second) return {};
    value = *it->second;
  } else {
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), outbox_, key, &value);
    if (s.IsNotFound()) return {};
    if (auto ec = FromStatus(s)) return ec;
  }
  if (value.empty() || value[0] == static_cast<char>(status)) return {};
  value[0] = static_cast<char>(status);
  round.batch->Put(outbox_, key, value);
  round_outbox_[key] = std::move(value);
  return {};
}

boost::system::error_code Deliveries::Forget(CommitRound& round, std::uint64_t seq) {
  if (cf_ == nullptr) return {};
  auto records = RecordsOf(seq);
  if (!records) return records.error();
  for (const auto& [endpoint, record] : *records) {
    if (Queued(record.delivery)) {
      round.batch->Delete(cf_, QueueKey(endpoint, record.delivery.next_attempt_at, seq));
    }
    if (Dead(record.delivery)) {
      round.batch->Delete(cf_, DeadKey(endpoint, seq));
      --round_dead_[endpoint];
    }
    std::string key = DeliveryRecordKey(seq, endpoint);
    round.batch->Delete(cf_, key);
    round_[std::move(key)] = std::nullopt;
  }
  if (!records->empty()) {
    round_outbox_[OutboxEntryKey(records->begin()->second.site_prefix, seq)] = std::nullopt;
  }
  return {};
}

boost::system::error_code Deliveries::ApplyAttempt(const DeliveryAttemptDone& done,
                                                   CommitRound& round, DeliveryResult& result) {
  auto records = RecordsOf(done.seq);
  if (!records) return records.error();
  auto it = records->find(done.endpoint);
  // Erased meanwhile, or retried by hand and already attempted: nothing to record.
  if (it == records->end() || !Queued(it->second.delivery)) return {};
  const webhooks::Delivery before = it->second.delivery;
  Record record = it->second;
  const webhooks::Verdict verdict = webhooks::Judge(schedule_, before.attempts + 1, done.result,
                                                    done.at, done.random);
  const bool gone = webhooks::RecordAttempt(record.delivery, done.result, verdict, done.at,
                                            done.duration_ms);
  if (record.delivery.state == webhooks::State::kWaiting) {
    // Kept in the queue at the time of the 410, so that it is attempted first once enabled.
    record.delivery.next_attempt_at = done.at;
  }
  Put(round, done.seq, done.endpoint, &before, record);
  DeliveryOutcome outcome = DeliveryOutcome::kRetrying;
  switch (record.delivery.state) {
    case webhooks::State::kDelivered: outcome = DeliveryOutcome::kDelivered; break;
    case webhooks::State::kDead: outcome = DeliveryOutcome::kDead; break;
    case webhooks::State::kWaiting: outcome = DeliveryOutcome::kGone; break;
    case webhooks::State::kPending: break;
  }
  result.outcomes.emplace_back(done.endpoint, outcome);
  if (gone) {
    std::string value;
    PutBigEndian64(value, static_cast<std::uint64_t>(done.at));
    round.batch->Put(cf_, DisabledKey(done.endpoint), value);
    if (std::find(result.disabled.begin(), result.disabled.end(), done.endpoint) ==
        result.disabled.end()) {
      result.disabled.push_back(done.endpoint);
    }
  }
  return UpdateStatus(round, done.seq);
}

boost::system::error_code Deliveries::Apply(const DeliveryRequest& request, CommitRound& round,
                                            DeliveryResult& result) {
  if (cf_ == nullptr) return Errc::kInvalidArgument;
  const DeliveryChange& change = request.change;
  switch (change.kind) {
    case DeliveryChange::Kind::kAttempts:
      for (const DeliveryAttemptDone& done : change.attempts) {
        if (auto ec = ApplyAttempt(done, round, result)) return ec;
      }
      return {};
    case DeliveryChange::Kind::kRetry: {
      auto seq = DeliverySeq(change.id);
      if (!seq) return {};
      auto records = RecordsOf(*seq);
      if (!records) return records.error();
      const std::string site_prefix = SitePrefix(change.site);
      for (auto& [endpoint, record] : *records) {
        if (record.site_prefix != site_prefix) return {};  // another site's entry
        result.found = true;
        const webhooks::Delivery before = record.delivery;
        if (!webhooks::RetryNow(record.delivery, change.now)) continue;
        Put(round, *seq, endpoint, &before, record);
        ++result.retried;
      }
      return result.retried ? UpdateStatus(round, *seq) : boost::system::error_code();
    }
    case DeliveryChange::Kind::kEnable: {
      result.found = std::any_of(endpoints_.begin(), endpoints_.end(), [&](const WebhookEndpoint& e) {
        return e.name == change.endpoint;
      });
      if (!result.found) return {};
      std::string value;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_, DisabledKey(change.endpoint), &value);
      if (auto ec = FromStatus(s); ec && !s.IsNotFound()) return ec;
      result.was_disabled = s.ok();
      if (s.ok()) round.batch->Delete(cf_, DisabledKey(change.endpoint));
      // The deliveries a 410 left waiting are attempted at once (the dispatcher takes the
      // rest of the queue as it comes).
      std::vector<std::pair<std::uint64_t, std::int64_t>> queued;
      const std::string prefix = QueuePrefix(change.endpoint);
      auto ec = ForEachWithPrefix(*db_, cf_, prefix, [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
        if (key.size() != prefix.size() + 16) return true;
        queued.emplace_back(GetBigEndian64(key.data() + prefix.size() + 8),
                            static_cast<std::int64_t>(GetBigEndian64(key.data() + prefix.size())));
        return queued.size() < 100'000;
      });
      if (ec) return ec;
      for (const auto& [seq, due] : queued) {
        auto records = RecordsOf(seq);
        if (!records) return records.error();
        auto it = records->find(change.endpoint);
        if (it == records->end() || it->second.delivery.state != webhooks::State::kWaiting) continue;
        const webhooks::Delivery before = it->second.delivery;
        webhooks::EndpointEnabled(it->second.delivery, change.now);
        Put(round, seq, change.endpoint, &before, it->second);
        if (auto ec = UpdateStatus(round, seq)) return ec;
      }
      return {};
    }
  }
  return {};
}

void Deliveries::End(const CommitRound& round, bool written) {
  round_.clear();
  round_outbox_.clear();
  if (written && !round_dead_.empty()) {
    util::MutexLock lock(dead_mu_);
    for (const auto& [endpoint, change] : round_dead_) {
      std::size_t& n = dead_[endpoint];
      n = change < 0 && static_cast<std::size_t>(-change) > n ? 0 : n + change;
    }
  }
  round_dead_.clear();
}

void Deliveries::Attach(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* deliveries,
                        rocksdb::ColumnFamilyHandle* outbox) {
  db_ = db;
  cf_ = deliveries;
  outbox_ = outbox;
  std::map<std::string, std::size_t, std::less<>> dead;
  if (db_ != nullptr && cf_ != nullptr) {
    auto ec = ForEachWithPrefix(*db_, cf_, std::string(1, kDeadTag),
                                [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
                                  const std::size_t length = key.size() > 1 ? static_cast<unsigned char>(key[1]) : 0;
                                  if (key.size() >= 2 + length + 8) ++dead[std::string(key.data() + 2, length)];
                                  return true;
                                });
    if (ec) log::Error("cannot count the dead webhook deliveries").Add("error", ec.message());
  }
  util::MutexLock lock(dead_mu_);
  dead_ = std::move(dead);
}

std::size_t Deliveries::DeadCount(std::string_view endpoint) const {
  util::MutexLock lock(dead_mu_);
  auto it = dead_.find(endpoint);
  return it == dead_.end() ? 0 : it->second;
}

boost::system::result<std::vector<DueDelivery>> ReadDueDeliveries(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* deliveries, rocksdb::ColumnFamilyHandle* outbox,
    std::string_view endpoint, std::int64_t now, std::size_t limit,
    const std::set<std::uint64_t>& skip, DueCursor* cursor) {
  std::vector<DueDelivery> out;
  const std::string prefix = QueuePrefix(endpoint);
  std::string upper = QueueKey(endpoint, now, UINT64_MAX);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, deliveries));
  std::string start = prefix;
  if (cursor && cursor->valid) {
    start = QueueKey(endpoint, cursor->due, cursor->seq);
    start.push_back('\0');  // just after it
  }
  for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() != prefix.size() + 16) continue;
    const std::uint64_t seq = GetBigEndian64(key.data() + prefix.size() + 8);
    if (cursor) {
      *cursor = DueCursor{.valid = true,
                          .due = static_cast<std::int64_t>(GetBigEndian64(key.data() + prefix.size())),
                          .seq = seq};
    }
    if (skip.count(seq)) continue;
    std::string value;
    rocksdb::Status s = db.Get(rocksdb::ReadOptions(), deliveries, DeliveryRecordKey(seq, endpoint), &value);
    if (s.IsNotFound()) continue;
    if (auto ec = FromStatus(s)) return ec;
    std::string site_prefix;
    webhooks::Delivery record;
    if (!DecodeRecord(value, site_prefix, record)) return boost::system::error_code(Errc::kCorruption);
    std::string entry;
    s = db.Get(rocksdb::ReadOptions(), outbox, OutboxEntryKey(site_prefix, seq), &entry);
    if (s.IsNotFound()) continue;
    if (auto ec = FromStatus(s)) return ec;
    auto body = WebhookBody(std::string_view(entry).substr(1));
    if (!body) return boost::system::error_code(Errc::kCorruption);
    out.push_back(DueDelivery{.seq = seq,
                              .id = DeliveryId(seq),
                              .endpoint = std::string(endpoint),
                              .attempts = record.attempts,
                              .body = std::move(*body)});
  }
  if (auto ec = FromStatus(it->status())) return ec;
  return out;
}

boost::system::result<std::size_t> CountQueuedDeliveries(rocksdb::DB& db,
                                                         rocksdb::ColumnFamilyHandle* deliveries,
                                                         std::string_view endpoint, std::size_t cap) {
  std::size_t n = 0;
  auto ec = ForEachWithPrefix(db, deliveries, QueuePrefix(endpoint),
                              [&](const rocksdb::Slice&, const rocksdb::Slice&) { return ++n < cap; });
  if (ec) return ec;
  return n;
}

boost::system::error_code IndexDeadDeliveries(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* deliveries,
                                              rocksdb::ColumnFamilyHandle* meta) {
  std::string marker;
  rocksdb::Status s = db.Get(rocksdb::ReadOptions(), meta, kDeadIndexKey, &marker);
  if (s.ok()) return {};
  if (!s.IsNotFound()) return FromStatus(s);
  rocksdb::WriteBatch batch;
  auto ec = ForEachWithPrefix(db, deliveries, std::string(1, kRecordTag),
                              [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
                                std::string site_prefix;
                                webhooks::Delivery d;
                                if (key.size() < 9 || !DecodeRecord(value.ToStringView(), site_prefix, d) ||
                                    !Dead(d)) {
                                  return true;
                                }
                                const std::uint64_t seq = GetBigEndian64(key.data() + 1);
                                batch.Put(deliveries, DeadKey(key.ToStringView().substr(9), seq), rocksdb::Slice());
                                return true;
                              });
  if (ec) return ec;
  batch.Put(meta, kDeadIndexKey, "1");
  return FromStatus(db.Write(rocksdb::WriteOptions(), &batch));
}

boost::system::result<std::vector<std::string>> ReadDisabledEndpoints(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* deliveries) {
  std::vector<std::string> out;
  auto ec = ForEachWithPrefix(db, deliveries, std::string(1, kDisabledTag),
                              [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
                                out.emplace_back(key.data() + 1, key.size() - 1);
                                return true;
                              });
  if (ec) return ec;
  return out;
}

boost::system::result<RenderedRecords> RenderDeliveryRecords(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* deliveries, std::uint64_t seq,
    const std::vector<std::string>& disabled) {
  const std::string prefix = RecordPrefix(seq);
  struct Line {
    std::string endpoint;
    webhooks::AttemptRecord attempt;
  };
  std::vector<Line> attempts;
  RenderedRecords out;
  out.endpoints.clear();
  profiles::JsonWriter e(out.endpoints);
  e.BeginArray();
  bool corrupt = false;
  auto ec = ForEachWithPrefix(db, deliveries, prefix, [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
    std::string site_prefix;
    webhooks::Delivery d;
    if (!DecodeRecord(value.ToStringView(), site_prefix, d)) {
      corrupt = true;
      return false;
    }
    const std::string endpoint = key.ToString().substr(prefix.size());
    const bool is_disabled =
        std::find(disabled.begin(), disabled.end(), endpoint) != disabled.end();
    std::string_view state = webhooks::StateName(d.state);
    if (d.state == webhooks::State::kPending && is_disabled) state = "waiting";
    e.BeginObject();
    e.Key("endpoint");
    e.Text(endpoint);
    e.Key("state");
    e.String(state);
    e.Key("attempts");
    e.Int(d.attempts);
    e.Key("next_attempt_at");
    if (d.state == webhooks::State::kPending && !is_disabled) {
      e.Time(d.next_attempt_at);
    } else {
      e.Null();
    }
    e.Key("last_error");
    if (d.last_error.empty()) {
      e.Null();
    } else {
      e.Text(d.last_error);
    }
    e.EndObject();
    for (auto& a : d.history) attempts.push_back(Line{endpoint, std::move(a)});
    return true;
  });
  if (ec) return ec;
  if (corrupt) return boost::system::error_code(Errc::kCorruption);
  e.EndArray();
  std::stable_sort(attempts.begin(), attempts.end(),
                   [](const Line& a, const Line& b) { return a.attempt.at < b.attempt.at; });
  out.attempts.clear();
  profiles::JsonWriter j(out.attempts);
  j.BeginArray();
  for (const Line& line : attempts) {
    j.BeginObject();
    j.Key("endpoint");
    j.Text(line.endpoint);
    j.Key("at");
    j.Time(line.attempt.at);
    j.Key("status");
    if (line.attempt.status) {
      j.Int(line.attempt.status);
    } else {
      j.Null();
    }
    j.Key("error");
    if (line.attempt.error.empty()) {
      j.Null();
    } else {
      j.Text(line.attempt.error);
    }
    j.Key("duration_ms");
    j.Int(line.attempt.duration_ms);
    j.EndObject();
  }
  j.EndArray();
  return out;
}

}  // namespace cartwatch::storage
