// Key encodings of the store; the layout is documented in docs/storage.md.
#include "storage/keys.h"

#include <cassert>

namespace cartwatch::storage {

void PutBigEndian64(std::string& out, std::uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out.append(buf, 8);
}

std::uint64_t GetBigEndian64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string SitePrefix(std::string_view site) {
  assert(site.size() <= kMaxSiteName);
  std::string p;
  p.reserve(1 + site.size() + 40);
  p.push_back(static_cast<char>(site.size()));
  p.append(site);
  return p;
}

std::uint64_t StableHash64(std::string_view a, std::string_view b) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::string_view part : {a, b}) {
    for (unsigned char c : part) {
      h ^= c;
      h *= 1099511628211ull;
    }
  }
  return h;
}

void DedupKeyInto(std::string& out, std::string_view site_prefix,
                  std::string_view message_id) {
  out.clear();
  PutBigEndian64(out, StableHash64(site_prefix, message_id));
  out.append(site_prefix);
  out.append(message_id);
}

std::string DedupKey(std::string_view site_prefix, std::string_view message_id) {
  std::string key;
  key.reserve(8 + site_prefix.size() + message_id.size());
  DedupKeyInto(key, site_prefix, message_id);
  return key;
}

std::string EncodeCursor(std::uint64_t event_id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[i] = kHex[event_id & 0xf];
    event_id >>= 4;
  }
  return s;
}

std::optional<std::uint64_t> DecodeCursor(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

void EventKeyInto(std::string& out, std::string_view site_prefix, std::uint64_t event_id) {
  out.clear();
  out.append(site_prefix);
  PutBigEndian64(out, event_id);
}

std::string EventKey(std::string_view site_prefix, std::uint64_t event_id) {
  std::string key;
  key.reserve(site_prefix.size() + 8);
  EventKeyInto(key, site_prefix, event_id);
  return key;
}

}  // namespace cartwatch::storage
