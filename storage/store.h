// Store: Cartwatch's embedded RocksDB. It owns the event log, the messageId dedup index, and
// the visitor and customer records built from the events (sessions, carts, orders, traits;
// docs/profiles.md), the rule engine's timers and outbox, and the outbox's webhook
// deliveries. The key layout is in docs/storage.md.
//
// Writes are group commits: Append only queues; Flush writes everything queued, from any
// number of threads, as one RocksDB WriteBatch on the calling thread, and then runs the
// callbacks, each after its messages are in the write-ahead log (and fsync'ed when
// StoreOptions::fsync is set). The visitor and customer records those messages change are
// updated in memory at once and written behind (StoreOptions::state_write_delay); after a
// crash the store rebuilds them from the event log when it opens. One thread commits at a
// time; a Flush that finds another thread committing returns at once, and that thread
// commits the rest before it stops (the store's own threads answer their queries, commit at
// most one round when they queued a write, and hand the rest to an event loop:
// SetFlushRequester). The collector calls Flush once per pass of each event loop, so a
// commit carries every request that arrived in that pass (up to the round cap,
// StoreOptions::max_round_messages) and no request waits for another thread to wake up.
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include "profiles/profiles.h"
#include "rules/email.h"
#include "rules/rules.h"
#include "storage/types.h"
#include "util/histogram.h"
#include "util/time.h"
#include "webhooks/delivery.h"
#include "webhooks/policy.h"

