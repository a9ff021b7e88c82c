//! The batch API shared by every host that is not record-at-a-time (Extism, JS, components):
//! records in as bytes (NDJSON or S3 export), tagged records and alert records out as NDJSON.

use crate::engine::Engine;
use crate::input::split_records;
use crate::output::{annotate, Annotation};

/// The result of one batch: every input record (tagged or byte-identical), one per line, and
/// the alerts that closed during the batch, one per line.
#[derive(Debug, Default)]
pub struct BatchOutput {
    pub records: Vec<u8>,
    pub alerts: Vec<u8>,
}

/// Runs `input` through `engine`. `host_time` bounds the watermark as Fluent Bit's record time
/// does; batch hosts replaying history pass `None`.
pub fn process_batch(engine: &mut Engine, input: &[u8], host_time: Option<i64>) -> BatchOutput {
    let mut out = BatchOutput { records: Vec::with_capacity(input.len() + 64), alerts: Vec::new() };
    let field = engine.config().output.field.clone();
    for record in split_records(input) {
        let processed = engine.process(record, host_time);
        let mut tagged = None;
        if !processed.matches.is_empty() {
            let annotation = Annotation { matches: processed.matches, ..Annotation::default() };
            match annotate(record, &field, &annotation) {
                Ok(bytes) => tagged = Some(bytes),
                Err(_) => engine.counters_mut().unannotatable += 1,
            }
        }
        out.records.extend_from_slice(tagged.as_deref().unwrap_or(record));
        out.records.push(b'\n');
    }
    append_alerts(engine, &mut out.alerts);
    out
}

/// Moves every waiting alert to `out` as NDJSON.
pub fn append_alerts(engine: &mut Engine, out: &mut Vec<u8>) {
    for alert in engine.take_alerts(usize::MAX) {
        if serde_json::to_writer(&mut *out, &alert).is_ok() {
            out.push(b'\n');
        }
    }
}
