// The delivery client over real sockets on loopback: keep-alive reuse, what each answer
// becomes, timeouts, and the address guard, which refuses every internal range before any
// packet is sent (only loopback ever sees traffic here).
#include "webhooks/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace cartwatch::webhooks {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

TEST(UrlTest, ParsesWhatAnEndpointMayBe) {
  auto u = ParseUrl("https://crm.example.com/hooks/cartwatch?x=1");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "crm.example.com");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->target, "/hooks/cartwatch?x=1");
  EXPECT_EQ(u->host_header, "crm.example.com");
  u = ParseUrl("HTTP://[::1]:8080");
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header, "[::1]:8080");
  EXPECT_EQ(ParseUrl("http://h?q")->target, "/?q");
  for (const char* bad : {"ftp://h/", "http://", "http:///x", "http://user@h/", "http://h:0/",
                          "http://h:65536/", "http://h:x/", "http://h/#frag", "http://h /",
                          "http://[::1/", "https://[::1]x/"}) {
    EXPECT_FALSE(ParseUrl(bad)) << bad;
  }
}

// Runs `client->Send` on a fresh event loop until it answers.
Attempt SendOnce(const ClientOptions& options, std::string* error = nullptr) {
  net::io_context ioc;
  std::string why;
  auto client = CreateClient(ioc, options, &why);
  EXPECT_TRUE(client) << why;
  if (!client) return {};
  Attempt got;
  client->Send(Post{.id = "act_1", .timestamp = 1, .signature = "v1,x", .body = "{}"},
               [&](Attempt a) { got = std::move(a); });
  ioc.run();
  return got;
}

TEST(ClientTest, RefusesEveryInternalRangeBeforeConnecting) {
  // The SSRF table: none of these is connected to (the check comes first).
  for (const char* url : {"http://127.0.0.1/", "http://[::1]/", "http://10.1.2.3/", "http://172.16.0.1/",
                          "http://172.31.255.255/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data",
                          "http://100.64.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
                          "http://[fc00::1]/", "http://[fd12:3456::1]/", "http://[fe80::1]/", "http://localhost:9/"}) {
    const Attempt a = SendOnce(ClientOptions{.url = url, .timeout = std::chrono::milliseconds(500)});
    EXPECT_EQ(a.status, 0) << url;
    EXPECT_TRUE(a.error.starts_with("refused address ")) << url << ": " << a.error;
    EXPECT_TRUE(a.error.ends_with("; the endpoint does not set allow_private")) << a.error;
  }
  EXPECT_EQ(SendOnce(ClientOptions{.url = "http://169.254.169.254/"}).error,
            "refused address 169.254.169.254: link-local (169.254.0.0/16); the endpoint does not set allow_private");
}

// A loopback HTTP/1.1 server on its own thread: `answer` makes each response (null: never
// answer that request); counts connections and requests.
class TestServer {
 public:
  using Answer = std::function<std::optional<http::response<http::string_body>>(
      const http::request<http::string_body>&)>;
  explicit TestServer(Answer answer) : answer_(std::move(answer)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestServer() {
    stop_ = true;
    boost::system::error_code ignored;
    tcp::socket poke(ioc_);
    poke.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ignored);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks"; }
  int connections() const { return connections_; }
  const std::vector<http::request<http::string_body>>& requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      ++connections_;
      beast::flat_buffer buffer;
      for (;;) {
        http::request<http::string_body> req;
        http::read(socket, buffer, req, ec);
        if (ec) break;
        requests_.push_back(req);
        auto res = answer_(req);
        if (!res) {
          // Holds the connection open, unanswered, until the client gives up.
          char byte;
          socket.read_some(net::buffer(&byte, 1), ec);
          break;
        }
        res->keep_alive(req.keep_alive());
        res->prepare_payload();
        http::write(socket, *res, ec);
        if (ec || !req.keep_alive()) break;
      }
    }
  }

  Answer answer_;
  net::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  unsigned short port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::vector<http::request<http::string_body>> requests_;
};

