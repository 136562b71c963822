#include "rocks_state_machine.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <mutex>
#include <set>
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
const std::string kHistoryStartKey("\0hstart", 7);
const std::string kHistoryBytesKey("\0hbytes", 7);
const std::string kVotersKey("\0voters", 7);
const std::string kRangeKey("\0range", 6);
const std::string kSplitKey("\0split", 6);
const std::string kOriginKey("\0origin", 7);
// Format 1 -> 2 upgrade in progress: the last user key already rewritten.
const std::string kUpgradeKey("\0upgrade", 8);
constexpr std::uint8_t kFormat1 = 1;
constexpr std::size_t kUpgradeBatchKeys = 10000;

[[noreturn]] void Fatal(const std::string& what) {
  std::fprintf(stderr, "kvserver: fatal: state machine: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// A monotonic clock for the write load (WriteLoad), in milliseconds.
std::uint64_t NowMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
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

// The metadata keys. found is false for a DB without them (a new, empty DB).
struct Meta {
  bool found = false;
  std::uint8_t format = 0;
  raft::Index applied = 0;
  std::uint64_t history_start = 1;   // format 2 only
  std::uint64_t history_bytes = 0;   // format 2 only
  std::vector<raft::NodeId> voters;  // a split's new range: its group's first voters
  std::optional<RangeDescriptor> range;
  std::optional<SplitRecord> split;
  std::uint64_t origin = 0;
};

// The optional metadata key `key` decoded by `decode` into *out (left empty if absent).
template <typename T, typename Decode>
raft::Status ReadOptional(rocksdb::DB* db, const rocksdb::ReadOptions& ro, const std::string& key,
                          Decode decode, std::optional<T>* out) {
  std::string v;
  rocksdb::Status s = db->Get(ro, key, &v);
  if (s.IsNotFound()) return raft::Status::Ok();
  if (!s.ok()) return FromRocks(s, "read " + key.substr(1));
  auto d = decode(v);
  if (!d.ok())
    return raft::Status(raft::ErrorCode::kCorruption,
                        "malformed " + key.substr(1) + ": " + d.status().message());
  *out = std::move(d).value();
  return raft::Status::Ok();
}

raft::Status ReadMeta(rocksdb::DB* db, const rocksdb::ReadOptions& ro, Meta* meta) {
  *meta = Meta{};
  std::string format, index;
  rocksdb::Status s = db->Get(ro, kFormatKey, &format);
  if (s.IsNotFound()) return raft::Status::Ok();
  if (!s.ok()) return FromRocks(s, "read format");
  if (format.size() != 1 || (static_cast<std::uint8_t>(format[0]) != kStateFormatVersion &&
                             static_cast<std::uint8_t>(format[0]) != kFormat1))
    return raft::Status(raft::ErrorCode::kCorruption,
                        "state machine DB has an unsupported format version");
  meta->format = static_cast<std::uint8_t>(format[0]);
  s = db->Get(ro, kAppliedKey, &index);
  if (!s.ok()) return FromRocks(s, "read applied index");
  if (!DecodeU64(index, &meta->applied))
    return raft::Status(raft::ErrorCode::kCorruption, "malformed applied index");
  if (meta->format == kStateFormatVersion) {
    std::string start;
    s = db->Get(ro, kHistoryStartKey, &start);
    if (!s.ok()) return FromRocks(s, "read history start");
    if (!DecodeU64(start, &meta->history_start))
      return raft::Status(raft::ErrorCode::kCorruption, "malformed history start");
    std::string bytes;
    s = db->Get(ro, kHistoryBytesKey, &bytes);
    if (!s.ok()) return FromRocks(s, "read history bytes");
    if (!DecodeU64(bytes, &meta->history_bytes))
      return raft::Status(raft::ErrorCode::kCorruption, "malformed history bytes");
    std::optional<raft::ConfState> voters;
    raft::Status st = ReadOptional(db, ro, kVotersKey, DecodeConf, &voters);
    if (voters) meta->voters.assign(voters->voters.begin(), voters->voters.end());
    if (st.ok()) st = ReadOptional(db, ro, kRangeKey, DecodeDescriptor, &meta->range);
    if (st.ok()) st = ReadOptional(db, ro, kSplitKey, DecodeSplitRecord, &meta->split);
    if (!st.ok()) return st;
    std::string origin;
    s = db->Get(ro, kOriginKey, &origin);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read origin");
    if (s.ok() && !DecodeU64(origin, &meta->origin))
      return raft::Status(raft::ErrorCode::kCorruption, "malformed origin");
  }
  meta->found = true;
  return raft::Status::Ok();
}

// Drops RocksDB's info log: a verifying open must not add a LOG file to the directory
// it checks (a checkpoint's files are the snapshot).
class NoInfoLog final : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

// Opens the complete DB in `path` (`what` names it in errors) read-only and checks its
// applied index.
raft::Status VerifyDb(const std::string& path, const RocksOptions& options,
                      std::shared_ptr<rocksdb::Cache> cache, raft::Index expected,
                      std::string_view what) {
  rocksdb::Options opt = MakeOptions(options, std::move(cache));
  opt.create_if_missing = false;
  // Only the metadata keys are read: open the table files lazily (a few of them), not
  // every file's index and statistics, which costs seconds on a large state.
  opt.max_open_files = 64;
  opt.skip_stats_update_on_db_open = true;
  opt.skip_checking_sst_file_sizes_on_db_open = true;
  opt.info_log = std::make_shared<NoInfoLog>();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(opt, path, &raw);
  if (!s.ok()) return FromRocks(s, "open " + std::string(what));
  std::unique_ptr<rocksdb::DB> db(raw);
  Meta meta;
  if (raft::Status st = ReadMeta(db.get(), rocksdb::ReadOptions(), &meta); !st.ok()) return st;
  if (!meta.found || meta.applied != expected)
    return raft::Status(raft::ErrorCode::kCorruption, std::string(what) + " holds applied index " +
                                                          std::to_string(meta.applied) +
                                                          ", expected " + std::to_string(expected));
  db->Close();
  db.reset();
  return fs::FsyncPath(path);
}

// Internal key -> the record the batch being built leaves (nullopt: deleted).
using Pending = std::unordered_map<std::string, std::optional<std::string>>;

// The record of internal key `ikey` as the batch being built sees it.
std::optional<std::string> Current(rocksdb::DB* db, const Pending& pending,
                                   const std::string& ikey) {
  if (auto it = pending.find(ikey); it != pending.end()) return it->second;
  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), ikey, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) Fatal("read during apply: " + s.ToString());
  return value;
}

