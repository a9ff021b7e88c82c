//! JavaScript package via wasm-bindgen (`--features js`, target `wasm32-unknown-unknown`,
//! `wasm-bindgen --target web`): one class, `Tripline`, for browsers, Node and edge runtimes.
//!
//! Batches cross as bytes (`Uint8Array`, one memcpy each way); only small things (stats, alerts,
//! models) cross as JSON text that JS parses. The generated module holds the raw class
//! (`TriplineRaw` here, exported to JS as `Tripline`); `js/index.js` wraps it with JS-friendly
//! return types (parsed objects, string inputs). Every method is throw-free for bad *data*:
//! - the constructor takes the configuration document as bytes; an invalid one yields the
//!   pass-through engine, which reports the error under `config_error` in `stats` (as
//!   `Engine::from_json`);
//! - `process(bytes)`: NDJSON or an S3 export in; returns a [`Batch`] whose `records` are every
//!   input record, tagged or byte-identical, one per line, and whose `alerts` are the alerts
//!   that closed during the batch as NDJSON;
//! - `flush(now)`: closes windows by wall-clock Unix seconds; returns the alerts as NDJSON;
//! - `finishAll()`: closes every open window (end of a replay); returns the alerts as NDJSON;
//! - `stats()`: the engine's stats as JSON text;
//! - `snapshot()` / `restore(bytes)`: the whole state as bytes and back (`snapshot` throws only
//!   if the state cannot be encoded, which the engine counts); `restore` and
//!   `loadModel` return `{"ok":true}` or `{"ok":false,"error":".."}` as JSON text and keep the
//!   current state on error;
//! - `model(key)`: a detection's learned model as JSON text, or `null`;
//! - `detectionCatalog()` (a function, not a method): every detection key and whether it runs by
//!   default, as JSON text.

use wasm_bindgen::prelude::*;

use crate::batch::{append_alerts, outcome_json, BatchEngine};

/// Every detection this build can run, as JSON text: `[{"key", "enabled_by_default"}]` in the
/// catalog's order (the keys a configuration's `detections` takes).
#[wasm_bindgen(js_name = detectionCatalog)]
pub fn detection_catalog() -> String {
    let entries: Vec<serde_json::Value> = crate::catalog::catalog(crate::catalog::builtin_rules())
        .iter()
        .map(|e| serde_json::json!({"key": e.key, "enabled_by_default": e.enabled_by_default}))
        .collect();
    serde_json::Value::Array(entries).to_string()
}

/// One batch's output: the records and the alerts, both NDJSON bytes.
#[wasm_bindgen(js_name = Batch)]
pub struct Batch {
    records: Vec<u8>,
    alerts: Vec<u8>,
}

#[wasm_bindgen(js_class = Batch)]
impl Batch {
    /// Every input record, tagged or byte-identical, one per line (moves the bytes out).
    #[wasm_bindgen(js_name = takeRecords)]
    pub fn take_records(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.records)
    }

    /// The alerts that closed during the batch, one JSON object per line (moves the bytes out).
    #[wasm_bindgen(js_name = takeAlerts)]
    pub fn take_alerts(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.alerts)
    }
}

#[wasm_bindgen(js_name = Tripline)]
pub struct TriplineRaw {
    batch: BatchEngine,
}

#[wasm_bindgen(js_class = Tripline)]
impl TriplineRaw {
    /// An engine for the configuration document `config` (JSON bytes; empty means `{}`).
    #[wasm_bindgen(constructor)]
    pub fn new(config: &[u8]) -> TriplineRaw {
        TriplineRaw { batch: BatchEngine::from_config(config) }
    }

    /// Runs one batch (NDJSON or S3 export bytes) through the engine.
    pub fn process(&mut self, input: &[u8]) -> Batch {
        let out = self.batch.process(input, None);
        Batch { records: out.records, alerts: out.alerts }
    }

    /// Closes windows by the wall clock (`now`, Unix seconds); the alerts as NDJSON bytes.
    pub fn flush(&mut self, now: f64) -> Vec<u8> {
        self.batch.flush(now as i64).alerts
    }

    /// Closes every open window (end of a replay); the alerts as NDJSON bytes.
    #[wasm_bindgen(js_name = finishAll)]
    pub fn finish_all(&mut self) -> Vec<u8> {
        self.batch.engine.finish_all();
        let mut alerts = Vec::new();
        append_alerts(&mut self.batch.engine, &mut alerts);
        alerts
    }

    /// The engine's stats as JSON text.
    pub fn stats(&self) -> String {
        self.batch.engine.stats().to_string()
    }

    /// The whole state as bytes. Throws (a JS `Error`) only if the state cannot be encoded;
    /// the failure is counted (`snapshot_failures`).
    pub fn snapshot(&mut self) -> Result<Vec<u8>, JsError> {
        self.batch.engine.snapshot().map_err(|error| JsError::new(&error))
    }

    /// Restores a snapshot; `{"ok":..}` as JSON text.
    pub fn restore(&mut self, bytes: &[u8]) -> String {
        outcome_json(self.batch.engine.restore(bytes))
    }

    /// Loads a model document (JSON bytes); `{"ok":..}` as JSON text.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&mut self, model: &[u8]) -> String {
        outcome_json(self.batch.engine.load_model(model))
    }

    /// A detection's learned model as JSON text (`null` if that detection is not enabled).
    pub fn model(&self, key: &str) -> String {
        self.batch.engine.model(key).unwrap_or(serde_json::Value::Null).to_string()
    }
}
