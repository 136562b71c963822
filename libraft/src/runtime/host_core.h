// HostCore: the pure part of a host of many Raft groups (docs/multi-raft.md, "The
// host"). It holds the groups' cores by group id, routes what arrives from a peer
// process to its group, coalesces what the groups send into one output per peer
// process (every heartbeat from here to there in one HostBeat, every heartbeat
// response in one HostBeatAck: wire/group_frames.h), ticks only the awake groups, and
// runs the failure detector that wakes sleeping groups when a process they depend on
// is lost (runtime/process_liveness.h).
//
// Pure, as RawNode is: no sockets, clocks, files or threads. A runtime (the future
// raft::Host) feeds it ticks and decoded frames and does the I/O; tests and benchmarks
// drive it directly (tests/runtime/host_cluster.h). Storage and the durability contract
// stay with the caller: it collects the Ready of every touched group (TakeTouched),
// persists it, and passes the messages to Send in the order raw_node.h requires. The
// coalescing only merges messages that may leave together; it never reorders one
// group's messages to one peer relative to each other within a kind.
//
// Replica ids: within every group the replica on process `p` has node id `p`, so a
// message's `from` and `to` name processes.
//
// Thread safety: none. One owner (the host's io thread).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "raft/config.h"
#include "raft/raw_node.h"
#include "raft/status.h"
#include "raft/storage.h"
#include "runtime/process_liveness.h"
#include "wire/group_frames.h"

namespace raft::runtime {

using wire::GroupId;

struct HostCoreOptions {
  NodeId self = kNoNode;  // this process; its replica's id in every group
  // A peer process not heard from for more than this many ticks is lost (an election
  // timeout: Config::election_ticks of the groups).
  std::int64_t liveness_timeout_ticks = 10;
  // A liveness frame to every peer every this many ticks (a HostBeat that carries beats
  // counts as one). 3 with the 10-tick timeout: a peer is lost only after three frames in
  // a row failed to arrive. Each frame costs about 76 bytes on an Ethernet-less loopback
  // (24 of frame, 52 of TCP/IP headers) plus the acks: at 100 ms ticks, 3 keeps an idle
  // pair of processes under 1 KiB/s on the wire, 1 would not (docs/performance.md,
  // finding 18).
  std::int64_t liveness_interval_ticks = 3;
};

// What one flush sends to one peer process. `beat` is sent when `send_beat` (always
// after a Tick: the liveness frame, carrying whatever beats are queued); `acks` when
// non-empty; `messages` in order.
struct HostOutput {
  NodeId to = kNoNode;
  bool send_beat = false;
  wire::HostBeat beat;
  wire::HostBeatAck acks;
  std::vector<wire::GroupMessage> messages;
};

struct HostCoreCounters {
  std::uint64_t unknown_group_in = 0;   // messages, beats and acks for a group not hosted
  std::uint64_t beats_out = 0;          // heartbeats sent coalesced
  std::uint64_t acks_out = 0;           // heartbeat responses sent coalesced
  std::uint64_t messages_out = 0;       // everything else
  std::uint64_t wakes_by_detector = 0;  // sleeping groups woken for a lost process
  std::uint64_t leaders_lost = 0;       // followers told their leader's connection ended
};

class HostCore {
 public:
  explicit HostCore(HostCoreOptions options);
  ~HostCore();
  HostCore(const HostCore&) = delete;
  HostCore& operator=(const HostCore&) = delete;

  NodeId self() const { return options_.self; }

  // Hosts group `g`: a core made from `config` (its id must be self()) over `storage`
  // (borrowed: it must outlive the group). kInvalidArgument for group 0, another id, a
  // group already hosted, or a config RawNode::Create refuses.
  Status AddGroup(GroupId g, const Config& config, const Storage* storage);
  // Stops hosting `g`; what arrives for it from now on is dropped and counted.
  // kInvalidArgument if not hosted.
  Status RemoveGroup(GroupId g);
  bool HasGroup(GroupId g) const { return groups_.count(g) > 0; }
  std::size_t group_count() const { return groups_.size(); }
  std::size_t awake_count() const { return awake_.size(); }
  std::vector<GroupId> GroupIds() const;

