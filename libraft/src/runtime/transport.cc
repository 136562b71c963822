#include "runtime/transport.h"

#include <charconv>

#include "base/assert.h"
#include "runtime/inbound_conn.h"
#include "runtime/peer_conn.h"
#include "runtime/peer_stream.h"
#include "runtime/tls_context.h"

namespace raft::runtime {

Status SplitHostPort(const std::string& addr, std::string* host, std::uint16_t* port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size())
    return Status(ErrorCode::kInvalidArgument, "address '" + addr + "' is not host:port");
  *host = addr.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']')
    *host = host->substr(1, host->size() - 2);
  unsigned p = 0;
  auto ps = addr.substr(colon + 1);
  auto [end, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), p);
  if (ec != std::errc() || end != ps.data() + ps.size() || p > 65535)
    return Status(ErrorCode::kInvalidArgument, "address '" + addr + "' has a bad port");
  *port = static_cast<std::uint16_t>(p);
  return Status::Ok();
}

Result<asio::ip::tcp::endpoint> ParseEndpoint(const std::string& addr) {
  std::string host;
  std::uint16_t port = 0;
  if (Status s = SplitHostPort(addr, &host, &port); !s.ok()) return s;
  asio::error_code err;
  auto ip = asio::ip::make_address(host, err);
  if (!err) return asio::ip::tcp::endpoint(ip, port);
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port), err);
  if (err || results.empty())
    return Status(ErrorCode::kInvalidArgument, "cannot resolve '" + host + "': " + err.message());
  return results.begin()->endpoint();
}

Transport::Transport(asio::io_context& io, TransportOptions options, TransportHandler* handler,
                     SnapshotStore* snapshots)
    : io_(io),
      options_(std::move(options)),
      handler_(handler),
      snapshots_(snapshots),
      acceptor_(io),
      accept_backoff_(io) {}

Transport::~Transport() { Stop(); }

void Transport::Log(LogLevel level, std::string_view msg, std::vector<LogField> fields) const {
  if (options_.logger && options_.logger->Enabled(level))
    options_.logger->Log(level, "transport", msg, fields);
}

void Transport::LogBadInput(std::string_view msg, std::vector<LogField> fields) {
  const auto now = std::chrono::steady_clock::now();
  if (bad_input_logged_at_ && now - *bad_input_logged_at_ < kBadInputLogInterval) {
    ++bad_input_unlogged_;
    return;
  }
  fields.push_back({"unlogged", std::to_string(bad_input_unlogged_)});
  Log(LogLevel::kWarn, msg, std::move(fields));
  bad_input_logged_at_ = now;
  bad_input_unlogged_ = 0;
}