// One entry's effects on the batch: the key, its history event, its expiry key.
struct Effects {
  rocksdb::WriteBatch* batch;
  Pending* pending;
  std::uint64_t index;
  std::uint64_t* history_bytes;  // grows by each event's key and value

  void Event(EventType type, const Command& c, std::string_view value) {
    std::string k = HistoryKey(index), v = EncodeEvent(type, c.key, value);
    *history_bytes += k.size() + v.size();
    batch->Put(k, v);
  }
  void Write(const std::string& ikey, const Command& c) {
    std::string rec = EncodeRecord(index, c.expire_at_ms, c.value);
    batch->Put(ikey, rec);
    (*pending)[ikey] = std::move(rec);
    Event(EventType::kPut, c, c.value);
    if (c.expire_at_ms != 0) batch->Put(ExpiryKey(c.expire_at_ms, c.key), "");
  }
  void Remove(const std::string& ikey, const Command& c, EventType why) {
    batch->Delete(ikey);
    (*pending)[ikey] = std::nullopt;
    Event(why, c, "");
  }
};

// Adds to `batch` the deletion of every expiry key whose user key `drop` names (a split:
// the expiries of the keys a range no longer holds). Reads the whole expiry space.
raft::Status DeleteExpiries(rocksdb::DB* db, rocksdb::WriteBatch* batch,
                            const std::function<bool(const std::string&)>& drop) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  const std::string lower = ExpiryKey(0, "");
  for (it->Seek(lower); it->Valid() && it->key().starts_with(lower.substr(0, 1)); it->Next()) {
    std::uint64_t at = 0;
    std::string key;
    if (!ParseExpiryKey(std::string_view(it->key().data(), it->key().size()), &at, &key))
      return raft::Status(raft::ErrorCode::kCorruption, "malformed expiry key");
    if (drop(key)) batch->Delete(it->key());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "expiry scan");
  return raft::Status::Ok();
}

