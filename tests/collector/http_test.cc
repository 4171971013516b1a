// Integration tests: the real Server on 127.0.0.1:0 with a real RocksDB in a temp dir,
// spoken to over loopback HTTP.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>

#include "collector/gzip.h"
#include "collector/server.h"
#include "metrics/metrics.h"
#include "collector/session.h"
#include "storage/fault_injection.h"
#include "storage/store.h"
#include "util/base64.h"
#include "util/time.h"
#include "util/utf8.h"

namespace cartwatch::collector {
namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Response = http::response<http::string_body>;

std::string Basic(const std::string& key) { return "Basic " + util::Base64Encode(key + ":"); }

std::string Gzip(const std::string& in) {
  z_stream zs{};
  deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// Wraps the real store; when `overloaded` is set, refuses appends as a stalled RocksDB would.
class SwitchableStore final : public storage::Store {
 public:
  explicit SwitchableStore(std::unique_ptr<storage::Store> real) : real_(std::move(real)) {}
  void Append(std::string site, std::vector<storage::Message> messages,
              storage::AppendCallback done) override {
    if (overloaded) return done({.error = storage::Errc::kOverloaded});
    if (auto delay = answer_delay.load(); delay.count() > 0) {
      // A store that commits but answers late, as RocksDB does during a write stall.
      real_->Append(std::move(site), std::move(messages),
                    [this, delay, done = std::move(done)](const storage::AppendResult& r) {
                      late_.emplace_back([delay, done, r] {
                        std::this_thread::sleep_for(delay);
                        done(r);
                      });
                    });
      return;
    }
    real_->Append(std::move(site), std::move(messages), std::move(done));
  }
  ~SwitchableStore() override { JoinLate(); }
  // Waits for the late answers. Their callbacks may hold the last reference to a session,
  // which must go before the server that owns its context: call it before the server is
  // destroyed (once no more appends come).
  void JoinLate() {
    for (auto& t : late_) {
      if (t.joinable()) t.join();
    }
  }
  void Flush() override { real_->Flush(); }
  void SetFlushRequester(storage::FlushRequester* requester) override {
    real_->SetFlushRequester(requester);
  }
  boost::system::error_code DeleteEventsBefore(std::int64_t before) override {
    return real_->DeleteEventsBefore(before);
  }
  boost::system::result<storage::EventPage> ReadEvents(std::string_view site,
                                                       std::string_view after, std::size_t limit,
                                                       std::size_t max_bytes) override {
    return real_->ReadEvents(site, after, limit, max_bytes);
  }
  void EraseCustomer(std::string site, std::string user_id,
                     storage::EraseCallback done) override {
    real_->EraseCustomer(std::move(site), std::move(user_id), std::move(done));
  }
  boost::system::error_code PurgeErasedEvents() override { return real_->PurgeErasedEvents(); }
  boost::system::result<std::optional<profiles::Visitor>> ReadVisitor(
      std::string_view site, std::string_view id) override {
    return real_->ReadVisitor(site, id);
  }
  boost::system::result<std::optional<profiles::Customer>> ReadCustomer(
      std::string_view site, std::string_view id) override {
    return real_->ReadCustomer(site, id);
  }
  boost::system::result<std::optional<profiles::SiteThresholds>> ReadThresholds(
      std::string_view site) override {
    return real_->ReadThresholds(site);
  }
  boost::system::error_code RecomputeThresholds(util::EpochMs now) override {
    return real_->RecomputeThresholds(now);
  }
  const profiles::Options& profile_options() const override { return real_->profile_options(); }
  boost::system::error_code CheckWritable() override { return real_->CheckWritable(); }
  RuleFigures GetRuleFigures() override { return real_->GetRuleFigures(); }
  StorageFigures GetStorageFigures() override { return real_->GetStorageFigures(); }
  boost::system::result<std::vector<storage::DueDelivery>> ReadDueDeliveries(
      std::string_view endpoint, std::int64_t now, std::size_t limit,
      const std::set<std::uint64_t>& skip, storage::DueCursor* cursor) override {
    return real_->ReadDueDeliveries(endpoint, now, limit, skip, cursor);
  }
  boost::system::result<std::vector<std::string>> ReadDisabledEndpoints() override {
    return real_->ReadDisabledEndpoints();
  }
  void ChangeDeliveries(storage::DeliveryChange change, storage::DeliveryCallback done,
                        bool own_thread) override {
    real_->ChangeDeliveries(std::move(change), std::move(done), own_thread);
  }
  storage::FireResult FireDueTimers(std::int64_t now, std::size_t limit) override {
    return real_->FireDueTimers(now, limit);
  }
  boost::system::result<storage::DeliveryList> ReadDeliveries(std::string_view site,
                                                              std::string_view status,
                                                              std::string_view after,
                                                              std::size_t limit) override {
    return real_->ReadDeliveries(site, status, after, limit);
  }
  boost::system::result<storage::PersonRules> ReadPersonRules(std::string_view site,
                                                              std::string_view user_id,
                                                              std::size_t max_actions) override {
    return real_->ReadPersonRules(site, user_id, max_actions);
  }
  Health GetHealth() override { return real_->GetHealth(); }
  boost::system::error_code Checkpoint(const std::string& dir) override {
    return real_->Checkpoint(dir);
  }
  void Close() override { real_->Close(); }
  std::atomic<bool> overloaded{false};
  std::atomic<std::chrono::milliseconds> answer_delay{std::chrono::milliseconds(0)};

 private:
  std::unique_ptr<storage::Store> real_;
  std::vector<std::thread> late_;  // touched by the committing thread only
};

// promtool: $PROMTOOL, else build/tools/promtool, else on the PATH; empty when none (an
// error when CARTWATCH_REQUIRE_PROMTOOL is set, as on CI).
std::string FindPromtool() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("PROMTOOL")) candidates.emplace_back(env);
  candidates.emplace_back(CARTWATCH_TOOLS_DIR "/promtool");
  if (const char* path = std::getenv("PATH")) {
    std::istringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) candidates.push_back(dir + "/promtool");
  }
  for (const std::string& c : candidates) {
    if (!c.empty() && access(c.c_str(), X_OK) == 0) return c;
  }
  EXPECT_EQ(std::getenv("CARTWATCH_REQUIRE_PROMTOOL"), nullptr)
      << "no promtool: scripts/install-deps.sh --test puts it in build/tools/promtool";
  return "";
}

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cartwatch-http-test-" + std::to_string(std::random_device{}()));
    store_options_.data_dir = dir_.string();
    store_options_.faults = faults_;
    store_options_.recovery_interval = std::chrono::milliseconds(20);
    OpenStore();

    ServerOptions& options = options_;
    options.listen = "127.0.0.1:0";
    options.admin_listen = "127.0.0.1:0";
    options.io_threads = 2;
    options.read_timeout = std::chrono::milliseconds(300);
    options.shutdown_grace = std::chrono::seconds(2);
    limits_.max_request_bytes = 64 * 1024;
    limits_.max_message_bytes = 8 * 1024;
    limits_.max_batch_messages = 100;
    Site shop{.name = "shop",
              .write_key = "wk",
              .secret_key = "sk",
              .allowed_origins = {"https://shop.example"}};
    Site limited{.name = "limited", .write_key = "wk2", .secret_key = "sk2",
                 .allowed_origins = {}, .rate_limit = 0.01,
                 .rate_burst = 1};
    sites_ = {shop, limited};
    server_ = Server::Start(options, limits_, sites_, *store_, &metrics_);
  }

  void OpenStore() {
    std::string error;
    auto opened = storage::Store::Open(store_options_, &error);
    ASSERT_TRUE(opened.has_value()) << error;
    store_ = std::make_unique<SwitchableStore>(std::move(*opened));
  }

  // Opens the store again with store_options_ as the test changed them, and the server.
  void RestartStoreAndServer() {
    if (store_) store_->JoinLate();
    server_.reset();
    store_.reset();
    OpenStore();
    RestartServer();
  }

  // Starts the server again with options_ and limits_ as the test changed them.
  void RestartServer() {
    server_.reset();
    server_ = Server::Start(options_, limits_, sites_, *store_, &metrics_);
  }

  void TearDown() override {
    if (store_) store_->JoinLate();
    server_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  Response Send(http::verb method, const std::string& target, const std::string& body = "",
                std::vector<std::pair<std::string, std::string>> headers = {},
                bool admin = false) {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                 admin ? server_->admin_port() : server_->public_port()));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() || method == http::verb::post) req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    Response res;
    http::read(stream, buffer, res);
    return res;
  }

  Response Post(const std::string& target, const std::string& body,
                std::vector<std::pair<std::string, std::string>> headers = {
                    {"Authorization", Basic("wk")}, {"Content-Type", "application/json"}}) {
    return Send(http::verb::post, target, body, std::move(headers));
  }

  std::vector<json::object> Events(const std::string& secret = "sk") {
    Response res = Send(http::verb::get, "/v1/events?limit=10000", "",
                        {{"Authorization", "Bearer " + secret}});
    EXPECT_EQ(res.result_int(), 200) << res.body();
    std::vector<json::object> out;
    std::istringstream lines(res.body());
    for (std::string line; std::getline(lines, line);) {
      out.push_back(json::parse(line).as_object());
    }
    return out;
  }

  // Writes `bytes` as they are on a new connection and reads until the server closes it
  // (or 5 s pass): every response it sent, parsed in order.
  std::vector<Response> Raw(const std::string& bytes, bool admin = false) {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                 admin ? server_->admin_port() : server_->public_port()));
    net::write(stream, net::buffer(bytes));
    stream.expires_after(std::chrono::seconds(5));
    beast::flat_buffer buffer;
    std::vector<Response> responses;
    for (;;) {
      Response res;
      beast::error_code ec;
      http::read(stream, buffer, res, ec);
      if (ec) break;
      responses.push_back(std::move(res));
    }
    return responses;
  }

  static std::string ErrorCode(const Response& res) {
    auto v = json::parse(res.body());
    return std::string(v.at("error").at("code").as_string());
  }

  fs::path dir_;
  ServerOptions options_;
  std::vector<Site> sites_;
  std::shared_ptr<storage::FaultInjection> faults_ = std::make_shared<storage::FaultInjection>();
  storage::StoreOptions store_options_;
  Limits limits_;
  std::unique_ptr<SwitchableStore> store_;
  metrics::Metrics metrics_;  // before server_: the server records into it
  std::unique_ptr<Server> server_;
};

