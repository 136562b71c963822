// A small command-line parser shared by the bench tools: "--name value", "--name=value",
// single-dash spellings too, and boolean "--name". Unknown flags and bad values are
// reported by name so the tool can exit with status 2.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kvbench {

struct Endpoint {
  std::string host;
  std::string port;
  std::string HostPort() const { return host + ":" + port; }
};

class Flags {
 public:
  // `booleans` lists the flags that take no value.
  Flags(int argc, char** argv, std::vector<std::string> booleans);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  bool Has(const std::string& name) const { return values_.count(name) != 0; }
  std::string String(const std::string& name, const std::string& fallback);
  double Double(const std::string& name, double fallback);
  int64_t Int(const std::string& name, int64_t fallback);
  bool Bool(const std::string& name);
  // "h:p[,h:p...]"
  std::vector<Endpoint> Endpoints(const std::string& name, const std::string& fallback);
  // Names given on the command line that no accessor asked for.
  std::vector<std::string> Unused() const;

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
  std::string error_;
};

}  // namespace kvbench
