# Writes kv_build_info_generated.h (run with cmake -P at every build, by the
# kv_build_info target in kvserver/CMakeLists.txt). Inputs: SOURCE_DIR, OUTPUT, VERSION,
# GIT (may be empty). The file is rewritten only when its content changes, so a build
# without a new commit recompiles nothing.
set(KV_GIT_COMMIT "unknown")
if(GIT)
  execute_process(COMMAND "${GIT}" -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE head RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET)
  if(rc EQUAL 0 AND head)
    set(KV_GIT_COMMIT "${head}")
    # Local changes to tracked files: the binary is not exactly that commit.
    execute_process(COMMAND "${GIT}" -C "${SOURCE_DIR}" diff --quiet HEAD --
                    RESULT_VARIABLE dirty ERROR_QUIET)
    if(dirty EQUAL 1)
      string(APPEND KV_GIT_COMMIT "-dirty")
    endif()
  endif()
endif()
set(PROJECT_VERSION "${VERSION}")
configure_file("${CMAKE_CURRENT_LIST_DIR}/kv_build_info_generated.h.in" "${OUTPUT}" @ONLY)
