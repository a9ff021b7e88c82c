#!/usr/bin/env bash
# Prints each artifact's size as built and after `wasm-opt -Oz` (the optimized copies are kept
# beside the originals as *.opt.wasm; hosts may load either, and the host tests load both).
#
# The JS module gets no copy: Debian's binaryen 108 writes every exported table as table 0
# (WebAssembly/binaryen#4711, fixed in release 110), so wasm-bindgen's exported externref table
# becomes the funcref table and the module no longer starts in Node. It is a bug of the binary
# writer, even without passes, so no flag avoids it. The component has no copy either.
set -euo pipefail
dist=${1:-dist}
flags=(-Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types)
printf '%-32s %12s %12s\n' artifact built wasm-opt
for wasm in "$dist"/tripline-*.wasm "$dist"/js/tripline_bg.wasm; do
  [[ -f $wasm && $wasm != *.opt.wasm ]] || continue
  opt=${wasm%.wasm}.opt.wasm
  case $wasm in
    *component*) note="(component)" ;;
    */js/*) note="(skipped)"; rm -f "$opt" ;;  # a copy left by an older build
    *) note="" ;;
  esac
  if [[ -n $note ]]; then
    printf '%-32s %12d %12s\n' "$(basename "$wasm")" "$(stat -c %s "$wasm")" "$note"
  elif command -v wasm-opt >/dev/null && wasm-opt "${flags[@]}" "$wasm" -o "$opt" 2>/dev/null; then
    printf '%-32s %12d %12d\n' "$(basename "$wasm")" "$(stat -c %s "$wasm")" "$(stat -c %s "$opt")"
  else
    printf '%-32s %12d %12s\n' "$(basename "$wasm")" "$(stat -c %s "$wasm")" "n/a"
  fi
done
