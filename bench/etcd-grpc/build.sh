#!/usr/bin/env bash
# Builds etcd-grpc, a closed-loop load generator for etcd's native gRPC API, from Debian packages.
# Usage: build.sh OUTPUT_BINARY   (needs: golang-go golang-etcd-server-dev; installs them if missing)
# Used by scripts/bench-compare.sh; see README.md.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
for p in golang-go golang-etcd-server-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$here"
GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOCACHE="$tmp/cache" go build -o "$out" .
