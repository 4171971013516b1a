#include "collector/ingest.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "util/time.h"

namespace cartwatch::collector {
namespace {

namespace json = boost::json;

const util::EpochMs kReceived = *util::ParseIso8601("2026-11-23T12:00:00.000Z");

ParsedRequest Parse(std::string body, Route route = Route::kBatch, const Limits& limits = {}) {
  return ParseIngest(body, route, kReceived, limits);
}

// The accepted message as Boost.JSON sees it; fails the test when it is not valid JSON.
json::object Doc(const storage::Message& message) {
  json::error_code ec;
  json::value v = json::parse(message.json, ec);
  EXPECT_FALSE(ec) << ec.message() << " in " << message.json;
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return "<missing>";
  return std::string(v->as_string());
}

std::size_t Count(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string_view::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

std::string Batch(const std::vector<std::string>& messages, std::string extra = "") {
  std::string body = "{\"batch\":[";
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (i > 0) body += ",";
    body += messages[i];
  }
  body += "]";
  if (!extra.empty()) body += "," + extra;
  return body + "}";
}

bool IsUuidV4(const std::string& id) {
  return id.size() == 36 && id[8] == '-' && id[13] == '-' && id[14] == '4' && id[18] == '-' &&
         id[23] == '-';
}

const char* const kTrack =
    R"({"type":"track","event":"Product Added","anonymousId":"a1","messageId":"m1"})";

// --- Accepted messages ------------------------------------------------------------------

TEST(IngestTest, AcceptsBatchAndAddsServerFields) {
  ParsedRequest r = Parse(Batch({kTrack,
                                 R"({"type":"identify","userId":"u1","messageId":"m2",
                                     "traits":{"email":"a@example.com"}})"},
                                R"("writeKey":"wk_live")"));
  ASSERT_FALSE(r.error);
  EXPECT_TRUE(r.rejected.empty());
  EXPECT_EQ(r.write_key, "wk_live");
  ASSERT_EQ(r.accepted.size(), 2u);

  EXPECT_EQ(r.accepted[0].message_id, "m1");
  EXPECT_EQ(r.accepted[0].received_at_ms, kReceived);
  json::object first = Doc(r.accepted[0]);
  EXPECT_EQ(Str(first, "type"), "track");
  EXPECT_EQ(Str(first, "event"), "Product Added");
  EXPECT_EQ(Str(first, "messageId"), "m1");
  EXPECT_EQ(Str(first, "receivedAt"), "2026-11-23T12:00:00.000Z");
  EXPECT_EQ(Str(first, "timestamp"), "2026-11-23T12:00:00.000Z");  // none sent: receivedAt
  EXPECT_FALSE(first.contains("originalTimestamp"));
  EXPECT_FALSE(first.contains("sentAt"));

