#!/usr/bin/env bash
# Runs the best example that exists: the training example once it lands, until then the
# design note's module-argument programs.
set -euo pipefail
build=${1:-build}
ran=0
for prog in "$build"/examples/*/*; do
  if [ -x "$prog" ] && [ -f "$prog" ]; then
    echo "==> $prog"
    "$prog"
    ran=1
  fi
done
[ "$ran" = 1 ] || { echo "demo: no example was built" >&2; exit 1; }
