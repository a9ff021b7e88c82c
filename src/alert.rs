//! The shape of what tripline emits: Splunk risk events, and the per-event match tag.
//!
//! An alert carries what Splunk ES writes to its risk index for a detection result (risk score,
//! risk and threat objects, rendered risk message, annotations, detection id and version) followed
//! by the seed's output row, columns in the seed's order. README.md documents every field.

use serde_json::{json, Map, Value};

use crate::aggregate::ClosedGroup;
use crate::detection::{render_message, value_text};
use crate::rule::Metadata;
use crate::time::format_rfc3339;

/// What every alert and match of one detection carries from its metadata alone: built once
/// per detection when the engine starts, cloned into each (building them per alert was a third
/// of an alert's cost, and a quarter of the example's records raise one).
pub struct AlertBlocks {
    detection: Value,
    annotations: Value,
}

impl AlertBlocks {
    pub fn new(meta: &Metadata) -> AlertBlocks {
        AlertBlocks { detection: detection_block(meta), annotations: annotations(meta) }
    }
}

/// ESCU's annotations block for a detection.
fn annotations(meta: &Metadata) -> Value {
    json!({
        "mitre_attack": meta.mitre_attack.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        "mitre_attack_techniques": meta.mitre_attack.iter()
            .map(|t| json!({"id": t.id, "technique": t.name, "tactic": t.tactic}))
            .collect::<Vec<_>>(),
        "kill_chain_phases": meta.kill_chain_phases,
        "nist": meta.nist,
        "cis20": meta.cis20,
        "threat_actors": meta.threat_actors,
        "analytic_story": meta.analytic_stories,
    })
}

fn detection_block(meta: &Metadata) -> Value {
    // A Sigma rule is shown as Sigma names it: title, level, status and tags.
    if let Some(sigma) = &meta.sigma {
        return json!({
            "id": meta.id,
            "name": meta.name,
            "source": "sigma",
            "level": sigma.level,
            "status": meta.status,
            "tags": sigma.tags,
        });
    }
    json!({
        "id": meta.id,
        "name": meta.name,
        "version": meta.version,
        "analytic_type": meta.analytic_type,
        "search_name": format!("ESCU - {} - Rule", meta.name),
    })
}

/// The message with `$token$`s filled from `lookup`, honouring the detection's token aliases.
pub fn risk_message(meta: &Metadata, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
    render_message(&meta.message, |token| {
        let field = meta.message_aliases.iter().find(|(alias, _)| alias == token).map_or(token, |(_, f)| f.as_str());
        lookup(field)
    })
}

/// A risk event for one output row of a closed group.
pub fn build_alert(meta: &Metadata, blocks: &AlertBlocks, group: &ClosedGroup, row: Map<String, Value>) -> Value {
    let text = |field: &str| row.get(field).map(value_text);
    let mut alert = Map::new();
    alert.insert("detection".into(), blocks.detection.clone());
    alert.insert("risk_score".into(), json!(meta.risk_score()));
    if let Some(risk) = &meta.risk_object {
        alert.insert("risk_object".into(), json!(text(&risk.field)));
        alert.insert("risk_object_type".into(), json!(risk.kind));
    }
    if let Some(threat) = &meta.threat_object {
        alert.insert("threat_object".into(), json!(text(&threat.field)));
        alert.insert("threat_object_type".into(), json!(threat.kind));
    }
    alert.insert("risk_message".into(), json!(risk_message(meta, text)));
    alert.insert("annotations".into(), blocks.annotations.clone());
    alert.insert(
        "window".into(),
        json!({
            "start": format_rfc3339(group.window_start),
            "end": format_rfc3339(group.window_end),
            "partial": group.partial,
            "values_dropped": group.stats.values_dropped,
        }),
    );
    alert.insert("result".into(), Value::Object(row));
    Value::Object(alert)
}

/// The real-time tag for one event that a detection selected.
pub fn build_match(meta: &Metadata, blocks: &AlertBlocks, message: String) -> Value {
    // Inserted, not `json!`: the macro would serialize the blocks again rather than clone them.
    let mut tag = Map::new();
    tag.insert("detection".into(), blocks.detection.clone());
    tag.insert("risk_score".into(), json!(meta.risk_score()));
    tag.insert("risk_message".into(), Value::String(message));
    tag.insert("annotations".into(), blocks.annotations.clone());
    Value::Object(tag)
}
