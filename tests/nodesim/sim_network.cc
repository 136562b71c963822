#include "sim_network.h"

#include <algorithm>

#include "base/assert.h"
#include "wire/frame.h"
#include "wire/group_frames.h"
#include "wire/handshake.h"
#include "wire/message_codec.h"
#include "wire/snapshot_chunk.h"

namespace raft::nodesim {
namespace {
constexpr int kBackoffMinMs = 50;
constexpr int kBackoffMaxMs = 2000;
using std::chrono::microseconds;
}  // namespace

std::string ToString(const SimNetworkStats& s) {
  std::string out;
  auto add = [&](const char* name, std::uint64_t v) {
    if (!out.empty()) out += ' ';
    out += name;
    out += '=';
    out += std::to_string(v);
  };
  add("sent", s.frames_sent);
  add("delivered", s.frames_delivered);
  add("dropped", s.frames_dropped);
  add("duplicated", s.frames_duplicated);
  add("reordered", s.frames_reordered);
  add("corrupted", s.frames_corrupted);
  add("undecodable", s.frames_undecodable);
  add("unsendable", s.messages_unsendable);
  add("connects", s.connects);
  add("refused", s.connects_refused);
  add("cut", s.connections_cut);
  add("unreachable", s.unreachable_reports);
  add("snapshots_started", s.snapshot_streams_started);
  add("snapshots_completed", s.snapshot_streams_completed);
  add("snapshots_failed", s.snapshot_streams_failed);
  return out;
}

// ---- SimNetwork ----

SimNetwork::SimNetwork(SimWorld* world) : world_(world) {}

SimNetwork::~SimNetwork() {
  // Transports still alive become inert: their Stop (and destructor) no longer reach us.
  for (auto& [id, t] : transports_) {
    t->stopped_ = true;
    t->peers_.clear();
    t->inbound_.clear();
  }
}

std::unique_ptr<SimTransport> SimNetwork::NewTransport(int slot, std::uint64_t incarnation,
                                                       const runtime::TransportOptions& options,
                                                       runtime::TransportHandler* handler,
                                                       runtime::SnapshotStore* snapshots) {
  std::unique_ptr<SimTransport> t(
      new SimTransport(this, slot, incarnation, options, handler, snapshots));
  t->id_ = Register(t.get());
  return t;
}

std::uint64_t SimNetwork::Register(SimTransport* t) {
  std::uint64_t id = next_transport_id_++;
  transports_[id] = t;
  return id;
}

Status SimNetwork::Bind(SimTransport* t) {
  std::vector<std::string> addrs;
  if (!t->options_.listen_addr.empty()) addrs.push_back(t->options_.listen_addr);
  if (!t->options_.self_addr.empty() && t->options_.self_addr != t->options_.listen_addr)
    addrs.push_back(t->options_.self_addr);
  if (addrs.empty()) return Status(ErrorCode::kIOError, "cannot listen: no address");
  for (const auto& a : addrs) {
    auto it = addrs_.find(a);
    if (it != addrs_.end() && it->second != t->id_ && Live(it->second) != nullptr)
      return Status(ErrorCode::kIOError, "cannot listen on " + a + ": address in use");
  }
  for (const auto& a : addrs) addrs_[a] = t->id_;
  return Status::Ok();
}

void SimNetwork::Unregister(SimTransport* t) {
  transports_.erase(t->id_);
  for (auto it = addrs_.begin(); it != addrs_.end();)
    it = it->second == t->id_ ? addrs_.erase(it) : std::next(it);
  std::vector<std::uint64_t> ended;
  for (const auto& [id, c] : conns_)
    if (c.from == t->id_ || c.to == t->id_) ended.push_back(id);
  for (auto id : ended) EndConn(id);  // t is no longer live: only the other ends hear of it
  for (auto& [id, p] : t->peers_) {
    p.snap.reset();
    p.conn = 0;
  }
  t->inbound_.clear();  // abandons partial receives
}

SimTransport* SimNetwork::Live(std::uint64_t transport_id) const {
  auto it = transports_.find(transport_id);
  if (it == transports_.end()) return nullptr;
  SimTransport* t = it->second;
  // A process killed in the world without Crash() is dead all the same.
  if (world_->Incarnation(t->slot_) != t->incarnation_) return nullptr;
  return t;
}

void SimNetwork::PostTo(std::uint64_t transport_id, std::function<void(SimTransport*)> fn) {
  SimTransport* t = Live(transport_id);
  if (t == nullptr) return;
  world_->Post(t->slot_, t->incarnation_, Lane::kIo, [this, transport_id, fn = std::move(fn)] {
    if (SimTransport* live = Live(transport_id)) fn(live);
  });
}

void SimNetwork::Crash(int slot) {
  std::vector<SimTransport*> dead;
  for (const auto& [id, t] : transports_)
    if (t->slot_ == slot) dead.push_back(t);
  for (SimTransport* t : dead) {
    t->stopped_ = true;
    Unregister(t);
  }
}

int SimNetwork::GroupOf(int slot) const {
  auto it = group_.find(slot);
  return it == group_.end() ? -1 : it->second;
}

bool SimNetwork::Reachable(int a, int b) const { return GroupOf(a) == GroupOf(b); }

void SimNetwork::SetPartition(const std::vector<std::vector<int>>& groups) {
  group_.clear();
  for (std::size_t g = 0; g < groups.size(); ++g)
    for (int slot : groups[g]) group_[slot] = static_cast<int>(g);
  std::vector<std::uint64_t> ended;
  for (const auto& [id, c] : conns_)
    if (!Reachable(c.from_slot, c.to_slot)) ended.push_back(id);
  for (auto id : ended) EndConn(id);
}

void SimNetwork::Isolate(int slot) { SetPartition({{slot}}); }

void SimNetwork::Heal() { group_.clear(); }

void SimNetwork::Cut(int a, int b) {
  std::vector<std::uint64_t> ended;
  for (const auto& [id, c] : conns_)
    if ((c.from_slot == a && c.to_slot == b) || (c.from_slot == b && c.to_slot == a))
      ended.push_back(id);
  for (auto id : ended) EndConn(id);
}

std::uint64_t SimNetwork::Connect(SimTransport* from, NodeId peer, const std::string& addr) {
  auto it = addrs_.find(addr);
  SimTransport* to = it == addrs_.end() ? nullptr : Live(it->second);
  // Refused as the real handshake would refuse it: nobody there, ourselves, another node
  // than the one dialed, another cluster or secret.
  if (to == nullptr || to == from || !Reachable(from->slot_, to->slot_) ||
      to->options_.self != peer || to->options_.host != from->options_.host ||
      to->options_.cluster_id != from->options_.cluster_id ||
      to->options_.cluster_secret != from->options_.cluster_secret) {
    ++stats_.connects_refused;
    return 0;
  }
  std::uint64_t id = next_conn_id_++;
  Conn c;
  c.from = from->id_;
  c.to = to->id_;
  c.from_slot = from->slot_;
  c.to_slot = to->slot_;
  c.peer = peer;
  conns_[id] = c;
  to->inbound_[id] = SimTransport::Inbound{};
  ++stats_.connects;
  // The real handshake goes first on every connection; its arrival is what tells the
  // listener who dialed (OnPeerAddress).
  wire::Handshake hs;
  hs.from = from->options_.self;
  hs.to = peer;
  hs.cluster_id = from->options_.cluster_id;
  hs.address = from->options_.self_addr;
  auto payload = wire::EncodeHandshake(hs);
  RAFT_ASSERT(payload.ok(), "cannot encode a handshake");
  auto frame = wire::EncodeFrame(wire::FrameType::kHandshake, *payload);
  RAFT_ASSERT(frame.ok(), "cannot frame a handshake");
  Transmit(id, Dir::kForward, std::move(frame).value(), /*raft_message=*/false);
  return id;
}

void SimNetwork::EndConn(std::uint64_t conn_id) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  Conn c = it->second;
  conns_.erase(it);
  ++stats_.connections_cut;
  if (SimTransport* from = Live(c.from))
    from->OutboundEnded(c.peer, conn_id, c.in_flight > 0 || c.lost > 0);
  if (SimTransport* to = Live(c.to)) to->InboundEnded(conn_id);
}

