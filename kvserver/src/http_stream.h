// HttpStream: the byte stream of one front-door connection, plain TCP or TLS over it,
// chosen at accept. It is an Asio AsyncReadStream and AsyncWriteStream (what Beast's
// http::async_read/async_write take), so HttpSession has one implementation for both:
// only the handshake, the wait for a next request and the close differ (http_session.cc).
//
// TLS is Beast's ssl_stream (Asio's SSL stream behind a write-coalescing layer, so that a
// response's buffers go out as one record, not one per header buffer).
//
// Not chosen: HttpSession as a template on the stream type (its shard, wheel and
// Responder would need a virtual base, and every member function would move to a
// header); a branch per operation is cheaper to read and costs nothing measurable.
//
// Thread safety: as the socket's; used on its session's I/O thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <memory>
#include <optional>
#include <utility>

namespace kv {

// Sockets bound to the io_context's own executor type: no type-erased executor (and its
// work tracking) on every asynchronous operation.
using Socket =
    boost::asio::ip::tcp::socket::rebind_executor<boost::asio::io_context::executor_type>::other;

class HttpStream {
 public:
  using executor_type = boost::asio::io_context::executor_type;

  // Plain when `tls` is null; else TLS over `socket` with the context `tls` (kept alive
  // as long as the stream), server or client side as the handshake says.
  HttpStream(Socket socket, std::shared_ptr<boost::asio::ssl::context> tls)
      : tls_ctx_(std::move(tls)) {
    if (tls_ctx_) {
      tls_.emplace(std::move(socket), *tls_ctx_);
    } else {
      plain_.emplace(std::move(socket));
    }
  }

  executor_type get_executor() { return socket().get_executor(); }
  // The TCP socket under TLS, or the stream itself when plain.
  Socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  bool tls() const { return tls_.has_value(); }
  // The OpenSSL connection (for the peer's certificate); nullptr when plain.
  ssl_st* native_tls() { return tls_ ? tls_->native_handle() : nullptr; }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_->async_read_some(buffers, std::forward<Handler>(handler));
    }
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      plain_->async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

  // TLS only.
  template <class Handler>
  void AsyncHandshake(boost::asio::ssl::stream_base::handshake_type side, Handler&& handler) {
    tls_->async_handshake(side, std::forward<Handler>(handler));
  }

  // TLS client side, before the handshake: the server's certificate must name `host` (a
  // DNS name or an IP address, matched against its subjectAltName), and a DNS name is
  // sent as SNI.
  void VerifyServerName(const std::string& host) {
    tls_->set_verify_callback(boost::asio::ssl::host_name_verification(host));
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (ec) SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());
  }

  // TLS only: sends close_notify, then reads (and drops) what the client still sends
  // until its close_notify or the end of the connection.
  template <class Handler>
  void AsyncShutdown(Handler&& handler) {
    tls_->async_shutdown(std::forward<Handler>(handler));
  }

 private:
  std::shared_ptr<boost::asio::ssl::context> tls_ctx_;  // before tls_: outlives it
  std::optional<Socket> plain_;
  std::optional<boost::beast::ssl_stream<Socket>> tls_;
};

}  // namespace kv
