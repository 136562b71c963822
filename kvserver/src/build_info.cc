#include "build_info.h"

#include "kv_build_info_generated.h"  // KV_VERSION, KV_GIT_COMMIT (configure time)

namespace kv {

const BuildInfo& GetBuildInfo() {
  // KV_BUILD_TYPE comes from $<CONFIG>: empty when no build type was set.
  static const BuildInfo info{
      KV_VERSION, KV_GIT_COMMIT,
      std::string_view(KV_BUILD_TYPE).empty() ? "unspecified" : KV_BUILD_TYPE};
  return info;
}

std::string VersionText(std::string_view program) {
  const BuildInfo& b = GetBuildInfo();
  std::string out(program);
  out.append(" ").append(b.version).append("\ncommit ").append(b.commit);
  out.append("\nbuild_type ").append(b.build_type).append("\n");
  return out;
}

}  // namespace kv