namespace cartwatch::storage {

class FaultInjection;  // storage/fault_injection.h: tests only

// What the store does at start when RocksDB's write-ahead log is damaged (a checksum
// mismatch, a truncated or torn record): the log is always checked strictly first.
enum class WalRecovery {
  kAuto,         // kStrict when StoreOptions::fsync is set, else kPointInTime
  kStrict,       // refuse to start, naming the damage and the option that accepts the loss
  kPointInTime,  // recover up to the damage, drop the rest, say so at error level and on
                 // /readyz (Store::GetHealth)
};

// A webhook endpoint as the store knows it (docs/webhooks.md): its name, and the action
// types it subscribes to (empty: every type).
struct WebhookEndpoint {
  std::string name{};
  std::vector<std::string> events{};
  bool Subscribes(std::string_view type) const {
    if (events.empty()) return true;
    for (const std::string& e : events) {
      if (e == type) return true;
    }
    return false;
  }
};

// A delivery due to be attempted (Store::ReadDueDeliveries).
struct DueDelivery {
  std::uint64_t seq = 0;    // the outbox entry's
  std::string id{};         // the entry's id: the `webhook-id` of every attempt
  std::string endpoint{};
  int attempts = 0;         // made before this one
  std::string body{};       // {"type", "timestamp", "data"}: the same on every attempt
};

// Deliveries to one endpoint by state (Store::CountDeliveries).
struct DeliveryCounts {
  std::size_t queued = 0;  // pending or waiting
  std::size_t dead = 0;
};

// A position in an endpoint's delivery queue (Store::ReadDueDeliveries).
struct DueCursor {
  bool valid = false;  // false: the start of the queue
  std::int64_t due = 0;
  std::uint64_t seq = 0;
};

// What one attempt got, for Store::ChangeDeliveries.
struct DeliveryAttemptDone {
  std::uint64_t seq = 0;
  std::string endpoint{};
  webhooks::Attempt result{};
  std::int64_t at = 0;           // when it ended (Unix ms)
  std::int64_t duration_ms = 0;
  double random = 0;             // in [0, 1): the retry delay's jitter
};

// A change to deliveries, made by the committing thread (so that it never overwrites
// another): attempts' results, a manual retry of an entry, or an endpoint enabled again.
struct DeliveryChange {
  enum class Kind : std::uint8_t { kAttempts, kRetry, kEnable };
  Kind kind = Kind::kAttempts;
  std::vector<DeliveryAttemptDone> attempts{};  // kAttempts
  std::string site{};      // kRetry: the entry's site
  std::string id{};        // kRetry: the entry's id ("act_...")
  std::string endpoint{};  // kEnable
  std::int64_t now = 0;    // kRetry, kEnable: the next attempts are due at this time
};

enum class DeliveryOutcome : std::uint8_t {
  kDelivered,  // a 2xx
  kRetrying,   // failed; attempted again later
  kDead,       // failed, and the schedule is spent
  kGone,       // a 410: the endpoint is disabled, the delivery waits
};

struct DeliveryResult {
  boost::system::error_code error;  // empty on success; then the change is durable
  // kRetry: the entry exists in the site and has deliveries; kEnable: an endpoint of that
  // name is configured.
  bool found = false;
  std::size_t retried = 0;  // kRetry: deliveries re-queued (the failed and dead ones)
  bool was_disabled = false;  // kEnable
  // kAttempts: what each recorded attempt came to, by endpoint (an attempt of a delivery
  // erased meanwhile is not recorded).
  std::vector<std::pair<std::string, DeliveryOutcome>> outcomes{};
  std::vector<std::string> disabled{};  // endpoints disabled by these results (a 410)
};
using DeliveryCallback = std::function<void(const DeliveryResult&)>;

struct StoreOptions {
  // Directory of the RocksDB database; created when missing. Default "./data".
  std::string data_dir = "./data";
  // false: an acknowledged write survives a crash of the process (it is in the OS page cache
  // through the WAL) but not a power loss. true: every group commit is fdatasync'ed before
  // anyone is answered, so it survives power loss too. Default false.
  bool fsync = false;
  // A messageId seen for the same site within this window is acknowledged but not stored
  // again. Default 24h.
  std::chrono::milliseconds dedup_window = std::chrono::hours(24);
  // The dedup index is kept in memory (about 40 bytes per id). Beyond this many ids the
  // oldest are forgotten early (a warning is printed): their messageIds are no longer
  // deduplicated. Default 10,000,000 (about 400 MB at the limit).
  std::size_t dedup_max_ids = 10'000'000;
  // Messages waiting for a commit or being written, beyond which Append refuses with
  // Errc::kOverloaded (the collector answers 503). Default 200,000.
  std::size_t max_queued_messages = 200'000;
  // The same bound on their JSON bytes. Default 256 MiB.
  std::size_t max_queued_bytes = 256u << 20;
  // A commit round (one WriteBatch) holds whole requests, at least one, up to this many
  // messages and JSON bytes; the rest wait for the next round. A query waits at most for
  // the round being written when it arrives. Defaults 10,000 and 16 MiB.
  std::size_t max_round_messages = 10'000;
  std::size_t max_round_bytes = 16u << 20;
  // RocksDB block cache, shared by all column families. Default 64 MiB.
  std::size_t block_cache_bytes = 64u << 20;
  // Memtable size per column family. Default 32 MiB: with up to four memtables of each of
  // the event log, visitors and customers waiting for their flushes, 64 MiB took the peak
  // resident size past 1 GiB under ten million visitors (bench/round2.md).
  std::size_t write_buffer_bytes = 32u << 20;
  // RocksDB flush and compaction threads. Default 2.
  int max_background_jobs = 2;
  // Whether the event log's table files are compressed (LZ4, from the third level down;
  // flushes and the first compaction never are). Off, the event log takes more disk, and
  // ingest was no faster (bench/RESULTS.md, "Round 2"). Default on.
  bool compress_event_log = true;
  // Events received longer ago than this are deleted (every retention_interval by the
  // store's background thread, one range delete per site). 0 = keep forever. Default 0.
  std::chrono::milliseconds retention = std::chrono::milliseconds(0);
  // How often the memory malloc holds free is handed back to the kernel
  // (util/memory_trim.h); 0: never. Default 10s.
  std::chrono::milliseconds memory_trim_interval = std::chrono::seconds(10);
  // How often retention runs. Default 1 min. Not in the config file (tests shorten it).
  std::chrono::milliseconds retention_interval = std::chrono::minutes(1);
  // Written visitor and customer records kept in memory by the committing thread, as their
  // stored bytes, so that a returning visitor's next message does not read RocksDB: at most
  // this many, taking at most state_cache_bytes (the stored value, its key and about 300
  // bytes of bookkeeping each), least recently used evicted first. Records not yet written
  // (below) are kept in memory, decoded, besides these. Defaults 200,000 and 256 MiB.
  std::size_t state_cache_entries = 200'000;
  std::size_t state_cache_bytes = std::size_t{256} << 20;
  // How long a changed visitor or customer record may stay in memory unwritten, measured in
  // receive time, so that the messages of a visit rewrite it once rather than once each.
  // The messages themselves are durable before they are acknowledged; after a crash the
  // store replays the ones whose changes were unwritten (at most about this much traffic)
  // when it opens. 0 writes every change in the commit of its message. Default 10s.
  std::chrono::milliseconds state_write_delay = std::chrono::seconds(10);
  // Beyond this many unwritten records the oldest are written early. Default 100,000.
  std::size_t state_max_unwritten = 100'000;
  // false only in tests: Close() leaves unwritten records unwritten, as a crash would.
  bool write_state_on_close = true;
  // false only in benchmarks, to measure what the visitor and customer records cost: the
  // messages are stored and deduplicated as always, but no record is built or replayed
  // (queries find none). Not in the config file.
  bool apply_state = true;
  // How visitor and customer records are built: session timeout, bounds, LTV lifetime.
  profiles::Options profiles;
  // How often each site's RFM quintiles and ABC classes are recomputed from every customer,
  // in the background (also once right after opening). Default 1h.
  std::chrono::milliseconds thresholds_interval = std::chrono::hours(1);
  // Writes are refused (Errc::kNoSpace) while the data directory's disk has less than this
  // free, so that RocksDB itself never runs out of space in the middle of a write; they are
  // taken again once as much is free. 0 = no check. Default 64 MiB.
  std::uint64_t min_free_bytes = 64u << 20;
  // After a write failed (a full disk, an I/O error), how often the store checks whether
  // RocksDB can write again (DB::Resume and a probe write). Default 1s.
  std::chrono::milliseconds recovery_interval = std::chrono::seconds(1);
  // A damaged write-ahead log at start: see WalRecovery. Default kAuto.
  WalRecovery wal_recovery = WalRecovery::kAuto;
  // The rule engine's rules (docs/rules.md): timers armed with the messages, fired every
  // timer_tick by the store's background thread. None: no timer is armed.
  rules::RuleSet rules;
  // The e-mail templates the rules' e-mails are rendered with (rules/email.h); null: none
  // (e-mails are then recorded as skipped, "no_template").
  std::shared_ptr<const rules::EmailTemplates> email_templates;
  // How often the due timers are fired. 0: never by the store itself (tests call
  // FireDueTimers with the time they want). Default 1s.
  std::chrono::milliseconds timer_tick = std::chrono::seconds(1);
  // How often the background thread counts the armed timers (RuleFigures::timers_pending),
  // at its next tick after this much time.
  std::chrono::milliseconds timer_count_interval = std::chrono::seconds(15);
  // The webhook endpoints (docs/webhooks.md): each outbox entry gets a delivery record for
  // every endpoint that subscribes to its type, in the write that creates it.
  std::vector<WebhookEndpoint> webhooks;
  // When failed deliveries are tried again.
  webhooks::Schedule delivery_schedule;
  // Tests only: makes the files RocksDB writes fail on purpose. Not in the config file.
  std::shared_ptr<FaultInjection> faults;
};

// Makes an event loop call Store::Flush soon: how the store's own threads hand the event
// loops' requests back to them (Store::SetFlushRequester).
class FlushRequester {
 public:
  virtual ~FlushRequester() = default;
  // Called from the store's threads; must not block, nor call into the store.
  virtual void RequestFlush() = 0;
};

class Store {
 public:
  // Opens (or creates) the database in options.data_dir.
  // Fails with a message naming the directory and RocksDB's reason.
  static boost::system::result<std::unique_ptr<Store>> Open(const StoreOptions& options,
                                                            std::string* error_message);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  virtual ~Store() = default;

