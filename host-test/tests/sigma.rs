//! The compiled Sigma rules (`rules/sigma/pack.json`) against the cases written from them
//! (`rules/sigma/tests.json`): every positive record carries a match of its rule in the
//! `tripline` field and every negative does not, all cases in one stream through the real
//! Fluent Bit; a record that a Sigma and an ESCU rule both select carries both matches; and the
//! rules run by default exactly as documented (status stable or test, level medium or higher).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tripline_host_test::artifacts::{dist, project_root};
use tripline_host_test::real_fluentbit::{printed_alerts, Example, Layout, Running};

const ESCU_DELETE_TRAIL: &str = "aws_defense_evasion_delete_cloudtrail";
const SIGMA_TRAIL_CHANGE: &str = "sigma_aws_cloudtrail_disable_logging";

struct Case {
    rule: String,
    positive: Value,
    negative: Value,
}

fn cases() -> Vec<Case> {
    let doc: Value = serde_json::from_slice(&std::fs::read(project_root().join("rules/sigma/tests.json")).unwrap()).unwrap();
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case { rule: c["rule"].as_str().unwrap().to_string(), positive: c["positive"].clone(), negative: c["negative"].clone() })
        .collect()
}

fn rules() -> Vec<tripline::rule::Rule> {
    tripline::catalog::builtin_rules()
}

fn sigma_rules() -> Vec<tripline::rule::Rule> {
    rules().into_iter().filter(|r| r.source.kind == "sigma").collect()
}

/// Every Sigma rule on and every other detection off, but the ESCU rules in `escu`.
fn config(escu: &[&str]) -> Value {
    let mut detections = Map::new();
    for rule in rules() {
        let on = rule.source.kind == "sigma" || escu.contains(&rule.metadata.key.as_str());
        detections.insert(rule.metadata.key, json!({"enabled": on}));
    }
    detections.insert(common::SG.into(), json!({"enabled": false}));
    json!({"detections": detections})
}

/// The match entries of a tagged record, by the `eventID` the cases give each record.
fn matches_by_event(lines: &[Vec<u8>]) -> BTreeMap<String, Vec<Value>> {
    lines
        .iter()
        .map(|line| {
            let record: Value = serde_json::from_slice(line).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
            let matches = record["tripline"]["matches"].as_array().cloned().unwrap_or_default();
            (record["eventID"].as_str().unwrap_or_default().to_string(), matches)
        })
        .collect()
}

fn ids(matches: &[Value]) -> BTreeSet<String> {
    matches.iter().filter_map(|m| m["detection"]["id"].as_str().map(str::to_string)).collect()
}

/// A DeleteTrail call that ESCU's "AWS Defense Evasion Delete Cloudtrail" and Sigma's "AWS
/// CloudTrail Important Change" both select.
fn delete_trail() -> Value {
    let mut record = cases().into_iter().find(|c| c.rule == SIGMA_TRAIL_CHANGE).unwrap().positive;
    record["eventName"] = json!("DeleteTrail");
    record["eventID"] = json!("both-escu-and-sigma");
    record
}

