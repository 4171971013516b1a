// One action's delivery to one endpoint, as a record (docs/webhooks.md): its state, the
// attempts made (the newest ten kept, with what each got), and when the next is due. The
// transitions are pure: an attempt's verdict (webhooks/policy.h), a manual retry, the
// endpoint being disabled or enabled. The outbox entry's status is the aggregate of its
// deliveries (Aggregate).
//
// Plain values and pure functions: safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webhooks/policy.h"

namespace cartwatch::webhooks {

enum class State : std::uint8_t {
  kPending,    // waiting for its first attempt, or for `next_attempt_at` after a failure
  kDelivered,  // a 2xx
  kDead,       // the schedule is spent
  kWaiting,    // its endpoint is disabled (a 410): waits, unattempted, until enabled
};
std::string_view StateName(State state);  // "pending", "delivered", "dead", "waiting"

struct AttemptRecord {
  EpochMs at = 0;
  int status = 0;  // 0: no response
  std::string error{};
  EpochMs duration_ms = 0;
  friend bool operator==(const AttemptRecord&, const AttemptRecord&) = default;
};

struct Delivery {
  State state = State::kPending;
  int attempts = 0;              // made so far
  EpochMs next_attempt_at = 0;   // kPending: not before this
  std::string last_error{};      // the newest failure's reason; empty: none
  std::vector<AttemptRecord> history{};  // the newest kMaxHistory attempts, oldest first
  friend bool operator==(const Delivery&, const Delivery&) = default;
};
inline constexpr std::size_t kMaxHistory = 10;

std::string EncodeDelivery(const Delivery& delivery);
std::optional<Delivery> DecodeDelivery(std::string_view bytes);

// Records attempt number delivery.attempts + 1, which ended at `at` after `duration_ms`
// with `result`, judged by `verdict` (Judge). Returns whether the endpoint is to be
// disabled (a 410).
bool RecordAttempt(Delivery& delivery, const Attempt& result, const Verdict& verdict, EpochMs at,
                   EpochMs duration_ms);

// POST /v1/deliveries/{id}/retry: a dead delivery, or a pending one after a failure, is
// attempted again at once (a dead one gets one more attempt, then dies again on failure).
// false (nothing changes) for a delivered one, a waiting one, or one never attempted.
bool RetryNow(Delivery& delivery, EpochMs now);

// The endpoint was enabled again: a waiting delivery is attempted at once.
void EndpointEnabled(Delivery& delivery, EpochMs now);

// The outbox entry's status from its deliveries: "delivered" when all are, "dead" when any
// is, "failed" when any failed and waits for a retry (or its endpoint), else "pending".
std::string_view Aggregate(const std::vector<Delivery>& deliveries);

}  // namespace cartwatch::webhooks