  // Queues `messages` of `site` for the next Flush. `done` runs exactly once: at once on
  // the calling thread when the request is refused (Errc::kOverloaded when the queue is
  // over its bounds, Errc::kClosed after Close), else on the thread that commits it. It must
  // not block and must not call Append or Flush.
  virtual void Append(std::string site, std::vector<Message> messages, AppendCallback done) = 0;

  // Commits everything queued (see above). Errors of the write reach the callbacks.
  virtual void Flush() = 0;

  // `requester` (nullptr: none) must make an event loop call Flush soon, without blocking
  // (the collector posts one to its first loop). The store calls it, from its own threads,
  // when one of them answered its queries (or committed a round of the background thread's
  // writes) and left requests queued by event loops: such a thread then stops instead of
  // committing the event loops' requests. Without a requester it commits on until the
  // queue is empty. `requester` must stay valid until it is replaced; once this returns,
  // the previous requester is not running and is not called again.
  virtual void SetFlushRequester(FlushRequester* requester) = 0;

  // The site's stored messages in arrival order, strictly after `after` (empty: from the
  // start), at most `limit` of them and stopping once `max_bytes` of JSON is reached (at
  // least one event is returned when there is one). Errc::kInvalidArgument for a bad cursor.
  virtual boost::system::result<EventPage> ReadEvents(std::string_view site,
                                                      std::string_view after, std::size_t limit,
                                                      std::size_t max_bytes) = 0;

