#!/usr/bin/env bash
# End-to-end smoke test of the counter example: three counterd processes on loopback.
#
#   examples/counter/smoke_test.sh path/to/counterd
#
# Start n1 (bootstrap), n2, n3; add n2 and n3 from the leader; incr on the leader and
# read it back with `get` on the followers; stop n3, incr, restart n3 and check it has
# the new total; add a fresh n4 after the log was compacted (it catches up by snapshot);
# stop the leader and check another takes over; stop every node (SIGINT, quit and end of
# input) and restart them all: the counter survives.
# Each node reads its commands from a FIFO; every command answers exactly one line.
#
# Exit status 0 on success, 1 on a failed check (the work directory with every node's
# stdout/stderr is kept and printed). Takes about 5 s.
# COUNTER_BASE_PORT picks the ports (base+1 .. base+4). Default: random below the kernel's
# ephemeral range (outgoing connections take ports from that range, and a node started
# late, like n4, could find its port taken), with all four ports unused when picked.
set -euo pipefail

BIN=${1:-${COUNTERD:-}}
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "usage: $0 path/to/counterd" >&2
  exit 2
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
port_in_use() {  # port -> 0 when any TCP socket on this machine uses it
  ss -Htan 2>/dev/null | awk -v p=":$1" '$4 ~ p"$" || $5 ~ p"$" { found = 1 } END { exit !found }'
}
pick_base() {
  local lo=32768 range base i try free
  if read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null; then :; fi
  range=$((lo - 20000 - 5))
  [ "$range" -gt 100 ] || range=10000
  for try in $(seq 1 50); do
    base=$((20000 + (RANDOM * 32768 + RANDOM) % range))
    free=1
    for i in 1 2 3 4; do
      if port_in_use $((base + i)); then free=0; break; fi
    done
    if [ "$free" -eq 1 ]; then echo "$base"; return; fi
  done
  echo "$base"
}
BASE=${COUNTER_BASE_PORT:-$(pick_base)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/counter-smoke.XXXXXX")
REPLY_TIMEOUT_S=15
declare -A PID FD

fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.out "$WORK"/*.err; do
    [ -f "$f" ] || continue
    echo "---- $f (last 20 lines)" >&2
    tail -n 20 "$f" >&2
  done
  echo "work directory kept: $WORK" >&2
  exit 1
}

cleanup() {
  local rc=$?
  for n in "${!PID[@]}"; do kill -KILL "${PID[$n]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

port_of() { echo $((BASE + ${1#n})); }

# start NAME [flags...]: runs counterd with stdin from a FIFO held open on fd FD[NAME].
start() {
  local name=$1
  shift
  local fifo=$WORK/$name.in
  [ -p "$fifo" ] || mkfifo "$fifo"
  (
    # Close the other nodes' FIFO write ends: a node holding one would keep that node
    # from ever seeing end of input.
    for other in "${FD[@]}"; do exec {other}>&-; done
    exec "$BIN" --name "$name" --raft "127.0.0.1:$(port_of "$name")" --data "$WORK/data/$name" \
      --tick-ms 50 --snapshot-entries 4 --snapshot-trailing 1 "$@"
  ) <"$fifo" >>"$WORK/$name.out" 2>>"$WORK/$name.err" &
  PID[$name]=$!
  local fd
  exec {fd}>"$fifo"
  FD[$name]=$fd
}

# cmd NAME LINE...: sends one command and prints its one-line answer.
cmd() {
  local name=$1
  shift
  local out=$WORK/$name.out
  touch "$out"
  local before
  before=$(wc -l <"$out")
  echo "$*" >&"${FD[$name]}"
  local deadline=$((SECONDS + REPLY_TIMEOUT_S))
  while [ "$(wc -l <"$out")" -le "$before" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$name: no answer to '$*'"
    kill -0 "${PID[$name]}" 2>/dev/null || fail "$name exited while answering '$*'"
    sleep 0.05
  done
  sed -n "$((before + 1))p" "$out"
}

# expect NAME 'LINE' 'ANSWER-GLOB': the answer to LINE must match the glob.
expect() {
  local got
  got=$(cmd "$1" "$2")
  # shellcheck disable=SC2053
  [[ "$got" == $3 ]] || fail "$1: '$2' answered '$got', expected '$3'"
  echo "  $1> $2  ->  $got"
}

# wait_for NAME 'LINE' 'ANSWER-GLOB' SECONDS: repeats LINE until the answer matches.
wait_for() {
  local deadline=$((SECONDS + $4)) got
  while :; do
    got=$(cmd "$1" "$2")
    # shellcheck disable=SC2053
    if [[ "$got" == $3 ]]; then
      echo "  $1> $2  ->  $got"
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "$1: '$2' still answers '$got', expected '$3'"
    sleep 0.1
  done
}

# find_leader NAME...: waits up to 10 s for one of the named nodes to be leader; prints it.
find_leader() {
  local deadline=$((SECONDS + 10)) n
  while :; do
    for n in "$@"; do
      if [[ "$(cmd "$n" status)" == *role=Leader* ]]; then
        echo "$n"
        return 0
      fi
    done
    [ "$SECONDS" -lt "$deadline" ] || fail "none of $* became leader"
    sleep 0.1
  done
}

# stop NAME quit|eof|sigint: stops a node and checks it exits 0 within 10 s.
stop() {
  local name=$1 how=$2 pid=${PID[$1]}
  case "$how" in
    quit) echo quit >&"${FD[$name]}" ;;
    eof) ;;
    sigint) kill -INT "$pid" ;;
  esac
  local fd=${FD[$name]}
  exec {fd}>&-
  local deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$name did not stop after $how"
    sleep 0.05
  done
  local rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "$name exited with status $rc after $how"
  unset "PID[$name]"
  echo "  $name stopped ($how)"
}

echo "counter smoke test: ports $((BASE + 1))-$((BASE + 4)), work $WORK"

echo "1. three nodes; n1 bootstraps and becomes leader"
start n1 --bootstrap
start n2
start n3
wait_for n1 status '*role=Leader*' 10
expect n2 members 'ok none known yet*'

echo "2. add n2 and n3 from the leader"
expect n1 'add n2 127.0.0.1:'"$(port_of n2)" 'ok n2 added as a voter'
expect n1 'add n3 127.0.0.1:'"$(port_of n3)" 'ok n3 added as a voter'
expect n1 members 'ok n1 * voter; n2 * voter match=[0-9]*; n3 * voter match=[0-9]*'

echo "3. incr on the leader is visible on the followers"
expect n1 'incr 5' 'ok 5'
expect n1 'incr 2' 'ok 7'
expect n2 get 'ok 7'
expect n3 get 'ok 7'
expect n2 'incr 1' 'error NotLeader: the leader is n1 *'

echo "4. stop n3; the other two still commit; n3 restarts and catches up"
stop n3 quit
expect n1 'incr 10' 'ok 17'
expect n1 'incr -1' 'ok 16'
start n3
# Right after a restart a node knows no leader until the first heartbeat: get retries.
wait_for n3 get 'ok 16' 5

echo "5. a new node n4 joins after compaction and catches up by snapshot"
wait_for n1 status '*snapshot=[1-9]*' 5
start n4
expect n1 'add n4 127.0.0.1:'"$(port_of n4)" 'ok n4 added as a voter'
wait_for n4 get 'ok 16' 5
expect n4 status '*snapshot=[1-9]*value=16*'

echo "6. stop the leader n1 (SIGINT): another node takes over; n1 rejoins as a follower"
stop n1 sigint
leader=$(find_leader n2 n3 n4)
expect "$leader" 'incr 4' 'ok 20'
start n1
wait_for n1 get 'ok 20' 10
expect n1 'incr 1' 'error NotLeader: *leader is *'

echo "7. stop every node (SIGINT, quit, end of input) and restart them all"
stop n1 sigint
stop n2 quit
stop n3 eof
stop n4 sigint
for n in n1 n2 n3 n4; do start "$n"; done
# Each node rebuilds the value from its own snapshot and log, before any election.
for n in n1 n2 n3 n4; do wait_for "$n" status '*value=20*' 5; done
leader=$(find_leader n1 n2 n3 n4)
expect "$leader" 'incr 1' 'ok 21'
for n in n1 n2 n3 n4; do wait_for "$n" get 'ok 21' 5; done
for n in n1 n2 n3 n4; do stop "$n" quit; done

echo "PASS (${SECONDS}s)"
