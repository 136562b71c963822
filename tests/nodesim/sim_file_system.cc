#include "sim_file_system.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

namespace raft::nodesim {

namespace {

constexpr std::uint64_t kRoot = 1;
constexpr std::uint64_t kSectorBytes = 512;

// Path components with "" and "." dropped and ".." applied lexically.
std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string c = path.substr(i, j - i);
    if (c == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!c.empty() && c != ".") {
      out.push_back(std::move(c));
    }
    i = j + 1;
  }
  return out;
}

}  // namespace

// A write of `bytes` at `offset`, or (truncate) a resize to `offset`.
struct Op {
  bool truncate = false;
  std::uint64_t offset = 0;
  std::string bytes;
};

void ApplyOp(const Op& op, std::string* s) {
  if (op.truncate) {
    s->resize(op.offset);
    return;
  }
  if (s->size() < op.offset + op.bytes.size()) s->resize(op.offset + op.bytes.size());
  std::memcpy(s->data() + op.offset, op.bytes.data(), op.bytes.size());
}

struct SimDisk::Inode {
  bool is_dir = false;
  // Files. data == durable with every pending op applied, except after a failed fsync
  // (which drops pending ops without changing data).
  std::string data;     // what reads see (the page cache)
  std::string durable;  // survives a crash
  std::vector<Op> pending;
  // Directories: name -> inode, live and as of the last sync.
  std::map<std::string, std::uint64_t> entries, durable_entries;
  // References that keep the inode alive (it is freed when all are 0).
  int nlink = 0;          // live entries naming it
  int durable_links = 0;  // durable entries naming it
  int pending_refs = 0;   // unsynced renames of it
  int open = 0;           // descriptors
  int lock_fd = -1;       // descriptor holding LockExclusive, or -1
};

struct SimDisk::Fd {
  std::uint64_t view = 0;
  std::uint64_t ino = 0;
  bool readable = false, writable = false;
};

struct SimDisk::PendingRename {
  std::uint64_t from_dir = 0;
  std::string from;
  std::uint64_t to_dir = 0;
  std::string to;
  std::uint64_t ino = 0;
};

SimDisk::SimDisk(sim::Rng* rng) : rng_(rng) {
  NewInode(true);
  inodes_[kRoot]->nlink = 1;  // never freed
  inodes_[kRoot]->durable_links = 1;
}

SimDisk::~SimDisk() = default;

std::uint64_t SimDisk::NewInode(bool is_dir) {
  const std::uint64_t ino = next_ino_++;
  auto node = std::make_unique<Inode>();
  node->is_dir = is_dir;
  inodes_[ino] = std::move(node);
  return ino;
}

void SimDisk::MaybeFree(std::uint64_t ino) {
  auto it = inodes_.find(ino);
  if (it == inodes_.end() || ino == kRoot) return;
  Inode& n = *it->second;
  if (n.nlink > 0 || n.durable_links > 0 || n.pending_refs > 0 || n.open > 0) return;
  if (n.is_dir) SetDurableEntries(n, {});  // live entries are empty (only empty dirs go)
  inodes_.erase(ino);
}

void SimDisk::Link(std::uint64_t dir, const std::string& name, std::uint64_t ino) {
  inodes_[dir]->entries[name] = ino;
  inodes_[ino]->nlink++;
}

void SimDisk::UnlinkName(std::uint64_t dir, const std::string& name) {
  auto& entries = inodes_[dir]->entries;
  auto it = entries.find(name);
  if (it == entries.end()) return;
  const std::uint64_t ino = it->second;
  entries.erase(it);
  inodes_[ino]->nlink--;
  MaybeFree(ino);
}

void SimDisk::SetDurableEntries(Inode& dir, const std::map<std::string, std::uint64_t>& entries) {
  std::vector<std::uint64_t> old;
  for (const auto& [name, ino] : dir.durable_entries) old.push_back(ino);
  dir.durable_entries = entries;
  for (const auto& [name, ino] : dir.durable_entries) inodes_[ino]->durable_links++;
  for (std::uint64_t ino : old) {
    inodes_[ino]->durable_links--;
    MaybeFree(ino);
  }
}

int SimDisk::Lookup(const std::string& path, std::uint64_t* parent, std::string* name) const {
  const std::vector<std::string> comps = Split(path);
  if (comps.empty()) {
    *parent = 0;
    name->clear();
    return 0;
  }
  std::uint64_t dir = kRoot;
  for (std::size_t i = 0; i + 1 < comps.size(); ++i) {
    const Inode& d = *inodes_.at(dir);
    auto it = d.entries.find(comps[i]);
    if (it == d.entries.end()) return ENOENT;
    if (!inodes_.at(it->second)->is_dir) return ENOTDIR;
    dir = it->second;
  }
  *parent = dir;
  *name = comps.back();
  return 0;
}

