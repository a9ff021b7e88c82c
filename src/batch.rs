//! The batch API shared by every host that is not record-at-a-time (Extism, JS, components):
//! records in as bytes (NDJSON or S3 export), tagged records and alert records out as NDJSON.

use crate::engine::Engine;
use crate::input::split_records;
use crate::output::{tag_record, Carry};

/// The result of one batch: every input record (tagged or byte-identical), one per line, and
/// the alerts that closed during the batch, one per line.
#[derive(Debug, Default)]
pub struct BatchOutput {
    pub records: Vec<u8>,
    pub alerts: Vec<u8>,
}

impl BatchOutput {
    /// One buffer, for hosts whose calls return a single byte string (Extism): the records, then
    /// each alert as its own line `{"tripline_alert":<alert>}`, so a consumer routes on one key.
    pub fn framed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.records.len() + self.alerts.len() * 2);
        out.extend_from_slice(&self.records);
        for line in self.alerts.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            out.extend_from_slice(b"{\"tripline_alert\":");
            out.extend_from_slice(line);
            out.extend_from_slice(b"}\n");
        }
        out
    }
}

/// A batch host's engine beside the one host setting batch processing reads: the field results
/// are attached under (`output.field`).
pub struct BatchEngine {
    pub engine: Engine,
    pub field: String,
}

impl BatchEngine {
    /// The engine for a host's configuration document, where blank means the defaults (`{}`);
    /// an invalid document gives the pass-through engine that reports it (see `Engine::for_host`).
    /// Batch hosts read no files: their models come by call.
    pub fn from_config(config: &[u8]) -> BatchEngine {
        let config = if config.trim_ascii().is_empty() { b"{}" } else { config };
        let (engine, host) = Engine::for_host(config, |name| Err(format!("{name}: this host reads no rule files")));
        BatchEngine { engine, field: host.output.field }
    }

    /// Closes windows by the host's wall clock (`now`, Unix seconds) and returns the alerts.
    pub fn flush(&mut self, now: i64) -> BatchOutput {
        self.engine.flush(now);
        let mut out = BatchOutput::default();
        append_alerts(&mut self.engine, &mut out.alerts);
        out
    }

    /// Runs `input` through the engine. `now` is the host's clock where it has one (it bounds
    /// how far in the future an `eventTime` may lie); hosts without a clock pass `None`.
    pub fn process(&mut self, input: &[u8], now: Option<i64>) -> BatchOutput {
        let mut out = BatchOutput { records: Vec::with_capacity(input.len() + 64), alerts: Vec::new() };
        for record in split_records(input) {
            if !tag_record(&mut self.engine, record, &self.field, now, Carry::default(), &mut out.records).written {
                out.records.extend_from_slice(record);
            }
            out.records.push(b'\n');
        }
        append_alerts(&mut self.engine, &mut out.alerts);
        out
    }
}

/// Moves every waiting alert to `out` as NDJSON.
pub fn append_alerts(engine: &mut Engine, out: &mut Vec<u8>) {
    for alert in engine.take_alerts(usize::MAX) {
        if serde_json::to_writer(&mut *out, &alert).is_ok() {
            out.push(b'\n');
        }
    }
}

/// A fallible call's outcome as JSON text, for hosts whose calls return one byte string and
/// should not fail on bad data: `{"ok":true}` or `{"ok":false,"error":".."}`.
pub fn outcome_json(result: Result<(), String>) -> String {
    match result {
        Ok(()) => serde_json::json!({"ok": true}),
        Err(error) => serde_json::json!({"ok": false, "error": error}),
    }
    .to_string()
}
