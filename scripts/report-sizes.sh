#!/usr/bin/env bash
# Prints each artifact's size as built and after `wasm-opt -Oz` (the optimized copies are kept
# beside the originals as *.opt.wasm; hosts may load either).
set -euo pipefail
dist=${1:-dist}
printf '%-32s %12s %12s\n' artifact built wasm-opt
for wasm in "$dist"/tripline-*.wasm "$dist"/js/tripline_bg.wasm; do
  [[ -f $wasm && $wasm != *.opt.wasm ]] || continue
  opt=${wasm%.wasm}.opt.wasm
  flags=(-Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types)
  if [[ $wasm == *component* ]]; then
    printf '%-32s %12d %12s\n' "$(basename "$wasm")" "$(stat -c %s "$wasm")" "(component)"
    continue
  fi
  if command -v wasm-opt >/dev/null && wasm-opt "${flags[@]}" "$wasm" -o "$opt" 2>/dev/null; then
    printf '%-32s %12d %12d\n' "$(basename "$wasm")" "$(stat -c %s "$wasm")" "$(stat -c %s "$opt")"
  else
    printf '%-32s %12d %12s\n' "$(basename "$wasm")" "$(stat -c %s "$wasm")" "n/a"
  fi
done