  json::object second = Doc(r.accepted[1]);
  EXPECT_EQ(Str(second, "type"), "identify");
  EXPECT_EQ(second.at("traits").at("email").as_string(), "a@example.com");
}

TEST(IngestTest, OwnFieldsComeFirstInTheirOrder) {
  ParsedRequest r =
      Parse(Batch({R"({"userId":"u1","type":"page","name":"Home","zeta":1,"alpha":2})"}));
  ASSERT_EQ(r.accepted.size(), 1u);
  const std::string& out = r.accepted[0].json;
  EXPECT_EQ(out.rfind(R"({"userId":"u1","type":"page","name":"Home","zeta":1,"alpha":2,)", 0), 0u)
      << out;
  EXPECT_LT(out.find("\"messageId\""), out.find("\"receivedAt\""));
}

TEST(IngestTest, FillsMissingMessageId) {
  ParsedRequest r = Parse(Batch({R"({"type":"page","anonymousId":"a1"})",
                                 R"({"type":"page","anonymousId":"a1","messageId":""})",
                                 R"({"type":"page","anonymousId":"a1","messageId":null})"}));
  ASSERT_EQ(r.accepted.size(), 3u);
  std::vector<std::string> ids;
  for (const storage::Message& m : r.accepted) {
    EXPECT_TRUE(IsUuidV4(m.message_id)) << m.message_id;
    EXPECT_EQ(Str(Doc(m), "messageId"), m.message_id);
    EXPECT_EQ(Count(m.json, "\"messageId\""), 1u) << m.json;
    ids.push_back(m.message_id);
  }
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_NE(ids[1], ids[2]);
}

TEST(IngestTest, KeepsUnknownFieldsAsSentWithoutWhitespace) {
  const std::string properties =
      R"("properties" :  { "price" : 1.50E+3 ,"qty":-0, "big": 123456789012345678901234567890,)"
      R"( "list":[ 1,2 ,{"c" :null} , [], {} ],"t" : true, "f":false,)"
      R"( "é\u00e9" : "\ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t" })";
  const std::string custom = R"("x-custom"	:	[ "kept" ])";
  ParsedRequest r = Parse(Batch({R"({"type":"track","event":"Order Completed","userId":"u1",)" +
                                 properties + "," + custom + "}"}));
  ASSERT_EQ(r.accepted.size(), 1u);
  const std::string& out = r.accepted[0].json;
  // Numbers, escapes and the spaces inside strings exactly as sent.
  EXPECT_NE(out.find(R"("properties":{"price":1.50E+3,"qty":-0,"big":123456789012345678901234567890,)"
                     R"("list":[1,2,{"c":null},[],{}],"t":true,"f":false,)"
                     R"("é\u00e9":"\ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t"})"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(R"("x-custom":["kept"])"), std::string::npos) << out;
  json::object doc = Doc(r.accepted[0]);
  EXPECT_EQ(doc.at("properties").at("list").as_array().size(), 5u);
}

// GET /v1/events exports one message per line: a pretty-printed body must not put line
// breaks into what is stored.
TEST(IngestTest, PrettyPrintedBodyIsStoredAsOneLineOfCompactJson) {
  const std::string body =
      "{\n  \"batch\": [\n    {\n      \"type\": \"track\",\n      \"event\": \"Product Added\",\r\n"
      "      \"anonymousId\": \"a 1\",\n      \"properties\": {\n        \"name\": \"Blue  shoe\",\n"
      "        \"tags\": [ \"x\" ,\t\"y\" ]\n      },\n      \"context\": { \"page\": {\"url\": \"u\"} }\n"
      "    }\n  ],\n  \"context\": {\n    \"library\": { \"name\": \"n\" }\n  },\n"
      "  \"sentAt\": \"2026-11-23T12:00:00Z\"\n}\n";
  for (Route route : {Route::kBatch}) {
    ParsedRequest r = Parse(body, route);
    ASSERT_FALSE(r.error) << r.error->message;
    ASSERT_EQ(r.accepted.size(), 1u);
    const std::string& out = r.accepted[0].json;
    EXPECT_EQ(out.find_first_of("\n\r\t"), std::string::npos) << out;
    EXPECT_NE(out.find(R"({"type":"track","event":"Product Added","anonymousId":"a 1",)"
                       R"("properties":{"name":"Blue  shoe","tags":["x","y"]},)"
                       R"("context":{"page":{"url":"u"},"library":{"name":"n"}})"),
              std::string::npos)
        << out;
  }
  const std::string single = "{\n \"event\" : \"E\",\n \"userId\" : \"u\" ,\n \"properties\": {\"a\": [1,\n 2]}\n}";
  ParsedRequest r = Parse(single, Route::kTrack);
  ASSERT_FALSE(r.error) << r.error->message;
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.accepted[0].json.find_first_of("\n\r\t "), std::string::npos) << r.accepted[0].json;
}

// JSON.stringify leaves a lone surrogate escape where a string was cut inside an emoji; the
// message is kept with U+FFFD in its place, as browsers' TextEncoder does.
TEST(IngestTest, LoneSurrogatesBecomeTheReplacementCharacter) {
  ParsedRequest r = Parse(Batch({
      R"({"type":"track","event":"Product Added","anonymousId":"a","properties":{"name":"Shoe \ud83d"}})",
      R"({"type":"track","event":"E","anonymousId":"a","properties":{"low":"\udc00x","pair":"\ud83d\ude00",)"
      R"("escaped":"\\ud83d","two":"\ud800\ud800","high_then_text":"\uD83Dabc","end":"\uDBFF"}})",
  }));
  ASSERT_FALSE(r.error) << r.error->message;
  ASSERT_EQ(r.accepted.size(), 2u);
  EXPECT_TRUE(r.rejected.empty());
  const std::string kReplacement = "\xef\xbf\xbd";
  json::object first = Doc(r.accepted[0]);
  EXPECT_EQ(first.at("properties").at("name").as_string(), "Shoe " + kReplacement);
  json::object second = Doc(r.accepted[1]);
  const json::value& p = second.at("properties");
  EXPECT_EQ(p.at("low").as_string(), kReplacement + "x");
  EXPECT_EQ(p.at("pair").as_string(), "\xf0\x9f\x98\x80");
  EXPECT_EQ(p.at("escaped").as_string(), "\\ud83d");  // a backslash, then text
  EXPECT_EQ(p.at("two").as_string(), kReplacement + kReplacement);
  EXPECT_EQ(p.at("high_then_text").as_string(), kReplacement + "abc");
  EXPECT_EQ(p.at("end").as_string(), kReplacement);
  // The single-message routes too.
  r = Parse(R"({"event":"E","userId":"\ud83d"})", Route::kTrack);
  ASSERT_FALSE(r.error) << r.error->message;
  EXPECT_EQ(Str(Doc(r.accepted[0]), "userId"), kReplacement);
}

TEST(IngestTest, RemovesWriteKey) {
  ParsedRequest r =
      Parse(Batch({R"({"writeKey":"inner","type":"page","anonymousId":"a1","writeKey":"again"})"},
                  R"("writeKey":"outer")"));
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.write_key, "outer");
  EXPECT_EQ(r.accepted[0].json.find("writeKey"), std::string::npos) << r.accepted[0].json;
  EXPECT_EQ(r.accepted[0].json.find("inner"), std::string::npos);
}

TEST(IngestTest, SingleRouteTakesWriteKeyFromMessage) {
  ParsedRequest r =
      Parse(R"({"writeKey":"wk_beacon","event":"Cart Viewed","userId":"u1"})", Route::kTrack);
  ASSERT_FALSE(r.error) << r.error->code;
  EXPECT_EQ(r.write_key, "wk_beacon");
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.accepted[0].json.find("writeKey"), std::string::npos);
}

TEST(IngestTest, BatchWithoutWriteKeyLeavesItEmpty) {
  ParsedRequest r = Parse(Batch({kTrack}));
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.write_key, "");
}

