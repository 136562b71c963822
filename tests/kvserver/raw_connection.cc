// Raw TCP connections for malformed-input tests; see raw_connection.h.
#include "raw_connection.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace kvtest {
namespace {

using Clock = std::chrono::steady_clock;

int Connect(std::uint16_t port, Millis limit, int rcvbuf_bytes, int* err) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  if (rcvbuf_bytes > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof rcvbuf_bytes);
  // connect() honours SO_SNDTIMEO: a full accept backlog (SYNs dropped) cannot block it
  // for minutes.
  timeval tv{};
  tv.tv_sec = limit.count() / 1000;
  tv.tv_usec = static_cast<suseconds_t>((limit.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    *err = errno;
    ::close(fd);
    return -1;
  }
  timeval none{};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
  return fd;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

}  // namespace

std::string RawResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string RawResponse::Describe() const {
  if (!complete) {
    return fmt::format("incomplete response ({} bytes): {}", raw.size(),
                       Printable(raw.substr(0, 300)));
  }
  std::string shown = body.size() > 300 ? body.substr(0, 300) + "..." : body;
  return fmt::format("HTTP {} {}", status, Printable(shown));
}

RawResponse ParseRawResponse(std::string_view bytes, bool eof, std::size_t* used) {
  RawResponse r;
  *used = 0;
  auto end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    r.raw = std::string(bytes);
    r.status = RawStatus(bytes);
    return r;
  }
  r.status = RawStatus(bytes);
  std::string_view head = bytes.substr(0, end);
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos) {
    std::size_t next = head.find("\r\n", pos + 2);
    std::string_view line = head.substr(
        pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
    auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      r.headers[Lower(std::string(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
    }
    pos = next;
  }
  std::size_t body_start = end + 4;
  std::string_view rest = bytes.substr(body_start);
  bool no_body = (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
  if (no_body) {
    r.complete = true;
    *used = body_start;
  } else if (Lower(r.Header("transfer-encoding")).find("chunked") != std::string::npos) {
    std::size_t at = 0;
    for (;;) {
      auto eol = rest.find("\r\n", at);
      if (eol == std::string_view::npos) break;
      std::size_t size = std::strtoul(std::string(rest.substr(at, eol - at)).c_str(), nullptr, 16);
      if (size == 0) {
        auto trailer_end = rest.find("\r\n\r\n", eol);
        if (trailer_end == std::string_view::npos && rest.substr(eol, 4) != "\r\n\r\n") break;
        std::size_t stop = rest.substr(eol, 4) == "\r\n\r\n" ? eol + 4 : trailer_end + 4;
        r.complete = true;
        *used = body_start + stop;
        break;
      }
      if (rest.size() < eol + 2 + size + 2) break;
      r.body.append(rest.substr(eol + 2, size));
      at = eol + 2 + size + 2;
    }
  } else if (!r.Header("content-length").empty()) {
    std::size_t length = std::strtoul(r.Header("content-length").c_str(), nullptr, 10);
    if (rest.size() >= length) {
      r.body = std::string(rest.substr(0, length));
      r.complete = true;
      *used = body_start + length;
    }
  } else if (eof) {
    r.body = std::string(rest);
    r.complete = true;
    *used = bytes.size();
  }
  r.raw = std::string(bytes.substr(0, r.complete ? *used : bytes.size()));
  if (!r.complete && r.body.empty()) r.body = std::string(rest);
  return r;
}

RawConnection::RawConnection(std::uint16_t port) {
  int err = 0;
  fd_ = Connect(port, 10s, 0, &err);
  INFO("connect to 127.0.0.1:" << port << ": " << std::strerror(err));
  REQUIRE(fd_ >= 0);
}

std::unique_ptr<RawConnection> RawConnection::TryConnect(std::uint16_t port, Millis limit,
                                                         int rcvbuf_bytes) {
  int err = 0;
  int fd = Connect(port, limit, rcvbuf_bytes, &err);
  if (fd < 0) return nullptr;
  std::unique_ptr<RawConnection> conn(new RawConnection());
  conn->fd_ = fd;
  return conn;
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;  // peer not reading for 5 s
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

long RawConnection::SendSome(std::string_view bytes) {
  for (;;) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return static_cast<long>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

bool RawConnection::Fill(Millis limit, const std::function<bool()>& done) {
  auto deadline = Clock::now() + limit;
  char buf[65536];
  while (!eof_ && !done()) {
    auto left =
        std::max<long>(0, std::chrono::duration_cast<Millis>(deadline - Clock::now()).count());
    pollfd p{fd_, POLLIN, 0};
    int pr = ::poll(&p, 1, static_cast<int>(left));
    if (pr <= 0) {
      if (left == 0) break;
      continue;
    }
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) {
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      eof_ = true;  // EOF or reset
      break;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
  }
  return !eof_;
}

std::string RawConnection::ReadUntilClose(Millis limit) {
  Fill(limit, [] { return false; });
  return std::exchange(pending_, {});
}

std::string RawConnection::ReadHttpResponse(Millis limit) {
  RawResponse r = ReadResponse(limit);
  return r.raw;
}

RawResponse RawConnection::ReadResponse(Millis limit) {
  Fill(limit, [&] { return HasResponse(); });
  std::size_t used = 0;
  RawResponse r = ParseRawResponse(pending_, eof_, &used);
  if (r.complete) {
    pending_.erase(0, used);
  } else {
    pending_.clear();
  }
  return r;
}

bool RawConnection::HasResponse() const {
  std::size_t used = 0;
  return ParseRawResponse(pending_, eof_, &used).complete;
}

bool RawConnection::Poll() {
  Fill(0ms, [] { return false; });
  return !eof_;
}

bool RawConnection::ClosedByPeer(Millis limit) {
  if (eof_) return true;
  pending_.clear();
  auto deadline = Clock::now() + limit;
  char buf[65536];
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    pollfd p{fd_, POLLIN, 0};
    int pr = ::poll(&p, 1, static_cast<int>(std::max<long>(1, left)));
    if (pr <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) {
      eof_ = true;
      return true;
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      eof_ = true;
      return true;  // reset
    }
  }
  return false;
}

int RawStatus(std::string_view response) {
  if (response.substr(0, 5) != "HTTP/") return 0;
  auto sp = response.find(' ');
  if (sp == std::string_view::npos || sp + 4 > response.size()) return 0;
  int code = 0;
  for (std::size_t i = sp + 1; i < sp + 4; ++i) {
    if (response[i] < '0' || response[i] > '9') return 0;
    code = code * 10 + (response[i] - '0');
  }
  return code;
}

}  // namespace kvtest
