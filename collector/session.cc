#include "collector/session.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace cartwatch::collector {

namespace net = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

namespace {
// Reserved once per connection: with Beast's default the buffer never grows past what the
// parser drains, and an 8 KB body takes ~17 recv calls instead of one.
constexpr std::size_t kReadBufferBytes = 16 * 1024;
// Bodies larger than this are refused from the header when its write key names no site.
constexpr std::size_t kCheckHeaderAbove = 16 * 1024;
}  // namespace

void CommitScheduler::Request() {
  if (posted_) return;
  posted_ = true;
  if (delay_.count() > 0) {
    timer_.expires_after(delay_);
    timer_.async_wait([this](const error_code& ec) {
      if (ec) return;  // the scheduler is going away with its loop
      posted_ = false;
      store_.Flush();
    });
    return;
  }
  // Posted work runs after the completions already queued from the same poll.
  net::post(loop_, [this] {
    posted_ = false;
    store_.Flush();
  });
}

Session::Session(Socket socket, SessionContext& context, CommitScheduler* commits)
    : socket_(std::move(socket)),
      context_(context),
      commits_(commits),
      timer_(socket_.get_executor()) {
  context_.connections.fetch_add(1, std::memory_order_relaxed);
  buffer_.reserve(kReadBufferBytes);
  error_code ignored;
  socket_.set_option(net::ip::tcp::no_delay(true), ignored);
  if (auto peer = socket_.remote_endpoint(ignored); !ignored) client_ = peer.address();
}

Session::~Session() {
  ReleaseBody();
  context_.connections.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard lock(context_.mu);
  context_.sessions.erase(this);
}

bool Session::ReserveBody(std::size_t bytes) {
  const std::size_t budget = context_.limits.max_receiving_bytes;
  if (budget == 0 || bytes == 0) return true;
  std::size_t current = context_.receiving_bytes.load(std::memory_order_relaxed);
  do {
    if (current + bytes > budget) return false;
  } while (!context_.receiving_bytes.compare_exchange_weak(current, current + bytes,
                                                           std::memory_order_relaxed));
  reserved_body_ += bytes;
  return true;
}

void Session::ReleaseBody() {
  if (reserved_body_ == 0) return;
  context_.receiving_bytes.fetch_sub(reserved_body_, std::memory_order_relaxed);
  reserved_body_ = 0;
}

void Session::Refuse(Response&& response) {
  keep_alive_ = false;
  close_after_write_ = true;
  DoWrite(std::move(response));
}

void Session::Start() {
  {
    std::lock_guard lock(context_.mu);
    context_.sessions.emplace(this, weak_from_this());
  }
  DoRead();
}

void Session::CloseIfIdle() {
  if (state_ != State::kIdle) return;
  // A request that has already arrived is read and answered (with Connection: close)
  // rather than dropped; only a connection with nothing pending is closed now.
  error_code ec;
  if (buffer_.size() > 0 || (socket_.available(ec) > 0 && !ec)) return;
  Close();
}

void Session::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  timer_.cancel();
}

void Session::SetDeadline(std::chrono::steady_clock::duration timeout) {
  // The config bounds timeouts to a day; the clamp keeps the sum from overflowing anyway.
  deadline_ = std::chrono::steady_clock::now() +
              std::min<std::chrono::steady_clock::duration>(timeout, std::chrono::hours(24));
  // A pending wait that fires no later than the new deadline re-arms itself then.
  if (timer_armed_ && timer_.expiry() <= deadline_) return;
  timer_armed_ = true;  // expires_at cancels a later pending wait
  timer_.expires_at(deadline_);
  timer_.async_wait(beast::bind_front_handler(&Session::OnTimer, shared_from_this()));
}