TEST(IngestTest, NumericIdsCountAndAreKeptAsSent) {
  ParsedRequest r =
      Parse(Batch({R"({"type":"identify","userId":42})", R"({"type":"page","anonymousId":7.5})",
                   R"({"type":"alias","previousId":1,"userId":2})"}));
  ASSERT_EQ(r.accepted.size(), 3u) << (r.rejected.empty() ? "" : r.rejected[0].code);
  EXPECT_EQ(Doc(r.accepted[0]).at("userId").as_int64(), 42);
  EXPECT_NE(r.accepted[0].json.find("\"userId\":42"), std::string::npos);
}

TEST(IngestTest, MessageIdKeepsItsUnescapedValue) {
  ParsedRequest r =
      Parse(Batch({R"({"type":"page","anonymousId":"a","messageId":"id-\"q\"\\\u00e9\n"})"}));
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(r.accepted[0].message_id, "id-\"q\"\\\xc3\xa9\n");
  EXPECT_EQ(Str(Doc(r.accepted[0]), "messageId"), r.accepted[0].message_id);
}

TEST(IngestTest, OddStringsStayValidJson) {
  ParsedRequest r = Parse(
      Batch({R"({"type":"track","event":"\u0000\u001f\"</script>\u2028","userId":"\ud83d\ude00",)"
             R"("properties":{"":"","\\":"\\\\","\"":"\""}})"}));
  ASSERT_EQ(r.accepted.size(), 1u);
  json::object doc = Doc(r.accepted[0]);
  EXPECT_EQ(Str(doc, "event"), std::string("\0\x1f\"</script>\xe2\x80\xa8", 15));
  EXPECT_EQ(Str(doc, "userId"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(doc.at("properties").at("\\").as_string(), "\\\\");
}

TEST(IngestTest, MatchesFieldNamesUnescaped) {
  ParsedRequest r =
      Parse(Batch({R"({"\u0074ype":"track","ev\u0065nt":"Signed Up","userId":"u"})"}));
  ASSERT_EQ(r.accepted.size(), 1u) << r.rejected[0].code;
  json::object doc = Doc(r.accepted[0]);
  EXPECT_EQ(Str(doc, "type"), "track");
}

TEST(IngestTest, RepeatedFieldsLastOneWinsAndAppearsOnce) {
  ParsedRequest r = Parse(Batch({R"({"type":"bogus","type":"page","anonymousId":"a",)"
                                 R"("timestamp":"x","timestamp":"2026-11-23T11:00:00Z"})"}));
  ASSERT_EQ(r.accepted.size(), 1u) << r.rejected[0].code;
  const std::string& out = r.accepted[0].json;
  EXPECT_EQ(Count(out, "\"type\""), 1u) << out;
  EXPECT_EQ(Count(out, "\"timestamp\""), 1u) << out;
  EXPECT_EQ(Str(Doc(r.accepted[0]), "type"), "page");
}

TEST(IngestTest, ClientReceivedAtIsReplaced) {
  ParsedRequest r =
      Parse(Batch({R"({"type":"page","anonymousId":"a","receivedAt":"1999-01-01"})"}));
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(Count(r.accepted[0].json, "receivedAt"), 1u);
  EXPECT_EQ(Str(Doc(r.accepted[0]), "receivedAt"), "2026-11-23T12:00:00.000Z");
}

TEST(IngestTest, AddsPaddingWhenBodyHasNone) {
  std::string body = Batch({kTrack});
  body.shrink_to_fit();
  ParsedRequest r = ParseIngest(body, Route::kBatch, kReceived, Limits{});
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.accepted.size(), 1u);
}

TEST(IngestTest, AcceptsEveryType) {
  ParsedRequest r = Parse(Batch({
      R"({"type":"track","event":"E","userId":"u"})",
      R"({"type":"page","name":"Home","anonymousId":"a"})",
      R"({"type":"identify","userId":"u","traits":{"email":"x@y.z"}})",
      R"({"type":"screen","name":"Cart","anonymousId":"a"})",
      R"({"type":"alias","previousId":"a","userId":"u"})",
      R"({"type":"group","groupId":"g","userId":"u"})",
  }));
  EXPECT_TRUE(r.rejected.empty()) << r.rejected[0].code << " at " << r.rejected[0].index;
  EXPECT_EQ(r.accepted.size(), 6u);
}

// --- Clock skew -------------------------------------------------------------------------

TEST(IngestSkewTest, ClientClockAheadShiftsTimestampBack) {
  // The client's clock runs 10 s fast: it stamped the event 12:00:05 (really 11:59:55) and
  // sent it at 12:00:10 by its clock, which we received at 12:00:00.
  ParsedRequest r = Parse(Batch({R"({"type":"track","event":"E","userId":"u",)"
                                 R"("timestamp":"2026-11-23T12:00:05.000Z",)"
                                 R"("sentAt":"2026-11-23T12:00:10.000Z"})"}));
  ASSERT_EQ(r.accepted.size(), 1u);
  json::object doc = Doc(r.accepted[0]);
  EXPECT_EQ(Str(doc, "timestamp"), "2026-11-23T11:59:55.000Z");
  EXPECT_EQ(Str(doc, "originalTimestamp"), "2026-11-23T12:00:05.000Z");
  EXPECT_EQ(Str(doc, "sentAt"), "2026-11-23T12:00:10.000Z");
  EXPECT_EQ(Str(doc, "receivedAt"), "2026-11-23T12:00:00.000Z");
}

TEST(IngestSkewTest, BatchSentAtAppliesToMessagesWithoutTheirOwn) {
  ParsedRequest r =
      Parse(Batch({R"({"type":"page","anonymousId":"a","timestamp":"2026-11-23T13:00:00+01:00"})",
                   R"({"type":"page","anonymousId":"a","timestamp":"2026-11-23T11:59:00Z",)"
                   R"("sentAt":"2026-11-23T11:59:30Z"})"},
                  R"("sentAt":"2026-11-23T12:00:30.000Z")"));
  ASSERT_EQ(r.accepted.size(), 2u);
  json::object first = Doc(r.accepted[0]);
  // 12:00:00Z sent 30 s before 12:00:30 (client clock 30 s fast).
  EXPECT_EQ(Str(first, "timestamp"), "2026-11-23T11:59:30.000Z");
  EXPECT_EQ(Str(first, "originalTimestamp"), "2026-11-23T13:00:00+01:00");  // as sent
  EXPECT_EQ(Str(first, "sentAt"), "2026-11-23T12:00:30.000Z");
  json::object second = Doc(r.accepted[1]);
  // Its own sentAt wins: client clock 30 s slow.
  EXPECT_EQ(Str(second, "timestamp"), "2026-11-23T11:59:30.000Z");
  EXPECT_EQ(Str(second, "sentAt"), "2026-11-23T11:59:30Z");
  EXPECT_EQ(Count(r.accepted[1].json, "sentAt"), 1u);
}

TEST(IngestSkewTest, WithoutSentAtTimestampIsKeptButNormalized) {
  ParsedRequest r = Parse(
      Batch({R"({"type":"page","anonymousId":"a","timestamp":"2026-11-20T10:00:00+02:00"})"}));
  ASSERT_EQ(r.accepted.size(), 1u);
  json::object doc = Doc(r.accepted[0]);
  EXPECT_EQ(Str(doc, "timestamp"), "2026-11-20T08:00:00.000Z");
  EXPECT_EQ(Str(doc, "originalTimestamp"), "2026-11-20T10:00:00+02:00");
  EXPECT_FALSE(doc.contains("sentAt"));
}

TEST(IngestSkewTest, MissingOrNullTimestampBecomesReceivedAt) {
  ParsedRequest r = Parse(Batch({R"({"type":"page","anonymousId":"a","timestamp":null})",
                                 R"({"type":"page","anonymousId":"a"})"},
                                R"("sentAt":"2026-11-23T12:05:00Z")"));
  ASSERT_EQ(r.accepted.size(), 2u);
  for (const storage::Message& m : r.accepted) {
    json::object doc = Doc(m);
    EXPECT_EQ(Str(doc, "timestamp"), "2026-11-23T12:00:00.000Z");
    EXPECT_FALSE(doc.contains("originalTimestamp"));
    EXPECT_EQ(Count(m.json, "\"timestamp\""), 1u);
  }
}

// RudderStack's SDKs send the client time only as "originalTimestamp": it is corrected like a
// "timestamp" and kept as sent; one that is not a date is kept and not used.
TEST(IngestSkewTest, OriginalTimestampIsTheClientTimeWhenThereIsNoTimestamp) {
  ParsedRequest r = Parse(Batch({R"({"type":"track","event":"E","anonymousId":"a",)"
                                 R"("originalTimestamp":"2026-11-23T12:00:05.000Z",)"
                                 R"("sentAt":"2026-11-23T12:00:10.000Z"})",
                                 R"({"type":"track","event":"E","anonymousId":"a",)"
                                 R"("originalTimestamp":"soon"})",
                                 R"({"type":"track","event":"E","anonymousId":"a",)"
                                 R"("originalTimestamp":"2026-11-01T00:00:00Z",)"
                                 R"("timestamp":"2026-11-23T11:00:00Z"})"}));
  ASSERT_EQ(r.accepted.size(), 3u);
  json::object skewed = Doc(r.accepted[0]);
  EXPECT_EQ(Str(skewed, "timestamp"), "2026-11-23T11:59:55.000Z");
  EXPECT_EQ(Str(skewed, "originalTimestamp"), "2026-11-23T12:00:05.000Z");
  json::object not_a_date = Doc(r.accepted[1]);
  EXPECT_EQ(Str(not_a_date, "timestamp"), "2026-11-23T12:00:00.000Z");  // receivedAt
  EXPECT_EQ(Str(not_a_date, "originalTimestamp"), "soon");
  json::object both = Doc(r.accepted[2]);  // "timestamp" wins, and becomes the original
  EXPECT_EQ(Str(both, "timestamp"), "2026-11-23T11:00:00.000Z");
  EXPECT_EQ(Str(both, "originalTimestamp"), "2026-11-23T11:00:00Z");
  EXPECT_EQ(Count(r.accepted[2].json, "originalTimestamp"), 1u);
}

TEST(IngestSkewTest, InvalidBatchSentAtRefusesTheRequest) {
  // Every message's skew correction would depend on it, as docs/api.md says of any sentAt.
  for (std::string sent_at : {R"("soon")", "42", "{}"}) {
    ParsedRequest r =
        Parse(Batch({R"({"type":"page","anonymousId":"a","timestamp":"2026-11-23T11:00:00Z"})"},
                    R"("sentAt":)" + sent_at));
    ASSERT_TRUE(r.error) << sent_at;
    EXPECT_EQ(r.error->status, 400u);
    EXPECT_EQ(r.error->code, "invalid_sent_at");
    EXPECT_TRUE(r.accepted.empty());
  }
  // null counts as absent.
  ParsedRequest r = Parse(Batch({R"({"type":"page","anonymousId":"a"})"}, R"("sentAt":null)"));
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.accepted.size(), 1u);
}

