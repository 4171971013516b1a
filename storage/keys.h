// Key encodings of the RocksDB store (layout and reasons: docs/storage.md). Pure
// functions, safe from any thread. Private to storage/; tests and bench/ use it directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/varint.h"

namespace cartwatch::storage {

// Site names are length-prefixed with one byte.
inline constexpr std::size_t kMaxSiteName = 255;

void PutBigEndian64(std::string& out, std::uint64_t v);
// REQUIRES: p points at 8 readable bytes.
std::uint64_t GetBigEndian64(const char* p);

// "[u8 length][site]": the prefix of every per-site key, so that no site's key range is a
// prefix of another's. REQUIRES: site.size() <= kMaxSiteName.
std::string SitePrefix(std::string_view site);

// events: site prefix + big-endian event id, so that a site's events sort by arrival.
std::string EventKey(std::string_view site_prefix, std::uint64_t event_id);
// The same, written into `out` (replacing its contents, reusing its capacity).
void EventKeyInto(std::string& out, std::string_view site_prefix, std::uint64_t event_id);

// events values. A value whose first byte is kEventBatchV1 is a record batch: several
// events of one site from one commit round, stored under the id of its last event (or
// above every id it holds, once an erase took its last events out):
//   0x01, u64 big-endian id of the first event, then per event:
//   [varint id - previous id, from the second event on] varint JSON length, JSON bytes.
// Any other value is one event, the message JSON itself, whose id is the key's (the only
// form an earlier Cartwatch wrote, and still written for a round's single event of a
// site). docs/storage.md, "Record batches".
inline constexpr char kEventBatchV1 = '\x01';
// Appends event `id` to the record batch `value`: empty, it is started with this event;
// else `previous_id` is the batch's last event. REQUIRES: id > previous_id.
void AppendBatchedEvent(std::string& value, std::uint64_t previous_id, std::uint64_t id,
                        std::string_view json);
// Whether a message JSON can be stored as a value of its own (it does not begin like a
// record batch).
inline bool StandsAlone(std::string_view json) {
  return !json.empty() && json.front() != kEventBatchV1;
}
// Calls f(id, json) for each event of `value`, stored under the event key of `key_id`, in id
// order, until f returns false. Returns false, and calls nothing after the first error,
// when the value does not decode: a batch of no event, ids that do not increase or pass the
// key's, a length past the value's end.
template <typename F>
bool ForEachEventOfValue(std::uint64_t key_id, std::string_view value, F&& f);

// The dedup identity of a message: MurmurHash3_x64_128 (seed 0) of site prefix + messageId.
// 128 bits, so that two different ids colliding is not a practical concern even over
// billions of ids; specified bit for bit (bytes read little-endian on every platform),
// because these hashes are written to disk by one build and read by the next.
struct IdHash {
  std::uint64_t h1 = 0;
  std::uint64_t h2 = 0;
  friend bool operator==(const IdHash&, const IdHash&) = default;
};
IdHash MurmurHash3x64_128(std::string_view data);
IdHash MessageIdHash(std::string_view site_prefix, std::string_view message_id);

// dedup_log: one record per group commit that stored something. Key: the commit's last
// event id, big-endian (so records sort in commit order). Value: the record's time
// (i64 big-endian Unix ms: the latest receivedAt in the commit) and then the IdHash of
// every stored message, 16 bytes each (h1 then h2, big-endian).
std::string DedupLogKey(std::uint64_t last_event_id);
void AppendDedupLogTime(std::string& record, std::int64_t time_ms);
void AppendDedupLogHash(std::string& record, const IdHash& hash);
// Calls f(IdHash) for every hash of `record`; returns its time, or nullopt (and calls
// nothing) when the record is malformed.
template <typename F>
std::optional<std::int64_t> ForEachDedupLogHash(std::string_view record, F&& f);

// visitors and customers: site prefix + the anonymousId or userId as the message gave it.
std::string PersonKey(std::string_view site_prefix, std::string_view id);

// visitors and customers values: 'S', the id of the last event applied to the record (u64
// big-endian), then the profiles codec's bytes. A value without the 'S' (written by a
// Cartwatch that wrote records with their events) is the codec's bytes alone: id 0.
struct StateValue {
  std::uint64_t applied = 0;
  std::string_view record;  // a view into the value
};
void AppendStateValueHeader(std::string& out, std::uint64_t applied);
StateValue SplitStateValue(std::string_view value);

// meta: "state_replay_from" -> u64 big-endian: the smallest event id whose change to the
// visitor and customer records may be unwritten; the store replays the events from there
// when it opens (docs/storage.md, "Visitor and customer state").
inline constexpr std::string_view kStateReplayFromKey = "state_replay_from";

// meta: "thresholds" + site prefix -> the site's RFM/ABC thresholds (profiles codec).
std::string ThresholdsKey(std::string_view site_prefix);

// meta: "erase/" + u64 big-endian sequence -> an erase job: the events of an erased
// customer still to be deleted from the event log (docs/storage.md, "Erasing a customer").
inline constexpr std::string_view kEraseJobPrefix = "erase/";
std::string EraseJobKey(std::uint64_t seq);
struct EraseJob {
  std::string site_prefix;
  std::uint64_t up_to_event_id = 0;  // events with ids above this came after the erase
  std::string user_id;
  std::vector<std::string> anonymous_ids;
  friend bool operator==(const EraseJob&, const EraseJob&) = default;
};
// Value: u64 big-endian up_to_event_id, then site prefix, user id and each anonymous id,
// each as u32 big-endian length + bytes.
std::string EncodeEraseJob(const EraseJob& job);
std::optional<EraseJob> DecodeEraseJob(std::string_view value);

// The public cursor of an event: its id as 16 lower-case hex digits, and back. DecodeCursor
// accepts either case and returns nullopt for anything but 16 hex digits.
std::string EncodeCursor(std::uint64_t event_id);
std::optional<std::uint64_t> DecodeCursor(std::string_view s);

template <typename F>
std::optional<std::int64_t> ForEachDedupLogHash(std::string_view record, F&& f) {
  if (record.size() < 8 || (record.size() - 8) % 16 != 0) return std::nullopt;
  const auto time = static_cast<std::int64_t>(GetBigEndian64(record.data()));
  for (std::size_t at = 8; at < record.size(); at += 16) {
    f(IdHash{GetBigEndian64(record.data() + at), GetBigEndian64(record.data() + at + 8)});
  }
  return time;
}

template <typename F>
bool ForEachEventOfValue(std::uint64_t key_id, std::string_view value, F&& f) {
  if (value.empty() || value.front() != kEventBatchV1) {
    f(key_id, value);
    return true;
  }
  if (value.size() <= 9) return false;  // no header, or no event
  std::string_view rest = value.substr(9);
  std::uint64_t id = GetBigEndian64(value.data() + 1);
  for (bool first = true; !rest.empty(); first = false) {
    std::uint64_t delta = 0, length = 0;
    if (!first) {
      if (!util::GetVarint(rest, delta) || delta == 0 || delta > key_id - id) return false;
      id += delta;
    } else if (id > key_id) {
      return false;
    }
    if (!util::GetVarint(rest, length) || length > rest.size()) return false;
    const std::string_view json = rest.substr(0, static_cast<std::size_t>(length));
    rest.remove_prefix(static_cast<std::size_t>(length));
    if (!f(id, json)) return true;
  }
  return true;
}

}  // namespace cartwatch::storage
