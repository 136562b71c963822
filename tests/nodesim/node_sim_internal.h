// The full-node simulator's run, shared by its parts (not a public interface):
//   node_sim.cc          processes, checks, phases (setup, faults, heal), the result
//   node_sim_clients.cc  the clients and their history
//   node_sim_faults.cc   the fault loop, the operator, membership changes, healing
// node_sim.h describes a run and its checks. Single-threaded, like all of the simulator.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kv_history.h"
#include "node_sim.h"
#include "raft/node.h"
#include "sim_env.h"
#include "sim_file_system.h"
#include "sim_kv.h"
#include "sim_network.h"
#include "sim_world.h"

namespace raft::nodesim::internal {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr milliseconds kOpTimeout = 1000ms;

// Disk faults off (no EIO, no capacity limit); whether any is on.
void ClearDiskFaults(SimDisk& d);
bool DiskFaulty(SimDisk& d);

// Shared by the simulator over nodes (Sim) and over hosts (host_sim.cc).
//
// The mix of a seed (swarm testing): each fault on with probability 1/2, lease reads in
// a quarter of the runs.
FaultMix DrawFaultMix(Rng& r);
// A request's callback, run once: by the runtime, or with kTimeout by the client giving
// up `kOpTimeout` + 500 ms after it asked (a crash drops the requests still queued in the
// dead process's lanes, and their callbacks with them, as a real crash does).
Node::Callback ClientGivesUp(SimWorld& world, Node::Callback cb);
// Steps `world`, calling `check` after every step, until its clock passes `until`,
// `done` holds (asked every 64 steps; null: never), `failed` holds or nothing is left.
// Past `max_steps` it calls `fail` ("step budget exhausted") and returns false; else
// whether done (without `done`: not failed).
bool Drive(SimWorld& world, Clock::time_point until, std::uint64_t max_steps,
           const std::function<bool()>& failed, const std::function<void()>& check,
           const std::function<void(const std::string&)>& fail, const std::function<bool()>& done);
// The fault loop's disk and network faults, drawn from the world's Rng: EIO from fsync
// or write for a while; a full disk for a while; one of `slots` processes isolated or
// the slots split in two, healed later (if `faults_on` still holds then).
void InjectDiskErrors(SimWorld& world, SimDisk* disk);
void InjectDiskFull(SimWorld& world, SimDisk* disk);
void InjectPartition(SimWorld& world, SimNetwork* net, int slots, const bool* faults_on);
constexpr int kTickMs = 10;

// With --trace: every node's log lines (info and above), prefixed by the virtual time.
class TraceLogger final : public Logger {
 public:
  TraceLogger(const SimWorld* world, std::string name) : world_(world), name_(std::move(name)) {}
  bool Enabled(LogLevel level) const override { return level >= LogLevel::kInfo; }
  void Log(LogLevel level, std::string_view component, std::string_view msg,
           const std::vector<LogField>& fields) override;

 private:
  const SimWorld* world_;
  std::string name_;
};

// One process slot: its disk survives crashes; everything else is its current incarnation.
struct Proc {
  int slot = 0;
  MemberInfo info;
  std::unique_ptr<SimDisk> disk;
  std::unique_ptr<TraceLogger> logger;  // with --trace
  std::unique_ptr<SimFileSystem> fs;
  std::unique_ptr<SimKv> kv;
  std::unique_ptr<Node> node;
  bool started_once = false;  // has had a process (its data dir may hold state)
  bool member = false;        // added to the configuration (or the bootstrapper)
  bool removed = false;       // removed from the configuration: stays down
  bool restart_pending = false;
  bool up() const { return node != nullptr; }
};

// What a run of either simulator shares (over nodes: Sim, below; over hosts:
// host_sim.cc): the world and network, the result and its first failure, the trace, the
// phases' stepping, and the clients' side: their history, the writes they had
// acknowledged and the end-of-run checks of both.
class SimRun {
 public:
  SimRun(std::uint64_t seed, bool trace, std::uint64_t max_steps)
      : trace_(trace), max_steps_(max_steps), world_(seed), net_(&world_) {}
  virtual ~SimRun() = default;

