#include "http_codec.h"

#include <charconv>
#include <cstdint>

namespace kvbench {
namespace {

constexpr size_t kHeaderBytesMax = 64 * 1024;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (EqualsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

ParsedResponse Error() {
  ParsedResponse r;
  r.state = ParseState::kError;
  return r;
}

// Walks a chunked body starting at `pos`. Returns the offset just past the final CRLF, 0
// when incomplete, SIZE_MAX when malformed.
size_t ChunkedEnd(std::string_view buf, size_t pos) {
  for (;;) {
    const size_t eol = buf.find("\r\n", pos);
    if (eol == std::string_view::npos) return 0;
    std::string_view size_line = buf.substr(pos, eol - pos);
    if (size_t semi = size_line.find(';'); semi != std::string_view::npos) {
      size_line = size_line.substr(0, semi);
    }
    size_line = Trim(size_line);
    uint64_t chunk = 0;
    auto [p, ec] =
        std::from_chars(size_line.data(), size_line.data() + size_line.size(), chunk, 16);
    if (ec != std::errc() || p != size_line.data() + size_line.size() || size_line.empty()) {
      return SIZE_MAX;
    }
    pos = eol + 2;
    if (chunk == 0) {
      // Trailers (ignored) end with an empty line.
      for (;;) {
        const size_t end = buf.find("\r\n", pos);
        if (end == std::string_view::npos) return 0;
        if (end == pos) return end + 2;
        pos = end + 2;
      }
    }
    if (buf.size() < pos + chunk + 2) return 0;
    if (buf.substr(pos + chunk, 2) != "\r\n") return SIZE_MAX;
    pos += chunk + 2;
  }
}

}  // namespace

void AppendRequest(std::string& out, std::string_view method, std::string_view target,
                   std::string_view host, std::string_view content_type, std::string_view body) {
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ").append(host);
  out.append("\r\n");
  if (!content_type.empty()) out.append("Content-Type: ").append(content_type).append("\r\n");
  if (!body.empty() || method == "PUT" || method == "POST") {
    char digits[24];
    auto [p, ec] = std::to_chars(digits, digits + sizeof(digits), body.size());
    (void)ec;
    out.append("Content-Length: ").append(digits, p).append("\r\n");
  }
  out.append("\r\n").append(body);
}

ParsedResponse ParseResponse(std::string_view buf) {
  const size_t header_end = buf.find("\r\n\r\n");
  if (header_end == std::string_view::npos) {
    return buf.size() > kHeaderBytesMax ? Error() : ParsedResponse{};
  }
  std::string_view head = buf.substr(0, header_end + 2);  // every line ends in CRLF

  // Status line: HTTP/1.x SP NNN [SP reason]
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ') {
    return Error();
  }
  ParsedResponse r;
  const bool http10 = status_line[7] == '0';
  r.keep_alive = !http10;
  int status = 0;
  auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status);
  if (ec != std::errc() || p != status_line.data() + 12 || status < 100 || status > 999) {
    return Error();
  }
  r.status = status;

  bool have_length = false;
  bool chunked = false;
  uint64_t content_length = 0;
  size_t pos = eol + 2;
  while (pos < head.size()) {
    eol = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Error();
    std::string_view name = Trim(line.substr(0, colon));
    std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-length")) {
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), content_length);
      if (e != std::errc() || q != value.data() + value.size()) return Error();
      have_length = true;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      chunked = ContainsIgnoreCase(value, "chunked");
    } else if (EqualsIgnoreCase(name, "connection")) {
      if (ContainsIgnoreCase(value, "close")) r.keep_alive = false;
      if (ContainsIgnoreCase(value, "keep-alive")) r.keep_alive = true;
    }
  }

  const size_t body_start = header_end + 4;
  if (status < 200 || status == 204 || status == 304) {
    r.state = ParseState::kComplete;
    r.consumed_bytes = body_start;
    return r;
  }
  if (chunked) {
    const size_t end = ChunkedEnd(buf, body_start);
    if (end == SIZE_MAX) return Error();
    if (end == 0) return r;
    r.state = ParseState::kComplete;
    r.consumed_bytes = end;
    return r;
  }
  if (!have_length) return Error();  // body until close: not usable on a keep-alive client
  if (buf.size() - body_start < content_length) return r;
  r.state = ParseState::kComplete;
  r.consumed_bytes = body_start + content_length;
  r.body = buf.substr(body_start, content_length);
  return r;
}

void AppendBase64(std::string& out, std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8) |
                       uint32_t{static_cast<uint8_t>(in[i + 2])};
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t rest = in.size() - i;
  if (rest == 0) return;
  uint32_t v = uint32_t{static_cast<uint8_t>(in[i])} << 16;
  if (rest == 2) v |= uint32_t{static_cast<uint8_t>(in[i + 1])} << 8;
  out.push_back(kAlphabet[(v >> 18) & 63]);
  out.push_back(kAlphabet[(v >> 12) & 63]);
  out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
  out.push_back('=');
}

}  // namespace kvbench
