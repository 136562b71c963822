// The HTTP message types of kvserver's front door (Boost.Beast) and the one-shot
// completion a handler answers through. Included by the server and the route files only:
// Beast is heavy, so kv_server.h and the state machine do not include it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace kv {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

class HttpSession;
struct StreamState;  // http_session.h

// A streamed answer (GET /watch): the head, then pieces as the handler makes them, then
// the end. HTTP/1.1 sends them with chunked transfer encoding (one chunk per Write);
// HTTP/1.0 sends the bytes as they are and marks the end by closing. The connection
// always closes after a streamed answer. Any thread; copies share one stream.
class ResponseStream {
 public:
  ResponseStream(std::shared_ptr<HttpSession> session, std::shared_ptr<StreamState> state);
  // Queues `piece` (empty pieces are dropped: an empty chunk would end the answer). False
  // once the connection is gone: the handler should stop writing.
  bool Write(std::string piece) const;
  // Ends the answer; the connection closes once everything queued is written. Idempotent.
  void End() const;
  // Bytes queued and not yet written (the handler keeps this bounded).
  std::size_t Backlog() const;
  bool Closed() const;

 private:
  std::shared_ptr<HttpSession> session_;
  std::shared_ptr<StreamState> state_;
};

// Answers one request. Copyable (it shares one state); call it exactly once, from any
// thread: the answer is handed to the connection's I/O thread and written in request
// order. A call after the connection closed is dropped.
class Responder {
 public:
  Responder(std::shared_ptr<HttpSession> session, std::uint64_t seq);
  void operator()(HttpResponse res) const;
  // Answers with a stream instead (the same "exactly once": either this or operator()).
  // `head` is the status and headers; its body is ignored.
  ResponseStream Stream(HttpResponse head) const;

 private:
  std::shared_ptr<HttpSession> session_;
  std::uint64_t seq_;
};

// Where a request is being served: its I/O thread (for timers and continuations that
// must run there), the peer's address and, over HTTPS with -client-cert-auth, who the
// client's certificate says it is.
struct RequestInfo {
  boost::asio::any_io_executor io;
  std::size_t io_index = 0;  // 0 .. threads-1
  std::string peer;          // "ip:port"
  // The subject common name of the client certificate verified in this connection's TLS
  // handshake (against -trusted-ca-file); nullopt over plain HTTP, without
  // -client-cert-auth, or when the subject has no single CN (http_tls.h).
  std::optional<std::string> client_cn;
};

// Serves complete requests. Handle runs on an I/O thread and must not block: work that
// waits (Raft, the leader) completes later through the Responder.
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual void Handle(HttpRequest req, const RequestInfo& info, Responder respond) = 0;
  // Whether `req` may be answered with a stream (GET /watch). Such a request is the last
  // its connection carries: the session reads nothing after it, and its answer, stream
  // or error, says Connection: close. A stream has no end a client could wait for, so a
  // request pipelined behind it would be run and never answered; a client resends what
  // a close left unanswered (RFC 9112 9.3.2) and must not find it already run. Called on
  // the session's thread, before Handle.
  virtual bool LastOnConnection(const HttpRequest& /*req*/) const { return false; }
  // An answer the server made itself (limits, malformed input, timeouts), for metrics.
  virtual void CountRefused(int code) = 0;
};

}  // namespace kv
