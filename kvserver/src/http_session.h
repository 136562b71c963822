// HttpSession: one HTTP connection of the front door, and HttpServer::Shard, the I/O
// thread that owns it. Internal to http_server.cc and http_session.cc.
//
// Thread safety: a session and its shard are touched only on the shard's I/O thread,
// except Responder, which posts there. The counters in Shard are atomics for stats().
//
// Per connection, in order:
//   (HTTPS: the TLS handshake, head deadline; refused or late: closed)
//   -> wait for the first byte (idle deadline; from accept: the head deadline)
//   -> head (parser with header limit, head deadline) -> checks -> body (body limit as
//   bytes arrive, body deadline) -> dispatch to the handler (slot N in the pipeline)
//   -> next request while fewer than pipeline_depth are in flight and their bytes fit.
// Answers are written in slot order as they complete. An error the server answers itself
// (4xx/5xx on malformed or over-limit input) is the last slot: reading stops, and the
// connection closes once it is written, so an unread body is never taken for a request.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <deque>
#include <list>
#include <mutex>
#include <optional>

#include "deadline_wheel.h"
#include "http_server.h"
#include "http_stream.h"

namespace kv {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr Clock::time_point kNever = Clock::time_point::max();
// Deadlines are checked this often: they hold to within it.
constexpr std::chrono::milliseconds kSweepInterval{100};
// The deadline wheel's round: 4096 ticks of kSweepInterval (about 7 minutes; longer
// deadlines wait in their slot for their round).
constexpr std::size_t kWheelSlots = 4096;

struct HttpServer::Shard {
  explicit Shard(std::size_t index) : index(index) {}
  // Evicts the longest-idle connection; false when none is idle.
  bool EvictIdle();

  std::size_t index;
  const HttpServerOptions* opts = nullptr;
  HttpHandler* handler = nullptr;
  std::size_t max_conns = 0;  // this shard's share
  bool draining = false;      // StopAccepting() ran
  // Oldest activity first. Declared before io so that sessions destroyed with the
  // io_context's pending handlers can still unlink themselves.
  std::list<HttpSession*> conns;
  std::atomic<std::uint64_t> accepted{0}, evicted{0}, rejected{0}, timeouts{0}, accept_errors{0},
      tls_handshake_failures{0};
  std::atomic<std::size_t> open{0};
  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> accept_backoff;
  std::optional<asio::steady_timer> sweep;
  Clock::time_point now = Clock::now();  // as of the last sweep
  // Each session's earliest deadline (deadline_wheel.h); the sweep fires those due.
  DeadlineWheel<HttpSession> wheel{now, kSweepInterval, kWheelSlots};
};

// What a ResponseStream and its session share.
struct StreamState {
  std::mutex mu;
  std::deque<std::string> pieces;  // queued, not yet taken by a write
  std::size_t backlog = 0;         // bytes queued or being written
  bool ended = false;              // End() was called
  bool closed = false;             // the connection is gone
  bool kick_posted = false;        // a Flush is posted to the session's thread
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // HTTPS when `tls` is set (the context of this connection; see HttpTlsContexts).
  HttpSession(HttpServer::Shard* shard, Socket socket,
              std::shared_ptr<boost::asio::ssl::context> tls);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void Start();
  // Closes the socket now; answers not yet written are dropped.
  void Close();
  // No request in flight, no answer pending, nothing of a body being read.
  bool Idle() const;
  // Draining: closes now when idle, else after the answers in flight.
  void Drain();
  // From Responder, on any thread.
  void Post(std::uint64_t seq, HttpResponse res);
  void PostStream(std::uint64_t seq, HttpResponse head, std::shared_ptr<StreamState> state);
  // From ResponseStream, on any thread: something was queued or the stream ended.
  void Kick(const std::shared_ptr<StreamState>& state);
  // From the shard's wheel: acts on a read or write deadline that has passed, and
  // registers the next one.
  void CheckDeadlines(Clock::time_point now);

 private:
  enum class ReadState { kHandshake, kWaitFirstByte, kHead, kBody, kPaused, kStopped };
  struct Slot {
    std::optional<HttpResponse> res;  // set when complete
    std::string raw;                  // an interim answer ("100 Continue"), written as is
    bool interim = false;
    bool close = false;  // close the connection after this answer
    unsigned version = 11;
    std::size_t bytes = 0;
    // A streamed answer: res holds its head; the pieces come from `stream`.
    std::shared_ptr<StreamState> stream;
    bool head_written = false;
    bool finished = false;    // the last write of the stream is under way
    std::size_t writing = 0;  // bytes of the stream in the write under way
  };

  void Handshake();
  void OnHandshake(boost::system::error_code ec);
  void ReadNext();
  void WaitFirstByte();
  void ReadHead();
  void OnHead(boost::system::error_code ec);
  void ReadBody();
  void OnBody(boost::system::error_code ec);
  void Dispatch();
  void Complete(std::uint64_t seq, HttpResponse res, std::shared_ptr<StreamState> stream = nullptr);
  // Writes what a streamed answer at the front has ready; false when nothing is.
  bool FlushStream(Slot& f);
  // Answers the request being read with an error of the server's own, then closes.
  void Refuse(int code, std::string_view message);
  void Flush();
  void OnWritten(boost::system::error_code ec);
  // After a final answer: ends the sending side (TLS: close_notify) and reads and
  // discards what the client still sends, briefly, then closes.
  void CloseAfterAnswer();
  void Linger();
  void ArmRead(std::chrono::milliseconds d);
  // Registers `deadline` (just set) with the shard's wheel.
  void Schedule(Clock::time_point deadline);
  void OnReadDeadline();
  void Touch();
  bool CanReadMore() const;

  HttpServer::Shard* shard_;
  HttpStream stream_;
  std::string peer_;
  // HTTPS with -client-cert-auth: the verified client certificate's subject CN.
  std::optional<std::string> client_cn_;
  // Deadlines, registered with the shard's wheel and acted on by its sweep (every
  // kSweepInterval): no timer operation per request. kNever: none. Clearing one leaves
  // the wheel's registration, which then fires once for nothing.
  Clock::time_point read_deadline_ = kNever;
  Clock::time_point write_deadline_ = kNever;
  DeadlineWheel<HttpSession>::Link wheel_link_;
  bool lingering_ = false;
  boost::beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  ReadState read_state_ = ReadState::kWaitFirstByte;  // kHandshake from Start() when TLS
  bool read_pending_ = false;
  bool read_timed_out_ = false;
  bool read_drained_ = false;  // Drain() ended a read in progress
  bool head_deadline_armed_ = false;
  bool closed_ = false;
  bool writing_ = false;
  bool served_any_ = false;  // a request was received on this connection (keep-alive)
  std::deque<Slot> slots_;
  std::uint64_t base_seq_ = 0;  // seq of slots_.front()
  std::size_t in_flight_ = 0;   // dispatched, not yet completed
  std::size_t inflight_bytes_ = 0;
  std::list<HttpSession*>::iterator lru_;
  std::unique_ptr<std::array<char, 4096>> linger_buf_;
  std::string stream_buf_;  // the stream write under way
  std::size_t lingered_ = 0;
};

}  // namespace kv
