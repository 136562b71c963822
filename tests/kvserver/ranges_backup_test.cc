// The ranges backup file (ranges_backup.h; docs/state-format.md, "Ranges backups"): its
// writer's refusals and its reader's checks of the framing. A round trip with real range
// backups is process_ranges_test "ranges: a backup of every range ...".
#include "ranges_backup.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "range_test_util.h"

namespace kv {
namespace {

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("ranges-backup-test-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string Refusal(const std::string& file, const std::string& dir) {
  auto r = ExtractRangesBackup(file, dir);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == raft::ErrorCode::kCorruption);
  CHECK(r.status().message().find(file) != std::string::npos);  // names the file
  return r.status().message();
}

}  // namespace

TEST_CASE("ranges backup: the writer refuses parts that do not cover the key space once",
          "[ranges][backup]") {
  TempDir dir;
  WriteFile(dir / "a", "A");
  auto part = [&](RangeId id, std::string start, std::string end) {
    return RangesBackupPart{TestRange(id, 1, std::move(start), std::move(end)), dir / "a", 1};
  };
  auto refused = [&](const std::vector<RangesBackupPart>& parts) {
    auto r = WriteRangesBackup(dir / "out", parts);
    return !r.ok() && r.status().code() == raft::ErrorCode::kInvalidArgument &&
           !std::filesystem::exists(dir / "out") && !std::filesystem::exists(dir / "out.tmp");
  };
  CHECK(refused({}));
  CHECK(refused({part(2, "", "m")}));                    // the end is missing
  CHECK(refused({part(2, "", "m"), part(3, "n", "")}));  // a gap
  CHECK(refused({part(2, "", "m"), part(3, "l", "")}));  // an overlap
  CHECK(refused({part(3, "m", ""), part(2, "", "m")}));  // out of order
  CHECK(refused({part(2, "", "m"), part(2, "m", "")}));  // one id twice
  CHECK(refused({part(2, "", ""), part(3, "", "")}));    // the key space twice
  CHECK(refused({part(1, "", "")}));                     // the meta range's id
  RangesBackupPart missing = part(2, "", "");
  missing.file = dir / "nope";
  auto r = WriteRangesBackup(dir / "out", {missing});
  CHECK(r.status().code() == raft::ErrorCode::kIOError);
  CHECK_FALSE(std::filesystem::exists(dir / "out.tmp"));
}

TEST_CASE("ranges backup: the reader checks the header, each descriptor and each part",
          "[ranges][backup]") {
  TempDir dir;
  WriteFile(dir / "a", "not a backup");
  WriteFile(dir / "b", std::string(5000, 'b'));
  const std::vector<RangesBackupPart> parts = {{TestRange(2, 3, "", "m"), dir / "a", 7},
                                               {TestRange(9, 1, "m", ""), dir / "b", 8}};
  auto bytes = WriteRangesBackup(dir / "good", parts);
  REQUIRE(bytes.ok());
  const std::string good = ReadFile(dir / "good");
  CHECK(*bytes == good.size());
  CHECK(good.size() > 5000 + 12);
  CHECK(IsRangesBackup(dir / "good"));
  CHECK_FALSE(IsRangesBackup(dir / "a"));
  CHECK_FALSE(IsRangesBackup(dir / "nope"));
  std::filesystem::create_directories(dir / "x");

  // The framing is intact: the first part is read out and found not to be a backup.
  CHECK(Refusal(dir / "good", dir / "x").find("range 2: backup") != std::string::npos);
  CHECK(ReadFile(dir / "x" + "/2.backup") == "not a backup");  // copied out as it was

  auto damaged = [&](std::size_t at) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    WriteFile(dir / "bad", bad);
    return Refusal(dir / "bad", dir / "x");
  };
  CHECK(damaged(0).find("not a ranges backup") != std::string::npos);
  CHECK(damaged(8).find("header checksum mismatch") != std::string::npos);   // the version
  CHECK(damaged(10).find("header checksum mismatch") != std::string::npos);  // the count
  CHECK(damaged(17 + 4 + 2).find("checksum mismatch at range 0") != std::string::npos);
  for (std::size_t cut : {std::size_t{3}, std::size_t{15}, std::size_t{30}}) {
    WriteFile(dir / "short", good.substr(0, cut));
    CHECK(Refusal(dir / "short", dir / "x").find("truncated") != std::string::npos);
  }
  WriteFile(dir / "short", good.substr(0, good.size() - 1));  // inside the last part
  CHECK(Refusal(dir / "short", dir / "x").find("range 2: backup") != std::string::npos);
  WriteFile(dir / "empty", "");
  CHECK(Refusal(dir / "empty", dir / "x").find("truncated header") != std::string::npos);
}

}  // namespace kv
