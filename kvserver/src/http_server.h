// HttpServer: kvserver's event-driven HTTP/1.1 front door (Boost.Beast on Boost.Asio).
//
// A fixed number of I/O threads, each an io_context with its own SO_REUSEPORT acceptor
// and its own connections: a connection lives on one thread from accept to close, so a
// session needs no lock. Every limit is enforced as bytes arrive (docs/http-api.md,
// "Limits"): head size (431), body size for every transfer encoding (413), head and body
// deadlines (408), idle keep-alive timeout, pipelined requests in flight and the bytes
// they hold per connection, open connections (the longest-idle is evicted at the cap).
//
// HTTPS (options.tls): each connection is TLS 1.3 from its first byte, with the same
// deadlines and cap; the handshake must finish within the head deadline (http_session.h).
//
// Not chosen: a thread pool running handlers (handlers never block: Raft work completes
// through callbacks), one acceptor handing connections to threads (a cross-thread hop per
// accept and a shared connection list).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http_tls.h"
#include "http_types.h"
#include "logger.h"
#include "raft/status.h"

namespace boost::asio {
class io_context;
}

namespace kv {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 3000;
  int threads = 1;
  std::size_t max_conns = 10000;  // across all threads
  std::size_t max_header_bytes = 16384;
  std::size_t max_body_bytes = 1 << 20;
  std::size_t pipeline_depth = 16;
  // Request bodies being served plus answers waiting to be written, per connection;
  // reading pauses above it (one request is always admitted).
  std::size_t max_inflight_bytes = 4 << 20;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds idle_timeout{120000};
  std::chrono::milliseconds write_timeout{30000};
  int listen_backlog = 4096;
  StructuredLogger* logger = nullptr;
  // HTTPS when set: each new connection takes tls->Current() (so a reload applies to the
  // connections accepted after it). Must outlive the server.
  HttpTlsContexts* tls = nullptr;
};

// Counters, read from any thread.
struct HttpServerStats {
  std::uint64_t open = 0;
  std::uint64_t accepted = 0;
  std::uint64_t evicted = 0;   // idle connections closed to admit new ones at the cap
  std::uint64_t rejected = 0;  // new connections refused at the cap (none idle)
  std::uint64_t timeouts = 0;  // head, body, idle and write deadlines that closed one
  std::uint64_t accept_errors = 0;
  // HTTPS: handshakes that failed (plain HTTP, no or an untrusted client certificate, a
  // protocol below TLS 1.3). Handshakes cut by the deadline count as timeouts.
  std::uint64_t tls_handshake_failures = 0;
};

class HttpServer {
 public:
  // Binds and listens (every thread's acceptor) so that errors show at start; serves
  // nothing until Run(). `handler` must outlive the server.
  static raft::Result<std::unique_ptr<HttpServer>> Listen(const HttpServerOptions& options,
                                                          HttpHandler* handler);
  ~HttpServer();

  // Runs the I/O threads; returns after Stop(). Call once.
  void Run();
  // Graceful part of shutdown: closes the acceptors and idle connections; every request
  // still arriving is answered 503 with Connection: close; answers in flight are written,
  // then their connections close. Any thread; idempotent.
  void StopAccepting();
  // Open connections (for draining).
  std::size_t open_connections() const;
  // Closes every connection and ends Run(). Any thread; idempotent. Callbacks that
  // complete later are dropped; the io_contexts stay alive until destruction.
  void Stop();

  HttpServerStats stats() const;
  std::size_t threads() const;
  // The bound port (the one asked for, or the kernel's pick for port 0).
  std::uint16_t port() const;
  boost::asio::io_context& io(std::size_t i);

  struct Shard;  // one I/O thread: io_context, acceptor, connections (http_server.cc)

 private:
  HttpServer() = default;
  HttpServerOptions opts_;
  HttpHandler* handler_ = nullptr;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

}  // namespace kv
