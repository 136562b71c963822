// kv::RocksStateMachine and the KV command codec: command semantics, the applied index
// across restarts and crashes, snapshots with bounded memory, the restore swap's crash
// recovery, and reads concurrent with Apply and Restore.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "kv_command.h"
#include "kv_record.h"
#include "rocks_state_machine.h"
#include "rocks_state_machine_fs.h"

namespace kv {
namespace {

namespace stdfs = std::filesystem;
using raft::Entry;
using raft::EntryType;

class TempDir {
 public:
  TempDir() {
    static int seq = 0;
    path_ = stdfs::temp_directory_path() /
            ("kv-sm-test-" + std::to_string(::getpid()) + "-" + std::to_string(++seq));
    stdfs::remove_all(path_);
    stdfs::create_directories(path_);
  }
  ~TempDir() { stdfs::remove_all(path_); }
  std::string path(const std::string& sub = "") const {
    return sub.empty() ? path_.string() : (path_ / sub).string();
  }

 private:
  stdfs::path path_;
};

std::unique_ptr<RocksStateMachine> OpenOrDie(const std::string& dir,
                                             const RocksOptions& options = {}) {
  auto sm = RocksStateMachine::Open(dir, options);
  INFO(sm.status().ToString());
  REQUIRE(sm.ok());
  return std::move(sm).value();
}

Entry CommandEntry(raft::Index index, const Command& c) {
  return Entry{1, index, EntryType::kNormal, EncodeCommand(c)};
}
Entry PutEntry(raft::Index index, std::string key, std::string value) {
  return CommandEntry(index, Command{Op::kPut, std::move(key), std::move(value), std::nullopt});
}

CommandResult ApplyOne(RocksStateMachine* sm, const Entry& e) {
  std::vector<std::string> results;
  sm->Apply({e}, &results);
  REQUIRE(results.size() == 1);
  CommandResult r;
  REQUIRE(DecodeResult(results[0], &r));
  return r;
}

std::optional<std::string> GetOrDie(const RocksStateMachine& sm, std::string_view key) {
  auto v = sm.Get(key);
  REQUIRE(v.ok());
  return *v;
}

std::string ValueFor(std::uint64_t i, std::size_t size) {
  std::string v(size, '\0');
  std::uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t p = 0; p < size; ++p) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift: incompressible bytes
    v[p] = static_cast<char>(x);
  }
  return v;
}

std::string Key(std::uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key%08llu", static_cast<unsigned long long>(i));
  return buf;
}

// Snapshot bytes held in memory, read back in odd-sized pieces.
class StringWriter final : public raft::SnapshotWriter {
 public:
  raft::Status Write(std::string_view b) override {
    data.append(b);
    return raft::Status::Ok();
  }
  std::string data;
};
class StringReader final : public raft::SnapshotReader {
 public:
  explicit StringReader(std::string d) : data_(std::move(d)) {}
  raft::Result<std::size_t> Read(char* buf, std::size_t n) override {
    n = std::min({n, data_.size() - pos_, std::size_t{7777}});
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  std::size_t pos_ = 0;
};

// A bounded in-memory pipe between a writer thread and a reader thread: at most
// kMaxChunks chunks (each at most one Write) are buffered.
class Pipe {
 public:
  static constexpr std::size_t kMaxChunks = 4;
  class Writer final : public raft::SnapshotWriter {
   public:
    explicit Writer(Pipe* p) : p_(p) {}
    raft::Status Write(std::string_view b) override {
      std::unique_lock l(p_->mu_);
      p_->cv_.wait(l, [&] { return p_->chunks_.size() < kMaxChunks || p_->aborted_; });
      if (p_->aborted_) return raft::Status(raft::ErrorCode::kShutdown, "reader gone");
      p_->chunks_.emplace_back(b);
      p_->cv_.notify_all();
      return raft::Status::Ok();
    }

   private:
    Pipe* p_;
  };
  class Reader final : public raft::SnapshotReader {
   public:
    explicit Reader(Pipe* p) : p_(p) {}
    raft::Result<std::size_t> Read(char* buf, std::size_t n) override {
      std::unique_lock l(p_->mu_);
      p_->cv_.wait(l, [&] { return !p_->chunks_.empty() || p_->closed_; });
      if (p_->chunks_.empty()) return std::size_t{0};
      std::string& front = p_->chunks_.front();
      n = std::min(n, front.size() - p_->offset_);
      std::memcpy(buf, front.data() + p_->offset_, n);
      p_->offset_ += n;
      if (p_->offset_ == front.size()) {
        p_->chunks_.pop_front();
        p_->offset_ = 0;
        p_->cv_.notify_all();
      }
      return n;
    }

