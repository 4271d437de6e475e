#!/usr/bin/env bash
# Installs the peers `make bench` compares loom against: Debian 12's PyTorch (python3-torch) and
# its C++ frontend libtorch (libtorch-dev), 1.13.1 on bookworm. Bench only: loom itself, its tests
# and examples never need them, so they are not in install-deps.sh. Idempotent: does nothing (and
# needs no network) when everything is present.
set -euo pipefail

packages=(python3-torch libtorch-dev)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-bench-deps: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
