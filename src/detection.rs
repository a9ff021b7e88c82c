//! What a detection is, to the engine: metadata plus four small decisions.
//!
//! Every detection has the seeds' shape: pick events (`wants` on `eventName` alone, then
//! `select` on the whole record), group them per event-time window (`stats ... by`), and turn
//! each closed group into an output row or nothing (`on_close`). The engine does the windows,
//! suppression, alerts and state; a detection file holds only its own SPL's meaning.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::aggregate::ClosedGroup;
use crate::cloudtrail::{Event, FieldError, UserSource};
use crate::config::ConfigError;

/// One MITRE ATT&CK technique with the tactic the detection maps it to.
#[derive(Debug)]
pub struct Technique {
    pub id: &'static str,
    pub name: &'static str,
    pub tactic: &'static str,
}

/// A field of the output row that names a risk or threat object, with its Splunk type.
#[derive(Debug)]
pub struct ObjectField {
    pub field: &'static str,
    pub kind: &'static str,
}

/// The ESCU metadata a detection carries, rendered into every alert.
#[derive(Debug)]
pub struct Metadata {
    /// ESCU detection id (a UUID).
    pub id: &'static str,
    /// The detection's key in the per-host configuration.
    pub key: &'static str,
    pub name: &'static str,
    pub version: u32,
    /// ESCU analytic type: `TTP`, `Anomaly`, ...
    pub analytic_type: &'static str,
    pub impact: u32,
    pub confidence: u32,
    pub risk_object: ObjectField,
    pub threat_object: Option<ObjectField>,
    /// The seed's risk message; `$field$` tokens are filled from the row (or the event).
    pub message: &'static str,
    /// Message tokens that name no row field, mapped to the field they mean.
    pub message_aliases: &'static [(&'static str, &'static str)],
    pub mitre_attack: &'static [Technique],
    pub kill_chain_phases: &'static [&'static str],
    pub nist: &'static [&'static str],
    pub cis20: &'static [&'static str],
    pub threat_actors: &'static [&'static str],
    pub analytic_stories: &'static [&'static str],
}

impl Metadata {
    /// ESCU's formula: impact x confidence / 100.
    pub fn risk_score(&self) -> u32 {
        self.impact * self.confidence / 100
    }
}

/// An event's place in a detection's `stats ... by`: the group key and the `values()` inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// `None` when a `by` field is null: Splunk's `stats ... by` drops such events.
    pub key: Option<Vec<String>>,
    pub values: Vec<Option<String>>,
}

/// One detection. Implementations live one per file in `detections/`.
pub trait Detection {
    fn metadata(&self) -> &'static Metadata;

    /// Cheap test on `eventName` alone: false for almost every record, and must not allocate.
    fn wants(&self, event_name: &str) -> bool;

    /// The event's group and values, or `None` when the full record does not qualify.
    fn select(&self, event: &Event<'_>) -> Result<Option<Selected>, FieldError>;

    /// Whether each selected event is tagged at once (the real-time path), before its window closes.
    fn tags_each_event(&self) -> bool {
        false
    }

    /// The output row for a closed group, columns in the seed's order, or `None` if it does not fire.
    fn on_close(&mut self, group: &ClosedGroup) -> Option<Map<String, Value>>;

    /// Counters of the detection's own state that the engine reports (`name`, value).
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// The detection's learned state (models, baselines), for snapshots. `Null` when it has none.
    fn save_state(&self) -> Value {
        Value::Null
    }

    /// Restores what [`Detection::save_state`] produced.
    fn restore_state(&mut self, _state: &Value) -> Result<(), String> {
        Ok(())
    }

    /// Loads a model document addressed to this detection (for example a fitted baseline).
    fn load_model(&mut self, _model: &Value) -> Result<(), String> {
        Err(format!("detection {} takes no model", self.metadata().key))
    }
}

/// A constructor from the detection's settings object in the configuration.
pub type Constructor = fn(&Map<String, Value>) -> Result<Box<dyn Detection>, ConfigError>;

/// Reads the `by` fields and the `values()` fields of `event`.
pub fn select_fields(event: &Event<'_>, by: &[&str], values: &[&str], user: UserSource) -> Result<Selected, FieldError> {
    let mut key = Some(Vec::with_capacity(by.len()));
    for field in by {
        match event.field(field, user)? {
            Some(v) => key.as_mut().map_or((), |k| k.push(v.into_owned())),
            None => key = None,
        }
    }
    let mut picked = Vec::with_capacity(values.len());
    for field in values {
        picked.push(event.field(field, user)?.map(|v| v.into_owned()));
    }
    Ok(Selected { key, values: picked })
}

/// Fills `$field$` tokens of `template` with `lookup(field)`; unknown tokens stay as written,
/// as Splunk leaves them.
pub fn render_message(template: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('$') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('$') {
            Some(close) if close > 0 && !after[..close].contains(' ') => {
                let token = &after[..close];
                match lookup(token) {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A row value as text for a message: multivalue fields joined with `", "`.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Splunk's `values()` as its JSON output shows it: null when empty, a string for one value,
/// else the sorted distinct values as an array.
pub fn values_field(values: &BTreeSet<String>) -> Value {
    match values.len() {
        0 => Value::Null,
        1 => Value::String(values.iter().next().cloned().unwrap_or_default()),
        _ => Value::Array(values.iter().cloned().map(Value::String).collect()),
    }
}

/// Rejects any setting for a detection that takes none.
pub fn no_settings(key: &str, settings: &Map<String, Value>) -> Result<(), ConfigError> {
    match settings.keys().next() {
        None => Ok(()),
        Some(name) => Err(ConfigError::new(
            format!("detections.{key}.{name}"),
            "unknown setting; this detection takes only `enabled` and `suppress`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tokens_and_leaves_unknown_ones() {
        let msg = render_message("user $user$ made $n$ calls, cost $$ $missing$", |t| match t {
            "user" => Some("alice".into()),
            "n" => Some("6".into()),
            _ => None,
        });
        assert_eq!(msg, "user alice made 6 calls, cost $$ $missing$");
    }
}
