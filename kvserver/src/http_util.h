// Helpers shared by the HTTP handlers: URL decoding, answers, JSON strings.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "http_types.h"
#include "raft/status.h"

namespace kv {

// Strict percent-decoding ("%zz" or a truncated escape is an error). '+' stays '+'
// (query strings are not form-encoded).
std::optional<std::string> PercentDecode(std::string_view s);
std::string PercentEncode(std::string_view s);

// A request target split into its path (still encoded) and its decoded query parameters
// (the first of a repeated name wins); nullopt when an escape is malformed.
struct Target {
  std::string_view path;
  std::map<std::string, std::string, std::less<>> params;
  bool Has(std::string_view name) const { return params.find(name) != params.end(); }
  std::string Param(std::string_view name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};
std::optional<Target> ParseTarget(std::string_view target);
// The key of a "/kv/{key}" path, decoded; nullopt when malformed or empty.
std::optional<std::string> KeyFromPath(std::string_view path);

HttpResponse JsonAnswer(int code, std::string json);
// Content-Type is application/json (any parameters, any case). Control-plane POSTs
// require it: a browser cannot send it cross-origin without a preflight (F-10).
bool JsonContentType(const HttpRequest& req);
// {"error": message}; 503 carries Retry-After: 1.
HttpResponse ErrorAnswer(int code, std::string_view message);
// Maps an error from the Raft layer to the documented HTTP status (503, 504, 400...).
// `is_read`: a timed-out read changed nothing, so its message says so.
HttpResponse StatusAnswer(const raft::Status& s, bool is_read = false);

// A decimal number in [0, 2^64): digits only, at least one; nullopt otherwise (a sign,
// spaces, overflow). Query parameters and kvctl's numeric flags.
std::optional<std::uint64_t> ParseU64(std::string_view s);
// JSON string with invalid UTF-8 replaced (nlohmann's replace handler).
std::string JsonString(std::string_view s);
std::string Base64(std::string_view in);
// Standard base64 with '=' padding, as Base64 writes it; nothing on any other input.
std::optional<std::string> Base64Decode(std::string_view in);
// Compares in time independent of where the inputs differ (tokens).
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// Case-insensitive ASCII comparison (header values).
bool IEquals(std::string_view a, std::string_view b);

}  // namespace kv
