// HTTP integration tests of ingest: every route, the tracker, the group commit, metrics,
// statuses, gzip and CORS (the fixture: http_fixture.h).
#include "tests/collector/http_fixture.h"

namespace cartwatch::collector::http_test {
namespace {

TEST(SerializeHeadTest, WritesTheBytesBeastsSerializerWrites) {
  using cartwatch::collector::Response;
  namespace http = boost::beast::http;
  std::vector<Response> cases;
  auto add = [&](http::status status, unsigned version, bool keep_alive, std::string body,
                 auto&& edit) {
    Response r{status, version};
    r.set(http::field::content_type, "application/json");
    r.body() = std::move(body);
    edit(r);
    r.keep_alive(keep_alive);
    r.prepare_payload();
    cases.push_back(std::move(r));
  };
  auto none = [](Response&) {};
  add(http::status::ok, 11, true, R"({"success":true})", none);
  add(http::status::ok, 11, false, R"({"success":true})", none);
  add(http::status::ok, 10, true, "{}", none);
  add(http::status::ok, 9, false, "{}", none);   // HTTP/0.9 as Beast's parser reads it
  add(http::status::ok, 20, true, "{}", none);
  add(http::status::no_content, 11, true, "", none);
  add(http::status::too_many_requests, 11, true, R"({"error":{}})", [](Response& r) {
    r.set(http::field::retry_after, "1");
    r.set("Access-Control-Allow-Origin", "https://shop.example");
  });
  add(http::status::ok, 11, true, "x", [](Response& r) { r.reason("Fine Indeed"); });
  add(static_cast<http::status>(599), 11, true, "", none);  // no reason phrase known
  std::string head;
  for (const Response& r : cases) {
    std::ostringstream beast;
    beast << r;
    cartwatch::collector::SerializeHead(r, head);
    EXPECT_EQ(head + r.body(), beast.str());
  }
}

TEST_F(HttpTest, WriteKeyInBodyWithTextPlain) {
  Response res = Post("/v1/batch", R"({"writeKey":"wk","batch":[)" + kTrack + "]}",
                      {{"Content-Type", "text/plain;charset=UTF-8"}});
  EXPECT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(Events().size(), 1u);
}

TEST_F(HttpTest, EverySingleMessageRoute) {
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"track", R"({"event":"Signed Up","userId":"u1"})"},
      {"page", R"({"name":"Home","anonymousId":"a1"})"},
      {"identify", R"({"userId":"u1","traits":{"email":"x@example.com"}})"},
      {"screen", R"({"name":"Cart","userId":"u1"})"},
      {"alias", R"({"previousId":"a1","userId":"u1"})"},
      {"group", R"({"groupId":"g1","userId":"u1"})"},
  };
  for (auto& [route, body] : routes) {
    Response res = Post("/v1/" + route, body);
    EXPECT_EQ(res.result_int(), 200) << route << ": " << res.body();
  }
  auto events = Events();
  ASSERT_EQ(events.size(), routes.size());
  for (std::size_t i = 0; i < routes.size(); ++i) {
    EXPECT_EQ(events[i].at("type"), routes[i].first.c_str());
    EXPECT_FALSE(events[i].at("messageId").as_string().empty());
  }
}

