// Utilities shared by the real-process harness (see process_harness.h): bounded waits,
// loopback ports, byte encodings, the binary under test and Catch2 failure tracking.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kvtest {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// Timing flags passed to every node: short so that elections and joins take
// milliseconds, not seconds.
inline constexpr int kTickMs = 20;
inline constexpr int kElectionTicks = 10;

// Polls `cond` every `poll` until it returns true; false when `limit` ran out (cond is
// evaluated one last time at the deadline).
bool WaitUntil(Millis limit, const std::function<bool()>& cond, Millis poll = 20ms);

// A loopback TCP port in [kPortLow, kPortHigh) (below Linux's ephemeral range) that was
// free when checked by binding it, and never handed out before by this process.
std::uint16_t PickFreePort();

// Percent-encodes every byte except unreserved ones (A-Z a-z 0-9 - . _ ~); `/` too
// unless keep_slash.
std::string PercentEncode(std::string_view bytes, bool keep_slash = false);
std::string Base64Decode(std::string_view text);  // aborts the test on bad input
std::string Printable(std::string_view bytes);    // escapes non-printable bytes as \xHH

// A shell command line's exit code (-1 when it did not exit normally or could not be
// started) and its standard output; its standard error goes to the test's unless the
// command line redirects it. It makes no Catch2 assertion, so a test may run it on a
// thread of its own (Catch2's assertions are for the test's thread only).
struct CommandRun {
  int exit_code = -1;
  std::string output;
};
CommandRun RunCommand(const std::string& cmd);

// The path of the kvserver binary under test.
std::string KvserverBinary();

// Whether the current Catch2 test case has a failed assertion so far.
bool CurrentTestFailed();

}  // namespace kvtest
