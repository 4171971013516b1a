#include "storage/state_stage.h"

#include <string>

#include "storage/keys.h"

namespace cartwatch::storage {

boost::system::error_code StateStage::Stored(CommitRound& round, std::string_view site_prefix,
                                             std::uint64_t id, const Message& message) {
  // The state this message implies goes into the same batch: both or neither.
  if (!apply_) return {};
  return writer_->Apply(site_prefix, id, message.json);
}

boost::system::error_code StateStage::Finish(CommitRound& round) {
  writer_->Stage(*round.batch, round.last_event_id, round.write_all);
  const std::uint64_t replay_from = writer_->replay_from().value_or(round.last_event_id + 1);
  if (replay_from != round.replay_from) {
    std::string value;
    PutBigEndian64(value, replay_from);
    round.batch->Put(meta_, kStateReplayFromKey, value);
    round.replay_from = replay_from;
  }
  return {};
}

void StateStage::End(const CommitRound& round, bool written) {
  if (writer_ != nullptr) writer_->Finish(written);
}

}  // namespace cartwatch::storage
