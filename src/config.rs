//! Per-host configuration: one JSON document, validated with errors that name the key, say what
//! was wrong and what is allowed.
//!
//! Every section has defaults, so `{}` is a working configuration. The document splits into the
//! engine's [`Config`] and the host adapter's [`HostConfig`]: the engine never sees where its
//! host keeps state or puts results. Each detection validates its own settings (see its file);
//! this module knows only what all detections share.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::alert_format::AlertFormat;
use crate::suppress::Suppression;

/// A configuration problem: where (`window.length_seconds`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "configuration: {}", self.message)
        } else {
            write!(f, "configuration key `{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The top-level fields of a CloudTrail record (AWS's "CloudTrail record contents").
const CLOUDTRAIL_FIELDS: [&str; 31] = [
    "eventTime", "eventVersion", "userIdentity", "eventSource", "eventName", "awsRegion", "sourceIPAddress",
    "userAgent", "errorCode", "errorMessage", "requestParameters", "responseElements", "additionalEventData",
    "requestID", "eventID", "eventType", "apiVersion", "managementEvent", "readOnly", "resources",
    "recipientAccountId", "serviceEventDetails", "sharedEventID", "vpcEndpointId", "vpcEndpointAccountId",
    "eventCategory", "addendum", "sessionCredentialFromConsole", "edgeDeviceDetails", "tlsDetails", "insightDetails",
];

/// The configuration's own file name where it is a file (Fluent Bit).
pub const CONFIG_FILE: &str = "tripline.json";

/// Clocks drift and pipelines buffer, but an event a week ahead of the host's clock is forged.
const MAX_FUTURE_SECONDS: i64 = 7 * 86_400;

/// The configuration document (`tripline.json`, or what a batch host is handed): the engine's
/// settings and the host adapter's, in one document validated as a whole.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub engine: Config,
    pub host: HostConfig,
}

/// What the engine runs by: windows, caps, how alerts are written and the detections.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub window: WindowConfig,
    pub limits: Limits,
    /// How alerts are written, wherever the host delivers them (`alert_format.rs`); the
    /// document's `output.alert_format`.
    pub alert_format: AlertFormat,
    /// Per detection, by key: `enabled`, `suppress`, and the detection's own settings.
    pub detections: BTreeMap<String, Map<String, Value>>,
}

/// What a host adapter does around the engine: where results go on a record, where state and
/// models are kept, which rule files it reads. The engine knows none of it.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    pub output: OutputConfig,
    pub snapshot: SnapshotConfig,
    /// Model files (fitted baselines) to load, relative to the configuration's directory.
    /// Used by file-based hosts (Fluent Bit); batch hosts pass models directly.
    pub models: Vec<String>,
    /// The host's own rule files (a rule, a list of rules, or a pack; see `rule/`), relative to
    /// the configuration's directory, run beside the built-in ones.
    pub rules: Vec<String>,
}

/// The document as written: one schema, so that a misspelt key anywhere is an error naming it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentFile {
    #[serde(default)]
    window: WindowConfig,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    output: OutputSection,
    #[serde(default)]
    snapshot: SnapshotConfig,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    detections: BTreeMap<String, Map<String, Value>>,
}

/// The document's `output` section: the host's settings and the engine's alert format.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OutputSection {
    field: String,
    max_alerts_per_record: usize,
    stats_every_records: u64,
    alert_format: AlertFormat,
}

impl Default for OutputSection {
    fn default() -> Self {
        let OutputConfig { field, max_alerts_per_record, stats_every_records } = OutputConfig::default();
        OutputSection { field, max_alerts_per_record, stats_every_records, alert_format: AlertFormat::default() }
    }
}

/// Event-time windows and the watermark.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Tumbling window length; the seeds' `span=1h` and hourly schedule mean 3600.
    pub length_seconds: i64,
    /// How long after a window's end late events still count (the seeds' 10-minute lag).
    pub allowed_lateness_seconds: i64,
    /// How far past the host's clock an event may be before it is treated as forged.
    pub max_future_seconds: i64,
    /// What happens to an event whose window has already closed.
    pub late_events: LatePolicy,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            length_seconds: 3600,
            allowed_lateness_seconds: 600,
            max_future_seconds: 900,
            late_events: LatePolicy::Alert,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatePolicy {
    /// Counted and left out of aggregation.
    Drop,
    /// Counted and reported at once as a one-event partial result.
    Alert,
}

/// Caps that bound the state kept inside the host's process.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open groups across all windows of one detection.
    pub max_groups: usize,
    /// Distinct values kept per `values()` column of a group.
    pub max_values: usize,
    /// Alerts waiting for the host to take them.
    pub max_pending_alerts: usize,
    /// Bytes of waiting alerts (as JSON text).
    pub max_pending_bytes: usize,
    /// Bytes of open windows, all detections together (texts plus a fixed cost per group).
    pub max_window_bytes: usize,
    /// Bytes of one value kept in state (a group field, a `values()` entry, a field of a
    /// one-event result): longer ones are cut on a character boundary and counted.
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_groups: 10_000,
            max_values: 100,
            max_pending_alerts: 10_000,
            max_pending_bytes: 8 << 20,
            max_window_bytes: 16 << 20,
            max_value_bytes: 1024,
        }
    }
}

