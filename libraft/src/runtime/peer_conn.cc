#include "runtime/peer_conn.h"

#include <fmt/format.h>

#include "base/assert.h"
#include "runtime/peer_auth.h"
#include "wire/group_frames.h"
#include "wire/handshake.h"
#include "wire/message_codec.h"
#include "wire/snapshot_chunk.h"

namespace raft::runtime {
namespace {
constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr int kBackoffMinMs = 50;
constexpr int kBackoffMaxMs = 2000;
// A listener that accepts but does not answer our Handshake in this time is failed.
constexpr auto kHandshakeTimeout = std::chrono::seconds(5);
}  // namespace

PeerConn::PeerConn(Transport* t, asio::io_context& io, NodeId id, std::string addr)
    : t_(t),
      io_(io),
      id_(id),
      addr_(std::move(addr)),
      stream_(t->NewStream()),
      backoff_timer_(io),
      handshake_timer_(io),
      resolver_(io) {
  decoder_.emplace(t->options().frame_bytes_max, wire::kFirstFramePayloadBytesMax);
}

void PeerConn::CheckInvariants() const {
  if (closed_) return;
  if (write_active_) RAFT_ASSERT(state_ == State::kReady, "a write outside kReady");
  if (!write_active_) RAFT_ASSERT(writing_.empty(), "write buffers without a write");
  if (state_ == State::kIdle || state_ == State::kBackoff) {
    RAFT_ASSERT(queue_.empty(), "frames queued without a connection");
    RAFT_ASSERT(writing_.empty());
  }
  if (queue_.empty() && writing_.empty()) RAFT_ASSERT_EQ(queued_bytes_, std::uint64_t{0});
  if (snap_) RAFT_ASSERT_LE(snap_->sent, snap_->size);
}

void PeerConn::SetAddress(const std::string& addr) {
  t_->CheckThread();
  if (addr == addr_) return;
  addr_ = addr;
  if (state_ != State::kIdle) Fail("peer address changed");
  CheckInvariants();
}

void PeerConn::PeerIsUp() {
  t_->CheckThread();
  backoff_ms_ = kBackoffMinMs;
  if (state_ != State::kBackoff) return;
  backoff_timer_.cancel();
  state_ = State::kIdle;
  CheckInvariants();
}

void PeerConn::SendMessage(const Message& m) {
  t_->CheckThread();
  if (closed_) return;
  if (m.type == MessageType::kSnapshot) {
    StartSnapshot(m, 0, t_->snapshots());
    CheckInvariants();
    return;
  }
  Result<std::string> payload = wire::EncodeMessage(m);
  QueueFrame(wire::FrameType::kRaftMessage, payload, MessageTypeName(m.type));
}

void PeerConn::SendPayload(wire::FrameType type, const std::string& payload) {
  t_->CheckThread();
  if (closed_) return;
  QueueFrame(type, payload, wire::FrameTypeName(type));
}

void PeerConn::SendGroupSnapshot(std::uint64_t group, const Message& m, SnapshotStore* store) {
  t_->CheckThread();
  if (closed_) return;
  StartSnapshot(m, group, store);
  CheckInvariants();
}

void PeerConn::QueueFrame(wire::FrameType type, const Result<std::string>& payload,
                          const char* what) {
  if (state_ == State::kBackoff) {
    // The peer was unreachable moments ago: drop rather than queue stale traffic.
    t_->handler()->OnUnreachable(id_);
    return;
  }
  Status s = payload.ok() ? Enqueue(type, *payload, /*force=*/false) : payload.status();
  if (!s.ok()) {
    // Dropped. A queue over its cap is an unreachable peer; a message that cannot be
    // framed is our bug or a limit set too low, and the core must not wait for it either.
    if (s.code() != ErrorCode::kBusy) {
      t_->Log(LogLevel::kError, "cannot send message",
              {{"peer", t_->PeerLabel(id_)}, {"type", what}, {"error", s.ToString()}});
    }
    t_->handler()->OnUnreachable(id_);
    return;
  }
  if (state_ == State::kIdle) Connect();
  StartWrite();
  CheckInvariants();
}

Status PeerConn::Enqueue(wire::FrameType type, const std::string& payload, bool force) {
  // Framed with our highest version; the negotiated one replaces it when written
  // (wire::SetFrameVersion), as the connection may not have negotiated yet.
  auto frame = wire::EncodeFrame(type, payload, t_->options().frame_bytes_max, t_->version_max());
  if (!frame.ok()) return frame.status();
  return EnqueueFrame(std::move(frame).value(), force);
}

Status PeerConn::EnqueueFrame(std::string frame, bool force) {
  if (!force && queued_bytes_ + frame.size() > t_->options().peer_queue_bytes_max)
    return Status(ErrorCode::kBusy, "send queue to peer " + t_->PeerLabel(id_) + " is full");
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  return Status::Ok();
}

void PeerConn::Connect() {
  std::string host;
  std::uint16_t port = 0;
  if (Status s = SplitHostPort(addr_, &host, &port); !s.ok()) {
    Fail(s.message());
    return;
  }
  state_ = State::kConnecting;
  asio::error_code numeric;
  const auto ip = asio::ip::make_address(host, numeric);
  if (!numeric) {
    ConnectTo(asio::ip::tcp::endpoint(ip, port));
    return;
  }
  // A name: resolved by Asio's resolver thread, so a slow or hostile DNS server never
  // stalls the io thread's ticks and heartbeats (security review F-8). Messages queue up
  // meanwhile, as while connecting.
  auto self = shared_from_this();
  resolver_.async_resolve(
      host, std::to_string(port),
      [this, self, g = gen_](asio::error_code ec, asio::ip::tcp::resolver::results_type results) {
        t_->CheckThread();
        if (closed_ || g != gen_ || state_ != State::kConnecting) return;
        if (ec || results.empty()) {
          Fail("resolve " + addr_ + ": " + (ec ? ec.message() : "no address"));
          return;
        }
        ConnectTo(results.begin()->endpoint());
      });
}

void PeerConn::ConnectTo(const asio::ip::tcp::endpoint& ep) {
  auto self = shared_from_this();
  stream_->AsyncConnect(ep, [this, self, g = gen_](asio::error_code ec) {
    t_->CheckThread();
    if (closed_ || g != gen_ || state_ != State::kConnecting) return;
    if (ec) {
      Fail((stream_->tls() ? "connect (TLS): " : "connect: ") + ec.message());
      return;
    }
    asio::error_code ignored;
    stream_->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    auto nonce = MakeHandshakeNonce();
    if (!nonce.ok()) {
      t_->Log(LogLevel::kError, "cannot make a handshake nonce",
              {{"peer", t_->PeerLabel(id_)}, {"error", nonce.status().ToString()}});
      Fail(nonce.status().message());
      return;
    }
    wire::Handshake hs;
    hs.from = t_->options().self;
    hs.to = id_;
    hs.cluster_id = t_->options().cluster_id;
    hs.address = t_->options().self_addr;
    hs.auth = *nonce;
    hs.version_min = t_->version_min();
    hs.version_max = t_->version_max();
    auto payload = wire::EncodeHandshake(hs);
    auto frame = payload.ok() ? wire::EncodeFrame(wire::FrameType::kHandshake, *payload,
                                                  t_->options().frame_bytes_max)
                              : Result<std::string>(payload.status());
    if (!frame.ok()) {
      // Without a handshake the peer would cut the connection: fail it here, loudly.
      t_->Log(LogLevel::kError, "cannot encode our handshake",
              {{"peer", t_->PeerLabel(id_)}, {"error", frame.status().ToString()}});
      Fail("cannot encode the handshake: " + frame.status().message());
      return;
    }
    nonce_ = std::move(nonce).value();
    hello_ = std::move(payload).value();
    hello_frame_ = std::move(frame).value();
    // The Handshake alone: what queued while connecting waits for the listener's proof.
    state_ = State::kHandshaking;
    stream_->AsyncWrite(asio::buffer(hello_frame_),
                        [this, self, g = gen_](asio::error_code e, std::size_t) {
                          t_->CheckThread();
                          if (closed_ || g != gen_ || !e) return;
                          Fail("write: " + e.message());
                        });
    handshake_timer_.expires_after(kHandshakeTimeout);
    handshake_timer_.async_wait([this, self, g = gen_](asio::error_code e) {
      t_->CheckThread();
      if (e || closed_ || g != gen_ || state_ != State::kHandshaking) return;
      Fail("no answer to our handshake in time");
    });
    StartRead();
    CheckInvariants();
  });
}

void PeerConn::HandleAck(const wire::Frame& f) {
  handshake_timer_.cancel();
  auto ack = wire::DecodeHandshakeAck(f.payload);
  if (!ack.ok()) {
    Fail("malformed handshake ack: " + ack.status().message());
    return;
  }
  if (ack->version < t_->version_min() || ack->version > t_->version_max()) {
    Fail(fmt::format("the peer chose protocol version {}, outside ours ({}..{})", ack->version,
                     t_->version_min(), t_->version_max()));
    return;
  }
  if (ack->from != id_) {
    Fail(fmt::format("the listener at {} is node {}, not {}", addr_, ack->from, id_));
    return;
  }
  const std::string& secret = t_->options().cluster_secret;
  const std::string_view auth(ack->auth);
  const std::size_t want = wire::kNonceBytes + (secret.empty() ? 0 : wire::kProofBytes);
  if (auth.size() != want) {
    std::string why;
    if (auth.size() == wire::kNonceBytes + wire::kProofBytes && secret.empty()) {
      why = "the peer proves a cluster secret, but this node has none";
    } else if (auth.size() == wire::kNonceBytes && !secret.empty()) {
      why = "the peer has no cluster secret, but this node requires one";
    } else {
      why = fmt::format("malformed handshake ack auth of {} bytes", auth.size());
    }
    t_->Log(LogLevel::kError, "peer failed authentication",
            {{"peer", t_->PeerLabel(id_)}, {"addr", addr_}, {"reason", why}});
    backoff_ms_ = kBackoffMaxMs;
    Fail("handshake: " + why);
    return;
  }
  const std::string_view listener_nonce = auth.substr(0, wire::kNonceBytes);
  wire::HandshakeFinish fin;
  if (!secret.empty()) {
    auto expected =
        HandshakeProof(secret, wire::kRoleListener, hello_, ack->version, id_, listener_nonce);
    auto ours =
        HandshakeProof(secret, wire::kRoleDialer, hello_, ack->version, id_, listener_nonce);
    if (!expected.ok() || !ours.ok()) {
      Fail("cannot compute handshake proofs: " +
           (expected.ok() ? ours.status() : expected.status()).message());
      return;
    }
    if (!ProofEquals(auth.substr(wire::kNonceBytes), *expected)) {
      t_->Log(LogLevel::kError, "peer failed authentication",
              {{"peer", t_->PeerLabel(id_)},
               {"addr", addr_},
               {"reason", "its cluster secret proof does not match"}});
      backoff_ms_ = kBackoffMaxMs;
      Fail("handshake: the listener's cluster secret proof does not match");
      return;
    }
    fin.proof = std::move(ours).value();
  }
  auto payload = wire::EncodeHandshakeFinish(fin);
  auto frame = payload.ok() ? wire::EncodeFrame(wire::FrameType::kHandshakeFinish, *payload,
                                                t_->options().frame_bytes_max)
                            : Result<std::string>(payload.status());
  if (!frame.ok()) {
    Fail("cannot encode the handshake finish: " + frame.status().message());
    return;
  }
  // First on the wire, ahead of what queued meanwhile; over the cap if need be.
  queued_bytes_ += frame->size();
  queue_.push_front(std::move(frame).value());
  hello_.clear();
  nonce_.clear();
  version_ = ack->version;
  state_ = State::kReady;
  PumpSnapshot();
  StartWrite();
}

void PeerConn::StartWrite() {
  if (write_active_ || state_ != State::kReady || queue_.empty()) return;
  // Coalesce everything queued into one gather write.
  writing_.clear();
  std::vector<asio::const_buffer> bufs;
  while (!queue_.empty()) {
    writing_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    wire::SetFrameVersion(&writing_.back(), version_);
  }
  for (const auto& f : writing_) bufs.emplace_back(asio::buffer(f));
  write_active_ = true;
  auto self = shared_from_this();
  stream_->AsyncWrite(bufs, [this, self, g = gen_](asio::error_code ec, std::size_t) {
    t_->CheckThread();
    if (closed_ || g != gen_) return;  // a connection that already failed
    write_active_ = false;
    for (const auto& f : writing_) queued_bytes_ -= f.size();
    writing_.clear();
    if (ec) {
      Fail("write: " + ec.message());
      return;
    }
    backoff_ms_ = kBackoffMinMs;
    reported_unreachable_ = false;
    PumpSnapshot();
    StartWrite();
    CheckInvariants();
  });
}

void PeerConn::StartRead() {
  read_buf_.resize(kReadChunkBytes);
  auto self = shared_from_this();
  stream_->AsyncReadSome(
      asio::buffer(read_buf_), [this, self, g = gen_](asio::error_code ec, std::size_t n) {
        t_->CheckThread();
        if (closed_ || g != gen_ || (state_ != State::kReady && state_ != State::kHandshaking))
          return;
        if (ec) {
          Fail(ec == asio::error::eof ? "peer closed the connection" : "read: " + ec.message());
          return;
        }
        Status s = decoder_->Feed(std::string_view(read_buf_.data(), n));
        while (auto f = decoder_->Pop()) {
          HandleFrame(std::move(*f));
          if (closed_ || g != gen_ || (state_ != State::kReady && state_ != State::kHandshaking))
            return;
        }
        if (!s.ok()) {
          Fail("bad frame from peer: " + s.message());
          return;
        }
        CheckInvariants();
        StartRead();
      });
}

void PeerConn::HandleFrame(wire::Frame f) {
  switch (f.type) {
    case wire::FrameType::kHandshakeAck:
      if (state_ != State::kHandshaking) {
        Fail("unexpected HandshakeAck");
        return;
      }
      HandleAck(f);
      return;
    case wire::FrameType::kHandshakeReject: {
      auto rej = wire::DecodeHandshakeReject(f.payload);
      std::string why = rej.ok() ? std::string(wire::RejectCodeName(rej->code)) + ": " + rej->reason
                                 : "malformed reject";
      if (rej.ok() && rej->code == wire::RejectCode::kVersionUnsupported) {
        why += fmt::format(" (this node speaks protocol versions {}..{}; upgrade every node)",
                           t_->version_min(), t_->version_max());
      }
      t_->Log(LogLevel::kError, "peer refused our handshake",
              {{"peer", t_->PeerLabel(id_)}, {"addr", addr_}, {"reason", why}});
      backoff_ms_ = kBackoffMaxMs;
      Fail("handshake refused: " + why);
      return;
    }
    case wire::FrameType::kSnapshotChunkAck:
    case wire::FrameType::kGroupSnapshotChunkAck:
      if (state_ != State::kReady) break;
      HandleChunkAck(f);
      return;
    default:
      break;
  }
  Fail(std::string("unexpected frame ") + wire::FrameTypeName(f.type));
}

void PeerConn::HandleChunkAck(const wire::Frame& f) {
  // An ack of a stream no longer running (or of another group's) is stale: ignored.
  auto ga = wire::DecodeAnySnapshotChunkAck(f.type, f.payload);
  if (!ga.ok()) return;
  const wire::SnapshotChunkAck* ack = &ga->ack;
  if (!snap_ || ga->group != snap_->group || ack->snapshot_index != snap_->msg.snapshot.index ||
      ack->snapshot_term != snap_->msg.snapshot.term)
    return;
  if (ack->abort) {
    FinishSnapshot(false);
    return;
  }
  // The receiver acknowledges bytes it holds: never more than we sent. An ack beyond
  // that is a broken or lying peer; believing it would send the install message for a
  // file the peer does not have (and sent - acked would wrap below).
  if (ack->offset > snap_->sent) {
    Fail(std::string("snapshot chunk ack for offset ")
             .append(std::to_string(ack->offset))
             .append(" beyond the ")
             .append(std::to_string(snap_->sent))
             .append(" bytes sent"));
    return;
  }
  snap_->acked = std::max(snap_->acked, ack->offset);
  if (snap_->acked < snap_->size) {
    PumpSnapshot();
    StartWrite();
    return;
  }
  // The whole file is durable at the peer: now the message that makes it install. The
  // stream succeeded only if that message is on its way.
  auto payload = snap_->group != 0 ? wire::EncodeGroupMessage(snap_->group, snap_->msg)
                                   : wire::EncodeMessage(snap_->msg);
  const wire::FrameType type =
      snap_->group != 0 ? wire::FrameType::kGroupMessage : wire::FrameType::kRaftMessage;
  Status s = payload.ok() ? Enqueue(type, *payload, /*force=*/true) : payload.status();
  if (!s.ok()) {
    t_->Log(LogLevel::kError, "cannot send the snapshot's install message",
            {{"peer", t_->PeerLabel(id_)},
             {"index", std::to_string(snap_->msg.snapshot.index)},
             {"error", s.ToString()}});
    FinishSnapshot(false);
    return;
  }
  StartWrite();
  FinishSnapshot(true);
}

void PeerConn::StartSnapshot(const Message& m, std::uint64_t group, SnapshotStore* store) {
  // One stream per peer; the core offers again after a failure. Another group's offer
  // fails at once, so that its core does not wait for a stream that never starts.
  if (snap_) {
    if (group != snap_->group) ReportSent(group, false);
    return;
  }
  auto file = store->OpenView(m.snapshot.index, m.snapshot.term);
  if (!file.ok()) {
    t_->Log(LogLevel::kError, "snapshot file missing", {{"error", file.status().ToString()}});
    ReportSent(group, false);
    return;
  }
  const std::uint64_t size = (*file)->size();
  snap_ = SnapshotSend{m, group, store, std::move(file).value(), size, 0, 0};
  std::vector<LogField> fields = {{"peer", t_->PeerLabel(id_)},
                                  {"index", std::to_string(m.snapshot.index)},
                                  {"bytes", std::to_string(size)}};
  if (group != 0) fields.push_back({"group", std::to_string(group)});
  t_->Log(LogLevel::kInfo, "sending snapshot", std::move(fields));
  if (state_ == State::kIdle) Connect();
  if (state_ == State::kBackoff) {
    FinishSnapshot(false);
    return;
  }
  PumpSnapshot();
  StartWrite();
}

void PeerConn::PumpSnapshot() {
  if (!snap_ || state_ != State::kReady) return;
  if (!snap_->form_chosen) {
    // A linked snapshot goes in layout form to a peer that reads it (protocol 3): the
    // peer keeps its files as files, and installs them without a copy.
    snap_->form_chosen = true;
    if (snap_->file->linked() && version_ >= wire::kProtocolVersionLayout) {
      auto v = snap_->store->OpenView(snap_->msg.snapshot.index, snap_->msg.snapshot.term,
                                      /*layout=*/true);
      if (v.ok() && (*v)->layout()) {
        snap_->file = std::move(v).value();
        snap_->size = snap_->file->size();
      }
    }
  }
  const auto& o = t_->options();
  std::uint64_t window = std::uint64_t{o.snapshot_chunk_bytes} * o.snapshot_window_chunks;
  while (snap_->sent < snap_->size && snap_->sent - snap_->acked < window) {
    std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>(o.snapshot_chunk_bytes, snap_->size - snap_->sent));
    wire::SnapshotChunkView c;
    c.snapshot_index = snap_->msg.snapshot.index;
    c.snapshot_term = snap_->msg.snapshot.term;
    c.offset = snap_->sent;
    c.last = snap_->sent + n == snap_->size;
    c.layout = snap_->file->layout();
    // Read from the file straight into the frame: one copy of the bytes.
    auto frame = wire::EncodeSnapshotChunkFrame(
        c, n,
        [&](char* p) {
          std::size_t got = 0;
          Status r = snap_->file->ReadInto(c.offset, p, n, &got);
          if (r.ok() && got != n)
            r = Status(ErrorCode::kCorruption, "snapshot file shorter than its size");
          return r;
        },
        o.frame_bytes_max, snap_->group);
    Status s = frame.ok() ? EnqueueFrame(std::move(frame).value(), /*force=*/true) : frame.status();
    if (!s.ok()) {
      t_->Log(LogLevel::kError, "cannot send snapshot chunk",
              {{"peer", t_->PeerLabel(id_)}, {"error", s.ToString()}});
      FinishSnapshot(false);
      return;
    }
    snap_->sent += n;
  }
}