CommandResult ApplyCommand(rocksdb::DB* db, const Command& c, Effects fx) {
  std::string ikey = UserKey(c.key);
  CommandResult r;
  if (c.op == Op::kSet) {  // no read: the result carries no previous value
    fx.Write(ikey, c);
    return r;
  }
  const std::optional<std::string> raw = Current(db, *fx.pending, ikey);
  Record rec;
  if (raw && !DecodeRecord(*raw, &rec)) Fatal("malformed record of a key: " + c.key);
  if (raw) {
    r.prev = std::string(rec.value);
    r.prev_index = rec.index;
  }
  bool write = false;
  switch (c.op) {
    case Op::kPut:
      write = true;
      break;
    case Op::kSet:
    case Op::kSplit:
      break;  // handled above; a split by Apply
    case Op::kDelete:
      if (raw) fx.Remove(ikey, c, EventType::kDelete);
      break;
    case Op::kCas:
      if (c.expected_index) {
        r.ok = *c.expected_index == 0 ? !raw : raw && rec.index == *c.expected_index;
      } else {
        r.ok = r.prev == c.expected;
      }
      write = r.ok;
      break;
    case Op::kExpire:
      // Always consumes its expiry key; removes the key only if it still carries this
      // expiry (a PUT since then replaced or refreshed it).
      fx.batch->Delete(ExpiryKey(c.expire_at_ms, c.key));
      r.ok = raw && rec.expire_at_ms == c.expire_at_ms;
      if (r.ok) fx.Remove(ikey, c, EventType::kExpire);
      break;
  }
  if (write) fx.Write(ikey, c);
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
      block_cache_(rocksdb::NewLRUCache(options.block_cache_bytes)),
      anchor_(std::make_shared<Anchor>()) {
  anchor_->sm = this;
}

RocksStateMachine::~RocksStateMachine() {
  interrupted_.store(true);  // a deferred source waiting for a flush gives up
  {
    std::lock_guard<std::mutex> l(anchor_->mu);
    anchor_->sm = nullptr;
  }
  Close();
}

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
  Meta meta;
  if (raft::Status st = ReadMeta(db.get(), rocksdb::ReadOptions(), &meta); !st.ok()) return st;
  if (!meta.found) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid() || !it->status().ok())
      return raft::Status(raft::ErrorCode::kCorruption,
                          path + " holds data but no state machine metadata");
    it.reset();
    rocksdb::WriteBatch batch;
    batch.Put(kFormatKey, std::string(1, static_cast<char>(kStateFormatVersion)));
    batch.Put(kAppliedKey, EncodeU64(0));
    batch.Put(kHistoryStartKey, EncodeU64(1));
    batch.Put(kHistoryBytesKey, EncodeU64(0));
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;
    if (s = db->Write(wo, &batch); !s.ok()) return FromRocks(s, "initialize " + path);
    if (s = db->Flush(rocksdb::FlushOptions()); !s.ok()) return FromRocks(s, "flush " + path);
    meta.history_start = 1;
  } else if (meta.format == kFormat1) {
    if (raft::Status st = UpgradeFromFormat1(db.get(), meta.applied); !st.ok()) return st;
    meta.history_start = meta.applied + 1;
    meta.history_bytes = 0;
  }
  db_ = std::move(db);
  applied_.store(meta.applied);
  history_start_ = meta.history_start;
  history_bytes_ = meta.history_bytes;
  std::lock_guard<std::mutex> l(range_mu_);
  split_voters_ = meta.voters;
  range_ = meta.range;
  origin_ = meta.origin;
  last_split_ = meta.split;
  return raft::Status::Ok();
}

// docs/state-format.md, "Upgrading from format 1": every user value becomes a record
// (index 0, no TTL), in batches that each record the last key done (kUpgradeKey), so a
// crash resumes where the durable batches end instead of rewriting a record twice.
raft::Status RocksStateMachine::UpgradeFromFormat1(rocksdb::DB* db, raft::Index applied) {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  std::string done;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kUpgradeKey, &done);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read upgrade progress");
  const std::string lower(1, kUserPrefix), upper(1, static_cast<char>(kUserPrefix + 1));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));  // an implicit snapshot
  rocksdb::WriteBatch batch;
  std::size_t n = 0, total = 0;
  for (it->Seek(done.empty() ? lower : done); it->Valid(); it->Next()) {
    if (!done.empty() && it->key() == rocksdb::Slice(done)) continue;
    batch.Put(it->key(),
              EncodeRecord(0, 0, std::string_view(it->value().data(), it->value().size())));
    ++total;
    if (++n == kUpgradeBatchKeys) {
      batch.Put(kUpgradeKey, it->key());
      if (s = db->Write(wo, &batch); !s.ok()) return FromRocks(s, "upgrade to format 2");
      batch.Clear();
      n = 0;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "upgrade to format 2");
  it.reset();
  batch.Delete(kUpgradeKey);
  batch.Put(kHistoryStartKey, EncodeU64(applied + 1));
  batch.Put(kHistoryBytesKey, EncodeU64(0));
  batch.Put(kFormatKey, std::string(1, static_cast<char>(kStateFormatVersion)));
  if (s = db->Write(wo, &batch); !s.ok()) return FromRocks(s, "upgrade to format 2");
  if (s = db->Flush(rocksdb::FlushOptions()); !s.ok()) return FromRocks(s, "flush the upgrade");
  std::fprintf(stderr, "kvserver: state machine: upgraded %s from format 1 to 2 (%zu keys)\n",
               Path(kLiveDbDir).c_str(), total);
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
  raft::Index before = applied;
  std::uint64_t history_bytes = history_bytes_;
  std::optional<RangeDescriptor> range = Range();
  const std::size_t first_result = results->size();
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
    CommandResult r;
    r.index = e.index;
    if (!DecodeCommand(e.data, &c)) {
      r.ok = false;
      r.error = "malformed command at index " + std::to_string(e.index);
    } else if (c.op == Op::kSplit) {
      // The entries before it first: the new range is checkpointed from them.
      if (!CommitBatch(&batch, e.index - 1, before, &history_bytes)) {
        results->resize(first_result + entries.size());
        return;
      }
      batch.Clear();
      pending.clear();
      r.error = ApplySplit(e.index, c);
      r.ok = r.error.empty();
      if (interrupted_.load()) {
        results->resize(first_result + entries.size());
        return;
      }
      before = applied_.load();
      applied = std::max(applied, before);
      history_bytes = history_bytes_;  // the split's batch may have pruned the history
      range = Range();
    } else if (range && !range->Contains(c.key)) {
      // Routed before a split moved the key to another range: the proposer routes again.
      r.ok = false;
      r.error = std::string(kWrongRangeError) + ": key outside range " + std::to_string(range->id);
    } else {
      r = ApplyCommand(db_.get(), c, Effects{&batch, &pending, e.index, &history_bytes});
      r.index = e.index;
      if (options_.track_write_load && c.op != Op::kExpire) {
        std::lock_guard<std::mutex> l(load_mu_);
        load_.Record(NowMs(), c.key);
      }
      if ((c.op == Op::kDelete && r.prev) || (c.op == Op::kExpire && r.ok))
        deletes_applied_.fetch_add(1);
    }
    results->push_back(EncodeResult(r));
  }
  (void)CommitBatch(&batch, applied, before, &history_bytes);
}

