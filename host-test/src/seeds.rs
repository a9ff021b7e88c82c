//! The two seed detections alone: the configuration the seed tests run under, with every other
//! built-in rule off, so that what they pin (which records the seeds tag, which alerts they
//! raise) is not mixed with the pack's own results, which `tests/rules.rs` pins.

use serde_json::{json, Value};

/// The seed detection that is a compiled rule; the other seed is hand-written code.
pub const BATCH_KEY: &str = "aws_exfiltration_via_batch_service";

/// `config` with every built-in rule but the seed's turned off (settings it has are kept).
pub fn seeds_only(mut config: Value) -> Value {
    if config.get("detections").is_none() {
        config["detections"] = json!({});
    }
    for rule in tripline::catalog::builtin_rules() {
        let key = rule.metadata.key;
        if key != BATCH_KEY && config["detections"].get(&key).is_none() {
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
    for (key, _) in tripline::detections::REGISTRY {
        detections.insert(key.to_string(), json!({ "enabled": enabled }));
    }
    json!({ "detections": detections })
}