const std::string kTrack =
    R"({"type":"track","event":"Product Added","anonymousId":"a1","messageId":"m1",)"
    R"("properties":{"sku":"S-1","price":9.5}})";

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

TEST_F(HttpTest, BatchIsStoredAndExported) {
  Response res = Post("/v1/batch", R"({"batch":[)" + kTrack +
                                       R"(,{"type":"page","name":"Home","userId":"u1","messageId":"m2"}]})");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(json::parse(res.body()), json::parse(R"({"success":true})"));

  auto events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].at("messageId"), "m1");
  EXPECT_EQ(events[0].at("event"), "Product Added");
  EXPECT_EQ(events[0].at("properties").at("price").as_double(), 9.5);
  EXPECT_TRUE(events[0].contains("receivedAt"));
  EXPECT_TRUE(events[0].contains("timestamp"));
  EXPECT_EQ(events[1].at("messageId"), "m2");
  EXPECT_EQ(events[1].at("type"), "page");
}

TEST_F(HttpTest, EventsPagesWithCursor) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Post("/v1/track", R"({"event":"E","userId":"u","messageId":"p)" +
                                    std::to_string(i) + R"("})")
                  .result_int(),
              200);
  }
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    Response res = Send(http::verb::get, "/v1/events?limit=2&after=" + cursor, "",
                        {{"Authorization", "Bearer sk"}});
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_EQ(res[http::field::content_type], "application/x-ndjson");
    cursor = std::string(res["Cartwatch-Cursor"]);
    if (res.body().empty()) break;
    std::istringstream lines(res.body());
    for (std::string line; std::getline(lines, line);) {
      seen.push_back(std::string(json::parse(line).at("messageId").as_string()));
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4"}));
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
  // is sent.
  auto send_five = [&](std::string_view tag, std::chrono::milliseconds apart) {
    net::io_context ioc;
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
      std::this_thread::sleep_for(apart);
    }
    for (auto& stream : streams) {
      beast::flat_buffer buffer;
      Response res;
      http::read(*stream, buffer, res);
      EXPECT_EQ(res.result_int(), 200) << res.body();
    }
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
  send_five("delayed-", std::chrono::milliseconds(2));  // all within the 100 ms
  EXPECT_EQ(rounds(), std::pair(1.0, 5.0));

  options_.commit_delay_us = 0;
  RestartServer();
  send_five("at-once-", std::chrono::milliseconds(30));
  // Five rounds more, of one message each (at least three on a slow machine, where a
  // request may wait for the loop past the next one's arrival).
  const auto [count, sum] = rounds();
  EXPECT_GE(count, 4.0);
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

TEST_F(HttpTest, EventsNeedsTheSecretKeyAndValidParameters) {
  Response none = Send(http::verb::get, "/v1/events");
  EXPECT_EQ(none.result_int(), 401);
  EXPECT_EQ(ErrorCode(none), "missing_secret_key");
  EXPECT_EQ(none[http::field::www_authenticate], "Bearer");
  Response write_key = Send(http::verb::get, "/v1/events", "", {{"Authorization", "Bearer wk"}});
  EXPECT_EQ(write_key.result_int(), 401);
  EXPECT_EQ(ErrorCode(write_key), "unknown_secret_key");
  for (std::string q : {"limit=0", "limit=abc", "limit=10001", "limit=-1"}) {
    Response bad = Send(http::verb::get, "/v1/events?" + q, "", {{"Authorization", "Bearer sk"}});
    EXPECT_EQ(bad.result_int(), 400) << q;
    EXPECT_EQ(ErrorCode(bad), "invalid_limit");
  }
  Response cursor =
      Send(http::verb::get, "/v1/events?after=zzz", "", {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(cursor.result_int(), 400);
  EXPECT_EQ(ErrorCode(cursor), "invalid_cursor");
  // Each site sees only its own events.
  EXPECT_EQ(Post("/v1/track", kTrack).result_int(), 200);
  EXPECT_EQ(Events("sk").size(), 1u);
  EXPECT_EQ(Events("sk2").size(), 0u);
}

TEST_F(HttpTest, CustomerAndVisitorDocumentsFollowTheEvents) {
  const std::string now = util::FormatIso8601(util::NowMs() - 60'000);
  Response res = Post("/v1/batch", R"({"batch":[
    {"type":"page","anonymousId":"a1","messageId":"q1","timestamp":")" + now + R"(",
     "context":{"page":{"url":"https://shop.example/?utm_source=news&utm_campaign=nov","title":"Home"}}},
    {"type":"track","event":"Product Added","anonymousId":"a1","messageId":"q2","timestamp":")" + now + R"(",
     "properties":{"product_id":"sock","price":4.5,"quantity":3,"currency":"EUR"}},
    {"type":"identify","anonymousId":"a1","userId":"ada","messageId":"q3","timestamp":")" + now + R"(",
     "traits":{"email":"ada@example.com","firstName":"Ada"}}]})");
  ASSERT_EQ(res.result_int(), 200) << res.body();

  Response customer = Send(http::verb::get, "/v1/customers/ada", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(customer.result_int(), 200) << customer.body();
  EXPECT_EQ(customer[http::field::content_type], "application/json");
  json::value c = json::parse(customer.body());
  EXPECT_EQ(c.at("user_id"), "ada");
  EXPECT_EQ(c.at("traits").at("email"), "ada@example.com");
  EXPECT_EQ(c.at("traits").at("first_name"), "Ada");
  EXPECT_EQ(c.at("anonymous_ids"), json::parse(R"(["a1"])"));
  EXPECT_EQ(c.at("cart").at("items"), 3);
  EXPECT_EQ(c.at("cart").at("value").as_double(), 13.5);
  EXPECT_EQ(c.at("cart").at("currency"), "EUR");
  EXPECT_EQ(c.at("stats").at("orders"), 0);
  EXPECT_EQ(c.at("stats").at("visits_last_30_days"), 1);

  Response visitor = Send(http::verb::get, "/v1/visitors/a1", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(visitor.result_int(), 200) << visitor.body();
  json::value v = json::parse(visitor.body());
  EXPECT_EQ(v.at("user_id"), "ada");
  EXPECT_EQ(v.at("cart").at("items"), 3);  // the linked customer's cart
  ASSERT_EQ(v.at("sessions").as_array().size(), 1u);
  EXPECT_EQ(v.at("sessions").at(0).at("utm").at("source"), "news");
  EXPECT_EQ(v.at("sessions").at(0).at("landing_page").at("title"), "Home");

  // Ids are percent-decoded path segments.
  ASSERT_EQ(Post("/v1/identify", R"({"userId":"a/b c","messageId":"q4"})").result_int(), 200);
  EXPECT_EQ(Send(http::verb::get, "/v1/customers/a%2Fb%20c", "", {{"Authorization", "Bearer sk"}})
                .result_int(),
            200);
}

TEST_F(HttpTest, ProfileApiErrors) {
  ASSERT_EQ(Post("/v1/track", kTrack).result_int(), 200);  // visitor a1 of site shop
  Response none = Send(http::verb::get, "/v1/visitors/a1");
  EXPECT_EQ(none.result_int(), 401);
  EXPECT_EQ(ErrorCode(none), "missing_secret_key");
  EXPECT_EQ(none[http::field::www_authenticate], "Bearer");
  Response wrong = Send(http::verb::delete_, "/v1/customers/u1", "", {{"Authorization", "Bearer wk"}});
  EXPECT_EQ(wrong.result_int(), 401);
  EXPECT_EQ(ErrorCode(wrong), "unknown_secret_key");

  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer sk"}};
  Response unknown = Send(http::verb::get, "/v1/customers/nobody", "", auth);
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_EQ(ErrorCode(unknown), "customer_not_found");
  Response unknown_visitor = Send(http::verb::get, "/v1/visitors/nobody", "", auth);
  EXPECT_EQ(unknown_visitor.result_int(), 404);
  EXPECT_EQ(ErrorCode(unknown_visitor), "visitor_not_found");
  // Another site's secret key sees none of this site's people.
  Response other = Send(http::verb::get, "/v1/visitors/a1", "", {{"Authorization", "Bearer sk2"}});
  EXPECT_EQ(other.result_int(), 404);
  EXPECT_EQ(Send(http::verb::get, "/v1/visitors/a1", "", auth).result_int(), 200);

  Response escape = Send(http::verb::get, "/v1/customers/a%zz", "", auth);
  EXPECT_EQ(escape.result_int(), 400);
  EXPECT_EQ(ErrorCode(escape), "invalid_path");
  for (std::string target : {"/v1/customers/", "/v1/customers/a/b", "/v1/visitors/"}) {
    Response missing = Send(http::verb::get, target, "", auth);
    EXPECT_EQ(missing.result_int(), 404) << target;
    EXPECT_EQ(ErrorCode(missing), "not_found") << target;
  }
  Response post = Send(http::verb::post, "/v1/customers/u1", "{}", auth);
  EXPECT_EQ(post.result_int(), 405);
  EXPECT_EQ(post[http::field::allow], "GET, DELETE, OPTIONS");
  Response del = Send(http::verb::delete_, "/v1/visitors/a1", "", auth);
  EXPECT_EQ(del.result_int(), 405);
  EXPECT_EQ(del[http::field::allow], "GET, OPTIONS");
}

TEST_F(HttpTest, DeleteCustomerErasesTheProfileAndItsEvents) {
  ASSERT_EQ(Post("/v1/batch", R"({"batch":[
    {"type":"track","event":"Product Added","anonymousId":"eve-phone","messageId":"e1","properties":{"sku":"S"}},
    {"type":"identify","anonymousId":"eve-phone","userId":"eve","messageId":"e2","traits":{"email":"eve@example.com"}},
    {"type":"page","anonymousId":"bob-laptop","messageId":"b1"}]})")
                .result_int(),
            200);
  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer sk"}};
  Response erased = Send(http::verb::delete_, "/v1/customers/eve", "", auth);
  ASSERT_EQ(erased.result_int(), 202) << erased.body();
  EXPECT_EQ(json::parse(erased.body()),
            json::parse(R"({"success":true,"user_id":"eve","found":true,"visitors_erased":1})"));
  EXPECT_EQ(Send(http::verb::get, "/v1/customers/eve", "", auth).result_int(), 404);
  EXPECT_EQ(Send(http::verb::get, "/v1/visitors/eve-phone", "", auth).result_int(), 404);
  EXPECT_EQ(Send(http::verb::get, "/v1/visitors/bob-laptop", "", auth).result_int(), 200);

  ASSERT_FALSE(store_->PurgeErasedEvents());  // what the store's own thread does at once
  auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("messageId"), "b1");

  // Erasing again is not an error: there is nothing left.
  Response again = Send(http::verb::delete_, "/v1/customers/eve", "", auth);
  EXPECT_EQ(again.result_int(), 202);
  EXPECT_EQ(json::parse(again.body()).at("found"), false);
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

// A pretty-printed body is exported one message per line.
TEST_F(HttpTest, PrettyPrintedBodyExportsOneJsonDocumentPerLine) {
  const std::string body =
      "{\n  \"batch\": [\n    {\n      \"type\": \"track\",\n      \"event\": \"Product Added\",\n"
      "      \"anonymousId\": \"pretty\",\n      \"properties\": {\n        \"name\": \"Shoe \\ud83d\"\n"
      "      }\n    },\n    {\"type\": \"page\", \"anonymousId\": \"pretty\",\n \"properties\": {\"p\":\n"
      + std::string(40, '[') + std::string(40, ']') + "}}\n  ]\n}\n";
  Response res = Post("/v1/batch", body);
  ASSERT_EQ(res.result_int(), 200) << res.body();
  json::object answer = json::parse(res.body()).as_object();
  EXPECT_EQ(answer.at("accepted").as_int64(), 1);
  EXPECT_EQ(answer.at("rejected").at(0).at("code").as_string(), "too_deep");
  Response page = Send(http::verb::get, "/v1/events", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(page.result_int(), 200);
  std::istringstream lines(page.body());
  std::size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    json::object e = json::parse(line).as_object();
    EXPECT_EQ(e.at("properties").at("name").as_string(), "Shoe \xEF\xBF\xBD");
  }
  EXPECT_EQ(n, 1u) << page.body();
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

// GET /v1/deliveries: the rule engine's actions, secret key only, by status, paged with the
// cursor; a bad status, limit or cursor is a 400 naming the parameter.
TEST_F(HttpTest, DeliveriesListsTheRuleEnginesActions) {
  rules::RuleSet set;
  set.rules.push_back(rules::Rule{
      .name = "abandoned",
      .kind = rules::Kind::kAbandonedCart,
      .stages = {rules::Stage{.after = 3600 * 1000, .task = true, .email = true, .email_template = "abandoned_cart"}}});
  store_options_.rules = set;
  store_options_.timer_tick = std::chrono::milliseconds(0);  // fired by the test
  RestartStoreAndServer();
  ASSERT_EQ(Post("/v1/batch", R"({"batch":[
      {"type":"identify","anonymousId":"d1","userId":"anna","messageId":"i1","traits":{"name":"Anna"}},
      {"type":"track","userId":"anna","event":"Product Added","messageId":"t1",
       "properties":{"product_id":"p1","name":"Boots","price":80,"quantity":1,"currency":"EUR"}}]})")
                .result_int(),
            200);
  const storage::FireResult fired = store_->FireDueTimers(util::NowMs() + 2 * 3600 * 1000, 1000);
  ASSERT_FALSE(fired.error);
  EXPECT_EQ(fired.actions, 2u);

  EXPECT_EQ(Send(http::verb::get, "/v1/deliveries").result_int(), 401);
  Response all = Send(http::verb::get, "/v1/deliveries", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(all.result_int(), 200) << all.body();
  EXPECT_EQ(all[http::field::content_type], "application/json");
  json::object page = json::parse(all.body()).as_object();
  const json::array& list = page.at("deliveries").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("type").as_string(), "task.created");
  EXPECT_EQ(list[0].at("status").as_string(), "pending");
  EXPECT_EQ(list[0].at("data").at("cart").at("lines").at(0).at("name").as_string(), "Boots");
  EXPECT_EQ(list[1].at("type").as_string(), "email.triggered");
  EXPECT_EQ(list[1].at("status").as_string(), "skipped");  // no e-mail address
  EXPECT_EQ(list[1].at("reason").as_string(), "no_email_address");
  EXPECT_EQ(page.at("next_cursor").as_string(), list[1].at("id").as_string());

  Response skipped = Send(http::verb::get, "/v1/deliveries?status=skipped", "",
                          {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(json::parse(skipped.body()).at("deliveries").as_array().size(), 1u);
  Response first = Send(http::verb::get, "/v1/deliveries?limit=1", "", {{"Authorization", "Bearer sk"}});
  const std::string cursor(json::parse(first.body()).at("next_cursor").as_string());
  Response rest = Send(http::verb::get, "/v1/deliveries?after=" + cursor, "",
                       {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(json::parse(rest.body()).at("deliveries").as_array().size(), 1u);

  Response bad_status = Send(http::verb::get, "/v1/deliveries?status=lost", "",
                             {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(bad_status.result_int(), 400);
  EXPECT_EQ(ErrorCode(bad_status), "invalid_status");
  EXPECT_EQ(ErrorCode(Send(http::verb::get, "/v1/deliveries?after=zzz", "",
                           {{"Authorization", "Bearer sk"}})),
            "invalid_cursor");
  EXPECT_EQ(ErrorCode(Send(http::verb::get, "/v1/deliveries?limit=0", "",
                           {{"Authorization", "Bearer sk"}})),
            "invalid_limit");
  // The delivery routes: secret key, POST only, JSON errors for unknown ids and names.
  const std::string task_id(list[0].at("id").as_string());
  EXPECT_EQ(Send(http::verb::post, "/v1/deliveries/" + task_id + "/retry").result_int(), 401);
  Response get_retry = Send(http::verb::get, "/v1/deliveries/" + task_id + "/retry", "",
                            {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(get_retry.result_int(), 405);
  EXPECT_EQ(get_retry[http::field::allow], "POST, OPTIONS");
  Response unknown = Send(http::verb::post, "/v1/deliveries/act_00000000000000ff/retry", "",
                          {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_EQ(ErrorCode(unknown), "delivery_not_found");
  // No endpoint is configured: the task has no delivery to retry.
  EXPECT_EQ(ErrorCode(Send(http::verb::post, "/v1/deliveries/" + task_id + "/retry", "",
                           {{"Authorization", "Bearer sk"}})),
            "delivery_not_found");
  EXPECT_EQ(ErrorCode(Send(http::verb::post, "/v1/deliveries/act_%zz/retry", "",
                           {{"Authorization", "Bearer sk"}})),
            "invalid_path");
  Response endpoint = Send(http::verb::post, "/v1/endpoints/crm/enable", "",
                           {{"Authorization", "Bearer sk"}});
  EXPECT_EQ(endpoint.result_int(), 404);
  EXPECT_EQ(ErrorCode(endpoint), "endpoint_not_found");

  // Counted for Prometheus.
  const std::string metrics = Send(http::verb::get, "/metrics", "", {}, true).body();
  EXPECT_NE(metrics.find(R"(cartwatch_http_requests_total{code="404",route="endpoints"} 1)"),
            std::string::npos);
  EXPECT_NE(metrics.find(R"(cartwatch_http_requests_total{code="404",route="deliveries"} 2)"),
            std::string::npos);
  EXPECT_NE(metrics.find("cartwatch_rule_timers_armed_total 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("cartwatch_rule_timers_due_total{outcome=\"fired\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("cartwatch_rule_fired_total{rule=\"abandoned\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find(R"(cartwatch_rule_actions_total{status="pending",type="task.created"} 1)"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(cartwatch_rule_actions_total{status="skipped",type="email.triggered"} 1)"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(cartwatch_rule_actions_total{status="pending",type="email.triggered"} 0)"),
            std::string::npos) << metrics;
  // The customer's document shows them too.
  Response anna = Send(http::verb::get, "/v1/customers/anna", "", {{"Authorization", "Bearer sk"}});
  ASSERT_EQ(anna.result_int(), 200) << anna.body();
  json::object doc = json::parse(anna.body()).as_object();
  EXPECT_EQ(doc.at("user_id").as_string(), "anna");
  EXPECT_TRUE(doc.at("rules").at("pending_timers").as_array().empty());  // the one stage fired
  EXPECT_EQ(doc.at("rules").at("last_actions").as_array().size(), 2u);
  // Another site's secret sees its own outbox: empty.
  Response other = Send(http::verb::get, "/v1/deliveries", "", {{"Authorization", "Bearer sk2"}});
  EXPECT_TRUE(json::parse(other.body()).at("deliveries").as_array().empty());
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

// A backup: POST /checkpoint on the admin listener writes a consistent copy that opens as
// a data directory of its own with every message acknowledged before it, and none after.
TEST_F(HttpTest, CheckpointIsABackupThatOpensOnItsOwn) {
  const std::string before =
      R"({"batch":[{"type":"page","anonymousId":"a","messageId":"before-1"},)"
      R"({"type":"page","anonymousId":"a","messageId":"before-2"}]})";
  ASSERT_EQ(Post("/v1/batch", before).result_int(), 200);
  const fs::path copy = dir_.string() + "-checkpoint";
  Response made = Send(http::verb::post, "/checkpoint?dir=" + copy.string(), "", {}, true);
  ASSERT_EQ(made.result_int(), 200) << made.body();
  EXPECT_EQ(json::parse(made.body()).at("checkpoint").as_string(), copy.string());
  ASSERT_EQ(Post("/v1/batch",
                 R"({"batch":[{"type":"page","anonymousId":"a","messageId":"after-1"}]})")
                .result_int(),
            200);
  // Refused: the same directory again, a relative one, none, the wrong method.
  Response again = Send(http::verb::post, "/checkpoint?dir=" + copy.string(), "", {}, true);
  EXPECT_EQ(again.result_int(), 400);
  EXPECT_EQ(ErrorCode(again), "invalid_dir");
  EXPECT_EQ(Send(http::verb::post, "/checkpoint?dir=backup", "", {}, true).result_int(), 400);
  EXPECT_EQ(Send(http::verb::post, "/checkpoint", "", {}, true).result_int(), 400);
  Response not_utf8 = Send(http::verb::post, "/checkpoint?dir=/tmp/%FF", "", {}, true);
  EXPECT_EQ(not_utf8.result_int(), 400);
  EXPECT_TRUE(util::IsValidUtf8(not_utf8.body()));
  EXPECT_EQ(Send(http::verb::get, "/checkpoint?dir=/x", "", {}, true).result_int(), 405);

  storage::StoreOptions restored_options;
  restored_options.data_dir = copy.string();
  std::string error;
  auto restored = storage::Store::Open(restored_options, &error);
  ASSERT_TRUE(restored.has_value()) << error;
  auto page = (*restored)->ReadEvents("shop", "", 100, SIZE_MAX);
  ASSERT_TRUE(page.has_value());
  std::vector<std::string> ids;
  for (const auto& e : page->events) {
    ids.emplace_back(json::parse(e.json).at("messageId").as_string());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"before-1", "before-2"}));
  (*restored)->Close();
  fs::remove_all(copy);
}

}  // namespace
}  // namespace cartwatch::collector
