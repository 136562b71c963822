// HttpServer: listeners, I/O threads and the connection cap (see http_server.h).
#include "http_server.h"

#include <pthread.h>
#include <sys/socket.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "http_session.h"

namespace kv {
namespace {

using error_code = boost::system::error_code;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// The answer to a connection refused at the cap, written without a session.
constexpr std::string_view kBusyAnswer =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    "Connection: close\r\nContent-Length: 58\r\n\r\n"
    "{\"error\":\"too many connections (-http-max-conns); retry\"}\n";
static_assert(kBusyAnswer.size() - kBusyAnswer.find("\r\n\r\n") - 4 == 58);

// How many candidates EvictIdle looks at before giving up (the oldest are nearly always
// idle; ones busy with a request move to the back when they finish).
constexpr std::size_t kEvictScan = 256;
constexpr std::chrono::milliseconds kAcceptBackoff{100};

void Accept(HttpServer::Shard* shard);

void OnAccepted(HttpServer::Shard* shard, error_code ec, Socket socket) {
  if (ec == asio::error::operation_aborted || !shard->acceptor || !shard->acceptor->is_open())
    return;
  if (ec) {
    ++shard->accept_errors;
    // Out of descriptors or memory: back off instead of spinning on accept (the pending
    // connections stay in the kernel's queue meanwhile).
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
        ec == asio::error::no_memory || ec.value() == ENFILE) {
      if (shard->opts->logger && shard->accept_errors % 100 == 1)
        shard->opts->logger->Log(raft::LogLevel::kWarn, "http", "accept failed; backing off",
                                 {{"error", ec.message()}});
      shard->accept_backoff->expires_after(kAcceptBackoff);
      shard->accept_backoff->async_wait([shard](error_code e) {
        if (!e) Accept(shard);
      });
      return;
    }
    return Accept(shard);
  }
  ++shard->accepted;
  if (shard->draining) {
    error_code ignored;
    socket.close(ignored);
  } else if (shard->open >= shard->max_conns && !shard->EvictIdle()) {
    ++shard->rejected;
    // Best effort, never blocking: the socket buffer of a new connection takes it.
    ::send(socket.native_handle(), kBusyAnswer.data(), kBusyAnswer.size(),
           MSG_NOSIGNAL | MSG_DONTWAIT);
    error_code ignored;
    socket.close(ignored);
  } else {
    std::make_shared<HttpSession>(shard, std::move(socket),
                                  shard->opts->tls ? shard->opts->tls->Current() : nullptr)
        ->Start();
  }
  Accept(shard);
}

void Accept(HttpServer::Shard* shard) {
  shard->acceptor->async_accept(
      shard->io, [shard](error_code ec, Socket s) { OnAccepted(shard, ec, std::move(s)); });
}

// Every kSweepInterval: refreshes the shard's clock and acts on the deadlines due (only
// those sessions: the wheel holds each one at its earliest deadline).
void Sweep(HttpServer::Shard* shard) {
  shard->now = Clock::now();
  shard->wheel.Advance(shard->now, [shard](HttpSession* s) {
    auto keep = s->shared_from_this();  // CheckDeadlines may close it
    s->CheckDeadlines(shard->now);
  });
  shard->sweep->expires_after(kSweepInterval);
  shard->sweep->async_wait([shard](error_code ec) {
    if (!ec) Sweep(shard);
  });
}

// Every session of the shard, kept alive while the caller walks them (closing one
// unlinks it from the list).
std::vector<std::shared_ptr<HttpSession>> Sessions(HttpServer::Shard* shard) {
  std::vector<std::shared_ptr<HttpSession>> out;
  out.reserve(shard->conns.size());
  for (HttpSession* s : shard->conns) out.push_back(s->shared_from_this());
  return out;
}

}  // namespace

bool HttpServer::Shard::EvictIdle() {
  std::size_t n = 0;
  for (HttpSession* s : conns) {
    if (++n > kEvictScan) break;
    if (s->Idle()) {
      ++evicted;
      s->Close();
      return true;
    }
  }
  return false;
}