// analytics.js 2.0 (@segment/analytics-next) posts to one-letter paths: the same routes.
TEST_F(HttpTest, ShortRoutesOfAnalyticsNext) {
  const std::vector<std::tuple<std::string, std::string, std::string>> routes = {
      {"t", "track", R"({"event":"Signed Up","userId":"u1","messageId":"s1"})"},
      {"p", "page", R"({"name":"Home","anonymousId":"a1","messageId":"s2"})"},
      {"i", "identify", R"({"userId":"u1","traits":{"email":"x@example.com"},"messageId":"s3"})"},
      {"s", "screen", R"({"name":"Cart","userId":"u1","messageId":"s4"})"},
      {"a", "alias", R"({"previousId":"a1","userId":"u1","messageId":"s5"})"},
      {"g", "group", R"({"groupId":"g1","userId":"u1","messageId":"s6"})"},
      {"b", "track", R"({"batch":[{"type":"track","event":"E","userId":"u1","messageId":"s7"}]})"},
  };
  for (auto& [path, type, body] : routes) {
    // As analytics-next sends them: text/plain, the write key inside the message.
    std::string with_key = R"({"writeKey":"wk",)" + body.substr(1);
    Response res = Post("/v1/" + path, with_key, {{"Content-Type", "text/plain"}});
    EXPECT_EQ(res.result_int(), 200) << path << ": " << res.body();
  }
  // A single-message short route keeps the type check of its long form.
  Response wrong = Post("/v1/t", R"({"type":"page","name":"Home","userId":"u1"})");
  EXPECT_EQ(wrong.result_int(), 400) << wrong.body();
  auto events = Events();
  ASSERT_EQ(events.size(), routes.size());
  for (std::size_t i = 0; i < routes.size(); ++i) {
    EXPECT_EQ(events[i].at("type"), std::get<1>(routes[i]).c_str());
    EXPECT_EQ(events[i].at("messageId"), ("s" + std::to_string(i + 1)).c_str());
  }
  EXPECT_EQ(Send(http::verb::get, "/v1/t").result_int(), 405);
  EXPECT_EQ(Post("/v1/x", R"({"event":"E","userId":"u1"})").result_int(), 404);
}

// RudderStack's beacon route: the write key in the query, since sendBeacon sets no headers.
TEST_F(HttpTest, RudderStackBeaconRoute) {
  const std::string body =
      R"({"batch":[{"type":"track","event":"E","anonymousId":"a1","messageId":"r1"}],)"
      R"("sentAt":"2026-11-23T12:00:00Z"})";
  Response ok = Post("/beacon/v1/batch?writeKey=wk", body, {{"Content-Type", "text/plain;charset=UTF-8"}});
  EXPECT_EQ(ok.result_int(), 200) << ok.body();
  Response unknown = Post("/beacon/v1/batch?writeKey=nope", body, {});
  EXPECT_EQ(unknown.result_int(), 401);
  EXPECT_EQ(ErrorCode(unknown), "unknown_write_key");
  Response none = Post("/beacon/v1/batch", body, {});
  EXPECT_EQ(ErrorCode(none), "missing_write_key");
  Response escaped = Post("/beacon/v1/batch?writeKey=%zz", body, {});
  EXPECT_EQ(ErrorCode(escaped), "invalid_query");
  auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("messageId"), "r1");
}

// A JSON body is accepted whatever its declared type, as Segment's and RudderStack's servers
// do: RudderStack's Node SDK sends gzip declared as a form; curl -d sends a form; sendBeacon
// sends text/plain.
TEST_F(HttpTest, JsonBodyWhateverTheContentType) {
  int n = 0;
  for (std::string type : {"application/x-www-form-urlencoded", "", "text/plain",
                           "text/plain; charset=utf-8", "application/json; charset=UTF-8",
                           "application/octet-stream"}) {
    std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", Basic("wk")}};
    if (!type.empty()) headers.emplace_back("Content-Type", type);
    std::string id = "c" + std::to_string(++n);
    Response res = Post("/v1/track", R"({"event":"E","userId":"u","messageId":")" + id + R"("})",
                        headers);
    EXPECT_EQ(res.result_int(), 200) << type << ": " << res.body();
  }
  Response gz = Post("/v1/batch", Gzip(R"({"batch":[{"type":"track","event":"E","userId":"u",)"
                                       R"("messageId":"gz"}]})"),
                     {{"Authorization", Basic("wk")},
                      {"Content-Type", "application/x-www-form-urlencoded"},
                      {"Content-Encoding", "gzip"}});
  EXPECT_EQ(gz.result_int(), 200) << gz.body();
  EXPECT_EQ(Events().size(), static_cast<std::size_t>(n + 1));
}

