// Session: one HTTP/1.1 connection, in the shape of Beast's http_server_async example: a
// chain of DoRead/OnRead, DoWrite/OnWrite on the connection's own single-threaded event
// loop (so no strand is needed), keep-alive, one request at a time (pipelined requests
// wait in the buffer). All meaning lives in Router; the session only checks, once a
// header is in, that the request's framing is unambiguous (CheckFraming), asks the router
// whether the header alone refuses a body over 16 KiB (Router::CheckHeader), and takes the
// body's share of Limits::max_receiving_bytes before reading it.
//
// Timeouts use one lazily re-armed timer per connection: each phase only stores a new
// deadline, and the timer re-arms itself when it fires early, so a request costs no timer
// system calls. idle_timeout while waiting for a request, read_timeout while one is being
// received (then 408), none while the store commits, write_timeout while answering.
//
// Private to collector/.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "collector/options.h"
#include "collector/router.h"

namespace cartwatch::collector {

// What every session of a listener shares. Owned by the server, outlives the sessions.
class Session;

// Sockets and timers bound to their event loop's own executor type: no type-erased
// any_io_executor to copy, compare and dispatch through on every operation.
using LoopExecutor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, LoopExecutor>;
using Timer = boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                                boost::asio::wait_traits<std::chrono::steady_clock>,
                                                LoopExecutor>;

struct SessionContext {
  Router* router = nullptr;
  bool admin = false;  // serve Router::HandleAdmin instead of Router::Handle
  ServerOptions options;
  Limits limits;
  std::atomic<bool> draining{false};  // answer with Connection: close, close when idle

  // Past this many live sessions the listener closes new connections at once.
  std::size_t max_connections = SIZE_MAX;
  std::atomic<std::size_t> connections{0};  // live sessions of this listener
  // Bytes of request bodies being received (Limits::max_receiving_bytes), all sessions.
  std::atomic<std::size_t> receiving_bytes{0};

  // Live sessions, so that Stop can reach them; guarded by mu.
  std::mutex mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
};

// The status line and fields of `r` as Beast's serializer writes them, with the empty
// line that ends them, into `out`, replacing its contents and reusing its capacity.
// Session sends them and the body as two buffers of one send, without the serializer's
// buffer sequences, which cost a small request more than anything else of its HTTP
// handling. REQUIRES: `r` prepared (Content-Length or chunked set: prepare_payload).
void SerializeHead(const Response& r, std::string& out);

// One per event loop. Requests queue their messages with Store::Append; the first of a
// round calls Request(), which runs a single Store::Flush behind them `delay` later (with
// 0: behind the loop's current pass), so that one group commit carries every request of
// that time and answers them without waking another thread. At half load a round held
// one request; 200 us share a round among a few (ServerOptions::commit_delay_us).
// Used from its loop's thread only.
class CommitScheduler {
 public:
  CommitScheduler(boost::asio::io_context& loop, storage::Store& store,
                  std::chrono::microseconds delay)
      : loop_(loop), store_(store), delay_(delay), timer_(loop) {}
  void Request();

 private:
  boost::asio::io_context& loop_;
  storage::Store& store_;
  const std::chrono::microseconds delay_;
  boost::asio::steady_timer timer_;
  bool posted_ = false;
};

// An error answer (the connection is then closed) for a request whose header makes its
// framing ambiguous: a missing (HTTP/1.1) or repeated Host, a Transfer-Encoding that does
// not end in chunked (400), or one with codings besides chunked (501). nullopt when the
// request may be read.
std::optional<Response> CheckFraming(const Request& request);

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `commits` is the scheduler of the loop that runs `socket`; nullptr for the admin
  // listener, which never writes.
  Session(Socket socket, SessionContext& context,
          CommitScheduler* commits);
  ~Session();

  void Start();
  LoopExecutor get_executor() { return socket_.get_executor(); }
  // Called (on the session's thread) when the server drains: closes the connection when
  // it is idle; a request in progress is finished and answered first.
  void CloseIfIdle();
  // Closes at once.
  void Close();

 private:
  enum class State { kIdle, kReading, kHandling, kWriting, kLingering, kClosed };

  void DoRead();
  void OnReadable(const boost::system::error_code& ec);
  void OnHeader(const boost::system::error_code& ec, std::size_t bytes);
  void ReadBody();
  void OnRead(const boost::system::error_code& ec, std::size_t bytes);
  void DoWrite(Response&& response);
  void OnWrite(const boost::system::error_code& ec, std::size_t bytes);
  void SetDeadline(std::chrono::steady_clock::duration timeout);
  void OnTimer(const boost::system::error_code& ec);
  // After an error answer with Connection: close: stops sending, then reads and discards
  // what the client is still sending (for up to 2 s or 1 MiB) before closing, so that the
  // close does not turn into a reset that destroys the answer before the client reads it.
  void LingeringClose();
  void OnLinger(const boost::system::error_code& ec, std::size_t bytes);
  // Answers an error the parser detected and closes after writing.
  void FailRequest(unsigned status, std::string_view code, std::string message);
  // Answers `response` and closes after writing, without reading the rest of the request.
  void Refuse(Response&& response);
  // Takes `bytes` of Limits::max_receiving_bytes for the body being read; false when they
  // do not fit. ReleaseBody gives back what this session holds (idempotent).
  bool ReserveBody(std::size_t bytes);
  void ReleaseBody();

  Socket socket_;
  SessionContext& context_;
  CommitScheduler* commits_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // The response being written: its status line and fields, serialized (capacity reused),
  // and its body.
  std::string head_;
  std::string body_;
  Timer timer_;
  std::chrono::steady_clock::time_point deadline_;
  bool timer_armed_ = false;
  bool timed_out_ = false;
  bool close_after_write_ = false;
  bool keep_alive_ = false;  // the request in hand asked for keep-alive
  std::size_t lingered_bytes_ = 0;
  std::size_t reserved_body_ = 0;  // of context_.receiving_bytes
  boost::asio::ip::address client_;  // the peer's address
  State state_ = State::kIdle;
};

}  // namespace cartwatch::collector