int SimDisk::Resolve(const std::string& path, std::uint64_t* ino) const {
  std::uint64_t parent;
  std::string name;
  if (int err = Lookup(path, &parent, &name); err != 0) return err;
  if (parent == 0) {
    *ino = kRoot;
    return 0;
  }
  const Inode& d = *inodes_.at(parent);
  auto it = d.entries.find(name);
  if (it == d.entries.end()) return ENOENT;
  *ino = it->second;
  return 0;
}

int SimDisk::GetFd(std::uint64_t view, int fd, Fd** out) {
  if (!ViewAlive(view)) return EIO;
  auto it = fds_.find(fd);
  if (it == fds_.end() || it->second->view != view) return EBADF;
  *out = it->second.get();
  return 0;
}

int SimDisk::Open(std::uint64_t view, const std::string& path, int flags, int* fd) {
  if (!ViewAlive(view)) return EIO;
  const int acc = flags & O_ACCMODE;
  std::uint64_t parent, ino = kRoot;
  std::string name;
  if (int err = Lookup(path, &parent, &name); err != 0) return err;
  if (parent != 0) {
    Inode& d = *inodes_[parent];
    auto it = d.entries.find(name);
    if (it == d.entries.end()) {
      if ((flags & O_CREAT) == 0 || (flags & O_DIRECTORY) != 0) return ENOENT;
      ino = NewInode(false);
      Link(parent, name, ino);
    } else {
      if ((flags & O_CREAT) != 0 && (flags & O_EXCL) != 0) return EEXIST;
      ino = it->second;
    }
  }
  Inode& n = *inodes_[ino];
  if (n.is_dir && (acc != O_RDONLY || (flags & O_TRUNC) != 0)) return EISDIR;
  if (!n.is_dir && (flags & O_DIRECTORY) != 0) return ENOTDIR;
  const bool writable = acc == O_WRONLY || acc == O_RDWR;
  if (writable && (flags & O_TRUNC) != 0 && !(n.data.empty() && n.pending.empty())) {
    Op op{true, 0, {}};
    ApplyOp(op, &n.data);
    n.pending.push_back(std::move(op));
  }
  auto f = std::make_unique<Fd>();
  f->view = view;
  f->ino = ino;
  f->readable = acc == O_RDONLY || acc == O_RDWR;
  f->writable = writable;
  n.open++;
  *fd = next_fd_++;
  fds_[*fd] = std::move(f);
  return 0;
}

int SimDisk::Close(std::uint64_t view, int fd) {
  Fd* f;
  if (int err = GetFd(view, fd, &f); err != 0) return err;
  const std::uint64_t ino = f->ino;
  fds_.erase(fd);
  Inode& n = *inodes_[ino];
  if (n.lock_fd == fd) n.lock_fd = -1;
  n.open--;
  MaybeFree(ino);
  return 0;
}

void SimDisk::CloseAll(std::uint64_t view) {
  std::vector<int> mine;
  for (const auto& [fd, f] : fds_) {
    if (f->view == view) mine.push_back(fd);
  }
  for (int fd : mine) Close(view, fd);
}

int SimDisk::PwriteAll(std::uint64_t view, int fd, const void* data, std::size_t n,
                       std::uint64_t off) {
  Fd* f;
  if (int err = GetFd(view, fd, &f); err != 0) return err;
  if (!f->writable) return EBADF;
  Inode& node = *inodes_[f->ino];
  std::size_t k = n;
  int result = 0;
  if (rng_->Chance(options_.fail_write_probability)) {
    k = static_cast<std::size_t>(rng_->Uniform(n));  // a strict prefix
    result = EIO;
  }
  if (options_.capacity_bytes != UINT64_MAX) {
    const std::uint64_t total = TotalBytes();
    const std::uint64_t free =
        options_.capacity_bytes > total ? options_.capacity_bytes - total : 0;
    const std::uint64_t end_max = node.data.size() + free;
    if (off + k > end_max) {
      const std::size_t fits = end_max > off ? static_cast<std::size_t>(end_max - off) : 0;
      k = rng_->Chance(0.5) ? fits : 0;
      result = ENOSPC;
    }
  }
  if (k > 0) {
    Op op{false, off, std::string(static_cast<const char*>(data), k)};
    ApplyOp(op, &node.data);
    node.pending.push_back(std::move(op));
    counters_.bytes_written += k;
  }
  return result;
}

