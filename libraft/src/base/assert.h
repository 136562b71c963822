// RAFT_ASSERT: a broken invariant is a bug. Abort with the condition, its operands and
// the location, in every build type (these checks guard safety, they are not debug aids).
//
//   RAFT_ASSERT(cond)                      prints the condition text
//   RAFT_ASSERT(cond, "why it must hold")  also prints the message (a C string)
//   RAFT_ASSERT_EQ(a, b)  _NE _LT _LE _GT _GE
//                                          prints both operands' values: "a == b (3 vs 5)"
//
// Operands are evaluated exactly once. Integers, enums, bools, pointers and strings print
// their value; other types print "?". Input from the network or the disk must never reach
// an assert: that is an error value (raft/status.h), not a bug.
//
// Pure: no fmt, no I/O beyond stderr at the moment of death, so the core may include it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>

namespace raft::base {

[[noreturn]] inline void AssertFail(const char* file, int line, const char* expr,
                                    const std::string& detail) {
  if (detail.empty()) {
    std::fprintf(stderr, "raft: invariant broken at %s:%d: %s\n", file, line, expr);
  } else {
    std::fprintf(stderr, "raft: invariant broken at %s:%d: %s (%s)\n", file, line, expr,
                 detail.c_str());
  }
  std::fflush(stderr);
  std::abort();
}

// The text an operand prints as in a failed comparison.
template <typename T>
std::string AssertOperand(const T& v) {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_enum_v<U>) {
    return std::to_string(static_cast<long long>(static_cast<std::underlying_type_t<U>>(v)));
  } else if constexpr (std::is_integral_v<U>) {
    return std::to_string(v);
  } else if constexpr (std::is_convertible_v<const U&, std::string_view>) {
    // Built by appending: GCC 12 at -O3 reports a false -Wrestrict for "x" + std::string.
    std::string out(1, '"');
    out.append(std::string_view(v));
    out.push_back('"');
    return out;
  } else if constexpr (std::is_pointer_v<U>) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", static_cast<const void*>(v));
    return buf;
  } else {
    return "?";
  }
}

template <typename A, typename B>
std::string AssertOperands(const A& a, const B& b) {
  std::string out = AssertOperand(a);
  out.append(" vs ");
  out.append(AssertOperand(b));
  return out;
}

}  // namespace raft::base

#define RAFT_ASSERT_MSG_(cond, msg)                                          \
  do {                                                                       \
    if (!(cond)) [[unlikely]] {                                              \
      ::raft::base::AssertFail(__FILE__, __LINE__, #cond, std::string(msg)); \
    }                                                                        \
  } while (0)
#define RAFT_ASSERT_1_(cond) RAFT_ASSERT_MSG_(cond, "")
#define RAFT_ASSERT_2_(cond, msg) RAFT_ASSERT_MSG_(cond, msg)
#define RAFT_ASSERT_PICK_(_1, _2, name, ...) name
#define RAFT_ASSERT(...) \
  RAFT_ASSERT_PICK_(__VA_ARGS__, RAFT_ASSERT_2_, RAFT_ASSERT_1_, unused)(__VA_ARGS__)

#define RAFT_ASSERT_OP_(a, op, b)                                                             \
  do {                                                                                        \
    const auto& raft_assert_a_ = (a);                                                         \
    const auto& raft_assert_b_ = (b);                                                         \
    if (!(raft_assert_a_ op raft_assert_b_)) [[unlikely]] {                                   \
      ::raft::base::AssertFail(__FILE__, __LINE__, #a " " #op " " #b,                         \
                               ::raft::base::AssertOperands(raft_assert_a_, raft_assert_b_)); \
    }                                                                                         \
  } while (0)
#define RAFT_ASSERT_EQ(a, b) RAFT_ASSERT_OP_(a, ==, b)
#define RAFT_ASSERT_NE(a, b) RAFT_ASSERT_OP_(a, !=, b)
#define RAFT_ASSERT_LT(a, b) RAFT_ASSERT_OP_(a, <, b)
#define RAFT_ASSERT_LE(a, b) RAFT_ASSERT_OP_(a, <=, b)
#define RAFT_ASSERT_GT(a, b) RAFT_ASSERT_OP_(a, >, b)
#define RAFT_ASSERT_GE(a, b) RAFT_ASSERT_OP_(a, >=, b)
