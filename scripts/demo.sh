#!/usr/bin/env bash
# make demo: the design note's module-argument programs, the quickstart, the BatchNorm/Dropout
# example, then the real thing: Flax's MNIST example on Fashion-MNIST (checkpoints, metrics.csv
# and metrics.svg in /tmp/loom_mnist), and a fine-tuning run from its checkpoint.
set -euo pipefail
build=${1:-build}
run() {
  echo "==> $*"
  "$@"
}
for prog in "$build"/examples/module_arguments/*; do
  if [ -x "$prog" ] && [ -f "$prog" ]; then run "$prog"; fi
done
run "$build/examples/quickstart/quickstart"
run "$build/examples/batchnorm_dropout/batchnorm_dropout"
workdir=${LOOM_MNIST_WORKDIR:-/tmp/loom_mnist}
run "$build/examples/mnist/mnist" --workdir "$workdir" ${MNIST_ARGS:-}
run "$build/examples/finetune/finetune" --workdir "$workdir" --steps 100