void Session::OnTimer(const error_code& ec) {
  if (ec == net::error::operation_aborted) return;  // re-armed earlier, or closed
  timer_armed_ = false;
  if (ec || state_ == State::kClosed || state_ == State::kHandling) return;
  auto now = std::chrono::steady_clock::now();
  if (now < deadline_) {
    timer_armed_ = true;
    timer_.expires_at(deadline_);
    timer_.async_wait(beast::bind_front_handler(&Session::OnTimer, shared_from_this()));
    return;
  }
  switch (state_) {
    case State::kIdle:
      Close();
      break;
    case State::kReading: {
      // End the read; OnRead answers 408 when part of a request had arrived. Shutting the
      // receive side down (not just cancelling) also stops a read that already completed
      // and is queued: its successor sees end of stream, so a client trickling bytes
      // cannot outlive the deadline.
      timed_out_ = true;
      error_code ignored;
      socket_.shutdown(net::ip::tcp::socket::shutdown_receive, ignored);
      socket_.cancel(ignored);
      break;
    }
    case State::kWriting:    // the client does not read its response
    case State::kLingering:  // the client keeps sending after its answer
      Close();
      break;
    case State::kHandling:
    case State::kClosed:
      break;
  }
}

void Session::DoRead() {
  if (context_.draining.load(std::memory_order_relaxed) && buffer_.size() == 0) {
    return Close();
  }
  timed_out_ = false;
  if (buffer_.size() == 0) {
    // Wait for the first byte under the idle timeout; the request itself then gets
    // read_timeout (a slow client is told 408, an idle one is just closed).
    // A read rather than socket::async_wait: Asio re-registers the socket with epoll_ctl
    // for every wait, one system call per request, while a read is tried at once and
    // otherwise waits on the registration the socket already has.
    state_ = State::kIdle;
    SetDeadline(context_.options.idle_timeout);
    socket_.async_read_some(
        buffer_.prepare(kReadBufferBytes),
        [self = shared_from_this()](const error_code& ec, std::size_t bytes) {
          self->buffer_.commit(bytes);
          self->OnReadable(ec);
        });
    return;
  }
  OnReadable({});
}

void Session::OnReadable(const error_code& ec) {
  if (ec || state_ == State::kClosed) return Close();  // includes a clean close by the peer
  state_ = State::kReading;
  SetDeadline(context_.options.read_timeout);
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(context_.limits.max_header_bytes));
  parser_->body_limit(context_.limits.max_request_bytes);
  http::async_read_header(socket_, buffer_, *parser_,
                          beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
}

namespace {

// The codings of the request's Transfer-Encoding fields, in order, lower case.
std::vector<std::string> TransferCodings(const Request& request) {
  std::vector<std::string> codings;
  for (auto it = request.find(http::field::transfer_encoding);
       it != request.end() && it->name() == http::field::transfer_encoding; ++it) {
    std::string_view list = it->value();
    while (!list.empty()) {
      std::string_view item = list.substr(0, list.find(','));
      list.remove_prefix(std::min(list.size(), item.size() + 1));
      const auto first = item.find_first_not_of(" \t");
      if (first == std::string_view::npos) continue;
      item = item.substr(first, item.find_last_not_of(" \t") - first + 1);
      item = item.substr(0, item.find(';'));  // parameters, e.g. "gzip;q=1"
      std::string coding(item);
      for (char& c : coding) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      codings.push_back(std::move(coding));
    }
  }
  return codings;
}

}  // namespace