Status Transport::Listen() {
  CheckThread();
  auto ep = ParseEndpoint(options_.listen_addr);
  if (!ep.ok()) return ep.status();
  asio::error_code ec;
  acceptor_.open(ep->protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(*ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status(ErrorCode::kIOError,
                  "cannot listen on " + options_.listen_addr + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  Accept();
  return Status::Ok();
}

void Transport::Accept() {
  acceptor_.async_accept([this](asio::error_code ec, asio::ip::tcp::socket sock) {
    CheckThread();
    if (stopped_ || ec == asio::error::operation_aborted) return;
    // Forget connections that have closed.
    for (auto it = inbound_.begin(); it != inbound_.end();)
      it = it->second.expired() ? inbound_.erase(it) : std::next(it);
    if (ec) {
      // Out of descriptors or buffers: the error would repeat at once. Pause, log once.
      Log(LogLevel::kWarn, "accept failed; pausing 100 ms", {{"error", ec.message()}});
      accept_backoff_.expires_after(std::chrono::milliseconds(100));
      accept_backoff_.async_wait([this](asio::error_code e) {
        CheckThread();
        if (!e && !stopped_) Accept();
      });
      return;
    }
    if (inbound_.size() >= options_.inbound_conns_max) {
      // Logged when refusing starts and every 1,000 refusals; the count when it ends.
      if (refused_conns_++ == 0)
        Log(LogLevel::kWarn, "refusing a connection: too many open",
            {{"open", std::to_string(inbound_.size())},
             {"max", std::to_string(options_.inbound_conns_max)}});
      asio::error_code ignored;
      sock.close(ignored);
      if (refused_conns_ >= 1000) refused_conns_ = 0;
    } else {
      if (refused_conns_ > 1)
        Log(LogLevel::kInfo, "accepting again", {{"refused", std::to_string(refused_conns_ - 1)}});
      refused_conns_ = 0;
      auto conn = std::make_shared<InboundConn>(
          this,
          PeerStream::Adopt(std::move(sock), options_.tls ? options_.tls->Get() : TlsContextPtr()));
      inbound_[conn.get()] = conn;
      conn->Start();
    }
    Accept();
  });
}

void Transport::SetPeerAddress(NodeId id, const std::string& addr) {
  CheckThread();
  if (id == options_.self || stopped_) return;
  auto it = peers_.find(id);
  if (it == peers_.end()) {
    peers_.emplace(id, std::make_shared<PeerConn>(this, io_, id, addr));
  } else {
    it->second->SetAddress(addr);
  }
}

std::vector<NodeId> Transport::PeerIds() const {
  CheckThread();
  std::vector<NodeId> ids;
  ids.reserve(peers_.size());
  for (const auto& [id, p] : peers_) ids.push_back(id);
  return ids;
}

void Transport::RemovePeer(NodeId id) {
  CheckThread();
  auto it = peers_.find(id);
  if (it != peers_.end()) {
    it->second->Close();  // its pending completions hold it until they run, and see closed_
    peers_.erase(it);
  }
  names_.erase(id);
}

void Transport::SetClusterId(const std::string& cluster_id) {
  CheckThread();
  options_.cluster_id = cluster_id;
}

void Transport::SetPeerName(NodeId id, const std::string& name) {
  CheckThread();
  if (!name.empty()) names_[id] = name;
}

std::string Transport::PeerLabel(NodeId id) const {
  auto it = names_.find(id);
  return it != names_.end() ? it->second : std::to_string(id);
}

std::shared_ptr<PeerStream> Transport::NewStream() {
  return PeerStream::Make(io_, options_.tls ? options_.tls->Get() : TlsContextPtr());
}

void Transport::ClaimReceive(NodeId peer, std::uint64_t group,
                             const std::shared_ptr<InboundConn>& conn) {
  CheckThread();
  std::weak_ptr<InboundConn>& slot = receiving_[group];
  if (auto prev = slot.lock(); prev && prev != conn) {
    std::string why = "a newer snapshot stream started, from ";
    why += PeerLabel(peer);
    prev->DropReceive(group, why);
  }
  slot = conn;
  std::erase_if(receiving_, [](const auto& kv) { return kv.second.expired(); });
}

void Transport::PeerIsUp(NodeId id) {
  CheckThread();
  auto it = peers_.find(id);
  if (it != peers_.end()) it->second->PeerIsUp();
}

void Transport::Send(Message m) {
  CheckThread();
  RAFT_ASSERT(!options_.host, "Send on a host's transport (version 4 carries group frames)");
  if (stopped_) return;
  auto it = peers_.find(m.to);
  if (it == peers_.end()) {
    handler_->OnUnreachable(m.to);
    if (m.type == MessageType::kSnapshot) handler_->OnSnapshotSent(m.to, false);
    return;
  }
  it->second->SendMessage(m);
}

void Transport::SendGroupFrame(NodeId peer, wire::FrameType type, const std::string& payload) {
  CheckThread();
  RAFT_ASSERT(options_.host, "SendGroupFrame on a transport that is not a host's");
  if (stopped_) return;
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    handler_->OnUnreachable(peer);
    return;
  }
  it->second->SendPayload(type, payload);
}

void Transport::SendGroupSnapshot(std::uint64_t group, Message m, SnapshotStore* store) {
  CheckThread();
  RAFT_ASSERT(options_.host, "SendGroupSnapshot on a transport that is not a host's");
  RAFT_ASSERT(m.type == MessageType::kSnapshot && group != 0 && store != nullptr);
  if (stopped_) return;
  auto it = peers_.find(m.to);
  if (it == peers_.end()) {
    handler_->OnUnreachable(m.to);
    handler_->OnGroupSnapshotSent(m.to, group, false);
    return;
  }
  it->second->SendGroupSnapshot(group, m, store);
}

Result<SnapshotStore*> TransportHandler::AcceptGroupSnapshot(NodeId peer, std::uint64_t group) {
  return Status(ErrorCode::kInvalidArgument, "a snapshot of group " + std::to_string(group) +
                                                 " from " + std::to_string(peer) +
                                                 " to a transport not a host's");
}

Status TransportHandler::OnGroupMessage(NodeId peer, wire::GroupMessage /*gm*/) {
  return Status(ErrorCode::kInvalidArgument,
                "a group message from " + std::to_string(peer) + " to a transport not a host's");
}

Status TransportHandler::OnHostBeat(NodeId peer, wire::HostBeat /*hb*/) {
  return Status(ErrorCode::kInvalidArgument,
                "a host beat from " + std::to_string(peer) + " to a transport not a host's");
}

Status TransportHandler::OnHostBeatAck(NodeId peer, wire::HostBeatAck /*ha*/) {
  return Status(ErrorCode::kInvalidArgument,
                "a host beat ack from " + std::to_string(peer) + " to a transport not a host's");
}

void Transport::Stop() {
  CheckThread();
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ec;
  acceptor_.close(ec);
  accept_backoff_.cancel();
  for (auto& [id, p] : peers_) p->Close();
  for (auto& [ptr, w] : inbound_)
    if (auto c = w.lock()) c->Close();
  peers_.clear();
  inbound_.clear();
  receiving_.clear();
}

}  // namespace raft::runtime
