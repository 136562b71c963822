// Raw TCP connections for malformed-input tests of the real-process harness (see
// process_harness.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "harness_util.h"

namespace kvtest {

// A loopback TCP connection; the constructor fails the test when it is refused.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends all bytes; false when the peer closed or reset the connection.
  bool Send(std::string_view bytes);
  // Reads until the peer closes or `limit` passes; returns what arrived.
  std::string ReadUntilClose(Millis limit);
  // Reads one HTTP response (headers, then Content-Length bytes of body), stopping early
  // when the peer closes or `limit` passes; returns what arrived.
  std::string ReadHttpResponse(Millis limit);
  // Whether the peer closed (EOF or reset) within `limit`; discards incoming data.
  bool ClosedByPeer(Millis limit);

 private:
  int fd_ = -1;
};

// Status code of a raw HTTP response ("HTTP/1.1 400 ..."), 0 when there is none.
int RawStatus(std::string_view response);

}  // namespace kvtest
