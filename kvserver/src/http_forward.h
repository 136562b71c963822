// LeaderClient: forwards requests from a follower to the leader over pooled keep-alive
// connections, on the I/O thread of the request (no thread waits for the leader).
//
// What a failure means decides the answer (security review F-7): nothing of the request
// reached the leader (no connection, or the write failed before it was whole) is "not
// sent", safe to retry (503); once the request was written, a lost or late answer is
// "outcome unknown" (504): the leader may have applied it.
//
// HTTPS (Options::tls): every node of a cluster serves the same scheme, so a node that
// serves HTTPS calls the leader over HTTPS, with its own certificate as the client's and
// the leader's certificate verified against -trusted-ca-file and the leader's host.
//
// Thread safety: one LeaderClient per I/O thread; every call on that thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "http_tls.h"
#include "http_types.h"

namespace kv {

struct ForwardResult {
  enum class Kind { kAnswered, kNotSent, kUnknown };
  Kind kind = Kind::kNotSent;
  HttpResponse res;   // kAnswered
  std::string error;  // otherwise: what failed
};

class LeaderClient {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{2000};
    // A pooled connection idle longer than this is closed rather than reused: the leader
    // closes idle connections after its -http-idle-timeout-ms, and a request written to a
    // connection it just closed would have an unknown outcome.
    std::chrono::milliseconds max_idle{30000};
    std::size_t max_idle_per_leader = 64;
    std::size_t max_answer_bytes = (1 << 20) + 65536;
    // HTTPS when set (its CurrentClient() for each new connection); must outlive this.
    HttpTlsContexts* tls = nullptr;
  };
  LeaderClient(boost::asio::io_context::executor_type io, Options options);
  ~LeaderClient();

  // Sends `req` to `addr` ("host:port") and calls `done` on this I/O thread with the
  // answer or the kind of failure. `timeout` bounds the wait for the answer once sent.
  void Send(const std::string& addr, HttpRequest req, std::chrono::milliseconds timeout,
            std::function<void(ForwardResult)> done);

  struct Conn;  // http_forward.cc

 private:
  struct Op;
  void Connect(std::shared_ptr<Op> op);
  void Handshake(std::shared_ptr<Op> op, std::string host);
  void Write(std::shared_ptr<Op> op);
  void Read(std::shared_ptr<Op> op);
  void Finish(std::shared_ptr<Op> op, ForwardResult r);
  std::unique_ptr<Conn> TakePooled(const std::string& addr);

  boost::asio::io_context::executor_type io_;
  Options opts_;
  std::map<std::string, std::vector<std::unique_ptr<Conn>>> idle_;
};

}  // namespace kv