#[test]
fn every_sigma_rule_tags_its_positive_and_not_its_negative_in_real_fluent_bit() {
    let cases = cases();
    let sigma = sigma_rules();
    let keys: BTreeSet<&str> = sigma.iter().map(|r| r.metadata.key.as_str()).collect();
    let with_case: BTreeSet<&str> = cases.iter().map(|c| c.rule.as_str()).collect();
    assert_eq!(keys.len(), 57, "the pack holds SigmaHQ's 57 CloudTrail rules");
    assert_eq!(keys, with_case, "one case per compiled Sigma rule");

    let mut records: Vec<Value> = cases.iter().flat_map(|c| [c.positive.clone(), c.negative.clone()]).collect();
    records.push(delete_trail());
    let layout = Layout::new(common::scratch_dir("sigma-real-fb")).unwrap();
    layout.install_module(&dist("tripline-fluentbit.wasm")).unwrap();
    std::fs::write(layout.etc.join("tripline.json"), config(&[ESCU_DELETE_TRAIL]).to_string()).unwrap();
    let lines: Vec<Vec<u8>> = records.iter().map(|r| r.to_string().into_bytes()).collect();
    layout.append_input("cloudtrail.ndjson", &lines.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap();
    let path = layout.write_config(Example::Classic).unwrap();
    let mut fluent_bit = Running::start(&path, &[]).unwrap();
    fluent_bit.wait_until("every record", Duration::from_secs(120), |_| layout.tagged_lines().len() >= records.len()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let finished = fluent_bit.stop().unwrap();
    assert!(finished.status.success(), "fluent-bit did not exit cleanly:\n{}", finished.stderr);
    let tagged = layout.tagged_lines();
    assert_eq!(tagged.len(), records.len(), "every record comes out once");
    let by_event = matches_by_event(&tagged);
    // Each match is also an alert at once, with the rule's metadata, and a result row of the
    // record's fields its message names (the message is whole) and its eventID.
    let alerted: BTreeSet<String> = printed_alerts(&finished.stdout)
        .iter()
        .filter(|a| a["detection"]["source"] == "sigma" && a["result"]["eventName"].is_string())
        .filter(|a| by_event.contains_key(a["result"]["eventID"].as_str().unwrap_or_default()))
        .filter(|a| a["risk_message"].as_str().is_some_and(|m| !m.contains('$')))
        .filter_map(|a| a["detection"]["id"].as_str().map(str::to_string))
        .collect();

    let mut failures = Vec::new();
    for case in &cases {
        let rule = sigma.iter().find(|r| r.metadata.key == case.rule).unwrap();
        let id = &rule.metadata.id;
        let event = |r: &Value| r["eventID"].as_str().unwrap().to_string();
        let positive = by_event.get(&event(&case.positive)).cloned().unwrap_or_default();
        let negative = by_event.get(&event(&case.negative)).cloned().unwrap_or_default();
        match positive.iter().find(|m| m["detection"]["id"] == json!(id)) {
            None => failures.push(format!("{}: the positive record carries no match of it", case.rule)),
            Some(m) => {
                let sigma_meta = rule.metadata.sigma.as_ref().unwrap();
                let expected = json!({"id": id, "name": rule.metadata.name, "source": "sigma", "level": sigma_meta.level,
                                      "status": rule.metadata.status, "tags": sigma_meta.tags});
                if m["detection"] != expected {
                    failures.push(format!("{}: match metadata {} instead of {expected}", case.rule, m["detection"]));
                }
            }
        }
        if !alerted.contains(id) {
            failures.push(format!("{}: no alert", case.rule));
        }
        if ids(&negative).contains(id) {
            failures.push(format!("{}: the negative record matches it", case.rule));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));

    // One record, two rule sets: both matches in the one `tripline` field.
    let both = ids(&by_event["both-escu-and-sigma"]);
    let id_of = |key: &str| rules().into_iter().find(|r| r.metadata.key == key).unwrap().metadata.id;
    assert!(both.contains(&id_of(ESCU_DELETE_TRAIL)) && both.contains(&id_of(SIGMA_TRAIL_CHANGE)), "{both:?}");
}

#[test]
fn sigma_rules_run_by_default_when_stable_or_test_and_medium_or_higher() {
    let sigma = sigma_rules();
    let catalog = tripline::catalog::catalog(sigma.clone());
    let dir = common::scratch_dir("sigma-defaults");
    // No `detections` section: every rule at its default.
    let mut filter = common::start_filter(&dir, &json!({}));
    let mut on_by_default = 0;
    for case in cases() {
        let rule = sigma.iter().find(|r| r.metadata.key == case.rule).unwrap();
        let meta = &rule.metadata;
        let level = &meta.sigma.as_ref().unwrap().level;
        let expected = matches!(meta.status.as_str(), "stable" | "test") && matches!(level.as_str(), "medium" | "high" | "critical");
        assert_eq!(catalog.iter().find(|e| e.key == meta.key).unwrap().enabled_by_default, expected, "{}", meta.key);
        on_by_default += usize::from(expected);
        let t = case.positive["eventTime"].as_str().and_then(tripline::time::parse_event_time).unwrap();
        let reply = filter.filter(t as u32, &case.positive).unwrap();
        let matched = ids(&reply.matches()).contains(&meta.id);
        assert_eq!(matched, expected, "{} ({}, {level}) by default", meta.key, meta.status);
    }
    assert_eq!(on_by_default, 29);

    // A match on a record without a usable time is tagged, but raises no alert: its one-event
    // window would be the host's clock.
    let mut untimed = delete_trail();
    untimed["eventTime"] = json!("redacted");
    let mut fresh = common::start_filter(&common::scratch_dir("sigma-untimed"), &json!({}));
    let reply = fresh.filter(0, &untimed).unwrap();
    let id = sigma.iter().find(|r| r.metadata.key == SIGMA_TRAIL_CHANGE).unwrap().metadata.id.clone();
    assert!(ids(&reply.matches()).contains(&id), "tagged: {:?}", reply.tripline());
    assert!(!ids(&reply.alerts()).contains(&id), "no alert: {:?}", reply.tripline());
}
