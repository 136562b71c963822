// kvserver: a node of the replicated key-value store. See docs/operations.md.
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include "build_info.h"
#include "flags.h"
#include "kv_server.h"
#include "logger.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = kv::ParseServerFlags(args, kv::ProcessEnvironment());
  if (!flags.ok()) {
    std::fprintf(stderr, "kvserver: %s\nRun 'kvserver --help' for the list of flags.\n",
                 flags.status().message().c_str());
    return 2;
  }
  if (flags->version) {
    std::fputs(kv::VersionText("kvserver").c_str(), stdout);
    return 0;
  }
  if (flags->help) {
    std::fputs(kv::ServerFlagsUsage().c_str(), stdout);
    return 0;
  }
  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // Everything this process creates (the Raft log, snapshots, RocksDB's files) is for its
  // owner only: files 0600, directories 0700 (security review F-13).
  ::umask(077);

  kv::StructuredLogger logger(kv::ParseLogLevel(flags->log_level),
                              kv::ParseLogFormat(flags->log_format));
  for (const std::string& w : flags->warnings) logger.Log(raft::LogLevel::kWarn, "kvserver", w, {});
  if (!flags->config_file.empty())
    logger.Log(raft::LogLevel::kInfo, "kvserver", "settings read from the config file",
               {{"config", flags->config_file}});
  auto server = kv::KvServer::Start(*flags, &logger);
  if (!server.ok()) {
    logger.Log(raft::LogLevel::kError, "kvserver", "cannot start",
               {{"error", server.status().ToString()}});
    return 1;
  }
  std::unique_ptr<kv::KvServer> owned = std::move(server).value();
  kv::KvServer* s = owned.get();
  // SIGHUP: reload the certificates (any time); SIGINT/SIGTERM: graceful shutdown, and a
  // second one exits at once.
  std::thread([s, &logger, set] {
    bool stopping = false;
    for (;;) {
      int sig = 0;
      sigwait(&set, &sig);
      if (sig == SIGHUP) {
        logger.Log(raft::LogLevel::kInfo, "kvserver", "SIGHUP: reloading certificates", {});
        (void)s->ReloadCertificates();  // logs its outcome; the old files stay on error
        continue;
      }
      if (stopping) {
        logger.Log(raft::LogLevel::kWarn, "kvserver", "second signal; exiting now", {});
        std::_Exit(1);
      }
      stopping = true;
      logger.Log(raft::LogLevel::kInfo, "kvserver", "signal received; graceful shutdown",
                 {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
      s->Shutdown();
    }
  }).detach();
  raft::Status st = s->Serve();
  owned.reset();
  return st.ok() ? 0 : 1;
}
