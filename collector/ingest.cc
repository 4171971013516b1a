#include "collector/ingest.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "util/uuid.h"

namespace cartwatch::collector {

namespace {

namespace od = simdjson::ondemand;

// Deepest nesting of a message, counted from the message object itself, and of anything in
// a body outside its messages (counted from the root). It equals Boost.JSON's default
// max_depth, so every stored message also parses with Boost.JSON's defaults. A message
// nested deeper is rejected alone ("too_deep"); the rest of its batch is kept.
constexpr int kMaxDepth = 32;
// The deepest a body may nest anywhere, messages included; deeper is refused as a whole
// (simdjson's parser itself stops at 1,024). It bounds the recursion of the validator below.
constexpr int kMaxBodyDepth = 512;

// Message fields the contract reads or rewrites; everything else is kOther.
enum class Field : std::uint8_t {
  kOther,
  kType,
  kMessageId,
  kUserId,
  kAnonymousId,
  kPreviousId,
  kEvent,
  kTimestamp,
  kSentAt,
  kWriteKey,
  kContext,
  kOriginalTimestamp,
  kReceivedAt,
  kCount,
};

Field Classify(std::string_view name) {
  switch (name.size()) {
    case 4:
      if (name == "type") return Field::kType;
      break;
    case 5:
      if (name == "event") return Field::kEvent;
      break;
    case 6:
      if (name == "userId") return Field::kUserId;
      if (name == "sentAt") return Field::kSentAt;
      break;
    case 7:
      if (name == "context") return Field::kContext;
      break;
    case 8:
      if (name == "writeKey") return Field::kWriteKey;
      break;
    case 9:
      if (name == "messageId") return Field::kMessageId;
      if (name == "timestamp") return Field::kTimestamp;
      break;
    case 10:
      if (name == "previousId") return Field::kPreviousId;
      if (name == "receivedAt") return Field::kReceivedAt;
      break;
    case 11:
      if (name == "anonymousId") return Field::kAnonymousId;
      break;
    case 17:
      if (name == "originalTimestamp") return Field::kOriginalTimestamp;
      break;
  }
  return Field::kOther;
}

// One validated JSON value.
struct Scanned {
  od::json_type type = od::json_type::null;
  std::string_view raw;  // its bytes in the body, without surrounding whitespace
  std::string_view str;  // unescaped text, when a string (lives in the parser's buffer)
};

// One field of an object: `slice` runs from the key's opening quote to the end of the value.
struct FieldRec {
  std::string_view name;  // unescaped key
  std::string_view slice;
  Scanned value;
  Field kind = Field::kOther;
};

// A batch element (or the single message of the other routes) after the scan.
struct MessageRec {
  std::size_t index = 0;
  std::string_view raw;
  bool is_object = false;
  bool too_deep = false;  // nests deeper than kMaxDepth levels
  std::uint32_t fields_begin = 0, fields_end = 0;  // in Scratch::fields
  std::uint32_t ctx_begin = 0, ctx_end = 0;        // in Scratch::ctx_fields (last "context")
};

// Per-thread storage reused from request to request, so the scan allocates nothing once
// warm. Every view in it points into the body or the parser's string buffer.
struct Scratch {
  std::vector<FieldRec> fields;
  std::vector<FieldRec> ctx_fields;
  std::vector<MessageRec> messages;
};

bool IsWhitespace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::string_view TrimRight(const char* begin, const char* end) {
  while (end > begin && IsWhitespace(end[-1])) --end;
  return {begin, static_cast<std::size_t>(end - begin)};
}

std::string_view TrimRight(std::string_view s) { return TrimRight(s.data(), s.data() + s.size()); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The JSON number grammar (RFC 8259 section 6), with an exponent of at most 9 digits (found
// by fuzz_ingest: Boost.JSON cannot read more). simdjson only checks numbers it converts,
// and converting would refuse valid ones that do not fit a double or an int64.
bool IsJsonNumber(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i == n) return false;
  if (s[i] == '0') {
    ++i;
  } else if (IsDigit(s[i])) {
    while (i < n && IsDigit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (i == n || !IsDigit(s[i])) return false;
    while (i < n && IsDigit(s[i])) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i == n || !IsDigit(s[i])) return false;
    while (i < n && s[i] == '0') ++i;  // leading zeros do not count
    const std::size_t exponent_digits = i;
    while (i < n && IsDigit(s[i])) ++i;
    // Boost.JSON refuses exponents past INT_MAX (exponent_overflow), and every stored message
    // must parse with it: at most 9 digits, which no body's digits can push past.
    if (i - exponent_digits > 9) return false;
  }
  return i == n;
}

bool IsValidScalar(od::json_type type, std::string_view raw) {
  switch (type) {
    case od::json_type::number:
      return IsJsonNumber(raw);
    case od::json_type::boolean:
      return raw == "true" || raw == "false";
    case od::json_type::null:
      return raw == "null";
    default:
      return false;
  }
}

// Walks a document once, validating every value (the On Demand API checks only what is
// read) and recording the fields of messages and contexts.
class Scanner {
 public:
  Scanner(od::document& doc, Scratch& scratch, const char* body_end)
      : doc_(doc), scratch_(scratch), body_end_(body_end) {}

  bool too_deep() const { return too_deep_; }

  // Validates `value`, found inside `depth` containers. When `children` is set and the
  // value is an object, its fields are appended there.
  bool ScanValue(od::value& value, int depth, Scanned& out, std::vector<FieldRec>* children) {
    if (value.type().get(out.type)) return false;
    const std::string_view token = value.raw_json_token();
    switch (out.type) {
      case od::json_type::object: {
        od::object object;
        if (!EnterContainer(depth) || value.get_object().get(object)) return false;
        if (!ScanFields(object, depth + 1, children)) return false;
        return EndContainer(token.data(), out);
      }
      case od::json_type::array: {
        od::array array;
        if (!EnterContainer(depth) || value.get_array().get(array)) return false;
        for (auto element : array) {
          od::value child;
          Scanned ignored;
          if (std::move(element).get(child) || !ScanValue(child, depth + 1, ignored, nullptr))
            return false;
        }
        return EndContainer(token.data(), out);
      }
      case od::json_type::string:
        out.raw = TrimRight(token);
        return !value.get_string().get(out.str);
      default:
        // Left unconsumed: the enclosing iterator steps over it.
        out.raw = TrimRight(token);
        return IsValidScalar(out.type, out.raw);
    }
  }

  // Validates the fields of `object` (at `depth`), appending them to `children` if set.
  bool ScanFields(od::object& object, int depth, std::vector<FieldRec>* children) {
    for (auto field_result : object) {
      od::field field;
      FieldRec rec;
      if (std::move(field_result).get(field)) return false;
      const char* key_start = field.key().raw() - 1;
      if (field.unescaped_key().get(rec.name)) return false;
      if (!ScanValue(field.value(), depth, rec.value, nullptr)) return false;
      if (children != nullptr) {
        rec.slice = Span(key_start, rec.value.raw);
        children->push_back(rec);
      }
    }
    return true;
  }

  // Validates a message object (at `depth`) and records its fields and its context's.
  bool ScanMessage(od::object& object, int depth, MessageRec& msg) {
    msg.is_object = true;
    in_message_ = true;
    message_too_deep_ = false;
    message_offset_ = depth - 1;
    msg.fields_begin = static_cast<std::uint32_t>(scratch_.fields.size());
    for (auto field_result : object) {
      od::field field;
      FieldRec rec;
      if (std::move(field_result).get(field)) return false;
      const char* key_start = field.key().raw() - 1;
      if (field.unescaped_key().get(rec.name)) return false;
      rec.kind = Classify(rec.name);
      if (rec.kind == Field::kContext) {
        const auto ctx_begin = static_cast<std::uint32_t>(scratch_.ctx_fields.size());
        if (!ScanValue(field.value(), depth, rec.value, &scratch_.ctx_fields)) return false;
        msg.ctx_begin = ctx_begin;
        msg.ctx_end = static_cast<std::uint32_t>(scratch_.ctx_fields.size());
      } else if (!ScanValue(field.value(), depth, rec.value, nullptr)) {
        return false;
      }
      rec.slice = Span(key_start, rec.value.raw);
      scratch_.fields.push_back(rec);
    }
    msg.fields_end = static_cast<std::uint32_t>(scratch_.fields.size());
    msg.too_deep = message_too_deep_;
    in_message_ = false;
    return true;
  }

  // Completes a container that started at `start` once its contents have been consumed.
  bool EndContainer(const char* start, Scanned& out) {
    const char* end;
    if (doc_.current_location().get(end)) end = body_end_;  // the container closed the body
    out.raw = TrimRight(start, end);
    return true;
  }

  // False (the body is refused) for a container outside the messages deeper than
  // kMaxDepth; one inside a message marks only that message.
  bool EnterContainer(int depth) {
    if (in_message_ && depth + 1 - message_offset_ > kMaxDepth) {
      message_too_deep_ = true;
      // Validated all the same (the body as a whole must be JSON), down to kMaxBodyDepth.
      if (depth + 1 > kMaxBodyDepth) too_deep_ = true;
      return !too_deep_;
    }
    if (!in_message_ && depth + 1 > kMaxDepth) {
      too_deep_ = true;
      return false;
    }
    return true;
  }

 private:
  static std::string_view Span(const char* begin, std::string_view last) {
    return {begin, static_cast<std::size_t>(last.data() + last.size() - begin)};
  }

  od::document& doc_;
  Scratch& scratch_;
  const char* body_end_;
  bool too_deep_ = false;
  // While a message is scanned: its depth is counted from message_offset_ + 1.
  bool in_message_ = false;
  bool message_too_deep_ = false;
  int message_offset_ = 0;
};

constexpr const auto& kTypes = kMessageTypes;

bool IsKnownType(std::string_view type) {
  for (const std::string_view t : kTypes) {
    if (t == type) return true;
  }
  return false;
}

bool Present(const FieldRec* rec) {
  return rec != nullptr && rec->value.type != od::json_type::null;
}

// Ids may be strings or numbers; an empty string counts as missing.
bool HasId(const FieldRec* rec) {
  if (rec == nullptr) return false;
  if (rec->value.type == od::json_type::number) return true;
  return rec->value.type == od::json_type::string && !rec->value.str.empty();
}

// The longest userId, anonymousId or previousId accepted, in bytes (as unescaped).
constexpr std::size_t kMaxIdBytes = 2048;

// What the collector adds to a message (messageId, type, timestamps, receivedAt) may take
// an accepted message this far past limits.max_message_bytes once stored.
constexpr std::size_t kAddedFieldsAllowance = 256;

struct Verdict {
  const char* code = nullptr;  // null: accepted
  std::string message;
  std::size_t type = 0;        // accepted: the index of its type in kMessageTypes
};

Verdict Reject(const char* code, std::string message) { return {code, std::move(message)}; }

void AppendKey(std::string_view key, std::string& out) {
  out.push_back('"');
  out.append(key);
  out.append("\":");
}

void AppendTime(std::string_view key, util::EpochMs ms, std::string& out) {
  AppendKey(key, out);
  out.push_back('"');
  util::AppendIso8601(ms, out);
  out.push_back('"');
}

// What the messages of one request share.
struct Shared {
  Route route = Route::kBatch;
  util::EpochMs received_at_ms = 0;
  const Limits* limits = nullptr;
  std::optional<util::EpochMs> sent_at_ms;  // batch "sentAt", when valid
  std::string_view sent_at_raw;
  bool has_context = false;  // batch "context" is an object
  std::string_view context_raw;
  std::uint32_t ctx_begin = 0, ctx_end = 0;
};

// Validates one scanned message and, when it passes, writes the accepted form to `out`.
Verdict BuildMessage(const MessageRec& msg, const Scratch& scratch, const Shared& shared,
                     storage::Message& out) {
  if (!msg.is_object)
    return Reject("not_an_object", "each element of \"batch\" must be a JSON object");
  if (msg.too_deep) {
    return Reject("too_deep", "the message nests objects and arrays deeper than " +
                                  std::to_string(kMaxDepth) + " levels");
  }
  if (msg.raw.size() > shared.limits->max_message_bytes) {
    return Reject("message_too_large", "the message is " + std::to_string(msg.raw.size()) +
                                           " bytes; the limit is " +
                                           std::to_string(shared.limits->max_message_bytes));
  }

  // The last occurrence of a repeated field wins, as in JavaScript's JSON.parse.
  std::array<const FieldRec*, static_cast<std::size_t>(Field::kCount)> last{};
  for (std::uint32_t i = msg.fields_begin; i < msg.fields_end; ++i) {
    const FieldRec& f = scratch.fields[i];
    if (f.kind != Field::kOther) last[static_cast<std::size_t>(f.kind)] = &f;
  }
  auto get = [&last](Field kind) { return last[static_cast<std::size_t>(kind)]; };

  const std::string_view route_type = RouteType(shared.route);
  const FieldRec* type_field = get(Field::kType);
  const bool add_type = !Present(type_field);
  std::string_view type;
  if (add_type) {
    if (route_type.empty()) return Reject("missing_type", "a message needs a \"type\"");
    type = route_type;
  } else {
    if (type_field->value.type != od::json_type::string || !IsKnownType(type_field->value.str)) {
      return Reject("unknown_type",
                    "\"type\" must be one of track, page, identify, screen, alias, group");
    }
    type = type_field->value.str;
    if (!route_type.empty() && type != route_type) {
      return Reject("type_mismatch",
                    "this endpoint takes only \"" + std::string(route_type) + "\" messages");
    }
  }

  const FieldRec* id_field = get(Field::kMessageId);
  if (Present(id_field) && id_field->value.type != od::json_type::string) {
    return Reject("invalid_message_id", "\"messageId\" must be a string");
  }
  const bool add_id = !Present(id_field) || id_field->value.str.empty();

  if (type == "alias") {
    if (!HasId(get(Field::kPreviousId))) {
      return Reject("missing_previous_id", "an alias message needs a \"previousId\"");
    }
    if (!HasId(get(Field::kUserId))) {
      return Reject("missing_user_id", "an alias message needs a \"userId\"");
    }
  } else if (!HasId(get(Field::kUserId)) && !HasId(get(Field::kAnonymousId))) {
    return Reject("missing_identity", "a message needs a \"userId\" or an \"anonymousId\"");
  }
  // Profiles are keyed by these ids (docs/profiles.md reads at most this much of a string).
  for (Field f : {Field::kUserId, Field::kAnonymousId, Field::kPreviousId}) {
    const FieldRec* rec = get(f);
    if (rec != nullptr && rec->value.type == od::json_type::string &&
        rec->value.str.size() > kMaxIdBytes) {
      return Reject("id_too_long", "\"" + std::string(rec->name) + "\" is longer than " +
                                       std::to_string(kMaxIdBytes) + " bytes");
    }
  }

  if (type == "track") {
    const FieldRec* event = get(Field::kEvent);
    if (event == nullptr || event->value.type != od::json_type::string ||
        event->value.str.empty()) {
      return Reject("missing_event", "a track message needs an \"event\"");
    }
  }

  const FieldRec* ts_field = get(Field::kTimestamp);
  std::optional<util::EpochMs> timestamp;
  if (Present(ts_field)) {
    if (ts_field->value.type == od::json_type::string) {
      timestamp = util::ParseIso8601(ts_field->value.str);
    }
    if (!timestamp) {
      return Reject("invalid_timestamp",
                    "\"timestamp\" must be an ISO-8601 date-time such as "
                    "\"2026-11-23T17:24:02.123Z\"");
    }
  }
  const FieldRec* sent_field = get(Field::kSentAt);
  std::optional<util::EpochMs> sent_at;
  if (Present(sent_field)) {
    if (sent_field->value.type == od::json_type::string) {
      sent_at = util::ParseIso8601(sent_field->value.str);
    }
    if (!sent_at) {
      return Reject("invalid_sent_at",
                    "\"sentAt\" must be an ISO-8601 date-time such as "
                    "\"2026-11-23T17:24:02.123Z\"");
    }
  }
  const bool add_sent_at = !sent_at && shared.sent_at_ms.has_value();
  if (!sent_at) sent_at = shared.sent_at_ms;

  // The client's time: "timestamp", else "originalTimestamp" (all that RudderStack's SDKs
  // send; one that is not ISO-8601 is kept as it came and ignored here).
  std::optional<util::EpochMs> client_time = timestamp;
  if (const FieldRec* original = get(Field::kOriginalTimestamp);
      !client_time && original != nullptr && original->value.type == od::json_type::string) {
    client_time = util::ParseIso8601(original->value.str);
  }
  util::EpochMs corrected = shared.received_at_ms;
  if (client_time) {
    corrected = sent_at ? shared.received_at_ms - (*sent_at - *client_time) : *client_time;
  }

  // The message's context, when the batch has one to merge in.
  const FieldRec* ctx_field = get(Field::kContext);
  const bool msg_ctx_is_object =
      ctx_field != nullptr && ctx_field->value.type == od::json_type::object;

  std::string& json = out.json;
  json.clear();
  json.reserve(msg.raw.size() + shared.context_raw.size() + 192);
  json.push_back('{');
  bool first = true;
  auto next = [&json, &first] {
    if (!first) json.push_back(',');
    first = false;
  };

  for (std::uint32_t i = msg.fields_begin; i < msg.fields_end; ++i) {
    const FieldRec& f = scratch.fields[i];
    const bool is_last = get(f.kind) == &f;
    switch (f.kind) {
      case Field::kOther:
        break;
      case Field::kWriteKey:
      case Field::kReceivedAt:
        continue;
      case Field::kType:
        if (add_type || !is_last) continue;
        break;
      case Field::kMessageId:
        if (add_id || !is_last) continue;
        break;
      case Field::kSentAt:
        if (!Present(&f) || !is_last) continue;
        break;
      case Field::kOriginalTimestamp:
        if (timestamp || !is_last) continue;
        break;
      case Field::kTimestamp:
        if (timestamp && is_last) {
          next();
          AppendTime("timestamp", corrected, json);
        }
        continue;
      case Field::kContext:
        if (!is_last) continue;
        if (shared.has_context) {
          next();
          AppendKey("context", json);
          json.push_back('{');
          bool first_key = true;
          auto append = [&json, &first_key](std::string_view slice) {
            if (!first_key) json.push_back(',');
            first_key = false;
            json.append(slice);
          };
          if (msg_ctx_is_object) {
            for (std::uint32_t c = msg.ctx_begin; c < msg.ctx_end; ++c) {
              append(scratch.ctx_fields[c].slice);
            }
          }
          for (std::uint32_t b = shared.ctx_begin; b < shared.ctx_end; ++b) {
            const FieldRec& batch_key = scratch.ctx_fields[b];
            bool overridden = false;
            if (msg_ctx_is_object) {
              for (std::uint32_t c = msg.ctx_begin; c < msg.ctx_end && !overridden; ++c) {
                overridden = scratch.ctx_fields[c].name == batch_key.name;
              }
            }
            if (!overridden) append(batch_key.slice);
          }
          json.push_back('}');
          continue;
        }
        break;
      default:  // ids and event: the last one is the one validated
        if (!is_last) continue;
        break;
    }
    next();
    json.append(f.slice);
  }

  if (add_id) {
    out.message_id = util::NewUuidV4();
    next();
    AppendKey("messageId", json);
    json.push_back('"');
    json.append(out.message_id);
    json.push_back('"');
  } else {
    out.message_id.assign(id_field->value.str);
  }
  if (add_type) {
    next();
    AppendKey("type", json);
    json.push_back('"');
    json.append(type);
    json.push_back('"');
  }
  if (ctx_field == nullptr && shared.has_context) {
    next();
    AppendKey("context", json);
    json.append(shared.context_raw);
  }
  if (!timestamp) {
    next();
    AppendTime("timestamp", corrected, json);
  } else {
    next();
    AppendKey("originalTimestamp", json);
    json.append(ts_field->value.raw);
  }
  if (add_sent_at) {
    next();
    AppendKey("sentAt", json);
    json.append(shared.sent_at_raw);
  }
  next();
  AppendTime("receivedAt", shared.received_at_ms, json);
  json.push_back('}');
  // Checked again as stored: a batch-level context merged into every message must not
  // let a 500 KB request expand into gigabytes.
  if (const std::size_t size = json.size();
      size > shared.limits->max_message_bytes + kAddedFieldsAllowance) {
    json.clear();
    return Reject("message_too_large",
                  "with the batch's \"context\" merged in, the message would be " +
                      std::to_string(size) + " bytes; the limit is " +
                      std::to_string(shared.limits->max_message_bytes));
  }
  // One line of compact JSON, whatever the sender's formatting: the export writes one
  // message per line. Sound here: the message is valid JSON (simdjson::minify would also
  // join the tokens of invalid JSON such as "[1 2]").
  thread_local std::string compact;
  if (compact.size() < json.size()) compact.resize(json.size());
  std::size_t compact_size = 0;
  if (simdjson::minify(json.data(), json.size(), compact.data(), compact_size) ==
      simdjson::SUCCESS) {
    json.assign(compact.data(), compact_size);
  }
  out.received_at_ms = shared.received_at_ms;
  Verdict accepted;
  accepted.type = static_cast<std::size_t>(
      std::find(std::begin(kTypes), std::end(kTypes), type) - std::begin(kTypes));
  return accepted;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The UTF-16 code unit of the escape "\uXXXX" at `p` (6 bytes readable), or -1 when it is
// not one.
int EscapedUnit(const char* p) {
  if (p[0] != '\\' || p[1] != 'u') return -1;
  int unit = 0;
  for (int i = 2; i < 6; ++i) {
    const int digit = HexValue(p[i]);
    if (digit < 0) return -1;
    unit = unit * 16 + digit;
  }
  return unit;
}

// Replaces every escaped lone UTF-16 surrogate (a high one not followed by an escaped low
// one, or a low one alone) with "\ufffd", of the same length, in place: what browsers'
// TextEncoder does with the lone surrogates JSON.stringify leaves when a string was cut in
// the middle of an emoji. Outside strings a backslash is not JSON at all, so every backslash
// starts an escape and no string tracking is needed.
void ReplaceLoneSurrogates(char* data, std::size_t size) {
  char* const end = data + size;
  for (char* p = data; p < end;) {
    p = static_cast<char*>(std::memchr(p, '\\', static_cast<std::size_t>(end - p)));
    if (p == nullptr) return;
    if (end - p < 6) return;  // too short for \uXXXX; the parser refuses it
    const int unit = EscapedUnit(p);
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      const int next = end - p >= 12 ? EscapedUnit(p + 6) : -1;
      if (next >= 0xDC00 && next <= 0xDFFF) {
        p += 12;
        continue;
      }
    }
    if (unit >= 0xD800 && unit <= 0xDFFF) std::memcpy(p, "\\ufffd", 6);
    p += unit >= 0 ? 6 : 2;
  }
}

ParsedRequest Fail(unsigned status, std::string code, std::string message) {
  ParsedRequest result;
  result.error = RequestError{status, std::move(code), std::move(message)};
  return result;
}

ParsedRequest Malformed(const Scanner& scanner) {
  if (scanner.too_deep()) {
    return Fail(400, "malformed_json",
                "the body nests objects and arrays deeper than " + std::to_string(kMaxDepth) +
                    " levels outside its messages, or " + std::to_string(kMaxBodyDepth) +
                    " in all");
  }
  return Fail(400, "malformed_json", "the body is not valid JSON");
}

// True when the document has been read to its end (no trailing content).
bool AtEnd(od::document& doc) {
  const char* unused;
  return doc.current_location().get(unused) != simdjson::SUCCESS;
}

// A root that is not an object: tells malformed JSON from a JSON value of the wrong kind.
ParsedRequest NotAnObject(od::document& doc, od::json_type type, Scanner& scanner,
                          const char* body_end) {
  bool valid = false;
  if (type == od::json_type::array) {
    od::array array;
    valid = !doc.get_array().get(array);
    if (valid) {
      for (auto element : array) {
        od::value child;
        Scanned ignored;
        if (std::move(element).get(child) || !scanner.ScanValue(child, 1, ignored, nullptr)) {
          valid = false;
          break;
        }
      }
    }
    valid = valid && AtEnd(doc);
  } else {
    std::string_view token;
    if (!doc.raw_json_token().get(token)) {
      // The token runs to the next one or to the end: anything after it is trailing content.
      valid = token.data() + token.size() == body_end;
      token = TrimRight(token);
      if (type == od::json_type::string) {
        std::string_view unused;
        valid = valid && !doc.get_string().get(unused);
      } else {
        valid = valid && IsValidScalar(type, token);
      }
    }
  }
  if (!valid) return Malformed(scanner);
  return Fail(400, "invalid_body", "the body must be a JSON object");
}

}  // namespace

std::string_view RouteType(Route route) {
  switch (route) {
    case Route::kBatch:
      return "";
    case Route::kTrack:
      return "track";
    case Route::kPage:
      return "page";
    case Route::kIdentify:
      return "identify";
    case Route::kScreen:
      return "screen";
    case Route::kAlias:
      return "alias";
    case Route::kGroup:
      return "group";
  }
  return "";
}

ParsedRequest ParseIngest(std::string& body, Route route, util::EpochMs received_at_ms,
                          const Limits& limits) {
  if (body.capacity() < body.size() + simdjson::SIMDJSON_PADDING) {
    body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  }
  ReplaceLoneSurrogates(body.data(), body.size());
  thread_local od::parser parser;
  thread_local Scratch scratch;
  scratch.fields.clear();
  scratch.ctx_fields.clear();
  scratch.messages.clear();

  od::document doc;
  if (parser.iterate(body.data(), body.size(), body.capacity()).get(doc)) {
    return Fail(400, "malformed_json", "the body is not valid JSON");
  }
  const char* body_end = body.data() + body.size();
  Scanner scanner(doc, scratch, body_end);

  od::json_type root_type;
  if (doc.type().get(root_type)) return Malformed(scanner);
  if (root_type != od::json_type::object) return NotAnObject(doc, root_type, scanner, body_end);
  od::object root;
  if (doc.get_object().get(root)) return Malformed(scanner);

  ParsedRequest result;
  Shared shared;
  shared.route = route;
  shared.received_at_ms = received_at_ms;
  shared.limits = &limits;

  if (route == Route::kBatch) {
    bool has_batch = false;  // the last "batch" is an array
    Scanned sent_at, write_key, context;
    for (auto field_result : root) {
      od::field field;
      std::string_view name;
      if (std::move(field_result).get(field) || field.unescaped_key().get(name))
        return Malformed(scanner);
      od::value& value = field.value();
      if (name == "batch") {
        od::json_type type;
        if (value.type().get(type)) return Malformed(scanner);
        if (type != od::json_type::array) {
          Scanned ignored;
          if (!scanner.ScanValue(value, 1, ignored, nullptr)) return Malformed(scanner);
          has_batch = false;
          continue;
        }
        has_batch = true;
        scratch.messages.clear();
        od::array batch;
        if (value.get_array().get(batch)) return Malformed(scanner);
        for (auto element : batch) {
          od::value message;
          od::json_type element_type;
          if (std::move(element).get(message) || message.type().get(element_type))
            return Malformed(scanner);
          if (scratch.messages.size() == limits.max_batch_messages) {
            return Fail(413, "batch_too_large",
                        "\"batch\" holds more than " + std::to_string(limits.max_batch_messages) +
                            " messages; send them in several requests");
          }
          MessageRec& msg = scratch.messages.emplace_back();
          msg.index = scratch.messages.size() - 1;
          if (element_type == od::json_type::object) {
            const char* start = message.raw_json_token().data();
            od::object object;
            Scanned scanned;
            if (!scanner.EnterContainer(2) || message.get_object().get(object) ||
                !scanner.ScanMessage(object, 3, msg) || !scanner.EndContainer(start, scanned)) {
              return Malformed(scanner);
            }
            msg.raw = scanned.raw;
          } else {
            Scanned scanned;
            if (!scanner.ScanValue(message, 2, scanned, nullptr)) return Malformed(scanner);
            msg.raw = scanned.raw;
          }
        }
      } else if (name == "sentAt") {
        if (!scanner.ScanValue(value, 1, sent_at, nullptr)) return Malformed(scanner);
      } else if (name == "writeKey") {
        if (!scanner.ScanValue(value, 1, write_key, nullptr)) return Malformed(scanner);
      } else if (name == "context") {
        const auto ctx_begin = static_cast<std::uint32_t>(scratch.ctx_fields.size());
        if (!scanner.ScanValue(value, 1, context, &scratch.ctx_fields)) return Malformed(scanner);
        shared.ctx_begin = ctx_begin;
        shared.ctx_end = static_cast<std::uint32_t>(scratch.ctx_fields.size());
      } else {
        Scanned ignored;
        if (!scanner.ScanValue(value, 1, ignored, nullptr)) return Malformed(scanner);
      }
    }
    if (!AtEnd(doc)) return Malformed(scanner);

    if (write_key.type == od::json_type::string) result.write_key.assign(write_key.str);
    if (!has_batch) {
      ParsedRequest failed =
          Fail(400, "invalid_batch", "the body needs a \"batch\" array of messages");
      failed.write_key = std::move(result.write_key);
      return failed;
    }
    if (scratch.messages.empty()) {
      ParsedRequest failed = Fail(400, "empty_batch", "\"batch\" holds no messages");
      failed.write_key = std::move(result.write_key);
      return failed;
    }
    // A batch-level sentAt that is present (not null) must be ISO-8601, like a message's:
    // every message's clock-skew correction depends on it.
    if (sent_at.type == od::json_type::string) {
      shared.sent_at_ms = util::ParseIso8601(sent_at.str);
      if (shared.sent_at_ms) shared.sent_at_raw = sent_at.raw;
    }
    if (sent_at.type != od::json_type::null && !shared.sent_at_ms) {
      ParsedRequest failed = Fail(400, "invalid_sent_at",
                                  "the batch's \"sentAt\" is not an ISO-8601 date-time, e.g. "
                                  "\"2026-11-23T17:24:02.123Z\"");
      failed.write_key = std::move(result.write_key);
      return failed;
    }
    if (context.type == od::json_type::object) {
      if (context.raw.size() > limits.max_message_bytes) {
        ParsedRequest failed =
            Fail(413, "context_too_large",
                 "the batch's \"context\" is " + std::to_string(context.raw.size()) +
                     " bytes; it is merged into every message, so it must fit the message "
                     "limit of " + std::to_string(limits.max_message_bytes) + " bytes");
        failed.write_key = std::move(result.write_key);
        return failed;
      }
      // Merged into every message, a context would otherwise let a request store many
      // times its own size (2,500 copies of 32 KB from a 200 KB body).
      if (const std::size_t copies = context.raw.size() * scratch.messages.size();
          copies > limits.max_request_bytes) {
        ParsedRequest failed =
            Fail(413, "context_too_large",
                 "the batch's \"context\" is " + std::to_string(context.raw.size()) +
                     " bytes and is merged into each of its " +
                     std::to_string(scratch.messages.size()) + " messages: " +
                     std::to_string(copies) + " bytes in all, over the request limit of " +
                     std::to_string(limits.max_request_bytes) +
                     "; send a smaller context or fewer messages per batch");
        failed.write_key = std::move(result.write_key);
        return failed;
      }
      shared.has_context = true;
      shared.context_raw = context.raw;
    }
  } else {
    MessageRec& msg = scratch.messages.emplace_back();
    const char* start = body.data();
    while (IsWhitespace(*start)) ++start;
    if (!scanner.EnterContainer(0) || !scanner.ScanMessage(root, 1, msg) || !AtEnd(doc)) {
      return Malformed(scanner);
    }
    msg.raw = TrimRight(start, body_end);
    const FieldRec* write_key = nullptr;
    for (std::uint32_t i = msg.fields_begin; i < msg.fields_end; ++i) {
      if (scratch.fields[i].kind == Field::kWriteKey) write_key = &scratch.fields[i];
    }
    if (write_key != nullptr && write_key->value.type == od::json_type::string) {
      result.write_key.assign(write_key->value.str);
    }
  }

  result.accepted.reserve(scratch.messages.size());
  for (const MessageRec& msg : scratch.messages) {
    storage::Message accepted;
    Verdict verdict = BuildMessage(msg, scratch, shared, accepted);
    if (verdict.code == nullptr) {
      result.accepted.push_back(std::move(accepted));
      ++result.accepted_by_type[verdict.type];
    } else if (route != Route::kBatch) {
      const unsigned status = std::string_view(verdict.code) == "message_too_large" ? 413 : 400;
      result.error = RequestError{status, verdict.code, std::move(verdict.message)};
    } else {
      result.rejected.push_back(Rejection{msg.index, verdict.code, std::move(verdict.message)});
    }
  }
  return result;
}

}  // namespace cartwatch::collector
