// The one errno -> Status mapping of the project (the library, and applications such as
// kvserver whose state machines do their own file I/O).
//   ENOSPC, EDQUOT, EFBIG -> kNoSpace (out of disk space, over a quota, or over the
//                            file size limit: the operator frees space, then retries)
//   anything else         -> kIOError
// Pure and thread-safe.
#pragma once

#include <string_view>

#include "raft/export.h"
#include "raft/status.h"

namespace raft {

// True for the errno values that mean "no space" (mapped to kNoSpace).
RAFT_EXPORT bool IsNoSpaceErrno(int err);

// The Status for errno value `err` (non-zero) returned by operation `op` on `path`.
// Message: "<op> <path>: <strerror(err)>", plus a hint for kNoSpace; e.g.
// "fsync /data/raft/log-....seg: Input/output error".
RAFT_EXPORT Status ErrnoStatus(std::string_view op, std::string_view path, int err);

}  // namespace raft
