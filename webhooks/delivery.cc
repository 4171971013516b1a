#include "webhooks/delivery.h"

#include <algorithm>

namespace cartwatch::webhooks {
namespace {

constexpr char kFormat = '\x01';

void PutVarint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Signed values as zigzag varints.
void PutSigned(std::string& out, std::int64_t v) {
  PutVarint(out, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}
bool GetSigned(std::string_view& in, std::int64_t& v) {
  std::uint64_t u = 0;
  if (!GetVarint(in, u)) return false;
  v = static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
  return true;
}

void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}
bool GetString(std::string_view& in, std::string& s) {
  std::uint64_t n = 0;
  if (!GetVarint(in, n) || n > in.size()) return false;
  s.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

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
  PutSigned(out, d.next_attempt_at);
  PutString(out, d.last_error);
  PutVarint(out, d.history.size());
  for (const AttemptRecord& a : d.history) {
    PutSigned(out, a.at);
    PutSigned(out, a.status);
    PutString(out, a.error);
    PutSigned(out, a.duration_ms);
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
  if (!GetSigned(in, d.next_attempt_at) || !GetString(in, d.last_error)) return std::nullopt;
  if (!GetVarint(in, n) || n > kMaxHistory) return std::nullopt;
  for (std::uint64_t i = 0; i < n; ++i) {
    AttemptRecord a;
    std::int64_t status = 0;
    if (!GetSigned(in, a.at) || !GetSigned(in, status) || !GetString(in, a.error) ||
        !GetSigned(in, a.duration_ms) || status < 0 || status > 999) {
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
