//! The shape of what tripline emits: Splunk risk events, and the per-event match tag.
//!
//! An alert carries what Splunk ES writes to its risk index for a detection result (risk score,
//! risk and threat objects, rendered risk message, annotations, detection id and version) followed
//! by the seed's output row, columns in the seed's order. README.md documents every field.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::aggregate::{ClosedGroup, Partial};
use crate::detection::value_text;
use crate::rule::Metadata;
use crate::time::format_rfc3339;

/// What every alert and match of one detection carries from its metadata alone: written as
/// JSON text once per detection when the engine starts and embedded as it is (building them per
/// alert, then cloning, serializing and dropping them, was most of an alert's cost, and a
/// quarter of the example's records raise one), and its risk message, split into its parts.
pub struct AlertBlocks {
    detection: Box<RawValue>,
    annotations: Box<RawValue>,
    pub message: RiskMessage,
}

impl AlertBlocks {
    pub fn new(meta: &Metadata) -> AlertBlocks {
        // Values made by `json!` always serialize.
        let text = |value: Value| serde_json::value::to_raw_value(&value).expect("a JSON value serializes");
        AlertBlocks { detection: text(detection_block(meta)), annotations: text(annotations(meta)), message: RiskMessage::new(meta) }
    }
}

/// A detection's risk message: its text split once at its `$field$` tokens, so that filling it
/// for each alert and match is a walk over the parts.
pub struct RiskMessage {
    parts: Vec<MessagePart>,
    /// The text's length with each token as written, plus room for values: the rendering's
    /// first allocation, usually its only one.
    length: usize,
}

enum MessagePart {
    Text(String),
    /// A token: the field it names (after the detection's aliases), and the token as written,
    /// which stays when the field has no value, as Splunk leaves it.
    Field { field: String, written: String },
}

impl RiskMessage {
    pub fn new(meta: &Metadata) -> RiskMessage {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = meta.message.as_str();
        while let Some(open) = rest.find('$') {
            text.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('$') {
                Some(close) if close > 0 && !after[..close].contains(' ') => {
                    let token = &after[..close];
                    let field = meta.message_aliases.iter().find(|(alias, _)| alias == token).map_or(token, |(_, f)| f.as_str());
                    if !text.is_empty() {
                        parts.push(MessagePart::Text(std::mem::take(&mut text)));
                    }
                    parts.push(MessagePart::Field { field: field.to_string(), written: rest[open..open + close + 2].to_string() });
                    rest = &after[close + 1..];
                }
                _ => {
                    text.push('$');
                    rest = after;
                }
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(MessagePart::Text(text));
        }
        let length = meta.message.len() + 64;
        RiskMessage { parts, length }
    }

    /// The fields the message names, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            MessagePart::Field { field, .. } => Some(field.as_str()),
            MessagePart::Text(_) => None,
        })
    }

    /// The message with each token filled from `lookup`.
    pub fn render<'v>(&self, mut lookup: impl FnMut(&str) -> Option<Cow<'v, str>>) -> String {
        let mut out = String::with_capacity(self.length);
        for part in &self.parts {
            match part {
                MessagePart::Text(text) => out.push_str(text),
                MessagePart::Field { field, written } => match lookup(field) {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(written),
                },
            }
        }
        out
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

/// A risk event for one output row of a closed group, in its members' order; serialized
/// straight to the alert's text (or, for another format, to the `Value` it is derived from).
#[derive(Serialize)]
pub struct Alert<'a> {
    detection: &'a RawValue,
    risk_score: u32,
    /// Present when the detection names a risk object; null when the row lacks its field.
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_object: Option<Option<Cow<'a, str>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_object_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threat_object: Option<Option<Cow<'a, str>>>,
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
            risk_message: blocks.message.render(text),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tokens_through_aliases_and_leaves_unknown_ones() {
        let meta = Metadata {
            message: "user $user$ made $n$ calls, cost $$ $missing$ $a b$ $".into(),
            message_aliases: vec![("n".into(), "count".into())],
            ..crate::catalog::builtin_rules()[0].metadata.clone()
        };
        let message = RiskMessage::new(&meta);
        assert_eq!(message.fields().collect::<Vec<_>>(), ["user", "count", "missing"]);
        let text = message.render(|field| match field {
            "user" => Some(Cow::Borrowed("alice")),
            "count" => Some(Cow::Borrowed("6")),
            _ => None,
        });
        assert_eq!(text, "user alice made 6 calls, cost $$ $missing$ $a b$ $");
    }
}
