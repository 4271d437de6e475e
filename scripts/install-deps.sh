#!/usr/bin/env bash
# Installs the Debian 12 packages loom needs to build, test and benchmark, when missing.
# Idempotent: does nothing (and needs no network) when everything is present.
set -euo pipefail

packages=(
  g++ cmake make ccache pkg-config
  libopenblas-dev      # sgemm/dgemm
  libdnnl-dev          # oneDNN: float32 convolutions (src/lax/dnnl_conv.cpp)
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libcli11-dev         # examples/mnist command line
  zlib1g-dev           # gzipped IDX files (loom::data)
  dataset-fashion-mnist  # /usr/share/datasets/fashion-mnist, the default data of loom::data
  python3-msgpack python3-numpy  # serialization_test: Flax-format interop (skipped without them)
  clang libfuzzer-14-dev         # make fuzz: the libFuzzer target of the checkpoint reader
  libopenmpi-dev openmpi-bin     # loom::distributed over MPI; mpirun -np 2 tests
)

# With arguments, installs those packages instead (scripts/install-bench-deps.sh uses this).
if [ $# -gt 0 ]; then packages=("$@"); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "$(basename "$0"): installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
