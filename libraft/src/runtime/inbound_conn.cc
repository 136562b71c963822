#include "runtime/inbound_conn.h"

#include <fmt/format.h>

#include "runtime/peer_auth.h"
#include "wire/handshake.h"
#include "wire/message_codec.h"
#include "wire/snapshot_chunk.h"

namespace raft::runtime {
namespace {
constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr auto kHandshakeTimeout = std::chrono::seconds(5);
// Answers waiting to be written (handshake answers, snapshot chunk acks). A dialer keeps
// at most its snapshot window of chunks unacknowledged, so a longer queue means it stopped
// reading: the connection closes rather than buffer without bound (security review F-11).
constexpr std::size_t kOutFramesMax = 64;
}  // namespace

InboundConn::InboundConn(Transport* t, std::shared_ptr<PeerStream> stream)
    : t_(t),
      stream_(std::move(stream)),
      handshake_timer_(stream_->socket().get_executor()),
      decoder_(t->options().frame_bytes_max, wire::kFirstFramePayloadBytesMax,
               wire::kHandshakeFramesIn) {
  asio::error_code ec;
  auto ep = stream_->socket().remote_endpoint(ec);
  remote_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  stream_->socket().set_option(asio::ip::tcp::no_delay(true), ec);
}

void InboundConn::Start() {
  t_->CheckThread();
  handshake_timer_.expires_after(kHandshakeTimeout);
  auto self = shared_from_this();
  handshake_timer_.async_wait([this, self](asio::error_code ec) {
    t_->CheckThread();
    if (ec || closed_ || handshaken_) return;
    t_->Log(LogLevel::kWarn, "closing connection: no handshake in time", {{"remote", remote_}});
    Close();
  });
  stream_->AsyncAccept([this, self](asio::error_code ec) {
    t_->CheckThread();
    if (closed_ || t_->stopped()) return;
    if (ec) {
      t_->Log(LogLevel::kWarn, "refused connection: TLS handshake failed",
              {{"remote", remote_}, {"error", ec.message()}});
      Close();
      return;
    }
    StartRead();
  });
}

void InboundConn::Close() {
  t_->CheckThread();
  if (closed_) return;
  closed_ = true;
  handshake_timer_.cancel();
  stream_->Close();
  receiver_.reset();
}

void InboundConn::StartRead() {
  read_buf_.resize(kReadChunkBytes);
  auto self = shared_from_this();
  stream_->AsyncReadSome(asio::buffer(read_buf_), [this, self](asio::error_code ec, std::size_t n) {
    t_->CheckThread();
    if (closed_ || t_->stopped()) return;
    if (ec) {
      Close();
      if (handshaken_) t_->handler()->OnPeerLost(peer_);
      return;
    }
    Status s = decoder_.Feed(std::string_view(read_buf_.data(), n));
    while (auto f = decoder_.Pop()) {
      if (!HandleFrame(std::move(*f))) {
        if (!close_after_write_) Close();
        return;
      }
    }
    if (!s.ok()) {
      t_->Log(LogLevel::kWarn, "closing connection: malformed input",
              {{"remote", remote_}, {"error", s.message()}});
      Close();
      return;
    }
    StartRead();
  });
}

bool InboundConn::HandleFrame(wire::Frame f) {
  if (!handshaken_) return hello_answered_ ? HandleFinish(f) : HandleHandshake(f);
  if (f.version != version_) {
    return CloseForBadInput("closing connection: frame of another protocol version",
                            std::to_string(f.version));
  }
  switch (f.type) {
    case wire::FrameType::kRaftMessage: {
      auto m = wire::DecodeMessage(f.payload);
      if (!m.ok()) return CloseForBadInput("closing connection: bad message", m.status().message());
      if (m->quiesce)  // a GroupMessage's heartbeat only (version 4)
        return CloseForBadInput("closing connection: bad message",
                                "quiesce flag on protocol version " + std::to_string(version_));
      if (m->from != peer_ || m->to != t_->options().self) {
        return CloseForBadInput("closing connection: message with forged sender or target",
                                std::to_string(m->from) + " -> " + std::to_string(m->to));
      }
      if (Status s = t_->handler()->OnMessage(std::move(m).value()); !s.ok())
        return CloseForBadInput("closing connection: the node refused a message", s.ToString());
      return true;
    }
    case wire::FrameType::kSnapshotChunk:
    case wire::FrameType::kGroupSnapshotChunk:
      return HandleChunk(f);
    case wire::FrameType::kGroupMessage:
    case wire::FrameType::kHostBeat:
    case wire::FrameType::kHostBeatAck:
      return HandleGroupFrame(f);
    default:
      return CloseForBadInput("closing connection: unexpected frame", wire::FrameTypeName(f.type));
  }
}

bool InboundConn::HandleGroupFrame(const wire::Frame& f) {
  // The decoder let these through on version 4 only, which a host transport alone
  // negotiates.
  TransportHandler* h = t_->handler();
  Status s;
  if (f.type == wire::FrameType::kGroupMessage) {
    auto gm = wire::DecodeGroupMessage(f.payload);
    if (!gm.ok()) return CloseForBadInput("closing connection: bad message", gm.status().message());
    if (gm->message.from != peer_ || gm->message.to != t_->options().self) {
      return CloseForBadInput(
          "closing connection: message with forged sender or target",
          std::to_string(gm->message.from) + " -> " + std::to_string(gm->message.to));
    }
    s = h->OnGroupMessage(peer_, std::move(gm).value());
  } else if (f.type == wire::FrameType::kHostBeat) {
    auto hb = wire::DecodeHostBeat(f.payload);
    if (!hb.ok())
      return CloseForBadInput("closing connection: bad host beat", hb.status().message());
    s = h->OnHostBeat(peer_, std::move(hb).value());
  } else {
    auto ha = wire::DecodeHostBeatAck(f.payload);
    if (!ha.ok())
      return CloseForBadInput("closing connection: bad host beat ack", ha.status().message());
    s = h->OnHostBeatAck(peer_, std::move(ha).value());
  }
  if (!s.ok())
    return CloseForBadInput("closing connection: the host refused a frame", s.ToString());
  return true;
}

bool InboundConn::CloseForBadInput(std::string_view why, const std::string& detail) {
  t_->LogBadInput(why, {{"remote", remote_}, {"peer", t_->PeerLabel(peer_)}, {"error", detail}});
  t_->handler()->OnPeerConnClosed(peer_);
  return false;
}

bool InboundConn::Reject(wire::RejectCode code, const std::string& reason) {
  t_->Log(LogLevel::kWarn, "refused connection",
          {{"remote", remote_}, {"code", wire::RejectCodeName(code)}, {"reason", reason}});
  wire::HandshakeReject r{code, reason};
  SendFrame(wire::FrameType::kHandshakeReject, wire::EncodeHandshakeReject(r),
            /*close_after=*/true);
  return false;
}

bool InboundConn::HandleHandshake(const wire::Frame& f) {
  auto reject = [&](wire::RejectCode code, const std::string& reason) {
    return Reject(code, reason);
  };
  if (f.type != wire::FrameType::kHandshake) {
    t_->Log(LogLevel::kWarn, "closing connection: no handshake", {{"remote", remote_}});
    return false;
  }
  auto hs = wire::DecodeHandshake(f.payload);
  if (!hs.ok()) {
    t_->Log(LogLevel::kWarn, "closing connection: malformed handshake",
            {{"remote", remote_}, {"error", hs.status().message()}});
    return false;
  }
  const auto& o = t_->options();
  if (hs->cluster_id != o.cluster_id)
    return reject(wire::RejectCode::kClusterMismatch,
                  "cluster id '" + hs->cluster_id + "' is not '" + o.cluster_id + "'");
  auto version = wire::NegotiateVersion(hs->version_min, hs->version_max, t_->version_min(),
                                        t_->version_max());
  if (!version) {
    return reject(
        wire::RejectCode::kVersionUnsupported,
        fmt::format("the dialer speaks protocol versions {}..{}, this node {}..{} "
                    "(version 2 is the mutual challenge-response handshake; 4 a "
                    "host of many groups', which a single-group node never speaks); "
                    "upgrade every node to the same release",
                    hs->version_min, hs->version_max, t_->version_min(), t_->version_max()));
  }
  if (hs->to != kNoNode && hs->to != o.self)
    return reject(wire::RejectCode::kWrongNode, "this is node " + std::to_string(o.self));
  if (hs->from == kNoNode || hs->from == o.self)
    return reject(wire::RejectCode::kUnknownPeer, "invalid sender id");
  if (hs->auth.size() != wire::kNonceBytes) {
    return reject(
        wire::RejectCode::kAuthFailed,
        fmt::format("the dialer's nonce is {} bytes, not {}", hs->auth.size(), wire::kNonceBytes));
  }
  auto nonce = MakeHandshakeNonce();
  if (!nonce.ok()) {
    t_->Log(LogLevel::kError, "closing connection: no handshake nonce",
            {{"remote", remote_}, {"error", nonce.status().ToString()}});
    return false;
  }
  wire::HandshakeAck ack;
  ack.version = *version;
  ack.from = o.self;
  ack.auth = *nonce;
  if (!o.cluster_secret.empty()) {
    // We prove ourselves first: the dialer sends nothing more until it has checked this.
    auto proof =
        HandshakeProof(o.cluster_secret, wire::kRoleListener, f.payload, *version, o.self, *nonce);
    if (!proof.ok()) {
      t_->Log(LogLevel::kError, "closing connection: cannot compute our handshake proof",
              {{"remote", remote_}, {"error", proof.status().ToString()}});
      return false;
    }
    ack.auth += *proof;
  }
  hello_answered_ = true;
  hello_ = f.payload;
  listener_nonce_ = std::move(nonce).value();
  version_ = *version;
  peer_ = hs->from;  // claimed; authenticated by the HandshakeFinish
  peer_address_ = hs->address;
  return SendFrame(wire::FrameType::kHandshakeAck, wire::EncodeHandshakeAck(ack), false);
}

bool InboundConn::HandleFinish(const wire::Frame& f) {
  if (f.type != wire::FrameType::kHandshakeFinish || f.version != version_) {
    t_->Log(LogLevel::kWarn, "closing connection: expected the dialer's HandshakeFinish",
            {{"remote", remote_},
             {"type", wire::FrameTypeName(f.type)},
             {"version", std::to_string(f.version)}});
    return false;
  }
  auto fin = wire::DecodeHandshakeFinish(f.payload);
  if (!fin.ok()) {
    t_->Log(LogLevel::kWarn, "closing connection: malformed handshake finish",
            {{"remote", remote_}, {"error", fin.status().message()}});
    return false;
  }
  const auto& o = t_->options();
  if (o.cluster_secret.empty()) {
    if (!fin->proof.empty()) {
      return Reject(wire::RejectCode::kAuthFailed,
                    "the dialer proves a cluster secret, but this node has none: configure "
                    "the same secret on every node");
    }
  } else {
    if (fin->proof.empty()) {
      return Reject(wire::RejectCode::kAuthFailed,
                    "the dialer has no cluster secret, but this node requires one");
    }
    auto expected = HandshakeProof(o.cluster_secret, wire::kRoleDialer, hello_, version_, o.self,
                                   listener_nonce_);
    if (!expected.ok()) {
      t_->Log(LogLevel::kError, "closing connection: cannot compute the dialer's proof",
              {{"remote", remote_}, {"error", expected.status().ToString()}});
      return false;
    }
    if (!ProofEquals(fin->proof, *expected)) {
      return Reject(wire::RejectCode::kAuthFailed, "cluster secret proof does not match");
    }
  }
  handshaken_ = true;
  hello_.clear();
  listener_nonce_.clear();
  if (!peer_address_.empty()) t_->handler()->OnPeerAddress(peer_, peer_address_);
  peer_address_.clear();
  t_->PeerIsUp(peer_);
  return true;
}

bool InboundConn::HandleChunk(const wire::Frame& f) {
  // The data stays in f. Group 0: a Node's stream (the frame decoder let each type
  // through only on the versions that carry it).
  auto gc = wire::DecodeAnySnapshotChunkView(f.type, f.payload);
  if (!gc.ok())
    return CloseForBadInput("closing connection: bad snapshot chunk", gc.status().message());
  const std::uint64_t group = gc->group;
  const wire::SnapshotChunkView* c = &gc->chunk;
  if (c->layout && version_ < wire::kProtocolVersionLayout)
    return CloseForBadInput("closing connection: bad snapshot chunk",
                            "layout form on protocol version " + std::to_string(version_));
  wire::SnapshotChunkAck ack;
  ack.snapshot_index = c->snapshot_index;
  ack.snapshot_term = c->snapshot_term;
  Status s;
  if (c->offset == 0) {
    receiver_.reset();
    receiver_group_ = group;
    t_->ClaimReceive(peer_, group, shared_from_this());
    Result<SnapshotStore*> store = t_->snapshots();
    if (group != 0) {
      store = t_->handler()->AcceptGroupSnapshot(peer_, group);
    } else if (s = t_->handler()->AcceptSnapshot(peer_); !s.ok()) {
      store = s;
    }
    auto r = store.ok() ? (*store)->Receive(c->snapshot_index, c->snapshot_term,
                                            t_->options().snapshot_bytes_max, c->layout)
                        : Result<std::unique_ptr<SnapshotReceiver>>(store.status());
    if (r.ok()) {
      receiver_ = std::move(r).value();
    } else {
      s = r.status();
    }
  }
  if (s.ok() &&
      (!receiver_ || receiver_group_ != group || receiver_->index() != c->snapshot_index ||
       receiver_->term() != c->snapshot_term || receiver_->layout() != c->layout)) {
    s = Status(ErrorCode::kInvalidArgument, "chunk of an unknown snapshot stream");
  }
  if (s.ok()) s = receiver_->Write(c->offset, c->data);
  if (s.ok() && c->last) {
    const bool linked = receiver_->layout();  // (Finish ends the layout receive)
    s = receiver_->Finish();
    if (s.ok()) {
      std::vector<LogField> fields = {{"peer", t_->PeerLabel(peer_)},
                                      {"index", std::to_string(c->snapshot_index)},
                                      {"form", linked ? "linked" : "file"}};
      if (group != 0) fields.push_back({"group", std::to_string(group)});
      t_->Log(LogLevel::kInfo, "snapshot received", std::move(fields));
    }
  }
  if (s.ok()) {
    ack.offset = c->offset + c->data.size();
  } else {
    t_->Log(LogLevel::kError, "snapshot receive failed",
            {{"peer", t_->PeerLabel(peer_)}, {"error", s.ToString()}});
    receiver_.reset();
    ack.abort = true;
  }
  if (c->last || !s.ok()) receiver_.reset();
  if (group != 0)
    return SendFrame(wire::FrameType::kGroupSnapshotChunkAck,
                     wire::EncodeGroupSnapshotChunkAck(group, ack), false);
  return SendFrame(wire::FrameType::kSnapshotChunkAck, wire::EncodeSnapshotChunkAck(ack), false);
}

void InboundConn::DropReceive(std::uint64_t group, const std::string& why) {
  t_->CheckThread();
  if (!receiver_ || receiver_group_ != group) return;
  t_->Log(LogLevel::kWarn, "snapshot receive abandoned",
          {{"peer", t_->PeerLabel(peer_)},
           {"index", std::to_string(receiver_->index())},
           {"received_bytes", std::to_string(receiver_->bytes_received())},
           {"why", why}});
  receiver_.reset();
}

bool InboundConn::SendFrame(wire::FrameType type, const Result<std::string>& payload,
                            bool close_after) {
  Result<std::string> frame =
      payload.ok() ? wire::EncodeFrame(type, *payload, t_->options().frame_bytes_max, version_)
                   : Result<std::string>(payload.status());
  if (!frame.ok()) {
    // Our own answer does not encode: a bug or a limit we set too low. The dialer sees
    // the connection close and redials.
    t_->Log(LogLevel::kError, "closing connection: cannot encode our answer",
            {{"remote", remote_},
             {"type", wire::FrameTypeName(type)},
             {"error", frame.status().ToString()}});
    return false;
  }
  if (out_.size() >= kOutFramesMax) {
    t_->Log(LogLevel::kWarn, "closing connection: the peer does not read our answers",
            {{"remote", remote_}, {"queued", std::to_string(out_.size())}});
    return false;
  }
  out_.push_back(std::move(frame).value());
  if (close_after) close_after_write_ = true;
  StartWrite();
  return true;
}

void InboundConn::StartWrite() {
  if (write_active_ || out_.empty() || closed_) return;
  writing_.assign(std::make_move_iterator(out_.begin()), std::make_move_iterator(out_.end()));
  out_.clear();
  std::vector<asio::const_buffer> bufs;
  for (const auto& f : writing_) bufs.emplace_back(asio::buffer(f));
  write_active_ = true;
  auto self = shared_from_this();
  stream_->AsyncWrite(bufs, [this, self](asio::error_code ec, std::size_t) {
    t_->CheckThread();
    write_active_ = false;
    writing_.clear();
    // The answer that ends the connection may queue behind one being written (a
    // HandshakeReject behind our HandshakeAck): close once all are out.
    if (ec || (close_after_write_ && out_.empty())) {
      Close();
      return;
    }
    StartWrite();
  });
}

}  // namespace raft::runtime
