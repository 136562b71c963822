// SimNode: one simulated server. Two halves with different lifetimes:
//   durable  storage (a raft::MemoryStorage) + snapshot_data: what fsync made durable.
//            Survives crashes; only CompleteWrite (a finished fsync), a torn write at
//            crash, and local snapshot/compaction change it.
//   volatile the RawNode, the write in flight, the KV state machine, received snapshot
//            bytes. Lost at crash; rebuilt at restart from the durable half.
//
// State machine durability (a deliberate choice): the KV map is NOT persisted on its own.
// It is durable only as the snapshot bytes next to the storage's snapshot; on restart the
// node restores the snapshot and the core re-delivers the committed entries after it
// (Config.applied = the snapshot's index). So re-application after a crash is exercised on
// every restart, and every re-applied entry is checked against what was applied before.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kv_machine.h"
#include "raft/raw_node.h"
#include "raft/storage.h"

namespace raft::sim {

// A Ready handed to the simulated disk: durable once the fsync completes at sync_tick.
struct PendingWrite {
  Ready rd;
  std::string snapshot_data;  // bytes of rd.snapshot, if set
  std::int64_t sync_tick = 0;
  Index applied_early_through = 0;  // rd's committed entries up to here are applied already
};

struct SimNode {
  NodeId id = kNoNode;
  bool started = false;  // has durable state (a founding member, or added later)
  bool retired = false;  // learned it was removed and shut down for good

  // --- durable ---
  std::unique_ptr<MemoryStorage> storage;
  std::string snapshot_data;  // state machine bytes of storage->Snapshot()

  // --- volatile ---
  std::unique_ptr<RawNode> raw;  // null while crashed (or retired / not started)
  std::optional<PendingWrite> pending;
  KvMachine kv;
  Index applied = 0;
  Index reported_commit = 0;  // newest commit index a Ready's hard state carried
  ConfState applied_conf;     // membership as of `applied` (for local snapshots)
  std::map<Index, std::string> received_snapshots;  // bytes of kSnapshot messages stepped
  std::vector<ReadState> read_states;               // every read point handed out, for scenarios
  std::int64_t paused_until = 0;                    // paused while now < paused_until
  std::uint64_t incarnation = 0;

  // --- simulated disk speed: an fsync takes [min, max] ticks ---
  int disk_delay_min_ticks = 0;
  int disk_delay_max_ticks = 0;

  // --- checker bookkeeping about the durable state (survives crashes) ---
  Term ack_term = 0;        // term of the newest append acknowledgement sent
  Index ack_index = 0;      // highest index acknowledged in ack_term
  Term ack_entry_term = 0;  // term of the entry at ack_index (0: inside a snapshot)
  HardState durable_seen;   // last durable hard state (terms and commits never go back)

  bool running() const { return raw != nullptr; }
  HardState durable_hs() const { return storage->InitialHardState(); }
};

}  // namespace raft::sim