// The storefront tracker, served by the collector itself: what sdk-js's build wrote, cached
// by version, revalidated by ETag, gzip when asked, loadable from any origin.
TEST_F(HttpTest, ServesTheTracker) {
  std::ifstream file(CARTWATCH_TRACKER_JS, std::ios::binary);
  if (!file) {
    Response missing = Send(http::verb::get, "/cartwatch.js");
    EXPECT_EQ(missing.result_int(), 404);
    EXPECT_EQ(ErrorCode(missing), "tracker_not_built");
    GTEST_SKIP() << "no " << CARTWATCH_TRACKER_JS << ": npm run --prefix sdk-js build";
  }
  const std::string script{std::istreambuf_iterator<char>(file), {}};

  Response plain = Send(http::verb::get, "/cartwatch.js");
  ASSERT_EQ(plain.result_int(), 200);
  EXPECT_EQ(plain.body(), script);
  EXPECT_EQ(plain[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(plain[http::field::cache_control], "public, max-age=3600");
  EXPECT_EQ(plain[http::field::access_control_allow_origin], "*");
  EXPECT_EQ(plain[http::field::vary], "Accept-Encoding");
  EXPECT_TRUE(plain[http::field::content_encoding].empty());
  const std::string etag(plain[http::field::etag]);
  const std::string version(plain["Cartwatch-Tracker-Version"]);
  EXPECT_EQ(etag, "\"" + version + "\"");
  EXPECT_EQ(version.size(), 16u);

  Response gz = Send(http::verb::get, "/cartwatch.js", "", {{"Accept-Encoding", "br, gzip;q=0.8"}});
  ASSERT_EQ(gz.result_int(), 200);
  EXPECT_EQ(gz[http::field::content_encoding], "gzip");
  EXPECT_LT(gz.body().size(), script.size());
  std::string inflated;
  ASSERT_EQ(Gunzip(gz.body(), 1 << 20, 0, inflated), InflateResult::kOk);
  EXPECT_EQ(inflated, script);
  Response refused = Send(http::verb::get, "/cartwatch.js", "", {{"Accept-Encoding", "gzip;q=0"}});
  EXPECT_TRUE(refused[http::field::content_encoding].empty());
  EXPECT_EQ(refused.body(), script);

  Response cached = Send(http::verb::get, "/cartwatch.js", "", {{"If-None-Match", etag}});
  EXPECT_EQ(cached.result_int(), 304);
  EXPECT_TRUE(cached.body().empty());
  EXPECT_EQ(cached[http::field::etag], etag);
  EXPECT_EQ(Send(http::verb::get, "/cartwatch.js", "", {{"If-None-Match", "\"stale\""}}).result_int(),
            200);

  Response pinned = Send(http::verb::get, "/cartwatch.js?v=" + version);
  EXPECT_EQ(pinned[http::field::cache_control], "public, max-age=31536000, immutable");
  Response other = Send(http::verb::get, "/cartwatch.js?v=0000000000000000");
  EXPECT_EQ(other[http::field::cache_control], "public, max-age=3600");

  Response post = Send(http::verb::post, "/cartwatch.js", "x");
  EXPECT_EQ(post.result_int(), 405);
  EXPECT_EQ(post[http::field::allow], "GET, OPTIONS");
}

// server.commit_delay_us: the requests that arrive within the delay of a round's first one
// share its commit; with 0, requests a few milliseconds apart are each a round of their own.
TEST_F(HttpTest, RequestsWithinTheCommitDelayShareOneCommit) {
  // Five requests on five connections, `apart` from each other; answers read after the last
  // is sent. Returns how long sending them took.
  auto send_five = [&](std::string_view tag, std::chrono::milliseconds apart) {
    net::io_context ioc;
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<beast::tcp_stream>> streams;
    for (int i = 0; i < 5; ++i) {
      auto stream = std::make_unique<beast::tcp_stream>(ioc);
      stream->connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
      http::request<http::string_body> req{http::verb::post, "/v1/track", 11};
      req.set(http::field::host, "127.0.0.1");
      req.set(http::field::authorization, Basic("wk"));
      req.set(http::field::content_type, "application/json");
      req.body() = R"({"type":"track","event":"E","userId":"u","messageId":")" + std::string(tag) +
                   std::to_string(i) + R"("})";
      req.prepare_payload();
      http::write(*stream, req);
      streams.push_back(std::move(stream));
      if (i < 4) std::this_thread::sleep_for(apart);
    }
    const auto took = std::chrono::steady_clock::now() - started;
    for (auto& stream : streams) {
      beast::flat_buffer buffer;
      Response res;
      http::read(*stream, buffer, res);
      EXPECT_EQ(res.result_int(), 200) << res.body();
    }
    return took;
  };
  // The rounds written and the messages they stored, once the queue is counted empty.
  auto rounds = [&] {
    std::string text;
    for (int i = 0; i < 500; ++i, std::this_thread::sleep_for(std::chrono::milliseconds(10))) {
      text = Send(http::verb::get, "/metrics", "", {}, /*admin=*/true).body();
      if (text.find("\ncartwatch_commit_queue_messages 0\n") != std::string::npos) break;
    }
    auto value = [&](const std::string& name) {
      const auto at = text.find("\n" + name + " ");
      return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
    };
    return std::pair(value("cartwatch_commit_batch_messages_count"),
                     value("cartwatch_commit_batch_messages_sum"));
  };

  options_.io_threads = 1;  // one loop: every connection's requests go to one scheduler
  options_.commit_delay_us = 100'000;
  RestartServer();
  const auto took = send_five("delayed-", std::chrono::milliseconds(2));
  const auto [delayed_rounds, delayed_sum] = rounds();
  EXPECT_EQ(delayed_sum, 5.0);
  if (took < std::chrono::milliseconds(50)) {  // all well within the 100 ms: one round
    EXPECT_EQ(delayed_rounds, 1.0);
  } else {  // a machine slow enough to take longer may have split it
    EXPECT_LE(delayed_rounds, 2.0);
  }

  options_.commit_delay_us = 0;
  RestartServer();
  send_five("at-once-", std::chrono::milliseconds(30));
  // Five rounds more, of one message each (at least three on a slow machine, where a
  // request may wait for the loop past the next one's arrival).
  const auto [count, sum] = rounds();
  EXPECT_GE(count - delayed_rounds, 3.0);
  EXPECT_EQ(sum, 10.0);
}

