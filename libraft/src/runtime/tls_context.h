// TLS of the Raft port: the OpenSSL context built from TlsOptions (NodeOptions::peer_tls,
// HostOptions::peer_tls), the holder that hands the current one to new connections, and
// PeerTls, which a Node or Host keeps to reload it.
//
// One context serves both roles of a node (a server for the connections peers dial to
// us, a client for ours): TLS 1.3 only, our certificate and key, peers verified against
// the trusted CA, and a peer that presents no certificate refused (verify_peer |
// verify_fail_if_no_peer_cert on both sides). OpenSSL also checks the extended key usage
// of the peer's certificate: serverAuth for the node we dial, clientAuth for one that
// dials us (scripts/make-certs.sh gives node certificates both).
//
// Not chosen: checking the peer's host name or IP against its certificate. The address
// book comes from the (authenticated) log, and a node's identity is the node id of the
// application handshake; the certificate proves membership of the cluster's PKI. Not
// chosen either: session resumption (connections are long-lived).
#pragma once

#include <asio/ssl/context.hpp>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "raft/logger.h"
#include "raft/status.h"
#include "raft/tls_options.h"

namespace raft::runtime {

using TlsContextPtr = std::shared_ptr<asio::ssl::context>;

// A context from `tls` (all three of certificate, key and CA required, from files or PEM
// text). kInvalidArgument naming the file (or "peer_tls.cert_pem"...) and OpenSSL's
// reason when one is missing, unreadable, not PEM, or the key does not match.
Result<TlsContextPtr> NewTlsContext(const TlsOptions& tls);

// The context that new connections use. Connections hold a reference to the one they
// started with, so a swap never affects a connection already open. Thread safety: every
// member may be called from any thread.
class TlsContextHolder {
 public:
  explicit TlsContextHolder(TlsContextPtr ctx) : ctx_(std::move(ctx)) {}
  TlsContextPtr Get() const {
    base::MutexLock l(&mu_);
    return ctx_;
  }
  void Set(TlsContextPtr ctx) {
    base::MutexLock l(&mu_);
    ctx_ = std::move(ctx);
  }

 private:
  mutable base::Mutex mu_;
  TlsContextPtr ctx_ RAFT_GUARDED_BY(mu_);  // never null
};

// The peer TLS of a Node or a Host: the holder its transport borrows, and the options the
// current context came from, for Reload. Thread safety: any thread (one reload at a time;
// mu_ -> the holder's lock, a leaf).
class PeerTls {
 public:
  // nullptr when `tls` is not enabled; else the context, or NewTlsContext's error.
  static Result<std::unique_ptr<PeerTls>> Open(const TlsOptions& tls);
  const TlsContextHolder* holder() const { return &holder_; }
  // Reads the options again (or takes `replace`, which replaces them) and makes the new
  // context the one new connections use. On an error nothing changes.
  Status Reload(const TlsOptions* replace) RAFT_EXCLUDES(mu_);
  // Node::ReloadTls and Host::ReloadTls: kInvalidArgument when `tls` is null (the owner
  // started without TLS), else Reload, logged through `log` either way.
  static Status ReloadLogged(
      PeerTls* tls, const TlsOptions* replace, const char* owner,
      const std::function<void(LogLevel, std::string_view, std::vector<LogField>)>& log);

 private:
  PeerTls(TlsContextPtr ctx, TlsOptions opts) : holder_(std::move(ctx)), opts_(std::move(opts)) {}
  TlsContextHolder holder_;
  base::Mutex mu_;
  TlsOptions opts_ RAFT_GUARDED_BY(mu_);
};

}  // namespace raft::runtime
