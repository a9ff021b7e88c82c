//! Detection B through the real Fluent Bit module: the worked example of splunk-semantics.md,
//! what counts as a call, the cardinality floor, offline fit against online learning, and the
//! mapping of the real third-party samples.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};
use tripline_host_test::artifacts::shared_data;

/// Monday 2026-10-05T10:00:00Z: the 8-12 weekday block.
const MONDAY_10H: i64 = 1_791_194_400;
const WORKED: [usize; 16] = [2, 3, 3, 4, 2, 5, 3, 4, 3, 2, 3, 4, 3, 2, 5, 3];
const COMMANDS: [&str; 3] = ["AuthorizeSecurityGroupIngress", "CreateSecurityGroup", "RevokeSecurityGroupEgress"];

fn weekdays() -> impl Iterator<Item = i64> {
    (0..).filter(|d| d % 7 < 5)
}

/// One hour of `calls` successful security-group calls by `user`, plus noise that must not
/// count: failed calls and EC2 calls outside the six `firewall` eventNames.
fn hour_of_calls(start: i64, user: &str, calls: usize) -> Vec<Value> {
    let mut records = Vec::new();
    for i in 0..calls {
        records.push(ec2_call(start + 1790 * i as i64 / calls as i64, user, COMMANDS[i % COMMANDS.len()], None));
    }
    records.push(ec2_call(start + 1800, user, "AuthorizeSecurityGroupIngress", Some("Client.UnauthorizedOperation")));
    records.push(ec2_call(start + 1801, user, "DescribeSecurityGroups", None));
    records.push(ec2_call(start + 1802, user, "ModifySecurityGroupRules", None));
    records
}

/// `history` hours on consecutive weekdays, then the judged hour, then a heartbeat that closes it.
fn scenario(history: &[usize], judged_calls: usize) -> Vec<Value> {
    let days: Vec<i64> = weekdays().take(history.len() + 1).collect();
    let mut records = Vec::new();
    for (day, calls) in days.iter().zip(history) {
        records.extend(hour_of_calls(MONDAY_10H + day * 86_400, "AIDAWORKEDEXAMPLE", *calls));
    }
    let judged = MONDAY_10H + days[history.len()] * 86_400;
    records.extend(hour_of_calls(judged, "AIDAWORKEDEXAMPLE", judged_calls));
    records.push(heartbeat(judged + 2 * 3600));
    records
}

fn run_scenario(history: &[usize], judged_calls: usize) -> Vec<Value> {
    let dir = scratch_dir("worked");
    let mut filter = start_filter(&dir, &json!({}));
    of(&run(&mut filter, &scenario(history, judged_calls)), SG)
}

#[test]
fn worked_example_six_calls_fire_at_5_854() {
    let alerts = run_scenario(&WORKED, 6);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    let r = &a["result"];
    assert_eq!(r["security_group_api_calls"], 6);
    assert_eq!(r["expected_upper_threshold"], json!(5.854));
    assert_eq!(r["distance_from_threshold"], json!(0.146));
    assert_eq!(r["user"], "AIDAWORKEDEXAMPLE");
    assert_eq!(r["command"], json!(COMMANDS));
    let columns: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        columns,
        ["_time", "user", "command", "security_group_api_calls", "expected_upper_threshold", "distance_from_threshold"]
    );
    assert_eq!(a["risk_score"], 15);
    assert_eq!(a["risk_object"], "AIDAWORKEDEXAMPLE");
    assert_eq!(a["risk_object_type"], "user");
    assert_eq!(
        a["risk_message"],
        "user AIDAWORKEDEXAMPLE has made 6 api calls related to security groups, violating the dynamic threshold of 5.854 \
         with the following command AuthorizeSecurityGroupIngress, CreateSecurityGroup, RevokeSecurityGroupEgress."
    );
    assert_eq!(a["annotations"]["mitre_attack"], json!(["T1078.004", "T1078"]));
}

#[test]
fn worked_example_five_calls_do_not_fire() {
    assert!(run_scenario(&WORKED, 5).is_empty());
}

#[test]
fn groups_under_cardinality_16_never_fire() {
    assert!(run_scenario(&WORKED[..15], 500).is_empty());
}

/// The learned model as the module's saved state holds it.
fn model_from_saved_state(dir: &std::path::Path, config: &Value) -> Value {
    saved_state(dir, config).model(SG).unwrap()
}

