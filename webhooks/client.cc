#include "webhooks/client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <set>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace cartwatch::webhooks {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

constexpr auto kTuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t kMaxResponseBody = 1 << 20;

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

struct Connection {
  Connection(net::io_context& ioc, ssl::context* tls) {
    if (tls) {
      secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *tls);
    } else {
      plain = std::make_unique<beast::tcp_stream>(ioc);
    }
  }
  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  std::unique_ptr<beast::tcp_stream> plain;
  beast::flat_buffer buffer;
};

struct Exchanged {
  std::string error;       // empty: a response
  bool got_bytes = false;  // some of a response arrived (an error then is no stale socket)
  int status = 0;
  bool keep_alive = false;
  std::optional<std::string> retry_after;
};

class ClientImpl final : public Client, public std::enable_shared_from_this<ClientImpl> {
 public:
  ClientImpl(net::io_context& ioc, const ClientOptions& options, Url url)
      : ioc_(ioc), options_(options), url_(std::move(url)) {}

  bool Init(std::string* error) {
    if (!url_.tls) return true;
    tls_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    tls_->set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (options_.ca_file.empty()) {
      tls_->set_default_verify_paths(ec);
    } else {
      tls_->load_verify_file(options_.ca_file, ec);
    }
    if (ec) {
      *error = (options_.ca_file.empty() ? std::string("cannot load the system's CA certificates")
                                         : "cannot load the CA file \"" + options_.ca_file + "\"") +
               ": " + ec.message();
      return false;
    }
    return true;
  }

  void Send(Post post, std::function<void(Attempt)> done) override {
    ++in_flight_;
    net::co_spawn(ioc_, Run(std::move(post)),
                  [self = shared_from_this(), done = std::move(done)](std::exception_ptr e,
                                                                        Attempt attempt) {
                    --self->in_flight_;
                    if (e) attempt = Attempt{.status = 0, .error = "internal error in the client"};
                    done(std::move(attempt));
                  });
  }

  std::size_t in_flight() const override { return in_flight_; }
  std::size_t max_in_flight() const override { return options_.max_in_flight; }
  std::uint64_t connections_opened() const override { return opened_; }

  void Close() override {
    closed_ = true;
    for (auto& c : idle_) {
      error_code ignored;
      c->tcp().socket().close(ignored);
    }
    idle_.clear();
    for (Connection* c : active_) {
      error_code ignored;
      c->tcp().socket().close(ignored);
    }
  }