std::optional<Response> CheckFraming(const Request& request) {
  const unsigned version = request.version();
  // RFC 9112 section 3.2: exactly one Host in HTTP/1.1, at most one before.
  const std::size_t hosts = request.count(http::field::host);
  if (hosts > 1 || (version >= 11 && hosts == 0)) {
    return ErrorResponse(400, "invalid_host",
                         hosts > 1 ? "the request has more than one Host header"
                                   : "an HTTP/1.1 request needs a Host header",
                         version);
  }
  if (request.count(http::field::transfer_encoding) == 0) return std::nullopt;
  // RFC 9112 section 6.3: without chunked as the final coding the body's length cannot be
  // known, and reading it as the next request is how requests are smuggled past a proxy.
  const std::vector<std::string> codings = TransferCodings(request);
  if (codings.empty() || codings.back() != "chunked" ||
      std::count(codings.begin(), codings.end(), "chunked") != 1) {
    return ErrorResponse(400, "invalid_transfer_encoding",
                         "Transfer-Encoding must end in chunked (and name it once); send the "
                         "body with Content-Length or Transfer-Encoding: chunked",
                         version);
  }
  if (codings.size() > 1) {
    // RFC 9112 section 6.1: a coding the server does not understand.
    return ErrorResponse(501, "unsupported_transfer_encoding",
                         "only Transfer-Encoding: chunked is accepted; compress with "
                         "Content-Encoding: gzip instead",
                         version);
  }
  return std::nullopt;
}

void Session::OnHeader(const error_code& ec, std::size_t bytes) {
  if (ec || state_ == State::kClosed) return OnRead(ec, bytes);
  auto& request = parser_->get();
  if (auto refused = CheckFraming(request)) return Refuse(std::move(*refused));
  if (!context_.admin && !parser_->is_done()) {
    const std::size_t body_bytes =
        parser_->chunked()
            ? context_.limits.max_request_bytes
            : static_cast<std::size_t>(std::min<std::uint64_t>(
                  parser_->content_length().value_or(0), context_.limits.max_request_bytes));
    // Before a large body is read: a request for an unknown site costs no memory. A small
    // one is not worth a second look-up of its key (Router::Handle checks it anyway).
    if (body_bytes > kCheckHeaderAbove) {
      if (auto refused = context_.router->CheckHeader(request)) return Refuse(std::move(*refused));
    }
    if (!ReserveBody(body_bytes)) {
      Response busy = ErrorResponse(503, "overloaded",
                                    "the collector is receiving as many request bodies as it "
                                    "holds at once; retry shortly",
                                    request.version());
      busy.set(http::field::retry_after, "1");
      return Refuse(std::move(busy));
    }
  }
  // Room for the JSON parser's padding now, so the body is never copied to make it.
  if (auto length = parser_->content_length()) {
    if (*length <= context_.limits.max_request_bytes) {
      request.body().reserve(static_cast<std::size_t>(*length) + kBodyPadding);
    }
  }
  if (beast::iequals(request[http::field::expect], "100-continue") && !parser_->is_done()) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(socket_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](const error_code& write_ec, std::size_t) {
                       if (write_ec) return self->Close();
                       self->ReadBody();
                     });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  if (state_ == State::kClosed) return;
  http::async_read(socket_, buffer_, *parser_,
                   beast::bind_front_handler(&Session::OnRead, shared_from_this()));
}

void Session::OnRead(const error_code& ec, std::size_t /*bytes*/) {
  if (state_ == State::kClosed) return;
  if (ec) {
    if (timed_out_) {
      if (parser_->got_some() || buffer_.size() > 0) {
        return FailRequest(408, "request_timeout",
                           "the request was not received within " +
                               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                  context_.options.read_timeout)
                                                  .count()) +
                               " s");
      }
      return Close();
    }
    if (ec == http::error::body_limit) {
      return FailRequest(413, "payload_too_large",
                         "the request body is over " +
                             std::to_string(context_.limits.max_request_bytes) +
                             " bytes; send smaller batches");
    }
    if (ec == http::error::header_limit) {
      return FailRequest(431, "headers_too_large",
                         "the request line and headers are over " +
                             std::to_string(context_.limits.max_header_bytes) + " bytes");
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return FailRequest(400, "malformed_request", "not a valid HTTP/1.1 request: " + ec.message());
    }
    return Close();  // the peer closed or reset the connection
  }

  state_ = State::kHandling;
  keep_alive_ = parser_->get().keep_alive();
  // The work guard keeps this connection's event loop running until the response is
  // back, even when the server is stopping and the store answers late. Answering hands
  // the session and the guard to the loop, so that a copy of this callback the store keeps
  // after calling it holds neither; and a copy that is never called lets the session go
  // before the guard (captures are destroyed in reverse order), while its loop still runs.
  auto respond = [guard = net::make_work_guard(socket_.get_executor()),
                  self = shared_from_this()](Response&& response) mutable {
    auto executor = guard.get_executor();
    net::dispatch(executor, [guard = std::move(guard), self = std::move(self),
                             response = std::move(response)]() mutable {
      self->DoWrite(std::move(response));
    });
  };
  Request request = parser_->release();
  if (context_.admin) {
    context_.router->HandleAdmin(request, std::move(respond));
  } else {
    context_.router->Handle(std::move(request), std::move(respond), client_);
    // Cheap when the request queued nothing: at most one timer a round, and a Flush that
    // finds the queue empty.
    if (commits_) commits_->Request();
  }
  // The body has been parsed into what is stored (or refused): it is no longer held.
  ReleaseBody();
}