microseconds SimNetwork::Delay() {
  Rng& rng = world_->rng();
  auto d = microseconds(rng.Range(faults_.delay_min.count(), faults_.delay_max.count()));
  if (faults_.extra_delay_max.count() > 0)
    d += microseconds(rng.Range(0, faults_.extra_delay_max.count()));
  return d;
}

void SimNetwork::Transmit(std::uint64_t conn_id, Dir dir, std::string frame, bool raft_message) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) {
    ++stats_.frames_dropped;
    return;
  }
  Conn& c = it->second;
  Rng& rng = world_->rng();
  ++stats_.frames_sent;
  if (c.broken) {  // written into a connection that has failed but not yet been noticed
    ++c.lost;
    ++stats_.frames_dropped;
    return;
  }
  if (rng.Chance(faults_.cut_probability)) {
    // The connection breaks now; the ends learn it at the next event (never inside the
    // transport call that is sending this frame).
    c.broken = true;
    ++c.lost;
    ++stats_.frames_dropped;
    world_->After(microseconds(0), [this, conn_id] { EndConn(conn_id); });
    return;
  }
  bool damaged = false;
  if (raft_message) {
    if (rng.Chance(faults_.drop_probability)) {
      ++stats_.frames_dropped;
      return;
    }
    if (rng.Chance(faults_.corrupt_probability) && !frame.empty()) {
      frame[rng.Uniform(frame.size())] ^= static_cast<char>(1 + rng.Uniform(255));
      ++stats_.frames_corrupted;
      damaged = true;
    }
  }
  const int d = static_cast<int>(dir);
  const auto now = world_->Now();
  auto held_back = [&] {
    return std::max(now + Delay(), c.last_arrival[d]) +
           microseconds(rng.Range(1, std::max<std::int64_t>(1, faults_.reorder_delay_max.count())));
  };
  if (raft_message && rng.Chance(faults_.duplicate_probability)) {
    ++stats_.frames_duplicated;
    Schedule(conn_id, dir, frame, damaged, held_back());
  }
  if (raft_message && rng.Chance(faults_.reorder_probability)) {
    ++stats_.frames_reordered;
    Schedule(conn_id, dir, std::move(frame), damaged, held_back());  // later frames may overtake it
    return;
  }
  auto at = std::max(now + Delay(), c.last_arrival[d]);
  c.last_arrival[d] = at;
  Schedule(conn_id, dir, std::move(frame), damaged, at);
}

