// LeaderClient: pooled, asynchronous forwarding to the leader (see http_forward.h).
#include "http_forward.h"

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "flags.h"
#include "http_stream.h"

namespace kv {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

struct LeaderClient::Conn {
  Conn(const asio::io_context::executor_type& io, std::shared_ptr<asio::ssl::context> tls)
      : stream(Socket(io), std::move(tls)) {}
  HttpStream stream;  // TLS when the node serves HTTPS
  boost::beast::flat_buffer buf;
  Clock::time_point idle_since;
};

struct LeaderClient::Op {
  Op(const asio::any_io_executor& io) : timer(io), resolver(io) {}
  std::string addr;
  HttpRequest req;
  std::chrono::milliseconds timeout{};
  std::function<void(ForwardResult)> done;
  std::unique_ptr<Conn> conn;
  bool reused = false;  // conn came from the pool
  bool timed_out = false;
  asio::steady_timer timer;
  tcp::resolver resolver;
  std::optional<http::response_parser<http::string_body>> parser;
};

LeaderClient::LeaderClient(asio::io_context::executor_type io, Options options)
    : io_(std::move(io)), opts_(options) {}

LeaderClient::~LeaderClient() = default;

std::unique_ptr<LeaderClient::Conn> LeaderClient::TakePooled(const std::string& addr) {
  auto it = idle_.find(addr);
  if (it == idle_.end()) return nullptr;
  auto& v = it->second;
  while (!v.empty()) {
    std::unique_ptr<Conn> c = std::move(v.back());
    v.pop_back();
    if (Clock::now() - c->idle_since > opts_.max_idle) continue;
    // The leader may have closed it meanwhile: EOF or an error pending means not usable.
    char b;
    ssize_t n = ::recv(c->stream.socket().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) continue;
    if (n > 0) continue;  // unsolicited bytes: not in a known state
    return c;
  }
  return nullptr;
}

void LeaderClient::Send(const std::string& addr, HttpRequest req, std::chrono::milliseconds timeout,
                        std::function<void(ForwardResult)> done) {
  auto op = std::make_shared<Op>(io_);
  op->addr = addr;
  op->req = std::move(req);
  op->req.keep_alive(true);
  op->req.prepare_payload();
  op->timeout = timeout;
  op->done = std::move(done);
  op->conn = TakePooled(addr);
  if (op->conn) {
    op->reused = true;
    return Write(std::move(op));
  }
  Connect(std::move(op));
}

void LeaderClient::Connect(std::shared_ptr<Op> op) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(op->addr, &host, &port))
    return Finish(op, {ForwardResult::Kind::kNotSent, {}, "bad leader address " + op->addr});
  op->conn = std::make_unique<Conn>(io_, opts_.tls ? opts_.tls->CurrentClient() : nullptr);
  op->reused = false;
  op->timer.expires_after(opts_.connect_timeout);
  op->timer.async_wait([op](error_code ec) {
    if (ec) return;
    op->timed_out = true;
    op->resolver.cancel();
    error_code ignored;
    if (op->conn) op->conn->stream.socket().close(ignored);
  });
  op->resolver.async_resolve(
      host, std::to_string(port), tcp::resolver::numeric_service,
      [this, op, host](error_code ec, tcp::resolver::results_type results) {
        if (ec) {
          op->timer.cancel();
          return Finish(op, {ForwardResult::Kind::kNotSent,
                             {},
                             "cannot resolve the leader " + op->addr + ": " + ec.message()});
        }
        asio::async_connect(op->conn->stream.socket(), results,
                            [this, op, host](error_code e, const tcp::endpoint&) {
                              if (e) {
                                op->timer.cancel();
                                return Finish(
                                    op, {ForwardResult::Kind::kNotSent,
                                         {},
                                         "leader at " + op->addr + " unreachable: " +
                                             (op->timed_out ? "connect timed out" : e.message())});
                              }
                              error_code ignored;
                              op->conn->stream.socket().set_option(tcp::no_delay(true), ignored);
                              if (op->conn->stream.tls()) return Handshake(op, host);
                              op->timer.cancel();
                              Write(op);
                            });
      });
}

// Within the connect deadline (its timer still runs): nothing of the request has left.
void LeaderClient::Handshake(std::shared_ptr<Op> op, std::string host) {
  op->conn->stream.VerifyServerName(host);
  op->conn->stream.AsyncHandshake(asio::ssl::stream_base::client, [this, op](error_code ec) {
    op->timer.cancel();
    if (ec) {
      std::string msg = "TLS handshake with the leader at ";
      msg.append(op->addr).append(" failed: ");
      msg.append(op->timed_out ? std::string("timed out") : ec.message());
      return Finish(op, {ForwardResult::Kind::kNotSent, {}, std::move(msg)});
    }
    Write(op);
  });
}

void LeaderClient::Write(std::shared_ptr<Op> op) {
  op->timed_out = false;
  op->timer.expires_after(op->timeout);
  op->timer.async_wait([op](error_code ec) {
    if (ec) return;
    op->timed_out = true;
    error_code ignored;
    if (op->conn) op->conn->stream.socket().close(ignored);
  });
  http::async_write(op->conn->stream, op->req, [this, op](error_code ec, std::size_t) {
    if (ec) {
      // Not all of it left: the leader cannot have taken it for a request. A pooled
      // connection may just have been closed by the leader: try once on a new one.
      if (op->reused && !op->timed_out) {
        op->timer.cancel();
        return Connect(op);
      }
      op->timer.cancel();
      return Finish(op, {ForwardResult::Kind::kNotSent,
                         {},
                         "sending to the leader at " + op->addr + " failed: " + ec.message()});
    }
    Read(op);
  });
}

void LeaderClient::Read(std::shared_ptr<Op> op) {
  op->parser.emplace();
  op->parser->body_limit(opts_.max_answer_bytes);
  http::async_read(
      op->conn->stream, op->conn->buf, *op->parser, [this, op](error_code ec, std::size_t) {
        op->timer.cancel();
        if (ec)
          return Finish(op, {ForwardResult::Kind::kUnknown,
                             {},
                             op->timed_out ? "the leader did not answer in time"
                                           : "lost the leader's answer: " + ec.message()});
        ForwardResult r;
        r.kind = ForwardResult::Kind::kAnswered;
        r.res = op->parser->release();
        if (r.res.keep_alive()) {
          auto& pool = idle_[op->addr];
          if (pool.size() < opts_.max_idle_per_leader) {
            op->conn->idle_since = Clock::now();
            pool.push_back(std::move(op->conn));
          }
        }
        Finish(op, std::move(r));
      });
}

void LeaderClient::Finish(std::shared_ptr<Op> op, ForwardResult r) {
  auto done = std::move(op->done);
  op->conn.reset();
  if (done) done(std::move(r));
}

}  // namespace kv