int SimDisk::Pread(std::uint64_t view, int fd, void* data, std::size_t n, std::uint64_t off,
                   std::size_t* read) {
  Fd* f;
  *read = 0;
  if (int err = GetFd(view, fd, &f); err != 0) return err;
  if (!f->readable) return EBADF;
  const Inode& node = *inodes_[f->ino];
  if (node.is_dir) return EISDIR;
  if (off >= node.data.size()) return 0;
  *read = static_cast<std::size_t>(std::min<std::uint64_t>(n, node.data.size() - off));
  std::memcpy(data, node.data.data() + off, *read);
  return 0;
}

int SimDisk::SyncFile(Inode& f) {
  ++counters_.fsyncs;
  if (rng_->Chance(options_.fail_fsync_probability)) {
    ++counters_.failed_fsyncs;
    f.pending.clear();  // lost to the durable image for good; reads still see them
    return EIO;
  }
  for (const Op& op : f.pending) ApplyOp(op, &f.durable);
  f.pending.clear();
  return 0;
}

int SimDisk::SyncDirInode(std::uint64_t dir) {
  ++counters_.fsyncs;
  if (rng_->Chance(options_.fail_fsync_probability)) {
    ++counters_.failed_fsyncs;
    return EIO;  // the names stay volatile
  }
  Inode& d = *inodes_[dir];
  SetDurableEntries(d, d.entries);
  // A rename touching `dir` is now durable. For one across directories, the other half
  // is applied to the other directory's durable entries.
  std::vector<PendingRename> keep;
  std::vector<std::uint64_t> released;
  for (PendingRename& r : renames_) {
    if (r.from_dir != dir && r.to_dir != dir) {
      keep.push_back(std::move(r));
      continue;
    }
    if (r.from_dir != dir) {
      Inode& other = *inodes_[r.from_dir];
      auto e = other.durable_entries;
      auto it = e.find(r.from);
      if (it != e.end() && it->second == r.ino) e.erase(it);
      SetDurableEntries(other, e);
    } else if (r.to_dir != dir) {
      Inode& other = *inodes_[r.to_dir];
      auto e = other.durable_entries;
      e[r.to] = r.ino;
      SetDurableEntries(other, e);
    }
    inodes_[r.ino]->pending_refs--;
    released.push_back(r.ino);
  }
  renames_ = std::move(keep);
  for (std::uint64_t ino : released) MaybeFree(ino);
  return 0;
}

int SimDisk::Sync(std::uint64_t view, int fd) {
  Fd* f;
  if (int err = GetFd(view, fd, &f); err != 0) return err;
  Inode& n = *inodes_[f->ino];
  return n.is_dir ? SyncDirInode(f->ino) : SyncFile(n);
}

int SimDisk::Ftruncate(std::uint64_t view, int fd, std::uint64_t size) {
  Fd* f;
  if (int err = GetFd(view, fd, &f); err != 0) return err;
  if (!f->writable) return EINVAL;
  Inode& n = *inodes_[f->ino];
  Op op{true, size, {}};
  ApplyOp(op, &n.data);
  n.pending.push_back(std::move(op));
  return 0;
}

int SimDisk::FileSize(std::uint64_t view, int fd, std::uint64_t* size) {
  Fd* f;
  if (int err = GetFd(view, fd, &f); err != 0) return err;
  *size = inodes_[f->ino]->data.size();
  return 0;
}

int SimDisk::LockExclusive(std::uint64_t view, int fd) {
  Fd* f;
  if (int err = GetFd(view, fd, &f); err != 0) return err;
  Inode& n = *inodes_[f->ino];
  if (n.lock_fd != -1 && n.lock_fd != fd) return EWOULDBLOCK;
  n.lock_fd = fd;
  return 0;
}

int SimDisk::Rename(const std::string& from, const std::string& to) {
  std::uint64_t from_dir, to_dir;
  std::string from_name, to_name;
  if (int err = Lookup(from, &from_dir, &from_name); err != 0) return err;
  if (int err = Lookup(to, &to_dir, &to_name); err != 0) return err;
  if (from_dir == 0 || to_dir == 0) return EBUSY;  // the root
  Inode& fd = *inodes_[from_dir];
  auto it = fd.entries.find(from_name);
  if (it == fd.entries.end()) return ENOENT;
  const std::uint64_t ino = it->second;
  Inode& td = *inodes_[to_dir];
  auto old = td.entries.find(to_name);
  if (old != td.entries.end()) {
    if (old->second == ino) return 0;
    const Inode& target = *inodes_[old->second];
    if (target.is_dir && !inodes_[ino]->is_dir) return EISDIR;
    if (!target.is_dir && inodes_[ino]->is_dir) return ENOTDIR;
    if (target.is_dir && !target.entries.empty()) return ENOTEMPTY;
  }
  const std::uint64_t replaced = old != td.entries.end() ? old->second : 0;
  td.entries[to_name] = ino;
  fd.entries.erase(from_name);
  renames_.push_back(PendingRename{from_dir, from_name, to_dir, to_name, ino});
  inodes_[ino]->pending_refs++;
  if (replaced != 0) {
    inodes_[replaced]->nlink--;
    MaybeFree(replaced);
  }
  return 0;
}