void SimNetwork::Schedule(std::uint64_t conn_id, Dir dir, std::string frame, bool damaged,
                          Clock::time_point at) {
  if (dir == Dir::kForward) ++conns_.at(conn_id).in_flight;
  world_->At(at, [this, conn_id, dir, damaged, frame = std::move(frame)] {
    Arrive(conn_id, dir, frame, damaged);
  });
}

void SimNetwork::Arrive(std::uint64_t conn_id, Dir dir, std::string frame, bool damaged) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end() || it->second.broken) {
    ++stats_.frames_dropped;
    return;
  }
  Conn& c = it->second;
  if (dir == Dir::kForward) --c.in_flight;
  std::uint64_t receiver = dir == Dir::kForward ? c.to : c.from;
  if (Live(receiver) == nullptr) {
    ++stats_.frames_dropped;
    return;
  }
  // Handed to the receiver's io lane; the connection may still end before it runs.
  PostTo(receiver, [this, conn_id, dir, damaged, frame = std::move(frame)](SimTransport* t) {
    auto cit = conns_.find(conn_id);
    if (cit == conns_.end() || cit->second.broken) {
      ++stats_.frames_dropped;
      return;
    }
    ++stats_.frames_delivered;
    if (dir == Dir::kForward) {
      t->HandleForward(conn_id, frame, damaged);
    } else {
      t->HandleAck(cit->second.peer, conn_id, frame);
    }
  });
}