bool RocksStateMachine::CommitBatch(rocksdb::WriteBatch* batch, raft::Index applied,
                                    raft::Index before, std::uint64_t* history_bytes) {
  if (applied <= before) return true;
  batch->Put(kAppliedKey, EncodeU64(applied));
  const std::uint64_t history_start = PruneHistory(batch, applied, before, history_bytes);
  batch->Put(kHistoryBytesKey, EncodeU64(*history_bytes));
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // the Raft log is the WAL (see the header)
  rocksdb::Status s = db_->Write(wo, batch);
  for (int attempt = 0; !s.ok(); ++attempt) {
    if (s.IsCorruption())
      Fatal("write of entries up to " + std::to_string(applied) + ": " + s.ToString());
    if (!Stall(attempt, "state machine cannot apply entries up to " + std::to_string(applied) +
                            " (" + s.ToString() + "); retrying until space is freed"))
      return false;       // applied_ stays behind: the restart replays
    (void)db_->Resume();  // clears a background error (a failed flush) once it can
    s = db_->Write(wo, batch);
  }
  {
    std::lock_guard<std::mutex> l(failure_mu_);
    failure_.clear();
  }
  applied_.store(applied);
  history_start_ = history_start;
  history_bytes_ = *history_bytes;
  if (applied_listener_) applied_listener_(applied);
  return true;
}

