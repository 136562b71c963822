#include "workload.h"

#include <cstdio>

#include "http_codec.h"

namespace kvbench {

void KeyName(uint64_t index, std::string& out, bool spread) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "k%08llu", static_cast<unsigned long long>(index));
  out.clear();
  if (spread) out.push_back(static_cast<char>(0x21 + index % 94));
  out.append(buf, static_cast<size_t>(n));
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
    // KeyName() yields URL-safe keys, but for a spread key's first byte.
    static constexpr char kHex[] = "0123456789ABCDEF";
    scratch.assign("/kv/");
    for (char c : key) {
      const auto u = static_cast<unsigned char>(c);
      if ((u >= '0' && u <= '9') || (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z')) {
        scratch.push_back(c);
      } else {
        scratch.push_back('%');
        scratch.push_back(kHex[u >> 4]);
        scratch.push_back(kHex[u & 15]);
      }
    }
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