TEST(IngestContextTest, BatchContextCannotMultiplyTheStoredSize) {
  Limits limits;
  limits.max_message_bytes = 1000;
  limits.max_request_bytes = 100'000;
  // A context over the message limit is refused outright: it would be copied into every
  // message of the batch.
  std::string big_context = R"("context":{"pad":")" + std::string(2000, 'x') + R"("})";
  ParsedRequest r = Parse(Batch({R"({"type":"page","userId":1})"}, big_context), Route::kBatch,
                          limits);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->status, 413u);
  EXPECT_EQ(r.error->code, "context_too_large");
  // A context that fits alone but not merged with a large message: that message is refused.
  std::string context = R"("context":{"pad":")" + std::string(700, 'x') + R"("})";
  std::string large = R"({"type":"page","userId":1,"properties":{"p":")" + std::string(700, 'y') +
                      R"("}})";
  r = Parse(Batch({large, R"({"type":"page","userId":2})"}, context), Route::kBatch, limits);
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.accepted.size(), 1u);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].index, 0u);
  EXPECT_EQ(r.rejected[0].code, "message_too_large");
  // Every copy counts: a context that fits each message but, copied into all of them,
  // would store more than a whole request may be.
  std::string small = R"("context":{"pad":")" + std::string(590, 'x') + R"("})";  // 600 bytes
  std::vector<std::string> many(200, R"({"type":"page","userId":1})");
  r = Parse(Batch(many, small), Route::kBatch, limits);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->status, 413u);
  EXPECT_EQ(r.error->code, "context_too_large");
  EXPECT_NE(r.error->message.find("200 messages"), std::string::npos) << r.error->message;
  many.resize(150);  // 90,000 bytes of copies
  r = Parse(Batch(many, small), Route::kBatch, limits);
  ASSERT_FALSE(r.error) << r.error->message;
  EXPECT_EQ(r.accepted.size(), 150u);
}

