#!/usr/bin/env bash
# Proves dist/tripline-extism.wasm from Python: a venv under target/ (reused when its pins are
# already installed), the pinned Extism SDK, the example script, then its tests.
set -euo pipefail
cd "$(dirname "$0")/.."

example=examples/extism-python
venv=target/python-venv
python=${PYTHON:-python3}

[ -s dist/tripline-extism.wasm ] || make --no-print-directory extism
[ -s examples/data/generated/cloudtrail.ndjson ] || make --no-print-directory example-data

if ! "$venv/bin/python" -c 'import extism' 2>/dev/null \
   || ! cmp -s "$example/requirements.txt" "$venv/requirements.txt"; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$example/requirements.txt"
  cp "$example/requirements.txt" "$venv/requirements.txt"
fi

echo "== example: detect.py on the generated data"
(cd "$example" && "../../$venv/bin/python" detect.py ../data/generated/cloudtrail.ndjson)

echo "== tests"
cd "$example"
exec "../../$venv/bin/python" test_detect.py
