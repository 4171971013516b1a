#include "storage/event_log.h"

#include "storage/keys.h"

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

}  // namespace cartwatch::storage