void PeerConn::FinishSnapshot(bool ok) {
  if (!snap_) return;
  const std::uint64_t group = snap_->group;
  snap_.reset();
  ReportSent(group, ok);
}

void PeerConn::ReportSent(std::uint64_t group, bool ok) {
  if (group != 0) {
    t_->handler()->OnGroupSnapshotSent(id_, group, ok);
  } else {
    t_->handler()->OnSnapshotSent(id_, ok);
  }
}

void PeerConn::Fail(const std::string& why) {
  if (closed_) return;
  stream_->Close();
  stream_ = t_->NewStream();  // the old one lives on until its aborted operations complete
  decoder_.emplace(t_->options().frame_bytes_max, wire::kFirstFramePayloadBytesMax);
  handshake_timer_.cancel();
  ++gen_;  // completions of the old socket's operations are ignored from now on
  bool had_traffic = !queue_.empty() || !writing_.empty();
  queue_.clear();
  queued_bytes_ = 0;
  writing_.clear();  // the closed socket's aborted write no longer reads these buffers
  write_active_ = false;
  state_ = State::kBackoff;
  FinishSnapshot(false);
  if (!reported_unreachable_) {
    t_->Log(LogLevel::kWarn, "peer unreachable",
            {{"peer", t_->PeerLabel(id_)}, {"addr", addr_}, {"reason", why}});
    reported_unreachable_ = true;
  }
  if (had_traffic) t_->handler()->OnUnreachable(id_);
  backoff_timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
  backoff_ms_ = std::min(backoff_ms_ * 2, kBackoffMaxMs);
  auto self = shared_from_this();
  backoff_timer_.async_wait([this, self](asio::error_code ec) {
    t_->CheckThread();
    if (ec || closed_) return;
    if (state_ == State::kBackoff) state_ = State::kIdle;
    CheckInvariants();
  });
  CheckInvariants();
}

void PeerConn::Close() {
  t_->CheckThread();
  if (closed_) return;
  closed_ = true;
  backoff_timer_.cancel();
  handshake_timer_.cancel();
  resolver_.cancel();
  stream_->Close();
  queue_.clear();
}

}  // namespace raft::runtime