// --- Context ----------------------------------------------------------------------------

TEST(IngestContextTest, BatchContextIsMergedMessageKeysWin) {
  ParsedRequest r = Parse(
      Batch({R"({"type":"page","anonymousId":"a","context":{"ip":"5.6.7.8","page":{"url":"/c"}}})",
             R"({"type":"page","anonymousId":"a"})"},
            R"("context":{"library":{"name":"analytics-node","version":"1.0"},"ip":"1.2.3.4"})"));
  ASSERT_EQ(r.accepted.size(), 2u);
  json::object first = Doc(r.accepted[0]);
  const json::object& ctx = first.at("context").as_object();
  EXPECT_EQ(ctx.at("ip").as_string(), "5.6.7.8");
  EXPECT_EQ(ctx.at("page").at("url").as_string(), "/c");
  EXPECT_EQ(ctx.at("library").at("name").as_string(), "analytics-node");
  EXPECT_EQ(ctx.size(), 3u);
  EXPECT_EQ(Count(r.accepted[0].json, "\"context\""), 1u);

  json::object second = Doc(r.accepted[1]);
  EXPECT_EQ(second.at("context").at("ip").as_string(), "1.2.3.4");
  EXPECT_EQ(second.at("context").at("library").at("version").as_string(), "1.0");
}

TEST(IngestContextTest, EmptyMessageContextTakesBatchContext) {
  ParsedRequest r = Parse(Batch({R"({"type":"page","anonymousId":"a","context":{}})",
                                 R"({"type":"page","anonymousId":"a","context":null})"},
                                R"("context":{"ip":"1.2.3.4"})"));
  ASSERT_EQ(r.accepted.size(), 2u);
  for (const storage::Message& m : r.accepted) {
    EXPECT_EQ(Doc(m).at("context").at("ip").as_string(), "1.2.3.4") << m.json;
  }
}

TEST(IngestContextTest, WithoutBatchContextMessageContextIsUntouched) {
  const std::string ctx = R"("context" : { "ip" :"5.6.7.8" , "locale":"de-DE" })";
  ParsedRequest r = Parse(Batch({R"({"type":"page","anonymousId":"a",)" + ctx + "}"}));
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_NE(r.accepted[0].json.find(R"("context":{"ip":"5.6.7.8","locale":"de-DE"})"),
            std::string::npos)
      << r.accepted[0].json;
}

// --- Rejections of single messages in a batch ---------------------------------------------

struct RejectCase {
  std::string message;
  std::string code;
};

