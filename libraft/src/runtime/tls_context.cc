// The Raft port's TLS context (see tls_context.h).
#include "runtime/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

namespace raft::runtime {
namespace {

// Names this server's sessions: OpenSSL refuses to resume a session whose client
// certificate was verified without one.
constexpr unsigned char kSessionIdContext[] = "raft-peer";

// The first OpenSSL error queued (and the queue cleared), for messages.
std::string OpenSslReason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Status LoadError(const char* what, const std::string& file, const asio::error_code& ec) {
  std::string msg = "cannot load the peer TLS ";
  msg.append(what).append(" ").append(file).append(": ");
  msg.append(ec ? ec.message() : OpenSslReason());
  ERR_clear_error();
  return Status(ErrorCode::kInvalidArgument, msg);
}

// One of the three PEM inputs: `file`, or the text `pem` when `file` is empty.
struct Source {
  const char* what;  // "certificate", "key", "trusted CA"
  const std::string& file;
  const std::string& pem;
  const char* pem_field;  // named in messages when the PEM text is used
  std::string Name() const { return file.empty() ? std::string(pem_field) : file; }
};

}  // namespace

Result<TlsContextPtr> NewTlsContext(const TlsOptions& tls) {
  const Source cert{"certificate", tls.cert_file, tls.cert_pem, "peer_tls.cert_pem"};
  const Source key{"key", tls.key_file, tls.key_pem, "peer_tls.key_pem"};
  const Source ca{"trusted CA", tls.trusted_ca_file, tls.trusted_ca_pem, "peer_tls.trusted_ca_pem"};
  for (const Source* s : {&cert, &key, &ca}) {
    if (s->file.empty() && s->pem.empty()) {
      std::string msg = "peer TLS needs a certificate, its key and the trusted CA; the ";
      msg.append(s->what).append(" is missing");
      return Status(ErrorCode::kInvalidArgument, msg);
    }
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) != 1)
    return Status(ErrorCode::kInvalidArgument,
                  std::string("OpenSSL refuses TLS 1.3: ").append(OpenSslReason()));
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  asio::error_code ec;
  if (!cert.file.empty()) {
    ctx->use_certificate_chain_file(cert.file, ec);
  } else {
    ctx->use_certificate_chain(asio::buffer(cert.pem), ec);
  }
  if (ec) return LoadError(cert.what, cert.Name(), ec);
  if (!key.file.empty()) {
    ctx->use_private_key_file(key.file, asio::ssl::context::pem, ec);
  } else {
    ctx->use_private_key(asio::buffer(key.pem), asio::ssl::context::pem, ec);
  }
  const bool mismatch =
      ec && ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
  if (ec && !mismatch) return LoadError(key.what, key.Name(), ec);
  if (mismatch || SSL_CTX_check_private_key(native) != 1) {
    std::string msg = "the peer TLS key ";
    msg.append(key.Name()).append(" does not match the certificate ").append(cert.Name());
    msg.append(": ").append(mismatch ? ec.message() : OpenSslReason());
    ERR_clear_error();
    return Status(ErrorCode::kInvalidArgument, msg);
  }
  if (!ca.file.empty()) {
    ctx->load_verify_file(ca.file, ec);
  } else {
    ctx->add_certificate_authority(asio::buffer(ca.pem), ec);
  }
  if (ec) return LoadError(ca.what, ca.Name(), ec);
  ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  SSL_CTX_set_session_id_context(native, kSessionIdContext, sizeof kSessionIdContext - 1);
  ERR_clear_error();
  return ctx;
}

Result<std::unique_ptr<PeerTls>> PeerTls::Open(const TlsOptions& tls) {
  if (!tls.enabled()) return std::unique_ptr<PeerTls>();
  auto ctx = NewTlsContext(tls);
  if (!ctx.ok()) return ctx.status();
  return std::unique_ptr<PeerTls>(new PeerTls(std::move(ctx).value(), tls));
}

Status PeerTls::Reload(const TlsOptions* replace) {
  base::MutexLock l(&mu_);
  auto ctx = NewTlsContext(replace ? *replace : opts_);
  if (!ctx.ok()) return ctx.status();
  holder_.Set(std::move(ctx).value());
  if (replace) opts_ = *replace;
  return Status::Ok();
}

Status PeerTls::ReloadLogged(
    PeerTls* tls, const TlsOptions* replace, const char* owner,
    const std::function<void(LogLevel, std::string_view, std::vector<LogField>)>& log) {
  if (tls == nullptr)
    return Status(ErrorCode::kInvalidArgument, std::string("peer TLS is off (the ")
                                                   .append(owner)
                                                   .append(" started without peer_tls); a "
                                                           "reload cannot turn it on"));
  const Status s = tls->Reload(replace);
  if (s.ok()) {
    log(LogLevel::kInfo, "peer TLS certificates reloaded; new connections use them", {});
  } else {
    log(LogLevel::kError, "peer TLS reload failed; the previous certificates stay in use",
        {{"error", s.ToString()}});
  }
  return s;
}

}  // namespace raft::runtime
