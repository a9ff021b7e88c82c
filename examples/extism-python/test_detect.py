"""Tests of tripline's Extism plugin through the Python SDK, on real and generated records.

Runs under pytest, or alone (`python test_detect.py`), which prints `N passed, M failed`.
Needs dist/tripline-extism.wasm (`make extism`) and the example data (`make example-data`).
"""

import json
import sys
import traceback
from pathlib import Path

from detect import ROOT, Tripline, main

SHARED = ROOT.parent / "shared" / "data"
GENERATED = ROOT / "examples" / "data" / "generated"
JOB_CREATED = SHARED / "splunk_security_content_jobcreated_example.json"
# 2023-04-25T00:10:00Z: the JobCreated record's hour has ended and the 10-minute lateness passed.
JOB_CREATED_CLOSES = 1_682_381_400


def test_job_created_is_tagged_and_alerted_when_its_hour_closes():
    record = JOB_CREATED.read_bytes().strip()
    tripline = Tripline()
    records, alerts = tripline.process(record)
    assert alerts == []
    assert len(records) == 1 and records[0].startswith(record[:-1])
    tagged = json.loads(records[0])
    assert tagged["tripline"]["matches"][0]["detection"]["name"] == "AWS Exfiltration via Batch Service"

    assert tripline.flush(JOB_CREATED_CLOSES - 1) == []
    alerts = tripline.flush(JOB_CREATED_CLOSES)
    assert len(alerts) == 1
    assert alerts[0]["risk_score"] == 64
    assert alerts[0]["result"] == {
        "src_ip": "s3.amazonaws.com",
        "aws_account_id": "111111111111",
        "eventName": "JobCreated",
        "errorCode": "success",
        "userAgent": "s3.amazonaws.com",
        "count": 1,
        "firstTime": "2023-04-24T23:51:17",
        "lastTime": "2023-04-24T23:51:17",
        "job_arn": tagged["serviceEventDetails"]["jobArn"],
        "status": "New",
    }
    assert tripline.stats()["counters"]["records"] == 1


def test_other_records_come_back_byte_identical():
    data = (SHARED / "security_content_data_sources_cloudtrail_examples.jsonl").read_bytes()
    sent = [line for line in data.splitlines() if line.strip()]
    records, _ = Tripline().process(data)
    assert len(records) == len(sent)
    # ESCU's rules tag several of these real records: a tagged record is its own bytes with only
    # the `tripline` field added; every other one comes back byte for byte.
    changed = [(json.loads(got), json.loads(line)) for got, line in zip(records, sent) if got != line]
    for got, original in changed:
        assert got.pop("tripline")["matches"], "changed only to carry tags"
        assert got == original
    assert "JobCreated" in [original["eventName"] for _, original in changed]
    assert len(changed) < len(sent)


def test_invalid_config_passes_records_through_and_reports_it():
    tripline = Tripline(config={"window": {"length_seconds": 5}})
    record = JOB_CREATED.read_bytes().strip()
    assert tripline.process(record) == ([record], [])
    assert tripline.flush(JOB_CREATED_CLOSES) == []
    stats = tripline.stats()
    assert "window.length_seconds" in stats["config_error"]
    assert stats["counters"]["records"] == 1


def test_snapshot_restore_mid_stream_gives_the_same_alerts():
    lines = (GENERATED / "cloudtrail.ndjson").read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    end = 2_000_000_000

    whole = Tripline()
    expected = whole.process(b"".join(lines))[1] + whole.flush(end)

    first = Tripline()
    got = first.process(b"".join(lines[:half]))[1]
    snapshot = first.snapshot()
    second = Tripline()
    assert second.restore(b"garbage")["ok"] is False
    assert second.restore(snapshot) == {"ok": True}
    got += second.process(b"".join(lines[half:]))[1] + second.flush(end)

    assert got == expected
    assert second.stats()["counters"]["records"] == len(lines)


def test_every_planted_anomaly_is_alerted():
    planted = json.loads((GENERATED / "planted.json").read_text())
    tripline = Tripline()
    alerts = tripline.process((GENERATED / "cloudtrail.ndjson").read_bytes())[1] + tripline.flush(2_000_000_000)
    # The seeds' alerts; the rest of the default pack fires on the generator's ordinary traffic too.
    seeds = {"AWS Exfiltration via Batch Service", "Abnormally High Number Of Cloud Security Group API Calls"}
    alerts = [a for a in alerts if a["detection"]["name"] in seeds]
    assert len(alerts) == len(planted)
    for p in planted:
        starts = [a["window"]["start"] for a in alerts if p["actor"] in a["risk_message"]]
        assert p["hour_start"] in starts, p


def test_the_example_script_runs():
    assert main([str(JOB_CREATED), "--flush-at", str(JOB_CREATED_CLOSES)]) == 0


if __name__ == "__main__":
    passed = failed = 0
    for name, test in list(globals().items()):
        if name.startswith("test_") and callable(test):
            try:
                test()
                passed += 1
                print(f"ok      {name}")
            except Exception:
                failed += 1
                print(f"FAILED  {name}")
                traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