http::response<http::string_body> Respond(http::status status) {
  return http::response<http::string_body>{status, 11};
}

TEST(ClientTest, PostsTheSignedDeliveryAndReusesTheConnection) {
  TestServer server([](const auto&) { return Respond(http::status::no_content); });
  net::io_context ioc;
  std::string error;
  auto client = CreateClient(ioc, ClientOptions{.url = server.url(), .allow_private = true}, &error);
  ASSERT_TRUE(client) << error;
  int answered = 0;
  std::function<void()> next = [&] {
    client->Send(Post{.id = "act_" + std::to_string(answered), .timestamp = 1796638803,
                      .signature = "v1,abc v1,def", .body = R"({"type":"task.created"})"},
                 [&](Attempt a) {
                   EXPECT_EQ(a.status, 204);
                   EXPECT_EQ(a.error, "");
                   if (++answered < 5) next();
                 });
  };
  next();
  ioc.run();
  EXPECT_EQ(answered, 5);
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(client->connections_opened(), 1u);
  const auto& req = server.requests().at(2);
  EXPECT_EQ(req.method(), http::verb::post);
  EXPECT_EQ(req.target(), "/hooks");
  EXPECT_EQ(req["webhook-id"], "act_2");
  EXPECT_EQ(req["webhook-timestamp"], "1796638803");
  EXPECT_EQ(req["webhook-signature"], "v1,abc v1,def");
  EXPECT_EQ(req[http::field::content_type], "application/json");
  EXPECT_EQ(req.body(), R"({"type":"task.created"})");
}

TEST(ClientTest, RedirectsRetryAfterAndTimeoutsComeBackAsTheyAre) {
  TestServer server([](const http::request<http::string_body>& req)
                        -> std::optional<http::response<http::string_body>> {
    if (req["webhook-id"] == "redirect") {
      auto res = Respond(http::status::found);
      res.set(http::field::location, "http://127.0.0.1:1/elsewhere");
      return res;
    }
    if (req["webhook-id"] == "busy") {
      auto res = Respond(http::status::too_many_requests);
      res.set(http::field::retry_after, "7");
      return res;
    }
    return std::nullopt;  // "hang"
  });
  auto send = [&](const std::string& id) {
    net::io_context ioc;
    std::string error;
    auto client = CreateClient(ioc,
                               ClientOptions{.url = server.url(), .allow_private = true,
                                             .timeout = std::chrono::milliseconds(300)},
                               &error);
    Attempt got;
    client->Send(Post{.id = id, .timestamp = 1, .signature = "v1,x", .body = "{}"},
                 [&](Attempt a) { got = std::move(a); });
    ioc.run();
    return got;
  };
  const Attempt redirect = send("redirect");
  EXPECT_EQ(redirect.status, 302);  // not followed
  const Attempt busy = send("busy");
  EXPECT_EQ(busy.status, 429);
  EXPECT_EQ(busy.retry_after, std::optional<std::string>("7"));
  const Attempt hang = send("hang");
  EXPECT_EQ(hang.status, 0);
  EXPECT_EQ(hang.error, "timed out reading the response (300ms)");
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(ClientTest, ARefusedConnectionAndABadCaFileSayWhy) {
  // A port nothing listens on (bound, then closed).
  unsigned short port = 0;
  {
    net::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  const Attempt refused = SendOnce(ClientOptions{
      .url = "http://127.0.0.1:" + std::to_string(port) + "/", .allow_private = true});
  EXPECT_EQ(refused.error, "connect 127.0.0.1: Connection refused");
  net::io_context ioc;
  std::string error;
  EXPECT_FALSE(CreateClient(ioc, ClientOptions{.url = "https://h/", .ca_file = "/nonexistent/ca.pem"}, &error));
  EXPECT_NE(error.find("cannot load the CA file \"/nonexistent/ca.pem\""), std::string::npos) << error;
  EXPECT_FALSE(CreateClient(ioc, ClientOptions{.url = "gopher://h/"}, &error));
}

}  // namespace
}  // namespace cartwatch::webhooks
