#include "bench/sink.h"

#include <pthread.h>
#include <time.h>

#include <memory>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "webhooks/signature.h"

namespace cartwatch::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const std::vector<std::string>& keys,
             std::atomic<std::uint64_t>& received, std::atomic<std::uint64_t>& bad)
      : stream_(std::move(socket)), keys_(keys), received_(received), bad_(bad) {}
  void Read() {
    req_ = {};
    http::async_read(stream_, buffer_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->Answer();
    });
  }

 private:
  void Answer() {
    if (!keys_.empty()) {
      const std::string id(req_["webhook-id"]);
      const std::int64_t timestamp = std::atoll(std::string(req_["webhook-timestamp"]).c_str());
      const std::string expected = webhooks::Sign(keys_.front(), id, timestamp, req_.body());
      const std::string_view header = req_["webhook-signature"];
      if (header.find(expected) == std::string_view::npos) ++bad_;
    }
    ++received_;
    res_ = http::response<http::empty_body>{http::status::no_content, 11};
    res_.keep_alive(req_.keep_alive());
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || !self->res_.keep_alive()) return;
      self->Read();
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::empty_body> res_;
  const std::vector<std::string>& keys_;
  std::atomic<std::uint64_t>& received_;
  std::atomic<std::uint64_t>& bad_;
};

}  // namespace

Sink::Sink(unsigned short port, int cpu, std::vector<std::string> keys) : keys_(std::move(keys)) {
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen();
  port_ = acceptor_.local_endpoint().port();
  Accept();
  thread_ = std::thread([this, cpu] {
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    ioc_.run();
  });
}

Sink::~Sink() {
  ioc_.stop();
  thread_.join();
}

double Sink::cpu_seconds() const {
  clockid_t clock;
  timespec ts{};
  if (pthread_getcpuclockid(const_cast<std::thread&>(thread_).native_handle(), &clock) != 0 ||
      clock_gettime(clock, &ts) != 0) {
    return 0;
  }
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void Sink::Accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;
    ++connections_;
    socket.set_option(tcp::no_delay(true));
    std::make_shared<Connection>(std::move(socket), keys_, received_, bad_)->Read();
    Accept();
  });
}

}  // namespace cartwatch::bench
