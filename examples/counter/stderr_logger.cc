#include "stderr_logger.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace counter {

void StderrLogger::Log(raft::LogLevel level, std::string_view component, std::string_view msg,
                       const std::vector<raft::LogField>& fields) {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  localtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);

  std::string line = std::string(stamp) + "." + std::to_string(1000 + ms.count()).substr(1) + " " +
                     raft::LogLevelName(level) + " " + std::string(component) + ": " +
                     std::string(msg);
  for (const raft::LogField& f : fields) line += " " + f.key + "=" + f.value;
  line += "\n";
  std::lock_guard<std::mutex> lock(mu_);
  std::fputs(line.c_str(), stderr);
}

}  // namespace counter
