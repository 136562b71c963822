#include "rocks_state_machine.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "kv_command.h"
#include "raft/coding.h"
#include "rocks_state_machine_fs.h"
#include "rocks_state_machine_snapshot.h"

namespace kv {
namespace {

constexpr char kUserPrefix = 'u';
const std::string kAppliedKey("\0applied", 8);
const std::string kFormatKey("\0format", 7);

[[noreturn]] void Fatal(const std::string& what) {
  std::fprintf(stderr, "kvserver: fatal: state machine: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

raft::Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  auto code = s.IsNoSpace()      ? raft::ErrorCode::kNoSpace
              : s.IsCorruption() ? raft::ErrorCode::kCorruption
                                 : raft::ErrorCode::kIOError;
  return raft::Status(code, "rocksdb: " + what + ": " + s.ToString());
}

std::string UserKey(std::string_view key) {
  std::string k;
  k.reserve(1 + key.size());
  k.push_back(kUserPrefix);
  k.append(key);
  return k;
}

std::string EncodeU64(std::uint64_t v) {
  std::string out(8, '\0');
  raft::EncodeFixed64(out.data(), v);
  return out;
}

bool DecodeU64(const std::string& in, std::uint64_t* v) {
  if (in.size() != 8) return false;
  *v = raft::DecodeFixed64(in.data());
  return true;
}

// The smallest key greater than every key starting with `prefix` ("" if none exists).
std::string PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

rocksdb::Options MakeOptions(const RocksOptions& o, std::shared_ptr<rocksdb::Cache> cache) {
  rocksdb::Options opt;
  opt.create_if_missing = true;
  opt.max_background_jobs = o.background_jobs;
  opt.max_open_files = o.max_open_files;
  opt.write_buffer_size = o.write_buffer_bytes;
  opt.max_write_buffer_number = o.max_write_buffers;
  opt.target_file_size_base = o.target_file_bytes;
  opt.level_compaction_dynamic_level_bytes = true;
  // Without a WAL, a flush at shutdown is the only way to keep the memtable; Close()
  // does it explicitly, and Restore wants the old memtable dropped, not written.
  opt.avoid_flush_during_shutdown = true;
  opt.keep_log_file_num = 3;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = std::move(cache);
  // Index and filter blocks count against the block cache: memory stays bounded
  // whatever the data size.
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  if (o.bloom_bits_per_key > 0)
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(o.bloom_bits_per_key));
  opt.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return opt;
}

// Reads the metadata keys. *found is false for a DB without them (a new, empty DB).
raft::Status ReadMeta(rocksdb::DB* db, bool* found, raft::Index* applied) {
  std::string format, index;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kFormatKey, &format);
  if (s.IsNotFound()) {
    *found = false;
    *applied = 0;
    return raft::Status::Ok();
  }
  if (!s.ok()) return FromRocks(s, "read format");
  if (format.size() != 1 || static_cast<std::uint8_t>(format[0]) != kStateFormatVersion)
    return raft::Status(raft::ErrorCode::kCorruption,
                        "state machine DB has an unsupported format version");
  s = db->Get(rocksdb::ReadOptions(), kAppliedKey, &index);
  if (!s.ok()) return FromRocks(s, "read applied index");
  if (!DecodeU64(index, applied))
    return raft::Status(raft::ErrorCode::kCorruption, "malformed applied index");
  *found = true;
  return raft::Status::Ok();
}

// Opens the complete DB in `path` read-only and checks its applied index.
raft::Status VerifyDb(const std::string& path, const RocksOptions& options,
                      std::shared_ptr<rocksdb::Cache> cache, raft::Index expected) {
  rocksdb::Options opt = MakeOptions(options, std::move(cache));
  opt.create_if_missing = false;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(opt, path, &raw);
  if (!s.ok()) return FromRocks(s, "open received snapshot");
  std::unique_ptr<rocksdb::DB> db(raw);
  bool found = false;
  raft::Index applied = 0;
  if (raft::Status st = ReadMeta(db.get(), &found, &applied); !st.ok()) return st;
  if (!found || applied != expected)
    return raft::Status(raft::ErrorCode::kCorruption, "received snapshot holds applied index " +
                                                          std::to_string(applied) + ", expected " +
                                                          std::to_string(expected));
  db->Close();
  db.reset();
  return fs::FsyncPath(path);
}

using Pending = std::unordered_map<std::string, std::optional<std::string>>;

// The value of internal key `ikey` as the batch being built sees it.
std::optional<std::string> Current(rocksdb::DB* db, const Pending& pending,
                                   const std::string& ikey) {
  if (auto it = pending.find(ikey); it != pending.end()) return it->second;
  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), ikey, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) Fatal("read during apply: " + s.ToString());
  return value;
}

