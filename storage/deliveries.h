// Webhook deliveries as records (docs/webhooks.md, docs/storage.md "Column families and
// keys"): one per outbox entry and endpoint that subscribes to its type, created in the
// batch that creates the entry (Outbox::Add), changed only by the committing thread, so
// that an attempt's result, a manual retry, an endpoint's disabling and an erase never
// overwrite each other.
//
// Column family `deliveries`:
//   'R' + u64 big-endian seq + endpoint      -> length-prefixed site prefix, then the
//                                               record (webhooks::EncodeDelivery)
//   'Q' + u8 length + endpoint + u64 due + u64 seq -> "": the endpoint's queue, in due
//                                               order; there exactly while the record is
//                                               pending or waiting, at its next_attempt_at
//   'D' + u8 length + endpoint + u64 seq       -> "": the endpoint's dead deliveries; there
//                                               exactly while the record is dead
//   'E' + endpoint                            -> u64 ms: the endpoint is disabled (a 410)
// The entry's status byte in the outbox is the aggregate of its records
// (webhooks::Aggregate), rewritten with every change.
//
// Private to storage/. The stage's methods are the committing thread's; the Read*
// functions may be called by any thread that holds the database open.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>
#include <rocksdb/db.h>

#include "storage/commit_stage.h"
#include "storage/requests.h"
#include "storage/store.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"
#include "webhooks/delivery.h"

namespace cartwatch::storage {

class Deliveries final : public CommitStage {
 public:
  // `endpoints` and `schedule` outlive it.
  Deliveries(const std::vector<WebhookEndpoint>& endpoints, const webhooks::Schedule& schedule)
      : endpoints_(endpoints), schedule_(schedule) {}

  // After each open of the database: counts the dead deliveries of each endpoint (a scan
  // of the dead index), kept from then on by the rounds that are written.
  void Attach(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* deliveries,
              rocksdb::ColumnFamilyHandle* outbox);

  // The dead deliveries to `endpoint` now (written rounds only). Any thread.
  std::size_t DeadCount(std::string_view endpoint) const EXCLUDES(dead_mu_);

  // Outbox::Add: entry `seq` of type `type` was created at `now`; one pending record for
  // each endpoint that subscribes to the type. Returns how many.
  std::size_t Created(CommitRound& round, std::string_view site_prefix, std::uint64_t seq,
                      std::string_view type, std::int64_t now);

  // The entry `seq` is erased (GDPR): its records and queue keys go with it.
  boost::system::error_code Forget(CommitRound& round, std::uint64_t seq);

  // What `request` asks (an attempt's results, a manual retry, an endpoint enabled).
  boost::system::error_code Apply(const DeliveryRequest& request, CommitRound& round,
                                  DeliveryResult& result);

  void End(const CommitRound& round, bool written) override;

 private:
  struct Record {
    std::string site_prefix;
    webhooks::Delivery delivery;
  };
  // The records of entry `seq` as this round left them, by endpoint.
  boost::system::result<std::map<std::string, Record>> RecordsOf(std::uint64_t seq);
  // Writes `record` of (seq, endpoint), moving its queue key from `before`'s.
  void Put(CommitRound& round, std::uint64_t seq, const std::string& endpoint,
           const webhooks::Delivery* before, const Record& record);
  // Rewrites the outbox entry's status byte from its records.
  boost::system::error_code UpdateStatus(CommitRound& round, std::uint64_t seq);
  boost::system::error_code ApplyAttempt(const DeliveryAttemptDone& done, CommitRound& round,
                                         DeliveryResult& result);

  const std::vector<WebhookEndpoint>& endpoints_;
  const webhooks::Schedule& schedule_;
  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* outbox_ = nullptr;
  // Dead deliveries by endpoint, and the current round's changes to them (applied by End
  // when the round is written).
  mutable util::Mutex dead_mu_;
  std::map<std::string, std::size_t, std::less<>> dead_ GUARDED_BY(dead_mu_);
  std::map<std::string, std::int64_t, std::less<>> round_dead_{};
  // The round's writes, read before RocksDB's: record key -> value (nullopt: deleted).
  std::map<std::string, std::optional<std::string>, std::less<>> round_{};
  std::map<std::string, std::optional<std::string>, std::less<>> round_outbox_{};
};

// The record key's parts.
std::string DeliveryRecordKey(std::uint64_t seq, std::string_view endpoint);

// Up to `limit` records of `endpoint` due by `now` (queue order), leaving out those whose
// seq `skip` holds (attempts in flight), each with the body to post, from after `cursor`
// (null or invalid: the start; left at the last position read). Entries erased since are
// left out.
boost::system::result<std::vector<DueDelivery>> ReadDueDeliveries(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* deliveries, rocksdb::ColumnFamilyHandle* outbox,
    std::string_view endpoint, std::int64_t now, std::size_t limit,
    const std::set<std::uint64_t>& skip, DueCursor* cursor);

// How many deliveries wait in `endpoint`'s queue, counted up to `cap`.
boost::system::result<std::size_t> CountQueuedDeliveries(rocksdb::DB& db,
                                                         rocksdb::ColumnFamilyHandle* deliveries,
                                                         std::string_view endpoint, std::size_t cap);

// Writes the dead index ('D' keys) of the records written before it existed, once: a
// marker in `meta` says it is complete.
boost::system::error_code IndexDeadDeliveries(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* deliveries,
                                              rocksdb::ColumnFamilyHandle* meta);

// The endpoints disabled by a 410, by name.
boost::system::result<std::vector<std::string>> ReadDisabledEndpoints(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* deliveries);

// The records of entry `seq`, as JSON for GET /v1/deliveries: `attempts` (every endpoint's
// newest attempts, oldest first) and `endpoints` (each one's state, attempts, next attempt
// and last error); `disabled` names the endpoints disabled now (their pending records are
// shown "waiting"). Also the aggregate status.
struct RenderedRecords {
  std::string attempts = "[]";
  std::string endpoints = "[]";
};
boost::system::result<RenderedRecords> RenderDeliveryRecords(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* deliveries, std::uint64_t seq,
    const std::vector<std::string>& disabled);

}  // namespace cartwatch::storage