TEST(IngestRejectTest, EachCodeKeepsTheRestOfTheBatch) {
  const std::vector<RejectCase> cases = {
      {"42", "not_an_object"},
      {R"("text")", "not_an_object"},
      {"[1,2]", "not_an_object"},
      {"null", "not_an_object"},
      {R"({"event":"E","userId":"u"})", "missing_type"},
      {R"({"type":null,"event":"E","userId":"u"})", "missing_type"},
      {R"({"type":"purchase","userId":"u"})", "unknown_type"},
      {R"({"type":"Track","event":"E","userId":"u"})", "unknown_type"},
      {R"({"type":7,"userId":"u"})", "unknown_type"},
      {R"({"type":"page","name":"Home"})", "missing_identity"},
      {R"({"type":"page","userId":"","anonymousId":""})", "missing_identity"},
      {R"({"type":"page","userId":null,"anonymousId":true})", "missing_identity"},
      {R"({"type":"alias","userId":"u"})", "missing_previous_id"},
      {R"({"type":"alias","previousId":"p","anonymousId":"a"})", "missing_user_id"},
      {R"({"type":"track","userId":"u"})", "missing_event"},
      {R"({"type":"track","userId":"u","event":""})", "missing_event"},
      {R"({"type":"track","userId":"u","event":{"name":"E"}})", "missing_event"},
      {R"({"type":"page","userId":"u","timestamp":"yesterday"})", "invalid_timestamp"},
      {R"({"type":"page","userId":"u","timestamp":1795454642000})", "invalid_timestamp"},
      {R"({"type":"page","userId":"u","timestamp":"2026-02-30T00:00:00Z"})", "invalid_timestamp"},
      {R"({"type":"page","userId":"u","sentAt":"2026-11-23 25:00"})", "invalid_sent_at"},
      {R"({"type":"page","userId":"u","sentAt":false})", "invalid_sent_at"},
      {R"({"type":"page","userId":"u","messageId":12})", "invalid_message_id"},
      {R"({"type":"page","userId":"u","messageId":{"id":"x"}})", "invalid_message_id"},
      {R"({"type":"page","userId":")" + std::string(2049, 'u') + R"("})", "id_too_long"},
      {R"({"type":"page","anonymousId":")" + std::string(2049, 'a') + R"("})", "id_too_long"},
      {R"({"type":"alias","userId":"u","previousId":")" + std::string(2049, 'p') + R"("})",
       "id_too_long"},
  };
  for (const RejectCase& c : cases) {
    ParsedRequest r = Parse(Batch({kTrack, c.message, kTrack}));
    ASSERT_FALSE(r.error) << c.message;
    ASSERT_EQ(r.rejected.size(), 1u) << c.message;
    EXPECT_EQ(r.rejected[0].index, 1u) << c.message;
    EXPECT_EQ(r.rejected[0].code, c.code) << c.message;
    EXPECT_FALSE(r.rejected[0].message.empty());
    EXPECT_EQ(r.accepted.size(), 2u) << c.message;
  }
}

TEST(IngestRejectTest, IdsUpToTheLimitAreAccepted) {
  ParsedRequest r = Parse(Batch({R"({"type":"page","userId":")" + std::string(2048, 'u') +
                                 R"(","anonymousId":")" + std::string(2048, 'a') + R"("})"}));
  ASSERT_FALSE(r.error);
  EXPECT_TRUE(r.rejected.empty());
  EXPECT_EQ(r.accepted.size(), 1u);
}

TEST(IngestRejectTest, PartialBatchReportsIndicesOfBadMessages) {
  ParsedRequest r = Parse(Batch({
      R"({"type":"page","anonymousId":"a","messageId":"good-0"})",
      R"({"type":"track","anonymousId":"a"})",
      R"({"type":"page","anonymousId":"a","messageId":"good-2"})",
      R"("nope")",
      R"({"type":"page","anonymousId":"a","messageId":"good-4"})",
  }));
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.accepted.size(), 3u);
  EXPECT_EQ(r.accepted[0].message_id, "good-0");
  EXPECT_EQ(r.accepted[1].message_id, "good-2");
  EXPECT_EQ(r.accepted[2].message_id, "good-4");
  ASSERT_EQ(r.rejected.size(), 2u);
  EXPECT_EQ(r.rejected[0].index, 1u);
  EXPECT_EQ(r.rejected[0].code, "missing_event");
  EXPECT_EQ(r.rejected[1].index, 3u);
  EXPECT_EQ(r.rejected[1].code, "not_an_object");
}

TEST(IngestRejectTest, MessageTooLarge) {
  Limits limits;
  limits.max_message_bytes = 100;
  const std::string small = R"({"type":"page","anonymousId":"a"})";
  const std::string big =
      R"({"type":"page","anonymousId":"a","properties":{"pad":")" + std::string(100, 'x') + "\"}}";
  ParsedRequest r = Parse(Batch({small, big}), Route::kBatch, limits);
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.accepted.size(), 1u);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].index, 1u);
  EXPECT_EQ(r.rejected[0].code, "message_too_large");

  // The limit is inclusive.
  limits.max_message_bytes = small.size();
  r = Parse(Batch({small}), Route::kBatch, limits);
  EXPECT_EQ(r.accepted.size(), 1u);
}

// --- Whole-request errors -----------------------------------------------------------------

void ExpectError(const ParsedRequest& r, unsigned status, const std::string& code,
                 const std::string& what) {
  ASSERT_TRUE(r.error) << what;
  EXPECT_EQ(r.error->status, status) << what;
  EXPECT_EQ(r.error->code, code) << what;
  EXPECT_FALSE(r.error->message.empty()) << what;
  EXPECT_TRUE(r.accepted.empty()) << what;
  EXPECT_TRUE(r.rejected.empty()) << what;
}

