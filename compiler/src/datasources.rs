//! ESCU's `data_sources/*.yml`: per-eventName descriptions of CloudTrail records, each with the
//! add-on's field list and one example record. The linter checks a rule's `stats ... by` fields
//! against them: a field neither in the example nor in the list is likely absent from such
//! records, and an event without a `by` field joins no group.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
struct DataSourceFile {
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    example_log: Option<String>,
}

/// One data source with an example record.
#[derive(Debug, Clone)]
pub struct DataSource {
    /// Path relative to the ESCU root.
    pub file: String,
    /// The add-on field names the data source lists.
    pub fields: BTreeSet<String>,
    /// Every leaf path of the example record, Splunk style (`a.b`, `a{}.b`).
    pub example_paths: BTreeSet<String>,
}

impl DataSource {
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains(field) || self.example_paths.contains(field)
    }
}

/// Data sources by the example record's `eventName`, lower case.
#[derive(Debug, Clone, Default)]
pub struct DataSources {
    by_event: BTreeMap<String, Vec<DataSource>>,
}

impl DataSources {
    pub fn load(root: &Path) -> anyhow::Result<DataSources> {
        let dir = root.join("data_sources");
        let mut out = DataSources::default();
        if !dir.is_dir() {
            return Ok(out);
        }
        let mut paths: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<Vec<_>, _>>()?.into_iter().map(|e| e.path()).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yml")) {
            let text = std::fs::read_to_string(&path)?;
            let file: DataSourceFile =
                serde_norway::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let Some(example) = file.example_log.as_deref() else { continue };
            let Ok(record) = serde_json::from_str::<serde_json::Value>(example) else { continue };
            let Some(event_name) = record.get("eventName").and_then(|v| v.as_str()) else { continue };
            let mut example_paths = BTreeSet::new();
            leaf_paths(&record, "", &mut example_paths);
            let name = path.file_name().expect("a file").to_string_lossy();
            out.insert(
                event_name,
                DataSource { file: format!("data_sources/{name}"), fields: file.fields.into_iter().collect(), example_paths },
            );
        }
        Ok(out)
    }

    pub fn insert(&mut self, event_name: &str, source: DataSource) {
        self.by_event.entry(event_name.to_ascii_lowercase()).or_default().push(source);
    }

    pub fn for_event(&self, event_name: &str) -> &[DataSource] {
        self.by_event.get(&event_name.to_ascii_lowercase()).map_or(&[], Vec::as_slice)
    }
}

/// Every leaf path below `value`: `a.b` for objects, `a{}` for arrays (Splunk's JSON names).
pub fn leaf_paths(value: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaf_paths(v, &p, out);
            }
        }
        serde_json::Value::Array(items) => {
            let p = format!("{prefix}{{}}");
            if items.is_empty() {
                out.insert(p.clone());
            }
            items.iter().for_each(|i| leaf_paths(i, &p, out));
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_paths_use_splunk_names() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"a": {"b": 1, "c": null}, "items": [{"id": "x"}], "e": []}"#).unwrap();
        let mut out = BTreeSet::new();
        leaf_paths(&v, "", &mut out);
        assert_eq!(out.into_iter().collect::<Vec<_>>(), vec!["a.b", "a.c", "e{}", "items{}.id"]);
    }
}