// ---- SimTransport ----

SimTransport::SimTransport(SimNetwork* net, int slot, std::uint64_t incarnation,
                           runtime::TransportOptions options, runtime::TransportHandler* handler,
                           runtime::SnapshotStore* snapshots)
    : net_(net),
      slot_(slot),
      incarnation_(incarnation),
      options_(std::move(options)),
      handler_(handler),
      snapshots_(snapshots) {}

SimTransport::~SimTransport() { Stop(); }

void SimTransport::Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const {
  if (options_.logger && options_.logger->Enabled(level))
    options_.logger->Log(level, "transport", msg, fields);
}

Status SimTransport::Listen() {
  if (stopped_) return Status(ErrorCode::kIOError, "cannot listen: transport stopped");
  return net_->Bind(this);
}

void SimTransport::SetPeerAddress(NodeId id, const std::string& addr) {
  if (id == options_.self || stopped_) return;
  auto it = peers_.find(id);
  if (it == peers_.end()) {
    peers_[id].addr = addr;
    return;
  }
  if (it->second.addr == addr) return;
  it->second.addr = addr;
  // As PeerConn::SetAddress: the connection to the old address fails.
  if (it->second.conn != 0) net_->EndConn(it->second.conn);
}

std::vector<NodeId> SimTransport::PeerIds() const {
  std::vector<NodeId> ids;
  for (const auto& [id, p] : peers_) ids.push_back(id);
  return ids;
}

void SimTransport::RemovePeer(NodeId id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  const std::uint64_t conn = it->second.conn;
  peers_.erase(it);  // drops a snapshot stream to it, as PeerConn::Close does
  if (conn != 0) net_->EndConn(conn);
}

void SimTransport::Stop() {
  if (stopped_) return;
  stopped_ = true;
  net_->Unregister(this);
}

void SimTransport::ReportUnreachable(NodeId peer) {
  ++net_->stats_.unreachable_reports;
  Post([peer](SimTransport* t) { t->handler_->OnUnreachable(peer); });
}

void SimTransport::EnterBackoff(Peer& p) {
  p.conn = 0;
  p.backoff_until = net_->world_->Now() + std::chrono::milliseconds(p.backoff_ms);
  p.backoff_ms = std::min(p.backoff_ms * 2, kBackoffMaxMs);
}

void SimTransport::PeerIsUp(NodeId peer) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  it->second.backoff_ms = kBackoffMinMs;
  it->second.backoff_until = Clock::time_point{};
}

std::uint64_t SimTransport::Connection(NodeId peer, bool report_unreachable) {
  Peer& p = peers_.at(peer);
  if (p.conn != 0) {
    if (net_->ConnAlive(p.conn)) return p.conn;
    p.conn = 0;
  }
  if (net_->world_->Now() < p.backoff_until) {
    if (report_unreachable) ReportUnreachable(peer);
    return 0;
  }
  std::uint64_t conn = net_->Connect(this, peer, p.addr);
  if (conn == 0) {
    Log(LogLevel::kWarn, "peer unreachable", {{"peer", std::to_string(peer)}, {"addr", p.addr}});
    EnterBackoff(p);
    if (report_unreachable) ReportUnreachable(peer);
    return 0;
  }
  p.conn = conn;
  p.backoff_ms = kBackoffMinMs;
  return conn;
}

