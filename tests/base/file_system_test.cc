// The POSIX FileSystem against a scratch directory, and the errno -> Status mapping.
#include "base/file_system.h"

#include <fcntl.h>
#include <stdlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>

#include "raft/errno_status.h"

namespace raft::base {
namespace {

class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/raft-base-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_CASE("posix file system: write, read, size, truncate, rename, list", "[base][fs]") {
  FileSystem* fs = PosixFileSystem();
  ScratchDir dir;
  const std::string a = dir.path() + "/a";
  int fd = -1;
  REQUIRE(fs->Open(a, O_RDWR | O_CREAT | O_EXCL, 0644, &fd) == 0);
  CHECK(fs->Open(a, O_RDWR | O_CREAT | O_EXCL, 0644, &fd) == EEXIST);
  REQUIRE(fs->PwriteAll(fd, "hello world", 11, 0) == 0);
  REQUIRE(fs->PwriteAll(fd, "W", 1, 6) == 0);
  CHECK(fs->Fdatasync(fd) == 0);
  CHECK(fs->Fsync(fd) == 0);
  std::uint64_t size = 0;
  REQUIRE(fs->FileSize(fd, &size) == 0);
  CHECK(size == 11);

  char buf[16] = {};
  std::size_t read = 0;
  REQUIRE(fs->Pread(fd, buf, sizeof(buf), 2, &read) == 0);
  CHECK(std::string(buf, read) == "llo World");  // short only at the end of the file
  CHECK(fs->PreadAll(fd, buf, 5, 0) == 0);
  CHECK(std::string(buf, 5) == "hello");
  CHECK(fs->PreadAll(fd, buf, 5, 8) == EIO);

  REQUIRE(fs->Ftruncate(fd, 5) == 0);
  REQUIRE(fs->FileSize(fd, &size) == 0);
  CHECK(size == 5);
  CHECK(fs->LockExclusive(fd) == 0);
  REQUIRE(fs->Close(fd) == 0);

  const std::string b = dir.path() + "/b";
  REQUIRE(fs->Rename(a, b) == 0);
  REQUIRE(fs->Mkdir(dir.path() + "/sub") == 0);
  CHECK(fs->Mkdir(dir.path() + "/sub") == EEXIST);
  CHECK(fs->SyncDir(dir.path()) == 0);
  std::vector<std::string> names;
  REQUIRE(fs->ListDir(dir.path(), &names) == 0);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"b", "sub"});
  CHECK(fs->Unlink(b) == 0);
  CHECK(fs->Unlink(b) == ENOENT);
  CHECK(fs->SyncDir(dir.path() + "/missing") == ENOENT);
}

TEST_CASE("MkdirAll creates every missing parent and accepts an existing path", "[base][fs]") {
  FileSystem* fs = PosixFileSystem();
  ScratchDir dir;
  const std::string deep = dir.path() + "/x//y/z/";
  REQUIRE(fs->MkdirAll(deep) == 0);
  CHECK(std::filesystem::is_directory(dir.path() + "/x/y/z"));
  CHECK(fs->MkdirAll(deep) == 0);                 // exists: fine
  CHECK(fs->MkdirAll(dir.path() + "/x/y") == 0);  // a parent that exists: fine
  int fd = -1;
  REQUIRE(fs->Open(dir.path() + "/file", O_RDWR | O_CREAT, 0644, &fd) == 0);
  REQUIRE(fs->Close(fd) == 0);
  CHECK(fs->MkdirAll(dir.path() + "/file/below") == ENOTDIR);
}

// The POSIX calls, recording the directories synced.
class SyncRecorder final : public ForwardingFileSystem {
 public:
  std::vector<std::string> synced_dirs;

  int SyncDir(const std::string& dir) override {
    synced_dirs.push_back(dir);
    return ForwardingFileSystem::SyncDir(dir);
  }
};

// Safety review 9c: a directory's name is durable only once its parent is synced.
TEST_CASE("MkdirAll syncs the parent of each directory it creates", "[base][fs]") {
  SyncRecorder fs;
  ScratchDir dir;
  REQUIRE(fs.MkdirAll(dir.path() + "/x//y/z/") == 0);
  CHECK(fs.synced_dirs ==
        std::vector<std::string>{dir.path(), dir.path() + "/x", dir.path() + "/x//y"});
  fs.synced_dirs.clear();
  REQUIRE(fs.MkdirAll(dir.path() + "/x/y/w") == 0);  // only w is new
  CHECK(fs.synced_dirs == std::vector<std::string>{dir.path() + "/x/y"});
  fs.synced_dirs.clear();
  REQUIRE(fs.MkdirAll(dir.path() + "/x/y") == 0);  // nothing new, nothing synced
  CHECK(fs.synced_dirs.empty());
}

TEST_CASE("ParentDir names the directory holding the last component", "[base][fs]") {
  CHECK(ParentDir("a/b//c") == "a/b");
  CHECK(ParentDir("a/b/") == "a");
  CHECK(ParentDir("/a") == "/");
  CHECK(ParentDir("/") == "/");
  CHECK(ParentDir("a") == ".");
  CHECK(ParentDir("") == ".");
}

TEST_CASE("errno maps to kNoSpace or kIOError, naming operation and path", "[base][errno]") {
  for (int err : {ENOSPC, EDQUOT, EFBIG}) {
    const Status s = ErrnoStatus("write", "/d/f", err);
    CHECK(s.code() == ErrorCode::kNoSpace);
    CHECK(s.message().starts_with("write /d/f: "));
    CHECK(s.message().find("out of disk space") != std::string::npos);
  }
  for (int err : {EIO, EACCES, ENOENT, EROFS}) {
    const Status s = ErrnoStatus("fsync", "/d/f", err);
    CHECK(s.code() == ErrorCode::kIOError);
  }
  CHECK(ErrnoStatus("open", "/x", ENOENT).message() == "open /x: No such file or directory");
}

}  // namespace
}  // namespace raft::base