bool RocksStateMachine::Stall(int attempt, std::string failure) {
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
    if (interrupted_.load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// docs/state-format.md, "Splits". Every check depends only on the state and the command,
// so every replica decides alike.
std::string RocksStateMachine::ApplySplit(raft::Index index, const Command& c) {
  auto claimed = DecodeDescriptor(c.value);
  if (!claimed.ok()) return "split refused: " + claimed.status().message();
  const RangeDescriptor& span = *claimed;
  if (!split_dir_) return "split refused: not a range of ranges mode";
  if (auto held = Range(); held && (held->id != span.id || held->generation != span.generation ||
                                    held->start != span.start || held->end != span.end))
    return "split refused: the range is now generation " + std::to_string(held->generation);
  if (c.key <= span.start || (!span.end.empty() && c.key >= span.end))
    return "split refused: the key is not inside the range";
  const std::set<raft::NodeId> voters(c.voters.begin(), c.voters.end());
  if (voters.empty() || voters.count(raft::kNoNode)) return "split refused: bad voters";
  if (c.new_range < kFirstDataRange || c.new_range == span.id)
    return "split refused: bad new range id " + std::to_string(c.new_range);
  SplitRecord rec;
  rec.index = index;
  rec.voters.assign(voters.begin(), voters.end());
  rec.left = span;
  rec.left.end = c.key;
  rec.left.generation = span.generation + 1;
  rec.left.replicas = rec.voters;
  rec.right.id = c.new_range;
  rec.right.generation = 1;
  rec.right.start = c.key;
  rec.right.end = span.end;
  rec.right.replicas = rec.voters;

  // Step 2: the new range's DB, unless this split made it before a crash lost step 3.
  const std::string dir = split_dir_(c.new_range);
  for (int attempt = 0; !fs::Exists(dir); ++attempt) {
    raft::Status st = MakeSplitDb(dir, rec);
    if (st.ok()) break;
    if (st.code() == raft::ErrorCode::kCorruption)
      Fatal("split at " + std::to_string(index) + ": " + st.ToString());
    if (!Stall(attempt, "state machine cannot split at " + std::to_string(index) + " (" +
                            st.ToString() + "); retrying until space is freed"))
      return "interrupted";
    (void)db_->Resume();
  }
  // Step 3: the span moves first (a reader checks Owns after reading: see the header),
  // then the keys that left it go.
  {
    std::lock_guard<std::mutex> l(range_mu_);
    range_ = rec.left;
    last_split_ = rec;
  }
  {
    std::lock_guard<std::mutex> l(load_mu_);  // the load was the whole span's
    load_.Reset();
  }
  rocksdb::WriteBatch batch;
  batch.DeleteRange(UserKey(c.key), std::string(1, static_cast<char>(kUserPrefix + 1)));
  if (raft::Status st =
          DeleteExpiries(db_.get(), &batch, [&](const std::string& key) { return key >= c.key; });
      !st.ok())
    Fatal("expiry scan during a split: " + st.ToString());
  batch.Put(kRangeKey, EncodeDescriptor(rec.left));
  batch.Put(kSplitKey, EncodeSplitRecord(rec));
  std::uint64_t history_bytes = history_bytes_;
  if (!CommitBatch(&batch, index, applied_.load(), &history_bytes)) return "interrupted";
  return "";
}

raft::Status RocksStateMachine::MakeSplitDb(const std::string& dir, const SplitRecord& rec) {
  const std::string tmp = dir + ".split";
  const std::string parent = dir.substr(0, dir.find_last_of('/'));
  if (raft::Status s = fs::RemoveAll(tmp); !s.ok()) return s;
  if (raft::Status s = fs::MakeDirs(tmp); !s.ok()) return s;
  // The live DB flushed, so that the checkpoint (hard links to its table files) holds
  // every entry before the split.
  if (rocksdb::Status s = db_->Flush(rocksdb::FlushOptions()); !s.ok())
    return FromRocks(s, "flush before a split");
  rocksdb::Checkpoint* raw = nullptr;
  if (rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw); !s.ok())
    return FromRocks(s, "checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  const std::string path = tmp + "/" + std::string(kLiveDbDir);
  if (rocksdb::Status s =
          checkpoint->CreateCheckpoint(path, std::numeric_limits<std::uint64_t>::max());
      !s.ok())
    return FromRocks(s, "checkpoint into " + path);
  rocksdb::DB* opened = nullptr;
  rocksdb::Options opt = MakeOptions(options_, block_cache_);
  opt.create_if_missing = false;
  if (rocksdb::Status s = rocksdb::DB::Open(opt, path, &opened); !s.ok())
    return FromRocks(s, "open " + path);
  std::unique_ptr<rocksdb::DB> db(opened);
  rocksdb::WriteBatch batch;
  const std::string& key = rec.right.start;
  batch.DeleteRange(UserKey(""), UserKey(key));
  batch.DeleteRange(HistoryKey(0), std::string(1, 'i'));  // the whole history ('h' ...)
  if (raft::Status st =
          DeleteExpiries(db.get(), &batch, [&](const std::string& k) { return k < key; });
      !st.ok())
    return st;
  raft::ConfState conf;
  conf.voters.insert(rec.voters.begin(), rec.voters.end());
  batch.Put(kHistoryStartKey, EncodeU64(rec.index + 1));
  batch.Put(kHistoryBytesKey, EncodeU64(0));
  batch.Put(kVotersKey, EncodeConf(conf));
  batch.Put(kRangeKey, EncodeDescriptor(rec.right));
  batch.Delete(kSplitKey);
  batch.Put(kOriginKey, EncodeU64(rec.index));
  batch.Put(kAppliedKey, EncodeU64(rec.index));
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  if (rocksdb::Status s = db->Write(wo, &batch); !s.ok()) return FromRocks(s, "write " + path);
  if (rocksdb::Status s = db->Flush(rocksdb::FlushOptions()); !s.ok())
    return FromRocks(s, "flush " + path);
  if (rocksdb::Status s = db->Close(); !s.ok()) return FromRocks(s, "close " + path);
  db.reset();
  if (raft::Status s = fs::FsyncPath(path); !s.ok()) return s;
  if (raft::Status s = fs::FsyncPath(tmp); !s.ok()) return s;
  return fs::RenameDurably(tmp, dir, parent);
}

std::optional<RangeDescriptor> RocksStateMachine::Range() const {
  std::lock_guard<std::mutex> l(range_mu_);
  return range_;
}

std::optional<SplitRecord> RocksStateMachine::LastSplit() const {
  std::lock_guard<std::mutex> l(range_mu_);
  return last_split_;
}

raft::Index RocksStateMachine::OriginIndex() const {
  std::lock_guard<std::mutex> l(range_mu_);
  return origin_;
}

std::vector<raft::NodeId> RocksStateMachine::SplitVoters() const {
  std::lock_guard<std::mutex> l(range_mu_);
  return split_voters_;
}

bool RocksStateMachine::Owns(std::string_view key) const {
  std::lock_guard<std::mutex> l(range_mu_);
  return !range_ || range_->Contains(key);
}

bool RocksStateMachine::HoldsSpan(const RangeDescriptor& d) const {
  std::lock_guard<std::mutex> l(range_mu_);
  if (!range_) return d.generation == 1;
  return range_->id == d.id && range_->generation == d.generation && range_->start == d.start &&
         range_->end == d.end;
}

raft::Result<std::optional<std::string>> RocksStateMachine::MiddleKey() const {
  std::shared_lock lock(mu_);
  if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
  const std::string lower(1, kUserPrefix), upper(1, static_cast<char>(kUserPrefix + 1));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.snapshot = db_->GetSnapshot();  // both passes see the same keys
  std::uint64_t total = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(lower); it->Valid(); it->Next()) total += it->key().size() + it->value().size();
  raft::Status st = it->status().ok() ? raft::Status::Ok() : FromRocks(it->status(), "scan");
  std::optional<std::string> middle;
  std::uint64_t seen = 0;
  bool first = true;
  for (it->Seek(lower); st.ok() && it->Valid(); it->Next(), first = false) {
    seen += it->key().size() + it->value().size();
    if (seen * 2 < total) continue;
    if (first) continue;  // the left half must keep a key: the middle is after the first
    middle = std::string(it->key().data() + 1, it->key().size() - 1);
    break;
  }
  if (st.ok() && !it->status().ok()) st = FromRocks(it->status(), "scan");
  it.reset();
  db_->ReleaseSnapshot(ro.snapshot);
  if (!st.ok()) return st;
  return middle;
}

std::optional<std::string> RocksStateMachine::LoadSplitKey(std::uint64_t per_second) const {
  std::lock_guard<std::mutex> l(load_mu_);
  const std::uint64_t now = NowMs();
  if (!options_.track_write_load || !load_.Sustained(now, per_second)) return std::nullopt;
  return load_.SplitKey(now);
}

// History retention (docs/state-format.md, "Change history"): by index, what falls out
// of the window, in steps of 1/16 of it; by bytes, once over the budget, the oldest
// events down to 15/16 of it. One range deletion either way. The events dropped are read
// to keep the byte count exact; they are all below this batch (`before`), in the DB.
std::uint64_t RocksStateMachine::PruneHistory(rocksdb::WriteBatch* batch, raft::Index applied,
                                              raft::Index before, std::uint64_t* bytes) {
  const std::uint64_t start = history_start_;
  const std::uint64_t keep = std::max<std::uint64_t>(1, options_.history_entries);
  const std::uint64_t budget = std::max<std::uint64_t>(16, options_.history_bytes);
  std::uint64_t new_start = start;
  if (applied >= keep && applied - keep + 1 >= start + std::max<std::uint64_t>(1, keep / 16))
    new_start = applied - keep + 1;
  if (new_start == start && *bytes <= budget) return start;
  const std::string lower = HistoryKey(start), upper = HistoryKey(before + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  const std::uint64_t by_index = new_start;
  bool exhausted = true;
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const auto index = HistoryIndex(std::string_view(it->key().data(), it->key().size()));
    if (!index) Fatal("malformed history key");
    if (*index >= by_index && *bytes <= budget - budget / 16) {
      exhausted = false;
      break;
    }
    *bytes -= std::min(*bytes, it->key().size() + it->value().size());
    new_start = std::max(new_start, *index + 1);
  }
  if (!it->status().ok()) Fatal("history scan during apply: " + it->status().ToString());
  // Every older event is gone and the budget is still passed: nothing before this batch
  // is left.
  if (exhausted && *bytes > budget - budget / 16) new_start = std::max(new_start, before + 1);
  if (new_start == start) return start;
  batch->DeleteRange(lower, HistoryKey(new_start));
  batch->Put(kHistoryStartKey, EncodeU64(new_start));
  return new_start;
}

std::string RocksStateMachine::Failure() const {
  std::lock_guard<std::mutex> l(failure_mu_);
  return failure_;
}

raft::Index RocksStateMachine::AppliedIndex() { return applied_.load(); }

namespace {

// The source of a deferred checkpoint (see PrepareSnapshot): makes the checkpoint on the
// first WriteTo or ReleaseFiles, then is that checkpoint's source. Failure is kept, so
// WriteTo reports why ReleaseFiles returned nothing.
class DeferredCheckpoint final : public raft::SnapshotSource {
 public:
  using Make = std::function<raft::Result<std::unique_ptr<raft::SnapshotSource>>()>;
  explicit DeferredCheckpoint(Make make) : make_(std::move(make)) {}

  raft::Status WriteTo(raft::SnapshotWriter* out) override {
    if (raft::Status s = Materialize(); !s.ok()) return s;
    return made_->WriteTo(out);
  }
  std::optional<raft::SnapshotFiles> ReleaseFiles() override {
    if (!Materialize().ok()) return std::nullopt;
    return made_->ReleaseFiles();
  }

 private:
  raft::Status Materialize() {
    if (make_) {
      auto r = make_();
      make_ = nullptr;
      if (r.ok())
        made_ = std::move(r).value();
      else
        failure_ = r.status();
    }
    return failure_;
  }

  Make make_;
  std::unique_ptr<raft::SnapshotSource> made_;
  raft::Status failure_;
};

}  // namespace

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
  if (!checkpoint_inline_.exchange(false)) {
    // Deferred: only switch the memtable here. Everything up to `applied` is then in
    // memtables being flushed, and what Apply writes next goes to a new one.
    rocksdb::FlushOptions flush;
    flush.wait = false;
    flush.allow_write_stall = true;
    if (db_->Flush(flush).ok()) {
      return std::unique_ptr<raft::SnapshotSource>(
          new DeferredCheckpoint([anchor = anchor_, path, applied]() {
            std::lock_guard<std::mutex> l(anchor->mu);
            if (!anchor->sm)
              return raft::Result<std::unique_ptr<raft::SnapshotSource>>(
                  raft::Status(raft::ErrorCode::kShutdown, "state machine is gone"));
            return anchor->sm->CheckpointFlushed(path, applied);
          }));
    }
  }
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

raft::Result<std::unique_ptr<raft::SnapshotSource>> RocksStateMachine::CheckpointFlushed(
    const std::string& path, raft::Index applied) {
  // Wait until no memtable is waiting for its flush: the one PrepareSnapshot switched out
  // is then in SST files (flushes install in memtable order). A background error (a full
  // disk) stops flushes until DB::Resume, which Apply's stall calls: give up then. The
  // lock is taken per look, so a Restore is not held up (if it swaps the DB meanwhile,
  // the check of the applied index below fails this snapshot).
  std::optional<std::uint64_t> errors_before;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    {
      std::shared_lock lock(mu_);
      if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
      std::uint64_t unflushed = 0, errors = 0;
      if (!db_->GetIntProperty("rocksdb.num-immutable-mem-table", &unflushed))
        return raft::Status(raft::ErrorCode::kIOError, "rocksdb: no num-immutable-mem-table");
      if (unflushed == 0) break;
      (void)db_->GetIntProperty("rocksdb.background-errors", &errors);
      if (!errors_before) errors_before = errors;
      if (errors != *errors_before || std::chrono::steady_clock::now() > deadline) {
        checkpoint_inline_.store(true);
        return raft::Status(raft::ErrorCode::kUnavailable,
                            "the flush a snapshot at " + std::to_string(applied) + " waits for " +
                                (errors != *errors_before ? "failed" : "took over 60 s"));
      }
    }
    if (interrupted_.load())
      return raft::Status(raft::ErrorCode::kShutdown, "state machine is interrupted");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  rocksdb::Status s;
  {
    std::shared_lock lock(mu_);
    if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
    rocksdb::Checkpoint* raw = nullptr;
    s = rocksdb::Checkpoint::Create(db_.get(), &raw);
    if (!s.ok()) return FromRocks(s, "checkpoint");
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // No flush (the largest log_size_for_flush): one would take in what Apply wrote since.
    s = checkpoint->CreateCheckpoint(path, std::numeric_limits<std::uint64_t>::max());
  }
  raft::Status st = s.ok() ? VerifyDb(path, options_, block_cache_, applied, "checkpoint")
                           : FromRocks(s, "checkpoint into " + path);
  if (!st.ok()) {
    (void)fs::RemoveAll(path);
    (void)fs::RemoveAll(path + ".tmp");
    if (st.code() == raft::ErrorCode::kCorruption) {
      // A later memtable's flush overtook the wait (or a restore replaced the DB).
      checkpoint_inline_.store(true);
      return raft::Status(
          raft::ErrorCode::kUnavailable,
          "deferred snapshot overtaken (" + st.message() + "); the next one checkpoints inline");
    }
    return st;
  }
  return std::unique_ptr<raft::SnapshotSource>(new CheckpointSource(path, applied));
}

raft::Status RocksStateMachine::Restore(raft::SnapshotReader* in, const raft::SnapshotMeta& meta) {
  return Install(meta,
                 [&](const std::string& tmp) { return ReceiveSnapshot(in, tmp, meta.index); });
}

std::optional<raft::Status> RocksStateMachine::RestoreFiles(const raft::SnapshotFiles& files,
                                                            const raft::SnapshotMeta& meta) {
  return Install(
      meta, [&](const std::string& tmp) { return ReceiveSnapshotFiles(files, tmp, meta.index); });
}

raft::Status RocksStateMachine::Install(
    const raft::SnapshotMeta& meta,
    const std::function<raft::Status(const std::string&)>& receive) {
  const std::string tmp = Path(kRestoreTmpDir);
  // Leftovers of an earlier failed restore would block the renames.
  for (const std::string& stale : {tmp, Path(kNewDbDir)})
    if (raft::Status s = fs::RemoveAll(stale); !s.ok()) return s;
  raft::Status s = receive(tmp);
  if (s.ok()) s = VerifyDb(tmp, options_, block_cache_, meta.index, "received snapshot");
  if (s.ok()) s = fs::RenameDurably(tmp, Path(kNewDbDir), dir_);
  if (!s.ok()) {
    (void)fs::RemoveAll(tmp);
    return s;
  }
  s = SwapIn(meta.index);
  if (s.ok() && applied_listener_) applied_listener_(meta.index);
  return s;
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
    std::lock_guard<std::mutex> l(load_mu_);  // another span, maybe: measured again
    load_.Reset();
    if (applied_.load() != index)
      return raft::Status(raft::ErrorCode::kCorruption, "restored DB holds applied index " +
                                                            std::to_string(applied_.load()) +
                                                            ", expected " + std::to_string(index));
  }
  (void)fs::RemoveAll(old);  // if this fails, the next Open removes it
  return raft::Status::Ok();
}

