#include "raft/errno_status.h"

#include <cerrno>
#include <string>
#include <system_error>

namespace raft {

bool IsNoSpaceErrno(int err) { return err == ENOSPC || err == EDQUOT || err == EFBIG; }

Status ErrnoStatus(std::string_view op, std::string_view path, int err) {
  std::string msg;
  msg.append(op).append(" ").append(path).append(": ").append(
      std::system_category().message(err));  // strerror, thread-safe
  if (IsNoSpaceErrno(err)) {
    msg.append(": out of disk space (or over a quota or the file size limit)");
    return Status(ErrorCode::kNoSpace, std::move(msg));
  }
  return Status(ErrorCode::kIOError, std::move(msg));
}

}  // namespace raft