void SimTransport::Send(Message m) {
  if (stopped_) return;
  if (net_->send_observer_) net_->send_observer_(slot_, m);
  if (peers_.count(m.to) == 0) {
    ReportUnreachable(m.to);
    if (m.type == MessageType::kSnapshot) {
      ++net_->stats_.snapshot_streams_started;
      ++net_->stats_.snapshot_streams_failed;
      ReportSent(m.to, 0, false);
    }
    return;
  }
  if (m.type == MessageType::kSnapshot) {
    StartSnapshot(m, 0, snapshots_);
    return;
  }
  auto payload = wire::EncodeMessage(m);
  auto frame = payload.ok() ? wire::EncodeFrame(wire::FrameType::kRaftMessage, *payload,
                                                options_.frame_bytes_max)
                            : Result<std::string>(payload.status());
  if (!frame.ok()) {
    // As PeerConn: a message that cannot be framed is dropped and the peer reported
    // unreachable, so the core does not wait for it.
    ++net_->stats_.messages_unsendable;
    Log(LogLevel::kError, "cannot send message",
        {{"peer", std::to_string(m.to)},
         {"type", MessageTypeName(m.type)},
         {"error", frame.status().ToString()}});
    ReportUnreachable(m.to);
    return;
  }
  std::uint64_t conn = Connection(m.to, /*report_unreachable=*/true);
  if (conn == 0) return;
  net_->Transmit(conn, SimNetwork::Dir::kForward, std::move(frame).value(),
                 /*raft_message=*/true);
}

void SimTransport::SendGroupFrame(NodeId peer, wire::FrameType type, const std::string& payload) {
  if (stopped_) return;
  RAFT_ASSERT(options_.host, "a group frame on a transport that is not a host's");
  if (peers_.count(peer) == 0) {
    ReportUnreachable(peer);
    return;
  }
  auto frame =
      wire::EncodeFrame(type, payload, options_.frame_bytes_max, wire::kProtocolVersionHost);
  if (!frame.ok()) {
    ++net_->stats_.messages_unsendable;
    Log(LogLevel::kError, "cannot send a group frame",
        {{"peer", std::to_string(peer)}, {"error", frame.status().ToString()}});
    ReportUnreachable(peer);
    return;
  }
  std::uint64_t conn = Connection(peer, /*report_unreachable=*/true);
  if (conn == 0) return;
  net_->Transmit(conn, SimNetwork::Dir::kForward, std::move(frame).value(),
                 /*raft_message=*/true);
}

void SimTransport::SendGroupSnapshot(std::uint64_t group, Message m,
                                     runtime::SnapshotStore* store) {
  if (stopped_) return;
  RAFT_ASSERT(options_.host, "a group snapshot on a transport that is not a host's");
  if (peers_.count(m.to) == 0) {
    ReportUnreachable(m.to);
    ++net_->stats_.snapshot_streams_started;
    ++net_->stats_.snapshot_streams_failed;
    ReportSent(m.to, group, false);
    return;
  }
  StartSnapshot(m, group, store);
}

void SimTransport::ReportSent(NodeId peer, std::uint64_t group, bool ok) {
  Post([peer, group, ok](SimTransport* t) {
    if (group != 0) {
      t->handler_->OnGroupSnapshotSent(peer, group, ok);
    } else {
      t->handler_->OnSnapshotSent(peer, ok);
    }
  });
}

void SimTransport::StartSnapshot(const Message& m, std::uint64_t group,
                                 runtime::SnapshotStore* store) {
  Peer& p = peers_.at(m.to);
  // One stream per peer; the core offers again after a failure. As PeerConn, another
  // group's offer fails at once.
  if (p.snap) {
    if (group != p.snap->group) ReportSent(m.to, group, false);
    return;
  }
  ++net_->stats_.snapshot_streams_started;
  auto fail = [&](const std::string& why) {
    Log(LogLevel::kError, "snapshot stream failed",
        {{"peer", std::to_string(m.to)}, {"error", why}});
    ++net_->stats_.snapshot_streams_failed;
    ReportSent(m.to, group, false);
  };
  if (store == nullptr) return fail("no snapshot store");
  auto file = store->OpenView(m.snapshot.index, m.snapshot.term);
  if (!file.ok()) return fail(file.status().ToString());
  const std::uint64_t size = (*file)->size();
  if (size == 0) return fail("empty snapshot file");
  // As PeerConn in backoff or when the dial fails: the stream fails, no unreachable.
  if (Connection(m.to, /*report_unreachable=*/false) == 0) return fail("peer unreachable");
  p.snap = SnapshotSend{m, group, std::move(file).value(), size, 0, 0};
  // The first chunks go out at a later io step, as after a real connect completes.
  Post([peer = m.to](SimTransport* t) { t->PumpSnapshot(peer); });
}

