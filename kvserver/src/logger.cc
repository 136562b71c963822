#include "logger.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace kv {
namespace {

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// logfmt value: bare when safe, else double-quoted with escapes.
std::string Quote(std::string_view v) {
  bool bare = !v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
      bare = false;
  }
  if (bare) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += "?";
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

}  // namespace

raft::LogLevel ParseLogLevel(const std::string& s) {
  if (s == "debug") return raft::LogLevel::kDebug;
  if (s == "warn") return raft::LogLevel::kWarn;
  if (s == "error") return raft::LogLevel::kError;
  return raft::LogLevel::kInfo;
}

LogFormat ParseLogFormat(const std::string& s) {
  if (s == "logfmt") return LogFormat::kLogfmt;
  if (s == "json") return LogFormat::kJson;
  return LogFormat::kHclog;
}

std::string StructuredLogger::Format(raft::LogLevel level, std::string_view component,
                                     std::string_view msg,
                                     const std::vector<raft::LogField>& fields) const {
  if (format_ == LogFormat::kJson) {
    nlohmann::json j;
    j["ts"] = Timestamp();
    j["level"] = raft::LogLevelName(level);
    j["component"] = std::string(component);
    j["msg"] = std::string(msg);
    for (const auto& f : fields) j[f.key] = f.value;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (format_ == LogFormat::kHclog) {
    // hclog pads the bracketed level to 7 characters ("[INFO]  ", "[ERROR] ").
    std::string tag = "[";
    for (const char* c = raft::LogLevelName(level); *c != '\0'; ++c)
      tag.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(*c))));
    tag.push_back(']');
    tag.resize(8, ' ');
    std::string line = Timestamp();
    line.append(" ").append(tag).append(component).append(": ").append(msg);
    if (!fields.empty()) line.append(":");
    for (const auto& f : fields) line.append(" ").append(f.key).append("=").append(Quote(f.value));
    return line;
  }
  std::string line = "ts=" + Timestamp() + " level=" + raft::LogLevelName(level) +
                     " component=" + Quote(component) + " msg=" + Quote(msg);
  for (const auto& f : fields) line += " " + f.key + "=" + Quote(f.value);
  return line;
}

void StructuredLogger::Log(raft::LogLevel level, std::string_view component, std::string_view msg,
                           const std::vector<raft::LogField>& fields) {
  if (!Enabled(level)) return;
  std::string line = Format(level, component, msg, fields);
  line.push_back('\n');
  std::lock_guard<std::mutex> l(mu_);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace kv
