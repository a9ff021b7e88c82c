//! Moving the state of some partitioning keys from one instance to another, through the snapshot
//! format: when a Kafka partition (or an S3 prefix) moves to another instance, the open groups of
//! its keys move with it (docs/scale-out.md; `tripline state export` / `import`).
//!
//! Only groups whose key holds the partitioning key can be told apart: which column that is, per
//! detection, the caller says (the compiler's partition analysis knows it from the rule). Every
//! other detection's state stays where it is and is reported: a rule grouped by `eventID` holds
//! whole events, which close where they are; a rule that is not partition-safe was not exact
//! before the move either; learned baselines are per detection, not per key. Waiting alerts and
//! counters stay with the instance that produced them.

use std::borrow::Cow;

use serde_json::Value;

use crate::state::{Counters, EngineState, SlotState};
use crate::snapshot;

/// What [`split`] gives: the moved groups as a snapshot of their own, the source's snapshot
/// without them, and per detection how many open groups moved or stayed.
#[derive(Debug)]
pub struct Split {
    pub moved: Vec<u8>,
    pub remaining: Vec<u8>,
    pub moved_groups: Vec<(String, usize)>,
    /// Detections with open groups that cannot be told apart by key, and how many.
    pub left_groups: Vec<(String, usize)>,
}

/// Splits `snapshot` (the source instance's whole state): the open groups whose value in column
/// `key_column(detection)` of their group key `moves` picks go to the moved snapshot.
pub fn split(snapshot: &[u8], key_column: impl Fn(&str) -> Option<usize>, moves: impl Fn(&str) -> bool) -> Result<Split, String> {
    let mut state = snapshot::decode(snapshot).map_err(|e| e.to_string())?;
    let mut part = EngineState {
        watermark: state.watermark,
        counters: Cow::Owned(Counters::default()),
        pending: Cow::Owned(Vec::new()),
        detections: Vec::new(),
    };
    let (mut moved_groups, mut left_groups) = (Vec::new(), Vec::new());
    for slot in &mut state.detections {
        let Some(column) = key_column(&slot.key) else {
            if slot.windows.group_count() > 0 {
                left_groups.push((slot.key.to_string(), slot.windows.group_count()));
            }
            continue;
        };
        let taken = slot.windows.to_mut().split_off(|key| key.get(column).is_some_and(|value| moves(value)));
        if taken.group_count() > 0 {
            moved_groups.push((slot.key.to_string(), taken.group_count()));
            part.detections.push(SlotState { key: slot.key.clone(), length: slot.length, windows: Cow::Owned(taken), learned: Value::Null, learned_changes: None });
        }
    }
    Ok(Split { moved: snapshot::encode(&part)?, remaining: snapshot::encode(&state)?, moved_groups, left_groups })
}

/// The target instance's state (`None`: it has none yet) with the groups of `moved` (what
/// [`split`] gave) taken over. The target keeps its watermark, counters and waiting alerts.
pub fn merge(target: Option<&[u8]>, moved: &[u8]) -> Result<Vec<u8>, String> {
    let part = snapshot::decode(moved).map_err(|e| e.to_string())?;
    let mut state = match target {
        Some(bytes) => snapshot::decode(bytes).map_err(|e| e.to_string())?,
        None => EngineState { watermark: part.watermark, counters: Cow::Owned(Counters::default()), pending: Cow::Owned(Vec::new()), detections: Vec::new() },
    };
    for slot in part.detections {
        match state.detections.iter_mut().find(|s| s.key == slot.key) {
            Some(mine) if mine.length.is_some() && slot.length.is_some() && mine.length != slot.length => {
                return Err(format!(
                    "detection `{}`: the moved windows are {} s long, the target's {} s; give both instances the same configuration",
                    slot.key,
                    slot.length.unwrap_or_default(),
                    mine.length.unwrap_or_default()
                ))
            }
            Some(mine) => mine.windows.to_mut().absorb(slot.windows.into_owned()).map_err(|e| format!("detection `{}`: {e}", slot.key))?,
            None => state.detections.push(slot),
        }
    }
    snapshot::encode(&state)
}
