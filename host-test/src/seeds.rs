//! The two seed detections alone: the configuration the seed tests run under, with every other
//! built-in rule off, so that what they pin (which records the seeds tag, which alerts they
//! raise) is not mixed with the pack's own results, which `tests/rules.rs` pins.

use serde_json::{json, Value};

/// Seed A, compiled from its ESCU search.
pub const BATCH_KEY: &str = "aws_exfiltration_via_batch_service";
/// Seed B, a rule written by hand (`rules/seeds/`).
pub const SECURITY_GROUP_KEY: &str = "abnormally_high_cloud_security_group_api_calls";

/// `config` with every built-in rule but the seeds turned off (settings it has are kept).
pub fn seeds_only(mut config: Value) -> Value {
    if config.get("detections").is_none() {
        config["detections"] = json!({});
    }
    for rule in tripline::catalog::builtin_rules() {
        let key = rule.metadata.key;
        if ![BATCH_KEY, SECURITY_GROUP_KEY].contains(&key.as_str()) && config["detections"].get(&key).is_none() {
            config["detections"][key] = json!({"enabled": false});
        }
    }
    config
}

/// Every built-in detection on (`true`: the whole pack, ESCU's experimental and Hunting rules
/// too) or off (`false`: what remains is the host's cost of calling the module).
pub fn every_detection(enabled: bool) -> Value {
    let mut detections = serde_json::Map::new();
    for rule in tripline::catalog::builtin_rules() {
        detections.insert(rule.metadata.key, json!({ "enabled": enabled }));
    }
    json!({ "detections": detections })
}

/// The eventNames seed B counts (the security-group calls), from its rule: the peers select
/// by the same list.
pub fn security_group_calls() -> Vec<String> {
    let rules = tripline::catalog::builtin_rules();
    rules.into_iter().find(|r| r.metadata.key == SECURITY_GROUP_KEY).map(|r| r.event_names).unwrap_or_default()
}
