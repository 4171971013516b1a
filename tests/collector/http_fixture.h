// The fixture of the HTTP integration tests (http_test.cc: ingest; http_api_test.cc: the
// query API; http_limits_test.cc: limits, timeouts, framing and failures): the real Server
// on 127.0.0.1:0 with a real RocksDB in a temp dir, spoken to over loopback HTTP.
#pragma once

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

namespace cartwatch::collector::http_test {

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Response = http::response<http::string_body>;

inline std::string Basic(const std::string& key) { return "Basic " + util::Base64Encode(key + ":"); }

inline std::string Gzip(const std::string& in) {
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
inline std::string FindPromtool() {
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

inline const std::string kTrack =
    R"({"type":"track","event":"Product Added","anonymousId":"a1","messageId":"m1",)"
    R"("properties":{"sku":"S-1","price":9.5}})";

}  // namespace cartwatch::collector::http_test