CommandResult ApplyCommand(rocksdb::DB* db, const Command& c, rocksdb::WriteBatch* batch,
                           Pending* pending) {
  std::string ikey = UserKey(c.key);
  CommandResult r;
  if (c.op == Op::kSet) {  // no read: the result carries no previous value
    batch->Put(ikey, c.value);
    (*pending)[ikey] = c.value;
    return r;
  }
  r.prev = Current(db, *pending, ikey);
  bool write = false;
  switch (c.op) {
    case Op::kPut:
      write = true;
      break;
    case Op::kSet:
      break;  // handled above
    case Op::kDelete:
      if (r.prev) {
        batch->Delete(ikey);
        (*pending)[ikey] = std::nullopt;
      }
      break;
    case Op::kCas:
      r.ok = r.prev == c.expected;
      write = r.ok;
      break;
  }
  if (write) {
    batch->Put(ikey, c.value);
    (*pending)[ikey] = c.value;
  }
  return r;
}

}  // namespace

raft::Result<std::unique_ptr<RocksStateMachine>> RocksStateMachine::Open(
    const std::string& dir, const RocksOptions& options) {
  if (raft::Status s = fs::MakeDirs(dir); !s.ok()) return s;
  auto lock = fs::LockDir(dir);
  if (!lock.ok()) return lock.status();
  // From here the object owns the lock; its destructor releases it on any failure.
  std::unique_ptr<RocksStateMachine> sm(new RocksStateMachine(dir, options, *lock));
  if (raft::Status s = fs::RecoverLayout(dir); !s.ok()) return s;
  if (raft::Status s = fs::RemoveAll(sm->Path(kCheckpointsDir)); !s.ok()) return s;
  if (raft::Status s = fs::MakeDirs(sm->Path(kCheckpointsDir)); !s.ok()) return s;
  if (raft::Status s = sm->OpenLiveDb(); !s.ok()) return s;
  return sm;
}

RocksStateMachine::RocksStateMachine(std::string dir, const RocksOptions& options, int lock_fd)
    : dir_(std::move(dir)),
      options_(options),
      lock_fd_(lock_fd),
      block_cache_(rocksdb::NewLRUCache(options.block_cache_bytes)) {}

RocksStateMachine::~RocksStateMachine() { Close(); }

std::string RocksStateMachine::Path(std::string_view name) const {
  return dir_ + "/" + std::string(name);
}

// Caller holds mu_ exclusively, or the object is not shared yet.
raft::Status RocksStateMachine::OpenLiveDb() {
  const std::string path = Path(kLiveDbDir);
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(MakeOptions(options_, block_cache_), path, &raw);
  if (!s.ok()) return FromRocks(s, "open " + path);
  std::unique_ptr<rocksdb::DB> db(raw);
  bool found = false;
  raft::Index applied = 0;
  if (raft::Status st = ReadMeta(db.get(), &found, &applied); !st.ok()) return st;
  if (!found) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid() || !it->status().ok())
      return raft::Status(raft::ErrorCode::kCorruption,
                          path + " holds data but no state machine metadata");
    it.reset();
    rocksdb::WriteBatch batch;
    batch.Put(kFormatKey, std::string(1, static_cast<char>(kStateFormatVersion)));
    batch.Put(kAppliedKey, EncodeU64(0));
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;
    if (s = db->Write(wo, &batch); !s.ok()) return FromRocks(s, "initialize " + path);
    if (s = db->Flush(rocksdb::FlushOptions()); !s.ok()) return FromRocks(s, "flush " + path);
  }
  db_ = std::move(db);
  applied_.store(applied);
  return raft::Status::Ok();
}

void RocksStateMachine::Close() {
  interrupted_.store(true);  // a stalled Apply holds mu_ shared: let it go
  std::unique_lock lock(mu_);
  if (db_) {
    // A failed flush loses nothing: the applied index stays older and the runtime
    // replays the log after it.
    (void)db_->Flush(rocksdb::FlushOptions());
    (void)db_->Close();
    db_.reset();
  }
  fs::Unlock(lock_fd_);
  lock_fd_ = -1;
}