void Session::FailRequest(unsigned status, std::string_view code, std::string message) {
  ReleaseBody();
  close_after_write_ = true;
  keep_alive_ = false;
  DoWrite(ErrorResponse(status, code, message));
}

void SerializeHead(const Response& r, std::string& out) {
  out.clear();
  const unsigned version = r.version();  // Beast's parser accepts HTTP/d.d only
  out.append("HTTP/");
  out.push_back(static_cast<char>('0' + version / 10));
  out.push_back('.');
  out.push_back(static_cast<char>('0' + version % 10));
  out.push_back(' ');
  const unsigned code = r.result_int();  // always three digits (Beast checks)
  out.push_back(static_cast<char>('0' + code / 100));
  out.push_back(static_cast<char>('0' + code / 10 % 10));
  out.push_back(static_cast<char>('0' + code % 10));
  out.push_back(' ');
  const std::string_view reason = r.reason();
  out.append(reason.empty() ? std::string_view(http::obsolete_reason(r.result())) : reason);
  out.append("\r\n");
  for (const auto& field : r) {
    out.append(field.name_string());
    out.append(": ");
    out.append(field.value());
    out.append("\r\n");
  }
  out.append("\r\n");
}


void Session::DoWrite(Response&& response) {
  if (state_ == State::kClosed) return;
  state_ = State::kWriting;
  SetDeadline(context_.options.write_timeout);
  bool keep_alive = !close_after_write_ && keep_alive_ &&
                    !context_.draining.load(std::memory_order_relaxed);
  response.keep_alive(keep_alive);
  close_after_write_ = !keep_alive;
  response.prepare_payload();
  SerializeHead(response, head_);
  body_ = std::move(response.body());
  const std::array<net::const_buffer, 2> buffers = {net::buffer(head_), net::buffer(body_)};
  net::async_write(socket_, buffers,
                   beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
}

void Session::OnWrite(const error_code& ec, std::size_t /*bytes*/) {
  if (ec) return Close();
  if (close_after_write_) return LingeringClose();
  body_ = {};  // an export's page is not kept while the connection idles
  DoRead();
}

}  // namespace cartwatch::collector

namespace cartwatch::collector {

void Session::LingeringClose() {
  state_ = State::kLingering;
  SetDeadline(std::chrono::seconds(2));
  error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  buffer_.clear();
  OnLinger({}, 0);
}

void Session::OnLinger(const error_code& ec, std::size_t bytes) {
  lingered_bytes_ += bytes;
  if (ec || state_ != State::kLingering || lingered_bytes_ > (1u << 20)) return Close();
  buffer_.clear();
  socket_.async_read_some(buffer_.prepare(kReadBufferBytes),
                          beast::bind_front_handler(&Session::OnLinger, shared_from_this()));
}

}  // namespace cartwatch::collector
