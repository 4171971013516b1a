// The outbox: every action the rule engine took (a task, an e-mail, or an e-mail recorded
// as skipped), durable in RocksDB and written in the same batch as the firing that took
// it, so an action exists exactly once. Its webhook deliveries (storage/deliveries.h) are
// created in the same batch; GET /v1/deliveries lists it with them (docs/api.md).
//
// Column family `outbox`: site prefix + u64 big-endian sequence -> a status byte, then the
// entry as JSON ({"id", "type", "status", "reason", "created_at", "rule", "stage",
// "attempts": [], "data"}, in that order; the status byte is the entry's status, and
// "status" and "attempts" are filled in from it and the delivery records when read);
// "\0" + person (storage/subject.h) + u64 big-endian sequence -> "": the person's entries
// (site prefixes start with their length, never 0, so the index sorts before every site).
// meta "last_outbox_seq": the newest sequence, written with the entries.
//
// Private to storage/. The stage and Add are the committing thread's; ReadDeliveries may be
// called by any thread that holds the database open.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>
#include <rocksdb/db.h>

#include "storage/commit_stage.h"
#include "storage/subject.h"
#include "storage/types.h"

namespace cartwatch::storage {

inline constexpr std::string_view kLastOutboxSeqKey = "last_outbox_seq";

enum class DeliveryStatus : char {
  kPending = 'p',
  kDelivered = 'd',
  kFailed = 'f',
  kDead = 'x',
  kSkipped = 's',
};
std::string_view DeliveryStatusName(DeliveryStatus status);  // "pending", ...
std::optional<DeliveryStatus> DeliveryStatusNamed(std::string_view name);

// The public id of an entry: "act_" + 16 hex digits of its sequence, and back.
std::string DeliveryId(std::uint64_t seq);
std::optional<std::uint64_t> DeliverySeq(std::string_view id);

struct OutboxEntry {
  std::string type{};  // "task.created", "email.triggered"
  DeliveryStatus status = DeliveryStatus::kPending;
  std::string reason{};  // why skipped; empty otherwise
  std::string rule{};
  int stage = 0;
  std::int64_t created_at = 0;  // Unix ms
  std::string data{};  // a JSON object
};

class Deliveries;

// The body every delivery of the entry posts ({"type", "timestamp", "data"}), from the
// entry's stored JSON (after its status byte); nullopt when that is not one.
std::optional<std::string> WebhookBody(std::string_view entry_json);

class Outbox final : public CommitStage {
 public:
  // After each open of the database: the column families, and the newest sequence.
  // `deliveries` gets each pending entry (null: none).
  boost::system::error_code Load(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* meta,
                                 rocksdb::ColumnFamilyHandle* outbox, Deliveries* deliveries);

  // Puts `entry` for `person` into the round's batch; returns its id.
  std::string Add(CommitRound& round, const SubjectKey& person, const OutboxEntry& entry);

  boost::system::error_code Finish(CommitRound& round) override;
  void End(const CommitRound& round, bool written) override;

  // Entries written by rounds since the store opened.
  std::uint64_t added() const { return added_; }

 private:
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* outbox_ = nullptr;
  std::uint64_t last_seq_ = 0;   // durable
  std::uint64_t round_seq_ = 0;  // with the round's entries
  std::uint64_t added_ = 0;
  Deliveries* deliveries_ = nullptr;
};

struct DeliveryPage {
  std::vector<std::string> deliveries{};  // each a JSON object, oldest first
  std::string next_cursor{};              // resume after the last one listed
};

// The site's entries after the cursor `after` (an entry id; empty: from the first), with
// `status` when given, at most `limit`. A cursor that is no entry id is kInvalidArgument.
inline constexpr char kPersonOutboxPrefix = '\0';

// Where the readers below find the delivery records (storage/deliveries.h) of the entries
// they show, and which endpoints are disabled.
struct OutboxView {
  rocksdb::DB* db = nullptr;
  rocksdb::ColumnFamilyHandle* outbox = nullptr;
  rocksdb::ColumnFamilyHandle* deliveries = nullptr;  // null: none shown
  std::vector<std::string> disabled{};
};

// The newest `limit` entries of `person`, newest first, each a JSON object.
boost::system::result<std::vector<std::string>> ReadPersonDeliveries(const OutboxView& view,
                                                                     const SubjectKey& person,
                                                                     std::size_t limit);

// Deletes every entry of `person` that was not delivered, and the index entries of all;
// `erased(seq)` for each entry deleted (its delivery records go with it).
boost::system::error_code ErasePersonDeliveries(
    rocksdb::DB& db, rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* outbox,
    const SubjectKey& person, const std::function<boost::system::error_code(std::uint64_t)>& erased);

boost::system::result<DeliveryPage> ReadDeliveries(const OutboxView& view,
                                                   std::string_view site_prefix,
                                                   std::optional<DeliveryStatus> status,
                                                   std::string_view after, std::size_t limit);

}  // namespace cartwatch::storage