TEST(IngestErrorTest, MalformedJson) {
  for (const std::string body : {"",
                                 "   ",
                                 "{",
                                 "}",
                                 "{\"batch\":[}",
                                 "{\"batch\":[{\"type\":\"page\"]}",
                                 "{\"batch\":[]} trailing",
                                 "{\"batch\":[]}{}",
                                 "{'batch':[]}",
                                 "{\"batch\":[1,]}",
                                 "{\"batch\":[1 2]}",
                                 "{\"batch\":[{\"a\":tru}]}",
                                 "{\"batch\":[{\"a\":nul}]}",
                                 "{\"batch\":[{\"a\":1.}]}",
                                 "{\"batch\":[{\"a\":01}]}",
                                 "{\"batch\":[{\"a\":+1}]}",
                                 "{\"batch\":[{\"a\":\"\\x\"}]}",
                                 "{\"batch\":[{\"a\" 1}]}",
                                 "{\"batch\":[{\"a\":1,}]}",
                                 "{\"batch\":[{\"a\\q\":1}]}",
                                 "{\"batch\":[{\"a\":\"tab\there\"}]}",
                                 "{\"batch\":[{\"a\":\"\xff\"}]}",
                                 "{\"x\":[1,{\"y\":[}]}],\"batch\":[]}",
                                 "[1,",
                                 "\"unterminated",
                                 "tru"}) {
    ExpectError(Parse(body), 400, "malformed_json", body);
  }
}

TEST(IngestErrorTest, MalformedJsonInsideSingleMessage) {
  ExpectError(Parse(R"({"type":"page","anonymousId":"a","properties":{"p":[1,,2]}})", Route::kPage),
              400, "malformed_json", "single");
}

TEST(IngestErrorTest, NestingIsBoundedPerMessage) {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  auto message = [&](int depth) {
    return R"({"type":"page","anonymousId":"a","properties":)" + nested(depth) + "}";
  };
  // The message object is the first of its 32 levels.
  ParsedRequest r = Parse(Batch({message(31), message(32), R"({"type":"page","anonymousId":"b"})"}));
  ASSERT_FALSE(r.error) << r.error->message;
  ASSERT_EQ(r.accepted.size(), 2u);
  Doc(r.accepted[0]);  // Boost.JSON's default limit accepts what we accept
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].index, 1u);
  EXPECT_EQ(r.rejected[0].code, "too_deep");
  // A message too deep alone is the request's error on the single-message routes.
  ExpectError(Parse(message(32), Route::kPage), 400, "too_deep", "single");
  EXPECT_FALSE(Parse(message(31), Route::kPage).error);
  // A too deep message must still be JSON: the body as a whole is checked.
  ExpectError(Parse(Batch({R"({"type":"page","anonymousId":"a","p":)" + std::string(40, '[') +
                           "tru" + std::string(40, ']') + "}",
                           R"({"type":"page","anonymousId":"b"})"})),
              400, "malformed_json", "deep and broken");
  // Outside the messages the body's own 32 levels apply.
  ExpectError(Parse(Batch({R"({"type":"page","anonymousId":"a"})"}, R"("x":)" + nested(32))), 400,
              "malformed_json", "too deep outside");
  EXPECT_FALSE(Parse(Batch({R"({"type":"page","anonymousId":"a"})"}, R"("x":)" + nested(31))).error);
  // Deep enough to overflow a naive recursive parser's stack.
  ExpectError(Parse(Batch({nested(200000)})), 400, "malformed_json", "very deep");
  ExpectError(Parse(Batch({message(200000)})), 400, "malformed_json", "very deep message");
}

// Found by fuzz_ingest (tests/fuzz/regressions/fuzz_ingest/huge_exponent.json): a number
// whose exponent Boost.JSON cannot read must not be stored, or the export breaks.
TEST(IngestErrorTest, ExponentsBoostJsonCannotReadAreMalformed) {
  for (std::string n : {"1e2147483648", "1e-2147483649", "-0.5E+99999999999", "1e0000000002147483648"}) {
    ParsedRequest r = Parse(Batch({R"({"type":"track","userId":"u","event":"e","n":)" + n + "}"}));
    ASSERT_TRUE(r.error) << n;
    EXPECT_EQ(r.error->code, "malformed_json") << n;
    EXPECT_TRUE(r.accepted.empty()) << n;
  }
  ExpectError(Parse("1e2147483648"), 400, "malformed_json", "root");
  for (std::string n : {"1e400", "1e-999999999", "12345678901234567890123e999999999", "1e00000000000000000001"}) {
    ParsedRequest r = Parse(Batch({R"({"type":"track","userId":"u","event":"e","n":)" + n + "}"}));
    ASSERT_FALSE(r.error) << n << ": " << r.error->code;
    ASSERT_EQ(r.accepted.size(), 1u) << n;
    EXPECT_TRUE(Doc(r.accepted[0]).contains("n")) << n;
  }
}

TEST(IngestErrorTest, InvalidBody) {
  for (const std::string body :
       {"[]", "[{\"batch\":[]}]", "42", "\"batch\"", "null", "true", " [1, {\"a\": [2]}] "}) {
    ExpectError(Parse(body), 400, "invalid_body", body);
    ExpectError(Parse(body, Route::kTrack), 400, "invalid_body", body);
  }
}

TEST(IngestErrorTest, InvalidBatch) {
  for (const std::string body :
       {"{}", R"({"type":"track","event":"E","userId":"u"})", R"({"batch":{}})",
        R"({"batch":null})", R"({"batch":"[]"})", R"({"batch":[],"batch":7})"}) {
    ExpectError(Parse(body), 400, "invalid_batch", body);
  }
}

