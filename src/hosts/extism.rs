//! Extism plugin (`--features extism`, target `wasm32-unknown-unknown`).
//!
//! Configuration comes from the manifest's `config` map, Extism's own convention:
//! - `tripline`: the JSON configuration document (absent or blank: `{}`, the defaults);
//! - `tripline_model`: optionally, a model document (a fitted baseline) loaded at start.
//!
//! The engine lives in plugin memory across calls on one instance; it is built at the first call.
//! An invalid configuration yields the pass-through engine, which reports the error under
//! `config_error` in `stats`: no call fails because of configuration.
//!
//! Exports (bytes in, bytes out):
//! - `process`: NDJSON or an S3 export in; every record out (tagged or byte-identical) followed
//!   by one `{"tripline_alert":{..}}` line per alert that closed ([`BatchOutput::framed`]).
//! - `flush`: Unix seconds as ASCII decimal in; the alerts that wall-clock time closed, framed.
//! - `stats`: the engine's counters as JSON.
//! - `snapshot` / `restore`: the engine's whole state as bytes, and back. `snapshot` fails
//!   (an Extism error) only if the state cannot be encoded, which is counted; `restore` answers
//!   `{"ok":true}` or `{"ok":false,"error":".."}` and keeps the current state on error.
//! - `load_model`: a model document in; `{"ok":..}` as for `restore`.
//! - `model`: a detection key in; its learned model as JSON, or `null`.
//!
//! [`BatchOutput::framed`]: crate::batch::BatchOutput::framed

use std::cell::RefCell;

use extism_pdk::{config, plugin_fn, FnResult};
use serde_json::Value;

use crate::batch::{outcome_json, BatchEngine};
use crate::engine::Engine;

thread_local! {
    static ENGINE: RefCell<Option<BatchEngine>> = const { RefCell::new(None) };
}

/// Reads a manifest `config` value as bytes (a non-UTF-8 value must not panic the plugin).
fn config_bytes(key: &str) -> Option<Vec<u8>> {
    config::get_memory(key).ok().flatten().map(|m| m.to_vec())
}

fn build() -> BatchEngine {
    let mut batch = BatchEngine::from_config(&config_bytes("tripline").unwrap_or_default());
    if let Some(model) = config_bytes("tripline_model") {
        // A bad model is counted (`model_errors`) and leaves the detection unfitted.
        let _ = batch.engine.load_model(&model);
    }
    batch
}

fn with_batch<R>(f: impl FnOnce(&mut BatchEngine) -> R) -> R {
    ENGINE.with(|cell| f(cell.borrow_mut().get_or_insert_with(build)))
}

fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    with_batch(|batch| f(&mut batch.engine))
}

/// `flush`'s input: whole Unix seconds as ASCII decimal (surrounding blanks allowed).
fn unix_seconds(input: &[u8]) -> Result<i64, extism_pdk::Error> {
    let text = std::str::from_utf8(input).unwrap_or_default().trim();
    text.parse()
        .map_err(|_| extism_pdk::Error::msg(format!("flush: expected Unix seconds as ASCII decimal, got {text:?}")))
}

#[plugin_fn]
pub fn process(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(with_batch(|batch| batch.process(&input, None).framed()))
}

#[plugin_fn]
pub fn flush(input: Vec<u8>) -> FnResult<Vec<u8>> {
    let now = unix_seconds(&input)?;
    Ok(with_batch(|batch| batch.flush(now).framed()))
}

#[plugin_fn]
pub fn stats(_input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(with_engine(|engine| engine.stats().to_string().into_bytes()))
}

#[plugin_fn]
pub fn snapshot(_input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(with_engine(Engine::snapshot).map_err(extism_pdk::Error::msg)?)
}

#[plugin_fn]
pub fn restore(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(outcome_json(with_engine(|engine| engine.restore(&input))).into_bytes())
}

#[plugin_fn]
pub fn load_model(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(outcome_json(with_engine(|engine| engine.load_model(&input))).into_bytes())
}

#[plugin_fn]
pub fn model(input: Vec<u8>) -> FnResult<Vec<u8>> {
    let key = String::from_utf8_lossy(&input);
    Ok(with_engine(|engine| engine.model(key.trim()).unwrap_or(Value::Null).to_string().into_bytes()))
}
