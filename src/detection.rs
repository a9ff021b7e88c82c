//! What a detection is, to the engine: metadata plus four small decisions.
//!
//! Every detection has one shape: pick events (by `eventName` through the engine's index, then
//! `select` on the whole record), group them per event-time window (`stats ... by`), and turn
//! each closed group into an output row or nothing (`on_close`). The engine does the windows,
//! suppression, alerts and state. Every detection is a rule (`rule/`): data run by one
//! implementation of this trait.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::aggregate::ClosedGroup;
use crate::cloudtrail::{Event, FieldError, Texts};
use crate::rule::Metadata;

/// What a detection makes of one event: nothing, or (nearly always) one [`Selected`], kept in
/// place of a list.
pub type Selection<'a> = smallvec::SmallVec<[Selected<'a>; 1]>;

/// What one selected event (or each row an event expands into) becomes. Texts are borrowed
/// from the record where they stand in it: the windows copy only what they keep.
#[derive(Debug, Clone, PartialEq)]
pub enum Selected<'a> {
    /// A member of group `key` of its window (`None` when a `by` field is null: Splunk's
    /// `stats ... by` drops such events), with the inputs of each `values()`/`dc()` column.
    Group { key: Option<Vec<Cow<'a, str>>>, values: Vec<Texts<'a>> },
    /// A result row of its own, for a search without `stats`.
    Row(Map<String, Value>),
}

/// The fields besides `eventName` that the engine indexes detections by: read once per record,
/// and what detections that name no `eventName` require (`eventSource=s3.amazonaws.com`,
/// `errorCode=AccessDenied`, Sigma's root-account rule's `userIdentity.type: Root`).
pub const INDEX_FIELDS: [&str; 3] = ["eventSource", "errorCode", "userIdentity.type"];

/// One detection.
pub trait Detection {
    fn metadata(&self) -> &Metadata;

    /// The `eventName`s it can select (case-insensitive), or none for any record. The engine
    /// indexes detections by them, so a record no detection names costs none a look.
    fn event_names(&self) -> Vec<String>;

    /// For a detection that names no `eventName`: a field of [`INDEX_FIELDS`] and the values it
    /// requires (case-insensitive, exact), if its selection requires one. The engine indexes
    /// those too, so that such a detection, too, costs a record it cannot select no look.
    fn required_values(&self) -> Option<(&'static str, Vec<String>)> {
        None
    }

    /// Its own window length, where its search bins `_time` (`None`: the host's window).
    fn window_seconds(&self) -> Option<i64> {
        None
    }

    /// What the event becomes: nothing when the full record does not qualify.
    fn select<'a>(&self, event: &Event<'a>) -> Result<Selection<'a>, FieldError>;

    /// Whether each selected event is tagged at once (the real-time path), before its window closes.
    fn tags_each_event(&self) -> bool {
        false
    }

    /// The row a per-event tag's message is filled from: what the event alone would give as a
    /// result (`None`: the event's own fields fill it).
    fn tag_row(&self, _selected: &Selected<'_>, _time: i64) -> Option<Map<String, Value>> {
        None
    }

    /// The output row for a closed group, columns in the seed's order, or `None` if it does not fire.
    fn on_close(&mut self, group: &ClosedGroup) -> Option<Map<String, Value>>;

    /// The output rows of one window's groups closed together (in key order), per group: a
    /// detection whose rows depend on each other (`eventstats`, `join`) sees them all at once.
    /// A group gives no row, one, or (a `join`'s main rows that were alike) several. By default
    /// each group on its own. The groups' `values` sets are the detection's to take: nothing
    /// reads them after it (an alert reads `values_dropped`).
    fn on_close_window(&mut self, groups: &mut [ClosedGroup]) -> Vec<Vec<Map<String, Value>>> {
        groups.iter().map(|g| self.on_close(g).into_iter().collect()).collect()
    }

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

    /// What changed in [`Detection::save_state`]'s document since [`Detection::state_saved`],
    /// as a JSON merge patch (RFC 7396), for state too large to save whole each time. `None`
    /// (the default): the whole state is saved.
    fn state_changes(&self) -> Option<Value> {
        None
    }

    /// The state as it stands was saved or restored: [`Detection::state_changes`] counts from here.
    fn state_saved(&mut self) {}

    /// Loads a model document addressed to this detection (for example a fitted baseline).
    fn load_model(&mut self, _model: &Value) -> Result<(), String> {
        Err(format!("detection {} takes no model", self.metadata().key))
    }
}

/// A row value as text for a message: multivalue fields joined with `", "`.
pub fn value_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Array(items) => Cow::Owned(items.iter().map(value_text).collect::<Vec<_>>().join(", ")),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}
