#include "flags.h"

#include <algorithm>
#include <cstdlib>

namespace kvbench {

Flags::Flags(int argc, char** argv, std::vector<std::string> booleans) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      error_ = "unexpected argument '" + arg + "'";
      return;
    }
    arg.erase(0, arg[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    const bool boolean = std::find(booleans.begin(), booleans.end(), arg) != booleans.end();
    if (!has_value) {
      if (boolean) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        error_ = "flag --" + arg + " needs a value";
        return;
      }
    }
    values_[arg] = value;
  }
}

std::string Flags::String(const std::string& name, const std::string& fallback) {
  used_[name] = true;
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

double Flags::Double(const std::string& name, double fallback) {
  used_[name] = true;
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') {
    error_ = "flag --" + name + ": not a number: '" + it->second + "'";
    return fallback;
  }
  return v;
}

int64_t Flags::Int(const std::string& name, int64_t fallback) {
  used_[name] = true;
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0') {
    error_ = "flag --" + name + ": not an integer: '" + it->second + "'";
    return fallback;
  }
  return v;
}

bool Flags::Bool(const std::string& name) {
  used_[name] = true;
  auto it = values_.find(name);
  if (it == values_.end()) return false;
  if (it->second == "true" || it->second == "1") return true;
  if (it->second == "false" || it->second == "0") return false;
  error_ = "flag --" + name + ": not a boolean: '" + it->second + "'";
  return false;
}

std::vector<Endpoint> Flags::Endpoints(const std::string& name, const std::string& fallback) {
  std::string list = String(name, fallback);
  std::vector<Endpoint> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    if (item.rfind("http://", 0) == 0) item.erase(0, 7);
    const size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size()) {
      error_ = "flag --" + name + ": expected host:port, got '" + item + "'";
      return {};
    }
    out.push_back({item.substr(0, colon), item.substr(colon + 1)});
  }
  if (out.empty()) error_ = "flag --" + name + ": no address";
  return out;
}

std::vector<std::string> Flags::Unused() const {
  std::vector<std::string> out;
  for (const auto& [name, value] : values_) {
    if (!used_.count(name)) out.push_back(name);
  }
  return out;
}

}  // namespace kvbench