int SimDisk::Unlink(const std::string& path) {
  std::uint64_t parent, ino;
  std::string name;
  if (int err = Lookup(path, &parent, &name); err != 0) return err;
  if (parent == 0) return EISDIR;
  if (int err = Resolve(path, &ino); err != 0) return err;
  if (inodes_[ino]->is_dir) return EISDIR;
  UnlinkName(parent, name);
  return 0;
}

int SimDisk::Mkdir(const std::string& path) {
  std::uint64_t parent;
  std::string name;
  if (int err = Lookup(path, &parent, &name); err != 0) return err;
  if (parent == 0 || inodes_[parent]->entries.count(name) != 0) return EEXIST;
  Link(parent, name, NewInode(true));
  return 0;
}

int SimDisk::Rmdir(const std::string& path) {
  std::uint64_t parent, ino;
  std::string name;
  if (int err = Lookup(path, &parent, &name); err != 0) return err;
  if (parent == 0) return EBUSY;  // the root
  if (int err = Resolve(path, &ino); err != 0) return err;
  if (!inodes_[ino]->is_dir) return ENOTDIR;
  if (!inodes_[ino]->entries.empty()) return ENOTEMPTY;
  UnlinkName(parent, name);
  return 0;
}

int SimDisk::ListDir(const std::string& dir, std::vector<std::string>* names) {
  std::uint64_t ino;
  if (int err = Resolve(dir, &ino); err != 0) return err;
  const Inode& d = *inodes_[ino];
  if (!d.is_dir) return ENOTDIR;
  names->clear();
  for (const auto& [name, child] : d.entries) names->push_back(name);
  return 0;
}

int SimDisk::SyncDir(const std::string& dir) {
  std::uint64_t ino;
  if (int err = Resolve(dir, &ino); err != 0) return err;
  if (!inodes_[ino]->is_dir) return ENOTDIR;
  return SyncDirInode(ino);
}

void SimDisk::Crash(sim::Rng& rng) {
  ++counters_.crashes;
  // Unsynced renames, each kept or lost.
  for (const PendingRename& r : renames_) {
    if (!rng.Chance(0.5)) continue;
    Inode& from = *inodes_[r.from_dir];
    auto fe = from.durable_entries;
    auto it = fe.find(r.from);
    if (it != fe.end() && it->second == r.ino) fe.erase(it);
    SetDurableEntries(from, fe);
    Inode& to = *inodes_[r.to_dir];
    auto te = to.durable_entries;
    te[r.to] = r.ino;
    SetDurableEntries(to, te);
  }
  renames_.clear();
  // The dead processes: descriptors, locks, views.
  fds_.clear();
  first_live_view_ = next_view_;
  // What is reachable through durable names survives.
  std::set<std::uint64_t> reachable{kRoot};
  std::vector<std::uint64_t> todo{kRoot};
  while (!todo.empty()) {
    const std::uint64_t d = todo.back();
    todo.pop_back();
    for (const auto& [name, child] : inodes_[d]->durable_entries) {
      if (reachable.insert(child).second && inodes_[child]->is_dir) todo.push_back(child);
    }
  }
  for (auto it = inodes_.begin(); it != inodes_.end();) {
    it = reachable.count(it->first) != 0 ? std::next(it) : inodes_.erase(it);
  }
  for (auto& [ino, node] : inodes_) {
    Inode& n = *node;
    n.nlink = n.durable_links = n.pending_refs = n.open = 0;
    n.lock_fd = -1;
    if (n.is_dir) {
      n.entries = n.durable_entries;
      continue;
    }
    // The synced contents plus none, all, or a torn prefix of the pending ops.
    std::string s = std::move(n.durable);
    const std::uint64_t mode = n.pending.empty() ? 0 : rng.Uniform(3);
    const std::size_t full = mode == 0   ? 0
                             : mode == 1 ? n.pending.size()
                                         : static_cast<std::size_t>(rng.Uniform(n.pending.size()));
    for (std::size_t i = 0; i < full; ++i) ApplyOp(n.pending[i], &s);
    if (mode == 2 && !n.pending[full].truncate) {
      Op torn = n.pending[full];
      const std::size_t keep = static_cast<std::size_t>(rng.Uniform(torn.bytes.size() + 1));
      std::size_t end = keep;
      if (options_.tear_with_garbage && keep < torn.bytes.size() && rng.Chance(0.5)) {
        const std::uint64_t to_boundary = kSectorBytes - (torn.offset + keep) % kSectorBytes;
        end = static_cast<std::size_t>(
            std::min<std::uint64_t>(torn.bytes.size(), keep + to_boundary));
        for (std::size_t i = keep; i < end; ++i) torn.bytes[i] = static_cast<char>(rng.Next());
      }
      torn.bytes.resize(end);
      ApplyOp(torn, &s);
    }
    n.data = s;
    n.durable = std::move(s);
    n.pending.clear();
  }
  inodes_[kRoot]->nlink = inodes_[kRoot]->durable_links = 1;
  for (auto& [ino, node] : inodes_) {
    for (const auto& [name, child] : node->durable_entries) {
      inodes_[child]->nlink++;
      inodes_[child]->durable_links++;
    }
  }
}