raft::Result<std::optional<std::string>> RocksStateMachine::Get(std::string_view key) const {
  auto r = GetRecord(key);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return std::optional<std::string>();
  return std::optional<std::string>(std::move((*r)->value));
}

raft::Result<std::optional<KeyRecord>> RocksStateMachine::GetRecord(std::string_view key) const {
  std::shared_lock lock(mu_);
  if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
  std::string raw;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), UserKey(key), &raw);
  if (s.IsNotFound()) return std::optional<KeyRecord>();
  if (!s.ok()) return FromRocks(s, "get");
  Record rec;
  if (!DecodeRecord(raw, &rec))
    return raft::Status(raft::ErrorCode::kCorruption, "malformed record of a key");
  return std::optional<KeyRecord>(KeyRecord{std::string(rec.value), rec.index, rec.expire_at_ms});
}

raft::Result<HistoryPage> RocksStateMachine::History(std::uint64_t from, std::string_view prefix,
                                                     std::size_t max_events, std::size_t max_scan,
                                                     std::size_t max_bytes) const {
  std::shared_lock lock(mu_);
  if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
  // One view for the metadata and the events: a batch is atomic, so every event up to
  // the applied index read here is in it.
  std::shared_ptr<const rocksdb::Snapshot> snap(
      db_->GetSnapshot(), [db = db_.get()](const rocksdb::Snapshot* p) { db->ReleaseSnapshot(p); });
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.get();
  Meta meta;
  if (raft::Status st = ReadMeta(db_.get(), ro, &meta); !st.ok()) return st;
  HistoryPage page;
  page.applied = meta.applied;
  page.start = meta.history_start;
  page.next = from;
  if (from < meta.history_start) {
    page.compacted = true;
    return page;
  }
  if (from > meta.applied) return page;
  const std::string upper = HistoryKey(meta.applied + 1);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  std::size_t scanned = 0, bytes = 0;
  for (it->Seek(HistoryKey(from)); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    const auto index = HistoryIndex(std::string_view(k.data(), k.size()));
    if (!index) return raft::Status(raft::ErrorCode::kCorruption, "malformed history key");
    if (scanned >= max_scan || page.events.size() >= max_events || bytes >= max_bytes) {
      page.next = *index;
      return page;
    }
    ++scanned;
    Event e;
    if (!DecodeEvent(std::string_view(it->value().data(), it->value().size()), &e))
      return raft::Status(raft::ErrorCode::kCorruption,
                          "malformed history event at index " + std::to_string(*index));
    e.index = *index;
    if (e.key.compare(0, prefix.size(), prefix) == 0) {
      bytes += e.key.size() + e.value.size();
      page.events.push_back(std::move(e));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "history");
  page.next = meta.applied + 1;  // every event up to the applied index was looked at
  return page;
}

raft::Result<std::vector<std::pair<std::string, std::uint64_t>>> RocksStateMachine::DueExpiries(
    std::uint64_t now_ms, std::size_t limit) const {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  std::shared_lock lock(mu_);
  if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
  const std::string lower = ExpiryKey(0, ""), upper = ExpiryKey(now_ms + 1, "");
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(lower); it->Valid() && out.size() < limit; it->Next()) {
    std::uint64_t at = 0;
    std::string key;
    if (!ParseExpiryKey(std::string_view(it->key().data(), it->key().size()), &at, &key))
      return raft::Status(raft::ErrorCode::kCorruption, "malformed expiry key");
    out.emplace_back(std::move(key), at);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "expiries");
  return out;
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
    Record rec;
    if (!DecodeRecord(std::string_view(it->value().data(), it->value().size()), &rec))
      return raft::Status(raft::ErrorCode::kCorruption, "malformed record of a key");
    bytes += k.size() + rec.value.size();
    out.emplace_back(k.ToString(), std::string(rec.value));
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

std::uint64_t RocksStateMachine::SpanSizeBytes() const {
  const std::optional<RangeDescriptor> span = Range();
  const std::string lo = UserKey(span ? span->start : "");
  const std::string hi = span && !span->end.empty()
                             ? UserKey(span->end)
                             : std::string(1, static_cast<char>(kUserPrefix + 1));
  std::shared_lock lock(mu_);
  if (!db_) return 0;
  // Table files: RocksDB's estimate of the span's blocks. Memtables: their whole size
  // (RocksDB's estimate of a key range in a memtable samples, and is often far off, 0
  // included), which also counts the history's recent events: a split may come early by
  // at most the write buffers, never late.
  rocksdb::SizeApproximationOptions o;
  o.include_memtables = false;
  o.include_files = true;
  const rocksdb::Range r(lo, hi);
  std::uint64_t files = 0, mem = 0;
  if (!db_->GetApproximateSizes(o, db_->DefaultColumnFamily(), &r, 1, &files).ok()) files = 0;
  (void)db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &mem);
  return files + mem;
}

raft::Status RocksStateMachine::CompactOutsideSpan() {
  const std::optional<RangeDescriptor> span = Range();
  if (!span) return raft::Status::Ok();
  std::shared_lock lock(mu_);
  if (!db_) return raft::Status(raft::ErrorCode::kShutdown, "state machine is closed");
  if (rocksdb::Status s = db_->Flush(rocksdb::FlushOptions()); !s.ok())
    return FromRocks(s, "flush before compaction");
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  const std::string below_lo = UserKey(""), below_hi = UserKey(span->start);
  const std::string above_lo = UserKey(span->end), above_hi(1, static_cast<char>(kUserPrefix + 1));
  if (!span->start.empty()) {
    rocksdb::Slice lo(below_lo), hi(below_hi);
    if (rocksdb::Status s = db_->CompactRange(co, &lo, &hi); !s.ok())
      return FromRocks(s, "compaction below the span");
  }
  if (!span->end.empty()) {
    rocksdb::Slice lo(above_lo), hi(above_hi);
    if (rocksdb::Status s = db_->CompactRange(co, &lo, &hi); !s.ok())
      return FromRocks(s, "compaction above the span");
  }
  return raft::Status::Ok();
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
