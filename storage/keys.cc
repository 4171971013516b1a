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

namespace {

std::uint64_t LoadLittleEndian64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

constexpr std::uint64_t Rotl64(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

constexpr std::uint64_t Fmix64(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

}  // namespace

// Austin Appleby's MurmurHash3_x64_128 (public domain), seed 0, with explicit
// little-endian loads.
IdHash MurmurHash3x64_128(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t len = data.size();
  const std::size_t nblocks = len / 16;
  constexpr std::uint64_t c1 = 0x87c37b91114253d5ull;
  constexpr std::uint64_t c2 = 0x4cf5ad432745937full;
  std::uint64_t h1 = 0, h2 = 0;

  for (std::size_t i = 0; i < nblocks; ++i) {
    std::uint64_t k1 = LoadLittleEndian64(p + i * 16);
    std::uint64_t k2 = LoadLittleEndian64(p + i * 16 + 8);
    k1 *= c1; k1 = Rotl64(k1, 31); k1 *= c2; h1 ^= k1;
    h1 = Rotl64(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
    k2 *= c2; k2 = Rotl64(k2, 33); k2 *= c1; h2 ^= k2;
    h2 = Rotl64(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
  }

  const unsigned char* tail = p + nblocks * 16;
  std::uint64_t k1 = 0, k2 = 0;
  switch (len & 15) {
    case 15: k2 ^= std::uint64_t{tail[14]} << 48; [[fallthrough]];
    case 14: k2 ^= std::uint64_t{tail[13]} << 40; [[fallthrough]];
    case 13: k2 ^= std::uint64_t{tail[12]} << 32; [[fallthrough]];
    case 12: k2 ^= std::uint64_t{tail[11]} << 24; [[fallthrough]];
    case 11: k2 ^= std::uint64_t{tail[10]} << 16; [[fallthrough]];
    case 10: k2 ^= std::uint64_t{tail[9]} << 8; [[fallthrough]];
    case 9:
      k2 ^= std::uint64_t{tail[8]};
      k2 *= c2; k2 = Rotl64(k2, 33); k2 *= c1; h2 ^= k2;
      [[fallthrough]];
    case 8: k1 ^= std::uint64_t{tail[7]} << 56; [[fallthrough]];
    case 7: k1 ^= std::uint64_t{tail[6]} << 48; [[fallthrough]];
    case 6: k1 ^= std::uint64_t{tail[5]} << 40; [[fallthrough]];
    case 5: k1 ^= std::uint64_t{tail[4]} << 32; [[fallthrough]];
    case 4: k1 ^= std::uint64_t{tail[3]} << 24; [[fallthrough]];
    case 3: k1 ^= std::uint64_t{tail[2]} << 16; [[fallthrough]];
    case 2: k1 ^= std::uint64_t{tail[1]} << 8; [[fallthrough]];
    case 1:
      k1 ^= std::uint64_t{tail[0]};
      k1 *= c1; k1 = Rotl64(k1, 31); k1 *= c2; h1 ^= k1;
  }

  h1 ^= len; h2 ^= len;
  h1 += h2; h2 += h1;
  h1 = Fmix64(h1); h2 = Fmix64(h2);
  h1 += h2; h2 += h1;
  return IdHash{h1, h2};
}

IdHash MessageIdHash(std::string_view site_prefix, std::string_view message_id) {
  // Site prefixes are at most 256 bytes and message ids are capped by the message size
  // limit; a stack buffer covers the usual case without allocating.
  char buf[512];
  const std::size_t n = site_prefix.size() + message_id.size();
  if (n <= sizeof buf) {
    site_prefix.copy(buf, site_prefix.size());
    message_id.copy(buf + site_prefix.size(), message_id.size());
    return MurmurHash3x64_128(std::string_view(buf, n));
  }
  std::string joined;
  joined.reserve(n);
  joined.append(site_prefix).append(message_id);
  return MurmurHash3x64_128(joined);
}

std::string DedupLogKey(std::uint64_t last_event_id) {
  std::string key;
  PutBigEndian64(key, last_event_id);
  return key;
}

void AppendDedupLogTime(std::string& record, std::int64_t time_ms) {
  PutBigEndian64(record, static_cast<std::uint64_t>(time_ms));
}

void AppendDedupLogHash(std::string& record, const IdHash& hash) {
  PutBigEndian64(record, hash.h1);
  PutBigEndian64(record, hash.h2);
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

void AppendBatchedEvent(std::string& value, std::uint64_t previous_id, std::uint64_t id,
                        std::string_view json) {
  if (value.empty()) {
    value.push_back(kEventBatchV1);
    PutBigEndian64(value, id);
  } else {
    assert(id > previous_id);
    util::PutVarint(value, id - previous_id);
  }
  util::PutVarint(value, json.size());
  value.append(json);
}

std::string EventKey(std::string_view site_prefix, std::uint64_t event_id) {
  std::string key;
  key.reserve(site_prefix.size() + 8);
  EventKeyInto(key, site_prefix, event_id);
  return key;
}

std::string PersonKey(std::string_view site_prefix, std::string_view id) {
  std::string key;
  key.reserve(site_prefix.size() + id.size());
  key.append(site_prefix);
  key.append(id);
  return key;
}

void AppendStateValueHeader(std::string& out, std::uint64_t applied) {
  out.push_back('S');
  PutBigEndian64(out, applied);
}

StateValue SplitStateValue(std::string_view value) {
  if (value.size() < 9 || value[0] != 'S') return StateValue{0, value};
  return StateValue{GetBigEndian64(value.data() + 1), value.substr(9)};
}

std::string ThresholdsKey(std::string_view site_prefix) {
  std::string key = "thresholds";
  key.append(site_prefix);
  return key;
}

std::string EraseJobKey(std::uint64_t seq) {
  std::string key(kEraseJobPrefix);
  PutBigEndian64(key, seq);
  return key;
}

namespace {

void PutString32(std::string& out, std::string_view s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(s);
}

bool GetString32(std::string_view& in, std::string& out) {
  if (in.size() < 4) return false;
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(4);
  if (n > in.size()) return false;
  out.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

}  // namespace

std::string EncodeEraseJob(const EraseJob& job) {
  std::string out;
  PutBigEndian64(out, job.up_to_event_id);
  PutString32(out, job.site_prefix);
  PutString32(out, job.user_id);
  for (const std::string& id : job.anonymous_ids) PutString32(out, id);
  return out;
}

std::optional<EraseJob> DecodeEraseJob(std::string_view in) {
  if (in.size() < 8) return std::nullopt;
  EraseJob job;
  job.up_to_event_id = GetBigEndian64(in.data());
  in.remove_prefix(8);
  if (!GetString32(in, job.site_prefix) || !GetString32(in, job.user_id)) return std::nullopt;
  if (job.site_prefix.empty() ||
      static_cast<unsigned char>(job.site_prefix[0]) + 1u != job.site_prefix.size()) {
    return std::nullopt;
  }
  while (!in.empty()) {
    if (!GetString32(in, job.anonymous_ids.emplace_back())) return std::nullopt;
  }
  return job;
}

}  // namespace cartwatch::storage