std::uint64_t SimDisk::TotalBytes() const {
  std::uint64_t total = 0;
  for (const auto& [ino, n] : inodes_) {
    if (!n->is_dir && (n->nlink > 0 || n->open > 0)) total += n->data.size();
  }
  return total;
}

std::vector<std::string> SimDisk::ListAll() const {
  std::vector<std::string> out;
  std::vector<std::pair<std::string, std::uint64_t>> todo{{"/", kRoot}};
  while (!todo.empty()) {
    auto [path, d] = todo.back();
    todo.pop_back();
    for (const auto& [name, child] : inodes_.at(d)->entries) {
      if (inodes_.at(child)->is_dir) {
        out.push_back(path + name + "/");
        todo.emplace_back(path + name + "/", child);
      } else {
        out.push_back(path + name);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool SimDisk::ReadFile(const std::string& path, std::string* contents) const {
  std::uint64_t ino;
  if (Resolve(path, &ino) != 0 || inodes_.at(ino)->is_dir) return false;
  *contents = inodes_.at(ino)->data;
  return true;
}

// --- SimFileSystem: every call is refused once the view's process died.

SimFileSystem::~SimFileSystem() {
  if (alive()) disk_->CloseAll(view_);
}

int SimFileSystem::Open(const std::string& path, int flags, mode_t, int* fd) {
  return disk_->Open(view_, path, flags, fd);
}
int SimFileSystem::Close(int fd) { return disk_->Close(view_, fd); }
int SimFileSystem::PwriteAll(int fd, const void* data, std::size_t n, std::uint64_t offset) {
  return disk_->PwriteAll(view_, fd, data, n, offset);
}
int SimFileSystem::Pread(int fd, void* data, std::size_t n, std::uint64_t offset,
                         std::size_t* read) {
  return disk_->Pread(view_, fd, data, n, offset, read);
}
int SimFileSystem::Fdatasync(int fd) { return disk_->Sync(view_, fd); }
int SimFileSystem::Fsync(int fd) { return disk_->Sync(view_, fd); }
int SimFileSystem::Ftruncate(int fd, std::uint64_t size) {
  return disk_->Ftruncate(view_, fd, size);
}
int SimFileSystem::FileSize(int fd, std::uint64_t* size) {
  return disk_->FileSize(view_, fd, size);
}
int SimFileSystem::LockExclusive(int fd) { return disk_->LockExclusive(view_, fd); }
int SimFileSystem::Rename(const std::string& from, const std::string& to) {
  return alive() ? disk_->Rename(from, to) : EIO;
}
int SimFileSystem::Unlink(const std::string& path) { return alive() ? disk_->Unlink(path) : EIO; }
int SimFileSystem::Mkdir(const std::string& path) { return alive() ? disk_->Mkdir(path) : EIO; }
int SimFileSystem::Rmdir(const std::string& path) { return alive() ? disk_->Rmdir(path) : EIO; }
int SimFileSystem::ListDir(const std::string& dir, std::vector<std::string>* names) {
  return alive() ? disk_->ListDir(dir, names) : EIO;
}
int SimFileSystem::SyncDir(const std::string& dir) { return alive() ? disk_->SyncDir(dir) : EIO; }

}  // namespace raft::nodesim
