#!/usr/bin/env bash
# `make bench`: prints tripline's cost as ratios against peers measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -q -p tripline-host-test --features vrl-peer --bin bench -- "${1:-examples/data/generated/cloudtrail.ndjson}"
