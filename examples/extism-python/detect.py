#!/usr/bin/env python3
"""Run CloudTrail records through tripline's Extism plugin from Python and print the alerts.

    python detect.py [--config tripline.json] [--model baseline.json] [--flush-at UNIX_SECONDS] FILE...

Each FILE holds NDJSON (one CloudTrail record per line) or a CloudTrail S3 export
({"Records": [...]}). Records go to the plugin in batches; alerts arrive as their hourly
windows close, and a final `flush` closes the windows that are still open (by default at the
current wall-clock time, which closes every window of historical data).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import extism

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WASM = ROOT / "dist" / "tripline-extism.wasm"
ALERT_PREFIX = b'{"tripline_alert":'


class Tripline:
    """One plugin instance; the detection engine lives in its memory between calls."""

    def __init__(self, wasm=DEFAULT_WASM, config=None, model=None):
        # Extism's manifest `config` is a map of strings: the whole configuration document
        # goes under `tripline`, an optional fitted model under `tripline_model`.
        manifest_config = {"tripline": json.dumps(config or {})}
        if model is not None:
            manifest_config["tripline_model"] = json.dumps(model)
        self.plugin = extism.Plugin(Path(wasm).read_bytes(), wasi=False, config=manifest_config, functions=[])

    def process(self, batch: bytes):
        """Returns (records, alerts): every record, tagged or byte-identical, and the alerts."""
        return split(self.plugin.call("process", batch))

    def flush(self, now: int):
        """Closes the windows that wall-clock time `now` (Unix seconds) has passed."""
        return split(self.plugin.call("flush", str(int(now))))[1]

    def stats(self) -> dict:
        return json.loads(self.plugin.call("stats", b""))

    def snapshot(self) -> bytes:
        return self.plugin.call("snapshot", b"")

    def restore(self, snapshot: bytes) -> dict:
        """{"ok": true} or {"ok": false, "error": "..."}; a bad snapshot keeps the current state."""
        return json.loads(self.plugin.call("restore", snapshot))

    def model(self, detection: str):
        return json.loads(self.plugin.call("model", detection))


def split(framed: bytes):
    """Splits `process`/`flush` output into record lines and alert objects."""
    records, alerts = [], []
    for line in framed.splitlines():
        if line.startswith(ALERT_PREFIX):
            alerts.append(json.loads(line)["tripline_alert"])
        elif line:
            records.append(line)
    return records, alerts


def batches(path: Path, size: int):
    """NDJSON in batches of `size` lines; a file that is one JSON document (an S3 export) whole."""
    data = path.read_bytes()
    try:
        json.loads(data)
    except ValueError:
        lines = data.splitlines(keepends=True)
        for start in range(0, len(lines), size):
            yield b"".join(lines[start:start + size])
    else:
        yield data


def describe(alert: dict) -> str:
    window = alert["window"]["start"]
    return f'{window}  risk {alert["risk_score"]:>3}  {alert["detection"]["name"]}: {alert["risk_message"]}'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--wasm", type=Path, default=DEFAULT_WASM)
    parser.add_argument("--config", type=Path, help="tripline configuration (JSON); default: {}")
    parser.add_argument("--model", type=Path, help="a fitted baseline model (JSON) to load")
    parser.add_argument("--batch", type=int, default=1000, help="records per call (default 1000)")
    parser.add_argument("--flush-at", type=int, default=None, help="Unix seconds for the final flush (default: now)")
    parser.add_argument("--json", action="store_true", help="print alerts as JSON lines")
    args = parser.parse_args(argv)

    config = json.loads(args.config.read_text()) if args.config else {}
    model = json.loads(args.model.read_text()) if args.model else None
    tripline = Tripline(args.wasm, config, model)

    alerts = []
    for path in args.files:
        for batch in batches(path, args.batch):
            alerts += tripline.process(batch)[1]
    alerts += tripline.flush(args.flush_at if args.flush_at is not None else int(time.time()))

    for alert in alerts:
        print(json.dumps(alert, separators=(",", ":")) if args.json else describe(alert))
    stats = tripline.stats()
    counters = stats["counters"]
    print(f'{counters["records"]} records, {counters["matched"]} matched, {len(alerts)} alerts', file=sys.stderr)
    if stats["config_error"]:
        print(f'configuration error: {stats["config_error"]}', file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