#[test]
fn offline_fit_and_online_learning_give_identical_models() {
    let records = example_records();
    let last = records.last().unwrap()["eventTime"].as_str().unwrap().to_string();
    let end = chrono::DateTime::parse_from_rfc3339(&last).unwrap().timestamp();
    let heartbeat = heartbeat(end + 3 * 3600);

    // Online, inside the module: learn from every hour as it closes.
    let dir = scratch_dir("online");
    let config = json!({"detections": {SG: {"mode": "learn"}}, "snapshot": {"every_records": 0}});
    let mut filter = start_filter(&dir, &config);
    run(&mut filter, &records);
    run(&mut filter, std::slice::from_ref(&heartbeat));
    let online = model_from_saved_state(&dir, &config);

    // Offline, the CLI's `fit` over the same history file.
    let data = dir.join("history.ndjson");
    let lines: Vec<String> = records.iter().chain([&heartbeat]).map(Value::to_string).collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let model_path = dir.join("baseline.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["fit", "--out"])
        .arg(&model_path)
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success());
    let offline: Value = serde_json::from_slice(&std::fs::read(&model_path).unwrap()).unwrap();

    assert_eq!(offline["groups"].as_array().unwrap().len(), online["groups"].as_array().unwrap().len());
    assert!(offline["groups"].as_array().unwrap().len() >= 20);
    assert_eq!(offline, online, "bit-identical models");

    // And the model is the plain two-pass normal fit of the hourly counts.
    let g = &online["groups"][0];
    let (n, mean) = (g["fit"]["cardinality"].as_u64().unwrap(), g["fit"]["mean"].as_f64().unwrap());
    let total: f64 = g["days"].as_array().unwrap().iter().map(|d| d["n"].as_f64().unwrap() * d["mean"].as_f64().unwrap()).sum();
    assert!((total / n as f64 - mean).abs() < 1e-9);
}

/// What the Splunk Add-on 5.x + Change data model would count, computed independently:
/// per principalId, the total successful firewall calls and the number of distinct hours.
fn expected_counts(records: &[Value]) -> BTreeMap<String, (u64, u64)> {
    // Written out from splunk-semantics.md, not taken from the code under test.
    let six = [
        "CreateSecurityGroup",
        "DeleteSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress",
    ];
    let mut hours: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
    for r in records {
        let Some(user) = r["userIdentity"]["principalId"].as_str() else { continue };
        if !six.contains(&r["eventName"].as_str().unwrap_or("")) || r.get("errorCode").is_some() {
            continue;
        }
        let t = tripline::time::parse_event_time(r["eventTime"].as_str().unwrap()).unwrap();
        *hours.entry(user.to_string()).or_default().entry(t.div_euclid(3600)).or_default() += 1;
    }
    hours.into_iter().map(|(u, h)| (u, (h.values().sum(), h.len() as u64))).collect()
}

#[test]
fn third_party_samples_map_to_the_change_data_model() {
    let mut records: Vec<Value> = Vec::new();
    for line in std::fs::read_to_string(shared_data("panther_analysis_cloudtrail_test_events.jsonl")).unwrap().lines() {
        records.push(serde_json::from_str::<Value>(line).unwrap()["log"].clone());
    }
    for line in std::fs::read_to_string(shared_data("security_content_data_sources_cloudtrail_examples.jsonl")).unwrap().lines() {
        records.push(serde_json::from_str(line).unwrap());
    }
    // Replayed in event-time order, as an archive replay would be.
    let time = |r: &Value| r["eventTime"].as_str().and_then(tripline::time::parse_event_time).unwrap_or(i64::MIN);
    records.sort_by_key(time);
    let expected = expected_counts(&records);
    assert!(expected.len() >= 2, "the samples hold security-group calls by several principals");

    let dir = scratch_dir("samples");
    let config = json!({"detections": {SG: {"mode": "learn", "horizon_days": null}}});
    let mut filter = start_filter(&dir, &config);
    let end = records.iter().map(time).max().unwrap();
    let mut alerts = run(&mut filter, &records);
    alerts.extend(run(&mut filter, &[heartbeat(end + 3 * 3600)]));
    assert!(of(&alerts, SG).is_empty(), "learn mode never judges");

    let model = model_from_saved_state(&dir, &config);
    let mut learned: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for g in model["groups"].as_array().unwrap() {
        let entry = learned.entry(g["user"].as_str().unwrap().to_string()).or_default();
        for d in g["days"].as_array().unwrap() {
            let n = d["n"].as_u64().unwrap();
            entry.0 += (d["mean"].as_f64().unwrap() * n as f64).round() as u64;
            entry.1 += n;
        }
    }
    assert_eq!(learned, expected);
}
