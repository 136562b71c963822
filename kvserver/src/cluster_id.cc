#include "cluster_id.h"

#include <openssl/rand.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "rocks_state_machine_fs.h"

namespace kv {

bool ValidClusterId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

raft::Result<std::string> NewClusterId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    return raft::Status(raft::ErrorCode::kIOError, "no random bytes for a new cluster id");
  std::string id;
  char hex[3];
  for (unsigned char b : bytes) {
    std::snprintf(hex, sizeof hex, "%02x", b);
    id.append(hex);
  }
  return id;
}

raft::Result<std::string> ReadClusterId(const std::string& data_dir) {
  const std::string path = data_dir + "/cluster-id";
  if (!fs::Exists(path)) return std::string();
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.eof() && in.fail()) return raft::Status(raft::ErrorCode::kIOError, "cannot read " + path);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!ValidClusterId(text))
    return raft::Status(raft::ErrorCode::kCorruption,
                        path + " does not hold a cluster id (1 to 64 of A-Z a-z 0-9 . _ -)");
  return text;
}

raft::Status WriteClusterId(const std::string& data_dir, const std::string& id) {
  const std::string path = data_dir + "/cluster-id";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    out.close();
    if (!out) return raft::Status(raft::ErrorCode::kIOError, "cannot write " + tmp);
  }
  if (raft::Status s = fs::FsyncPath(tmp); !s.ok()) return s;
  return fs::RenameDurably(tmp, path, data_dir);
}

}  // namespace kv
