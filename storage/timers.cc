#include "storage/timers.h"

#include <memory>

#include <rocksdb/iterator.h>

#include "storage/keys.h"
#include "storage/status.h"

namespace cartwatch::storage {

void TimerKeyInto(std::string& out, const rules::RuleSet& rules, const rules::Timer& timer,
                  const SubjectKey& subject) {
  out.clear();
  out.push_back(kTimerPrefix);
  PutBigEndian64(out, static_cast<std::uint64_t>(std::max<rules::EpochMs>(timer.due, 0)));
  const std::uint32_t id = rules::RuleId(rules.rules.at(timer.rule).name);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(id >> shift));
  out.push_back(static_cast<char>(timer.stage));
  out.append(subject.site_prefix);
  out.push_back(static_cast<char>(subject.kind));
  out.append(subject.id);
}

std::string TimerKey(const rules::RuleSet& rules, const rules::Timer& timer,
                     const SubjectKey& subject) {
  std::string out;
  TimerKeyInto(out, rules, timer, subject);
  return out;
}

std::string TimerKeyLimit(rules::EpochMs due) {
  std::string out(1, kTimerPrefix);
  PutBigEndian64(out, static_cast<std::uint64_t>(std::max<rules::EpochMs>(due, 0)) + 1);
  return out;
}

std::optional<StoredTimer> DecodeTimer(const rules::RuleSet& rules, std::string_view key,
                                       std::string_view value) {
  // prefix, due, rule id, stage, then a site prefix (its length byte first), kind, id.
  constexpr std::size_t kFixed = 1 + 8 + 4 + 1;
  if (key.size() < kFixed + 1 || key[0] != kTimerPrefix || value.size() != 8) {
    return std::nullopt;
  }
  StoredTimer t;
  t.timer.due = static_cast<rules::EpochMs>(GetBigEndian64(key.data() + 1));
  std::uint32_t id = 0;
  for (int i = 0; i < 4; ++i) id = (id << 8) | static_cast<unsigned char>(key[9 + i]);
  t.rule_id = id;
  if (auto index = rules.IndexOf(id)) {
    t.timer.rule = *index;
    t.known_rule = true;
  }
  t.timer.stage = static_cast<std::uint8_t>(key[13]);
  t.timer.version = GetBigEndian64(value.data());
  std::string_view rest = key.substr(kFixed);
  const std::size_t prefix_size = 1 + static_cast<unsigned char>(rest[0]);
  if (rest.size() < prefix_size + 1) return std::nullopt;
  t.subject.site_prefix = rest.substr(0, prefix_size);
  const char kind = rest[prefix_size];
  if (kind != static_cast<char>(rules::SubjectKind::kCustomer) &&
      kind != static_cast<char>(rules::SubjectKind::kVisitor)) {
    return std::nullopt;
  }
  t.subject.kind = static_cast<rules::SubjectKind>(kind);
  t.subject.id = rest.substr(prefix_size + 1);
  return t;
}

void PersonTimerKeyInto(std::string& out, const rules::RuleSet& rules, const rules::Timer& timer,
                        const SubjectKey& subject) {
  PersonPrefixInto(out, kPersonTimerPrefix, subject);
  PutBigEndian64(out, static_cast<std::uint64_t>(std::max<rules::EpochMs>(timer.due, 0)));
  const std::uint32_t id = rules::RuleId(rules.rules.at(timer.rule).name);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(id >> shift));
  out.push_back(static_cast<char>(timer.stage));
}

void PutTimer(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* timers,
              const rules::RuleSet& rules, const rules::Timer& timer, const SubjectKey& subject) {
  std::string key, version;
  PutBigEndian64(version, timer.version);
  TimerKeyInto(key, rules, timer, subject);
  batch.Put(timers, key, version);
  PersonTimerKeyInto(key, rules, timer, subject);
  batch.Put(timers, key, version);
}

void DeleteTimer(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* timers,
                 const rules::RuleSet& rules, const rules::Timer& timer, const SubjectKey& subject) {
  std::string key;
  TimerKeyInto(key, rules, timer, subject);
  batch.Delete(timers, key);
  PersonTimerKeyInto(key, rules, timer, subject);
  batch.Delete(timers, key);
}

