#include "storage/timers.h"

#include "storage/keys.h"

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
  std::string version;
  for (const rules::Timer& t : timers) {
    TimerKeyInto(key_, rules_, t, subject);
    version.clear();
    PutBigEndian64(version, t.version);
    round.batch->Put(timers_, key_, version);
    ++round_armed_;
  }
  return {};
}

}  // namespace cartwatch::storage
