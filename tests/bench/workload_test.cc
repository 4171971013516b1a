// The benchmark request stream (bench/workload.h): deterministic per seed, the documented
// event mix, well-formed Segment messages of the documented size, unique messageIds, the
// right route for each message, batches, and a bounded set of visitors.
//
// The suite is named `workload` (lower case) so that `ctest -R "bench|workload"` selects it.
#include "bench/workload.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace cartwatch::bench {
namespace {

namespace json = boost::json;

std::vector<BenchRequest> Take(const WorkloadOptions& options, std::size_t n) {
  Workload workload(options);
  std::vector<BenchRequest> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(workload.Next());
  return out;
}

json::object ParseObject(std::string_view text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec) {
    ADD_FAILURE() << "not JSON (" << ec.message() << "): " << text;
    return {};
  }
  if (!value.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << text;
    return {};
  }
  return std::move(value.as_object());
}

// The string at `key`, or "" (with a failure) when it is absent or not a string.
std::string StringAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    ADD_FAILURE() << "no string \"" << key << "\" in " << json::serialize(o);
    return {};
  }
  return std::string(v->as_string());
}

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int Number(std::string_view s) {
  int n = 0;
  for (char c : s) n = n * 10 + (c - '0');
  return n;
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ" with a real calendar date and time of day.
bool IsIso8601(std::string_view t) {
  if (t.size() != 24) return false;
  if (t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' ||
      t[19] != '.' || t[23] != 'Z') {
    return false;
  }
  const std::string_view year = t.substr(0, 4), month = t.substr(5, 2), day = t.substr(8, 2),
                         hour = t.substr(11, 2), minute = t.substr(14, 2),
                         second = t.substr(17, 2), milli = t.substr(20, 3);
  for (std::string_view part : {year, month, day, hour, minute, second, milli}) {
    if (!IsDigits(part)) return false;
  }
  const int y = Number(year), m = Number(month), d = Number(day);
  if (m < 1 || m > 12 || d < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[m - 1] + (m == 2 && leap ? 1 : 0)) return false;
  return Number(hour) < 24 && Number(minute) < 60 && Number(second) < 60;
}

TEST(workload, Iso8601CheckerItself) {
  EXPECT_TRUE(IsIso8601("2026-11-20T08:00:00.000Z"));
  EXPECT_TRUE(IsIso8601("2028-02-29T23:59:59.999Z"));
  EXPECT_FALSE(IsIso8601("2026-02-29T00:00:00.000Z"));
  EXPECT_FALSE(IsIso8601("2026-11-20T24:00:00.000Z"));
  EXPECT_FALSE(IsIso8601("2026-11-20 08:00:00.000Z"));
  EXPECT_FALSE(IsIso8601("2026-11-20T08:00:00Z"));
}

// The kind of a message as the mix names it: "page", "identify" or the track event.
std::string KindOf(const json::object& message) {
  const std::string type = StringAt(message, "type");
  if (type == "track") return StringAt(message, "event");
  return type;
}

// The route a single message of this type must go to.
std::string RouteFor(std::string_view type) { return "/v1/" + std::string(type); }

// Checks one message: the common fields and their formats. Returns it parsed.
json::object CheckMessage(std::string_view text) {
  EXPECT_GE(text.size(), 300u) << text;
  EXPECT_LE(text.size(), 700u) << text;
  json::object message = ParseObject(text);
  if (message.empty()) return message;
  const std::string type = StringAt(message, "type");
  EXPECT_TRUE(type == "page" || type == "track" || type == "identify") << type;
  EXPECT_FALSE(StringAt(message, "messageId").empty()) << text;
  EXPECT_FALSE(StringAt(message, "anonymousId").empty()) << text;
  const std::string timestamp = StringAt(message, "timestamp");
  EXPECT_TRUE(IsIso8601(timestamp)) << "timestamp " << timestamp;
  if (type == "track") {
    EXPECT_FALSE(StringAt(message, "event").empty()) << text;
  }
  if (type == "identify") {
    EXPECT_FALSE(StringAt(message, "userId").empty()) << text;
    EXPECT_TRUE(message.contains("traits")) << text;
  }
  return message;
}

TEST(workload, SameSeedGivesByteIdenticalStream) {
  for (std::size_t batch : {std::size_t{1}, std::size_t{7}}) {
    const WorkloadOptions options{.seed = 1234, .visitors = 100'000, .batch = batch};
    const std::vector<BenchRequest> a = Take(options, 1'000);
    const std::vector<BenchRequest> b = Take(options, 1'000);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].target, b[i].target) << "batch " << batch << ", request " << i;
      ASSERT_EQ(a[i].body, b[i].body) << "batch " << batch << ", request " << i;
      ASSERT_EQ(a[i].messages, b[i].messages) << "batch " << batch << ", request " << i;
    }
  }
}

TEST(workload, DifferentSeedsGiveDifferentStreams) {
  const std::vector<BenchRequest> a = Take({.seed = 1}, 1'000);
  const std::vector<BenchRequest> b = Take({.seed = 2}, 1'000);
  std::size_t same_body = 0;
  std::size_t same_target = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    same_body += a[i].body == b[i].body;
    same_target += a[i].target == b[i].target;
  }
  EXPECT_EQ(same_body, 0u);
  // Not only the messageIds differ: the sequence of event types does too.
  EXPECT_LT(same_target, a.size());
}

TEST(workload, MixMatchesTheDocumentedShares) {
  const std::map<std::string, double> expected = {
      {"page", 60},          {"Product Viewed", 15}, {"Product Added", 10},
      {"Product Removed", 3}, {"Cart Viewed", 5},     {"identify", 4},
      {"Order Completed", 3},
  };
  constexpr std::size_t kMessages = 20'000;
  for (std::uint64_t seed : {std::uint64_t{42}, std::uint64_t{7}}) {
    std::map<std::string, std::size_t> counts;
    for (const BenchRequest& request : Take({.seed = seed}, kMessages)) {
      ASSERT_EQ(request.messages, 1u);
      ++counts[KindOf(ParseObject(request.body))];
    }
    for (const auto& [kind, count] : counts) {
      EXPECT_TRUE(expected.contains(kind)) << "seed " << seed << ": unexpected kind " << kind;
    }
    for (const auto& [kind, percent] : expected) {
      const double got = 100.0 * static_cast<double>(counts[kind]) / kMessages;
      EXPECT_NEAR(got, percent, 1.5) << "seed " << seed << ": share of " << kind;
    }
  }
}

TEST(workload, SingleMessagesAreWellFormedAndRoutedByType) {
  std::size_t total_bytes = 0;
  std::set<std::string> targets;
  for (const BenchRequest& request : Take({.seed = 42}, 20'000)) {
    ASSERT_EQ(request.messages, 1u);
    const json::object message = CheckMessage(request.body);
    ASSERT_FALSE(message.empty());
    EXPECT_EQ(request.target, RouteFor(StringAt(message, "type"))) << request.body;
    targets.insert(request.target);
    total_bytes += request.body.size();
    if (HasFailure()) return;  // one broken message is enough to look at
  }
  EXPECT_EQ(targets, (std::set<std::string>{"/v1/page", "/v1/track", "/v1/identify"}));
  // About 570 bytes on average (workload.h): well inside the 300-700 range.
  const double mean = static_cast<double>(total_bytes) / 20'000;
  EXPECT_GT(mean, 450);
  EXPECT_LT(mean, 650);
}

TEST(workload, MessageIdsAreUniqueAcrossALongStream) {
  std::unordered_set<std::string> ids;
  constexpr std::size_t kMessages = 50'000;
  ids.reserve(kMessages);
  Workload workload({.seed = 42});
  for (std::size_t i = 0; i < kMessages; ++i) {
    const BenchRequest request = workload.Next();
    const json::object message = ParseObject(request.body);
    const std::string id = StringAt(message, "messageId");
    ASSERT_TRUE(ids.insert(id).second) << "messageId " << id << " repeated at message " << i;
  }
  EXPECT_EQ(ids.size(), kMessages);
}

TEST(workload, MessageIdsDoNotCollideBetweenSeeds) {
  // The load generator gives connection c the seed seed + c: neighbouring seeds must not
  // share a messageId, or dedup would swallow messages.
  std::unordered_set<std::string> ids;
  for (std::uint64_t seed = 100; seed < 104; ++seed) {
    for (const BenchRequest& request : Take({.seed = seed}, 2'000)) {
      const std::string id = StringAt(ParseObject(request.body), "messageId");
      ASSERT_TRUE(ids.insert(id).second) << "seed " << seed << ": messageId " << id;
    }
  }
}

TEST(workload, BatchModeSendsFiftyMessagesToV1Batch) {
  constexpr std::size_t kBatch = 50;
  std::unordered_set<std::string> ids;
  Workload workload({.seed = 42, .batch = kBatch});
  for (int r = 0; r < 40; ++r) {
    const BenchRequest request = workload.Next();
    EXPECT_EQ(request.target, "/v1/batch");
    EXPECT_EQ(request.messages, kBatch);
    const json::object body = ParseObject(request.body);
    ASSERT_FALSE(body.empty());
    const json::value* batch = body.if_contains("batch");
    ASSERT_TRUE(batch != nullptr && batch->is_array()) << request.body.substr(0, 200);
    ASSERT_EQ(batch->as_array().size(), kBatch);
    const std::string sent_at = StringAt(body, "sentAt");
    EXPECT_TRUE(IsIso8601(sent_at)) << "sentAt " << sent_at;
    for (const json::value& element : batch->as_array()) {
      ASSERT_TRUE(element.is_object());
      const std::string text = json::serialize(element);
      const json::object message = CheckMessage(text);
      const std::string id = StringAt(message, "messageId");
      EXPECT_TRUE(ids.insert(id).second) << "messageId " << id << " repeated";
      // The batch is sent after its messages happened (same format: text order is time
      // order).
      EXPECT_LE(StringAt(message, "timestamp"), sent_at);
    }
    if (HasFailure()) return;
  }
  EXPECT_EQ(ids.size(), 40 * kBatch);
}

TEST(workload, BatchOfOneIsASingleMessage) {
  // batch 0 is taken as 1; both are the single-message stream.
  const std::vector<BenchRequest> zero = Take({.seed = 9, .batch = 0}, 50);
  const std::vector<BenchRequest> one = Take({.seed = 9, .batch = 1}, 50);
  for (std::size_t i = 0; i < one.size(); ++i) {
    EXPECT_NE(one[i].target, "/v1/batch");
    EXPECT_EQ(one[i].messages, 1u);
    EXPECT_EQ(zero[i].body, one[i].body);
  }
}

TEST(workload, DistinctAnonymousIdsAreBoundedByVisitors) {
  for (std::size_t visitors : {std::size_t{1}, std::size_t{25}, std::size_t{300}}) {
    std::set<std::string> anonymous_ids;
    std::map<std::string, std::set<std::string>> user_ids_of;  // anonymousId -> userIds
    for (const BenchRequest& request : Take({.seed = 5, .visitors = visitors}, 6'000)) {
      const json::object message = ParseObject(request.body);
      const std::string anonymous_id = StringAt(message, "anonymousId");
      anonymous_ids.insert(anonymous_id);
      if (const json::value* user = message.if_contains("userId"); user != nullptr) {
        ASSERT_TRUE(user->is_string());
        user_ids_of[anonymous_id].insert(std::string(user->as_string()));
      }
    }
    EXPECT_LE(anonymous_ids.size(), visitors) << "visitors " << visitors;
    // 6,000 messages over at most 300 visitors reach every one of them.
    EXPECT_EQ(anonymous_ids.size(), visitors) << "visitors " << visitors;
    // A visitor is one person: an anonymousId never carries two userIds.
    for (const auto& [anonymous_id, user_ids] : user_ids_of) {
      EXPECT_EQ(user_ids.size(), 1u) << anonymous_id;
    }
    // Every 10th visitor is identified (visitor 0 always is).
    EXPECT_EQ(user_ids_of.size(), (visitors + 9) / 10) << "visitors " << visitors;
  }
}

// Sequential order: streams with offsets 0..N-1 and stride N send each visitor one message
// before any visitor a second (an identify goes to an identified visitor nearby instead).
TEST(workload, SequentialStreamsTouchEachVisitorOnceBeforeAnyTwice) {
  constexpr std::size_t kStreams = 4, kVisitors = 1000, kEach = 200;
  std::map<std::string, int> messages_of;  // anonymousId -> messages other than identify
  std::size_t identifies = 0;
  for (std::size_t c = 0; c < kStreams; ++c) {
    for (const BenchRequest& request :
         Take({.seed = 9 + c, .visitors = kVisitors, .visitor_stride = kStreams,
               .visitor_offset = c},
              kEach)) {
      const json::object message = ParseObject(request.body);
      if (StringAt(message, "type") == "identify") {
        ++identifies;
      } else {
        ++messages_of[StringAt(message, "anonymousId")];
      }
    }
  }
  EXPECT_GT(identifies, 0u);
  EXPECT_EQ(messages_of.size(), kStreams * kEach - identifies);
  for (const auto& [anonymous_id, n] : messages_of) EXPECT_EQ(n, 1) << anonymous_id;
}

}  // namespace
}  // namespace cartwatch::bench
