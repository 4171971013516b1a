#include "webhooks/delivery.h"

#include <algorithm>

#include "util/varint.h"

namespace cartwatch::webhooks {
namespace {

constexpr char kFormat = '\x01';

using util::GetLengthPrefixed;
using util::GetSignedVarint;
using util::GetVarint;
using util::PutLengthPrefixed;
using util::PutSignedVarint;
using util::PutVarint;

}  // namespace

std::string_view StateName(State state) {
  switch (state) {
    case State::kPending: return "pending";
    case State::kDelivered: return "delivered";
    case State::kDead: return "dead";
    case State::kWaiting: return "waiting";
  }
  return "unknown";
}

std::string EncodeDelivery(const Delivery& d) {
  std::string out(1, kFormat);
  out.push_back(static_cast<char>(d.state));
  PutVarint(out, static_cast<std::uint64_t>(d.attempts));
  PutSignedVarint(out, d.next_attempt_at);
  PutLengthPrefixed(out, d.last_error);
  PutVarint(out, d.history.size());
  for (const AttemptRecord& a : d.history) {
    PutSignedVarint(out, a.at);
    PutSignedVarint(out, a.status);
    PutLengthPrefixed(out, a.error);
    PutSignedVarint(out, a.duration_ms);
  }
  return out;
}

std::optional<Delivery> DecodeDelivery(std::string_view in) {
  if (in.size() < 2 || in[0] != kFormat) return std::nullopt;
  Delivery d;
  const auto state = static_cast<unsigned char>(in[1]);
  if (state > static_cast<unsigned char>(State::kWaiting)) return std::nullopt;
  d.state = static_cast<State>(state);
  in.remove_prefix(2);
  std::uint64_t attempts = 0, n = 0;
  if (!GetVarint(in, attempts) || attempts > 1'000'000) return std::nullopt;
  d.attempts = static_cast<int>(attempts);
  if (!GetSignedVarint(in, d.next_attempt_at) || !GetLengthPrefixed(in, d.last_error)) return std::nullopt;
  if (!GetVarint(in, n) || n > kMaxHistory) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    AttemptRecord a;
    std::int64_t status = 0;
    if (!GetSignedVarint(in, a.at) || !GetSignedVarint(in, status) || !GetLengthPrefixed(in, a.error) ||
        !GetSignedVarint(in, a.duration_ms) || status < 0 || status > 999) {
      return std::nullopt;
    }
    a.status = static_cast<int>(status);
    d.history.push_back(std::move(a));
  }
  if (!in.empty()) return std::nullopt;
  return d;
}

bool RecordAttempt(Delivery& d, const Attempt& result, const Verdict& verdict, EpochMs at,
                   EpochMs duration_ms) {
  ++d.attempts;
  d.history.push_back(AttemptRecord{.at = at,
                                    .status = result.status,
                                    .error = result.status == 0 ? result.error : std::string(),
                                    .duration_ms = duration_ms});
  if (d.history.size() > kMaxHistory) d.history.erase(d.history.begin());
  switch (verdict.kind) {
    case Verdict::Kind::kDelivered:
      d.state = State::kDelivered;
      d.last_error.clear();
      d.next_attempt_at = 0;
      return false;
    case Verdict::Kind::kRetry:
      d.state = State::kPending;
      d.last_error = verdict.reason;
      d.next_attempt_at = verdict.next_attempt_at;
      return false;
    case Verdict::Kind::kEndpointGone:
      d.state = State::kWaiting;
      d.last_error = verdict.reason;
      d.next_attempt_at = 0;
      return true;
    case Verdict::Kind::kDead:
      d.state = State::kDead;
      d.last_error = verdict.reason;
      d.next_attempt_at = 0;
      return false;
  }
  return false;
}

bool RetryNow(Delivery& d, EpochMs now) {
  const bool failed_pending = d.state == State::kPending && !d.last_error.empty();
  if (d.state != State::kDead && !failed_pending) return false;
  d.state = State::kPending;
  d.next_attempt_at = now;
  // A dead delivery retried by hand gets one attempt: on failure it is dead again.
  return true;
}

void EndpointEnabled(Delivery& d, EpochMs now) {
  if (d.state != State::kWaiting) return;
  d.state = State::kPending;
  d.next_attempt_at = now;
}

std::string_view Aggregate(const std::vector<Delivery>& deliveries) {
  if (deliveries.empty()) return "pending";
  if (std::all_of(deliveries.begin(), deliveries.end(),
                  [](const Delivery& d) { return d.state == State::kDelivered; })) {
    return "delivered";
  }
  if (std::any_of(deliveries.begin(), deliveries.end(),
                  [](const Delivery& d) { return d.state == State::kDead; })) {
    return "dead";
  }
  if (std::any_of(deliveries.begin(), deliveries.end(), [](const Delivery& d) {
        return d.state == State::kWaiting || (d.state == State::kPending && !d.last_error.empty());
      })) {
    return "failed";
  }
  return "pending";
}

}  // namespace cartwatch::webhooks