TEST(IngestErrorTest, EmptyBatch) {
  ExpectError(Parse(R"({"batch":[],"writeKey":"wk"})"), 400, "empty_batch", "empty");
  ExpectError(Parse(R"({"batch": [ ] })"), 400, "empty_batch", "empty");
}

TEST(IngestErrorTest, BatchTooLarge) {
  Limits limits;
  limits.max_batch_messages = 3;
  ParsedRequest ok = Parse(Batch({kTrack, kTrack, kTrack}), Route::kBatch, limits);
  EXPECT_FALSE(ok.error);
  EXPECT_EQ(ok.accepted.size(), 3u);
  ExpectError(Parse(Batch({kTrack, kTrack, kTrack, kTrack}), Route::kBatch, limits), 413,
              "batch_too_large", "4 > 3");
}

// --- Single-message routes ------------------------------------------------------------------

TEST(IngestSingleTest, FillsTypeFromRoute) {
  const struct {
    Route route;
    const char* type;
  } routes[] = {{Route::kTrack, "track"},
                {Route::kPage, "page"},
                {Route::kIdentify, "identify"},
                {Route::kScreen, "screen"},
                {Route::kGroup, "group"}};
  for (const auto& [route, type] : routes) {
    EXPECT_EQ(RouteType(route), type);
    ParsedRequest r = Parse(R"({"userId":"u","event":"E"})", route);
    ASSERT_FALSE(r.error) << type << ": " << r.error->code;
    ASSERT_EQ(r.accepted.size(), 1u);
    json::object doc = Doc(r.accepted[0]);
    EXPECT_EQ(Str(doc, "type"), type);
    EXPECT_EQ(Count(r.accepted[0].json, "\"type\""), 1u);
  }
  EXPECT_EQ(RouteType(Route::kAlias), "alias");
  EXPECT_EQ(RouteType(Route::kBatch), "");
}

TEST(IngestSingleTest, KeepsMatchingType) {
  ParsedRequest r = Parse(R"( {"type":"alias","previousId":"a","userId":"u"} )", Route::kAlias);
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(Str(Doc(r.accepted[0]), "type"), "alias");
}

TEST(IngestSingleTest, TypeMismatchRefusesRequest) {
  ExpectError(Parse(R"({"type":"page","userId":"u"})", Route::kTrack), 400, "type_mismatch",
              "page on /v1/track");
}

TEST(IngestSingleTest, InvalidMessageRefusesRequest) {
  ExpectError(Parse(R"({"type":"track","userId":"u"})", Route::kTrack), 400, "missing_event",
              "no event");
  ExpectError(Parse(R"({"event":"E"})", Route::kTrack), 400, "missing_identity", "no id");
  ExpectError(Parse(R"({"type":"nope","userId":"u"})", Route::kTrack), 400, "unknown_type",
              "unknown");
}

TEST(IngestSingleTest, MessageTooLargeIs413) {
  Limits limits;
  limits.max_message_bytes = 64;
  ExpectError(Parse(R"({"type":"page","userId":"u","name":")" + std::string(64, 'n') + "\"}",
                    Route::kPage, limits),
              413, "message_too_large", "big");
  // Surrounding whitespace does not count.
  const std::string exact = R"({"userId":"u"})";
  limits.max_message_bytes = exact.size();
  ParsedRequest r = Parse("\n  " + exact + "  \n", Route::kPage, limits);
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.accepted.size(), 1u);
}

TEST(IngestSingleTest, SkewUsesMessageSentAt) {
  ParsedRequest r = Parse(R"({"userId":"u","event":"E","timestamp":"2026-11-23T12:00:00Z",)"
                          R"("sentAt":"2026-11-23T12:00:10Z"})",
                          Route::kTrack);
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_EQ(Str(Doc(r.accepted[0]), "timestamp"), "2026-11-23T11:59:50.000Z");
}

// --- A realistic analytics-node batch -------------------------------------------------------

TEST(IngestTest, AnalyticsNodeBatch) {
  std::vector<std::string> messages;
  for (int i = 0; i < 50; ++i) {
    messages.push_back(
        R"({"type":"track","event":"Product Added","userId":"user-)" + std::to_string(i) +
        R"(","properties":{"product_id":"p-)" + std::to_string(i) +
        R"(","sku":"SKU-1","price":19.99,"quantity":2,"currency":"EUR"},)"
        R"("context":{"library":{"name":"@segment/analytics-node","version":"2.1.0"}},)"
        R"("timestamp":"2026-11-23T11:59:58.123Z","messageId":"node-)" +
        std::to_string(i) + R"(","_metadata":{"jsRuntime":"node"}})");
  }
  ParsedRequest r = Parse(Batch(messages, R"("sentAt":"2026-11-23T11:59:59.000Z")"));
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.accepted.size(), 50u);
  for (std::size_t i = 0; i < r.accepted.size(); ++i) {
    json::object doc = Doc(r.accepted[i]);
    EXPECT_EQ(r.accepted[i].message_id, "node-" + std::to_string(i));
    EXPECT_EQ(Str(doc, "timestamp"), "2026-11-23T11:59:59.123Z");
    EXPECT_EQ(doc.at("properties").at("price").as_double(), 19.99);
  }
}

}  // namespace
}  // namespace cartwatch::collector
