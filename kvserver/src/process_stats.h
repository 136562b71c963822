// This process's resource use for the process_* metrics (the names and meanings of the
// Prometheus client libraries), read from Linux's /proc.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kv {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system CPU time
  std::uint64_t resident_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;      // the soft RLIMIT_NOFILE
  double start_time_seconds = 0;  // since the Unix epoch
};

// The fields of /proc/<pid>/stat that ProcessStats needs, in the kernel's units.
struct ProcStatFields {
  std::uint64_t utime_ticks = 0;
  std::uint64_t stime_ticks = 0;
  std::uint64_t starttime_ticks = 0;  // since boot
  std::uint64_t rss_pages = 0;
};

// Parses one /proc/<pid>/stat line. The command name (field 2) is in parentheses and may
// itself hold spaces and parentheses: fields are counted after the last ')'. Nothing on a
// malformed line.
std::optional<ProcStatFields> ParseProcStat(std::string_view line);

// The "btime" (boot time, seconds since the epoch) of a /proc/stat text.
std::optional<std::uint64_t> ParseBootTime(std::string_view proc_stat);

// Reads /proc/self/stat, /proc/stat and /proc/self/fd; nothing when /proc is not there or
// not readable (the metrics are then left out).
std::optional<ProcessStats> ReadProcessStats();

}  // namespace kv
