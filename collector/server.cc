#include "collector/server.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <sys/resource.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "collector/router.h"
#include "collector/session.h"
#include "util/log.h"

namespace cartwatch::collector {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;

// "host:port" or "[v6]:port" -> endpoint. The config loader validated the shape already.
tcp::endpoint ParseEndpoint(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "listen address \"" + address + "\" has no port");
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  const char* first = address.data() + colon + 1;
  const char* last = address.data() + address.size();
  auto [end, ec] = std::from_chars(first, last, port);
  if (ec != std::errc() || end != last || port > 65535) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "listen address \"" + address + "\" has a bad port");
  }
  if (host == "localhost") host = "127.0.0.1";
  error_code parse_error;
  auto ip = net::ip::make_address(host.empty() ? "0.0.0.0" : host, parse_error);
  if (parse_error) {
    throw std::system_error(parse_error, "listen address \"" + address + "\"");
  }
  return {ip, static_cast<unsigned short>(port)};
}

class Listener {
 public:
  // `commits[i]` belongs to `loops[i]`; empty for a listener whose requests never write.
  Listener(net::io_context& ioc, const std::string& address,
           std::vector<std::unique_ptr<net::io_context>>& loops,
           std::vector<std::unique_ptr<CommitScheduler>>* commits, SessionContext& context)
      : acceptor_(ioc), retry_(ioc), loops_(loops), commits_(commits), context_(context) {
    tcp::endpoint endpoint = ParseEndpoint(address);
    error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, "cannot listen on " + address);
    port_ = acceptor_.local_endpoint().port();
  }

  unsigned short port() const { return port_; }
  void Start() { DoAccept(); }
  void Stop() {
    error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
  }

 private:
  void DoAccept() {
    // Each new connection goes to the next event loop, round robin.
    std::size_t index = next_loop_++ % loops_.size();
    acceptor_.async_accept(*loops_[index], [this, index](const error_code& ec, Socket socket) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) return BackOff(ec);
      backoff_ = std::chrono::milliseconds(0);
      if (context_.connections.load(std::memory_order_relaxed) >= context_.max_connections) {
        // Over the cap: closed at once, so that the descriptors RocksDB and the admin
        // listener need stay free and the client learns it at once instead of waiting.
        error_code ignored;
        socket.close(ignored);
        ++refused_;
        if (Clock::now() >= next_refusal_log_) {
          log::Warn("connections closed at once: the connection cap is reached")
              .Add("closed", refused_)
              .Add("open", context_.max_connections)
              .Add("setting", context_.admin ? "server.admin_max_connections"
                                             : "server.max_connections");
          next_refusal_log_ = Clock::now() + std::chrono::seconds(10);
          refused_ = 0;
        }
        return DoAccept();
      }
      auto session = std::make_shared<Session>(std::move(socket), context_,
                                               commits_ ? (*commits_)[index].get() : nullptr);
      net::post(session->get_executor(), [session] { session->Start(); });
      DoAccept();
    });
  }

  // After a failed accept (typically out of file descriptors): waits 10 ms, doubling up to
  // 1 s while it keeps failing, instead of spinning; logs at most once every 10 s.
  void BackOff(const error_code& ec) {
    backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
    ++accept_failures_;
    if (Clock::now() >= next_failure_log_) {
      log::Error("accept failed")
          .Add("times", accept_failures_)
          .Add("error", ec.message())
          .Add("retry_ms", static_cast<std::int64_t>(backoff_.count()));
      next_failure_log_ = Clock::now() + std::chrono::seconds(10);
      accept_failures_ = 0;
    }
    retry_.expires_after(backoff_);
    retry_.async_wait([this](const error_code& wait_ec) {
      if (!wait_ec) DoAccept();
    });
  }

  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  std::vector<std::unique_ptr<net::io_context>>& loops_;
  std::vector<std::unique_ptr<CommitScheduler>>* commits_;
  SessionContext& context_;
  std::size_t next_loop_ = 0;
  unsigned short port_ = 0;
  // Accepting runs on the first loop only: these need no lock.
  using Clock = std::chrono::steady_clock;
  std::chrono::milliseconds backoff_{0};
  std::size_t accept_failures_ = 0;
  Clock::time_point next_failure_log_{};
  std::size_t refused_ = 0;
  Clock::time_point next_refusal_log_{};
};

// The public listener's connection cap: options.max_connections, lowered to leave a quarter
// of the file descriptors (and 128 more) to RocksDB, the admin listener and the rest.
std::size_t PublicConnectionCap(const ServerOptions& options) {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return options.max_connections;
  }
  const std::size_t fds = static_cast<std::size_t>(limit.rlim_cur);
  const std::size_t room = fds * 3 / 4 > 128 + 16 ? fds * 3 / 4 - 128 : 16;
  if (options.max_connections <= room) return options.max_connections;
  log::Warn("server.max_connections lowered: raise the file limit with ulimit -n or LimitNOFILE=")
      .Add("from", options.max_connections)
      .Add("to", room)
      .Add("open_files_limit", fds);
  return room;
}

