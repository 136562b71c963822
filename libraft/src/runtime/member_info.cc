// MemberInfo codec (the ConfChange context written by the runtime) and node ids.
//
// member_info := version:u8(=1) id:u64 name:str raft_addr:str app_data:str
// str         := len:u32 bytes[len]          (little-endian; each str <= 64 KiB)
#include <cstring>

#include "raft/node.h"

namespace raft {
namespace {
constexpr std::uint8_t kMemberInfoVersion = 1;
constexpr std::uint32_t kMemberStrMax = 64 * 1024;

void PutU64(std::string* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutStr(std::string* out, const std::string& s) {
  auto n = static_cast<std::uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out->append(s);
}
bool GetU64(std::string_view* in, std::uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v |= std::uint64_t{static_cast<unsigned char>((*in)[i])} << (8 * i);
  in->remove_prefix(8);
  return true;
}
bool GetStr(std::string_view* in, std::string* s) {
  if (in->size() < 4) return false;
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= std::uint32_t{static_cast<unsigned char>((*in)[i])} << (8 * i);
  in->remove_prefix(4);
  if (n > kMemberStrMax || in->size() < n) return false;
  s->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}
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
  out.push_back(static_cast<char>(kMemberInfoVersion));
  PutU64(&out, m.id);
  PutStr(&out, m.name);
  PutStr(&out, m.raft_addr);
  PutStr(&out, m.app_data);
  return out;
}

bool DecodeMemberInfo(std::string_view in, MemberInfo* out) {
  if (in.empty() || static_cast<std::uint8_t>(in[0]) != kMemberInfoVersion) return false;
  in.remove_prefix(1);
  MemberInfo m;
  if (!GetU64(&in, &m.id) || !GetStr(&in, &m.name) || !GetStr(&in, &m.raft_addr) ||
      !GetStr(&in, &m.app_data) || !in.empty())
    return false;
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
