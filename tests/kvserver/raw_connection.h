// Raw TCP connections for malformed-input and HTTP conformance tests of the real-process
// harness (see process_harness.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "harness_util.h"

namespace kvtest {

// One HTTP response read from a raw connection.
struct RawResponse {
  int status = 0;                              // 0: no complete status line arrived
  std::map<std::string, std::string> headers;  // names in lower case; last one wins
  std::string body;                            // de-chunked when the response was chunked
  bool complete = false;                       // head and whole body arrived
  std::string raw;                             // the bytes as received

  std::string Header(const std::string& lower_name) const;  // "" when absent
  // "HTTP 413 {...}" or "incomplete response: <bytes>", for failure messages.
  std::string Describe() const;
};

// A loopback TCP connection; the constructor fails the test when it is refused (see
// TryConnect for a connection that may fail). Bytes received past one response are kept
// for the next read, so pipelined responses are read one by one. Main thread only.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // A connection, or null when connecting failed or took longer than `limit` (no test
  // assertion). `rcvbuf_bytes` > 0 sets SO_RCVBUF before connecting.
  static std::unique_ptr<RawConnection> TryConnect(std::uint16_t port, Millis limit = 2s,
                                                   int rcvbuf_bytes = 0);

  // Sends all bytes; false when the peer closed or reset the connection, or did not take
  // any byte for 5 s.
  bool Send(std::string_view bytes);
  // Sends what the socket takes now without waiting; returns the bytes sent, or -1 when
  // the peer closed or reset the connection.
  long SendSome(std::string_view bytes);
  // Reads until the peer closes or `limit` passes; returns what arrived.
  std::string ReadUntilClose(Millis limit);
  // Reads one HTTP response (headers, then Content-Length bytes of body), stopping early
  // when the peer closes or `limit` passes; returns what arrived (the raw bytes).
  std::string ReadHttpResponse(Millis limit);
  // Reads one HTTP response (Content-Length or chunked body; a 1xx has none) within
  // `limit`; an incomplete response when the peer closed or the time ran out.
  RawResponse ReadResponse(Millis limit);
  // Reads whatever arrives now without waiting (kept for the next read); false when the
  // peer has closed or reset the connection.
  bool Poll();
  // Whether a complete response is buffered (see Poll).
  bool HasResponse() const;
  // Whether the peer closed (EOF or reset) within `limit`; discards incoming data.
  bool ClosedByPeer(Millis limit);
  // Bytes received and not yet consumed by a read.
  const std::string& pending() const { return pending_; }
  int fd() const { return fd_; }

 private:
  RawConnection() = default;
  // Receives into pending_ until `done()` holds, the peer closes or `limit` passes; false
  // when the peer closed.
  bool Fill(Millis limit, const std::function<bool()>& done);

  int fd_ = -1;
  std::string pending_;
  bool eof_ = false;
};

// Status code of a raw HTTP response ("HTTP/1.1 400 ..."), 0 when there is none.
int RawStatus(std::string_view response);

// Parses the first HTTP response in `bytes`; sets `*used` to its length when complete.
// A response with neither Content-Length nor chunked framing ends at `eof`.
RawResponse ParseRawResponse(std::string_view bytes, bool eof, std::size_t* used);

}  // namespace kvtest