void SimTransport::PumpSnapshot(NodeId peer) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second.snap || it->second.conn == 0) return;
  Peer& p = it->second;
  SnapshotSend& s = *p.snap;
  const std::uint64_t chunk = std::max<std::uint32_t>(1, options_.snapshot_chunk_bytes);
  const std::uint64_t window = chunk * std::max<std::uint32_t>(1, options_.snapshot_window_chunks);
  while (s.sent < s.size && s.sent - s.acked < window) {
    auto n = static_cast<std::size_t>(std::min(chunk, s.size - s.sent));
    auto data = s.file->ReadAt(s.sent, n);  // read as it is sent: the file may be gone by now
    if (!data.ok() || data->size() != n) {
      ++net_->stats_.snapshot_chunks_unreadable;
      Log(LogLevel::kError, "cannot read snapshot chunk",
          {{"peer", std::to_string(peer)},
           {"error", data.ok() ? "short read" : data.status().ToString()}});
      FinishSnapshot(peer, false);
      return;
    }
    wire::SnapshotChunkView fields;
    fields.snapshot_index = s.msg.snapshot.index;
    fields.snapshot_term = s.msg.snapshot.term;
    fields.offset = s.sent;
    fields.last = s.sent + n == s.size;
    // A group's chunk carries its group (frame type 9, version 4); a Node's does not.
    auto frame = wire::EncodeSnapshotChunkFrame(
        fields, n,
        [&](char* out) {
          std::copy(data->begin(), data->end(), out);
          return Status::Ok();
        },
        options_.frame_bytes_max, s.group);
    if (!frame.ok()) {
      Log(LogLevel::kError, "cannot send snapshot chunk",
          {{"peer", std::to_string(peer)}, {"error", frame.status().ToString()}});
      FinishSnapshot(peer, false);
      return;
    }
    net_->Transmit(p.conn, SimNetwork::Dir::kForward, std::move(frame).value(),
                   /*raft_message=*/false);
    s.sent += n;
  }
}

void SimTransport::FinishSnapshot(NodeId peer, bool ok) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second.snap) return;
  const std::uint64_t group = it->second.snap->group;
  it->second.snap.reset();
  ++(ok ? net_->stats_.snapshot_streams_completed : net_->stats_.snapshot_streams_failed);
  ReportSent(peer, group, ok);
}

void SimTransport::OutboundEnded(NodeId peer, std::uint64_t conn_id, bool had_traffic) {
  auto it = peers_.find(peer);
  if (it == peers_.end() || it->second.conn != conn_id) return;
  Log(LogLevel::kWarn, "peer unreachable",
      {{"peer", std::to_string(peer)}, {"reason", "connection ended"}});
  EnterBackoff(it->second);
  FinishSnapshot(peer, false);
  if (had_traffic) ReportUnreachable(peer);
}

void SimTransport::InboundEnded(std::uint64_t conn_id) {
  auto it = inbound_.find(conn_id);
  if (it == inbound_.end()) return;
  bool handshaken = it->second.handshaken;
  NodeId peer = it->second.peer;
  inbound_.erase(it);  // abandons a partial receive, as InboundConn::Close
  if (handshaken) Post([peer](SimTransport* t) { t->handler_->OnPeerLost(peer); });
}