 protected:
  // The run's checks after every step.
  virtual void CheckStep() = 0;
  // The faults phase's loops (each schedules its next round), and the heal phase.
  virtual void FaultLoop() = 0;
  virtual void OperatorLoop() = 0;
  virtual void ClientLoop(int client) = 0;
  virtual bool HealAndVerify() = 0;
  // The faults phase (the network faults of the mix, the fault loop, the operator, the
  // clients, for `fault_time`), then, unless it failed, the heal phase.
  void FaultsThenHeal(int clients, milliseconds fault_time);

  void Trace(const std::string& s) const;
  double Seconds() const { return std::chrono::duration<double>(world_.Now() - start_).count(); }
  // Records the first failure (later ones are dropped).
  void Fail(const std::string& what);
  bool failed() const { return !res_.ok; }
  // Steps the world with CheckStep after each step (Drive).
  void RunFor(milliseconds d);
  bool RunUntilTrue(milliseconds bound, const std::function<bool()>& done);
  Node::Callback ClientSide(Node::Callback cb) { return ClientGivesUp(world_, std::move(cb)); }
  lin::Tick Now() { return ++lin_clock_; }
  // An applied entry: a write command's tag (its last line: the unique value, or a
  // delete's op id) is noted with its index.
  void NoteApplied(const Entry& e);
  // A client's write: kind 4-6 a put, 7-8 a CAS expecting `expected` (nullopt: absent),
  // 9 a delete (op id `op`); its command, its input for the history, and its tag.
  struct WriteCommand {
    lin::Input input;
    std::string cmd;
    std::string tag;
  };
  static WriteCommand MakeWrite(std::uint64_t kind, const std::string& key,
                                const std::string& value, std::uint64_t op,
                                const std::optional<std::string>& expected);
  // A read barrier's answer on `where` (for the message): a read index below `floor`
  // (the highest acknowledged write's when the read began) fails the run; with `kv` (the
  // replica's state machine, if it still exists) the read completes with its value of
  // `key`, else it is discarded (an unanswered read constrains nothing).
  void OnReadAnswer(lin::HistoryRecorder::OpId id, const Result<std::string>& res, Index floor,
                    const std::string& where, const SimKv* kv, const std::string& key);
  // A write's answer, for the history: acknowledged (completed; a CAS swapped or not; a
  // value it set noted) and its index returned; refused in a way that promises it was
  // never applied (discarded); else unknown. 0 unless acknowledged.
  Index OnWriteAnswer(lin::HistoryRecorder::OpId id, lin::OpKind kind, const std::string& value,
                      const std::string& tag, const Result<std::string>& res);
  // At the end: every acknowledged write is in one of `logs` (what was applied, by
  // index), and the history is linearizable.
  void FinalChecks(const std::vector<const std::map<Index, std::pair<Term, std::string>>*>& logs);

  const bool trace_;
  const std::uint64_t max_steps_;
  SimWorld world_;
  SimNetwork net_;
  NodeSimResult res_;
  Clock::time_point start_ = world_.Now();
  bool faults_on_ = false;  // the faults phase runs

