#include "test_util.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace raft::storage::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/raft-storage-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Entry MakeEntry(Index i, Term t, std::size_t bytes) {
  Entry e;
  e.index = i;
  e.term = t;
  e.type = i % 7 == 3 ? EntryType::kConfChange : EntryType::kNormal;
  e.data.resize(bytes);
  for (std::size_t k = 0; k < bytes; ++k)
    e.data[k] = static_cast<char>('a' + (i * 31 + t + k) % 26);
  return e;
}

std::vector<Entry> MakeEntries(Index lo, Index hi, Term t, std::size_t bytes) {
  std::vector<Entry> out;
  for (Index i = lo; i < hi; ++i) out.push_back(MakeEntry(i, t, bytes));
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::abort();
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

std::vector<std::string> ListSegments(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.ends_with(".seg")) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

int FaultyFileSystem::PwriteAll(int fd, const void* data, std::size_t n, std::uint64_t offset) {
  ++write_calls;
  if (fail_writes_after >= 0 && write_calls > fail_writes_after) {
    target()->PwriteAll(fd, data, n / 2, offset);
    return write_errno;
  }
  return target()->PwriteAll(fd, data, n, offset);
}
int FaultyFileSystem::Fdatasync(int fd) {
  ++fdatasync_calls;
  if (fail_fdatasyncs_after >= 0 && fdatasync_calls > fail_fdatasyncs_after) return fdatasync_errno;
  return syncs_are_noops ? 0 : target()->Fdatasync(fd);
}
int FaultyFileSystem::Fsync(int fd) {
  ++fsync_calls;
  return syncs_are_noops ? 0 : target()->Fsync(fd);
}
int FaultyFileSystem::SyncDir(const std::string& dir) {
  ++fsync_calls;
  return syncs_are_noops ? 0 : target()->SyncDir(dir);
}

}  // namespace raft::storage::testing
