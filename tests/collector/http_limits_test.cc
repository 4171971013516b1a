// HTTP integration tests of the limits and failures: rate limits, overload, timeouts,
// connection caps, framing, a full disk and failing syncs (the fixture: http_fixture.h).
#include "tests/collector/http_fixture.h"

namespace cartwatch::collector::http_test {
namespace {

TEST_F(HttpTest, RateLimitAnswers429WithRetryAfter) {
  auto headers = std::vector<std::pair<std::string, std::string>>{
      {"Authorization", Basic("wk2")}, {"Content-Type", "application/json"}};
  EXPECT_EQ(Post("/v1/track", kTrack, headers).result_int(), 200);
  Response limited = Post("/v1/track", kTrack, headers);
  EXPECT_EQ(limited.result_int(), 429);
  EXPECT_EQ(ErrorCode(limited), "rate_limited");
  EXPECT_GE(std::stoi(std::string(limited[http::field::retry_after])), 1);
  // Other sites are not affected.
  EXPECT_EQ(Post("/v1/track", kTrack).result_int(), 200);
}

TEST_F(HttpTest, OverloadedStoreAnswers503WithRetryAfter) {
  store_->overloaded = true;
  Response res = Post("/v1/track", kTrack);
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(ErrorCode(res), "overloaded");
  EXPECT_EQ(res[http::field::retry_after], "1");
  store_->overloaded = false;
  EXPECT_EQ(Post("/v1/track", kTrack).result_int(), 200);
}

TEST_F(HttpTest, SlowClientGets408AndOthersAreServed) {
  net::io_context ioc;
  tcp::socket slow(ioc);
  slow.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
  net::write(slow, net::buffer(std::string(
                       "POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")));
  // Another client is served while the slow one dawdles.
  EXPECT_EQ(Post("/v1/track", kTrack).result_int(), 200);
  beast::flat_buffer buffer;
  Response res;
  auto started = std::chrono::steady_clock::now();
  beast::error_code ec;
  http::read(slow, buffer, res, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(res.result_int(), 408);
  EXPECT_EQ(ErrorCode(res), "request_timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  // And the connection is closed afterwards.
  char byte;
  slow.read_some(net::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, net::error::eof);
}

TEST_F(HttpTest, TricklingClientStillGets408AtTheDeadline) {
  // One byte every 20 ms never lets a read sit idle, yet the whole request must arrive
  // within read_timeout (300 ms).
  net::io_context ioc;
  tcp::socket slow(ioc);
  slow.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
  std::string request =
      "POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n" +
      std::string(4000, ' ');
  auto started = std::chrono::steady_clock::now();
  beast::error_code ec;
  for (std::size_t i = 0; i < request.size() && !ec; ++i) {
    net::write(slow, net::buffer(&request[i], 1), ec);
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(3)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (slow.available(ec) > 0) break;  // the answer is there
  }
  beast::flat_buffer buffer;
  Response res;
  http::read(slow, buffer, res, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(res.result_int(), 408);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

TEST_F(HttpTest, ExpectContinueIsAnswered) {
  net::io_context ioc;
  tcp::socket client(ioc);
  client.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
  std::string body = kTrack;
  net::write(client, net::buffer("POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                                 Basic("wk") + "\r\nExpect: 100-continue\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n"));
  std::string interim(25, '\0');
  net::read(client, net::buffer(interim));
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  net::write(client, net::buffer(body));
  beast::flat_buffer buffer;
  Response res;
  http::read(client, buffer, res);
  EXPECT_EQ(res.result_int(), 200);
}

TEST_F(HttpTest, StopOutlastedByTheStoreDoesNotCrash) {
  // The store answers 2.5 s after the commit, past the 2 s grace period: Stop closes the
  // connection but must wait for the answer rather than destroy the event loop that the
  // answer is posted to.
  store_->answer_delay = std::chrono::milliseconds(2500);
  std::thread client([&] {
    try {
      Post("/v1/track", kTrack);
    } catch (const std::exception&) {
      // The connection may be closed at the end of the grace period: fine.
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  server_->Stop();
  client.join();
  store_->answer_delay = std::chrono::milliseconds(0);
  // What was acknowledged by the store is there, exactly once.
  auto page = store_->ReadEvents("shop", "", 100, SIZE_MAX);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->events.size(), 1u);
}

TEST_F(HttpTest, KeepAliveServesManyRequestsOnOneConnection) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
  for (int i = 0; i < 20; ++i) {
    http::request<http::string_body> req{http::verb::post, "/v1/track", 11};
    req.set(http::field::host, "x");
    req.set(http::field::authorization, Basic("wk"));
    req.body() = R"({"event":"E","userId":"u","messageId":"k)" + std::to_string(i) + R"("})";
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    Response res;
    http::read(stream, buffer, res);
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_TRUE(res.keep_alive());
  }
  EXPECT_EQ(Events().size(), 20u);
}

TEST_F(HttpTest, AdminHealthAndReadiness) {
  Response health = Send(http::verb::get, "/healthz", "", {}, true);
  EXPECT_EQ(health.result_int(), 200);
  Response ready = Send(http::verb::get, "/readyz", "", {}, true);
  EXPECT_EQ(ready.result_int(), 200);
  EXPECT_EQ(Send(http::verb::get, "/v1/events", "", {}, true).result_int(), 404);
  EXPECT_EQ(Send(http::verb::get, "/healthz").result_int(), 404);  // not on the public port
  store_->Close();
  Response closed = Send(http::verb::get, "/readyz", "", {}, true);
  EXPECT_EQ(closed.result_int(), 503);
  EXPECT_EQ(ErrorCode(closed), "not_ready");
}

TEST_F(HttpTest, StopClosesIdleConnectionsAndRefusesNewOnes) {
  net::io_context ioc;
  tcp::socket idle(ioc);
  idle.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
  auto port = server_->public_port();
  auto started = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  char byte;
  beast::error_code ec;
  idle.read_some(net::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
  tcp::socket late(ioc);
  late.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  EXPECT_TRUE(ec);
}

// RFC 9112 section 6.3: a Transfer-Encoding that does not end in chunked leaves the body's
// length unknown; reading on would store the body as a second, smuggled request.
TEST_F(HttpTest, AmbiguousTransferEncodingIsRefusedAndClosed) {
  const std::string smuggled =
      R"({"type":"track","event":"Smuggled","anonymousId":"a","messageId":"smuggled"})";
  const std::string inner = "POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: " + Basic("wk") +
                            "\r\nContent-Length: " + std::to_string(smuggled.size()) +
                            "\r\n\r\n" + smuggled;
  struct Case {
    std::string header;
    unsigned status;
    std::string code;
  };
  for (const Case& c : {Case{"Transfer-Encoding: identity", 400, "invalid_transfer_encoding"},
                        Case{"Transfer-Encoding: gzip", 400, "invalid_transfer_encoding"},
                        Case{"Transfer-Encoding: xchunked", 400, "invalid_transfer_encoding"},
                        Case{"Transfer-Encoding: chunked, identity", 400,
                             "invalid_transfer_encoding"},
                        // Beast's parser refuses a second field after chunked itself.
                        Case{"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity", 400,
                             "malformed_request"},
                        Case{"Transfer-Encoding: chunked, chunked", 400,
                             "invalid_transfer_encoding"},
                        Case{"Transfer-Encoding: gzip, chunked", 501,
                             "unsupported_transfer_encoding"}}) {
    std::vector<Response> answers =
        Raw("POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: " + Basic("wk") + "\r\n" +
            c.header + "\r\n\r\n" + inner);
    ASSERT_EQ(answers.size(), 1u) << c.header;  // one answer, then the connection closed
    EXPECT_EQ(answers[0].result_int(), c.status) << c.header;
    EXPECT_EQ(ErrorCode(answers[0]), c.code) << c.header;
    EXPECT_FALSE(answers[0].keep_alive());
  }
  // Content-Length beside Transfer-Encoding: refused too (Beast's parser).
  std::vector<Response> both =
      Raw("POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
          "chunked\r\n\r\n0\r\n\r\n" + inner);
  ASSERT_EQ(both.size(), 1u);
  EXPECT_EQ(both[0].result_int(), 400);
  for (const json::object& e : Events()) EXPECT_NE(e.at("messageId").as_string(), "smuggled");

  // A chunked body is read as one.
  std::string chunked = "POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: " + Basic("wk") +
                        "\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", kTrack.size());
  chunked += std::string(size) + "\r\n" + kTrack + "\r\n0\r\n\r\n";
  std::vector<Response> ok = Raw(chunked);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].result_int(), 200) << ok[0].body();
}

TEST_F(HttpTest, HostMustBeThereOnceAndAbsoluteTargetsAreServed) {
  const std::string auth = "Authorization: " + Basic("wk") + "\r\n";
  const std::string body = kTrack;
  const std::string length = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  std::vector<Response> missing = Raw("POST /v1/track HTTP/1.1\r\n" + auth + length + body);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].result_int(), 400);
  EXPECT_EQ(ErrorCode(missing[0]), "invalid_host");
  std::vector<Response> twice =
      Raw("POST /v1/track HTTP/1.1\r\nHost: a\r\nHost: b\r\n" + auth + length + body);
  ASSERT_EQ(twice.size(), 1u);
  EXPECT_EQ(twice[0].result_int(), 400);
  EXPECT_EQ(ErrorCode(twice[0]), "invalid_host");
  // HTTP/1.0 may leave Host out.
  std::vector<Response> old = Raw("POST /v1/track HTTP/1.0\r\n" + auth + length + body);
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].result_int(), 200) << old[0].body();
  // The absolute form a proxy sends (RFC 9112 section 3.2.2).
  std::vector<Response> absolute =
      Raw("POST http://collector.example/v1/track HTTP/1.1\r\nHost: collector.example\r\n"
          "Connection: close\r\n" + auth + length + body);
  ASSERT_EQ(absolute.size(), 1u);
  EXPECT_EQ(absolute[0].result_int(), 200) << absolute[0].body();
  std::vector<Response> admin =
      Raw("GET HTTP://127.0.0.1:9464/readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
          /*admin=*/true);
  ASSERT_EQ(admin.size(), 1u);
  EXPECT_EQ(admin[0].result_int(), 200) << admin[0].body();
  EXPECT_EQ(OriginFormTarget("http://h"), "/");
  EXPECT_EQ(OriginFormTarget("https://h:1?x=1"), "?x=1");
  EXPECT_EQ(OriginFormTarget("/v1/t"), "/v1/t");
}

// Every response body is valid JSON, hence valid UTF-8, whatever bytes the request held.
TEST_F(HttpTest, ErrorsQuotingTheRequestStayValidUtf8) {
  Response customer = Send(http::verb::get, "/v1/customers/%FF", "", {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(customer.result_int(), 400);
  EXPECT_EQ(ErrorCode(customer), "invalid_path");
  Response visitor = Send(http::verb::delete_, "/v1/customers/a%C3", "", {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(visitor.result_int(), 400);
  EXPECT_TRUE(util::IsValidUtf8(visitor.body()));
  std::vector<Response> raw = Raw("GET /v1/\xFF\xFEnothing HTTP/1.1\r\nHost: x\r\nOrigin: "
                                  "https://\xC3.example\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0].result_int(), 404);
  EXPECT_TRUE(util::IsValidUtf8(raw[0].body())) << raw[0].body();
  EXPECT_EQ(ErrorCode(raw[0]), "not_found");
  Response origin = Post("/v1/track", kTrack, {{"Authorization", Basic("wk")},
                                               {"Origin", "https://\xE2\x82.example"}});
  EXPECT_EQ(origin.result_int(), 403);
  EXPECT_TRUE(util::IsValidUtf8(origin.body())) << origin.body();
  EXPECT_EQ(ErrorCode(origin), "origin_not_allowed");
}

// A full disk: 503 with Retry-After (trackers retry it), /readyz 503 from the first failed
// write with RocksDB's words, and both back to normal by themselves once the disk takes
// writes again; nothing refused is half stored.
TEST_F(HttpTest, FullDiskAnswers503AndRecoversByItself) {
  ASSERT_EQ(Post("/v1/track", kTrack).result_int(), 200);
  faults_->SetDiskFull(true);
  Response full = Post("/v1/batch", R"({"batch":[{"type":"page","anonymousId":"a","messageId":"full"}]})");
  EXPECT_EQ(full.result_int(), 503) << full.body();
  EXPECT_EQ(ErrorCode(full), "storage_full");
  EXPECT_EQ(full[http::field::retry_after], "30");
  Response ready = Send(http::verb::get, "/readyz", "", {}, true);
  EXPECT_EQ(ready.result_int(), 503);
  json::object health = json::parse(ready.body()).as_object();
  EXPECT_EQ(health.at("status").as_string(), "not_ready");
  EXPECT_NE(std::string(health.at("write_failure").as_string()).find("No space"), std::string::npos)
      << ready.body();
  EXPECT_EQ(Send(http::verb::get, "/healthz", "", {}, true).result_int(), 200);  // alive

  faults_->SetDiskFull(false);
  int status = 0;
  for (int i = 0; i < 250 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    status = Send(http::verb::get, "/readyz", "", {}, true).result_int();
  }
  EXPECT_EQ(status, 200);
  Response again = Post("/v1/batch", R"({"batch":[{"type":"page","anonymousId":"a","messageId":"full"}]})");
  EXPECT_EQ(again.result_int(), 200) << again.body();
  std::size_t full_copies = 0;
  for (const json::object& e : Events()) full_copies += e.at("messageId").as_string() == "full";
  EXPECT_EQ(full_copies, 1u);
}

// A failing disk (every fsync fails with EIO, with storage.fsync on): 503
// storage_unavailable, /readyz 503 with RocksDB's words while the store is read-only, and
// both back by themselves once syncs succeed again (RocksDB is reopened: a failed log
// write leaves it read-only); the refused message sent again is stored once.
TEST_F(HttpTest, FailingSyncsAnswer503AndReadyzRecoversByItself) {
  store_options_.fsync = true;
  RestartStoreAndServer();
  ASSERT_EQ(Post("/v1/track", kTrack).result_int(), 200);
  faults_->SetSyncFailing(true);
  const std::string batch = R"({"batch":[{"type":"page","anonymousId":"a","messageId":"eio"}]})";
  Response failed = Post("/v1/batch", batch);
  EXPECT_EQ(failed.result_int(), 503) << failed.body();
  EXPECT_EQ(ErrorCode(failed), "storage_unavailable");
  EXPECT_FALSE(failed[http::field::retry_after].empty());
  Response ready = Send(http::verb::get, "/readyz", "", {}, true);
  EXPECT_EQ(ready.result_int(), 503);
  EXPECT_NE(ready.body().find("sync failed"), std::string::npos) << ready.body();
  EXPECT_EQ(Send(http::verb::get, "/healthz", "", {}, true).result_int(), 200);

  faults_->SetSyncFailing(false);
  int status = 0;
  for (int i = 0; i < 250 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    status = Send(http::verb::get, "/readyz", "", {}, true).result_int();
  }
  EXPECT_EQ(status, 200);
  Response again = Post("/v1/batch", batch);
  EXPECT_EQ(again.result_int(), 200) << again.body();
  std::size_t copies = 0;
  for (const json::object& e : Events()) copies += e.at("messageId").as_string() == "eio";
  EXPECT_EQ(copies, 1u);
}

// Idle connections past server.max_connections are closed at once, those within it are
// served, and the admin listener answers all the while.
TEST_F(HttpTest, ConnectionsPastTheCapAreClosedAtOnceAndAdminStillAnswers) {
  options_.max_connections = 20;
  options_.idle_timeout = std::chrono::seconds(30);
  RestartServer();
  net::io_context ioc;
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 20; ++i) {
    idle.emplace_back(ioc).connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // The 21st is accepted and closed: the client sees the end of the stream, not a hang.
  tcp::socket extra(ioc);
  extra.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
  const std::string request = "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n";
  beast::error_code ec;
  net::write(extra, net::buffer(request), ec);
  char byte;
  const auto started = std::chrono::steady_clock::now();
  extra.read_some(net::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  EXPECT_EQ(Send(http::verb::get, "/readyz", "", {}, true).result_int(), 200);
  // One of the 20 is served as usual.
  net::write(idle[0], net::buffer(request));
  beast::flat_buffer buffer;
  Response res;
  http::read(idle[0], buffer, res);
  EXPECT_EQ(res.result_int(), 404);
  // Once some close, new connections are served again.
  for (int i = 1; i < 6; ++i) idle[i].close();
  int status = 0;
  for (int i = 0; i < 100 && status != 404; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    try {
      status = Send(http::verb::get, "/v1/nothing").result_int();
    } catch (const std::exception&) {
      status = 0;
    }
  }
  EXPECT_EQ(status, 404);
}

// Bodies being received share Limits::max_receiving_bytes: past it a request is answered
// 503 with Retry-After from its header alone, before its body is read; once the others
// are done, the same request is served.
TEST_F(HttpTest, BodiesPastTheReceivingBudgetAre503BeforeBeingRead) {
  limits_.max_receiving_bytes = 100 * 1024;
  options_.read_timeout = std::chrono::seconds(5);
  RestartServer();
  net::io_context ioc;
  auto stall = [&](std::size_t length) {
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
    net::write(s, net::buffer("POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: " + Basic("wk") +
                              "\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n{"));
    return s;
  };
  tcp::socket first = stall(60 * 1024);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  tcp::socket second = stall(60 * 1024);
  beast::flat_buffer buffer;
  Response res;
  http::read(second, buffer, res);
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(ErrorCode(res), "overloaded");
  EXPECT_EQ(res[http::field::retry_after], "1");
  // A small request still fits beside the stalled one.
  EXPECT_EQ(Post("/v1/track", kTrack).result_int(), 200);
  first.close();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string big = R"({"batch":[)";
  for (int i = 0; i < 50; ++i) {
    big += std::string(i ? "," : "") + R"({"type":"page","anonymousId":"a","properties":{"p":")" +
           std::string(1000, 'x') + R"("}})";
  }
  Response served = Post("/v1/batch", big + "]}");
  EXPECT_EQ(served.result_int(), 200) << served.body();
}

// An unknown write key in the Authorization header is refused before the body is read:
// a client without a key cannot make the collector hold its megabytes.
TEST_F(HttpTest, UnknownWriteKeyIsRefusedBeforeTheBody) {
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->public_port()));
  net::write(s, net::buffer("POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                            Basic("nope") + "\r\nContent-Length: 60000\r\n\r\n{"));
  beast::flat_buffer buffer;
  Response res;
  http::read(s, buffer, res);  // answered without the 60,000 bytes
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(ErrorCode(res), "unknown_write_key");
  EXPECT_FALSE(res.keep_alive());
}

// One client over limits.client_rate_limit gets 429 without using up its site's own limit,
// so the site's other clients are still accepted; behind a trusted proxy the client is
// the address X-Forwarded-For names.
TEST_F(HttpTest, OneClientCannotUseUpItsSitesRateLimit) {
  limits_.client_rate_limit = 2;
  limits_.client_rate_burst = 2;
  limits_.trusted_proxies = {"127.0.0.1"};
  sites_.push_back(Site{.name = "busy", .write_key = "wk3", .secret_key = "sk3",
                        .allowed_origins = {}, .rate_limit = 0.01, .rate_burst = 5});
  RestartServer();
  auto post_as = [&](const std::string& client) {
    return Post("/v1/track", kTrack,
                {{"Authorization", Basic("wk3")}, {"X-Forwarded-For", client}});
  };
  int accepted = 0;
  for (int i = 0; i < 10; ++i) {
    Response res = post_as("198.51.100.66");
    if (res.result_int() == 200) {
      ++accepted;
      continue;
    }
    EXPECT_EQ(res.result_int(), 429);
    EXPECT_EQ(ErrorCode(res), "client_rate_limited");
    EXPECT_FALSE(res[http::field::retry_after].empty());
  }
  EXPECT_EQ(accepted, 2);
  // The site's bucket (5) lost only the abuser's 2: three other clients still get in.
  for (const char* other : {"198.51.100.1", "198.51.100.2", "198.51.100.3"}) {
    EXPECT_EQ(post_as(other).result_int(), 200) << other;
  }
  Response site_limited = post_as("198.51.100.4");
  EXPECT_EQ(site_limited.result_int(), 429);
  EXPECT_EQ(ErrorCode(site_limited), "rate_limited");
  // The header from an untrusted peer is ignored: restarted without trusted proxies, every
  // request is loopback's own.
  limits_.trusted_proxies.clear();
  RestartServer();
  EXPECT_EQ(Post("/v1/track", kTrack, {{"Authorization", Basic("wk")}, {"X-Forwarded-For", "1.1.1.1"}}).result_int(), 200);
  EXPECT_EQ(Post("/v1/track", kTrack, {{"Authorization", Basic("wk")}, {"X-Forwarded-For", "2.2.2.2"}}).result_int(), 200);
  EXPECT_EQ(Post("/v1/track", kTrack, {{"Authorization", Basic("wk")}, {"X-Forwarded-For", "3.3.3.3"}}).result_int(), 429);
}

}  // namespace
}  // namespace cartwatch::collector::http_test
