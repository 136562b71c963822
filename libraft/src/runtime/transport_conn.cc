#include "runtime/transport_conn.h"

#include "runtime/hmac.h"
#include "wire/handshake.h"
#include "wire/message_codec.h"

namespace raft::runtime {
namespace {
constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr int kBackoffMaxMs = 2000;
constexpr auto kHandshakeTimeout = std::chrono::seconds(5);

std::string Frame(wire::FrameType type, const std::string& payload, std::uint32_t max) {
  auto f = wire::EncodeFrame(type, payload, max);
  return f.ok() ? std::move(f).value() : std::string();
}
}  // namespace

// ---------------------------------------------------------------- PeerConn

PeerConn::PeerConn(Transport* t, asio::io_context& io, NodeId id, std::string addr)
    : t_(t), io_(io), id_(id), addr_(std::move(addr)), sock_(io), backoff_timer_(io) {
  decoder_.emplace(t->options().frame_bytes_max);
}

void PeerConn::SetAddress(const std::string& addr) {
  if (addr == addr_) return;
  addr_ = addr;
  if (state_ != State::kIdle) Fail("peer address changed");
}

void PeerConn::PeerIsUp() {
  backoff_ms_ = 50;
  if (state_ != State::kBackoff) return;
  backoff_timer_.cancel();
  state_ = State::kIdle;
}

void PeerConn::SendMessage(const Message& m) {
  if (closed_) return;
  if (m.type == MessageType::kSnapshot) {
    StartSnapshot(m);
    return;
  }
  if (state_ == State::kBackoff) {
    // The peer was unreachable moments ago: drop rather than queue stale traffic.
    t_->handler()->OnUnreachable(id_);
    return;
  }
  auto payload = wire::EncodeMessage(m);
  if (!payload.ok()) {
    t_->Log(LogLevel::kError, "cannot encode message", {{"error", payload.status().ToString()}});
    return;
  }
  if (!Enqueue(Frame(wire::FrameType::kRaftMessage, *payload, t_->options().frame_bytes_max),
               false)) {
    t_->handler()->OnUnreachable(id_);
    return;
  }
  if (state_ == State::kIdle) Connect();
  StartWrite();
}

bool PeerConn::Enqueue(std::string frame, bool force) {
  if (frame.empty()) return false;
  if (!force && queued_bytes_ + frame.size() > t_->options().peer_queue_bytes_max) return false;
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  return true;
}

void PeerConn::Connect() {
  auto ep = ParseEndpoint(addr_);
  if (!ep.ok()) {
    Fail(ep.status().message());
    return;
  }
  state_ = State::kConnecting;
  auto self = shared_from_this();
  sock_.async_connect(*ep, [this, self, g = gen_](asio::error_code ec) {
    if (closed_ || g != gen_ || state_ != State::kConnecting) return;
    if (ec) {
      Fail("connect: " + ec.message());
      return;
    }
    asio::error_code ignored;
    sock_.set_option(asio::ip::tcp::no_delay(true), ignored);
    wire::Handshake hs;
    hs.from = t_->options().self;
    hs.to = id_;
    hs.cluster_id = t_->options().cluster_id;
    hs.address = t_->options().self_addr;
    hs.auth = t_->AuthProof(hs.from, hs.to);
    auto payload = wire::EncodeHandshake(hs);
    std::string frame =
        payload.ok() ? Frame(wire::FrameType::kHandshake, *payload, t_->options().frame_bytes_max)
                     : std::string();
    queued_bytes_ += frame.size();
    queue_.push_front(std::move(frame));
    state_ = State::kReady;
    StartRead();
    StartWrite();
  });
}

void PeerConn::StartWrite() {
  if (write_active_ || state_ != State::kReady || queue_.empty()) return;
  // Coalesce everything queued into one gather write.
  writing_.clear();
  std::vector<asio::const_buffer> bufs;
  while (!queue_.empty()) {
    writing_.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  for (const auto& f : writing_) bufs.emplace_back(asio::buffer(f));
  write_active_ = true;
  auto self = shared_from_this();
  asio::async_write(sock_, bufs, [this, self, g = gen_](asio::error_code ec, std::size_t) {
    if (closed_ || g != gen_) return;  // a connection that already failed
    write_active_ = false;
    for (const auto& f : writing_) queued_bytes_ -= f.size();
    writing_.clear();
    if (ec) {
      Fail("write: " + ec.message());
      return;
    }
    backoff_ms_ = 50;
    reported_unreachable_ = false;
    PumpSnapshot();
    StartWrite();
  });
}

void PeerConn::StartRead() {
  read_buf_.resize(kReadChunkBytes);
  auto self = shared_from_this();
  sock_.async_read_some(
      asio::buffer(read_buf_), [this, self, g = gen_](asio::error_code ec, std::size_t n) {
        if (closed_ || g != gen_ || state_ != State::kReady) return;
        if (ec) {
          Fail(ec == asio::error::eof ? "peer closed the connection" : "read: " + ec.message());
          return;
        }
        Status s = decoder_->Feed(std::string_view(read_buf_.data(), n));
        while (auto f = decoder_->Pop()) {
          HandleFrame(std::move(*f));
          if (state_ != State::kReady) return;
        }
        if (!s.ok()) {
          Fail("bad frame from peer: " + s.message());
          return;
        }
        StartRead();
      });
}

void PeerConn::HandleFrame(wire::Frame f) {
  switch (f.type) {
    case wire::FrameType::kHandshakeAck:
      return;
    case wire::FrameType::kHandshakeReject: {
      auto rej = wire::DecodeHandshakeReject(f.payload);
      std::string why = rej.ok() ? std::string(wire::RejectCodeName(rej->code)) + ": " + rej->reason
                                 : "malformed reject";
      t_->Log(LogLevel::kError, "peer refused our handshake",
              {{"peer", std::to_string(id_)}, {"addr", addr_}, {"reason", why}});
      backoff_ms_ = kBackoffMaxMs;
      Fail("handshake refused: " + why);
      return;
    }
    case wire::FrameType::kSnapshotChunkAck: {
      auto ack = wire::DecodeSnapshotChunkAck(f.payload);
      if (!ack.ok() || !snap_ || ack->snapshot_index != snap_->msg.snapshot.index) return;
      if (ack->abort) {
        FinishSnapshot(false);
        return;
      }
      snap_->acked = std::max(snap_->acked, ack->offset);
      if (snap_->acked >= snap_->size) {
        // The whole file is durable at the peer: now the message that makes it install.
        auto payload = wire::EncodeMessage(snap_->msg);
        if (payload.ok()) {
          Enqueue(Frame(wire::FrameType::kRaftMessage, *payload, t_->options().frame_bytes_max),
                  true);
          StartWrite();
        }
        FinishSnapshot(true);
        return;
      }
      PumpSnapshot();
      StartWrite();
      return;
    }
    default:
      Fail(std::string("unexpected frame ") + wire::FrameTypeName(f.type));
  }
}

void PeerConn::StartSnapshot(const Message& m) {
  if (snap_) return;  // one stream per peer; the core offers again after a failure
  auto size = t_->snapshots()->FileSize(m.snapshot.index, m.snapshot.term);
  if (!size.ok()) {
    t_->Log(LogLevel::kError, "snapshot file missing", {{"error", size.status().ToString()}});
    t_->handler()->OnSnapshotSent(id_, false);
    return;
  }
  snap_ = SnapshotSend{m, *size, 0, 0};
  t_->Log(LogLevel::kInfo, "sending snapshot",
          {{"peer", std::to_string(id_)},
           {"index", std::to_string(m.snapshot.index)},
           {"bytes", std::to_string(*size)}});
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
  const auto& o = t_->options();
  std::uint64_t window = std::uint64_t{o.snapshot_chunk_bytes} * o.snapshot_window_chunks;
  while (snap_->sent < snap_->size && snap_->sent - snap_->acked < window) {
    std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>(o.snapshot_chunk_bytes, snap_->size - snap_->sent));
    auto data = t_->snapshots()->ReadRaw(snap_->msg.snapshot.index, snap_->msg.snapshot.term,
                                         snap_->sent, n);
    if (!data.ok() || data->size() != n) {
      FinishSnapshot(false);
      return;
    }
    wire::SnapshotChunk c;
    c.snapshot_index = snap_->msg.snapshot.index;
    c.snapshot_term = snap_->msg.snapshot.term;
    c.offset = snap_->sent;
    c.last = snap_->sent + n == snap_->size;
    c.data = std::move(data).value();
    auto payload = wire::EncodeSnapshotChunk(c);
    if (!payload.ok()) {
      FinishSnapshot(false);
      return;
    }
    Enqueue(Frame(wire::FrameType::kSnapshotChunk, *payload, o.frame_bytes_max), true);
    snap_->sent += n;
  }
}

void PeerConn::FinishSnapshot(bool ok) {
  if (!snap_) return;
  snap_.reset();
  t_->handler()->OnSnapshotSent(id_, ok);
}

void PeerConn::Fail(const std::string& why) {
  if (closed_) return;
  asio::error_code ignored;
  sock_.close(ignored);
  sock_ = asio::ip::tcp::socket(io_);
  decoder_.emplace(t_->options().frame_bytes_max);
  ++gen_;  // completions of the old socket's operations are ignored from now on
  bool had_traffic = !queue_.empty() || !writing_.empty();
  queue_.clear();
  queued_bytes_ = 0;
  writing_.clear();  // the closed socket's aborted write no longer reads these buffers
  write_active_ = false;
  FinishSnapshot(false);
  if (!reported_unreachable_) {
    t_->Log(LogLevel::kWarn, "peer unreachable",
            {{"peer", std::to_string(id_)}, {"addr", addr_}, {"reason", why}});
    reported_unreachable_ = true;
  }
  if (had_traffic) t_->handler()->OnUnreachable(id_);
  state_ = State::kBackoff;
  backoff_timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
  backoff_ms_ = std::min(backoff_ms_ * 2, kBackoffMaxMs);
  auto self = shared_from_this();
  backoff_timer_.async_wait([this, self](asio::error_code ec) {
    if (ec || closed_) return;
    if (state_ == State::kBackoff) state_ = State::kIdle;
  });
}

void PeerConn::Close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  backoff_timer_.cancel();
  sock_.close(ignored);
  queue_.clear();
}

