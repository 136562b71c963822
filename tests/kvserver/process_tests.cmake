# Real-process tests for kvserver: start kvserver binaries on loopback ports and drive
# them over HTTP (and raw sockets). Included from tests/kvserver/CMakeLists.txt.
#
#   ninja -C build process_test && ctest --test-dir build -L process --output-on-failure
#   build/tests/kvserver/process_test '[cluster]'     # a subset; KV_PROCESS_KEEP=1 keeps dirs
#
# Imported targets are directory-scoped, so the packages kvserver/ found are looked up
# again here.
find_package(PkgConfig REQUIRED)
if(NOT TARGET PkgConfig::HTTPLIB)
  pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
endif()
if(NOT TARGET nlohmann_json::nlohmann_json)
  find_package(nlohmann_json REQUIRED)
endif()
if(NOT TARGET fmt::fmt)
  find_package(fmt REQUIRED)
endif()
find_package(Threads REQUIRED)

# The harness, compiled once for every process test binary.
add_library(kv_process_harness STATIC
  ${CMAKE_CURRENT_LIST_DIR}/harness_util.cc
  ${CMAKE_CURRENT_LIST_DIR}/kv_client.cc
  ${CMAKE_CURRENT_LIST_DIR}/node_process.cc
  ${CMAKE_CURRENT_LIST_DIR}/process_cluster.cc
  ${CMAKE_CURRENT_LIST_DIR}/raw_connection.cc)
target_include_directories(kv_process_harness PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(kv_process_harness PUBLIC PkgConfig::HTTPLIB nlohmann_json::nlohmann_json
                      fmt::fmt Threads::Threads Catch2::Catch2 raft_base)
target_compile_definitions(kv_process_harness PRIVATE KVSERVER_BIN="$<TARGET_FILE:kvserver>")
raft_warnings(kv_process_harness)

# kv_process_test(NAME SOURCES... [LIBS...] [TIMEOUT s]): one process test binary, run by
# CTest with the label "process"; it may start kvserver and kvctl (KVCTL_BIN) and make
# certificates (MAKE_CERTS_SH).
function(kv_process_test name)
  cmake_parse_arguments(KP "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  raft_test(${name} SOURCES ${KP_SOURCES} LIBS kv_process_harness ${KP_LIBS} LABELS process)
  target_compile_definitions(${name} PRIVATE KVSERVER_BIN="$<TARGET_FILE:kvserver>"
    KVCTL_BIN="$<TARGET_FILE:kvctl>" MAKE_CERTS_SH="${PROJECT_SOURCE_DIR}/scripts/make-certs.sh")
  add_dependencies(${name} kvserver kvctl)
  if(NOT KP_TIMEOUT)
    set(KP_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${KP_TIMEOUT})
endfunction()

# Clients recording a history for the linearizability checker (lin_clients.h).
add_library(kv_lin_clients STATIC ${CMAKE_CURRENT_LIST_DIR}/lin_clients.cc)
target_link_libraries(kv_lin_clients PUBLIC kv_process_harness raft_lin)
raft_warnings(kv_lin_clients)

kv_process_test(process_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_cluster_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/process_api_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/process_lin_test.cc
  LIBS kv_lin_clients
  TIMEOUT 600)

# Ranges mode (-shards 8), its chaos test included: partitions through partition_proxy.h.
kv_process_test(process_ranges_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_ranges_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/partition_proxy.cc
  LIBS kv_lin_clients raft
  TIMEOUT 600)

# The HTTP front door (issue 12): conformance, the adversarial suite and kvctl's retry
# rule. Its own binary, so that it runs beside process_test:
#   build/tests/kvserver/process_http_test '[adversarial]'    # or '[http]', '~[slow]', '[kvctl]'
kv_process_test(process_http_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_http_test.cc)

# HTTPS on the HTTP port (issue 14): a TLS cluster with client certificates, kvctl over
# HTTPS, reload on SIGHUP. Certificates from scripts/make-certs.sh (the openssl command).
#   build/tests/kvserver/process_https_test '[sighup]'
kv_process_test(process_https_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_https_test.cc)

# TLS on both ports (issue 14): a 3-node cluster with HTTPS and TLS between the nodes
# (-peer-cert-file etc.), failover and rejoin, plain connections and a foreign CA refused.
#   build/tests/kvserver/process_tls_test
kv_process_test(process_tls_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_tls_test.cc)

# Authentication and authorization on the HTTP port (issue 14): -auth-file roles on every
# route, the join token, forwarding with the client's token, CSRF/Host refusals, kvctl.
kv_process_test(process_auth_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_auth_test.cc
                TIMEOUT 120)

# The storage quota (issue 14): 507 past -quota-bytes, the NOSPACE alarm, recovery by
# deleting keys.
kv_process_test(process_quota_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_quota_test.cc)

# A full disk (issue 14): one node's RocksDB on a small tmpfs the test fills (needs root;
# otherwise it warns and passes without running).
kv_process_test(process_disk_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_disk_test.cc)

# Operators' habits (issue 15, "Deployment and habits"): -version, /livez and /readyz,
# kv_build_info and process_* metrics, integer formatting, promtool check metrics.
#   build/tests/kvserver/process_ops_test '[readyz]'
kv_process_test(process_ops_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_ops_test.cc TIMEOUT 120)
target_compile_definitions(process_ops_test PRIVATE
  DASHBOARD_JSON="${PROJECT_SOURCE_DIR}/docs/grafana/kvserver.json")

# A hostile peer on the Raft port (issue 14): crafted frames after a valid handshake (a
# huge term, non-contiguous entries, a snapshot without its file, a forged ack), a replayed
# handshake, a wrong secret, junk before the handshake; under load, losing nothing.
# It speaks the wire protocol with tests/runtime/raw_peer (the library's codecs).
kv_process_test(process_adversary_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_adversary_test.cc
          ${PROJECT_SOURCE_DIR}/tests/runtime/raw_peer.cc
  LIBS raft_internal TIMEOUT 180)
target_include_directories(process_adversary_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/runtime)

# Watch, indexes and TTL keys (issue 15): watchers and writers across a leader kill see
# exactly the committed sequence; expiry on every replica through a leader change; 410 past
# the retained history; kvctl watch and put -ttl.
#   build/tests/kvserver/process_watch_test '[ttl]'
kv_process_test(process_watch_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_watch_test.cc
                TIMEOUT 180)

# The snapshot footprint (issue 16): linked snapshots on the leader, one stream and a
# bounded directory for a node joining under load.
#   build/tests/kvserver/process_snapshot_test
kv_process_test(process_snapshot_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/process_snapshot_test.cc TIMEOUT 240)