/// How results are attached to records (record-at-a-time hosts such as Fluent Bit).
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// The one top-level field tripline adds to a record.
    pub field: String,
    /// Most alerts attached to one record; the rest wait for the next record.
    pub max_alerts_per_record: usize,
    /// Attach the counters to every Nth record (0: never).
    pub stats_every_records: u64,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { field: "tripline".to_string(), max_alerts_per_record: 100, stats_every_records: 0 }
    }
}

/// Where file-based hosts keep state (see `snapshot.rs` and `journal.rs`): every record that
/// changes it is journaled at once; the journal is folded into a new snapshot now and then.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotConfig {
    /// File name in the configuration's directory; empty disables saving and restoring. The
    /// journal sits beside it with the extension `.journal`.
    pub file: String,
    /// Fold the journal into a new snapshot after this many records (0: only by size).
    pub every_records: u64,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig { file: "tripline-state.snap".to_string(), every_records: 100_000 }
    }
}

impl Document {
    /// Parses and validates a configuration document.
    pub fn from_json(bytes: &[u8]) -> Result<Document, ConfigError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ConfigError::new("", format!("not valid JSON ({e})")))?;
        if !value.is_object() {
            return Err(ConfigError::new("", "must be a JSON object"));
        }
        let file: DocumentFile = parse_at("", value)?;
        let OutputSection { field, max_alerts_per_record, stats_every_records, alert_format } = file.output;
        let output = OutputConfig { field, max_alerts_per_record, stats_every_records };
        let engine = Config { window: file.window, limits: file.limits, alert_format, detections: file.detections };
        let host = HostConfig { output, snapshot: file.snapshot, models: file.models, rules: file.rules };
        engine.validate()?;
        host.validate()?;
        Ok(Document { engine, host })
    }
}

impl Config {
    fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.window;
        if w.length_seconds < 60 || w.length_seconds > 7 * 86_400 || 86_400 % w.length_seconds != 0 && w.length_seconds % 86_400 != 0 {
            return Err(ConfigError::new(
                "window.length_seconds",
                format!("{} is not allowed: use 60 to 604800 seconds that divide a day or are whole days", w.length_seconds),
            ));
        }
        if w.allowed_lateness_seconds < 0 || w.allowed_lateness_seconds > 86_400 {
            return Err(ConfigError::new("window.allowed_lateness_seconds", "must be 0 to 86400"));
        }
        if w.max_future_seconds < 0 || w.max_future_seconds > MAX_FUTURE_SECONDS {
            return Err(ConfigError::new(
                "window.max_future_seconds",
                format!("{} is not allowed: use 0 to {MAX_FUTURE_SECONDS} (7 days)", w.max_future_seconds),
            ));
        }
        let l = &self.limits;
        // Upper bounds keep the worst case of each cap inside a module's memory.
        for (key, value, min, max) in [
            ("limits.max_groups", l.max_groups, 1, 1_000_000),
            ("limits.max_values", l.max_values, 1, 10_000),
            ("limits.max_pending_alerts", l.max_pending_alerts, 1, 1_000_000),
            ("limits.max_pending_bytes", l.max_pending_bytes, 64 << 10, 1 << 30),
            ("limits.max_window_bytes", l.max_window_bytes, 64 << 10, 1 << 30),
            ("limits.max_value_bytes", l.max_value_bytes, 16, 1 << 20),
        ] {
            check_range(key, value, min, max)?;
        }
        Ok(())
    }
}

impl HostConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range("output.max_alerts_per_record", self.output.max_alerts_per_record, 1, 10_000)?;
        let field = &self.output.field;
        if field.is_empty() || field.len() > 64 || !field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ConfigError::new("output.field", "must be 1 to 64 letters, digits or underscores"));
        }
        // Every CloudTrail record has most of these: each would look annotated already, and
        // none would ever be tagged.
        if CLOUDTRAIL_FIELDS.contains(&field.as_str()) {
            return Err(ConfigError::new("output.field", format!("`{field}` is a CloudTrail record field; choose a name of tripline's own")));
        }
        for (i, model) in self.models.iter().enumerate() {
            check_file_name(&format!("models[{i}]"), model)?;
        }
        for (i, rules) in self.rules.iter().enumerate() {
            check_file_name(&format!("rules[{i}]"), rules)?;
        }
        let state = &self.snapshot.file;
        if !state.is_empty() {
            check_file_name("snapshot.file", state)?;
            // The state is rewritten all the time: it must never land on a file the host reads.
            let stem = |name: &str| name.rsplit_once('.').map_or(name, |(stem, _)| stem).to_string();
            let taken = std::iter::once(CONFIG_FILE).chain(self.models.iter().chain(&self.rules).map(String::as_str));
            if let Some(clash) = taken.into_iter().find(|name| stem(name) == stem(state)) {
                return Err(ConfigError::new(
                    "snapshot.file",
                    format!("`{state}` would overwrite `{clash}` (the state and its .journal, .tmp files must not share its name)"),
                ));
            }
        }
        Ok(())
    }
}

