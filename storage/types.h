// The values that cross the store's front door (storage/store.h) without needing it: the
// messages the collector hands over, what a commit answers, and the store's error codes.
// Kept apart so that code that only builds messages (collector/ingest.h) depends on no store.
//
// Plain values: safe to use from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <boost/system/error_code.hpp>

namespace cartwatch::storage {

enum class Errc {
  kOverloaded = 1,    // queue full or RocksDB is stalling writes: retry later
  kClosed,            // Close() has begun
  kIoError,           // RocksDB reported an I/O error
  kNoSpace,           // the disk of the data directory is full
  kCorruption,        // RocksDB reported corruption
  kInvalidArgument,   // e.g. a malformed cursor
  kInternal,          // any other RocksDB failure
};
const boost::system::error_category& StoreCategory();
boost::system::error_code make_error_code(Errc e);

// One message as the collector accepted it, ready to store.
struct Message {
  std::string message_id{};           // dedup key within the site
  std::int64_t received_at_ms = 0;  // when the collector received it (Unix ms, UTC)
  std::string json{};                 // the document to store and export, as accepted
};

struct AppendResult {
  boost::system::error_code error;  // empty on success; then everything below is durable
  std::size_t stored = 0;           // messages written to the event log
  std::size_t duplicates = 0;       // messages skipped because their messageId was seen
};
using AppendCallback = std::function<void(const AppendResult&)>;

struct EraseResult {
  boost::system::error_code error;  // empty on success; then the erase is durable
  bool found = false;               // the customer had a record
  std::size_t visitors = 0;         // linked visitors erased with it
};
using EraseCallback = std::function<void(const EraseResult&)>;

// What one pass over the due timers did (Store::FireDueTimers).
struct FireResult {
  boost::system::error_code error;  // empty on success; then everything below is durable
  std::size_t due = 0;          // timers read
  std::size_t fired = 0;        // timers that took actions
  std::size_t stale = 0;        // dropped: the records no longer say what armed them
  std::size_t not_matched = 0;  // dropped: conditions or the rule's cooldown not met
  std::size_t held = 0;         // e-mails moved to the end of the quiet hours
  std::size_t actions = 0;      // outbox entries written (skipped ones included)
  std::size_t skipped = 0;      // of them, recorded as skipped
  std::size_t emails = 0;       // of the actions, e-mails (the rest are tasks)
  std::size_t emails_skipped = 0;  // of the skipped, e-mails
  bool more = false;            // the pass stopped at its limit: more may be due
  // Timers that took actions, by rule (the index of the rule in the rule set).
  std::vector<std::size_t> fired_by_rule{};
};
using FireCallback = std::function<void(const FireResult&)>;

// What the rule engine holds for one customer (GET /v1/customers/{userId}, "rules").
struct PersonRules {
  struct Timer {
    std::string rule{};  // its name; "" for a rule no longer configured
    int stage = 0;
    std::int64_t due_at = 0;  // Unix ms
  };
  std::vector<Timer> pending{};       // soonest first; only timers that still apply
  std::vector<std::string> actions{};  // outbox entries (JSON objects), newest first
};

// A page of GET /v1/deliveries: outbox entries, each a JSON object.
struct DeliveryList {
  std::vector<std::string> deliveries{};
  std::string next_cursor{};  // resume after the last one listed (or `after` when none)
};

struct StoredEvent {
  std::string cursor{};  // resume after this event with ReadEvents(site, cursor, ...)
  std::string json{};
};
struct EventPage {
  std::vector<StoredEvent> events{};
  // Where to resume: the cursor of the last event, or `after` when there were none.
  std::string next_cursor{};
};

}  // namespace cartwatch::storage

namespace boost::system {
template <>
struct is_error_code_enum<cartwatch::storage::Errc> : std::true_type {};
}  // namespace boost::system
