// PeerStream: the byte stream of one Raft peer connection, either plain TCP or TLS over
// TCP (tls_context.h), behind one interface so that PeerConn and InboundConn read and
// write the same way whichever it is. The framing of docs/wire-protocol.md runs on top;
// with TLS, all of it (the application handshake included) runs inside the TLS session.
//
// Lifetime: shared_ptr-owned. Every Async* call keeps the stream alive until its handler
// has run (an OpenSSL operation in flight refers to the stream's state), so a connection
// may drop its stream (Close() and replace it) while operations are still pending: they
// complete with an error and the handler's own staleness checks ignore them.
//
// Contract (as asio::ssl::stream's): at most one read and one write in flight at a time,
// all on the io thread. Close() is not a TLS close_notify: the peer sees the connection
// end (our framing is self-delimiting, so a truncation attack can only cut a frame,
// which the peer's decoder never delivers).
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <memory>
#include <optional>
#include <utility>

#include "runtime/tls_context.h"

namespace raft::runtime {

class PeerStream : public std::enable_shared_from_this<PeerStream> {
 public:
  using Socket = asio::ip::tcp::socket;

  // A new unconnected stream; `tls` null: plain TCP, otherwise TLS with that context
  // (the stream keeps a reference: a reload does not affect it).
  static std::shared_ptr<PeerStream> Make(asio::io_context& io, TlsContextPtr tls) {
    return std::shared_ptr<PeerStream>(new PeerStream(Socket(io), std::move(tls)));
  }
  // A stream over an accepted socket.
  static std::shared_ptr<PeerStream> Adopt(Socket sock, TlsContextPtr tls) {
    return std::shared_ptr<PeerStream>(new PeerStream(std::move(sock), std::move(tls)));
  }

  bool tls() const { return tls_.has_value(); }
  // The TCP layer: options, endpoints.
  Socket& socket() { return tls_ ? tls_->next_layer() : plain_; }

  // Dials `ep`, then, with TLS, runs the client side of the TLS handshake (our
  // certificate, the server's verified). `h(asio::error_code)` once, after both.
  template <class Handler>
  void AsyncConnect(const asio::ip::tcp::endpoint& ep, Handler&& h) {
    socket().async_connect(ep, [self = shared_from_this(),
                                h = std::forward<Handler>(h)](asio::error_code ec) mutable {
      if (ec || !self->tls_) {
        h(ec);
        return;
      }
      self->tls_->async_handshake(asio::ssl::stream_base::client,
                                  [self, h = std::move(h)](asio::error_code e) mutable { h(e); });
    });
  }
  // The server side of the TLS handshake on an accepted stream (the dialer's certificate
  // verified); plain TCP: nothing to do, `h` runs (posted) without an error.
  template <class Handler>
  void AsyncAccept(Handler&& h) {
    if (!tls_) {
      asio::post(plain_.get_executor(),
                 [self = shared_from_this(), h = std::forward<Handler>(h)]() mutable { h({}); });
      return;
    }
    tls_->async_handshake(asio::ssl::stream_base::server,
                          [self = shared_from_this(),
                           h = std::forward<Handler>(h)](asio::error_code ec) mutable { h(ec); });
  }
  // `h(asio::error_code, std::size_t)` as asio's async_read_some.
  template <class Buffers, class Handler>
  void AsyncReadSome(const Buffers& bufs, Handler&& h) {
    auto wrapped = [self = shared_from_this(), h = std::forward<Handler>(h)](
                       asio::error_code ec, std::size_t n) mutable { h(ec, n); };
    if (tls_) {
      tls_->async_read_some(bufs, std::move(wrapped));
    } else {
      plain_.async_read_some(bufs, std::move(wrapped));
    }
  }
  // Writes all of `bufs` (asio::async_write); `h(asio::error_code, std::size_t)`.
  template <class Buffers, class Handler>
  void AsyncWrite(const Buffers& bufs, Handler&& h) {
    auto wrapped = [self = shared_from_this(), h = std::forward<Handler>(h)](
                       asio::error_code ec, std::size_t n) mutable { h(ec, n); };
    if (tls_) {
      asio::async_write(*tls_, bufs, std::move(wrapped));
    } else {
      asio::async_write(plain_, bufs, std::move(wrapped));
    }
  }
  // Closes the socket; operations in flight complete with an error.
  void Close() {
    asio::error_code ignored;
    socket().close(ignored);
  }

 private:
  PeerStream(Socket sock, TlsContextPtr tls) : plain_(sock.get_executor()), ctx_(std::move(tls)) {
    if (ctx_) {
      tls_.emplace(std::move(sock), *ctx_);
    } else {
      plain_ = std::move(sock);
    }
  }

  Socket plain_;       // the socket when !tls_ (unused, closed, otherwise)
  TlsContextPtr ctx_;  // with TLS, outlives tls_ (declared before it)
  std::optional<asio::ssl::stream<Socket>> tls_;
};

}  // namespace raft::runtime
