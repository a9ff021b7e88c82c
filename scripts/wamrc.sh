#!/usr/bin/env bash
# Builds Fluent Bit's own WAMR ahead-of-time compiler (`flb-wamrc`, CMake option FLB_WAMRC) from the
# source in ../shared/fluent-bit/ once, into a cache outside the checkout, and prints its path.
# An .aot file only loads in the WAMR release it was compiled for, so the compiler must come from the
# same source tree as the fluent-bit binary (scripts/fluent-bit.sh), not from another WAMR or LLVM.
# The cache key is the source tarball's checksum plus the CMake options, as in fluent-bit.sh.
#   scripts/wamrc.sh                 build (or reuse) and print the path of wamrc
#   WAMRC_CACHE=DIR                  where builds are kept (default ~/.cache/tripline/wamrc)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
tarball="${FLUENT_BIT_TARBALL:-$here/../shared/fluent-bit/fluent-bit-5.1.1.tar.gz}"
cache="${WAMRC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tripline/wamrc}"

[ -f "$tarball" ] || { echo "wamrc.sh: no Fluent Bit source at $tarball" >&2; exit 2; }

# Only the flb-wamrc target is built, so every plugin stays off; configure still needs the options that
# do not configure off in 5.1.1 (see fluent-bit.sh). LLVM 14 is the one Debian packages.
options=(
  -DCMAKE_BUILD_TYPE=Release -DFLB_MINIMAL=On -DFLB_WAMRC=On
  -DLLVM_DIR=/usr/lib/llvm-14/lib/cmake/llvm
  -DFLB_SQLDB=On -DFLB_PREFER_SYSTEM_LIB_SQLITE=On
  -DFLB_EXAMPLES=Off -DFLB_SHARED_LIB=Off -DFLB_KAFKA=Off -DFLB_ZIG=Off -DFLB_PROXY_GO=Off
  -DFLB_CUSTOM_CALYPTIA=Off -DFLB_STREAM_PROCESSOR=Off -DFLB_RIPSER=Off -DFLB_AVRO_ENCODER=Off
  -DFLB_ARROW=Off -DFLB_BACKTRACE=Off -DFLB_CHUNK_TRACE=Off -DFLB_LUAJIT=Off
)
key="$( { sha256sum "$tarball" | cut -d' ' -f1; printf '%s\n' "${options[@]}"; } | sha256sum | cut -c1-16)"
dir="$cache/$key"
binary="$dir/wamrc"

if [ ! -x "$binary" ]; then
  # flb-wamrc links every static LLVM library Debian's LLVMConfig.cmake lists, hence MLIR, Polly,
  # libedit, libpfm and curl besides llvm-14-dev.
  packages=(cmake flex bison libyaml-dev libssl-dev libsqlite3-dev pkg-config
            llvm-14-dev libcurl4-openssl-dev libmlir-14-dev libpolly-14-dev libedit-dev libpfm4-dev)
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "wamrc.sh: please install ${missing[*]} (Debian packages)" >&2; exit 2
    fi
  fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/wamrc-build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "wamrc.sh: building Fluent Bit's wamrc into $dir" >&2
  tar -xzf "$tarball" -C "$work"
  src="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)"
  cmake -S "$src" -B "$work/build" "${options[@]}" >"$work/configure.log" 2>&1 \
    || { tail -40 "$work/configure.log" >&2; exit 1; }
  make -C "$work/build" -j"$(nproc)" flb-wamrc-bin >"$work/build.log" 2>&1 \
    || { tail -60 "$work/build.log" >&2; exit 1; }
  mkdir -p "$dir"
  # Publish atomically: a concurrent or interrupted build never leaves a half-written binary.
  cp "$work/build/bin/flb-wamrc" "$dir/wamrc.tmp"
  mv "$dir/wamrc.tmp" "$binary"
fi
echo "$binary"