  // Every call into a group's core goes through With, so that the host sees what it
  // changed (asleep or awake, work to collect): With(g, [&](RawNode& n) { ... }).
  // kInvalidArgument if `g` is not hosted (f is not called).
  template <typename F>
  Status With(GroupId g, F&& f) {
    RawNode* core = Find(g);
    if (core == nullptr) return NotHosted(g);
    f(*core);
    Note(g, *core);
    return Status::Ok();
  }
  // Read-only access (status, role); nullptr if not hosted.
  const RawNode* Get(GroupId g) const;

  // The peer processes this host watches and sends a liveness frame every tick: those it
  // shares a group with (the caller knows their addresses).
  void AddPeer(NodeId p);
  void RemovePeer(NodeId p);

  // The transport saw the connection `p` dialed to us end (EOF or error: its process
  // died or the connection was reset; TransportHandler::OnPeerLost). Every follower
  // whose leader is `p` is told (RawNode::ReportLeaderLost: it wakes and campaigns within
  // an election timeout instead of waiting for the detector's timeout first), as
  // raft::Node does for its one group (docs/performance.md, finding 12). O(groups); it
  // happens once per lost connection.
  void PeerLost(NodeId p);

  // One tick: ticks every awake group, then the failure detector (waking the sleeping
  // groups that depend on a process lost), and every liveness_interval_ticks queues a
  // liveness frame to every peer.
  void Tick();

  // From peer process `from` (authenticated by the transport). Each refreshes `from`'s
  // liveness. Not ok: input no honest peer sends (a forged `from`, a message the core
  // refuses); the caller closes the connection. What arrived before the bad item in the
  // same frame has been stepped.
  Status Receive(NodeId from, const wire::GroupMessage& gm);
  Status Receive(NodeId from, const wire::HostBeat& hb);
  Status Receive(NodeId from, const wire::HostBeatAck& ha);

  // The groups whose core had a Ready after an input (With, Tick or Receive) since the
  // last call, in id order. The caller handles each one's Ready through With; one that
  // has none any more by then is skipped by RawNode::HasReady.
  std::vector<GroupId> TakeTouched();
  // The groups that fell asleep or woke up since the last call, in id order (for a
  // runtime's status; a group that did both is listed once).
  std::vector<GroupId> TakeWokeOrSlept();

  // Queues messages of group `g` (a Ready's, in the order the durability contract
  // allows). Heartbeats and their responses are coalesced per peer process.
  void Send(GroupId g, std::vector<Message> msgs);

  // Everything queued, one output per peer process with something to send, by id.
  std::vector<HostOutput> TakeOutput();

  // Peers lost at the last Tick and not heard from since.
  const std::set<NodeId>& lost() const { return lost_; }
  const HostCoreCounters& counters() const { return counters_; }

 private:
  RawNode* Find(GroupId g);
  Status NotHosted(GroupId g) const;
  // After any input to g's core: track whether it is awake and that it was touched;
  // a core that just fell asleep while a process it depends on is lost is woken again.
  void Note(GroupId g, RawNode& core);
  Status StepInto(GroupId g, const Message& m);
  void Heard(NodeId from);
  HostOutput& Out(NodeId to);

  struct Group;
  HostCoreOptions options_;
  std::map<GroupId, std::unique_ptr<Group>> groups_;
  std::set<GroupId> awake_;
  std::set<GroupId> touched_;
  std::set<GroupId> woke_or_slept_;
  std::set<NodeId> peers_;
  std::map<NodeId, HostOutput> out_;
  ProcessLiveness liveness_;
  std::set<NodeId> lost_;
  std::int64_t now_ = 0;  // ticks
  HostCoreCounters counters_;
};

}  // namespace raft::runtime
