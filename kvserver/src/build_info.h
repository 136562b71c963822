// What this binary is: version (CMake's project version), the git commit it was
// configured from ("unknown" outside a git checkout) and the build type. Shown by
// `kvserver -version`, `kvctl -version` and the kv_build_info metric.
#pragma once

#include <string>
#include <string_view>

namespace kv {

struct BuildInfo {
  std::string_view version;     // "0.1.0"
  std::string_view commit;      // abbreviated hash, "-dirty" appended for local changes
  std::string_view build_type;  // CMAKE_BUILD_TYPE (or the configuration), "unspecified"
};

const BuildInfo& GetBuildInfo();

// The -version text: "<program> <version>\ncommit <commit>\nbuild_type <type>\n".
std::string VersionText(std::string_view program);

}  // namespace kv
