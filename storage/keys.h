// Key encodings of the RocksDB store (layout and reasons: docs/storage.md). Pure
// functions, safe from any thread. Private to storage/; tests and bench/ use it directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cartwatch::storage {

// Site names are length-prefixed with one byte.
inline constexpr std::size_t kMaxSiteName = 255;

void PutBigEndian64(std::string& out, std::uint64_t v);
// REQUIRES: p points at 8 readable bytes.
std::uint64_t GetBigEndian64(const char* p);

// "[u8 length][site]": the prefix of every per-site key, so that no site's key range is a
// prefix of another's. REQUIRES: site.size() <= kMaxSiteName.
std::string SitePrefix(std::string_view site);

// FNV-1a over a then b, 64 bit: stable across builds and platforms, as it is part of keys.
std::uint64_t StableHash64(std::string_view a, std::string_view b);

// events: site prefix + big-endian event id, so that a site's events sort by arrival.
std::string EventKey(std::string_view site_prefix, std::uint64_t event_id);
// The same, written into `out` (replacing its contents, reusing its capacity).
void EventKeyInto(std::string& out, std::string_view site_prefix, std::uint64_t event_id);

// dedup: "[u64 hash of site and messageId][site prefix][messageId]". The hash leads so that
// key comparisons (a dozen per memtable insert or lookup) end within the first 8 bytes
// instead of walking the site name and the long prefixes message ids often share.
std::string DedupKey(std::string_view site_prefix, std::string_view message_id);
// The same, written into `out` (replacing its contents, reusing its capacity).
void DedupKeyInto(std::string& out, std::string_view site_prefix, std::string_view message_id);

// The public cursor of an event: its id as 16 lower-case hex digits, and back. DecodeCursor
// accepts either case and returns nullopt for anything but 16 hex digits.
std::string EncodeCursor(std::uint64_t event_id);
std::optional<std::uint64_t> DecodeCursor(std::string_view s);

}  // namespace cartwatch::storage
