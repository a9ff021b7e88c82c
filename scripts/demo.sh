#!/usr/bin/env bash
# The main job on the built-in example data:
#   1. fit detection B's baseline on the first three weeks (Splunk's baseline search, offline),
#   2. replay all four weeks through the detections with that baseline beside the configuration
#      (the `tripline` command runs the engine natively; the same records give the same alerts
#      in every host, the Fluent Bit module included: host-test/tests/equivalence.rs),
#   3. show the alerts; tagged records and alerts are written under target/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
data=examples/data/generated/cloudtrail.ndjson
work=target/demo
mkdir -p "$work"
tripline() { cargo run --release --locked -q -p tripline-cli --bin tripline -- "$@"; }

cat > "$work/tripline.json" <<'JSON'
{
  "models": ["baseline.json"],
  "detections": {"abnormally_high_cloud_security_group_api_calls": {"mode": "learn_and_judge"}}
}
JSON

echo "== fit: baseline from the first three weeks (until 2026-10-26)"
tripline fit --detection abnormally_high_cloud_security_group_api_calls --until 2026-10-26T00:00:00Z --out "$work/baseline.json" "$data"
echo
echo "== check: the configuration directory, as the module would load it"
tripline check "$work"
echo
echo "== replay: four weeks of CloudTrail through the detections"
# Exit status 1 means alerts were found, which is what the demo expects.
status=0
tripline replay --config "$work" --out "$work/tagged.ndjson" --alerts "$work/alerts.ndjson" "$data" || status=$?
if [ "$status" -ne 1 ]; then
  echo "demo: expected the planted alerts (exit status 1), got exit status $status" >&2
  exit 1
fi
echo
echo "planted in the example data (examples/data/generated/planted.json):"
python3 -c 'import json,sys; [print("  ", p["hour_start"], p["kind"], p["actor"], p["count"]) for p in json.load(open(sys.argv[1]))]' \
  examples/data/generated/planted.json
echo "tagged records: $work/tagged.ndjson   alerts: $work/alerts.ndjson"
echo "the Fluent Bit module with these detections: dist/tripline-fluentbit.wasm ($(wc -c < dist/tripline-fluentbit.wasm) bytes; README: Running it in Fluent Bit)"
