#include "storage/outbox.h"

#include <cstdio>
#include <memory>

#include <rocksdb/iterator.h>

#include "profiles/json_writer.h"
#include "storage/deliveries.h"
#include "storage/keys.h"
#include "storage/status.h"

namespace cartwatch::storage {
namespace {

std::string OutboxKey(std::string_view site_prefix, std::uint64_t seq) {
  std::string key(site_prefix);
  PutBigEndian64(key, seq);
  return key;
}

// The raw JSON value of the top-level `key` of a stored entry, for a key before "data":
// those values are strings and numbers, and inside a JSON string every '"' is escaped, so
// the first `"key":` is the member itself.
std::optional<std::string_view> Member(std::string_view json, std::string_view key,
                                       std::string_view next_key) {
  std::string probe = "\"" + std::string(key) + "\":";
  const auto at = json.find(probe);
  if (at == std::string_view::npos) return std::nullopt;
  const auto start = at + probe.size();
  const auto end = json.find(",\"" + std::string(next_key) + "\":", start);
  if (end == std::string_view::npos) return std::nullopt;
  return json.substr(start, end - start);
}

// The stored entry with its status byte's status and the records' attempts filled in.
std::string RenderEntry(std::string_view value, const RenderedRecords* records) {
  std::string out;
  std::string_view json = value.substr(1);
  const std::string_view status = DeliveryStatusName(static_cast<DeliveryStatus>(value[0]));
  const auto status_at = json.find("\"status\":\"");
  const auto attempts_at = json.find(",\"attempts\":[]");
  if (status_at == std::string_view::npos || attempts_at == std::string_view::npos ||
      attempts_at < status_at) {
    return std::string(json);
  }
  const auto status_end = json.find('"', status_at + 10);
  out.reserve(json.size() + 256);
  out.append(json.substr(0, status_at + 10));
  out.append(status);
  out.append(json.substr(status_end, attempts_at - status_end));
  out.append(",\"attempts\":");
  out.append(records ? records->attempts : "[]");
  out.append(",\"endpoints\":");
  out.append(records ? records->endpoints : "[]");
  out.append(json.substr(attempts_at + 14));
  return out;
}

// An entry as GET /v1/deliveries shows it.
boost::system::result<std::string> ShowEntry(const OutboxView& view, std::uint64_t seq,
                                             std::string_view value) {
  if (view.deliveries == nullptr) return RenderEntry(value, nullptr);
  auto records = RenderDeliveryRecords(*view.db, view.deliveries, seq, view.disabled);
  if (!records) return records.error();
  return RenderEntry(value, &*records);
}

}  // namespace

std::optional<std::string> WebhookBody(std::string_view json) {
  auto type = Member(json, "type", "status");
  auto created_at = Member(json, "created_at", "rule");
  const auto data_at = json.find(",\"data\":");
  if (!type || !created_at || data_at == std::string_view::npos || json.back() != '}') {
    return std::nullopt;
  }
  std::string body = "{\"type\":";
  body.append(*type);
  body.append(",\"timestamp\":");
  body.append(*created_at);
  body.append(json.substr(data_at));
  return body;
}

std::string_view DeliveryStatusName(DeliveryStatus status) {
  switch (status) {
    case DeliveryStatus::kPending: return "pending";
    case DeliveryStatus::kDelivered: return "delivered";
    case DeliveryStatus::kFailed: return "failed";
    case DeliveryStatus::kDead: return "dead";
    case DeliveryStatus::kSkipped: return "skipped";
  }
  return "unknown";
}

std::optional<DeliveryStatus> DeliveryStatusNamed(std::string_view name) {
  for (DeliveryStatus s : {DeliveryStatus::kPending, DeliveryStatus::kDelivered,
                           DeliveryStatus::kFailed, DeliveryStatus::kDead,
                           DeliveryStatus::kSkipped}) {
    if (DeliveryStatusName(s) == name) return s;
  }
  return std::nullopt;
}

std::string DeliveryId(std::uint64_t seq) { return "act_" + EncodeCursor(seq); }

std::optional<std::uint64_t> DeliverySeq(std::string_view id) {
  if (!id.starts_with("act_")) return std::nullopt;
  return DecodeCursor(id.substr(4));
}

boost::system::error_code Outbox::Load(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                                       rocksdb::ColumnFamilyHandle* outbox, Deliveries* deliveries) {
  deliveries_ = deliveries;
  meta_ = meta;
  outbox_ = outbox;
  last_seq_ = 0;
  std::string value;
  rocksdb::Status s = db.Get(rocksdb::ReadOptions(), meta, kLastOutboxSeqKey, &value);
  if (s.ok() && value.size() == 8) last_seq_ = GetBigEndian64(value.data());
  if (!s.ok() && !s.IsNotFound()) return FromStatus(s);
  round_seq_ = last_seq_;
  return {};
}

std::string Outbox::Add(CommitRound& round, const SubjectKey& person, const OutboxEntry& entry) {
  const std::string_view site_prefix = person.site_prefix;
  const std::uint64_t seq = ++round_seq_;
  const std::string id = DeliveryId(seq);
  std::string value(1, static_cast<char>(entry.status));
  profiles::JsonWriter j(value);
  j.BeginObject();
  j.Key("id");
  j.String(id);
  j.Key("type");
  j.String(entry.type);
  j.Key("status");
  j.String(DeliveryStatusName(entry.status));
  j.Key("reason");
  j.Text(entry.reason);
  j.Key("created_at");
  j.Time(entry.created_at);
  j.Key("rule");
  j.String(entry.rule);
  j.Key("stage");
  j.Int(entry.stage);
  j.Key("attempts");
  j.BeginArray();
  j.EndArray();
  j.Key("data");
  j.Raw(entry.data);
  j.EndObject();
  round.batch->Put(outbox_, OutboxKey(site_prefix, seq), value);
  std::string index = PersonPrefix(kPersonOutboxPrefix, person);
  PutBigEndian64(index, seq);
  round.batch->Put(outbox_, index, rocksdb::Slice());
  if (deliveries_ && entry.status == DeliveryStatus::kPending) {
    deliveries_->Created(round, site_prefix, seq, entry.type, entry.created_at);
  }
  return id;
}

boost::system::error_code Outbox::Finish(CommitRound& round) {
  if (round_seq_ != last_seq_) {
    std::string value;
    PutBigEndian64(value, round_seq_);
    round.batch->Put(meta_, kLastOutboxSeqKey, value);
  }
  return {};
}

void Outbox::End(const CommitRound& round, bool written) {
  if (written) {
    added_ += round_seq_ - last_seq_;
    last_seq_ = round_seq_;
  } else {
    round_seq_ = last_seq_;
  }
}

namespace {

// Calls f(seq, index key) for the person's entries, newest first, until f returns false.
template <typename F>
boost::system::error_code ForEachPersonEntry(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* outbox,
                                             const SubjectKey& person, F&& f) {
  const std::string prefix = PersonPrefix(kPersonOutboxPrefix, person);
  std::string upper = prefix + std::string(9, '\xff');
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, outbox));
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    const rocksdb::Slice key = it->key();
    if (!key.starts_with(prefix)) break;
    if (key.size() != prefix.size() + 8) continue;
    if (!f(GetBigEndian64(key.data() + prefix.size()), key)) break;
  }
  return FromStatus(it->status());
}

}  // namespace

