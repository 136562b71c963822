// Errors a caller can act on, as values. No exception crosses the library API.
// A broken invariant is a bug and aborts instead (see RAFT_ASSERT in src/).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "raft/export.h"

namespace raft {

enum class ErrorCode {
  kOk = 0,
  kNotLeader,          // proposal/read on a non-leader; message names the leader
  kProposalDropped,    // leader refuses: transfer in progress, uncommitted bytes over limit
  kConfChangePending,  // a membership change is already in flight
  kInvalidArgument,    // malformed request (unknown node, bad conf change, ...)
  kCompacted,          // storage: requested index is below the first available index
  kUnavailable,        // storage: requested data is not available (yet)
  kCorruption,         // on-disk or on-wire data failed a checksum or grammar check
  kIOError,            // the operating system refused a read, write or sync
  kNoSpace,            // ENOSPC: the node stops accepting writes until space is freed
  kTimeout,            // an operation did not complete in time; its outcome is unknown
  kShutdown,           // the node is stopping or stopped
  kBusy,               // too many pending requests; retry later
};

RAFT_EXPORT const char* ErrorCodeName(ErrorCode code);

// Status: ok, or an error code with a message a person can act on. [[nodiscard]]: a
// dropped Status is a compile error under -Werror; a deliberate drop says so with (void)
// and a comment.
class [[nodiscard]] RAFT_EXPORT Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotLeader: leader is 3" style rendering.
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

namespace detail {
// Aborts the process: a Result was read without a value, or built from an ok Status.
// Both are caller bugs; the message carries the Status that explains the missing value.
// Inline so that every layer (and a consumer linking any part of libraft) has it.
[[noreturn]] inline void ResultMisuse(const char* what, const Status& status) {
  std::fprintf(stderr, "raft: %s (error code %d: %s)\n", what, static_cast<int>(status.code()),
               status.message().c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

// Result<T>: a value, or the Status explaining why there is none. Reading the value of
// a Result that holds none (value(), operator*, operator->) aborts with the Status, in
// every build type: check ok() first.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) detail::ResultMisuse("Result built from an ok Status", status_);
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  const T& value() const& { return Checked(); }
  T& value() & { return Checked(); }
  T&& value() && { return std::move(Checked()); }
  const T& operator*() const& { return Checked(); }
  T& operator*() & { return Checked(); }
  T&& operator*() && { return std::move(Checked()); }
  const T* operator->() const { return &Checked(); }
  T* operator->() { return &Checked(); }

 private:
  const T& Checked() const {
    if (!value_.has_value()) [[unlikely]] {
      detail::ResultMisuse("Result has no value", status_);
    }
    return *value_;
  }
  T& Checked() {
    if (!value_.has_value()) [[unlikely]] {
      detail::ResultMisuse("Result has no value", status_);
    }
    return *value_;
  }

  std::optional<T> value_;
  Status status_;
};

}  // namespace raft
