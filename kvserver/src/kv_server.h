// KvServer: one kvserver node: a raft::Node over a RocksDB state machine, served over
// HTTP. Heavy headers (httplib, RocksDB) stay out of this header.
#pragma once

#include <memory>

#include "flags.h"
#include "logger.h"
#include "raft/status.h"

namespace kv {

class KvServer {
 public:
  // Opens the data directory, starts Raft (bootstrapping a new cluster when the
  // directory is empty and no -join is given) and binds the HTTP listener.
  static raft::Result<std::unique_ptr<KvServer>> Start(const ServerFlags& flags,
                                                       StructuredLogger* logger);
  ~KvServer();

  // Serves HTTP until Shutdown(); joins the cluster first when asked to. Blocks. Returns
  // the join's error when the join was refused (the node then shut down).
  raft::Status Serve();

  // Graceful shutdown, in order: stop accepting HTTP and finish in-flight requests,
  // hand leadership to another voter if leader, stop Raft, close RocksDB. Idempotent;
  // callable from any thread (e.g. a signal-handling thread).
  void Shutdown();

  // Re-reads the certificate and key files of both ports (SIGHUP: HTTPS and the Raft
  // port's -peer-* files): new connections use the new ones,
  // open connections keep theirs. On an error (a missing or bad file) the files in use
  // stay in use and the error is returned and logged. Ok when there is nothing to
  // reload. Any thread.
  raft::Status ReloadCertificates();

  struct Impl;

 private:
  explicit KvServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kv