void SimTransport::HandleForward(std::uint64_t conn_id, const std::string& bytes, bool damaged) {
  auto it = inbound_.find(conn_id);
  if (it == inbound_.end()) return;
  Inbound& in = it->second;
  auto refuse = [&](std::string_view why, const std::string& detail) {
    ++net_->stats_.frames_undecodable;
    Log(LogLevel::kWarn, why, {{"peer", std::to_string(in.peer)}, {"error", detail}});
    if (damaged) return;
    SimNetwork* net = net_;  // closed at the next event, not under this call
    net->world_->After(std::chrono::microseconds(0), [net, conn_id] { net->EndConn(conn_id); });
  };
  auto f = wire::DecodeFrame(bytes, options_.frame_bytes_max);
  if (!f.ok()) return refuse("dropping a malformed frame", f.status().message());
  if (!in.handshaken) {
    if (f->type != wire::FrameType::kHandshake) return refuse("dropping a frame", "no handshake");
    auto hs = wire::DecodeHandshake(f->payload);
    if (!hs.ok()) return refuse("dropping a malformed handshake", hs.status().message());
    in.handshaken = true;
    in.peer = hs->from;
    if (!hs->address.empty()) handler_->OnPeerAddress(in.peer, hs->address);
    PeerIsUp(in.peer);
    return;
  }
  const bool group_frame = f->type == wire::FrameType::kGroupMessage ||
                           f->type == wire::FrameType::kGroupSnapshotChunk ||
                           f->type == wire::FrameType::kHostBeat ||
                           f->type == wire::FrameType::kHostBeatAck;
  if (group_frame != options_.host)
    return refuse("dropping a frame", std::string("unexpected ") + wire::FrameTypeName(f->type));
  switch (f->type) {
    case wire::FrameType::kGroupMessage: {
      auto gm = wire::DecodeGroupMessage(f->payload);
      if (!gm.ok()) return refuse("dropping a bad group message", gm.status().message());
      if (gm->message.from != in.peer || gm->message.to != options_.self)
        return refuse("dropping a group message", "forged sender or target");
      if (Status s = handler_->OnGroupMessage(in.peer, std::move(gm).value()); !s.ok())
        return refuse("closing a connection: the host refused a message", s.message());
      return;
    }
    case wire::FrameType::kHostBeat: {
      auto hb = wire::DecodeHostBeat(f->payload);
      if (!hb.ok()) return refuse("dropping a bad host beat", hb.status().message());
      if (Status s = handler_->OnHostBeat(in.peer, std::move(hb).value()); !s.ok())
        return refuse("closing a connection: the host refused a beat", s.message());
      return;
    }
    case wire::FrameType::kHostBeatAck: {
      auto ha = wire::DecodeHostBeatAck(f->payload);
      if (!ha.ok()) return refuse("dropping a bad host beat ack", ha.status().message());
      if (Status s = handler_->OnHostBeatAck(in.peer, std::move(ha).value()); !s.ok())
        return refuse("closing a connection: the host refused a beat ack", s.message());
      return;
    }
    case wire::FrameType::kRaftMessage: {
      auto m = wire::DecodeMessage(f->payload);
      if (!m.ok()) return refuse("dropping a bad message", m.status().message());
      if (m->from != in.peer || m->to != options_.self)
        return refuse("dropping a message", "forged sender or target");
      // As InboundConn: a message the node refuses closes the connection.
      if (Status s = handler_->OnMessage(std::move(m).value()); !s.ok())
        return refuse("closing a connection: the node refused a message", s.message());
      return;
    }
    case wire::FrameType::kSnapshotChunk:
    case wire::FrameType::kGroupSnapshotChunk:
      HandleChunk(conn_id, in, *f);
      return;
    default:
      return refuse("dropping a frame", std::string("unexpected ") + wire::FrameTypeName(f->type));
  }
}

