// TLS contexts of the HTTP front door (see http_tls.h).
#include "http_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <cstring>

namespace kv {
namespace {

namespace ssl = boost::asio::ssl;

// Identifies this server's sessions: OpenSSL refuses to resume a session with a verified
// client certificate without one.
constexpr unsigned char kSessionIdContext[] = "kvserver-http";

raft::Status Fail(const std::string& what, const std::string& file,
                  const boost::system::error_code& ec) {
  std::string msg = "cannot load ";
  msg.append(what).append(" ").append(file).append(": ");
  msg.append(ec ? ec.message() : std::string("OpenSSL error"));
  return raft::Status(raft::ErrorCode::kInvalidArgument, msg);
}

// The first OpenSSL error queued (and the queue cleared), for messages.
std::string OpenSslReason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

raft::Result<std::shared_ptr<ssl::context>> MakeHttpTlsContext(const HttpTlsFiles& files) {
  if (files.cert_file.empty() || files.key_file.empty())
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "HTTPS needs both -cert-file and -key-file");
  if (files.client_cert_auth && files.trusted_ca_file.empty())
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        "-client-cert-auth needs -trusted-ca-file (the CA of the clients)");
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) != 1)
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        std::string("OpenSSL refuses TLS 1.3: ").append(OpenSslReason()));
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(files.cert_file, ec);
  if (ec) return Fail("-cert-file", files.cert_file, ec);
  ctx->use_private_key_file(files.key_file, ssl::context::pem, ec);
  if (ec) return Fail("-key-file", files.key_file, ec);
  if (SSL_CTX_check_private_key(native) != 1) {
    std::string msg = "-key-file ";
    msg.append(files.key_file).append(" does not match -cert-file ").append(files.cert_file);
    msg.append(": ").append(OpenSslReason());
    return raft::Status(raft::ErrorCode::kInvalidArgument, msg);
  }
  if (files.client_cert_auth) {
    ctx->load_verify_file(files.trusted_ca_file, ec);
    if (ec) return Fail("-trusted-ca-file", files.trusted_ca_file, ec);
    // Tells clients which CA to pick a certificate for.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.trusted_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(native, names);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    SSL_CTX_set_session_id_context(native, kSessionIdContext, sizeof kSessionIdContext - 1);
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  ERR_clear_error();
  return ctx;
}

raft::Result<std::shared_ptr<ssl::context>> MakeHttpTlsClientContext(const HttpTlsFiles& files) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_3_VERSION) != 1)
    return raft::Status(raft::ErrorCode::kInvalidArgument,
                        std::string("OpenSSL refuses TLS 1.3: ").append(OpenSslReason()));
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  boost::system::error_code ec;
  if (files.trusted_ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Fail("the system's CAs", "", ec);
  } else {
    ctx->load_verify_file(files.trusted_ca_file, ec);
    if (ec) return Fail("-trusted-ca-file", files.trusted_ca_file, ec);
  }
  ctx->set_verify_mode(ssl::verify_peer);
  if (!files.cert_file.empty()) {
    ctx->use_certificate_chain_file(files.cert_file, ec);
    if (ec) return Fail("-cert-file", files.cert_file, ec);
    ctx->use_private_key_file(files.key_file, ssl::context::pem, ec);
    if (ec) return Fail("-key-file", files.key_file, ec);
  }
  ERR_clear_error();
  return ctx;
}

raft::Result<std::unique_ptr<HttpTlsContexts>> HttpTlsContexts::Load(HttpTlsFiles files) {
  std::unique_ptr<HttpTlsContexts> out(new HttpTlsContexts(std::move(files)));
  if (raft::Status s = out->Reload(); !s.ok()) return s;
  return out;
}

raft::Status HttpTlsContexts::Reload() {
  auto server = MakeHttpTlsContext(files_);
  if (!server.ok()) return server.status();
  auto client = MakeHttpTlsClientContext(files_);
  if (!client.ok()) return client.status();
  std::lock_guard<std::mutex> l(mu_);
  current_ = std::move(server).value();
  client_ = std::move(client).value();
  return raft::Status::Ok();
}

std::shared_ptr<ssl::context> HttpTlsContexts::Current() const {
  std::lock_guard<std::mutex> l(mu_);
  return current_;
}

std::shared_ptr<ssl::context> HttpTlsContexts::CurrentClient() const {
  std::lock_guard<std::mutex> l(mu_);
  return client_;
}

std::optional<std::string> VerifiedPeerCommonName(SSL* ssl) {
  if (ssl == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  // Without verification (no -client-cert-auth) OpenSSL reports X509_V_OK too: a
  // certificate is only requested when verification is on, so one present was verified.
  if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0) return std::nullopt;
  X509_NAME* subject = X509_get_subject_name(cert);
  int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0)
    return std::nullopt;  // none, or ambiguous
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return std::nullopt;
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  if (cn.empty() || std::memchr(cn.data(), '\0', cn.size()) != nullptr) return std::nullopt;
  return cn;
}

}  // namespace kv