// GET /metrics on the admin listener: what the requests above did, in Prometheus's text
// format, clean under promtool (when there is one; CI has it).
TEST_F(HttpTest, MetricsCountRequestsMessagesAndRejections) {
  ASSERT_EQ(Post("/v1/batch", R"({"batch":[)" + kTrack +
                                  R"(,{"type":"track","userId":"u1"},{"type":"page","name":"P","userId":"u1","messageId":"m9"}]})")
                .result_int(),
            200);
  ASSERT_EQ(Post("/v1/t", kTrack).result_int(), 200);  // a duplicate of m1, by the short route
  ASSERT_EQ(Post("/v1/track", kTrack, {{"Authorization", Basic("nope")}}).result_int(), 401);
  // The committing thread counts a round out of the queue, and stores its figures, just
  // after answering it: scraped again until it has.
  Response res;
  int scrapes = 0;
  for (; scrapes < 500; std::this_thread::sleep_for(std::chrono::milliseconds(10))) {
    res = Send(http::verb::get, "/metrics", "", {}, /*admin=*/true);
    ++scrapes;
    if (res.body().find("\ncartwatch_commit_queue_messages 0\n") != std::string::npos) break;
  }
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = res.body();
  for (const std::string line : {
           R"(cartwatch_messages_accepted_total{site="shop",type="track"} 2)",
           R"(cartwatch_messages_accepted_total{site="shop",type="page"} 1)",
           R"(cartwatch_messages_duplicate_total{site="shop"} 1)",
           R"(cartwatch_messages_rejected_total{reason="missing_event",site="shop"} 1)",
           R"(cartwatch_http_requests_total{code="200",route="batch"} 1)",
           R"(cartwatch_http_requests_total{code="200",route="track"} 1)",
           R"(cartwatch_http_requests_total{code="401",route="track"} 1)",
           "cartwatch_ingest_duration_seconds_count 2",
           "cartwatch_storage_writable 1",
           "cartwatch_storage_wal_damage_recoveries_total 0",
           "cartwatch_rule_timers_armed_total 0",  // no rules in this test
           "cartwatch_rule_timers_pending 0",
           R"(cartwatch_rule_timers_due_total{outcome="stale"} 0)",
           R"(cartwatch_rule_actions_total{status="skipped",type="email.triggered"} 0)",
           "cartwatch_dedup_ids 2",                     // m1 and m9
           "cartwatch_commit_batch_messages_sum 2",     // stored, over the rounds written
           "cartwatch_commit_queue_messages 0",
           R"(cartwatch_rocksdb_write_stops_total{cf="events"} 0)",
           "cartwatch_rocksdb_write_stopped 0",
       }) {
    EXPECT_NE(text.find("\n" + line + "\n"), std::string::npos) << line << "\n" << text;
  }
  for (const std::string family : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                                   "process_open_fds", "process_max_fds",
                                   "process_start_time_seconds", "cartwatch_received_bytes_total",
                                   "cartwatch_rocksdb_memtable_bytes", "cartwatch_rocksdb_sst_bytes",
                                   "cartwatch_rocksdb_pending_compaction_bytes",
                                   "cartwatch_rocksdb_live_data_bytes", "cartwatch_rocksdb_block_cache_bytes",
                                   "cartwatch_rocksdb_wal_bytes", "cartwatch_records_cached", "cartwatch_records_cached_bytes",
                                   "cartwatch_records_unwritten", "cartwatch_commit_duration_seconds"}) {
    EXPECT_NE(text.find("\n# TYPE " + family + " "), std::string::npos) << family;
  }
  // The scrape itself is counted by the next one.
  Response again = Send(http::verb::get, "/metrics", "", {}, true);
  EXPECT_NE(again.body().find(R"(cartwatch_http_requests_total{code="200",route="metrics"} )" +
                              std::to_string(scrapes) + "\n"),
            std::string::npos);
  EXPECT_EQ(Send(http::verb::post, "/metrics", "x", {}, true).result_int(), 405);

  const std::string promtool = FindPromtool();
  if (promtool.empty()) GTEST_SKIP() << "no promtool (scripts/install-deps.sh --test extracts it)";
  const fs::path file = dir_ / "metrics.txt";
  std::ofstream(file) << text;
  const std::string command = promtool + " check metrics < " + file.string() + " 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_EQ(output, "") << "promtool found problems";
}