  // Erases the customer `user_id` of `site` (GDPR): its record and those of every linked
  // visitor (sessions, carts, orders, traits), in order with the messages queued before it,
  // as one durable write; messages queued after it start new records. The events that
  // mention the customer or those visitors are then deleted from the event log in the
  // background (an erase job, durable, resumed after a restart; PurgeErasedEvents).
  // `done` runs exactly once, as for Append.
  virtual void EraseCustomer(std::string site, std::string user_id, EraseCallback done) = 0;

  // Deletes the events of every pending erase job, then the jobs. Runs by itself on the
  // store's background thread; callable directly (tests, tools).
  virtual boost::system::error_code PurgeErasedEvents() = 0;

  // The records as every message committed so far left them (read by the committing
  // thread at the start of a round: a message acknowledged before the call is in them, one
  // still waiting for its commit is not): nullopt when there is none. Errc::kCorruption when
  // a record does not decode.
  virtual boost::system::result<std::optional<profiles::Visitor>> ReadVisitor(
      std::string_view site, std::string_view anonymous_id) = 0;
  virtual boost::system::result<std::optional<profiles::Customer>> ReadCustomer(
      std::string_view site, std::string_view user_id) = 0;
  // The site's RFM/ABC thresholds; nullopt before they were first computed.
  virtual boost::system::result<std::optional<profiles::SiteThresholds>> ReadThresholds(
      std::string_view site) = 0;

  // Recomputes every site's thresholds from all its customers as of `now` and stores them.
  // Runs by itself every StoreOptions::thresholds_interval; callable directly.
  virtual boost::system::error_code RecomputeThresholds(util::EpochMs now) = 0;

  // The options the records are built with (StoreOptions::profiles).
  virtual const profiles::Options& profile_options() const = 0;

  // Deletes every event of every site received before `received_before_ms` (Unix ms),
  // except those from the replay point on (events whose changes to the visitor and customer
  // records may still be unwritten: see state_write_delay): one DeleteRange per site, since
  // event keys are time-ordered (docs/storage.md). A record batch goes whole, once its last
  // event was received before then. Runs
  // by itself when StoreOptions::retention is set; callable directly (tests, tools).
  virtual boost::system::error_code DeleteEventsBefore(std::int64_t received_before_ms) = 0;

