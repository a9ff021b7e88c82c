//! `dist/tripline-extism.wasm` in the Extism Rust SDK, configured through the manifest's
//! `config` map exactly as any Extism host would: key `tripline` holds the configuration
//! document, optional key `tripline_model` a model document.

use std::path::Path;

use anyhow::{Context, Result};
use extism::{Manifest, Plugin, Wasm};
use serde_json::Value;
use tripline::batch::BatchOutput;

/// The prefix `BatchOutput::framed` puts before each alert line.
pub const ALERT_PREFIX: &[u8] = b"{\"tripline_alert\":";

/// One plugin instance; the engine lives in its memory across calls.
pub struct ExtismEngine {
    plugin: Plugin,
}

impl ExtismEngine {
    /// Loads the plugin at `wasm` with `config` (`None`: no `tripline` key, the defaults) and
    /// optionally a model document under `tripline_model`.
    pub fn load(wasm: &Path, config: Option<&str>, model: Option<&str>) -> Result<ExtismEngine> {
        let mut manifest = Manifest::new([Wasm::file(wasm)]);
        if let Some(config) = config {
            manifest = manifest.with_config_key("tripline", config);
        }
        if let Some(model) = model {
            manifest = manifest.with_config_key("tripline_model", model);
        }
        let plugin = Plugin::new(&manifest, [], false).with_context(|| format!("loading {}", wasm.display()))?;
        Ok(ExtismEngine { plugin })
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>> {
        let out: &[u8] = self.plugin.call(function, input).with_context(|| format!("calling `{function}`"))?;
        Ok(out.to_vec())
    }

    /// `process`: the framed output (records, then one `{"tripline_alert":..}` line per alert).
    pub fn process_framed(&mut self, batch: &[u8]) -> Result<Vec<u8>> {
        self.call("process", batch)
    }

    /// `process`, split back into records and alerts.
    pub fn process(&mut self, batch: &[u8]) -> Result<BatchOutput> {
        Ok(unframe(&self.process_framed(batch)?))
    }

    /// `flush` at `now` (Unix seconds), split back into records (none) and alerts.
    pub fn flush(&mut self, now: i64) -> Result<BatchOutput> {
        Ok(unframe(&self.call("flush", now.to_string().as_bytes())?))
    }

    pub fn stats(&mut self) -> Result<Value> {
        Ok(serde_json::from_slice(&self.call("stats", b"")?)?)
    }

    pub fn snapshot(&mut self) -> Result<Vec<u8>> {
        self.call("snapshot", b"")
    }

    /// `restore`: the outer error is the host's, the inner one the plugin's answer.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<Result<(), String>> {
        outcome(&self.call("restore", snapshot)?)
    }

    pub fn load_model(&mut self, model: &[u8]) -> Result<Result<(), String>> {
        outcome(&self.call("load_model", model)?)
    }

    /// `model`: the detection's learned model, or `Value::Null`.
    pub fn model(&mut self, detection: &str) -> Result<Value> {
        Ok(serde_json::from_slice(&self.call("model", detection.as_bytes())?)?)
    }

    /// Calls any export, for checking how the plugin answers bad input.
    pub fn call_raw(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>> {
        self.call(function, input)
    }
}

/// Splits framed output into records and alerts (each alert unwrapped, one per line).
pub fn unframe(framed: &[u8]) -> BatchOutput {
    let mut out = BatchOutput::default();
    for line in framed.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let (target, bytes) = match line.strip_prefix(ALERT_PREFIX).and_then(|rest| rest.strip_suffix(b"}")) {
            Some(alert) => (&mut out.alerts, alert),
            None => (&mut out.records, line),
        };
        target.extend_from_slice(bytes);
        target.push(b'\n');
    }
    out
}

/// Reads `{"ok":true}` / `{"ok":false,"error":".."}`.
fn outcome(bytes: &[u8]) -> Result<Result<(), String>> {
    let value: Value = serde_json::from_slice(bytes).context("plugin answered with non-JSON")?;
    Ok(match value.get("ok").and_then(Value::as_bool) {
        Some(true) => Ok(()),
        _ => Err(value.get("error").and_then(Value::as_str).unwrap_or("unknown error").to_string()),
    })
}
