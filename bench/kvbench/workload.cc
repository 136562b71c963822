#include "workload.h"

#include <cstdio>

#include "http_codec.h"

namespace kvbench {

void KeyName(uint64_t index, std::string& out) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "k%08llu", static_cast<unsigned long long>(index));
  out.assign(buf, static_cast<size_t>(n));
}

void StampValue(uint64_t stamp, std::string& value) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < value.size(); ++i) {
    value[i] = static_cast<char>('a' + (i * 7 + 3) % 26);
  }
  for (size_t i = 0; i < 8 && i < value.size(); ++i) {
    value[i] = kHex[(stamp >> (4 * (7 - i))) & 15];
  }
}

void AppendOp(std::string& out, std::string& scratch, Target target, OpKind op,
              std::string_view host, std::string_view key, std::string_view value) {
  if (target == Target::kKvserver) {
    scratch.assign("/kv/").append(key);  // KeyName() yields URL-safe keys
    if (op == OpKind::kWrite) {
      AppendRequest(out, "PUT", scratch, host, "application/octet-stream", value);
    } else {
      AppendRequest(out, "GET", scratch, host, "", "");
    }
    return;
  }
  scratch.assign("{\"key\":\"");
  AppendBase64(scratch, key);
  if (op == OpKind::kWrite) {
    scratch.append("\",\"value\":\"");
    AppendBase64(scratch, value);
  }
  scratch.append("\"}");
  AppendRequest(out, "POST", op == OpKind::kWrite ? "/v3/kv/put" : "/v3/kv/range", host,
                "application/json", scratch);
}

}  // namespace kvbench
