// Backups over HTTP (docs/http-api.md, "Backups"; kvctl snapshot save):
//
//   POST   /backup                          write a backup of this node's state (admin)
//   GET    /backup/{id}?offset=N[&length=M] up to M bytes of it from N (default 1 MiB)
//   DELETE /backup/{id}                     remove it
//
// A backup is raft::Node::Backup's file (the snapshot file format, checksummed), kept in
// <data>/backups/<id>.snap. The client reads it in pieces so that neither side holds more
// than one piece in memory, and a piece that is lost is simply asked for again. At most
// kBackupsKept finished backups stay on disk (the oldest go first); a restart removes
// them all. One backup is written at a time (409 while one is).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "cluster_id.h"
#include "kv_server_impl.h"
#include "ranges_backup.h"
#include "rocks_state_machine_fs.h"

namespace kv {
namespace {

constexpr std::size_t kBackupsKept = 2;
constexpr std::uint64_t kPieceBytesDefault = 1 << 20;
constexpr std::uint64_t kPieceBytesMax = 8 << 20;
constexpr std::chrono::milliseconds kRangesBackupBarrier{5000};

// 32 lowercase hex digits: what NewBackupId makes, nothing that could name another file.
bool ValidBackupId(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string BackupJson(const std::string& id, const raft::BackupInfo& info) {
  nlohmann::json j;
  j["id"] = id;
  j["index"] = info.meta.index;
  j["term"] = info.meta.term;
  j["bytes"] = info.bytes;
  j["members"] = nlohmann::json::array();
  for (const auto& m : info.members) j["members"].push_back(m.name);
  return j.dump();
}

}  // namespace

std::string KvServer::Impl::BackupDir() const { return flags.data + "/backups"; }

raft::Status KvServer::Impl::ClearBackups() {
  std::error_code ec;
  std::filesystem::remove_all(BackupDir(), ec);
  if (ec)
    return raft::Status(raft::ErrorCode::kIOError,
                        "cannot remove " + BackupDir() + ": " + ec.message());
  return raft::Status::Ok();
}

void KvServer::Impl::HandleBackup(const CallPtr& call) {
  const HttpRequest& req = call->req;
  if (call->route == "/backup") {
    if (req.method() != http::verb::post)
      return Answer(call, ErrorAnswer(405, "only POST /backup"));
    if (!JsonContentType(req))
      return Answer(call,
                    ErrorAnswer(415, "the body must be JSON (Content-Type: application/json)"));
    if (backup_running.exchange(true))
      return Answer(call, ErrorAnswer(409, "a backup is being written; retry when it is done"));
    auto id = NewClusterId();  // 32 random hex digits
    if (!id.ok()) {
      backup_running = false;
      return Answer(call, StatusAnswer(id.status()));
    }
    if (raft::Status s = fs::MakeDirs(BackupDir()); !s.ok()) {
      backup_running = false;
      return Answer(call, StatusAnswer(s));
    }
    Log(raft::LogLevel::kInfo, "backup requested", {{"id", *id}, {"peer", call->info.peer}});
    if (ranges) return BackupRanges(call, *id);
    auto write = [this, call, id = *id](const raft::Status& barrier) {
      if (!barrier.ok()) {
        backup_running = false;
        return Answer(call, StatusAnswer(barrier, /*is_read=*/true));
      }
      // Runs on the Raft snapshot thread (or where the node drops the work at shutdown).
      node->Backup(BackupDir() + "/" + id + ".snap",
                   [this, call, id](raft::Result<raft::BackupInfo> r) {
                     backup_running = false;
                     if (!r.ok()) return Answer(call, StatusAnswer(r.status()));
                     PruneBackups(id);
                     Answer(call, JsonAnswer(200, BackupJson(id, *r)));
                   });
    };
    // As a linearizable read: after a barrier, the backup holds every write acknowledged
    // before the request, on any node. consistency=stale skips it (a cluster that lost
    // its majority can still be backed up, from what this node has).
    if (call->target.Param("consistency") == "stale") return write(raft::Status::Ok());
    return AfterReadBarrier(call, std::move(write));
  }
  // /backup/{id}
  const std::string_view id = std::string_view(call->target.path).substr(8);
  if (!ValidBackupId(id)) return Answer(call, ErrorAnswer(404, "no such backup"));
  const std::string path = BackupDir() + "/" + std::string(id) + ".snap";
  if (req.method() == http::verb::delete_) {
    std::error_code ec;
    if (!std::filesystem::remove(path, ec)) return Answer(call, ErrorAnswer(404, "no such backup"));
    return Answer(call, JsonAnswer(200, "{\"deleted\": true}"));
  }
  if (req.method() != http::verb::get)
    return Answer(call, ErrorAnswer(405, "only GET or DELETE /backup/{id}"));
  std::uint64_t offset = 0, length = kPieceBytesDefault;
  if (call->target.Has("offset")) {
    auto n = ParseU64(call->target.Param("offset"));
    if (!n) return Answer(call, ErrorAnswer(400, "offset must be a number"));
    offset = *n;
  }
  if (call->target.Has("length")) {
    auto n = ParseU64(call->target.Param("length"));
    if (!n || *n == 0 || *n > kPieceBytesMax)
      return Answer(call, ErrorAnswer(400, "length must be in [1, 8388608]"));
    length = *n;
  }
  // One bounded pread on this I/O thread: at most 8 MiB, from a file just written (in the
  // page cache, normally).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Answer(call, ErrorAnswer(404, "no such backup"));
  struct stat st {};
  std::string piece;
  bool ok = ::fstat(fd, &st) == 0;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (ok && offset < size) {
    piece.resize(static_cast<std::size_t>(std::min(length, size - offset)));
    std::size_t got = 0;
    while (ok && got < piece.size()) {
      ssize_t n =
          ::pread(fd, piece.data() + got, piece.size() - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) got += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  if (!ok) return Answer(call, ErrorAnswer(500, "cannot read backup " + path));
  if (offset > size) return Answer(call, ErrorAnswer(416, "offset is beyond the backup's end"));
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::content_type, "application/octet-stream");
  res.set("X-Backup-Bytes", std::to_string(size));
  res.body() = std::move(piece);
  Answer(call, std::move(res));
}

void KvServer::Impl::BackupRanges(const CallPtr& call, const std::string& id) {
  const bool stale = call->target.Param("consistency") == "stale";
  if (backup_thread.joinable()) backup_thread.join();  // the last one: it has answered
  backup_thread = std::thread([this, call, id, stale] {
    const std::string parts_dir = BackupDir() + "/" + id + ".parts";
    HttpResponse res = WriteRangesBackupFile(id, parts_dir, stale);  // its files closed
    (void)fs::RemoveAll(parts_dir);
    backup_running = false;
    Answer(call, std::move(res));
  });
}

HttpResponse KvServer::Impl::WriteRangesBackupFile(const std::string& id,
                                                   const std::string& parts_dir, bool stale) {
  if (raft::Status s = fs::MakeDirs(parts_dir); !s.ok()) return StatusAnswer(s);
  // The spans as this node routes them, each matching its state machine's own record:
  // checked again at the end, so that a split in between fails the backup (its spans
  // would no longer cover the key space as the descriptors say).
  ranges->RefreshRoutes();
  const std::vector<RangeDescriptor> dir = ranges->Directory();
  auto unchanged = [&] {
    if (ranges->Directory() != dir) return false;
    for (const RangeDescriptor& d : dir) {
      RocksStateMachine* sm = ranges->StateMachine(d.id);
      if (sm == nullptr || !sm->HoldsSpan(d)) return false;
    }
    return true;
  };
  if (dir.empty() || !unchanged())
    return ErrorAnswer(409, "a range is splitting or not hosted here yet; ask again");
  // Each range's backup goes into the file as soon as it is written, and is removed
  // then: the node needs room for the file and one range's backup.
  auto writer = RangesBackupWriter::Create(BackupDir() + "/" + id + ".snap", dir.size());
  if (!writer.ok()) return StatusAnswer(writer.status());
  nlohmann::json listed = nlohmann::json::array();
  for (const RangeDescriptor& d : dir) {
    if (backup_cancel) return ErrorAnswer(503, "node is shutting down");
    // As a linearizable read of the range: every write acknowledged before is in.
    if (!stale)
      if (auto b = ranges->host().ReadBarrier(d.id, kRangesBackupBarrier).get(); !b.ok())
        return StatusAnswer(b.status(), /*is_read=*/true);
    const std::string file = parts_dir + "/" + std::to_string(d.id) + ".backup";
    std::promise<raft::Result<raft::BackupInfo>> done;
    ranges->host().Backup(
        d.id, file, [&done](raft::Result<raft::BackupInfo> r) { done.set_value(std::move(r)); });
    auto info = done.get_future().get();
    if (!info.ok()) return StatusAnswer(info.status());
    raft::Status added = (*writer)->Add(d, file);
    (void)fs::RemoveAll(file);
    if (!added.ok()) return StatusAnswer(added);
    listed.push_back(
        {{"id", d.id}, {"start", d.start}, {"end", d.end}, {"index", info->meta.index}});
  }
  if (!unchanged()) return ErrorAnswer(409, "a range split during the backup; ask again");
  auto bytes = (*writer)->Commit();
  if (!bytes.ok()) return StatusAnswer(bytes.status());
  PruneBackups(id);
  Log(raft::LogLevel::kInfo, "ranges backup written",
      {{"id", id}, {"ranges", std::to_string(dir.size())}, {"bytes", std::to_string(*bytes)}});
  nlohmann::json j;
  j["id"] = id;
  j["bytes"] = *bytes;
  j["ranges"] = std::move(listed);
  return JsonAnswer(200, j.dump());
}

void KvServer::Impl::PruneBackups(const std::string& keep) {
  std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> done;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(BackupDir(), ec)) {
    const auto name = e.path().filename().string();
    if (name.ends_with(".snap") && name != keep + ".snap")
      done.emplace_back(e.last_write_time(ec), e.path());
  }
  std::sort(done.rbegin(), done.rend());  // newest first
  for (std::size_t i = kBackupsKept - 1; i < done.size(); ++i) {
    std::filesystem::remove(done[i].second, ec);
    Log(raft::LogLevel::kInfo, "old backup removed", {{"file", done[i].second.string()}});
  }
}

}  // namespace kv