TEST_F(HttpTest, PixelAnswersGifAndStores) {
  std::string msg = R"({"event":"Email Opened","userId":"u9","writeKey":"wk"})";
  Response res = Send(http::verb::get, "/v1/pixel/track?data=" + util::Base64Encode(msg));
  EXPECT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(res[http::field::content_type], "image/gif");
  EXPECT_EQ(res.body().substr(0, 6), "GIF89a");
  auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("event"), "Email Opened");
  EXPECT_FALSE(events[0].contains("writeKey"));

  EXPECT_EQ(Send(http::verb::get, "/v1/pixel/track").result_int(), 400);
  Response bad_escape = Send(http::verb::get, "/v1/pixel/track?data=%%%");
  EXPECT_EQ(bad_escape.result_int(), 400);
  EXPECT_EQ(ErrorCode(bad_escape), "invalid_query");
  Response bad_base64 = Send(http::verb::get, "/v1/pixel/track?data=!!!");
  EXPECT_EQ(bad_base64.result_int(), 400);
  EXPECT_EQ(ErrorCode(bad_base64), "invalid_data");
  EXPECT_EQ(Send(http::verb::get, "/v1/pixel/bogus?data=e30").result_int(), 404);
}

TEST_F(HttpTest, PartialBatchKeepsTheGoodMessages) {
  Response res = Post("/v1/batch", R"({"batch":[)" + kTrack +
                                       R"(,{"type":"track","userId":"u1"},42,)"
                                       R"({"type":"page","anonymousId":"a2","messageId":"ok2"}]})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  auto body = json::parse(res.body());
  EXPECT_EQ(body.at("success"), true);
  EXPECT_EQ(body.at("accepted"), 2);
  auto& rejected = body.at("rejected").as_array();
  ASSERT_EQ(rejected.size(), 2u);
  EXPECT_EQ(rejected[0].at("index"), 1);
  EXPECT_EQ(rejected[0].at("code"), "missing_event");
  EXPECT_FALSE(rejected[0].at("error").as_string().empty());
  EXPECT_EQ(rejected[1].at("index"), 2);
  EXPECT_EQ(rejected[1].at("code"), "not_an_object");
  EXPECT_EQ(Events().size(), 2u);
}

TEST_F(HttpTest, BatchWithNoValidMessageIs400) {
  Response res = Post("/v1/batch", R"({"batch":[{"type":"track","userId":"u"}]})");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_EQ(ErrorCode(res), "no_valid_messages");
  EXPECT_EQ(json::parse(res.body()).at("rejected").as_array().size(), 1u);
}

TEST_F(HttpTest, DuplicateMessageIdIsAcknowledgedButStoredOnce) {
  EXPECT_EQ(Post("/v1/track", kTrack).result_int(), 200);
  EXPECT_EQ(Post("/v1/track", kTrack).result_int(), 200);
  EXPECT_EQ(Post("/v1/batch", R"({"batch":[)" + kTrack + "," + kTrack + "]}").result_int(), 200);
  EXPECT_EQ(Events().size(), 1u);
}

TEST_F(HttpTest, ClockSkewIsCorrected) {
  // The device clock is 1 h behind: it stamped the event and the send 1 h in the past.
  auto now = util::NowMs();
  std::string ts = util::FormatIso8601(now - 3'600'000 - 5'000);  // 5 s before sending
  std::string sent = util::FormatIso8601(now - 3'600'000);
  Response res = Post("/v1/batch", R"({"sentAt":")" + sent +
                                       R"(","batch":[{"type":"track","event":"E","userId":"u",)"
                                       R"("timestamp":")" + ts + R"("}]})");
  ASSERT_EQ(res.result_int(), 200);
  auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  auto stored = *util::ParseIso8601(events[0].at("timestamp").as_string());
  auto received = *util::ParseIso8601(events[0].at("receivedAt").as_string());
  EXPECT_EQ(stored, received - 5'000);
  EXPECT_EQ(events[0].at("originalTimestamp"), ts.c_str());
}

TEST_F(HttpTest, GzipBodies) {
  Response ok = Post("/v1/batch", Gzip(R"({"batch":[)" + kTrack + "]}"),
                     {{"Authorization", Basic("wk")},
                      {"Content-Type", "application/json"},
                      {"Content-Encoding", "gzip"}});
  EXPECT_EQ(ok.result_int(), 200) << ok.body();
  EXPECT_EQ(Events().size(), 1u);

  // 10 MB of spaces compresses to ~10 KB: under the body limit, over the inflated limit.
  Response bomb = Post("/v1/batch", Gzip(std::string(10 << 20, ' ')),
                       {{"Authorization", Basic("wk")}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(bomb.result_int(), 413);
  EXPECT_EQ(ErrorCode(bomb), "payload_too_large");

  Response corrupt = Post("/v1/batch", "not gzip at all",
                          {{"Authorization", Basic("wk")}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(corrupt.result_int(), 400);
  EXPECT_EQ(ErrorCode(corrupt), "malformed_gzip");

  Response br = Post("/v1/batch", "x", {{"Authorization", Basic("wk")}, {"Content-Encoding", "br"}});
  EXPECT_EQ(br.result_int(), 415);
  EXPECT_EQ(ErrorCode(br), "unsupported_content_encoding");
}

TEST_F(HttpTest, ErrorStatuses) {
  auto expect = [&](const Response& res, unsigned status, const std::string& code) {
    EXPECT_EQ(res.result_int(), status) << res.body();
    EXPECT_EQ(res[http::field::content_type], "application/json");
    EXPECT_EQ(ErrorCode(res), code);
    EXPECT_FALSE(json::parse(res.body()).at("error").at("message").as_string().empty());
  };
  expect(Post("/v1/batch", "{not json"), 400, "malformed_json");
  expect(Post("/v1/batch", R"({"batch":{}})"), 400, "invalid_batch");
  expect(Post("/v1/track", R"({"userId":"u"})"), 400, "missing_event");
  expect(Post("/v1/track", kTrack, {{"Authorization", Basic("nope")}}), 401, "unknown_write_key");
  expect(Post("/v1/track", kTrack, {}), 401, "missing_write_key");
  expect(Post("/v1/track", kTrack, {{"Authorization", "Basic !!!"}}), 401,
         "invalid_authorization");
  expect(Post("/v1/track", kTrack,
              {{"Authorization", Basic("wk")}, {"Origin", "https://evil.example"}}),
         403, "origin_not_allowed");
  expect(Send(http::verb::get, "/v1/nothing"), 404, "not_found");
  expect(Send(http::verb::get, "/"), 404, "not_found");
  Response get_batch = Send(http::verb::get, "/v1/batch");
  expect(get_batch, 405, "method_not_allowed");
  EXPECT_EQ(get_batch[http::field::allow], "POST, OPTIONS");
  Response form = Post("/v1/track", "event=E&userId=u",
                       {{"Authorization", Basic("wk")},
                        {"Content-Type", "application/x-www-form-urlencoded"}});
  expect(form, 400, "malformed_json");
  EXPECT_NE(form.body().find("declared application/x-www-form-urlencoded"), std::string::npos)
      << form.body();
  expect(Post("/v1/batch", std::string(limits_.max_request_bytes + 1, ' ')), 413,
         "payload_too_large");
  std::string big_message = R"({"event":"E","userId":"u","properties":{"x":")" +
                            std::string(limits_.max_message_bytes, 'x') + R"("}})";
  expect(Post("/v1/track", big_message), 413, "message_too_large");
  std::string many = R"({"batch":[)";
  for (std::size_t i = 0; i <= limits_.max_batch_messages; ++i) many += (i ? "," : "") + kTrack;
  expect(Post("/v1/batch", many + "]}"), 413, "batch_too_large");
  expect(Send(http::verb::get, "/v1/track", "", {{"X-Big", std::string(9000, 'h')}}), 431,
         "headers_too_large");
}

TEST_F(HttpTest, Cors) {
  // Preflight from an allowed origin: the exact origin is echoed, never "*" or "null".
  Response pre = Send(http::verb::options, "/v1/batch", "",
                      {{"Origin", "https://shop.example"},
                       {"Access-Control-Request-Method", "POST"},
                       {"Access-Control-Request-Headers", "content-type"}});
  EXPECT_EQ(pre.result_int(), 204);
  EXPECT_EQ(pre[http::field::access_control_allow_origin], "https://shop.example");
  EXPECT_EQ(pre[http::field::access_control_allow_credentials], "true");
  EXPECT_NE(pre[http::field::access_control_allow_methods].find("POST"), std::string::npos);
  EXPECT_EQ(pre[http::field::access_control_allow_headers], "content-type");
  EXPECT_NE(pre[http::field::vary].find("Origin"), std::string::npos);

  Response evil = Send(http::verb::options, "/v1/batch", "",
                       {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(evil.result_int(), 403);
  EXPECT_EQ(evil[http::field::access_control_allow_origin], "");

  Response null_origin = Send(http::verb::options, "/v1/batch", "",
                              {{"Origin", "null"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(null_origin.result_int(), 403);
  EXPECT_EQ(null_origin[http::field::access_control_allow_origin], "");

  // The actual request from the allowed origin.
  Response post = Post("/v1/batch", R"({"writeKey":"wk","batch":[)" + kTrack + "]}",
                       {{"Origin", "https://shop.example"}, {"Content-Type", "text/plain"}});
  EXPECT_EQ(post.result_int(), 200);
  EXPECT_EQ(post[http::field::access_control_allow_origin], "https://shop.example");
  EXPECT_EQ(post[http::field::vary], "Origin");

  // Site "limited" allows no origin at all.
  Response other = Post("/v1/track", kTrack,
                        {{"Authorization", Basic("wk2")}, {"Origin", "https://shop.example"}});
  EXPECT_EQ(other.result_int(), 403);
}

}  // namespace
}  // namespace cartwatch::collector::http_test