  // Clients.
  lin::HistoryRecorder history_;
  lin::Tick lin_clock_ = 0;
  std::uint64_t next_op_ = 1;
  // Values of acknowledged writes, which must be in the committed log at the end.
  std::set<std::string> acked_values_;
  // The log index of each write command, by its tag.
  std::map<std::string, Index> tag_index_;
};

class Sim final : public SimRun {
 public:
  explicit Sim(const NodeSimOptions& o) : SimRun(o.seed, o.trace, o.max_steps), o_(o) {
    res_.mix = o.swarm ? DrawFaultMix(world_.rng()) : o.mix;
    const int n = o.voters + o.spares;
    for (int i = 0; i < n; ++i) {
      auto p = std::make_unique<Proc>();
      p->slot = i;
      p->info.name = fmt::format("n{}", i);
      p->info.id = NodeIdFromName(p->info.name);
      p->info.raft_addr = fmt::format("n{}:4000", i);
      if (o.trace) p->logger = std::make_unique<TraceLogger>(&world_, p->info.name);
      p->disk = std::make_unique<SimDisk>(&world_.rng());
      // Half the seeds tear unsynced writes with garbage, not only short (drawn apart
      // from the run's Rng, so that a seed's schedule does not depend on it).
      p->disk->options().tear_with_garbage = Rng(o.seed ^ 0x7ea5u).Chance(0.5);
      procs_.push_back(std::move(p));
    }
    net_.SetSendObserver([this](int slot, const Message& m) {
      if (m.type == MessageType::kPreVote || m.type == MessageType::kPreVoteResponse) return;
      Term& t = max_term_sent_[slot];
      if (m.term > t) t = m.term;
    });
    // Per-run settings drawn from the seed: small snapshots and chunks, so that
    // compaction, snapshot streaming and restores happen all the time.
    snapshot_entries_ = static_cast<std::uint64_t>(world_.rng().Range(5, 60));
    snapshot_trailing_ = static_cast<std::uint64_t>(world_.rng().Range(0, 20));
    chunk_bytes_ = static_cast<std::uint32_t>(world_.rng().Range(16, 600));
    segment_bytes_ = static_cast<std::uint64_t>(world_.rng().Range(512, 16384));
    // The log kept for followers catching up (issue 16): none in three runs of four, so
    // that lagging followers keep being sent snapshots; a few entries' worth in the rest.
    // Derived, not drawn, so that every seed's run stays what it was.
    catchup_bytes_ = snapshot_trailing_ % 4 == 3 ? segment_bytes_ : 0;
  }

  ~Sim() override {
    finished_ = true;
    for (auto& p : procs_) p->node.reset();
  }

  NodeSimResult Run();

 private:
  // Processes.
  NodeOptions OptionsFor(const Proc& p, bool bootstrap) const;
  bool StartProc(Proc& p, bool bootstrap);
  void CrashProc(Proc& p);
  void StopProc(Proc& p);
  void ScheduleRestart(Proc& p, milliseconds after);
  Proc* Leader();
  Proc* RandomUp();
  std::vector<Proc*> MembersUp();

  // Checks.
  void OnApplied(int slot, const Entry& e);
  void CheckStep() override;

  // Clients.
  void ClientLoop(int client) override;

  // Faults.
  void FaultLoop() override;
  void OperatorLoop() override;
  void Membership();
  void Heal();

  // Phases.
  bool Setup();
  bool HealAndVerify() override;

  const NodeSimOptions o_;
  std::vector<std::unique_ptr<Proc>> procs_;
  std::uint64_t snapshot_entries_ = 20, snapshot_trailing_ = 5, catchup_bytes_ = 0;
  std::uint32_t chunk_bytes_ = 128;
  std::uint64_t segment_bytes_ = 4096;
  bool finished_ = false;
  bool membership_busy_ = false;

  // State machine safety: what was first applied at each index, anywhere.
  std::map<Index, std::pair<Term, std::string>> applied_;
  // Election safety: the leader seen in each term.
  std::map<Term, NodeId> leaders_;
  // Durability, per slot, over all its incarnations: the highest term its messages
  // carried (pre-votes aside: they carry a term not yet taken) and the highest index its
  // state machine applied. A restart must recover at least both (docs/runtime.md: nothing
  // that depends on a term leaves before it is durable; nothing is applied before it is
  // durable here).
  std::map<int, Term> max_term_sent_;
  std::map<int, Index> max_applied_;

  // The highest index of a write acknowledged so far: a read invoked after that
  // acknowledgement must get a read index at least as high.
  Index max_acked_index_ = 0;
  std::map<int, int> reads_in_flight_;  // by slot
};

}  // namespace raft::nodesim::internal
