#!/usr/bin/env bash
# End-to-end test of the playground (examples/playground/) in headless Chromium.
#
# Installs what it needs, each step skipped when already done:
#   - Debian's `chromium` (apt-get; never Playwright's own browser download);
#   - npm `playwright-core` at a pinned version, into target/tools/playwright (not the project);
#   - the JS package (dist/js/) and the example data, via make, if missing.
# Then runs js/browser/*.test.mjs with Node's test runner and prints `N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_CORE_VERSION=1.65.1
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
TOOLS=target/tools/playwright

if [[ ! -x $CHROMIUM ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "test-browser: installing Debian chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test-browser: $CHROMIUM not found; install Debian's chromium (apt-get install chromium)" >&2
    exit 1
  fi
fi

installed=$(node -p "try { require('./$TOOLS/node_modules/playwright-core/package.json').version } catch { '' }")
if [[ $installed != "$PLAYWRIGHT_CORE_VERSION" ]]; then
  echo "test-browser: installing playwright-core@$PLAYWRIGHT_CORE_VERSION into $TOOLS" >&2
  mkdir -p "$TOOLS"
  [[ -f $TOOLS/package.json ]] || echo '{"private": true}' >"$TOOLS/package.json"
  # playwright-core has no install script and downloads no browser.
  npm install --prefix "$TOOLS" --no-audit --no-fund --save-exact --loglevel=error \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
fi

[[ -f dist/js/index.js && -f dist/js/tripline_bg.wasm ]] || make --no-print-directory js
[[ -s examples/data/generated/cloudtrail.ndjson ]] || make --no-print-directory example-data

mkdir -p target/test-artifacts
log=target/test-artifacts/test-browser.tap
set +e
CHROMIUM=$CHROMIUM PLAYWRIGHT_CORE_DIR=$PWD/$TOOLS \
  node --test --test-reporter=tap js/browser/ 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
[[ -f target/test-artifacts/playground.png ]] && echo "screenshot: target/test-artifacts/playground.png"
echo "${passed:-0} passed, ${failed:-?} failed"
if [[ $status != 0 || ${failed:-1} != 0 || ${passed:-0} == 0 ]]; then
  exit 1
fi