void RocksStateMachine::Apply(const std::vector<raft::Entry>& entries,
                              std::vector<std::string>* results) {
  std::shared_lock lock(mu_);
  if (interrupted_.load()) {  // shutting down: the restart replays these entries
    results->resize(results->size() + entries.size());
    return;
  }
  if (!db_) Fatal("Apply on a closed state machine");
  rocksdb::WriteBatch batch;
  Pending pending;
  raft::Index applied = applied_.load();
  const raft::Index before = applied;
  for (const raft::Entry& e : entries) {
    if (e.index <= applied) {  // already in the state: applying it again would be wrong
      results->emplace_back();
      continue;
    }
    applied = e.index;
    if (e.type != raft::EntryType::kNormal || e.data.empty()) {
      results->emplace_back();
      continue;
    }
    Command c;
    if (!DecodeCommand(e.data, &c)) {
      CommandResult bad;
      bad.ok = false;
      bad.error = "malformed command at index " + std::to_string(e.index);
      bad.index = e.index;
      results->push_back(EncodeResult(bad));
      continue;
    }
    CommandResult r = ApplyCommand(db_.get(), c, &batch, &pending);
    r.index = e.index;
    if (c.op == Op::kDelete && r.prev) deletes_applied_.fetch_add(1);
    results->push_back(EncodeResult(r));
  }
  if (applied == before) return;
  batch.Put(kAppliedKey, EncodeU64(applied));
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // the Raft log is the WAL (see the header)
  rocksdb::Status s = db_->Write(wo, &batch);
  for (int attempt = 0; !s.ok(); ++attempt) {
    if (s.IsCorruption())
      Fatal("write of entries up to " + std::to_string(applied) + ": " + s.ToString());
    std::string failure = "state machine cannot apply entries up to ";
    failure += std::to_string(applied) + " (" + s.ToString() + "); retrying until space is freed";
    if (attempt == 0) {
      std::fprintf(stderr, "kvserver: state machine: %s\n", failure.c_str());
      std::fflush(stderr);
    }
    {
      std::lock_guard<std::mutex> l(failure_mu_);
      failure_ = std::move(failure);
    }
    const auto pause = std::chrono::milliseconds(std::min(2000, 100 << std::min(attempt, 5)));
    for (auto waited = std::chrono::milliseconds(0); waited < pause;
         waited += std::chrono::milliseconds(50)) {
      if (interrupted_.load()) return;  // applied_ stays behind: the restart replays
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    (void)db_->Resume();  // clears a background error (a failed flush) once it can
    s = db_->Write(wo, &batch);
  }
  {
    std::lock_guard<std::mutex> l(failure_mu_);
    failure_.clear();
  }
  applied_.store(applied);
}

std::string RocksStateMachine::Failure() const {
  std::lock_guard<std::mutex> l(failure_mu_);
  return failure_;
}

raft::Index RocksStateMachine::AppliedIndex() { return applied_.load(); }

raft::Result<std::unique_ptr<raft::SnapshotSource>> RocksStateMachine::PrepareSnapshot() {
  std::shared_lock lock(mu_);
  // Interrupted (or stalled: not reached, Apply holds the thread), applied_ may be behind
  // what the runtime handed out; a snapshot would carry the wrong index.
  if (interrupted_.load())
    return raft::Status(raft::ErrorCode::kShutdown, "state machine is interrupted");
  if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
  const raft::Index applied = applied_.load();
  const std::string path = Path(kCheckpointsDir) + "/ckpt-" + std::to_string(applied) + "-" +
                           std::to_string(++checkpoint_seq_);
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
  if (!s.ok()) return FromRocks(s, "checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush = 0: always flush the memtable first. Without a WAL that is what
  // puts the latest batches in the checkpoint, and what makes them durable in the live
  // DB before the runtime compacts its log.
  s = checkpoint->CreateCheckpoint(path, /*log_size_for_flush=*/0);
  if (!s.ok()) {
    (void)fs::RemoveAll(path);
    (void)fs::RemoveAll(path + ".tmp");
    return FromRocks(s, "checkpoint into " + path);
  }
  return std::unique_ptr<raft::SnapshotSource>(new CheckpointSource(path, applied));
}

raft::Status RocksStateMachine::Restore(raft::SnapshotReader* in, const raft::SnapshotMeta& meta) {
  const std::string tmp = Path(kRestoreTmpDir);
  // Leftovers of an earlier failed restore would block the renames.
  for (const std::string& stale : {tmp, Path(kNewDbDir)})
    if (raft::Status s = fs::RemoveAll(stale); !s.ok()) return s;
  raft::Status s = ReceiveSnapshot(in, tmp, meta.index);
  if (s.ok()) s = VerifyDb(tmp, options_, block_cache_, meta.index);
  if (s.ok()) s = fs::RenameDurably(tmp, Path(kNewDbDir), dir_);
  if (!s.ok()) {
    (void)fs::RemoveAll(tmp);
    return s;
  }
  return SwapIn(meta.index);
}

// <dir>/db.new holds a complete, fsynced DB at `index`: make it the live DB.
raft::Status RocksStateMachine::SwapIn(raft::Index index) {
  const std::string live = Path(kLiveDbDir), fresh = Path(kNewDbDir), old = Path(kOldDbDir);
  {
    std::unique_lock lock(mu_);
    if (!db_) {
      (void)fs::RemoveAll(fresh);
      return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
    }
    (void)db_->Close();  // no flush: this state is being replaced
    db_.reset();
    // Each step is durable before the next; a crash anywhere leaves a layout that
    // fs::RecoverLayout turns back into one complete DB.
    raft::Status s = fs::RenameDurably(live, old, dir_);
    if (s.ok()) s = fs::RenameDurably(fresh, live, dir_);
    if (!s.ok()) {
      // Reopen whichever complete DB the directory now holds, then report the failure.
      if (fs::RecoverLayout(dir_).ok()) (void)OpenLiveDb();
      return s;
    }
    if (s = OpenLiveDb(); !s.ok()) return s;
    if (applied_.load() != index)
      return raft::Status(raft::ErrorCode::kCorruption, "restored DB holds applied index " +
                                                            std::to_string(applied_.load()) +
                                                            ", expected " + std::to_string(index));
  }
  (void)fs::RemoveAll(old);  // if this fails, the next Open removes it
  return raft::Status::Ok();
}

raft::Result<std::optional<std::string>> RocksStateMachine::Get(std::string_view key) const {
  std::shared_lock lock(mu_);
  if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), UserKey(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get");
  return std::optional<std::string>(std::move(value));
}

raft::Result<std::vector<std::pair<std::string, std::string>>> RocksStateMachine::List(
    std::string_view prefix, std::string_view start_after, std::size_t limit,
    std::size_t max_bytes) const {
  std::vector<std::pair<std::string, std::string>> out;
  std::shared_lock lock(mu_);
  if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
  if (limit == 0) return out;
  const std::string lower = UserKey(prefix);
  const std::string after = UserKey(start_after);
  const std::string upper = PrefixSuccessor(lower);  // never empty: lower starts with 'u'
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  std::size_t bytes = 0;
  for (it->Seek(std::max(lower, after)); it->Valid() && out.size() < limit && bytes < max_bytes;
       it->Next()) {
    rocksdb::Slice k = it->key();
    if (!k.starts_with(lower)) break;
    if (k.compare(after) <= 0) continue;  // only the key equal to start_after
    k.remove_prefix(1);
    bytes += k.size() + it->value().size();
    out.emplace_back(k.ToString(), it->value().ToString());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list");
  return out;
}

std::uint64_t RocksStateMachine::ApproximateSizeBytes() const {
  std::shared_lock lock(mu_);
  if (!db_) return 0;
  std::uint64_t sst = 0, mem = 0;
  (void)db_->GetIntProperty(rocksdb::DB::Properties::kTotalSstFilesSize, &sst);
  (void)db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &mem);
  return sst + mem;
}

raft::Status RocksStateMachine::Compact() {
  std::shared_lock lock(mu_);
  if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
  if (rocksdb::Status s = db_->Flush(rocksdb::FlushOptions()); !s.ok())
    return FromRocks(s, "flush before compaction");
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  if (rocksdb::Status s = db_->CompactRange(co, nullptr, nullptr); !s.ok())
    return FromRocks(s, "compaction");
  return raft::Status::Ok();
}

}  // namespace kv
