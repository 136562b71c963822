// Real-process test harness for kvserver: starts kvserver binaries with fork/exec on
// loopback ports, talks to them over HTTP, kills and restarts them. Tests include this
// header; each unit has its own:
//   harness_util.h     bounded waits, free ports, encodings, the binary, failure tracking
//   kv_client.h        HttpReply, KvClient and /status helpers (PutOk, Members, ...)
//   node_process.h     NodeProcess: one kvserver process (fork/exec, kill, restart)
//   process_cluster.h  ProcessCluster: node0 bootstraps, the others join
//   raw_connection.h   RawConnection: raw TCP for malformed-input tests
//
// Contract:
// - Every wait is bounded. A wait that runs out fails the current test with a message
//   naming what was awaited and the last thing observed (never hangs).
// - Each ProcessCluster owns one temporary directory (data dirs and one log file per
//   node). It is removed when the test passes and kept, with the tail of every node's
//   log printed to stderr, when the test fails (or when KV_PROCESS_KEEP=1).
// - Processes still running when their NodeProcess is destroyed are killed with SIGKILL
//   and reaped; a child also gets SIGKILL if the test binary dies (PR_SET_PDEATHSIG).
// - Thread safety: KvClient is cheap and stateless (one connection per request) and may
//   be used from any thread. NodeProcess and ProcessCluster are driven from the test's
//   main thread only (Catch2 assertions are not thread safe either).
//
// The binary is KVSERVER_BIN (a compile definition), overridable by the environment
// variable of the same name.
#pragma once

#include "harness_util.h"     // IWYU pragma: export
#include "kv_client.h"        // IWYU pragma: export
#include "node_process.h"     // IWYU pragma: export
#include "process_cluster.h"  // IWYU pragma: export
#include "raw_connection.h"   // IWYU pragma: export
