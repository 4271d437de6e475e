#!/usr/bin/env bash
# Installs the peers `make bench` compares loom against: Debian 12's PyTorch (python3-torch) and
# its C++ frontend libtorch (libtorch-dev), 1.13.1 on bookworm. Bench only: loom itself, its tests
# and examples never need them, so they are not in install-deps.sh. Idempotent: does nothing (and
# needs no network) when everything is present.
set -euo pipefail

bash "$(dirname "$0")/install-deps.sh" python3-torch libtorch-dev
