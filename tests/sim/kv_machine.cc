#include "kv_machine.h"

#include <string_view>
#include <vector>

namespace raft::sim {
namespace {

char KindChar(lin::OpKind k) {
  switch (k) {
    case lin::OpKind::kGet:
      return 'g';
    case lin::OpKind::kPut:
      return 'p';
    case lin::OpKind::kCas:
      return 'c';
    case lin::OpKind::kDelete:
      return 'd';
  }
  return '?';
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t bar = s.find('|', start);
    if (bar == std::string::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, bar - start));
    start = bar + 1;
  }
}

bool ParseU64(const std::string& s, std::uint64_t* out) {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::string EncodeKvOp(const KvOp& op) {
  const lin::Input& in = op.input;
  std::string out = "K|" + std::to_string(op.client) + "|" + std::to_string(op.op_id) + "|";
  out += KindChar(in.kind);
  out += "|" + in.key + "|" + in.value + "|" + (in.expected ? "1|" + *in.expected : "0|");
  return out;
}

bool DecodeKvOp(const std::string& data, KvOp* out) {
  if (data.size() < 2 || data[0] != 'K' || data[1] != '|') return false;
  auto f = Split(data);
  if (f.size() != 8 || f[3].size() != 1) return false;
  if (!ParseU64(f[1], &out->client) || !ParseU64(f[2], &out->op_id)) return false;
  switch (f[3][0]) {
    case 'g':
      out->input.kind = lin::OpKind::kGet;
      break;
    case 'p':
      out->input.kind = lin::OpKind::kPut;
      break;
    case 'c':
      out->input.kind = lin::OpKind::kCas;
      break;
    case 'd':
      out->input.kind = lin::OpKind::kDelete;
      break;
    default:
      return false;
  }
  out->input.key = f[4];
  out->input.value = f[5];
  if (f[6] == "1") {
    out->input.expected = f[7];
  } else {
    out->input.expected.reset();
  }
  return true;
}

lin::Output KvMachine::Apply(const lin::Input& op) {
  switch (op.kind) {
    case lin::OpKind::kGet:
      return lin::Output::Value(Get(op.key));
    case lin::OpKind::kPut:
      kv_[op.key] = op.value;
      return lin::Output::Ack();
    case lin::OpKind::kDelete:
      kv_.erase(op.key);
      return lin::Output::Ack();
    case lin::OpKind::kCas: {
      if (Get(op.key) != op.expected) return lin::Output::Swapped(false);
      kv_[op.key] = op.value;
      return lin::Output::Swapped(true);
    }
  }
  return lin::Output::Ack();
}

std::optional<std::string> KvMachine::Get(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return std::nullopt;
  return it->second;
}

std::string KvMachine::Serialize() const {
  std::string out = "S|";
  for (const auto& [k, v] : kv_) {
    out += std::to_string(k.size()) + ":" + k + std::to_string(v.size()) + ":" + v;
  }
  return out;
}

bool KvMachine::Deserialize(const std::string& bytes) {
  if (bytes.rfind("S|", 0) != 0) return false;
  std::map<std::string, std::string> kv;
  std::size_t pos = 2;
  auto read = [&](std::string* out) {
    std::size_t colon = bytes.find(':', pos);
    if (colon == std::string::npos) return false;
    std::uint64_t n = 0;
    if (!ParseU64(bytes.substr(pos, colon - pos), &n) || colon + 1 + n > bytes.size()) return false;
    *out = bytes.substr(colon + 1, n);
    pos = colon + 1 + n;
    return true;
  };
  while (pos < bytes.size()) {
    std::string k, v;
    if (!read(&k) || !read(&v)) return false;
    kv[k] = v;
  }
  kv_ = std::move(kv);
  return true;
}

std::uint64_t KvMachine::Digest() const {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : Serialize()) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace raft::sim
