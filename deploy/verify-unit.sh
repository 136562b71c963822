#!/usr/bin/env bash
# Checks deploy/kvserver.service with `systemd-analyze verify` (CTest test
# deploy_systemd_unit_verify). The unit names /usr/local/bin/kvserver, which verify
# requires to exist: a copy of the unit with ExecStart pointing at the built binary is
# verified instead.
#   deploy/verify-unit.sh UNIT KVSERVER_BINARY
# Exit 0: the unit verifies; 1: it does not; 77: skipped (systemd-analyze absent).
set -euo pipefail

unit=${1:?usage: verify-unit.sh UNIT KVSERVER_BINARY}
bin=${2:?usage: verify-unit.sh UNIT KVSERVER_BINARY}

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIPPED: systemd-analyze not found (Debian package systemd; scripts/install-deps.sh installs it)"
  exit 77
fi
if [ ! -x "$bin" ]; then
  echo "verify-unit.sh: $bin is not an executable" >&2
  exit 1
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Same file name: verify checks the unit under its own name.
sed "s|/usr/local/bin/kvserver|$bin|g" "$unit" >"$dir/kvserver.service"
grep -q "^ExecStart=$bin " "$dir/kvserver.service" || {
  echo "verify-unit.sh: ExecStart does not start /usr/local/bin/kvserver" >&2
  exit 1
}

# --man=no: no man page look-ups for Documentation=. Every message is a finding: verify
# exits 0 for some warnings, so any output fails the test too.
out=$(systemd-analyze verify --man=no "$dir/kvserver.service" 2>&1) || {
  echo "$out"
  echo "verify-unit.sh: systemd-analyze verify failed" >&2
  exit 1
}
if [ -n "$out" ]; then
  echo "$out"
  echo "verify-unit.sh: systemd-analyze verify printed findings" >&2
  exit 1
fi
echo "verify-unit.sh: $unit verifies (ExecStart=$bin)"
