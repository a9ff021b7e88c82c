//! Shared by the integration tests that drive the Fluent Bit module: scratch directories (the
//! `Accessible_Paths` preopen), CloudTrail record builders, and a run that collects alerts.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};
use tripline_host_test::artifacts::{dist, project_root};
use tripline_host_test::fluentbit::{FilterOptions, FluentBitFilter, FILTER_FUNCTION};

pub const SG: &str = "abnormally_high_cloud_security_group_api_calls";
pub const BATCH: &str = "aws_exfiltration_via_batch_service";

/// A fresh, empty directory under target/ (kept after the run for inspection).
pub fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = project_root()
        .join("target/test-scratch")
        .join(format!("{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Fluent Bit module started with `config` as `tripline.json` in `dir`.
pub fn start_filter(dir: &PathBuf, config: &Value) -> FluentBitFilter {
    std::fs::write(dir.join("tripline.json"), config.to_string()).unwrap();
    let options = FilterOptions::new(dist("tripline-fluentbit.wasm"), FILTER_FUNCTION).accessible_path(dir).capture_output();
    FluentBitFilter::start(options).unwrap()
}

pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A security-group (or other EC2) API call by an IAM user or assumed-role session.
pub fn ec2_call(t: i64, principal: &str, event_name: &str, error: Option<&str>) -> Value {
    let mut r = json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": principal, "arn": format!("arn:aws:iam::123456789012:user/{principal}"),
                         "accountId": "123456789012", "userName": principal},
        "eventTime": rfc3339(t),
        "eventSource": "ec2.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"groupId": "sg-0123456789abcdef0"},
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012"
    });
    if let Some(code) = error {
        r["errorCode"] = json!(code);
        r["errorMessage"] = json!("You are not authorized to perform this operation.");
    }
    r
}

/// An ordinary record whose only job is to move the watermark to `t`.
pub fn heartbeat(t: i64) -> Value {
    ec2_call(t, "AIDAHEARTBEAT", "DescribeInstances", None)
}

/// Runs `records` through `filter` with Fluent Bit's record time set to each `eventTime`,
/// asserting that no record is ever dropped; returns the alerts the records carried.
pub fn run(filter: &mut FluentBitFilter, records: &[Value]) -> Vec<Value> {
    let mut alerts = Vec::new();
    for record in records {
        // As a Fluent Bit parser with `Time_Key eventTime` would set it (0 where it cannot).
        let t = record["eventTime"].as_str().and_then(tripline::time::parse_event_time).unwrap_or(0);
        let reply = filter.filter(t as u32, record).unwrap();
        assert!(!reply.is_dropped(), "a record was dropped: {:?}", reply.outcome);
        alerts.extend(reply.alerts());
    }
    alerts
}

/// The state the module left in `dir`, as it restores it at start: the snapshot, if it wrote
/// one, with the journal replayed on top.
pub fn saved_state(dir: &std::path::Path, config: &Value) -> tripline::Engine {
    let mut engine = tripline::Engine::from_json(config.to_string().as_bytes());
    if let Ok(bytes) = std::fs::read(dir.join("tripline-state.snap")) {
        engine.restore(&bytes).unwrap();
    }
    if let Ok(journal) = std::fs::read(dir.join("tripline-state.journal")) {
        assert!(!tripline::journal::replay(&mut engine, &journal).damaged);
    }
    engine
}

/// The alerts of one detection.
pub fn of(alerts: &[Value], key: &str) -> Vec<Value> {
    let id = match key {
        SG => "d4dfb7f3-7a37-498a-b5df-f19334e871af",
        _ => "04455dd3-ced7-480f-b8e6-5469b99e98e2",
    };
    alerts.iter().filter(|a| a["detection"]["id"] == id).cloned().collect()
}

/// The generated example data set (4 weeks, seed 7), as records.
pub fn example_records() -> Vec<Value> {
    let mut bytes = Vec::new();
    tripline_generate::generate(&tripline_generate::Options::default(), &mut bytes).unwrap();
    bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}
