//! One versioned, checksummed snapshot format for all engine state.
//!
//! ```text
//! TRIPLINE-SNAPSHOT <format version> <module version> <body length> <fnv1a64 of body, hex>\n
//! <body: EngineState as JSON>
//! TRIPLINE-CHANGES <format version> <module version> <body length> <fnv1a64 of body, hex>\n
//! <body: EngineState as JSON, learned state as changes>
//! ...
//! ```
//! The header makes truncation and corruption detectable before any JSON is parsed; the JSON body
//! keeps snapshots readable by people and by later modules (new fields take defaults). A
//! snapshot from a future format version is refused, never guessed at.
//!
//! A whole snapshot may be followed by sections of changes, which a host appends instead of
//! rewriting the whole (a 100,000-key first-seen set is megabytes; one save changes a few keys).
//! Each holds the small state whole (watermark, counters, waiting alerts, windows) and, per
//! detection, either its learned state whole or a JSON merge patch (RFC 7396) of it
//! (`learned_changes`). Reading applies them in order; a damaged section ends the reading, as a
//! torn journal entry does, and what came before it is the state.

use std::fmt;

use serde_json::{Map, Value};

use crate::digest::fnv1a64;
use crate::state::EngineState;

pub const MAGIC: &str = "TRIPLINE-SNAPSHOT";
/// The header of a section of changes appended to a snapshot.
pub const CHANGES_MAGIC: &str = "TRIPLINE-CHANGES";
/// Bumped when the body changes in a way older readers cannot take.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    NotASnapshot,
    FutureVersion(u32),
    Truncated { expected: usize, found: usize },
    ChecksumMismatch,
    Body(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::NotASnapshot => write!(f, "snapshot: not a tripline snapshot"),
            SnapshotError::FutureVersion(v) => {
                write!(f, "snapshot: format version {v} is newer than this module reads ({FORMAT_VERSION})")
            }
            SnapshotError::Truncated { expected, found } => {
                write!(f, "snapshot: body is {found} bytes, header says {expected}")
            }
            SnapshotError::ChecksumMismatch => write!(f, "snapshot: checksum mismatch (corrupt)"),
            SnapshotError::Body(e) => write!(f, "snapshot: unreadable body ({e})"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// A buffer whose growth fails as a write error instead of aborting: a snapshot that does not
/// fit in the memory left is a counted failure, not a trap.
struct FallibleBuffer(Vec<u8>);

impl std::io::Write for FallibleBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.try_reserve(bytes.len()).map_err(|_| std::io::ErrorKind::OutOfMemory)?;
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn encode(state: &EngineState) -> Result<Vec<u8>, String> {
    encode_section(MAGIC, state)
}

/// A section of changes, to append to a snapshot (see the module docs).
pub fn encode_changes(state: &EngineState) -> Result<Vec<u8>, String> {
    encode_section(CHANGES_MAGIC, state)
}

fn encode_section(magic: &str, state: &EngineState) -> Result<Vec<u8>, String> {
    let mut body = FallibleBuffer(Vec::new());
    serde_json::to_writer(&mut body, state).map_err(|e| format!("snapshot: cannot encode state ({e})"))?;
    let mut out = body.0;
    let header = format!(
        "{magic} {FORMAT_VERSION} {} {} {:016x}\n",
        env!("CARGO_PKG_VERSION"),
        out.len(),
        fnv1a64(&out)
    );
    // In place: a second copy of the body could be what no longer fits.
    out.try_reserve(header.len()).map_err(|_| "snapshot: out of memory".to_string())?;
    out.splice(0..0, header.into_bytes());
    Ok(out)
}

/// A snapshot whose every section must be whole (state files a person hands over).
pub fn decode(bytes: &[u8]) -> Result<EngineState<'_>, SnapshotError> {
    let decoded = decode_sections(bytes)?;
    match decoded.damaged {
        Some(e) => Err(e),
        None => Ok(decoded.state),
    }
}

/// What [`decode_sections`] read.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The whole snapshot with every readable section of changes applied.
    pub state: EngineState<'a>,
    /// The length of the whole snapshot, the first section.
    pub base_bytes: usize,
    /// Why the sections of changes stopped before the end of the bytes, if they did.
    pub damaged: Option<SnapshotError>,
}

/// A snapshot and the sections of changes after it, up to the first damaged one.
pub fn decode_sections(bytes: &[u8]) -> Result<Decoded<'_>, SnapshotError> {
    let (mut state, base_bytes) = section(bytes, MAGIC)?;
    let mut rest = &bytes[base_bytes..];
    let mut damaged = None;
    while !rest.is_empty() {
        match section(rest, CHANGES_MAGIC) {
            Ok((changes, used)) => {
                apply(&mut state, changes);
                rest = &rest[used..];
            }
            Err(e) => {
                damaged = Some(e);
                break;
            }
        }
    }
    Ok(Decoded { state, base_bytes, damaged })
}

/// The section at the start of `bytes`, and its length.
fn section<'a>(bytes: &'a [u8], wanted: &str) -> Result<(EngineState<'a>, usize), SnapshotError> {
    let newline = bytes.iter().position(|&b| b == b'\n').ok_or(SnapshotError::NotASnapshot)?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| SnapshotError::NotASnapshot)?;
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, version, _module, length, checksum] = fields[..] else {
        return Err(SnapshotError::NotASnapshot);
    };
    if magic != wanted {
        return Err(SnapshotError::NotASnapshot);
    }
    let version: u32 = version.parse().map_err(|_| SnapshotError::NotASnapshot)?;
    if version > FORMAT_VERSION {
        return Err(SnapshotError::FutureVersion(version));
    }
    let expected: usize = length.parse().map_err(|_| SnapshotError::NotASnapshot)?;
    let start = newline + 1;
    let body = bytes.get(start..start.saturating_add(expected)).ok_or(SnapshotError::Truncated { expected, found: bytes.len() - start })?;
    if format!("{:016x}", fnv1a64(body)) != checksum {
        return Err(SnapshotError::ChecksumMismatch);
    }
    let state = serde_json::from_slice(body).map_err(|e| SnapshotError::Body(e.to_string()))?;
    Ok((state, start + expected))
}

/// Applies a section of changes: its state replaces the state before it, each detection's
/// learned state patched where the section gives changes.
fn apply<'a>(state: &mut EngineState<'a>, changes: EngineState<'a>) {
    let mut before = std::mem::replace(&mut state.detections, changes.detections);
    state.watermark = changes.watermark;
    state.counters = changes.counters;
    state.pending = changes.pending;
    for slot in &mut state.detections {
        let Some(patch) = slot.learned_changes.take() else { continue };
        let mut learned = before.iter_mut().find(|b| b.key == slot.key).map_or(Value::Null, |b| b.learned.take());
        merge_patch(&mut learned, patch);
        slot.learned = learned;
    }
}

/// JSON Merge Patch (RFC 7396): members of an object patch are merged in, `null` removes.
fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(members) = target else { return };
    for (name, value) in patch {
        if value.is_null() {
            members.remove(&name);
        } else {
            merge_patch(members.entry(name).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // RFC 7396, appendix A, a selection of its examples.
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (Value::Null, json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ] {
            let mut merged = target.clone();
            merge_patch(&mut merged, patch.clone());
            assert_eq!(merged, result, "{target} patched with {patch}");
        }
    }
}
