#!/usr/bin/env bash
# Installs exactly what the project needs from Debian 12 packages.
# Idempotent: when every package is already installed, apt is not touched.
set -euo pipefail

PACKAGES=(
  # build tools
  cmake ninja-build g++ clang pkg-config ccache clang-format
  # libraft
  libasio-dev libfmt-dev
  # kvserver
  librocksdb-dev nlohmann-json3-dev libcpp-httplib-dev libboost1.81-dev libssl-dev
  # tests (prometheus: promtool check metrics; systemd: systemd-analyze verify)
  catch2 openssl prometheus systemd
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
