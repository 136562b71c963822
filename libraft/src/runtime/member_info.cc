// MemberInfo codec (the ConfChange context written by the runtime) and node ids.
//
// member_info := version:u8(=1) id:u64 name:str raft_addr:str app_data:str
// str         := len:u32 bytes[len]          (little-endian; each str <= 64 KiB)
#include "raft/coding.h"
#include "raft/node.h"

namespace raft {
namespace {
constexpr std::uint8_t kMemberInfoVersion = 1;
constexpr std::uint32_t kMemberStrMax = 64 * 1024;
}  // namespace

NodeId NodeIdFromName(const std::string& name) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h == kNoNode ? 1 : h;
}

std::string EncodeMemberInfo(const MemberInfo& m) {
  std::string out;
  raft::ByteWriter w(&out);
  w.U8(kMemberInfoVersion);
  w.U64(m.id);
  w.Bytes(m.name);
  w.Bytes(m.raft_addr);
  w.Bytes(m.app_data);
  return out;
}

bool DecodeMemberInfo(std::string_view in, MemberInfo* out) {
  raft::ByteReader r(in, "member_info");
  if (r.U8("version") != kMemberInfoVersion) r.Fail("unknown version");
  MemberInfo m;
  m.id = r.U64("id");
  m.name = r.Bytes("name", kMemberStrMax);
  m.raft_addr = r.Bytes("raft_addr", kMemberStrMax);
  m.app_data = r.Bytes("app_data", kMemberStrMax);
  if (!r.Finish().ok()) return false;
  *out = std::move(m);
  return true;
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

}  // namespace raft