  // Succeeds when the database is open and RocksDB is neither stopping writes nor in a
  // background error (e.g. a full disk) that made it read-only, and the last write did not
  // fail: Errc::kNoSpace or kIoError from the first failed write until the store recovered
  // by itself (StoreOptions::recovery_interval), Errc::kOverloaded while RocksDB stops
  // writes, Errc::kClosed once Close has begun. Does no I/O.
  virtual boost::system::error_code CheckWritable() = 0;

  // Fires the rule engine's timers due by `now` (Unix ms), at most `limit` (docs/rules.md):
  // their actions are in the outbox once this returns without error. Blocks until the
  // committing thread has written them. The store's background thread calls it every
  // StoreOptions::timer_tick; tests call it with the time they want.
  virtual FireResult FireDueTimers(std::int64_t now, std::size_t limit = 1000) = 0;

  // The customer's pending timers (those the records still call for) and their newest
  // `max_actions` outbox entries. Reads the records through the committing thread.
  virtual boost::system::result<PersonRules> ReadPersonRules(std::string_view site,
                                                             std::string_view user_id,
                                                             std::size_t max_actions) = 0;

  // The site's outbox entries after the cursor `after` (an entry id; empty: from the
  // first), oldest first, only those with `status` ("pending", "delivered", "failed",
  // "dead", "skipped"; empty: any), at most `limit`. Errc::kInvalidArgument for an unknown
  // status or a cursor that is no entry id.
  virtual boost::system::result<DeliveryList> ReadDeliveries(std::string_view site,
                                                             std::string_view status,
                                                             std::string_view after,
                                                             std::size_t limit) = 0;

  // --- Webhook deliveries (docs/webhooks.md) ---
  // Up to `limit` deliveries to `endpoint` due by `now` (Unix ms), oldest due first,
  // leaving out the entries `skip` holds (attempts in flight). With `cursor`, the scan
  // starts after the queue position it holds (none: from the start) and leaves it at the
  // last position read: a reader that resumes there does not walk again over what it has
  // taken (and RocksDB over the tombstones of what has been delivered since).
  virtual boost::system::result<std::vector<DueDelivery>> ReadDueDeliveries(
      std::string_view endpoint, std::int64_t now, std::size_t limit,
      const std::set<std::uint64_t>& skip, DueCursor* cursor = nullptr) {
    return std::vector<DueDelivery>{};
  }
  // How many deliveries to `endpoint` wait in its queue (pending or waiting, due or not;
  // counted up to `cap`), and how many are dead (not retried by hand since; kept as a count).
  virtual boost::system::result<DeliveryCounts> CountDeliveries(std::string_view endpoint,
                                                                std::size_t cap) {
    return DeliveryCounts{};
  }
  // The endpoints a 410 disabled.
  virtual boost::system::result<std::vector<std::string>> ReadDisabledEndpoints() {
    return std::vector<std::string>{};
  }
  // Makes `change` through the committing thread; `done` is called once it is durable (or
  // failed), on the thread that committed it. From an event loop's thread: queued for its
  // Flush. From any other thread (own_thread): handed to an event loop, which commits it
  // with its own requests (SetFlushRequester; without one, committed on this thread).
  virtual void ChangeDeliveries(DeliveryChange change, DeliveryCallback done,
                                bool own_thread = false) {
    done(DeliveryResult{.error = Errc::kInvalidArgument});
  }

  // What /readyz shows beside its status.
  struct Health {
    boost::system::error_code writable;  // CheckWritable()
    std::string write_failure;  // RocksDB's words for the last failed write; empty: none
    // Set when the last open recovered from a damaged write-ahead log and dropped what came
    // after the damage: what was dropped, in a sentence.
    std::string wal_recovery;
    // Opens of this process that dropped part of a damaged write-ahead log (0 or 1).
    std::uint64_t wal_damage_recoveries = 0;
  };
  virtual Health GetHealth() = 0;

