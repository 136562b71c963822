#include "seed_runner.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace raft::sim {

IsolatedResult RunSeedIsolated(const RunOptions& options) {
  IsolatedResult out;
  int fds[2];
  if (pipe(fds) != 0) {
    std::perror("pipe");
    std::abort();
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::abort();
  }
  if (pid == 0) {
    close(fds[0]);
    alarm(120);
    RunResult r = RunSeed(options);
    std::string msg = r.ok ? "" : r.failure.substr(0, 2000);
    if (!msg.empty() && write(fds[1], msg.data(), msg.size()) < 0) std::_Exit(3);
    close(fds[1]);
    std::_Exit(r.ok ? 0 : 1);
  }
  close(fds[1]);
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0)
    out.failure.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    out.ok = false;
    out.aborted = true;
    out.failure = WTERMSIG(status) == SIGALRM ? "livelock (seed ran too long)"
                                              : "core aborted (RAFT_ASSERT, see stderr)";
  } else {
    out.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  return out;
}

}  // namespace raft::sim