/// The settings every detection shares, split from the detection's own.
pub struct CommonSettings {
    /// `None` when the section does not say: the detection's default applies.
    pub enabled: Option<bool>,
    pub suppress: Vec<Suppression>,
}

/// Takes `enabled` and `suppress` out of a detection's section; the rest is the detection's.
pub fn split_common(key: &str, section: &Map<String, Value>) -> Result<(CommonSettings, Map<String, Value>), ConfigError> {
    let mut own = section.clone();
    let enabled = match own.remove("enabled") {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(other) => return Err(ConfigError::new(format!("detections.{key}.enabled"), format!("must be true or false, not {other}"))),
    };
    let suppress = match own.remove("suppress") {
        None => Vec::new(),
        Some(v) => parse_at(&format!("detections.{key}.suppress"), v)?,
    };
    Ok((CommonSettings { enabled, suppress }, own))
}

/// Deserializes `value` as `T`, reporting errors with their full key path under `prefix`.
pub fn parse_at<T: DeserializeOwned>(prefix: &str, value: Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, p) => p.to_string(),
            (false, ".") => prefix.to_string(),
            (false, p) => format!("{prefix}.{p}"),
        };
        ConfigError::new(path, e.into_inner().to_string())
    })
}

fn check_range(key: &str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(key, format!("{value} is not allowed: use {min} to {max}")))
    }
}

fn check_file_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty() && !name.contains('/') && !name.contains('\\') && name != "." && name != "..";
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(key, format!("`{name}` must be a plain file name in the configuration's directory")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Document::from_json(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn empty_document_is_the_defaults() {
        let Document { engine, host } = Document::from_json(b"{}").unwrap();
        assert_eq!(engine.window.length_seconds, 3600);
        assert_eq!(engine.window.allowed_lateness_seconds, 600);
        assert_eq!(engine.alert_format, AlertFormat::Splunk);
        assert_eq!(host.output.field, "tripline");
        assert_eq!(host.snapshot.file, "tripline-state.snap");
    }

    #[test]
    fn output_splits_between_engine_and_host() {
        let Document { engine, host } =
            Document::from_json(br#"{"output":{"alert_format":"ocsf","field":"tl","stats_every_records":5}}"#).unwrap();
        assert_eq!(engine.alert_format, AlertFormat::Ocsf);
        assert_eq!((host.output.field.as_str(), host.output.stats_every_records, host.output.max_alerts_per_record), ("tl", 5, 100));
        assert!(err(r#"{"output":{"feild":"tl"}}"#).contains("`output.feild`: unknown field `feild`, expected one of `field`"));
        assert!(err(r#"{"output":{"field":null}}"#).contains("`output.field`: invalid type: null, expected a string"));
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err(r#"{"window":{"lenght_seconds":60}}"#).contains("`window.lenght_seconds`: unknown field `lenght_seconds`, expected one of `length_seconds`"));
        assert!(err(r#"{"window":{"length_seconds":"1h"}}"#).contains("`window.length_seconds`: invalid type"));
        assert!(err(r#"{"window":{"length_seconds":7}}"#).contains("window.length_seconds"));
        assert!(err(r#"{"window":{"late_events":"keep"}}"#).contains("unknown variant `keep`, expected `drop` or `alert`"));
        assert_eq!(
            err(r#"{"output":{"alert_format":"OCSF"}}"#),
            "configuration key `output.alert_format`: unknown variant `OCSF`, expected one of `splunk`, `ocsf`, `ecs`"
        );
        assert!(err(r#"{"limits":{"max_groups":0}}"#).contains("limits.max_groups"));
        assert!(err(r#"{"limits":{"max_groups":1000000000}}"#).contains("use 1 to 1000000"));
        assert!(err(r#"{"limits":{"max_value_bytes":8}}"#).contains("limits.max_value_bytes"));
        assert!(err(r#"{"limits":{"max_pending_bytes":4294967296}}"#).contains("limits.max_pending_bytes"));
        assert!(err(&format!(r#"{{"window":{{"max_future_seconds":{}}}}}"#, i64::MAX)).contains("window.max_future_seconds"));
        assert!(err(r#"{"models":["../etc/passwd"]}"#).contains("models[0]"));
        assert!(err(r#"{"snapshot":{"file":"tripline.json"}}"#).contains("would overwrite `tripline.json`"));
        assert!(err(r#"{"output":{"field":"eventName"}}"#).contains("`eventName` is a CloudTrail record field"));
        assert!(err(r#"{"models":["baseline.json"],"snapshot":{"file":"baseline.snap"}}"#).contains("would overwrite `baseline.json`"));
        assert!(err("[1]").contains("must be a JSON object"));
        assert!(err("{").contains("not valid JSON"));
    }
}
