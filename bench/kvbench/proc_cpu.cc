#include "proc_cpu.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <string>

namespace kvbench {

bool ParsePidList(std::string_view text, std::vector<int>& pids) {
  pids.clear();
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    int pid = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), pid);
    if (ec != std::errc() || end != item.data() + item.size() || pid <= 0) return false;
    pids.push_back(pid);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return !pids.empty();
}

long long CpuTicksFromStat(std::string_view stat_line) {
  const size_t paren = stat_line.rfind(')');
  if (paren == std::string_view::npos) return -1;
  std::string_view rest = stat_line.substr(paren + 1);
  // rest holds fields 3.. separated by single spaces; utime is field 14, stime field 15.
  long long sum = 0;
  int field = 2;
  while (!rest.empty() && field < 15) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const size_t end = rest.find(' ');
    const std::string_view token = rest.substr(0, end);
    ++field;
    if (field >= 14) {
      long long v = 0;
      const auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
      if (ec != std::errc() || p != token.data() + token.size()) return -1;
      sum += v;
    }
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  }
  return field == 15 ? sum : -1;
}

double CpuSeconds(const std::vector<int>& pids) {
  const long ticks_per_s = sysconf(_SC_CLK_TCK);
  if (ticks_per_s <= 0) return -1;
  long long total = 0;
  for (const int pid : pids) {
    std::string path("/proc/");
    path.append(std::to_string(pid)).append("/stat");
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return -1;
    const long long ticks = CpuTicksFromStat(line);
    if (ticks < 0) return -1;
    total += ticks;
  }
  return static_cast<double>(total) / static_cast<double>(ticks_per_s);
}

}  // namespace kvbench
