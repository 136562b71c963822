// HttpSession: one connection of the front door (see http_session.h for the states).
#include "http_session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdio>
#include <cstdlib>

#include "http_tls.h"
#include "http_util.h"

namespace kv {
namespace {

using error_code = boost::system::error_code;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// After an error answer the connection may still carry an unread body: it is read and
// discarded for a moment (up to these bounds) before the close, so that the client is
// not reset before it reads the answer ("lingering close").
constexpr std::size_t kLingerBytes = 1 << 20;
constexpr std::chrono::milliseconds kLingerTime{1000};
// HTTPS: how much of the next request one read takes while waiting for it (one TLS
// record at most).
constexpr std::size_t kFirstReadBytes = 16384;
// The answer to plain HTTP sent to the HTTPS port, written in clear without a session
// (as nginx does): the client learns why instead of seeing an empty reply.
constexpr std::string_view kPlainToHttpsAnswer =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
    "Content-Length: 59\r\n\r\n"
    "{\"error\":\"this port serves HTTPS: use https:// (TLS 1.3)\"}\n";
static_assert(kPlainToHttpsAnswer.size() - kPlainToHttpsAnswer.find("\r\n\r\n") - 4 == 59);

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A broken invariant of the session: abort with what broke (never input-dependent).
void Invariant(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "kvserver: http session invariant broken: %s\n", what);
  std::abort();
}

// Beast's parse errors (malformed input) as opposed to socket errors.
bool IsParseError(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

}  // namespace

Responder::Responder(std::shared_ptr<HttpSession> session, std::uint64_t seq)
    : session_(std::move(session)), seq_(seq) {}

void Responder::operator()(HttpResponse res) const { session_->Post(seq_, std::move(res)); }

ResponseStream Responder::Stream(HttpResponse head) const {
  auto state = std::make_shared<StreamState>();
  session_->PostStream(seq_, std::move(head), state);
  return ResponseStream(session_, std::move(state));
}

ResponseStream::ResponseStream(std::shared_ptr<HttpSession> session,
                               std::shared_ptr<StreamState> state)
    : session_(std::move(session)), state_(std::move(state)) {}

bool ResponseStream::Write(std::string piece) const {
  {
    std::lock_guard<std::mutex> l(state_->mu);
    if (state_->closed) return false;
    if (piece.empty() || state_->ended) return true;
    state_->backlog += piece.size();
    state_->pieces.push_back(std::move(piece));
  }
  session_->Kick(state_);
  return true;
}

void ResponseStream::End() const {
  {
    std::lock_guard<std::mutex> l(state_->mu);
    if (state_->ended || state_->closed) return;
    state_->ended = true;
  }
  session_->Kick(state_);
}

std::size_t ResponseStream::Backlog() const {
  std::lock_guard<std::mutex> l(state_->mu);
  return state_->backlog;
}

bool ResponseStream::Closed() const {
  std::lock_guard<std::mutex> l(state_->mu);
  return state_->closed;
}

HttpSession::HttpSession(HttpServer::Shard* shard, Socket socket,
                         std::shared_ptr<asio::ssl::context> tls)
    : shard_(shard),
      stream_(std::move(socket), std::move(tls)),
      buf_(shard->opts->max_header_bytes + 65536) {
  error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  // Answers are written whole; without it Nagle and the client's delayed ACK hold
  // the second answer on a keep-alive connection for ~40 ms.
  stream_.socket().set_option(tcp::no_delay(true), ec);
  shard_->conns.push_back(this);
  lru_ = std::prev(shard_->conns.end());
  wheel_link_.owner = this;
  ++shard_->open;
}

HttpSession::~HttpSession() {
  for (Slot& slot : slots_)
    if (slot.stream) {
      std::lock_guard<std::mutex> l(slot.stream->mu);
      slot.stream->closed = true;
    }
  if (!closed_) {
    shard_->conns.erase(lru_);
    --shard_->open;
  }
  shard_->wheel.Cancel(&wheel_link_);
}

void HttpSession::Start() {
  if (stream_.tls()) return Handshake();
  ReadNext();
}

void HttpSession::Handshake() {
  // The handshake has the head deadline and counts against the connection cap like any
  // connection; one that never completes it is closed (OnReadDeadline).
  read_state_ = ReadState::kHandshake;
  ArmRead(shard_->opts->header_timeout);
  read_pending_ = true;
  stream_.AsyncHandshake(asio::ssl::stream_base::server,
                         [self = shared_from_this()](error_code ec) { self->OnHandshake(ec); });
}

void HttpSession::OnHandshake(error_code ec) {
  read_pending_ = false;
  if (closed_) return;
  if (ec) {
    ++shard_->tls_handshake_failures;
    if (ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
      // Best effort, never blocking: a new connection's socket buffer takes it.
      ::send(stream_.socket().native_handle(), kPlainToHttpsAnswer.data(),
             kPlainToHttpsAnswer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      shard_->handler->CountRefused(400);
    }
    return Close();
  }
  read_deadline_ = kNever;
  client_cn_ = VerifiedPeerCommonName(stream_.native_tls());
  read_state_ = ReadState::kWaitFirstByte;
  ReadNext();
}

void HttpSession::Close() {
  if (closed_) return;
  closed_ = true;
  shard_->conns.erase(lru_);
  --shard_->open;
  read_deadline_ = write_deadline_ = kNever;
  shard_->wheel.Cancel(&wheel_link_);
  for (Slot& slot : slots_)
    if (slot.stream) {
      std::lock_guard<std::mutex> l(slot.stream->mu);
      slot.stream->closed = true;
    }
  error_code ec;
  stream_.socket().close(ec);
}

bool HttpSession::Idle() const {
  return !closed_ && slots_.empty() && in_flight_ == 0 &&
         (read_state_ == ReadState::kHandshake || read_state_ == ReadState::kWaitFirstByte ||
          read_state_ == ReadState::kHead);
}

void HttpSession::Drain() {
  if (slots_.empty() && in_flight_ == 0 && read_state_ != ReadState::kBody) return Close();
  // A request still being received (head or body) is not waited for: its read ends now
  // and it is answered 503 (OnHead/OnBody). The answers in flight are written (the last
  // with Connection: close), then the connection closes.
  if (read_pending_ && (read_state_ == ReadState::kHead || read_state_ == ReadState::kBody)) {
    read_drained_ = true;
    error_code ignored;
    stream_.socket().shutdown(Socket::shutdown_receive, ignored);
  }
}

void HttpSession::Touch() { shard_->conns.splice(shard_->conns.end(), shard_->conns, lru_); }

bool HttpSession::CanReadMore() const {
  const HttpServerOptions& o = *shard_->opts;
  if (in_flight_ >= o.pipeline_depth || slots_.size() >= 2 * o.pipeline_depth) return false;
  return slots_.empty() || inflight_bytes_ < o.max_inflight_bytes;
}

void HttpSession::ReadNext() {
  if (closed_ || read_state_ == ReadState::kStopped) return;
  if (!CanReadMore()) {
    read_state_ = ReadState::kPaused;
    return;
  }
  const HttpServerOptions& o = *shard_->opts;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(o.max_header_bytes));
  parser_->body_limit(o.max_body_bytes);
  read_timed_out_ = false;
  // Empty lines before a request line are ignored (RFC 9112 2.2: a client may send an
  // extra CRLF after a body). Only those already received.
  for (auto data = static_cast<const char*>(buf_.data().data());
       buf_.size() > 0 && (data[0] == '\r' || data[0] == '\n');
       data = static_cast<const char*>(buf_.data().data()))
    buf_.consume(1);
  if (buf_.size() > 0) {  // a pipelined request already (partly) here
    if (!head_deadline_armed_) {
      ArmRead(o.header_timeout);
      head_deadline_armed_ = true;
    }
    ReadHead();
    return;
  }
  WaitFirstByte();
}

void HttpSession::WaitFirstByte() {
  const HttpServerOptions& o = *shard_->opts;
  read_state_ = ReadState::kWaitFirstByte;
  // A new connection must send its first head within the head deadline; an idle
  // keep-alive connection may wait the idle timeout for its next request.
  if (!head_deadline_armed_) {
    if (served_any_) {
      ArmRead(o.idle_timeout);
    } else {
      ArmRead(o.header_timeout);
      head_deadline_armed_ = true;
    }
  }
  read_pending_ = true;
  if (stream_.tls()) {
    // Bytes of the next request may already sit in the TLS stream's buffers, where a wait
    // for the socket's readability would not see them: read instead.
    stream_.async_read_some(buf_.prepare(std::min(kFirstReadBytes, buf_.max_size() - buf_.size())),
                            [self = shared_from_this()](error_code ec, std::size_t n) {
                              self->read_pending_ = false;
                              if (self->closed_) return;
                              if (ec) return self->Close();
                              self->buf_.commit(n);
                              if (!self->head_deadline_armed_) {
                                self->ArmRead(self->shard_->opts->header_timeout);
                                self->head_deadline_armed_ = true;
                              }
                              self->ReadHead();
                            });
    return;
  }
  // Waiting for readability holds no buffer: an idle connection costs the session only.
  stream_.socket().async_wait(Socket::wait_read, [self = shared_from_this()](error_code ec) {
    self->read_pending_ = false;
    if (self->closed_) return;
    if (ec) return self->Close();
    if (!self->head_deadline_armed_) {
      self->ArmRead(self->shard_->opts->header_timeout);
      self->head_deadline_armed_ = true;
    }
    self->ReadHead();
  });
}

void HttpSession::ReadHead() {
  read_state_ = ReadState::kHead;
  read_pending_ = true;
  http::async_read_header(
      stream_, buf_, *parser_,
      [self = shared_from_this()](error_code ec, std::size_t) { self->OnHead(ec); });
}

void HttpSession::OnHead(error_code ec) {
  read_pending_ = false;
  if (closed_) return;
  const HttpServerOptions& o = *shard_->opts;
  if (ec) {
    if (read_drained_) return Refuse(503, "node is shutting down; retry another node");
    if (read_timed_out_) return Refuse(408, "the request head did not arrive in time");
    if (ec == http::error::header_limit)
      return Refuse(431, "request line and headers are larger than " +
                             std::to_string(o.max_header_bytes) + " bytes");
    if (ec == http::error::body_limit)
      return Refuse(413, "body is larger than " + std::to_string(o.max_body_bytes) + " bytes");
    if (IsParseError(ec)) return Refuse(400, "malformed request: " + ec.message());
    // The client closed (between requests, or mid-head) or the socket failed.
    read_state_ = ReadState::kStopped;
    if (slots_.empty() && in_flight_ == 0) return Close();
    // A stream has no end of its own to wait for: its reader is gone.
    for (const Slot& slot : slots_)
      if (slot.stream) return Close();
    if (!slots_.empty()) slots_.back().close = true;  // answer what was asked, then close
    return;
  }
  const auto& h = parser_->get();
  if (h.count(http::field::transfer_encoding) != 0) {
    if (h.count(http::field::content_length) != 0)
      return Refuse(400, "both Transfer-Encoding and Content-Length");
    if (h.count(http::field::transfer_encoding) != 1 ||
        !IEquals(TrimOws(h[http::field::transfer_encoding]), "chunked"))
      return Refuse(501, "Transfer-Encoding other than chunked is not supported");
  }
  // Every field of the name counts: a second one must not slip past the first.
  for (auto [ce, end] = h.equal_range(http::field::content_encoding); ce != end; ++ce)
    if (!IEquals(TrimOws(ce->value()), "identity"))
      return Refuse(415, "Content-Encoding is not supported: send the value itself");
  bool need_continue = false;
  for (auto [ex, end] = h.equal_range(http::field::expect); ex != end; ++ex) {
    if (!IEquals(TrimOws(ex->value()), "100-continue"))
      return Refuse(417, "only Expect: 100-continue is supported");
    need_continue = h.version() >= 11;
  }
  if (shard_->draining) return Refuse(503, "node is shutting down; retry another node");
  if (parser_->is_done()) return Dispatch();
  if (need_continue) {
    Slot s;
    s.interim = true;
    s.raw = kContinue;
    slots_.push_back(std::move(s));
    Flush();
  }
  ReadBody();
}

void HttpSession::ReadBody() {
  read_state_ = ReadState::kBody;
  ArmRead(shard_->opts->body_timeout);
  read_pending_ = true;
  http::async_read(stream_, buf_, *parser_,
                   [self = shared_from_this()](error_code ec, std::size_t) { self->OnBody(ec); });
}

void HttpSession::OnBody(error_code ec) {
  read_pending_ = false;
  if (closed_) return;
  if (ec) {
    if (read_drained_) return Refuse(503, "node is shutting down; retry another node");
    if (read_timed_out_) return Refuse(408, "the request body did not arrive in time");
    if (ec == http::error::body_limit)
      return Refuse(
          413, "body is larger than " + std::to_string(shard_->opts->max_body_bytes) + " bytes");
    if (IsParseError(ec)) return Refuse(400, "malformed request body: " + ec.message());
    read_state_ = ReadState::kStopped;  // the client went away mid-body
    if (slots_.empty() && in_flight_ == 0) return Close();
    if (!slots_.empty()) slots_.back().close = true;
    return;
  }
  Dispatch();
}

void HttpSession::Dispatch() {
  read_deadline_ = kNever;
  head_deadline_armed_ = false;
  served_any_ = true;  // from now on, waiting for a next request is keep-alive idling
  HttpRequest req = parser_->release();
  parser_.reset();
  Slot s;
  s.close = !req.keep_alive() || shard_->handler->LastOnConnection(req);
  s.version = req.version();
  s.bytes = req.body().size();
  slots_.push_back(std::move(s));
  const std::uint64_t seq = base_seq_ + slots_.size() - 1;
  ++in_flight_;
  inflight_bytes_ += slots_.back().bytes;
  read_state_ = slots_.back().close ? ReadState::kStopped : ReadState::kPaused;
  Touch();
  RequestInfo info{shard_->io.get_executor(), shard_->index, peer_, client_cn_};
  shard_->handler->Handle(std::move(req), info, Responder(shared_from_this(), seq));
  ReadNext();
}

void HttpSession::Post(std::uint64_t seq, HttpResponse res) {
  asio::post(shard_->io, [self = shared_from_this(), seq, res = std::move(res)]() mutable {
    self->Complete(seq, std::move(res));
  });
}

void HttpSession::PostStream(std::uint64_t seq, HttpResponse head,
                             std::shared_ptr<StreamState> state) {
  asio::post(shard_->io, [self = shared_from_this(), seq, head = std::move(head),
                          state = std::move(state)]() mutable {
    if (self->closed_) {
      std::lock_guard<std::mutex> l(state->mu);
      state->closed = true;
      return;
    }
    self->Complete(seq, std::move(head), std::move(state));
  });
}

void HttpSession::Kick(const std::shared_ptr<StreamState>& state) {
  {
    std::lock_guard<std::mutex> l(state->mu);
    if (state->kick_posted) return;
    state->kick_posted = true;
  }
  asio::post(shard_->io, [self = shared_from_this(), state] {
    {
      std::lock_guard<std::mutex> l(state->mu);
      state->kick_posted = false;
    }
    self->Flush();
  });
}

void HttpSession::Complete(std::uint64_t seq, HttpResponse res,
                           std::shared_ptr<StreamState> stream) {
  if (closed_) return;
  Invariant(seq >= base_seq_ && seq - base_seq_ < slots_.size(), "answer for an unknown request");
  const std::size_t idx = seq - base_seq_;
  Slot& s = slots_[idx];
  Invariant(!s.res.has_value() && !s.interim, "a request answered twice");
  --in_flight_;
  inflight_bytes_ -= s.bytes;
  if (shard_->draining && idx + 1 == slots_.size() && read_state_ != ReadState::kBody)
    s.close = true;
  if (stream) {
    // The connection ends with the stream; an HTTP/1.0 client reads to the close.
    s.close = true;
    s.stream = std::move(stream);
    res.body().clear();
    res.version(s.version);
    res.keep_alive(false);
    if (s.version >= 11) res.chunked(true);
    read_state_ = ReadState::kStopped;  // what follows a stream is never answered
  } else {
    res.version(s.version);
    res.keep_alive(!s.close);
    res.prepare_payload();
  }
  s.bytes = res.body().size();
  inflight_bytes_ += s.bytes;
  s.res = std::move(res);
  Flush();
  if (read_state_ == ReadState::kPaused) ReadNext();
}

void HttpSession::Refuse(int code, std::string_view message) {
  unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
  read_deadline_ = kNever;
  head_deadline_armed_ = false;
  read_state_ = ReadState::kStopped;
  parser_.reset();
  shard_->handler->CountRefused(code);
  HttpResponse res = ErrorAnswer(code, message);
  res.version(version);
  res.keep_alive(false);
  res.prepare_payload();
  Slot s;
  s.close = true;
  s.bytes = res.body().size();
  s.res = std::move(res);
  inflight_bytes_ += s.bytes;
  slots_.push_back(std::move(s));
  Flush();
}

void HttpSession::Flush() {
  if (writing_ || closed_ || slots_.empty()) return;
  Slot& f = slots_.front();
  if (!f.interim && !f.res) return;
  writing_ = true;
  write_deadline_ = shard_->now + shard_->opts->write_timeout;
  Schedule(write_deadline_);
  auto done = [self = shared_from_this()](error_code ec, std::size_t) { self->OnWritten(ec); };
  if (f.stream) {
    if (!FlushStream(f)) {
      writing_ = false;
      write_deadline_ = kNever;
      return;
    }
    asio::async_write(stream_, asio::buffer(stream_buf_), std::move(done));
  } else if (f.interim) {
    asio::async_write(stream_, asio::buffer(f.raw), std::move(done));
  } else {
    http::async_write(stream_, *f.res, std::move(done));
  }
}

bool HttpSession::FlushStream(Slot& f) {
  stream_buf_.clear();
  if (!f.head_written) {  // the status line and headers, as Beast would write them
    const HttpResponse& h = *f.res;
    stream_buf_.append(f.version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ");
    stream_buf_.append(std::to_string(h.result_int())).append(" ");
    stream_buf_.append(h.reason()).append("\r\n");
    for (const auto& field : h)
      stream_buf_.append(field.name_string()).append(": ").append(field.value()).append("\r\n");
    stream_buf_.append("\r\n");
    f.head_written = true;
  }
  const bool chunked = f.version >= 11;
  std::lock_guard<std::mutex> l(f.stream->mu);
  for (; !f.stream->pieces.empty(); f.stream->pieces.pop_front()) {
    const std::string& p = f.stream->pieces.front();
    f.writing += p.size();
    if (chunked) {
      char size[24];
      std::snprintf(size, sizeof(size), "%zx\r\n", p.size());
      stream_buf_.append(size);
    }
    stream_buf_.append(p);
    if (chunked) stream_buf_.append("\r\n");
  }
  if (f.stream->ended) {
    if (chunked) stream_buf_.append("0\r\n\r\n");
    f.finished = true;
  }
  return !stream_buf_.empty() || f.finished;
}

void HttpSession::OnWritten(error_code ec) {
  writing_ = false;
  write_deadline_ = kNever;
  if (closed_) return;
  if (ec) return Close();
  if (Slot& f = slots_.front(); f.stream) {
    {
      std::lock_guard<std::mutex> l(f.stream->mu);
      f.stream->backlog -= f.writing;
    }
    f.writing = 0;
    Touch();
    if (!f.finished) return Flush();  // more may be queued; else the next Kick
  }
  Slot done = std::move(slots_.front());
  slots_.pop_front();
  ++base_seq_;
  if (!done.interim) {
    inflight_bytes_ -= done.bytes;
    Touch();
  }
  if (done.close) {
    if (read_pending_) return Close();  // draining while a next request was awaited
    return CloseAfterAnswer();
  }
  if (read_state_ == ReadState::kPaused) ReadNext();
  Flush();
  if (shard_->draining) Drain();
}

void HttpSession::CloseAfterAnswer() {
  read_state_ = ReadState::kStopped;
  slots_.clear();
  lingering_ = true;
  ArmRead(kLingerTime);  // bounds the linger and the TLS shutdown alike
  if (stream_.tls()) {
    stream_.AsyncShutdown([self = shared_from_this()](error_code) { self->Close(); });
    return;
  }
  error_code ignored;
  stream_.socket().shutdown(Socket::shutdown_send, ignored);
  Linger();
}

void HttpSession::Linger() {
  if (!linger_buf_) linger_buf_ = std::make_unique<std::array<char, 4096>>();
  stream_.socket().async_read_some(asio::buffer(*linger_buf_),
                                   [self = shared_from_this()](error_code ec, std::size_t n) {
                                     self->lingered_ += n;
                                     if (ec || self->closed_ || self->lingered_ >= kLingerBytes)
                                       return self->Close();
                                     self->Linger();
                                   });
}

void HttpSession::ArmRead(std::chrono::milliseconds d) {
  read_deadline_ = shard_->now + d;
  Schedule(read_deadline_);
}

void HttpSession::Schedule(Clock::time_point deadline) {
  if (!closed_) shard_->wheel.Schedule(&wheel_link_, deadline);
}

void HttpSession::CheckDeadlines(Clock::time_point now) {
  if (closed_) return;
  if (writing_ && now >= write_deadline_) {
    ++shard_->timeouts;  // the client does not read its answers
    return Close();
  }
  if (now >= read_deadline_) {
    read_deadline_ = kNever;
    OnReadDeadline();  // may arm a new read deadline (and so register it)
  }
  if (closed_) return;
  // This registration fired early (a deadline moved later or was cleared) or the read
  // deadline was re-armed: register what is still pending.
  const Clock::time_point next = std::min(read_deadline_, writing_ ? write_deadline_ : kNever);
  if (next != kNever) Schedule(next);
}

void HttpSession::OnReadDeadline() {
  switch (read_state_) {
    case ReadState::kHandshake:
      ++shard_->timeouts;  // Close() ends the handshake: OnHandshake sees closed_
      Close();
      return;
    case ReadState::kWaitFirstByte:
      if (!slots_.empty() || in_flight_ != 0) {  // busy answering: not idle
        ArmRead(shard_->opts->idle_timeout);
        return;
      }
      ++shard_->timeouts;
      Close();
      return;
    case ReadState::kHead:
    case ReadState::kBody: {
      // End the pending read without touching a write in progress: it completes with
      // end of stream, and OnHead/OnBody answer 408.
      ++shard_->timeouts;
      read_timed_out_ = true;
      error_code ignored;
      stream_.socket().shutdown(Socket::shutdown_receive, ignored);
      return;
    }
    case ReadState::kPaused:
      return;
    case ReadState::kStopped:
      if (lingering_) Close();
      return;
  }
}

}  // namespace kv
