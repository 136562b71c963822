// Helpers shared by the HTTP handlers. Includes httplib: only kvserver .cc files that
// serve or send HTTP include this header.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>

#include "raft/status.h"

namespace kv {

// Strict percent-decoding ("%zz" or a truncated escape is an error). '+' stays '+'.
std::optional<std::string> PercentDecode(std::string_view s);
std::string PercentEncode(std::string_view s);
// The key of a "/kv/{key}[?query]" target, decoded; nullopt when malformed or empty.
std::optional<std::string> KeyFromTarget(const std::string& target);

void ReplyJson(httplib::Response& res, int code, const std::string& json);
void ReplyError(httplib::Response& res, int code, const std::string& message);
// Maps an error from the Raft layer to the documented HTTP status (503, 504, 400...).
// `is_read`: a timed-out read changed nothing, so its message says so.
void ReplyStatus(httplib::Response& res, const raft::Status& s, bool is_read = false);

// JSON string with invalid UTF-8 replaced (nlohmann's replace handler).
std::string JsonString(const std::string& s);
std::string Base64(std::string_view in);
// Compares in time independent of where the inputs differ (tokens).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace kv
