// A person of a site as the rule engine's keys name them (storage/timers.h,
// storage/outbox.h): the site prefix, 'c' (a customer: the userId) or 'v' (a visitor: the
// anonymousId), and the id.
//
// Private to storage/. Plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rules/rules.h"

namespace cartwatch::storage {

struct SubjectKey {
  std::string_view site_prefix{};
  rules::SubjectKind kind = rules::SubjectKind::kCustomer;
  std::string_view id{};
};

// `tag` + site prefix + kind + u16 big-endian id length + id: the start of every key of a
// per-person index, so that one prefix scan finds all of a person's entries.
inline void PersonPrefixInto(std::string& out, char tag, const SubjectKey& subject) {
  out.clear();
  out.push_back(tag);
  out.append(subject.site_prefix);
  out.push_back(static_cast<char>(subject.kind));
  const auto size = static_cast<std::uint16_t>(subject.id.size() > 0xffff ? 0xffff : subject.id.size());
  out.push_back(static_cast<char>(size >> 8));
  out.push_back(static_cast<char>(size & 0xff));
  out.append(subject.id.substr(0, size));
}

inline std::string PersonPrefix(char tag, const SubjectKey& subject) {
  std::string out{};
  PersonPrefixInto(out, tag, subject);
  return out;
}

}  // namespace cartwatch::storage