 private:
  net::awaitable<Attempt> Run(Post post) {
    auto self = shared_from_this();
    http::request<http::string_body> req{http::verb::post, url_.target, 11};
    req.set(http::field::host, url_.host_header);
    req.set(http::field::user_agent, options_.user_agent);
    req.set(http::field::content_type, "application/json");
    req.set("webhook-id", post.id);
    req.set("webhook-timestamp", std::to_string(post.timestamp));
    req.set("webhook-signature", post.signature);
    req.body() = std::move(post.body);
    req.keep_alive(true);
    req.prepare_payload();
    for (;;) {
      if (closed_) co_return Attempt{.status = 0, .error = "cancelled: Cartwatch is stopping"};
      std::shared_ptr<Connection> conn;
      bool reused = false;
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
        reused = true;
      } else {
        std::string error;
        conn = co_await Connect(error);
        if (!conn) co_return Attempt{.status = 0, .error = std::move(error)};
      }
      active_.insert(conn.get());
      // (Not a conditional expression: GCC 12 miscompiles co_await inside one.)
      Exchanged result;
      if (conn->secure) {
        result = co_await Exchange(*conn->secure, *conn, req);
      } else {
        result = co_await Exchange(*conn->plain, *conn, req);
      }
      active_.erase(conn.get());
      if (!result.error.empty()) {
        // An idle connection the endpoint had closed: try again on another one.
        if (reused && !result.got_bytes && !closed_) continue;
        co_return Attempt{.status = 0, .error = std::move(result.error)};
      }
      if (result.keep_alive && !closed_) idle_.push_back(std::move(conn));
      co_return Attempt{.status = result.status, .error = {}, .retry_after = std::move(result.retry_after)};
    }
  }

  net::awaitable<std::shared_ptr<Connection>> Connect(std::string& error) {
    auto resolver = std::make_shared<tcp::resolver>(ioc_);
    net::steady_timer timer(ioc_);
    timer.expires_after(options_.timeout);
    bool timed_out = false;
    timer.async_wait([resolver, &timed_out](error_code ec) {
      if (!ec) {
        timed_out = true;
        resolver->cancel();
      }
    });
    auto [rec, results] = co_await resolver->async_resolve(url_.host, url_.port, kTuple);
    timer.cancel();
    if (rec) {
      error = timed_out ? "timed out resolving " + url_.host + " (" + Seconds(options_.timeout) + ")"
                        : "resolve " + url_.host + ": " + rec.message();
      co_return nullptr;
    }
    std::vector<tcp::endpoint> allowed;
    std::string refused;
    for (const auto& r : results) {
      const auto address = r.endpoint().address();
      if (!options_.allow_private) {
        if (auto why = RefusedAddress(address)) {
          if (refused.empty()) refused = "refused address " + address.to_string() + ": " + *why;
          continue;
        }
      }
      allowed.push_back(r.endpoint());
    }
    if (allowed.empty()) {
      error = refused.empty() ? "resolve " + url_.host + ": no address"
                              : refused + "; the endpoint does not set allow_private";
      co_return nullptr;
    }
    auto conn = std::make_shared<Connection>(ioc_, tls_.get());
    ++opened_;
    active_.insert(conn.get());
    struct Leave {
      std::set<Connection*>& set;
      Connection* c;
      ~Leave() { set.erase(c); }
    } leave{active_, conn.get()};
    conn->tcp().expires_after(options_.timeout);
    auto [cec, endpoint] = co_await conn->tcp().async_connect(allowed, kTuple);
    if (cec) {
      error = cec == beast::error::timeout
                  ? "timed out connecting to " + url_.host + " (" + Seconds(options_.timeout) + ")"
                  : "connect " + allowed.front().address().to_string() + ": " + cec.message();
      co_return nullptr;
    }
    conn->tcp().socket().set_option(tcp::no_delay(true));
    if (conn->secure) {
      SSL* native = conn->secure->native_handle();
      error_code ip_ec;
      net::ip::make_address(url_.host, ip_ec);
      if (ip_ec) {
        SSL_set_tlsext_host_name(native, url_.host.c_str());
        SSL_set1_host(native, url_.host.c_str());
      } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), url_.host.c_str());
      }
      conn->tcp().expires_after(options_.timeout);
      auto [hec] = co_await conn->secure->async_handshake(ssl::stream_base::client, kTuple);
      if (hec) {
        const long verify = SSL_get_verify_result(native);
        if (hec == beast::error::timeout) {
          error = "TLS: timed out in the handshake (" + Seconds(options_.timeout) + ")";
        } else if (verify != X509_V_OK) {
          error = std::string("TLS: certificate verify failed: ") +
                  X509_verify_cert_error_string(verify);
        } else {
          error = "TLS: " + hec.message();
        }
        co_return nullptr;
      }
    }
    co_return conn;
  }

  template <typename Stream>
  net::awaitable<Exchanged> Exchange(Stream& stream, Connection& conn,
                                     http::request<http::string_body>& req) {
    Exchanged out;
    conn.tcp().expires_after(options_.timeout);
    auto [wec, written] = co_await http::async_write(stream, req, kTuple);
    if (wec) {
      out.error = wec == beast::error::timeout ? "timed out writing the request (" + Seconds(options_.timeout) + ")"
                                               : "writing the request: " + wec.message();
      co_return out;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    conn.tcp().expires_after(options_.timeout);
    auto [rec, read] = co_await http::async_read(stream, conn.buffer, parser, kTuple);
    out.got_bytes = read > 0 || parser.got_some();
    if (rec) {
      if (rec == beast::error::timeout) {
        out.error = "timed out reading the response (" + Seconds(options_.timeout) + ")";
      } else if (rec == http::error::end_of_stream || rec == net::error::eof) {
        out.error = "the endpoint closed the connection without answering";
      } else if (rec == http::error::body_limit && parser.is_header_done()) {
        // The status is known; the rest of the body is not wanted. The connection cannot
        // be reused.
        out.error.clear();
        out.status = parser.get().result_int();
        out.keep_alive = false;
        co_return out;
      } else {
        out.error = "reading the response: " + rec.message();
      }
      co_return out;
    }
    const auto& res = parser.get();
    out.status = res.result_int();
    out.keep_alive = res.keep_alive();
    if (auto it = res.find(http::field::retry_after); it != res.end()) {
      out.retry_after = std::string(it->value());
    }
    co_return out;
  }

  net::io_context& ioc_;
  const ClientOptions options_;
  const Url url_;
  std::unique_ptr<ssl::context> tls_;
  std::vector<std::shared_ptr<Connection>> idle_;
  std::set<Connection*> active_;
  std::size_t in_flight_ = 0;
  std::uint64_t opened_ = 0;
  bool closed_ = false;
};

}  // namespace

std::shared_ptr<Client> CreateClient(boost::asio::io_context& ioc, const ClientOptions& options,
                                     std::string* error) {
  auto url = ParseUrl(options.url);
  if (!url) {
    *error = "not an http:// or https:// URL with a host: \"" + options.url + "\"";
    return nullptr;
  }
  auto client = std::make_shared<ClientImpl>(ioc, options, std::move(*url));
  if (!client->Init(error)) return nullptr;
  return client;
}

}  // namespace cartwatch::webhooks
