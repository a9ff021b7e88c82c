//! Everything an engine would lose on restart, as snapshots save it: the counters, each
//! detection's windows and learned state, the watermark and the alerts waiting. Its own module
//! so that the engine and the snapshot format both depend on it, and not on each other.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::aggregate::Windows;

/// Everything the engine counts. All hosts expose these through their `stats` call.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub records: u64,
    /// Records some detection selected.
    pub matched: u64,
    pub alerts: u64,
    pub suppressed: u64,
    /// Selected events whose window had already closed.
    pub late: u64,
    /// Records stamped beyond `max_future_seconds` past the host's clock: counted, tagged if
    /// selected, never aggregated, and never allowed to move the watermark.
    pub future: u64,
    /// Selected events Splunk's `stats ... by` would drop (a null group field).
    pub null_group: u64,
    pub evicted_groups: u64,
    pub evicted_values: u64,
    /// Texts cut to `limits.max_value_bytes` before they were kept.
    pub truncated_values: u64,
    /// Alerts lost because the host did not drain the queue in time.
    pub alerts_dropped: u64,
    /// Records that are not JSON objects, as far as they were read.
    pub parse_errors: u64,
    /// Records whose fields have the wrong JSON type.
    pub field_errors: u64,
    /// Selected records without a usable `eventTime`: tagged per event, kept out of windows.
    pub untimed: u64,
    /// Records that should have carried results but could not be rewritten (see output.rs).
    pub unannotatable: u64,
    /// Records passed through unread, or unchanged with their results waiting, because the
    /// module's memory ran out (see memory.rs); the first of them also let the open windows go.
    pub out_of_memory: u64,
    /// Incoming members named like the output field, moved under it as `quarantined` (see
    /// output.rs): a record must not pass for carrying tripline's results when it does not.
    pub quarantined: u64,
    pub config_errors: u64,
    /// Rules and rule files left out at load (see `rule_errors` in the stats).
    pub rule_errors: u64,
    pub model_errors: u64,
    pub snapshot_saves: u64,
    pub snapshot_failures: u64,
    /// Journal entries that could not be written (see `journal.rs`).
    pub journal_failures: u64,
    pub restores: u64,
    pub restore_failures: u64,
    /// Restores that read the state file only up to a damaged section of changes (a save cut
    /// short, or corrupt): the state is what came before it, plus the journal.
    pub restore_damaged: u64,
    /// Detections whose saved state a restore left out (see [`Engine::restore`]).
    pub state_refused: u64,
}

/// One detection's window state, as saved in snapshots: borrowed from the engine to save it
/// (no copy of the windows), owned when read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotState<'a> {
    pub key: Cow<'a, str>,
    /// The window length the windows were opened with (absent in older snapshots).
    #[serde(default)]
    pub length: Option<i64>,
    pub windows: Cow<'a, Windows>,
    pub learned: Value,
    /// In a section of changes (see `snapshot.rs`): a merge patch of the learned state saved
    /// before, which `learned` (then `null`) does not repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_changes: Option<Value>,
}

/// Everything an engine would lose on restart (borrowed or owned, as [`SlotState`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineState<'a> {
    pub watermark: Option<i64>,
    pub counters: Cow<'a, Counters>,
    pub pending: Cow<'a, [Box<RawValue>]>,
    #[serde(borrow)]
    pub detections: Vec<SlotState<'a>>,
}