   private:
    Pipe* p_;
  };
  void Close() {
    std::lock_guard l(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  // The reader stops: a blocked or later Write fails instead of waiting forever.
  void Abort() {
    std::lock_guard l(mu_);
    aborted_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  std::size_t offset_ = 0;
  bool closed_ = false;
  bool aborted_ = false;
};

std::string TakeSnapshot(RocksStateMachine* sm) {
  auto src = sm->PrepareSnapshot();
  REQUIRE(src.ok());
  StringWriter w;
  REQUIRE((*src)->WriteTo(&w).ok());
  return w.data;
}

raft::SnapshotMeta MetaAt(raft::Index index) { return raft::SnapshotMeta{index, 1, {}}; }

std::uint64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// ---------------------------------------------------------------------------------------
TEST_CASE("command codec round-trips every op", "[kv_command]") {
  std::string binary("a\0b\xff", 4);
  std::vector<Command> cmds = {
      {Op::kPut, "k", "v", std::nullopt},
      {Op::kSet, "k", "v", std::nullopt},
      {Op::kSet, binary, "", std::nullopt},
      {Op::kPut, "", "", std::nullopt},
      {Op::kPut, binary, std::string(100000, 'x'), std::nullopt},
      {Op::kDelete, "gone", "", std::nullopt},
      {Op::kCas, "k", "new", std::string("old")},
      {Op::kCas, "k", "new", std::string()},  // expected "" differs from "absent"
      {Op::kCas, binary, binary, std::nullopt},
  };
  for (const auto& c : cmds) {
    Command out;
    REQUIRE(DecodeCommand(EncodeCommand(c), &out));
    CHECK(out == c);
  }
  // Fields an op does not use are not encoded.
  Command del{Op::kDelete, "k", "ignored", std::string("ignored")}, out;
  REQUIRE(DecodeCommand(EncodeCommand(del), &out));
  CHECK(out == Command{Op::kDelete, "k", "", std::nullopt});

  for (const auto& r : {CommandResult{}, CommandResult{false, std::nullopt, ""},
                        CommandResult{true, std::string(binary), ""},
                        CommandResult{false, std::string(), "malformed"}}) {
    CommandResult back;
    REQUIRE(DecodeResult(EncodeResult(r), &back));
    CHECK(back == r);
  }
}

TEST_CASE("command codec refuses malformed input", "[kv_command]") {
  Command out;
  std::string cas = EncodeCommand({Op::kCas, "key", "value", std::string("prev")});
  for (std::size_t n = 0; n < cas.size(); ++n) CHECK_FALSE(DecodeCommand(cas.substr(0, n), &out));
  CHECK_FALSE(DecodeCommand(cas + "x", &out));  // trailing byte
  std::string bad = cas;
  bad[0] = 2;  // version
  CHECK_FALSE(DecodeCommand(bad, &out));
  for (char op : {0, 4, 0x7f}) {
    bad = cas;
    bad[1] = op;
    CHECK_FALSE(DecodeCommand(bad, &out));
  }
  bad = EncodeCommand({Op::kCas, "k", "v", std::nullopt});
  bad.back() = 2;  // expected flag outside {0, 1}
  CHECK_FALSE(DecodeCommand(bad, &out));
  CHECK_FALSE(DecodeCommand(std::string("\x01\x01\xff\xff\xff\xff", 6), &out));  // huge length

  CommandResult r;
  CHECK_FALSE(DecodeResult("", &r));
  CHECK_FALSE(DecodeResult(std::string("\x01\x08", 2), &r));          // unknown flag
  CHECK_FALSE(DecodeResult(std::string("\x01\x04\0\0\0\0", 6), &r));  // empty error
  CHECK_FALSE(DecodeResult(EncodeResult({}) + "x", &r));

  // Random bytes never crash the decoders, and whatever decodes is canonical.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 24, '\0');
    for (auto& ch : s) ch = static_cast<char>(rng() % 6);  // small bytes: plausible lengths
    if (s.size() > 1 && (i & 1)) s[0] = 1;
    if (DecodeCommand(s, &out)) CHECK(EncodeCommand(out) == s);
    if (DecodeResult(s, &r)) CHECK(EncodeResult(r) == s);
  }
}

TEST_CASE("apply: put, delete and cas semantics and results", "[state_machine]") {
  TempDir dir;
  auto sm = OpenOrDie(dir.path("kv"));
  CHECK(sm->AppliedIndex() == 0);

  CommandResult r = ApplyOne(sm.get(), PutEntry(1, "a", "1"));
  CHECK((r.ok && !r.prev && r.error.empty()));
  r = ApplyOne(sm.get(), PutEntry(2, "a", "2"));
  CHECK((r.ok && r.prev == "1"));
  r = ApplyOne(sm.get(), CommandEntry(3, {Op::kCas, "a", "3", std::string("wrong")}));
  CHECK((!r.ok && r.prev == "2"));
  CHECK(GetOrDie(*sm, "a") == "2");
  r = ApplyOne(sm.get(), CommandEntry(4, {Op::kCas, "a", "3", std::string("2")}));
  CHECK((r.ok && r.prev == "2"));
  CHECK(GetOrDie(*sm, "a") == "3");
  r = ApplyOne(sm.get(), CommandEntry(5, {Op::kCas, "a", "x", std::nullopt}));  // only if absent
  CHECK((!r.ok && r.prev == "3"));
  r = ApplyOne(sm.get(), CommandEntry(6, {Op::kCas, "b", "B", std::nullopt}));
  CHECK((r.ok && !r.prev));
  r = ApplyOne(sm.get(), CommandEntry(7, {Op::kDelete, "a", "", std::nullopt}));
  CHECK((r.ok && r.prev == "3"));
  CHECK(GetOrDie(*sm, "a") == std::nullopt);
  r = ApplyOne(sm.get(), CommandEntry(8, {Op::kDelete, "a", "", std::nullopt}));
  CHECK((r.ok && !r.prev));
  CHECK(sm->AppliedIndex() == 8);
  // One batch: later commands see the earlier ones; non-commands yield "" and advance.
  std::vector<std::string> results;
  sm->Apply({PutEntry(9, "c", "1"), Entry{2, 10, EntryType::kNormal, ""},
             CommandEntry(11, {Op::kCas, "c", "2", std::string("1")}),
             Entry{2, 12, EntryType::kConfChange, "opaque"},
             Entry{2, 13, EntryType::kNormal, "\x07garbage"},
             CommandEntry(14, {Op::kDelete, "c", "", std::nullopt})},
            &results);
  REQUIRE(results.size() == 6);
  CHECK(results[1].empty());
  CHECK(results[3].empty());
  REQUIRE(DecodeResult(results[2], &r));
  CHECK((r.ok && r.prev == "1"));
  REQUIRE(DecodeResult(results[4], &r));
  CHECK((!r.ok && !r.error.empty()));  // malformed: a no-op with an error
  REQUIRE(DecodeResult(results[5], &r));
  CHECK((r.ok && r.prev == "2"));
  CHECK(sm->AppliedIndex() == 14);
  CHECK(GetOrDie(*sm, "c") == std::nullopt);

  // Entries at or below the applied index are not applied twice.
  results.clear();
  sm->Apply({PutEntry(14, "b", "again"), PutEntry(15, "d", "D")}, &results);
  REQUIRE(results.size() == 2);
  CHECK(results[0].empty());
  CHECK(GetOrDie(*sm, "b") == "B");
  CHECK(sm->AppliedIndex() == 15);
  // A set writes like a put but reads nothing: its result never carries the old value,
  // and a later command in the same batch sees what it wrote.
  std::vector<std::string> set_results;
  sm->Apply({CommandEntry(100, {Op::kSet, "b", "B2", std::nullopt}),
             CommandEntry(101, {Op::kCas, "b", "B3", std::string("B2")})},
            &set_results);
  REQUIRE(set_results.size() == 2);
  REQUIRE(DecodeResult(set_results[0], &r));
  CHECK((r.ok && !r.prev && r.index == 100));
  REQUIRE(DecodeResult(set_results[1], &r));
  CHECK((r.ok && r.prev == "B2"));
  CHECK(GetOrDie(*sm, "b") == "B3");
}

TEST_CASE("the applied index and data persist across close and reopen", "[state_machine]") {
  TempDir dir;
  {
    auto sm = OpenOrDie(dir.path("kv"));
    for (raft::Index i = 1; i <= 50; ++i) ApplyOne(sm.get(), PutEntry(i, Key(i), ValueFor(i, 10)));
    // A second instance on the same directory is refused.
    auto again = RocksStateMachine::Open(dir.path("kv"), {});
    CHECK_FALSE(again.ok());
  }  // destructor: Close (flush)
  auto sm = OpenOrDie(dir.path("kv"));
  CHECK(sm->AppliedIndex() == 50);
  for (raft::Index i = 1; i <= 50; ++i) CHECK(GetOrDie(*sm, Key(i)) == ValueFor(i, 10));
  CHECK(sm->ApproximateSizeBytes() > 0);
  sm->Close();
  CHECK(sm->Get("x").status().code() == raft::ErrorCode::kShutdown);
  CHECK(sm->ApproximateSizeBytes() == 0);
}

// The crash: a child process applies many small batches (with write buffers so small
// that background flushes happen meanwhile) and SIGKILLs itself without Close.
constexpr raft::Index kCrashFirst = 101, kCrashLast = 20100, kCrashBatch = 7;
RocksOptions CrashOptions() {
  RocksOptions o;
  o.write_buffer_bytes = 128 << 10;
  o.max_write_buffers = 2;
  return o;
}

TEST_CASE("state machine crash child", "[.crash-child]") {
  const char* dir = std::getenv("KV_SM_CRASH_DIR");
  if (dir == nullptr) return;  // only runs as the child of the crash test
  auto sm = OpenOrDie(dir, CrashOptions());
  for (raft::Index i = kCrashFirst; i <= kCrashLast; i += kCrashBatch) {
    std::vector<Entry> batch;
    for (raft::Index j = i; j < i + kCrashBatch && j <= kCrashLast; ++j)
      batch.push_back(PutEntry(j, Key(j), ValueFor(j, 200)));
    std::vector<std::string> results;
    sm->Apply(batch, &results);
  }
  ::kill(::getpid(), SIGKILL);
}

TEST_CASE("a crash loses only an unflushed suffix; the rest is a consistent prefix",
          "[state_machine]") {
  TempDir dir;
  {
    auto sm = OpenOrDie(dir.path("kv"), CrashOptions());
    for (raft::Index i = 1; i < kCrashFirst; ++i)
      ApplyOne(sm.get(), PutEntry(i, Key(i), ValueFor(i, 200)));
  }  // Close flushes: index 100 is durable

  std::cout.flush();
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setenv("KV_SM_CRASH_DIR", dir.path("kv").c_str(), 1);
    const char* argv[] = {"state_machine_test", "state machine crash child", nullptr};
    ::execv("/proc/self/exe", const_cast<char* const*>(argv));
    ::_exit(127);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFSIGNALED(wstatus));
  REQUIRE(WTERMSIG(wstatus) == SIGKILL);

  auto sm = OpenOrDie(dir.path("kv"), CrashOptions());
  const raft::Index applied = sm->AppliedIndex();
  INFO("recovered applied index " << applied);
  CHECK(applied > kCrashFirst);  // background flushes persisted some batches
  CHECK(applied < kCrashLast);   // the last memtable was lost
  CHECK((applied - kCrashFirst + 1) % kCrashBatch == 0);  // a whole number of batches
  // Exactly the entries up to the applied index are present: data and index agree.
  std::size_t wrong = 0;
  for (raft::Index i = 1; i <= kCrashLast; ++i) {
    auto v = GetOrDie(*sm, Key(i));
    if (i <= applied ? v != ValueFor(i, 200) : v.has_value()) ++wrong;
  }
  CHECK(wrong == 0);
  // The runtime replays the rest: applying it again completes the state.
  std::vector<std::string> results;
  std::vector<Entry> rest;
  for (raft::Index i = applied + 1; i <= kCrashLast; ++i)
    rest.push_back(PutEntry(i, Key(i), ValueFor(i, 200)));
  sm->Apply(rest, &results);
  CHECK(sm->AppliedIndex() == kCrashLast);
  CHECK(GetOrDie(*sm, Key(kCrashLast)) == ValueFor(kCrashLast, 200));
}

TEST_CASE("snapshot: frozen at prepare, restored into another instance", "[state_machine]") {
  TempDir dir;
  auto a = OpenOrDie(dir.path("a"));
  auto b = OpenOrDie(dir.path("b"));
  for (raft::Index i = 1; i <= 200; ++i) ApplyOne(a.get(), PutEntry(i, Key(i), ValueFor(i, 1000)));
  ApplyOne(b.get(), PutEntry(1, "only-in-b", "x"));

  auto prepared = a->PrepareSnapshot();
  REQUIRE(prepared.ok());
  std::unique_ptr<raft::SnapshotSource> src = std::move(prepared).value();
  // Apply goes on after the snapshot was prepared; the snapshot does not see it.
  ApplyOne(a.get(), PutEntry(201, Key(1), "changed"));
  StringWriter w;
  REQUIRE(src->WriteTo(&w).ok());
  CHECK(stdfs::is_empty(dir.path("a/checkpoints")));  // removed once written
  CHECK_FALSE(src->WriteTo(&w).ok());                 // once only
  src.reset();

  StringReader reader(w.data);
  REQUIRE(b->Restore(&reader, MetaAt(200)).ok());
  CHECK(b->AppliedIndex() == 200);
  CHECK(GetOrDie(*b, Key(1)) == ValueFor(1, 1000));
  CHECK(GetOrDie(*b, Key(200)) == ValueFor(200, 1000));
  CHECK(GetOrDie(*b, "only-in-b") == std::nullopt);  // replaced, not merged
  CHECK_FALSE(stdfs::exists(dir.path("b/db.old")));
  CHECK_FALSE(stdfs::exists(dir.path("b/db.new")));
  CHECK_FALSE(stdfs::exists(dir.path("b/restore.tmp")));
  ApplyOne(b.get(), PutEntry(201, "after", "restore"));
  b->Close();
  b = OpenOrDie(dir.path("b"));
  CHECK(b->AppliedIndex() == 201);
  CHECK(GetOrDie(*b, Key(2)) == ValueFor(2, 1000));

  // A prepared snapshot never written is cleaned up by its destructor.
  { auto unused = a->PrepareSnapshot(); }
  CHECK(stdfs::is_empty(dir.path("a/checkpoints")));
}

// The deferred checkpoint (PrepareSnapshot only switches the memtable): a flush of a
// later memtable before the source materializes would put later entries in it. The
// source refuses (never a snapshot holding the wrong index), and the next prepare
// checkpoints inline, so snapshots make progress.
TEST_CASE("snapshot: a deferred checkpoint overtaken by a later flush fails; the next is inline",
          "[state_machine]") {
  TempDir dir;
  auto a = OpenOrDie(dir.path("a"));
  auto b = OpenOrDie(dir.path("b"));
  for (raft::Index i = 1; i <= 50; ++i) ApplyOne(a.get(), PutEntry(i, Key(i), "v1"));

  auto overtaken = a->PrepareSnapshot();
  REQUIRE(overtaken.ok());
  CHECK(stdfs::is_empty(dir.path("a/checkpoints")));  // deferred: nothing made yet
  ApplyOne(a.get(), PutEntry(51, Key(1), "later"));
  REQUIRE(a->Compact().ok());  // flushes the memtable holding entry 51
  CHECK_FALSE((*overtaken)->ReleaseFiles().has_value());
  StringWriter w;
  raft::Status s = (*overtaken)->WriteTo(&w);
  INFO(s.ToString());
  CHECK(s.code() == raft::ErrorCode::kUnavailable);
  CHECK(s.message().find("overtaken") != std::string::npos);
  CHECK(w.data.empty());
  CHECK(stdfs::is_empty(dir.path("a/checkpoints")));
  overtaken->reset();

  // Inline: the checkpoint exists as soon as PrepareSnapshot returns.
  auto inline_src = a->PrepareSnapshot();
  REQUIRE(inline_src.ok());
  CHECK_FALSE(stdfs::is_empty(dir.path("a/checkpoints")));
  ApplyOne(a.get(), PutEntry(52, Key(2), "after-inline"));
  REQUIRE((*inline_src)->WriteTo(&w).ok());
  StringReader reader(w.data);
  REQUIRE(b->Restore(&reader, MetaAt(51)).ok());
  CHECK(GetOrDie(*b, Key(1)) == "later");
  CHECK(GetOrDie(*b, Key(2)) == "v1");

  // And deferred again after that, frozen at its own index; its checkpoint holds the
  // DB's files and nothing else (the check's open leaves no info LOG in it).
  auto deferred = a->PrepareSnapshot();
  REQUIRE(deferred.ok());
  CHECK(stdfs::is_empty(dir.path("a/checkpoints")));
  ApplyOne(a.get(), PutEntry(53, Key(3), "after-deferred"));
  auto files = (*deferred)->ReleaseFiles();
  REQUIRE(files.has_value());
  for (const auto& entry : stdfs::directory_iterator(files->dir))
    CHECK(entry.path().filename().string().rfind("LOG", 0) != 0);
  stdfs::remove_all(files->dir);

  auto streamed = a->PrepareSnapshot();  // at 53
  REQUIRE(streamed.ok());
  ApplyOne(a.get(), PutEntry(54, Key(4), "after-streamed"));
  StringWriter w2;
  REQUIRE((*streamed)->WriteTo(&w2).ok());
  StringReader reader2(w2.data);
  REQUIRE(b->Restore(&reader2, MetaAt(53)).ok());
  CHECK(GetOrDie(*b, Key(2)) == "after-inline");
  CHECK(GetOrDie(*b, Key(3)) == "after-deferred");
  CHECK(GetOrDie(*b, Key(4)) == "v1");
  CHECK(stdfs::is_empty(dir.path("a/checkpoints")));
}

TEST_CASE("snapshot: a deferred source that outlives its state machine fails cleanly",
          "[state_machine]") {
  TempDir dir;
  auto a = OpenOrDie(dir.path("a"));
  for (raft::Index i = 1; i <= 10; ++i) ApplyOne(a.get(), PutEntry(i, Key(i), "v"));
  auto src = a->PrepareSnapshot();
  REQUIRE(src.ok());
  a.reset();
  CHECK_FALSE((*src)->ReleaseFiles().has_value());
  StringWriter w;
  CHECK((*src)->WriteTo(&w).code() == raft::ErrorCode::kShutdown);
}

// Two state machines in one directory: `a` holds keys 1..20 at indexes 1..20, `b` the
// key "mine" at index 1 (the state a refused restore must leave).
struct SourceAndTarget {
  TempDir dir;
  std::unique_ptr<RocksStateMachine> a = OpenOrDie(dir.path("a"));
  std::unique_ptr<RocksStateMachine> b = OpenOrDie(dir.path("b"));
  SourceAndTarget() {
    for (raft::Index i = 1; i <= 20; ++i) ApplyOne(a.get(), PutEntry(i, Key(i), "A"));
    ApplyOne(b.get(), PutEntry(1, "mine", "B"));
  }
};

TEST_CASE_METHOD(SourceAndTarget,
                 "restore refuses a corrupt or mismatched stream and keeps the old state",
                 "[state_machine]") {
  std::string snap = TakeSnapshot(a.get());

  std::string flipped = snap;
  flipped[0] ^= 1;
  std::string trailing = snap + "x";
  std::vector<std::pair<std::string, raft::Index>> bad = {
      {snap.substr(0, snap.size() / 2), 20},  // truncated
      {snap.substr(0, snap.size() - 1), 20},  // end marker cut
      {flipped, 20},
      {trailing, 20},
      {snap, 21},  // not the index the runtime expects
  };
  for (auto& [bytes, index] : bad) {
    StringReader reader(bytes);
    raft::Status s = b->Restore(&reader, MetaAt(index));
    CHECK(s.code() == raft::ErrorCode::kCorruption);
    CHECK(b->AppliedIndex() == 1);
    CHECK(GetOrDie(*b, "mine") == "B");
    CHECK_FALSE(stdfs::exists(dir.path("b/restore.tmp")));
  }
}

// The files of a snapshot of `sm` prepared now, released (the caller removes files.dir).
raft::SnapshotFiles ReleaseOrDie(RocksStateMachine* sm) {
  auto src = sm->PrepareSnapshot();
  REQUIRE(src.ok());
  std::optional<raft::SnapshotFiles> files = (*src)->ReleaseFiles();
  REQUIRE(files.has_value());
  return std::move(*files);
}

// Removes a released snapshot directory at scope exit: whoever released it owns it.
struct RemoveOnExit {
  std::string dir;
  ~RemoveOnExit() {
    std::error_code ec;
    stdfs::remove_all(dir, ec);
  }
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Name -> bytes of every file in `dir`: what must not change.
std::map<std::string, std::string> Contents(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& entry : stdfs::directory_iterator(dir))
    out[entry.path().filename().string()] = ReadAll(entry.path().string());
  return out;
}

struct stat StatOrDie(const std::string& path) {
  struct stat st;
  INFO(path);
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st;
}

bool IsTable(const std::string& name) { return name.ends_with(".sst"); }

TEST_CASE("snapshot: RestoreFiles links the SST files of a released checkpoint",
          "[state_machine]") {
  TempDir dir;
  auto a = OpenOrDie(dir.path("a"));
  auto b = OpenOrDie(dir.path("b"));
  for (raft::Index i = 1; i <= 200; ++i) ApplyOne(a.get(), PutEntry(i, Key(i), ValueFor(i, 1000)));
  ApplyOne(b.get(), PutEntry(1, "only-in-b", "x"));
  const raft::SnapshotFiles files = ReleaseOrDie(a.get());
  RemoveOnExit cleanup{files.dir};
  ApplyOne(a.get(), PutEntry(201, Key(1), "changed"));  // after the snapshot: not in it

  const std::map<std::string, std::string> before = Contents(files.dir);
  std::map<std::string, nlink_t> links_before;
  for (const auto& [name, bytes] : before)
    links_before[name] = StatOrDie(files.dir + "/" + name).st_nlink;
  REQUIRE(
      std::any_of(before.begin(), before.end(), [](const auto& f) { return IsTable(f.first); }));

  std::optional<raft::Status> restored = b->RestoreFiles(files, MetaAt(200));
  REQUIRE(restored.has_value());
  INFO(restored->ToString());
  REQUIRE(restored->ok());
  CHECK(b->AppliedIndex() == 200);
  auto all_there = [&](raft::Index last) {
    std::size_t wrong = 0;
    for (raft::Index i = 1; i <= last; ++i)
      if (GetOrDie(*b, Key(i)) != ValueFor(i, 1000)) ++wrong;
    return wrong == 0;
  };
  CHECK(all_there(200));
  CHECK(GetOrDie(*b, "only-in-b") == std::nullopt);  // replaced, not merged
  for (const char* leftover : {"b/db.old", "b/db.new", "b/restore.tmp"})
    CHECK_FALSE(stdfs::exists(dir.path(leftover)));

  // Each table file is now one more name of the snapshot's file (a link, not a copy);
  // every other file b's DB holds under the same name is a copy.
  for (const auto& [name, bytes] : before) {
    INFO(name);
    const struct stat theirs = StatOrDie(files.dir + "/" + name);
    const std::string mine = dir.path("b/db/" + name);
    if (IsTable(name)) {
      CHECK(StatOrDie(mine).st_ino == theirs.st_ino);
      CHECK(theirs.st_nlink == links_before[name] + 1);
      CHECK(theirs.st_nlink >= 2);
    } else if (stdfs::exists(mine)) {
      CHECK(StatOrDie(mine).st_ino != theirs.st_ino);
    }
  }

  // b writes on, closes (a flush) and reopens: the snapshot's files stay byte for byte.
  for (raft::Index i = 201; i <= 250; ++i)
    ApplyOne(b.get(), PutEntry(i, Key(i), ValueFor(i, 1000)));
  b->Close();
  b = OpenOrDie(dir.path("b"));
  CHECK(Contents(files.dir) == before);
  CHECK(b->AppliedIndex() == 250);

  // The links are b's own names: the snapshot's directory can go.
  stdfs::remove_all(files.dir);
  b->Close();
  b = OpenOrDie(dir.path("b"));
  CHECK(b->AppliedIndex() == 250);
  CHECK(all_there(250));
}

TEST_CASE_METHOD(SourceAndTarget,
                 "snapshot: RestoreFiles refuses mismatched pieces and keeps the old state",
                 "[state_machine]") {
  const raft::SnapshotFiles files = ReleaseOrDie(a.get());
  RemoveOnExit cleanup{files.dir};
  const std::map<std::string, std::string> before = Contents(files.dir);

  // As released: the header, then per file its header and its file piece, then the end.
  REQUIRE(files.pieces.size() >= 6);  // at least two files
  REQUIRE(files.pieces[2].file != "");
  REQUIRE(files.pieces[4].file != "");
  std::size_t table = 0;  // the file piece of a table file
  for (std::size_t i = 0; i < files.pieces.size(); ++i)
    if (IsTable(files.pieces[i].file)) table = i;
  REQUIRE(table > 0);

  raft::SnapshotFiles swapped = files;
  std::swap(swapped.pieces[2].file, swapped.pieces[4].file);
  raft::SnapshotFiles resized = files;
  resized.pieces[1].bytes[resized.pieces[1].bytes.size() - 8] ^= 1;  // size: u64 at the end
  raft::SnapshotFiles unended = files;
  unended.pieces.pop_back();
  raft::SnapshotFiles trailing = files;
  trailing.pieces.push_back({"x", ""});
  raft::SnapshotFiles trailing_file = files;
  trailing_file.pieces.push_back(files.pieces[2]);
  raft::SnapshotFiles repeated = files;  // the second file is the first again
  repeated.pieces[3] = files.pieces[1];
  repeated.pieces[4] = files.pieces[2];
  raft::SnapshotFiles split = files;  // a file's first byte as a literal, then its piece
  split.pieces.insert(split.pieces.begin() + static_cast<std::ptrdiff_t>(table),
                      {ReadAll(files.dir + "/" + files.pieces[table].file).substr(0, 1), ""});
  struct Case {
    const char* name;
    const raft::SnapshotFiles& files;
    raft::Index index;
  };
  const std::vector<Case> cases = {
      {"not the index the runtime expects", files, 21},
      {"a file piece naming another file", swapped, 20},
      {"a declared size that is not the file's", resized, 20},
      {"no end marker", unended, 20},
      {"literal bytes after the end marker", trailing, 20},
      {"a file piece after the end marker", trailing_file, 20},
      {"a file twice", repeated, 20},
      {"a file's bytes split between literal bytes and its piece", split, 20},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::optional<raft::Status> s = b->RestoreFiles(c.files, MetaAt(c.index));
    REQUIRE(s.has_value());
    INFO(s->ToString());
    CHECK(s->code() == raft::ErrorCode::kCorruption);
    CHECK(b->AppliedIndex() == 1);
    CHECK(GetOrDie(*b, "mine") == "B");
    CHECK_FALSE(stdfs::exists(dir.path("b/restore.tmp")));
    CHECK_FALSE(stdfs::exists(dir.path("b/db.new")));
    CHECK(Contents(files.dir) == before);
  }

  // The literal bytes cut anyhow (here: merged, then 3 bytes a piece, with empty pieces
  // between), and the files other than tables given as literal bytes: the same body,
  // restored; the tables still linked.
  raft::SnapshotFiles recut{files.dir, {}};
  std::string run;
  auto cut = [&] {
    for (std::size_t p = 0; p < run.size(); p += 3) recut.pieces.push_back({run.substr(p, 3), ""});
    run.clear();
  };
  for (const raft::SnapshotFiles::Piece& piece : files.pieces) {
    if (piece.file.empty()) {
      run += piece.bytes;
    } else if (!IsTable(piece.file)) {
      run += ReadAll(files.dir + "/" + piece.file);
    } else {
      cut();
      recut.pieces.push_back({"", ""});
      recut.pieces.push_back(piece);
    }
  }
  cut();
  std::optional<raft::Status> s = b->RestoreFiles(recut, MetaAt(20));
  REQUIRE(s.has_value());
  INFO(s->ToString());
  REQUIRE(s->ok());
  CHECK(b->AppliedIndex() == 20);
  CHECK(GetOrDie(*b, Key(20)) == "A");
  CHECK(GetOrDie(*b, "mine") == std::nullopt);
  const std::string name = files.pieces[table].file;
  CHECK(StatOrDie(dir.path("b/db/" + name)).st_ino == StatOrDie(files.dir + "/" + name).st_ino);
  CHECK(Contents(files.dir) == before);
}

// Fills an instance with `mb` MiB of incompressible 1 KiB values, streams its snapshot to
// an empty instance through a bounded pipe on two threads, and checks that the peak RSS
// growth during the transfer stays under `growth_limit_mb` and that the copy is exact.
void TransferAndMeasure(std::size_t mb, double growth_limit_mb) {
  TempDir dir;
  auto a = OpenOrDie(dir.path("a"));
  auto b = OpenOrDie(dir.path("b"));
  constexpr std::size_t kValueBytes = 1024, kBatch = 256;
  const std::size_t kEntries = mb * 1024;
  for (raft::Index i = 1; i <= kEntries; i += kBatch) {
    std::vector<Entry> batch;
    for (raft::Index j = i; j < i + kBatch; ++j)
      batch.push_back(PutEntry(j, Key(j), ValueFor(j, kValueBytes)));
    std::vector<std::string> results;
    a->Apply(batch, &results);
  }
  REQUIRE(a->AppliedIndex() == kEntries);

  const std::uint64_t baseline = RssBytes();
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> peak{baseline};
  std::thread sampler([&] {
    while (!done.load()) {
      std::uint64_t now = RssBytes();
      if (now > peak.load()) peak.store(now);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });

  auto start = std::chrono::steady_clock::now();
  auto src = a->PrepareSnapshot();
  REQUIRE(src.ok());
  Pipe pipe;
  Pipe::Writer writer(&pipe);
  Pipe::Reader reader(&pipe);
  std::atomic<std::uint64_t> streamed{0};
  raft::Status write_status;
  std::thread sender([&] {
    struct Counting final : raft::SnapshotWriter {
      raft::SnapshotWriter* next;
      std::atomic<std::uint64_t>* n;
      raft::Status Write(std::string_view b) override {
        *n += b.size();
        return next->Write(b);
      }
    } counting;
    counting.next = &writer;
    counting.n = &streamed;
    write_status = (*src)->WriteTo(&counting);
    pipe.Close();
  });
  raft::Status restore_status = b->Restore(&reader, MetaAt(kEntries));
  pipe.Abort();
  sender.join();
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  done = true;
  sampler.join();

  REQUIRE(write_status.ok());
  INFO(restore_status.ToString());
  REQUIRE(restore_status.ok());
  const double growth_mb = static_cast<double>(peak.load() - baseline) / (1 << 20);
  const double streamed_mb = static_cast<double>(streamed.load()) / (1 << 20);
  std::printf(
      "[memory] %zu MB state: streamed %.1f MB in %.2f s (%.0f MB/s); peak RSS growth "
      "%.1f MB (baseline %.1f MB)\n",
      mb, streamed_mb, seconds, streamed_mb / seconds, growth_mb,
      static_cast<double>(baseline) / (1 << 20));
  CHECK(streamed.load() > kEntries * kValueBytes);  // incompressible: the whole state moved
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // ASan's quarantine and TSan's delayed frees and shadow memory keep memory resident by
  // design: RSS says nothing here. The release stage checks the bound.
  WARN("sanitizer build: RSS bound not checked");
  (void)growth_limit_mb;
#else
  CHECK(growth_mb < growth_limit_mb);
#endif

  // The copy is complete and exact: page through both instances.
  CHECK(b->AppliedIndex() == kEntries);
  std::string after;
  std::size_t seen = 0;
  for (;;) {
    auto pa = a->List("key", after, 1000);
    auto pb = b->List("key", after, 1000);
    REQUIRE((pa.ok() && pb.ok()));
    REQUIRE(*pa == *pb);
    if (pa->empty()) break;
    seen += pa->size();
    after = pa->back().first;
  }
  CHECK(seen == kEntries);
}

TEST_CASE("snapshot transfer of a 50 MB state with bounded memory", "[state_machine][memory]") {
  TransferAndMeasure(50, 40.0);
}

// The 1 GB figure of docs (issue 7's target: growth at most 64 MB). Not in CI: about a
// minute and 2 GB of disk. Run: state_machine_test "[.memory-1g]"
TEST_CASE("snapshot transfer of a 1 GB state with bounded memory", "[.memory-1g]") {
  TransferAndMeasure(1024, 64.0);
}

// Copies the (closed) live DB of `from` to `to`.
void CopyDb(const std::string& from, const std::string& to) {
  stdfs::copy(from, to, stdfs::copy_options::recursive);
}

TEST_CASE("Open finishes or undoes a restore swap interrupted by a crash", "[state_machine]") {
  TempDir dir;
  // Two complete DBs: A at index 10 (x = A), B at index 20 (x = B).
  for (auto [name, index] : {std::pair<std::string, raft::Index>{"A", 10}, {"B", 20}}) {
    auto sm = OpenOrDie(dir.path("src" + name));
    ApplyOne(sm.get(), PutEntry(index, "x", name));
  }
  auto layout = [&](const std::string& sub,
                    std::initializer_list<std::pair<const char*, const char*>> dbs) {
    std::string kv = dir.path(sub);
    stdfs::create_directories(kv);
    for (auto [db, src] : dbs) CopyDb(dir.path(std::string("src") + src + "/db"), kv + "/" + db);
    return kv;
  };
  struct Case {
    const char* name;
    std::string kv;
    raft::Index applied;
    const char* x;
  };
  std::vector<Case> cases = {
      {"stream interrupted", layout("c1", {{"db", "A"}, {"restore.tmp", "B"}}), 10, "A"},
      {"crash before moving the old DB aside", layout("c2", {{"db", "A"}, {"db.new", "B"}}), 10,
       "A"},
      {"crash between the renames", layout("c3", {{"db.old", "A"}, {"db.new", "B"}}), 20, "B"},
      {"crash before deleting the old DB", layout("c4", {{"db.old", "A"}, {"db", "B"}}), 20, "B"},
  };
  // A partial stream and a stale checkpoint are swept too.
  std::ofstream(cases[0].kv + "/restore.tmp/000123.sst") << "partial";
  stdfs::create_directories(cases[0].kv + "/checkpoints/ckpt-5-1");
  for (const Case& c : cases) {
    INFO(c.name);
    auto sm = OpenOrDie(c.kv);
    CHECK(sm->AppliedIndex() == c.applied);
    CHECK(GetOrDie(*sm, "x") == c.x);
    for (const char* leftover : {"restore.tmp", "db.new", "db.old"})
      CHECK_FALSE(stdfs::exists(c.kv + "/" + leftover));
    CHECK(stdfs::is_empty(c.kv + "/checkpoints"));
  }
}

TEST_CASE("reads run concurrently with Apply and Restore", "[state_machine]") {
  TempDir dir;
  auto sm = OpenOrDie(dir.path("live"));
  std::string snap;
  {
    auto other = OpenOrDie(dir.path("other"));
    ApplyOne(other.get(), PutEntry(1000, "v", "new"));
    snap = TakeSnapshot(other.get());
  }
  ApplyOne(sm.get(), PutEntry(1, "v", "old"));

  std::atomic<bool> stop{false};
  std::atomic<int> errors{0}, reads{0};
  std::thread reader([&] {
    bool saw_new = false;
    while (!stop.load()) {
      auto v = sm->Get("v");
      auto page = sm->List("k", "", 10);
      (void)sm->ApproximateSizeBytes();
      if (!v.ok() || !page.ok() || !v->has_value()) {
        ++errors;
        continue;
      }
      // The state flips from old to new once, never back.
      if (**v == "new") saw_new = true;
      if (**v != (saw_new ? "new" : "old")) ++errors;
      ++reads;
    }
  });
  raft::Index index = 2;
  for (int round = 0; round < 50; ++round) {
    std::vector<Entry> batch;
    for (int j = 0; j < 10; ++j, ++index) batch.push_back(PutEntry(index, Key(index), "value"));
    std::vector<std::string> results;
    sm->Apply(batch, &results);
  }
  StringReader in(snap);
  REQUIRE(sm->Restore(&in, MetaAt(1000)).ok());
  index = 1001;
  for (int round = 0; round < 100; ++round) {
    std::vector<Entry> batch;
    for (int j = 0; j < 10; ++j, ++index) batch.push_back(PutEntry(index, Key(index), "value"));
    std::vector<std::string> results;
    sm->Apply(batch, &results);
  }
  while (reads.load() + errors.load() < 100) std::this_thread::yield();
  stop = true;
  reader.join();
  CHECK(errors.load() == 0);
  CHECK(GetOrDie(*sm, "v") == "new");
  CHECK(sm->AppliedIndex() == 2000);
}

TEST_CASE("List: prefix, order, start_after and pagination", "[state_machine]") {
  TempDir dir;
  auto sm = OpenOrDie(dir.path("kv"));
  std::vector<std::string> keys = {
      "a", "b/1", "b/2", "b/10", "b", "ba", "c", std::string("b\0x", 3), "\xff", "\xff\xff"};
  raft::Index i = 0;
  for (const auto& k : keys) ApplyOne(sm.get(), PutEntry(++i, k, "v:" + k));

  auto names = [](const auto& page) {
    std::vector<std::string> out;
    for (const auto& [k, v] : page) {
      CHECK(v == "v:" + k);
      out.push_back(k);
    }
    return out;
  };
  auto all_b = sm->List("b", "", 100);
  REQUIRE(all_b.ok());
  CHECK(names(*all_b) ==
        std::vector<std::string>{"b", std::string("b\0x", 3), "b/1", "b/10", "b/2", "ba"});
  auto page1 = sm->List("b/", "", 2);
  REQUIRE(page1.ok());
  CHECK(names(*page1) == std::vector<std::string>{"b/1", "b/10"});
  auto page2 = sm->List("b/", page1->back().first, 2);
  REQUIRE(page2.ok());
  CHECK(names(*page2) == std::vector<std::string>{"b/2"});
  auto page3 = sm->List("b/", "b/2", 2);
  REQUIRE(page3.ok());
  CHECK(page3->empty());
  // start_after before the prefix starts at the prefix; an empty prefix lists everything.
  auto from_a = sm->List("b/", "a", 1);
  REQUIRE(from_a.ok());
  CHECK(names(*from_a) == std::vector<std::string>{"b/1"});
  auto everything = sm->List("", "", 1000);
  REQUIRE(everything.ok());
  CHECK(everything->size() == keys.size());
  auto ff = sm->List("\xff", "", 10);
  REQUIRE(ff.ok());
  CHECK(names(*ff) == std::vector<std::string>{"\xff", "\xff\xff"});
  auto none = sm->List("b", "", 0);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

}  // namespace
}  // namespace kv

namespace kv {
namespace {

unsigned ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// Security review F-13: the store is for its owner only, whatever the umask.
TEST_CASE("the state machine's directories are 0700 and its files 0600", "[sm][fs]") {
  TempDir dir;
  const mode_t old = ::umask(0);
  {
    auto sm = OpenOrDie(dir.path("a/b/kv"));
    CHECK(ModeOf(dir.path("a")) == 0700);
    CHECK(ModeOf(dir.path("a/b/kv")) == 0700);
    CHECK(ModeOf(dir.path("a/b/kv") + "/LOCK") == 0600);
  }
  ::umask(old);
}

TEST_CASE("a data directory open to group or others is reported", "[sm][fs]") {
  TempDir dir;
  REQUIRE(fs::MakeDirs(dir.path("d")).ok());
  CHECK(fs::LoosePermissions(dir.path("d")) == "");
  REQUIRE(::chmod(dir.path("d").c_str(), 0750) == 0);
  const std::string warning = fs::LoosePermissions(dir.path("d"));
  CHECK(warning.find("0750") != std::string::npos);
  CHECK(warning.find("0700") != std::string::npos);
  CHECK(fs::LoosePermissions(dir.path("missing")) == "");
}

// Issue 15, watch and TTL: the format-2 codecs (docs/state-format.md).
TEST_CASE("command codec version 2: TTL, CAS on the index, expire", "[kv_command]") {
  Command ttl{Op::kSet, "k", "v", std::nullopt};
  ttl.expire_at_ms = 1234567890123;
  Command cas_index{Op::kCas, "k", "v", std::nullopt};
  cas_index.expected_index = 42;
  Command cas_absent_ttl{Op::kCas, "k", "v", std::nullopt};
  cas_absent_ttl.expire_at_ms = 7;
  Command expire{Op::kExpire, "k", "", std::nullopt};
  expire.expire_at_ms = 99;
  Command put_ttl{Op::kPut, "k", "v", std::nullopt};
  put_ttl.expire_at_ms = 1;
  for (const Command& c : {ttl, cas_index, cas_absent_ttl, expire, put_ttl}) {
    const std::string e = EncodeCommand(c);
    CHECK(e[0] == 2);
    Command out;
    REQUIRE(DecodeCommand(e, &out));
    CHECK(out == c);
  }
  // Without a version-2 field the encoding stays version 1, and a version-2 encoding of
  // such a command is refused (one encoding per command).
  CHECK(EncodeCommand({Op::kSet, "k", "v", std::nullopt})[0] == 1);
  std::string v2_plain = EncodeCommand(put_ttl);
  std::fill(v2_plain.end() - 8, v2_plain.end(), '\0');  // expire_at 0
  Command out;
  CHECK_FALSE(DecodeCommand(v2_plain, &out));
  // expire is a version-2 op; expected = 2 is version 2 only.
  std::string v1_expire = EncodeCommand(expire);
  v1_expire[0] = 1;
  CHECK_FALSE(DecodeCommand(v1_expire, &out));
  const std::string e = EncodeCommand(cas_index);
  for (std::size_t n = 0; n < e.size(); ++n) CHECK_FALSE(DecodeCommand(e.substr(0, n), &out));

  CommandResult r{true, std::string("old"), ""};
  r.index = 9;
  r.prev_index = 5;
  CommandResult back;
  REQUIRE(DecodeResult(EncodeResult(r), &back));
  CHECK(back == r);
}

TEST_CASE("record and event codecs", "[kv_record]") {
  const std::string binary("a\0b\xff", 4);
  for (std::uint64_t at : {std::uint64_t{0}, std::uint64_t{1}, ~std::uint64_t{0}}) {
    const std::string rec = EncodeRecord(77, at, binary);
    Record r;
    REQUIRE(DecodeRecord(rec, &r));
    CHECK(r.index == 77);
    CHECK(r.expire_at_ms == at);
    CHECK(r.value == binary);
    for (std::size_t n = 0; n < 9; ++n) CHECK_FALSE(DecodeRecord(rec.substr(0, n), &r));
  }
  Record r;
  CHECK_FALSE(DecodeRecord(std::string("\x02") + std::string(8, '\0'), &r));  // unknown flag
  for (EventType t : {EventType::kPut, EventType::kDelete, EventType::kExpire}) {
    Event e;
    REQUIRE(DecodeEvent(EncodeEvent(t, binary, "value"), &e));
    CHECK(e.type == t);
    CHECK(e.key == binary);
    CHECK(e.value == (t == EventType::kPut ? "value" : ""));
  }
  Event e;
  CHECK_FALSE(DecodeEvent(std::string("\x04\0\0\0\0", 5), &e));
  CHECK_FALSE(DecodeEvent(EncodeEvent(EventType::kDelete, "k", "") + "x", &e));
  // Keys sort by number.
  CHECK(HistoryKey(255) < HistoryKey(256));
  CHECK(HistoryIndex(HistoryKey(1ull << 40)) == std::optional<std::uint64_t>(1ull << 40));
  CHECK(ExpiryKey(9, "zzz") < ExpiryKey(10, "a"));
  std::uint64_t at = 0;
  std::string key;
  REQUIRE(ParseExpiryKey(ExpiryKey(10, binary), &at, &key));
  CHECK((at == 10 && key == binary));
}

// prefix + n, as a string: GCC 12 warns (-Wrestrict, a false positive) about
// "literal" + std::string temporaries.
std::string Named(std::string_view prefix, int n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

std::vector<Event> AllHistory(const RocksStateMachine& sm, std::uint64_t from,
                              std::string_view prefix, std::size_t page_events = 3) {
  std::vector<Event> out;
  for (;;) {
    auto page = sm.History(from, prefix, page_events, 5, SIZE_MAX);
    REQUIRE(page.ok());
    REQUIRE_FALSE(page->compacted);
    out.insert(out.end(), page->events.begin(), page->events.end());
    REQUIRE(page->next >= from);
    if (page->next > page->applied) return out;
    from = page->next;
  }
}

TEST_CASE("history: one event per change, in index order, paged, pruned", "[state_machine]") {
  TempDir dir;
  RocksOptions o;
  o.history_entries = 32;
  auto sm = OpenOrDie(dir.path("kv"), o);
  std::vector<Event> expected;
  raft::Index i = 0;
  for (int n = 0; n < 10; ++n) {
    ++i;
    ApplyOne(sm.get(), PutEntry(i, Named("a/", n), Named("v", n)));
    expected.push_back({i, EventType::kPut, Named("a/", n), Named("v", n)});
    ++i;
    ApplyOne(sm.get(), PutEntry(i, Named("b/", n), "w"));
    expected.push_back({i, EventType::kPut, Named("b/", n), "w"});
  }
  // No event: a failed CAS, a delete of an absent key, a no-op entry.
  ApplyOne(sm.get(), CommandEntry(++i, {Op::kCas, "a/0", "x", std::string("wrong")}));
  ApplyOne(sm.get(), CommandEntry(++i, {Op::kDelete, "nothing", "", std::nullopt}));
  std::vector<std::string> results;
  sm->Apply({Entry{1, ++i, EntryType::kNormal, ""}}, &results);
  ApplyOne(sm.get(), CommandEntry(++i, {Op::kDelete, "a/3", "", std::nullopt}));
  expected.push_back({i, EventType::kDelete, "a/3", ""});

  CHECK(AllHistory(*sm, 1, "") == expected);
  std::vector<Event> only_a;
  for (const Event& e : expected)
    if (e.key.starts_with("a/")) only_a.push_back(e);
  CHECK(AllHistory(*sm, 1, "a/", 1) == only_a);
  // From the middle: exactly the suffix.
  CHECK(AllHistory(*sm, 11, "") == std::vector<Event>(expected.begin() + 10, expected.end()));
  // Past the end: nothing, next stays.
  auto page = sm->History(i + 1, "", 10, 10, SIZE_MAX);
  REQUIRE(page.ok());
  CHECK((page->events.empty() && page->next == i + 1 && page->applied == i));

  // Retention: 32 indices, dropped in steps of 2; then an old index is compacted.
  for (int n = 0; n < 40; ++n) ApplyOne(sm.get(), PutEntry(++i, "c", std::to_string(n)));
  page = sm->History(1, "", 10, 10, SIZE_MAX);
  REQUIRE(page.ok());
  CHECK(page->compacted);
  CHECK(page->start > 1);
  CHECK(page->start + 32 >= i);  // pruned at most 2 indices behind the window
  CHECK(page->start + 32 <= i + 1);
  auto tail = AllHistory(*sm, page->start, "");
  REQUIRE(!tail.empty());
  CHECK(tail.front().index == page->start);
  CHECK(tail.back().index == i);
  // The history survives a reopen.
  sm.reset();
  sm = OpenOrDie(dir.path("kv"), o);
  CHECK(AllHistory(*sm, page->start, "").size() == tail.size());
}

TEST_CASE("history: the byte bound drops the oldest events, exactly counted", "[state_machine]") {
  TempDir dir;
  RocksOptions o;
  o.history_entries = 1000000;
  o.history_bytes = 16000;
  auto sm = OpenOrDie(dir.path("kv"), o);
  const std::string value(1000, 'v');
  for (raft::Index i = 1; i <= 200; ++i) {
    std::vector<std::string> results;
    // Batches of two, as the runtime hands them over.
    if (i % 2 == 1) {
      sm->Apply({PutEntry(i, Named("k", static_cast<int>(i)), value),
                 PutEntry(i + 1, Named("k", static_cast<int>(i + 1)), value)},
                &results);
    }
    auto page = sm->History(1, "", 0, 0, 0);
    REQUIRE(page.ok());
    if (page->start == 1) continue;
    // What is kept is within the budget and at least 15/16 of it minus one batch.
    std::size_t kept = 0;
    for (const Event& e : AllHistory(*sm, page->start, "", 100))
      kept += 9 + 1 + 4 + e.key.size() + e.value.size();
    CHECK(kept <= 16000 + 2 * 1020);
    CHECK(kept >= 15000 - 2 * 1020);
  }
  auto page = sm->History(1, "", 0, 0, 0);
  REQUIRE(page.ok());
  CHECK(page->compacted);
  CHECK(page->start > 180);
  CHECK(page->start < 195);
}

TEST_CASE("indexes and TTL: CAS on the index, expiry removes only a key that still has it",
          "[state_machine]") {
  TempDir dir;
  auto sm = OpenOrDie(dir.path("kv"));
  ApplyOne(sm.get(), PutEntry(1, "k", "v1"));
  auto rec = sm->GetRecord("k");
  REQUIRE((rec.ok() && rec->has_value()));
  CHECK(((*rec)->index == 1 && (*rec)->expire_at_ms == 0 && (*rec)->value == "v1"));

  Command cas{Op::kCas, "k", "v2", std::nullopt};
  cas.expected_index = 7;  // wrong
  CommandResult r = ApplyOne(sm.get(), CommandEntry(2, cas));
  CHECK((!r.ok && r.prev == "v1" && r.prev_index == 1));
  cas.expected_index = 1;
  r = ApplyOne(sm.get(), CommandEntry(3, cas));
  CHECK(r.ok);
  CHECK((*sm->GetRecord("k"))->index == 3);
  cas.expected_index = 0;  // only if absent
  CHECK_FALSE(ApplyOne(sm.get(), CommandEntry(4, cas)).ok);
  Command create{Op::kCas, "new", "n", std::nullopt};
  create.expected_index = 0;
  CHECK(ApplyOne(sm.get(), CommandEntry(5, create)).ok);

  // A TTL key, then its expiry.
  Command ttl{Op::kSet, "t", "temp", std::nullopt};
  ttl.expire_at_ms = 1000;
  ApplyOne(sm.get(), CommandEntry(6, ttl));
  CHECK((*sm->GetRecord("t"))->expire_at_ms == 1000);
  auto due = sm->DueExpiries(999, 10);
  REQUIRE(due.ok());
  CHECK(due->empty());
  due = sm->DueExpiries(1000, 10);
  REQUIRE((due.ok() && due->size() == 1));
  CHECK(((*due)[0].first == "t" && (*due)[0].second == 1000));
  Command expire{Op::kExpire, "t", "", std::nullopt};
  expire.expire_at_ms = 1000;
  CHECK(ApplyOne(sm.get(), CommandEntry(7, expire)).ok);
  CHECK(GetOrDie(*sm, "t") == std::nullopt);
  CHECK(sm->DueExpiries(5000, 10)->empty());
  CHECK(AllHistory(*sm, 7, "t") == std::vector<Event>{{7, EventType::kExpire, "t", ""}});

  // Refreshed by a PUT before it expired: the old expiry is stale and removes only itself.
  ttl.expire_at_ms = 2000;
  ApplyOne(sm.get(), CommandEntry(8, ttl));
  ttl.expire_at_ms = 3000;
  ApplyOne(sm.get(), CommandEntry(9, ttl));
  REQUIRE(sm->DueExpiries(2500, 10)->size() == 1);
  expire.expire_at_ms = 2000;
  CHECK_FALSE(ApplyOne(sm.get(), CommandEntry(10, expire)).ok);
  CHECK(GetOrDie(*sm, "t") == "temp");
  CHECK(sm->DueExpiries(2500, 10)->empty());
  // A plain PUT drops the TTL: the expiry, when due, removes nothing.
  ApplyOne(sm.get(), PutEntry(11, "t", "forever"));
  CHECK((*sm->GetRecord("t"))->expire_at_ms == 0);
  expire.expire_at_ms = 3000;
  CHECK_FALSE(ApplyOne(sm.get(), CommandEntry(12, expire)).ok);
  CHECK(GetOrDie(*sm, "t") == "forever");
  CHECK(sm->DueExpiries(~std::uint64_t{0} - 1, 10)->empty());
}

TEST_CASE("a format-1 DB is upgraded on open: values kept, index 0, no history before",
          "[state_machine]") {
  TempDir dir;
  REQUIRE(fs::MakeDirs(dir.path("kv")).ok());
  {
    rocksdb::Options opt;
    opt.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(opt, dir.path("kv") + "/db", &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteBatch b;
    b.Put(std::string("\0format", 7), std::string(1, '\x01'));
    std::string applied(8, '\0');
    applied[0] = 25;
    b.Put(std::string("\0applied", 8), applied);
    for (int n = 0; n < 25000; ++n) {
      std::string k = "u";
      k += Key(static_cast<std::uint64_t>(n));
      b.Put(k, Named("old", n));
    }
    REQUIRE(db->Write(rocksdb::WriteOptions(), &b).ok());
    REQUIRE(db->Close().ok());
  }
  auto sm = OpenOrDie(dir.path("kv"));
  CHECK(sm->AppliedIndex() == 25);
  CHECK(GetOrDie(*sm, Key(0)) == "old0");
  CHECK(GetOrDie(*sm, Key(24999)) == "old24999");
  CHECK((*sm->GetRecord(Key(7)))->index == 0);
  auto items = sm->List("", "", 3);
  REQUIRE((items.ok() && items->size() == 3));
  CHECK((*items)[2].second == "old2");
  auto page = sm->History(25, "", 10, 10, SIZE_MAX);
  REQUIRE(page.ok());
  CHECK((page->compacted && page->start == 26));
  ApplyOne(sm.get(), PutEntry(26, "fresh", "x"));
  CHECK(AllHistory(*sm, 26, "") == std::vector<Event>{{26, EventType::kPut, "fresh", "x"}});
  // Reopening does not upgrade twice.
  sm.reset();
  sm = OpenOrDie(dir.path("kv"));
  CHECK(GetOrDie(*sm, Key(3)) == "old3");
}

}  // namespace
}  // namespace kv
