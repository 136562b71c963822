// RAFT_EXPORT marks the public API: the classes and functions of include/raft/ that are
// defined inside libraft. libraft is compiled with hidden visibility
// (-fvisibility=hidden, see libraft/CMakeLists.txt), so libraft.so exports these and
// nothing from src/. Types and functions defined entirely in the headers need no mark.
// GCC and Clang on ELF platforms, the only ones libraft supports (POSIX files, Asio).
// Written as a standard attribute so that it composes with others:
// `class [[nodiscard]] RAFT_EXPORT Status` (GCC rejects __attribute__ after [[...]]).
#pragma once

#ifndef RAFT_EXPORT
#define RAFT_EXPORT [[gnu::visibility("default")]]
#endif

// RAFT_NO_EXPORT hides a class nested in an exported one (its pimpl, defined in src/),
// which would otherwise take the enclosing class's visibility.
#ifndef RAFT_NO_EXPORT
#define RAFT_NO_EXPORT [[gnu::visibility("hidden")]]
#endif
