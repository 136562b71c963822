// The minimal HTTP/1.1 client codec kvbench needs: request writing and an incremental
// response parser. Pure functions over byte buffers (no sockets), so they are testable
// on their own.
//
// Supported responses: a status line "HTTP/1.x NNN ...", headers (Content-Length,
// Transfer-Encoding: chunked, Connection), a body framed by Content-Length or chunked
// encoding, or no body (1xx, 204, 304). A body delimited only by connection close is
// reported as an error: kvbench keeps connections alive and needs framed responses.
// Deliberately not supported: pipelining beyond one response, trailers' contents (skipped),
// header lines folded over several lines.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kvbench {

// Appends "METHOD target HTTP/1.1" with Host, optional Content-Type, Content-Length and
// the body to `out`. `out` is not cleared (callers reuse one buffer per connection).
void AppendRequest(std::string& out, std::string_view method, std::string_view target,
                   std::string_view host, std::string_view content_type, std::string_view body);

enum class ParseState {
  kIncomplete,  // need more bytes
  kComplete,    // one whole response is at the front of the buffer
  kError,       // malformed or unframed response: close the connection
};

struct ParsedResponse {
  ParseState state = ParseState::kIncomplete;
  int status = 0;
  bool keep_alive = true;     // false: the server will close (Connection: close, HTTP/1.0)
  size_t consumed_bytes = 0;  // bytes of the buffer that make up this response
  std::string_view body;      // Content-Length bodies only (points into the buffer)
};

// Parses the response at the front of `buffer`. Re-parses from the start on every call:
// responses here are small, and statelessness keeps this a pure function.
ParsedResponse ParseResponse(std::string_view buffer);

// Standard base64 with padding (etcd's JSON gateway encodes bytes fields this way).
void AppendBase64(std::string& out, std::string_view in);

}  // namespace kvbench