void DeleteStoredTimer(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* timers,
                       const StoredTimer& stored) {
  std::string key;
  key.push_back(kTimerPrefix);
  std::string suffix;  // due, rule id, stage: shared by both keys
  PutBigEndian64(suffix, static_cast<std::uint64_t>(std::max<rules::EpochMs>(stored.timer.due, 0)));
  for (int shift = 24; shift >= 0; shift -= 8) suffix.push_back(static_cast<char>(stored.rule_id >> shift));
  suffix.push_back(static_cast<char>(stored.timer.stage));
  key += suffix;
  key.append(stored.subject.site_prefix);
  key.push_back(static_cast<char>(stored.subject.kind));
  key.append(stored.subject.id);
  batch.Delete(timers, key);
  PersonPrefixInto(key, kPersonTimerPrefix, stored.subject);
  key += suffix;
  batch.Delete(timers, key);
}

std::optional<PersonTimer> DecodePersonTimer(std::string_view suffix) {
  if (suffix.size() != 8 + 4 + 1) return std::nullopt;
  PersonTimer t;
  t.due = static_cast<rules::EpochMs>(GetBigEndian64(suffix.data()));
  for (int i = 0; i < 4; ++i) t.rule_id = (t.rule_id << 8) | static_cast<unsigned char>(suffix[8 + i]);
  t.stage = static_cast<unsigned char>(suffix[12]);
  return t;
}

boost::system::result<std::vector<PendingTimer>> ReadPersonTimers(rocksdb::DB& db,
                                                                  rocksdb::ColumnFamilyHandle* timers,
                                                                  const SubjectKey& subject) {
  const std::string prefix = PersonPrefix(kPersonTimerPrefix, subject);
  const std::string upper = prefix + std::string(14, '\xff');
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, timers));
  std::vector<PendingTimer> out;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto timer = DecodePersonTimer(it->key().ToStringView().substr(prefix.size()));
    if (!timer || it->value().size() != 8) continue;
    out.push_back(PendingTimer{*timer, GetBigEndian64(it->value().data())});
  }
  if (auto ec = FromStatus(it->status())) return ec;
  return out;
}

boost::system::result<std::size_t> CountTimers(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* timers,
                                               std::size_t cap) {
  const char lower[] = {kTimerPrefix};
  const char upper[] = {static_cast<char>(kTimerPrefix + 1)};
  rocksdb::Slice upper_slice(upper, 1);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;  // a scan of every timer must not push out what ingest reads
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, timers));
  std::size_t n = 0;
  for (it->Seek(rocksdb::Slice(lower, 1)); it->Valid() && n < cap; it->Next()) ++n;
  if (auto ec = FromStatus(it->status())) return ec;
  return n;
}

boost::system::error_code ErasePersonTimers(rocksdb::DB& db, rocksdb::WriteBatch& batch,
                                            rocksdb::ColumnFamilyHandle* timers,
                                            const SubjectKey& subject) {
  auto pending = ReadPersonTimers(db, timers, subject);
  if (!pending) return pending.error();
  for (const PendingTimer& p : *pending) {
    StoredTimer stored;
    stored.timer.due = p.timer.due;
    stored.timer.stage = static_cast<std::uint8_t>(p.timer.stage);
    stored.rule_id = p.timer.rule_id;
    stored.subject = subject;
    DeleteStoredTimer(batch, timers, stored);
  }
  batch.Delete(timers, MarksKey(subject));
  return {};
}

std::string MarksKey(const SubjectKey& subject) {
  std::string out(1, kMarksPrefix);
  out.append(subject.site_prefix);
  out.push_back(static_cast<char>(subject.kind));
  out.append(subject.id);
  return out;
}

boost::system::error_code TimerStage::Stored(CommitRound& round, std::string_view site_prefix,
                                             std::uint64_t id, const Message& message) {
  if (!active() || writer_ == nullptr) return {};
  const rules::Change* change = writer_->last_change();
  if (change == nullptr) return {};
  const std::vector<rules::Timer> timers = rules::Plan(rules_, *change, options_);
  if (timers.empty()) return {};
  const SubjectKey subject{site_prefix, change->person.kind, change->person.id()};
  for (const rules::Timer& t : timers) {
    PutTimer(*round.batch, timers_, rules_, t, subject);
    ++round_armed_;
  }
  return {};
}

}  // namespace cartwatch::storage