raft::Result<std::unique_ptr<HttpServer>> HttpServer::Listen(const HttpServerOptions& options,
                                                             HttpHandler* handler) {
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->opts_ = options;
  server->handler_ = handler;
  const auto n = static_cast<std::size_t>(std::max(1, options.threads));
  auto fail = [&](const std::string& what, const error_code& ec) {
    return raft::Status(raft::ErrorCode::kIOError, "cannot listen on " + options.host + ":" +
                                                       std::to_string(options.port) + ": " + what +
                                                       ": " + ec.message());
  };
  tcp::endpoint endpoint;
  {
    asio::io_context resolve_io;
    tcp::resolver resolver(resolve_io);
    error_code ec;
    auto results = resolver.resolve(options.host, std::to_string(options.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) return fail("resolve", ec);
    endpoint = results.begin()->endpoint();
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto shard = std::make_unique<Shard>(i);
    shard->opts = &server->opts_;
    shard->handler = handler;
    shard->max_conns =
        std::max<std::size_t>(1, options.max_conns / n + (i == 0 ? options.max_conns % n : 0));
    shard->acceptor.emplace(shard->io);
    shard->accept_backoff.emplace(shard->io);
    shard->sweep.emplace(shard->io);
    error_code ec;
    shard->acceptor->open(endpoint.protocol(), ec);
    if (ec) return fail("socket", ec);
    shard->acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    // Each thread accepts on its own socket; the kernel spreads new connections.
    if (n > 1) shard->acceptor->set_option(ReusePort(true), ec);
    if (ec) return fail("setsockopt", ec);
    shard->acceptor->bind(endpoint, ec);
    if (ec) return fail("bind", ec);
    if (endpoint.port() == 0) endpoint = shard->acceptor->local_endpoint(ec);  // port 0: reuse
    // A burst of new connections (64 clients at once) must not overflow the SYN queue.
    shard->acceptor->listen(options.listen_backlog, ec);
    if (ec) return fail("listen", ec);
    server->shards_.push_back(std::move(shard));
  }
  return server;
}

HttpServer::~HttpServer() {
  Stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void HttpServer::Run() {
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    threads_.emplace_back([s, stopped = &stopped_] {
      std::string name = "http-io-" + std::to_string(s->index);
      pthread_setname_np(pthread_self(), name.c_str());
      // Work arrives from Raft callbacks at any time; the loop runs until Stop().
      Guard guard(s->io.get_executor());
      if (!stopped->load()) {
        Accept(s);
        Sweep(s);
        s->io.run();
      }
    });
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void HttpServer::StopAccepting() {
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    asio::post(s->io, [s] {
      if (s->draining) return;
      s->draining = true;
      error_code ignored;
      s->acceptor->close(ignored);
      s->accept_backoff->cancel();
      for (auto& session : Sessions(s)) session->Drain();
    });
  }
}

std::size_t HttpServer::open_connections() const {
  std::size_t n = 0;
  for (const auto& s : shards_) n += s->open.load();
  return n;
}

void HttpServer::Stop() {
  if (stopped_.exchange(true)) return;
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    asio::post(s->io, [s] {
      error_code ignored;
      s->acceptor->close(ignored);
      s->accept_backoff->cancel();
      s->sweep->cancel();
      for (auto& session : Sessions(s)) session->Close();
      s->io.stop();
    });
  }
}

HttpServerStats HttpServer::stats() const {
  HttpServerStats st;
  for (const auto& s : shards_) {
    st.open += s->open.load();
    st.accepted += s->accepted.load();
    st.evicted += s->evicted.load();
    st.rejected += s->rejected.load();
    st.timeouts += s->timeouts.load();
    st.accept_errors += s->accept_errors.load();
    st.tls_handshake_failures += s->tls_handshake_failures.load();
  }
  return st;
}

std::size_t HttpServer::threads() const { return shards_.size(); }

std::uint16_t HttpServer::port() const {
  error_code ec;
  auto ep = shards_.front()->acceptor->local_endpoint(ec);
  return ec ? 0 : ep.port();
}

asio::io_context& HttpServer::io(std::size_t i) { return shards_.at(i)->io; }

}  // namespace kv