class AsioServer final : public Server {
 public:
  AsioServer(const ServerOptions& options, const Limits& limits, std::vector<Site> sites,
             storage::Store& store, metrics::Metrics* metrics)
      : options_(options), store_(store), router_(limits, std::move(sites), store, metrics) {
    int threads = options.io_threads > 0 ? options.io_threads
                                         : static_cast<int>(std::thread::hardware_concurrency());
    threads = std::max(threads, 1);
    for (int i = 0; i < threads; ++i) {
      loops_.push_back(std::make_unique<net::io_context>(1));
      guards_.emplace_back(loops_.back()->get_executor());
      commits_.push_back(std::make_unique<CommitScheduler>(
          *loops_.back(), store, std::chrono::microseconds(options.commit_delay_us)));
    }
    for (SessionContext* c : {&public_context_, &admin_context_}) {
      c->router = &router_;
      c->options = options;
      c->limits = limits;
    }
    admin_context_.admin = true;
    public_context_.max_connections = PublicConnectionCap(options);
    admin_context_.max_connections = options.admin_max_connections;
    // Binding throws; nothing has started yet, so there is nothing to undo.
    public_ = std::make_unique<Listener>(*loops_[0], options.listen, loops_, &commits_,
                                         public_context_);
    admin_ = std::make_unique<Listener>(*loops_[0], options.admin_listen, loops_, nullptr,
                                        admin_context_);
    public_port_ = public_->port();
    admin_port_ = admin_->port();
    net::post(*loops_[0], [this] {
      public_->Start();
      admin_->Start();
    });
    // A query or the store's background thread that committed one round hands what the
    // loops queued meanwhile back to the first loop (Store::SetFlushRequester).
    flush_requester_.loop = loops_[0].get();
    flush_requester_.commits = commits_[0].get();
    store_.SetFlushRequester(&flush_requester_);
    for (auto& loop : loops_) {
      threads_.emplace_back([&loop] { loop->run(); });
    }
  }

  ~AsioServer() override { Stop(); }

  unsigned short public_port() const override { return public_port_; }
  unsigned short admin_port() const override { return admin_port_; }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    public_context_.draining = true;
    admin_context_.draining = true;
    net::post(*loops_[0], [this] {
      public_->Stop();
      admin_->Stop();
    });
    ForEachSession([](Session& s) { s.CloseIfIdle(); });

    auto deadline = std::chrono::steady_clock::now() + options_.shutdown_grace;
    while (std::chrono::steady_clock::now() < deadline && LiveSessions() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ForEachSession([](Session& s) { s.Close(); });
    router_.Stop();
    store_.SetFlushRequester(nullptr);  // the loops are about to stop
    guards_.clear();
    // With every socket closed the loops run out of work and return. A response the
    // store still owes holds a work guard on its loop (see Session::OnRead), so nothing
    // is destroyed under it; the store answers every Append, so this ends.
    for (auto& t : threads_) t.join();
    // The schedulers first: a timer's destructor calls into its loop's timer service. (None
    // is pending here: a pending wait kept its loop running, so every round was flushed
    // before the join returned.) Destroying the loops destroys the handlers still queued
    // on them, and with them the last sessions (e.g. one accepted but not yet started),
    // which closes their sockets.
    commits_.clear();
    public_.reset();
    admin_.reset();
    loops_.clear();
  }

 private:
  template <typename F>
  void ForEachSession(F f) {
    // Collected first: the last reference to a session may drop here, and its destructor
    // takes c->mu.
    std::vector<std::shared_ptr<Session>> live;
    for (SessionContext* c : {&public_context_, &admin_context_}) {
      std::lock_guard lock(c->mu);
      for (auto& [raw, weak] : c->sessions) {
        if (auto session = weak.lock()) live.push_back(std::move(session));
      }
    }
    for (auto& session : live) {
      net::post(session->get_executor(), [session, f] { f(*session); });
    }
  }

  std::size_t LiveSessions() {
    std::size_t n = 0;
    for (SessionContext* c : {&public_context_, &admin_context_}) {
      std::lock_guard lock(c->mu);
      n += c->sessions.size();
    }
    return n;
  }

  const ServerOptions options_;
  storage::Store& store_;
  Router router_;
  SessionContext public_context_;
  SessionContext admin_context_;
  std::vector<std::unique_ptr<net::io_context>> loops_;
  std::vector<std::unique_ptr<CommitScheduler>> commits_;  // commits_[i] serves loops_[i]
  // Hands what the store's own threads leave queued to the first loop, which commits it
  // with its own next round, server.commit_delay_us after that round began
  // (Store::SetFlushRequester).
  class FirstLoopFlush final : public storage::FlushRequester {
   public:
    void RequestFlush() override {
      net::post(*loop, [commits = commits] { commits->Request(); });
    }
    net::io_context* loop = nullptr;
    CommitScheduler* commits = nullptr;
  };
  FirstLoopFlush flush_requester_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards_;
  std::unique_ptr<Listener> public_;
  std::unique_ptr<Listener> admin_;
  std::vector<std::thread> threads_;
  unsigned short public_port_ = 0;
  unsigned short admin_port_ = 0;
  std::atomic<bool> stopped_{false};
};

}  // namespace

std::unique_ptr<Server> Server::Start(const ServerOptions& options, const Limits& limits,
                                      std::vector<Site> sites, storage::Store& store,
                                      metrics::Metrics* metrics) {
  return std::make_unique<AsioServer>(options, limits, std::move(sites), store, metrics);
}

}  // namespace cartwatch::collector