boost::system::result<std::vector<std::string>> ReadPersonDeliveries(const OutboxView& view,
                                                                     const SubjectKey& person,
                                                                     std::size_t limit) {
  std::vector<std::string> out;
  boost::system::error_code read_error;
  rocksdb::DB& db = *view.db;
  auto ec = ForEachPersonEntry(db, view.outbox, person, [&](std::uint64_t seq, const rocksdb::Slice&) {
    std::string value;
    rocksdb::Status s = db.Get(rocksdb::ReadOptions(), view.outbox, OutboxKey(person.site_prefix, seq), &value);
    if (s.ok() && !value.empty()) {
      auto shown = ShowEntry(view, seq, value);
      if (!shown) {
        read_error = shown.error();
        return false;
      }
      out.push_back(std::move(*shown));
    }
    if (!s.ok() && !s.IsNotFound()) read_error = FromStatus(s);
    return !read_error && out.size() < limit;
  });
  if (ec) return ec;
  if (read_error) return read_error;
  return out;
}

boost::system::error_code ErasePersonDeliveries(
    rocksdb::DB& db, rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* outbox,
    const SubjectKey& person, const std::function<boost::system::error_code(std::uint64_t)>& erased) {
  boost::system::error_code read_error;
  auto ec = ForEachPersonEntry(db, outbox, person, [&](std::uint64_t seq, const rocksdb::Slice& index) {
    const std::string key = OutboxKey(person.site_prefix, seq);
    std::string value;
    rocksdb::Status s = db.Get(rocksdb::ReadOptions(), outbox, key, &value);
    if (!s.ok() && !s.IsNotFound()) {
      read_error = FromStatus(s);
      return false;
    }
    if (s.ok() && (value.empty() || value[0] != static_cast<char>(DeliveryStatus::kDelivered))) {
      batch.Delete(outbox, key);
      if (s.ok() && erased) {
        if ((read_error = erased(seq))) return false;
      }
    }
    batch.Delete(outbox, index);
    return true;
  });
  return ec ? ec : read_error;
}

boost::system::result<DeliveryPage> ReadDeliveries(const OutboxView& view,
                                                   std::string_view site_prefix,
                                                   std::optional<DeliveryStatus> status,
                                                   std::string_view after, std::size_t limit) {
  std::uint64_t start = 0;
  if (!after.empty()) {
    auto seq = DeliverySeq(after);
    if (!seq) return boost::system::error_code(Errc::kInvalidArgument);
    if (*seq == UINT64_MAX) return DeliveryPage{{}, std::string(after)};
    start = *seq + 1;
  }
  std::string upper = std::string(site_prefix) + std::string(9, '\xff');
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  DeliveryPage page;
  page.next_cursor = std::string(after);
  std::unique_ptr<rocksdb::Iterator> it(view.db->NewIterator(ro, view.outbox));
  for (it->Seek(OutboxKey(site_prefix, start)); it->Valid() && page.deliveries.size() < limit;
       it->Next()) {
    const rocksdb::Slice key = it->key();
    const rocksdb::Slice value = it->value();
    if (key.size() != site_prefix.size() + 8 || value.empty()) continue;
    const std::uint64_t seq = GetBigEndian64(key.data() + site_prefix.size());
    page.next_cursor = DeliveryId(seq);
    if (status && value[0] != static_cast<char>(*status)) continue;
    auto shown = ShowEntry(view, seq, value.ToStringView());
    if (!shown) return shown.error();
    page.deliveries.push_back(std::move(*shown));
  }
  if (auto ec = FromStatus(it->status())) return ec;
  return page;
}

}  // namespace cartwatch::storage