void SimTransport::HandleChunk(std::uint64_t conn_id, Inbound& in, const wire::Frame& f) {
  auto gc = wire::DecodeAnySnapshotChunkView(f.type, f.payload);
  if (!gc.ok()) {  // as InboundConn: the connection closes
    ++net_->stats_.frames_undecodable;
    SimNetwork* net = net_;
    net->world_->After(std::chrono::microseconds(0), [net, conn_id] { net->EndConn(conn_id); });
    return;
  }
  const std::uint64_t group = gc->group;
  const wire::SnapshotChunkView* c = &gc->chunk;
  wire::SnapshotChunkAck ack;
  ack.snapshot_index = c->snapshot_index;
  ack.snapshot_term = c->snapshot_term;
  Status s;
  if (c->offset == 0) {  // as InboundConn: only from the leader, at most snapshot_bytes_max
    in.receiver.reset();
    in.receiver_group = group;
    Result<runtime::SnapshotStore*> store = snapshots_;
    if (group != 0) {
      store = handler_->AcceptGroupSnapshot(in.peer, group);
    } else if (s = handler_->AcceptSnapshot(in.peer); !s.ok()) {
      store = s;
    }
    if (store.ok() && *store == nullptr) store = Status(ErrorCode::kIOError, "no snapshot store");
    auto r = store.ok() ? (*store)->Receive(c->snapshot_index, c->snapshot_term,
                                            options_.snapshot_bytes_max, c->layout)
                        : Result<std::unique_ptr<runtime::SnapshotReceiver>>(store.status());
    if (r.ok()) {
      in.receiver = std::move(r).value();
    } else {
      s = r.status();
    }
  }
  if (s.ok() &&
      (!in.receiver || in.receiver_group != group || in.receiver->index() != c->snapshot_index ||
       in.receiver->term() != c->snapshot_term || in.receiver->layout() != c->layout)) {
    s = Status(ErrorCode::kInvalidArgument, "chunk of an unknown snapshot stream");
  }
  if (s.ok()) s = in.receiver->Write(c->offset, c->data);
  if (s.ok() && c->last) s = in.receiver->Finish();
  if (s.ok()) {
    ack.offset = c->offset + c->data.size();
  } else {
    Log(LogLevel::kError, "snapshot receive failed",
        {{"peer", std::to_string(in.peer)}, {"error", s.ToString()}});
    ack.abort = true;
  }
  if (c->last || !s.ok()) in.receiver.reset();
  auto frame = wire::EncodeAnySnapshotChunkAckFrame(group, ack, options_.frame_bytes_max);
  RAFT_ASSERT(frame.ok(), "cannot encode a chunk ack");
  net_->Transmit(conn_id, SimNetwork::Dir::kBack, std::move(frame).value(),
                 /*raft_message=*/false);
}

void SimTransport::HandleAck(NodeId peer, std::uint64_t conn_id, const std::string& bytes) {
  auto f = wire::DecodeFrame(bytes, options_.frame_bytes_max);
  if (!f.ok() || (f->type != wire::FrameType::kSnapshotChunkAck &&
                  f->type != wire::FrameType::kGroupSnapshotChunkAck)) {
    ++net_->stats_.frames_undecodable;
    return;
  }
  auto ga = wire::DecodeAnySnapshotChunkAck(f->type, f->payload);
  auto it = peers_.find(peer);
  if (!ga.ok() || it == peers_.end() || it->second.conn != conn_id || !it->second.snap ||
      ga->group != it->second.snap->group ||
      ga->ack.snapshot_index != it->second.snap->msg.snapshot.index)
    return;
  const wire::SnapshotChunkAck* ack = &ga->ack;
  Peer& p = it->second;
  if (ack->abort) {
    FinishSnapshot(peer, false);
    return;
  }
  p.snap->acked = std::max(p.snap->acked, ack->offset);
  if (p.snap->acked < p.snap->size) {
    PumpSnapshot(peer);
    return;
  }
  // The whole file is durable at the peer: now the message that makes it install.
  const std::uint64_t g = p.snap->group;
  auto payload =
      g != 0 ? wire::EncodeGroupMessage(g, p.snap->msg) : wire::EncodeMessage(p.snap->msg);
  auto frame = payload.ok()
                   ? wire::EncodeFrame(
                         g != 0 ? wire::FrameType::kGroupMessage : wire::FrameType::kRaftMessage,
                         *payload, options_.frame_bytes_max,
                         g != 0 ? wire::kProtocolVersionHost : wire::kProtocolVersion)
                   : Result<std::string>(payload.status());
  if (!frame.ok()) {
    Log(LogLevel::kError, "cannot send the snapshot's install message",
        {{"peer", std::to_string(peer)}, {"error", frame.status().ToString()}});
    FinishSnapshot(peer, false);
    return;
  }
  net_->Transmit(conn_id, SimNetwork::Dir::kForward, std::move(frame).value(),
                 /*raft_message=*/true);
  FinishSnapshot(peer, true);
}

}  // namespace raft::nodesim
