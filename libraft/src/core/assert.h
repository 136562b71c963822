// RAFT_ASSERT: a broken invariant is a bug. Abort with the condition and location,
// in every build type (these checks guard safety, they are not debug aids).
#pragma once

#include <cstdio>
#include <cstdlib>

#define RAFT_ASSERT(cond, ...)                                                                  \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "raft: invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)
