//! The shape of what tripline emits: Splunk risk events, and the per-event match tag.
//!
//! An alert carries what Splunk ES writes to its risk index for a detection result (risk score,
//! risk and threat objects, rendered risk message, annotations, detection id and version) followed
//! by the seed's output row, columns in the seed's order. README.md documents every field.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::aggregate::{ClosedGroup, Partial};
use crate::detection::{render_message, value_text};
use crate::rule::Metadata;
use crate::time::format_rfc3339;

/// What every alert and match of one detection carries from its metadata alone: written as
/// JSON text once per detection when the engine starts and embedded as it is (building them per
/// alert, then cloning, serializing and dropping them, was most of an alert's cost, and a
/// quarter of the example's records raise one).
pub struct AlertBlocks {
    detection: Box<RawValue>,
    annotations: Box<RawValue>,
}

impl AlertBlocks {
    pub fn new(meta: &Metadata) -> AlertBlocks {
        // Values made by `json!` always serialize.
        let text = |value: Value| serde_json::value::to_raw_value(&value).expect("a JSON value serializes");
        AlertBlocks { detection: text(detection_block(meta)), annotations: text(annotations(meta)) }
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

/// A risk event for one output row of a closed group, in its members' order; serialized
/// straight to the alert's text (or, for another format, to the `Value` it is derived from).
#[derive(Serialize)]
pub struct Alert<'a> {
    detection: &'a RawValue,
    risk_score: u32,
    /// Present when the detection names a risk object; null when the row lacks its field.
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_object: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_object_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat_object: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat_object_type: Option<&'a str>,
    risk_message: String,
    annotations: &'a RawValue,
    window: Window,
    result: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct Window {
    start: String,
    end: String,
    partial: Option<Partial>,
    values_dropped: u64,
}

impl<'a> Alert<'a> {
    pub fn new(meta: &'a Metadata, blocks: &'a AlertBlocks, group: &ClosedGroup, row: &'a Map<String, Value>) -> Alert<'a> {
        let text = |field: &str| row.get(field).map(value_text);
        Alert {
            detection: &blocks.detection,
            risk_score: meta.risk_score(),
            risk_object: meta.risk_object.as_ref().map(|risk| text(&risk.field)),
            risk_object_type: meta.risk_object.as_ref().map(|risk| risk.kind.as_str()),
            threat_object: meta.threat_object.as_ref().map(|threat| text(&threat.field)),
            threat_object_type: meta.threat_object.as_ref().map(|threat| threat.kind.as_str()),
            risk_message: risk_message(meta, text),
            annotations: &blocks.annotations,
            window: Window {
                start: format_rfc3339(group.window_start),
                end: format_rfc3339(group.window_end),
                partial: group.partial,
                values_dropped: group.stats.values_dropped,
            },
            result: row,
        }
    }
}

/// The real-time tag for one event that a detection selected.
#[derive(Serialize)]
struct Match<'a> {
    detection: &'a RawValue,
    risk_score: u32,
    risk_message: &'a str,
    annotations: &'a RawValue,
}

/// The tag's JSON text.
pub fn build_match(meta: &Metadata, blocks: &AlertBlocks, message: &str) -> Box<RawValue> {
    let tag = Match { detection: &blocks.detection, risk_score: meta.risk_score(), risk_message: message, annotations: &blocks.annotations };
    // Text and embedded JSON text always serialize.
    serde_json::value::to_raw_value(&tag).expect("a tag serializes")
}
