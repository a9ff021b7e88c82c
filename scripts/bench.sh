#!/usr/bin/env bash
# `make bench`: prints tripline's cost as ratios against peers measured in the same run: natively,
# in the wasmtime harness, then in a real Fluent Bit over a million generated records.
#   scripts/bench.sh [DATA]   DATA: records for the native section (default: the example data)
#   FLUENT_BIT=PATH           use this fluent-bit binary (default: scripts/fluent-bit.sh builds one)
#   WAMRC=PATH                wamrc for the AOT rows (default: scripts/fluent-bit.sh wamrc, once `make aot` ran)
set -euo pipefail
cd "$(dirname "$0")/.."

# The wasm-opt row: `make build` writes the .opt.wasm; write it the same way when missing or stale.
[[ dist/tripline-fluentbit.opt.wasm -nt dist/tripline-fluentbit.wasm ]] || ./scripts/report-sizes.sh dist >/dev/null
FLUENT_BIT="${FLUENT_BIT:-$(./scripts/fluent-bit.sh)}"
export FLUENT_BIT
# The AOT rows run only when `make aot` has built the module; the pass-through needs the same wamrc.
if [[ -z ${WAMRC:-} && -f dist/tripline-fluentbit.aot ]]; then
  WAMRC="$(./scripts/fluent-bit.sh wamrc)"
  export WAMRC
fi
cargo run --release --locked -q -p tripline-host-test --features vrl-peer --bin bench -- "${1:-examples/data/generated/cloudtrail.ndjson}"
