#!/usr/bin/env bash
# The main job on the built-in example data:
#   1. fit detection B's baseline on the first three weeks (Splunk's baseline search, offline),
#   2. replay all four weeks through dist/tripline-fluentbit.wasm exactly as Fluent Bit calls it,
#      with that baseline shipped beside the configuration,
#   3. show the alerts; tagged records and alerts are written under target/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
data=examples/data/generated/cloudtrail.ndjson
work=target/demo
mkdir -p "$work"
tripline() { cargo run --release --locked -q -p tripline-host-test --bin tripline -- "$@"; }

cat > "$work/tripline.json" <<'JSON'
{
  "models": ["baseline.json"],
  "output": {"stats_every_records": 5000},
  "detections": {"abnormally_high_cloud_security_group_api_calls": {"mode": "learn_and_judge"}}
}
JSON

echo "== fit: baseline from the first three weeks (until 2026-10-26)"
tripline fit --until 2026-10-26T00:00:00Z --out "$work/baseline.json" "$data"
echo
echo "== replay: four weeks of CloudTrail through the Fluent Bit module"
tripline replay --module dist/tripline-fluentbit.wasm --config "$work/tripline.json" --model "$work/baseline.json" \
  --out "$work/tagged.ndjson" --alerts "$work/alerts.ndjson" "$data"
echo
echo "planted in the example data (examples/data/generated/planted.json):"
python3 -c 'import json,sys; [print("  ", p["hour_start"], p["kind"], p["actor"], p["count"]) for p in json.load(open(sys.argv[1]))]' \
  examples/data/generated/planted.json
echo "tagged records: $work/tagged.ndjson   alerts: $work/alerts.ndjson"
