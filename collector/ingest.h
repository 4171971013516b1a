// Ingest parsing: turns one request body of the Segment HTTP Tracking API into validated
// messages ready to store. Does no I/O and keeps no state; safe from any thread (each
// thread uses its own simdjson parser).
//
// Private to collector/; tests call it directly.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/options.h"
#include "storage/types.h"
#include "util/time.h"

namespace cartwatch::collector {

// Which endpoint the body came to. kBatch: {"batch": [...]}; the others: one message whose
// "type" is filled in from the route when missing (and must match it when present).
enum class Route { kBatch, kTrack, kPage, kIdentify, kScreen, kAlias, kGroup };

// The type a single-message route implies ("track", ...); "" for kBatch.
std::string_view RouteType(Route route);

// A failure of the whole request (nothing from it is stored).
struct RequestError {
  unsigned status = 400;  // HTTP status
  std::string code;       // snake_case, e.g. "malformed_json"
  std::string message;    // a sentence a person can act on
};

// One message of a batch that was refused; the rest of the batch is kept.
struct Rejection {
  std::size_t index = 0;  // position in "batch" (0 for single-message routes)
  std::string code;       // snake_case, e.g. "missing_event"
  std::string message;    // sentence, e.g. "a track message needs an \"event\""
};

// The Segment message types, in the order of ParsedRequest::accepted_by_type.
inline constexpr std::array<std::string_view, 6> kMessageTypes = {
    "track", "page", "identify", "screen", "alias", "group"};

struct ParsedRequest {
  std::optional<RequestError> error;  // set: the request is refused as a whole
  std::string write_key;              // body "writeKey" (batch level, else of the message)
  std::vector<storage::Message> accepted;
  std::vector<Rejection> rejected;
  // How many of `accepted` have each type (indexes of kMessageTypes).
  std::array<std::uint32_t, kMessageTypes.size()> accepted_by_type{};
};

// Parses and validates `body` (JSON, already decompressed). Lone surrogate escapes are
// replaced in `body` itself (below); nothing else in it changes.
// REQUIRES: body.capacity() >= body.size() + simdjson::SIMDJSON_PADDING (the function
// reserves it itself when it is not, which may copy).
//
// Whole-request errors (400 unless noted): not JSON ("malformed_json": also a body that is
// not UTF-8, or anything outside the messages nesting deeper than 32 levels, or the body
// deeper than 512), not an object ("invalid_body"), kBatch without a "batch" array
// ("invalid_batch"), an empty batch ("empty_batch"), more than limits.max_batch_messages
// messages (413 "batch_too_large"), a batch-level "sentAt" present but not ISO-8601
// ("invalid_sent_at"), a batch-level "context" over limits.max_message_bytes, or one whose
// copies in the messages would together exceed limits.max_request_bytes (413
// "context_too_large").
// For single-message routes an invalid message is a whole-request error with the
// message's code (413 for "message_too_large").
//
// Per message (see ../docs/api.md): not an object ("not_an_object"), nesting deeper than
// 32 levels counted from the message ("too_deep"), over limits.max_message_bytes
// ("message_too_large"), "type" missing ("missing_type") or not
// one of track/page/identify/screen/alias/group ("unknown_type"), neither "userId" nor
// "anonymousId" ("missing_identity"; ids may be strings or numbers, empty strings count as
// missing), alias without "previousId" and "userId" ("missing_previous_id" /
// "missing_user_id"), track without a string "event" ("missing_event"), "timestamp" or
// "sentAt" present but not ISO-8601 ("invalid_timestamp" / "invalid_sent_at"), and
// ("message_too_large") a message that the merged batch context takes past the limit.
//
// Each accepted message's JSON is one line of compact JSON: every field as it came, without
// the whitespace between tokens and with each escaped lone UTF-16 surrogate replaced by
// \ufffd (U+FFFD), except:
//  - "messageId": filled with a UUID v4 when missing;
//  - "type": filled from the route when missing;
//  - "timestamp": the event time corrected for clock skew: when a sentAt is known (the
//    message's, else the batch's) receivedAt - (sentAt - timestamp); else the timestamp as
//    sent; receivedAt when missing. Always formatted as util::FormatIso8601.
//  - "originalTimestamp": the timestamp as the client sent it, when it sent one;
//  - "sentAt": the message's or else the batch's, when known;
//  - "receivedAt": received_at_ms formatted;
//  - "writeKey" is removed;
//  - "context": a batch-level "context" is merged in (the message's own keys win).
// Output field order: the message's own fields first, in their order, then the added ones.
ParsedRequest ParseIngest(std::string& body, Route route, util::EpochMs received_at_ms,
                          const Limits& limits);

}  // namespace cartwatch::collector