  // The rule engine's counts since the store opened (written rounds only).
  struct RuleFigures {
    std::uint64_t timers_armed = 0;
    std::uint64_t timers_pending = 0;      // armed now (counted every 15 s)
    std::uint64_t timers_fired = 0;        // took actions
    std::uint64_t timers_stale = 0;        // dropped: the records no longer called for them
    std::uint64_t timers_not_matched = 0;  // dropped: conditions or cooldown
    std::uint64_t timers_held = 0;         // e-mails moved past quiet hours
    // Outbox entries by type: to deliver (pending), or recorded as skipped.
    struct Actions {
      std::uint64_t pending = 0;
      std::uint64_t skipped = 0;
    };
    Actions tasks;   // task.created
    Actions emails;  // email.triggered
    // Timers that took actions, by rule name (every configured rule, in config order).
    std::vector<std::pair<std::string, std::uint64_t>> fired_by_rule{};
  };
  virtual RuleFigures GetRuleFigures() { return {}; }

  // What the store holds and how its writes go, for /metrics (docs/operations.md): RocksDB's
  // own figures (its properties) by column family, the commit queue, the in-memory indexes
  // and the commit rounds' latency and size.
  struct StorageFigures {
    struct Family {
      std::string name{};
      std::uint64_t memtable_bytes = 0;            // rocksdb.cur-size-all-mem-tables
      std::uint64_t sst_bytes = 0;                 // rocksdb.live-sst-files-size
      std::uint64_t pending_compaction_bytes = 0;  // rocksdb.estimate-pending-compaction-bytes
      std::uint64_t live_data_bytes = 0;           // rocksdb.estimate-live-data-size
      std::uint64_t estimated_keys = 0;            // rocksdb.estimate-num-keys
      std::uint64_t write_stops = 0;               // io_stalls.total_stop (since open)
      std::uint64_t write_slowdowns = 0;           // io_stalls.total_slowdown (since open)
    };
    std::vector<Family> families{};
    std::uint64_t block_cache_bytes = 0;   // rocksdb.block-cache-usage
    std::uint64_t wal_bytes = 0;           // the live write-ahead log files
    bool write_stopped = false;            // rocksdb.is-write-stopped
    std::uint64_t delayed_write_rate = 0;  // rocksdb.actual-delayed-write-rate: 0 unless slowed
    std::uint64_t queued_messages = 0;     // waiting for a commit or being written
    std::uint64_t queued_bytes = 0;
    std::uint64_t queued_messages_limit = 0;  // StoreOptions::max_queued_messages
    std::uint64_t disk_free_bytes = 0;     // of the data directory's disk (0: unknown)
    std::uint64_t min_free_bytes = 0;      // StoreOptions::min_free_bytes
    std::uint64_t dedup_ids = 0;           // messageIds in the dedup index
    std::uint64_t records_cached = 0;      // visitor and customer records in memory
    std::uint64_t records_cached_bytes = 0;  // what the written ones take (state_cache_bytes)
    std::uint64_t records_unwritten = 0;   // of them, changed and not yet written
    util::Histogram::Snapshot commit_seconds{};   // each written round's RocksDB write
    util::Histogram::Snapshot commit_messages{};  // each written round's messages
  };
  virtual StorageFigures GetStorageFigures() { return {}; }

  // Writes a consistent copy of the database to `dir` (RocksDB's checkpoint: hard links
  // to its immutable files where `dir` is on the same file system, copies otherwise),
  // holding every message acknowledged before the call. `dir` must not exist; its parent
  // must. Start Cartwatch with `dir` as its data directory to restore it. Errc::
  // kInvalidArgument when `dir` exists or is not absolute.
  virtual boost::system::error_code Checkpoint(const std::string& dir) = 0;

  // Commits everything queued and closes RocksDB (syncing the WAL). Appends after this are
  // refused with Errc::kClosed. Idempotent; also run by the destructor.
  virtual void Close() = 0;

 protected:
  Store() = default;
};

}  // namespace cartwatch::storage
