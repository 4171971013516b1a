#include "storage/event_log.h"

#include <memory>

#include <rocksdb/iterator.h>

#include "storage/keys.h"
#include "storage/status.h"

namespace cartwatch::storage {

boost::system::error_code EventLogStage::Stored(CommitRound& round, std::string_view site_prefix,
                                                std::uint64_t id, const Message& message) {
  EventKeyInto(key_, site_prefix, id);
  round.batch->Put(events_, key_, message.json);
  return {};
}

boost::system::error_code EventLogStage::Finish(CommitRound& round) {
  if (round.stored > 0) {
    std::string last;
    PutBigEndian64(last, round.last_event_id);
    round.batch->Put(meta_, kLastEventIdKey, last);
  }
  return {};
}

boost::system::result<EventPage> ReadEventPage(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events,
                                               std::string_view site_prefix,
                                               std::string_view after, std::size_t limit,
                                               std::size_t max_bytes) {
  std::uint64_t start = 0;
  if (!after.empty()) {
    auto id = DecodeCursor(after);
    if (!id) return boost::system::error_code(Errc::kInvalidArgument);
    if (*id == UINT64_MAX) return EventPage{{}, std::string(after)};
    start = *id + 1;
  }
  std::string upper = std::string(site_prefix) + std::string(9, '\xff');
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;  // an export scan would evict the hot state

  EventPage page;
  page.next_cursor = std::string(after);
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, events));
  std::size_t bytes = 0;
  for (it->Seek(EventKey(site_prefix, start)); it->Valid() && page.events.size() < limit;
       it->Next()) {
    rocksdb::Slice key = it->key();
    if (key.size() != site_prefix.size() + 8) continue;  // not an event key of this layout
    std::uint64_t id = GetBigEndian64(key.data() + site_prefix.size());
    page.events.push_back(StoredEvent{EncodeCursor(id), it->value().ToString()});
    page.next_cursor = page.events.back().cursor;
    bytes += it->value().size();
    if (bytes >= max_bytes) break;
  }
  if (auto ec = FromStatus(it->status())) return ec;
  return page;
}

boost::system::error_code DeleteEventsBelow(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events,
                                            std::uint64_t cutoff) {
  // Site prefixes are found by seeking from one site's range to the next: one seek per
  // site, however many events each holds.
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), events));
  for (it->SeekToFirst(); it->Valid();) {
    rocksdb::Slice key = it->key();
    const std::size_t prefix_size = 1 + static_cast<unsigned char>(key[0]);
    if (key.size() != prefix_size + 8) break;  // not an event key of this layout
    std::string prefix(key.data(), prefix_size);
    batch.DeleteRange(events, EventKey(prefix, 0), EventKey(prefix, cutoff));
    it->Seek(prefix + std::string(9, '\xff'));  // past every key of this site
  }
  if (auto ec = FromStatus(it->status())) return ec;
  it.reset();
  if (batch.Count() == 0) return {};
  return FromStatus(db.Write(rocksdb::WriteOptions(), &batch));
}

boost::system::error_code ForEachEventFrom(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* events, std::uint64_t from,
    const std::function<boost::system::error_code(std::string_view site_prefix, std::uint64_t id,
                                                  std::string_view json)>& apply) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(ro, events));
  for (it->SeekToFirst(); it->Valid();) {
    const rocksdb::Slice key = it->key();
    const std::size_t prefix_size = 1 + static_cast<unsigned char>(key[0]);
    if (key.size() != prefix_size + 8) break;  // not an event key of this layout
    const std::string_view prefix(key.data(), prefix_size);
    const std::uint64_t id = GetBigEndian64(key.data() + prefix_size);
    if (id < from) {
      it->Seek(EventKey(prefix, from));
      continue;
    }
    if (auto ec = apply(prefix, id, it->value().ToStringView())) return ec;
    it->Next();
  }
  return FromStatus(it->status());
}

}  // namespace cartwatch::storage