// ---------------------------------------------------------------- InboundConn

InboundConn::InboundConn(Transport* t, asio::ip::tcp::socket sock)
    : t_(t),
      sock_(std::move(sock)),
      handshake_timer_(sock_.get_executor()),
      decoder_(t->options().frame_bytes_max) {
  asio::error_code ec;
  auto ep = sock_.remote_endpoint(ec);
  remote_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  sock_.set_option(asio::ip::tcp::no_delay(true), ec);
}

void InboundConn::Start() {
  handshake_timer_.expires_after(kHandshakeTimeout);
  auto self = shared_from_this();
  handshake_timer_.async_wait([this, self](asio::error_code ec) {
    if (ec || closed_ || handshaken_) return;
    t_->Log(LogLevel::kWarn, "closing connection: no handshake in time", {{"remote", remote_}});
    Close();
  });
  StartRead();
}

void InboundConn::Close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  handshake_timer_.cancel();
  sock_.close(ignored);
  receiver_.reset();
}

void InboundConn::StartRead() {
  read_buf_.resize(kReadChunkBytes);
  auto self = shared_from_this();
  sock_.async_read_some(asio::buffer(read_buf_), [this, self](asio::error_code ec, std::size_t n) {
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
  if (!handshaken_) return HandleHandshake(f);
  switch (f.type) {
    case wire::FrameType::kRaftMessage: {
      auto m = wire::DecodeMessage(f.payload);
      if (!m.ok()) {
        t_->Log(LogLevel::kWarn, "closing connection: bad message",
                {{"remote", remote_}, {"error", m.status().message()}});
        return false;
      }
      if (m->from != peer_ || m->to != t_->options().self) {
        t_->Log(LogLevel::kWarn, "closing connection: message with forged sender or target",
                {{"remote", remote_}, {"peer", std::to_string(peer_)}});
        return false;
      }
      t_->handler()->OnMessage(std::move(m).value());
      return true;
    }
    case wire::FrameType::kSnapshotChunk:
      return HandleChunk(f);
    default:
      t_->Log(LogLevel::kWarn, "closing connection: unexpected frame",
              {{"remote", remote_}, {"type", wire::FrameTypeName(f.type)}});
      return false;
  }
}

bool InboundConn::HandleHandshake(const wire::Frame& f) {
  auto reject = [&](wire::RejectCode code, const std::string& reason) {
    t_->Log(LogLevel::kWarn, "refused connection",
            {{"remote", remote_}, {"code", wire::RejectCodeName(code)}, {"reason", reason}});
    wire::HandshakeReject r{code, reason};
    auto p = wire::EncodeHandshakeReject(r);
    if (p.ok()) SendFrame(wire::FrameType::kHandshakeReject, *p, /*close_after=*/true);
    return false;
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
  auto version = wire::NegotiateVersion(hs->version_min, hs->version_max);
  if (!version) return reject(wire::RejectCode::kVersionUnsupported, "no common protocol version");
  if (hs->to != kNoNode && hs->to != o.self)
    return reject(wire::RejectCode::kWrongNode, "this is node " + std::to_string(o.self));
  if (hs->from == kNoNode || hs->from == o.self)
    return reject(wire::RejectCode::kUnknownPeer, "invalid sender id");
  if (!ConstantTimeEquals(hs->auth, t_->AuthProof(hs->from, hs->to)))
    return reject(wire::RejectCode::kAuthFailed, "cluster secret proof does not match");
  handshaken_ = true;
  peer_ = hs->from;
  if (!hs->address.empty()) t_->handler()->OnPeerAddress(peer_, hs->address);
  t_->PeerIsUp(peer_);
  wire::HandshakeAck ack;
  ack.version = *version;
  ack.from = o.self;
  auto p = wire::EncodeHandshakeAck(ack);
  if (p.ok()) SendFrame(wire::FrameType::kHandshakeAck, *p, false);
  return true;
}

bool InboundConn::HandleChunk(const wire::Frame& f) {
  auto c = wire::DecodeSnapshotChunk(f.payload);
  if (!c.ok()) {
    t_->Log(LogLevel::kWarn, "closing connection: bad snapshot chunk",
            {{"remote", remote_}, {"error", c.status().message()}});
    return false;
  }
  wire::SnapshotChunkAck ack;
  ack.snapshot_index = c->snapshot_index;
  ack.snapshot_term = c->snapshot_term;
  Status s;
  if (c->offset == 0) {
    auto r = t_->snapshots()->Receive(c->snapshot_index, c->snapshot_term);
    if (r.ok()) {
      receiver_ = std::move(r).value();
    } else {
      s = r.status();
    }
  }
  if (s.ok() && (!receiver_ || receiver_->index() != c->snapshot_index ||
                 receiver_->term() != c->snapshot_term)) {
    s = Status(ErrorCode::kInvalidArgument, "chunk of an unknown snapshot stream");
  }
  if (s.ok()) s = receiver_->Write(c->offset, c->data);
  if (s.ok() && c->last) {
    s = receiver_->Finish();
    if (s.ok()) {
      t_->Log(LogLevel::kInfo, "snapshot received",
              {{"peer", std::to_string(peer_)}, {"index", std::to_string(c->snapshot_index)}});
    }
  }
  if (s.ok()) {
    ack.offset = c->offset + c->data.size();
  } else {
    t_->Log(LogLevel::kError, "snapshot receive failed",
            {{"peer", std::to_string(peer_)}, {"error", s.ToString()}});
    receiver_.reset();
    ack.abort = true;
  }
  if (c->last || !s.ok()) receiver_.reset();
  auto p = wire::EncodeSnapshotChunkAck(ack);
  if (p.ok()) SendFrame(wire::FrameType::kSnapshotChunkAck, *p, false);
  return true;
}

void InboundConn::SendFrame(wire::FrameType type, const std::string& payload, bool close_after) {
  out_.push_back(Frame(type, payload, t_->options().frame_bytes_max));
  if (close_after) close_after_write_ = true;
  StartWrite();
}

void InboundConn::StartWrite() {
  if (write_active_ || out_.empty() || closed_) return;
  writing_.assign(std::make_move_iterator(out_.begin()), std::make_move_iterator(out_.end()));
  out_.clear();
  std::vector<asio::const_buffer> bufs;
  for (const auto& f : writing_) bufs.emplace_back(asio::buffer(f));
  write_active_ = true;
  auto self = shared_from_this();
  asio::async_write(sock_, bufs, [this, self](asio::error_code ec, std::size_t) {
    write_active_ = false;
    writing_.clear();
    if (ec || close_after_write_) {
      Close();
      return;
    }
    StartWrite();
  });
}

}  // namespace raft::runtime
