#include "http_util.h"

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

std::optional<std::string> KeyFromTarget(const std::string& target) {
  constexpr std::string_view kPrefix = "/kv/";
  if (target.compare(0, kPrefix.size(), kPrefix) != 0) return std::nullopt;
  std::string_view raw(target);
  raw.remove_prefix(kPrefix.size());
  if (auto q = raw.find('?'); q != std::string_view::npos) raw = raw.substr(0, q);
  auto key = PercentDecode(raw);
  if (!key || key->empty()) return std::nullopt;
  return key;
}

void ReplyJson(httplib::Response& res, int code, const std::string& json) {
  res.status = code;
  res.set_content(json, "application/json");
}

void ReplyError(httplib::Response& res, int code, const std::string& message) {
  nlohmann::json j;
  j["error"] = message;
  if (code == 503) res.set_header("Retry-After", "1");
  ReplyJson(res, code, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void ReplyStatus(httplib::Response& res, const raft::Status& s, bool is_read) {
  using raft::ErrorCode;
  switch (s.code()) {
    case ErrorCode::kOk:
      ReplyJson(res, 200, "{}");
      return;
    case ErrorCode::kInvalidArgument:
      ReplyError(res, 400, s.message());
      return;
    case ErrorCode::kTimeout:
      if (is_read) {
        ReplyError(res, 504, "timed out waiting for a read index from the leader; retry");
        return;
      }
      ReplyError(res, 504, "timed out waiting for commit; the outcome is unknown: " + s.message());
      return;
    case ErrorCode::kNotLeader:
      ReplyError(res, 503, "no leader available (" + s.message() + "); retry");
      return;
    case ErrorCode::kShutdown:
      ReplyError(res, 503, "node is shutting down; retry another node");
      return;
    case ErrorCode::kIOError:
    case ErrorCode::kNoSpace:
      ReplyError(res, 503, "node is not accepting writes: " + s.message());
      return;
    case ErrorCode::kBusy:
    case ErrorCode::kProposalDropped:
    case ErrorCode::kConfChangePending:
      ReplyError(res, 503, s.ToString() + "; retry");
      return;
    default:
      ReplyError(res, 500, s.ToString());
      return;
  }
}

std::string JsonString(const std::string& s) {
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

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(i < b.size() ? b[i] : 0);
  return diff == 0;
}

}  // namespace kv
