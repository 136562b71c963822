#include "http_util.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace kv {

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;  // a truncated escape
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::optional<Target> ParseTarget(std::string_view target) {
  Target t;
  auto q = target.find('?');
  t.path = target.substr(0, q);
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto name = PercentDecode(pair.substr(0, eq));
    auto value =
        PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name || !value) return std::nullopt;
    t.params.emplace(std::move(*name), std::move(*value));
  }
  return t;
}

std::optional<std::string> KeyFromPath(std::string_view path) {
  constexpr std::string_view kPrefix = "/kv/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  auto key = PercentDecode(path.substr(kPrefix.size()));
  if (!key || key->empty()) return std::nullopt;
  return key;
}

HttpResponse JsonAnswer(int code, std::string json) {
  HttpResponse res{static_cast<http::status>(code), 11};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(json);
  return res;
}

HttpResponse ErrorAnswer(int code, std::string_view message) {
  std::string body = "{\"error\": ";
  body += JsonString(message);
  body += "}";
  HttpResponse res = JsonAnswer(code, std::move(body));
  if (code == 503) res.set(http::field::retry_after, "1");
  return res;
}

HttpResponse StatusAnswer(const raft::Status& s, bool is_read) {
  using raft::ErrorCode;
  switch (s.code()) {
    case ErrorCode::kOk:
      return JsonAnswer(200, "{}");
    case ErrorCode::kInvalidArgument:
      return ErrorAnswer(400, s.message());
    case ErrorCode::kTimeout:
      if (is_read)
        return ErrorAnswer(504, "timed out waiting for a read index from the leader; retry");
      return ErrorAnswer(504,
                         "timed out waiting for commit; the outcome is unknown: " + s.message());
    case ErrorCode::kNotLeader:
      return ErrorAnswer(503, "no leader available (" + s.message() + "); retry");
    case ErrorCode::kShutdown:
      return ErrorAnswer(503, "node is shutting down; retry another node");
    case ErrorCode::kIOError:
    case ErrorCode::kNoSpace:
      if (is_read)
        return ErrorAnswer(503, "node cannot serve linearizable reads: " + s.message() +
                                    "; consistency=stale reads still work");
      return ErrorAnswer(503, "node is not accepting writes: " + s.message());
    case ErrorCode::kBusy:
    case ErrorCode::kProposalDropped:
    case ErrorCode::kConfChangePending:
      return ErrorAnswer(503, s.ToString() + "; retry");
    default:
      return ErrorAnswer(500, s.ToString());
  }
}

std::optional<std::uint64_t> ParseU64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string JsonString(std::string_view s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                 (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
            kAlphabet[v & 63]};
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const int pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=') : 0;
    if (pad == 1 && in[i + 2] == '=') return std::nullopt;  // "x=x=" style
    unsigned v = 0;
    for (int j = 0; j < 4 - pad; ++j) {
      int d = value(in[i + j]);
      if (d < 0) return std::nullopt;
      v |= static_cast<unsigned>(d) << (18 - 6 * j);
    }
    out.push_back(static_cast<char>(v >> 16));
    if (pad < 2) out.push_back(static_cast<char>((v >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xFF));
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(i < b.size() ? b[i] : 0);
  return diff == 0;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool JsonContentType(const HttpRequest& req) {
  auto ct = req.find(http::field::content_type);
  std::string_view type = ct == req.end() ? std::string_view() : std::string_view(ct->value());
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  return IEquals(type, "application/json");
}

}  // namespace kv
