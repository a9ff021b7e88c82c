#!/usr/bin/env bash
# Installs what the build needs on a fresh machine; every step is skipped when already done.
set -euo pipefail
WASM_BINDGEN_VERSION=0.2.130

installed_targets=$(rustup target list --installed)
for target in wasm32-wasip1 wasm32-unknown-unknown wasm32-wasip2; do
  grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done

if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
  # Not --locked: the CLI's own lockfile pins a webpki-roots release the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

apt_packages=()
command -v wasm-opt >/dev/null || apt_packages+=(binaryen)
if ((${#apt_packages[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
  else
    echo "setup: please install ${apt_packages[*]} (Debian packages)" >&2
  fi
fi
