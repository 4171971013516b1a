// The requests the store's commit queue carries, one type a kind: the committing thread
// tells them apart by type, not by which fields happen to be set.
//
// Private to storage/. Plain values; each is handled by the committing thread.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include <boost/system/error_code.hpp>

#include "storage/store.h"
#include "storage/types.h"

namespace cartwatch::storage {

// Messages of a site to store (Store::Append).
struct AppendRequest {
  std::string site{};
  std::vector<Message> messages{};
  std::size_t bytes = 0;  // of their JSON, for the queue's bounds
  AppendCallback done{};
};

// A customer to erase (Store::EraseCustomer), or, with `only_visitors`, just those of
// its visitors that are still linked to it: an erase job found them beyond the customer's
// list of linked visitors.
struct EraseRequest {
  std::string site{};
  std::string user_id{};
  std::vector<std::string> only_visitors{};
  EraseCallback done{};
};

// A read by the committing thread of the records as the messages committed so far left
// them. A query (write_state false) is answered at the start of the next round, before its
// writes; with write_state it runs after a round that wrote every unwritten record (for a
// scan of the records in RocksDB). `read` gets the error that kept it from reading.
struct ReadRequest {
  std::function<void(boost::system::error_code)> read{};
  bool write_state = false;
};

// Fire the timers due by `now` (Unix ms), at most `limit` of them (Store::FireDueTimers).
struct FireRequest {
  std::int64_t now = 0;
  std::size_t limit = 1000;
  FireCallback done{};
};

// A change to webhook deliveries (Store::ChangeDeliveries).
struct DeliveryRequest {
  DeliveryChange change{};
  DeliveryCallback done{};
};

using Request = std::variant<AppendRequest, EraseRequest, ReadRequest, FireRequest, DeliveryRequest>;

// A request in the queue.
struct Pending {
  Request request;
  bool own = false;  // queued by a thread that is not an event loop's (QueueAndCommit)

  std::size_t messages() const {
    const auto* append = std::get_if<AppendRequest>(&request);
    return append ? append->messages.size() : 0;
  }
  std::size_t bytes() const {
    const auto* append = std::get_if<AppendRequest>(&request);
    return append ? append->bytes : 0;
  }
  bool IsQuery() const {
    const auto* read = std::get_if<ReadRequest>(&request);
    return read && !read->write_state;
  }
  // Answers it with `ec`, having written nothing.
  void Refuse(boost::system::error_code ec) {
    if (auto* append = std::get_if<AppendRequest>(&request)) {
      append->done(AppendResult{.error = ec});
    } else if (auto* erase = std::get_if<EraseRequest>(&request)) {
      erase->done(EraseResult{.error = ec});
    } else if (auto* fire = std::get_if<FireRequest>(&request)) {
      fire->done(FireResult{.error = ec});
    } else if (auto* change = std::get_if<DeliveryRequest>(&request)) {
      change->done(DeliveryResult{.error = ec});
    } else {
      std::get<ReadRequest>(request).read(ec);
    }
  }
};

}  // namespace cartwatch::storage
