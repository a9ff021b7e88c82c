#!/usr/bin/env bash
# Builds Fluent Bit from the source in ../shared/fluent-bit/ once, into a cache outside the checkout,
# and prints the binary's path. The cache key is the source tarball's checksum plus the CMake options,
# so a second run costs nothing and a change of either builds afresh.
#   scripts/fluent-bit.sh            build (or reuse) and print the path of the fluent-bit binary
#   scripts/fluent-bit.sh wamrc      the same for Fluent Bit's own ahead-of-time compiler (FLB_WAMRC):
#                                    an .aot file only loads in the WAMR release it was compiled for,
#                                    so the compiler must come from this same source tree
#   FLUENT_BIT_CACHE=DIR             where builds are kept (default ~/.cache/tripline)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
tarball="${FLUENT_BIT_TARBALL:-$here/../shared/fluent-bit/fluent-bit-5.1.1.tar.gz}"
product="${1:-fluent-bit}"
cache="${FLUENT_BIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tripline}/$product"

[ -f "$tarball" ] || { echo "fluent-bit.sh: no Fluent Bit source at $tarball" >&2; exit 2; }

packages=(cmake flex bison libyaml-dev libssl-dev libsqlite3-dev pkg-config)
# Off to save time; TLS, AWS and SQLDB do not compile off in 5.1.1 (../shared/fluent-bit/README.md).
common=(
  -DFLB_SQLDB=On -DFLB_PREFER_SYSTEM_LIB_SQLITE=On
  -DFLB_EXAMPLES=Off -DFLB_SHARED_LIB=Off -DFLB_KAFKA=Off -DFLB_ZIG=Off -DFLB_PROXY_GO=Off
  -DFLB_CUSTOM_CALYPTIA=Off -DFLB_STREAM_PROCESSOR=Off -DFLB_RIPSER=Off -DFLB_AVRO_ENCODER=Off
  -DFLB_ARROW=Off -DFLB_BACKTRACE=Off -DFLB_CHUNK_TRACE=Off
)
case "$product" in
  fluent-bit)
    # Every plugin off, then back on what tests, examples and the bench use (the alert routes of
    # examples/fluent-bit/ need es, splunk, s3 and kinesis_firehose; the scale-out examples the
    # kafka input and output, whose librdkafka is in the source's lib/, and nest): one build for
    # all, so that CI pays for one. `common` turns FLB_KAFKA off and the later -D wins, which
    # keeps wamrc's options, and its cache, as they were. Optimized like a
    # release build (an unoptimized WAMR interpreter would skew every benchmark); simdutf's AVX2
    # code does not compile at -O3 without -mavx2 and only serves the UTF-16 encoder.
    options=(
      -DCMAKE_BUILD_TYPE=Release -DFLB_USE_SIMDUTF=No -DFLB_MINIMAL=On
      -DFLB_IN_TAIL=On -DFLB_IN_DUMMY=On -DFLB_IN_STDIN=On -DFLB_IN_LIB=On -DFLB_IN_EMITTER=On
      -DFLB_FILTER_WASM=On -DFLB_FILTER_LUA=On -DFLB_FILTER_REWRITE_TAG=On
      -DFLB_OUT_STDOUT=On -DFLB_OUT_FILE=On -DFLB_OUT_NULL=On -DFLB_OUT_COUNTER=On -DFLB_OUT_LIB=On
      -DFLB_OUT_ES=On -DFLB_OUT_SPLUNK=On -DFLB_OUT_S3=On -DFLB_OUT_KINESIS_FIREHOSE=On
      -DFLB_IN_KAFKA=On -DFLB_OUT_KAFKA=On -DFLB_FILTER_NEST=On
      -DFLB_WASM=On -DFLB_LUAJIT=On -DFLB_HTTP_SERVER=On -DFLB_CONFIG_YAML=On -DFLB_PARSER=On
      -DFLB_RECORD_ACCESSOR=On -DFLB_REGEX=On
      "${common[@]}" -DFLB_KAFKA=On
    )
    # librdkafka links zlib and curl where it finds them: installed, so every machine builds alike.
    packages+=(zlib1g-dev libcurl4-openssl-dev)
    target=fluent-bit-bin built=bin/fluent-bit ;;
  wamrc)
    # Only the compiler is built, every plugin off. It links every static LLVM library Debian's
    # LLVMConfig.cmake lists, hence MLIR, Polly, libedit, libpfm and curl besides llvm-14-dev.
    options=(
      -DCMAKE_BUILD_TYPE=Release -DFLB_MINIMAL=On -DFLB_WAMRC=On
      -DLLVM_DIR=/usr/lib/llvm-14/lib/cmake/llvm
      "${common[@]}" -DFLB_LUAJIT=Off
    )
    packages+=(llvm-14-dev libcurl4-openssl-dev libmlir-14-dev libpolly-14-dev libedit-dev libpfm4-dev)
    target=flb-wamrc-bin built=bin/flb-wamrc ;;
  *) echo "usage: fluent-bit.sh [fluent-bit|wamrc]" >&2; exit 2 ;;
esac
key="$( { sha256sum "$tarball" | cut -d' ' -f1; printf '%s\n' "${options[@]}"; } | sha256sum | cut -c1-16)"
dir="$cache/$key"
binary="$dir/$product"

if [ ! -x "$binary" ]; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "fluent-bit.sh: please install ${missing[*]} (Debian packages)" >&2; exit 2
    fi
  fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/$product-build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "fluent-bit.sh: building $product into $dir (minutes on 2 cores)" >&2
  tar -xzf "$tarball" -C "$work"
  src="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)"
  # From the scratch directory: LuaJIT's CMake asks git about the *current* directory at
  # configure time, and a checkout there makes it run git in the (git-less) source at build time.
  (cd "$work" && cmake -S "$src" -B "$work/build" "${options[@]}") >"$work/configure.log" 2>&1 \
    || { tail -40 "$work/configure.log" >&2; exit 1; }
  make -C "$work/build" -j"$(nproc)" "$target" >"$work/build.log" 2>&1 \
    || { tail -60 "$work/build.log" >&2; exit 1; }
  mkdir -p "$dir"
  # Publish atomically: a concurrent or interrupted build never leaves a half-written binary.
  cp "$work/build/$built" "$dir/$product.tmp"
  mv "$dir/$product.tmp" "$binary"
fi
echo "$binary"
