//! `tripline fit`: Splunk's weekly baseline search, offline. Runs the engine natively (no wasm)
//! with the batch-job detection disabled and the security-group detection in `learn` mode,
//! feeds every record stamped before `--until`, closes every window that ends by then and
//! writes the model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use tripline::config::Config;
use tripline::detections::abnormally_high_cloud_security_group_api_calls::KEY as BASELINE;
use tripline::Engine;
use tripline_host_test::fluentbit::record_time;

use super::args::{self, Usage};
use super::input::{total_disk_size, InputFile};
use super::progress::{thousands, Progress};

const USAGE: &str = "\
usage: tripline fit [--config FILE] [--until RFC3339] --out model.json FILE...

Fits the baseline of \"Abnormally High Number Of Cloud Security Group API Calls\" from history,
as Splunk's weekly baseline search does, and writes it as a model file for the module's
configuration (\"models\"). Runs natively; the configuration's detection settings (user_field,
utc_offset_minutes, horizon_days, ...) apply, with the detection forced to mode \"learn\" and
the batch-job detection disabled.

  --config FILE    tripline.json whose settings to fit with (default {})
  --until RFC3339  only records with eventTime before this instant; the model holds every hour
                   that ends at or before it (default: every record, and every hour)
  --out FILE       where to write the model (pretty-printed JSON)
  --quiet          no progress line";

pub fn run(argv: impl Iterator<Item = String>) -> Result<ExitCode> {
    let a = args::parse(argv, &["--config", "--until", "--out"], &["--quiet"], USAGE)?;
    if a.has("--help") {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let out = a.one("--out")?.ok_or_else(|| Usage(format!("--out is required\n\n{USAGE}")))?;
    if a.positional.is_empty() {
        return Err(Usage(format!("no input files\n\n{USAGE}")).into());
    }
    let until = a
        .one("--until")?
        .map(|u| {
            chrono::DateTime::parse_from_rfc3339(u)
                .map(|t| t.timestamp())
                .map_err(|e| Usage(format!("--until: not an RFC 3339 time ({e}): {u}")))
        })
        .transpose()?;
    let document = fit_config(a.one("--config")?.map(Path::new))?;
    let config = Config::from_json(&serde_json::to_vec(&document)?).map_err(|e| anyhow!("{e}"))?;
    let lateness = config.window.allowed_lateness_seconds;
    let min_cardinality = document["detections"][BASELINE]["min_cardinality"].as_u64().unwrap_or(16);
    let mut engine = Engine::new(config).map_err(|e| anyhow!("{e}"))?;

    let files: Vec<PathBuf> = a.positional.iter().map(PathBuf::from).collect();
    let mut progress = Progress::new("fit", total_disk_size(&files), a.has("--quiet"));
    let (mut read, mut fed, mut done_bytes) = (0u64, 0u64, 0u64);
    for path in &files {
        let input = InputFile::read(path)?;
        for record in input.records() {
            read += 1;
            let before = until.is_none_or(|u| record_time(record).is_some_and(|t| t < u));
            if before {
                engine.process(record, None);
                fed += 1;
            }
            progress.update(read, done_bytes + input.disk_position(record));
        }
        done_bytes += input.disk_size;
    }
    progress.finish();
    match until {
        // The history ends at `u`, so a window ending at `u` is whole: close it as the watermark
        // at `u` plus the lateness would. At `u` itself it would stay open and the model would be
        // an hour short of Splunk's baseline window.
        Some(u) => engine.flush(u.saturating_add(lateness)),
        None => engine.finish_all(),
    }
    let model = engine.model(BASELINE).ok_or_else(|| anyhow!("the engine has no `{BASELINE}` detection enabled"))?;
    let mut text = serde_json::to_vec_pretty(&model)?;
    text.push(b'\n');
    std::fs::write(out, text).with_context(|| format!("writing {out}"))?;

    let groups = model["groups"].as_array().map(Vec::as_slice).unwrap_or_default();
    let judged =
        groups.iter().filter(|g| g["fit"]["cardinality"].as_u64().is_some_and(|c| c >= min_cardinality)).count();
    let counters = engine.counters();
    println!(
        "fit: {} records read, {} fed{}",
        thousands(read),
        thousands(fed),
        match until {
            Some(_) => format!(" (eventTime before {})", a.one("--until")?.unwrap_or_default()),
            None => String::new(),
        }
    );
    println!(
        "  {} security-group change events in {} hourly user windows learned",
        thousands(counters.matched),
        thousands(groups.iter().filter_map(|g| g["fit"]["cardinality"].as_u64()).sum())
    );
    if counters.parse_errors + counters.field_errors > 0 {
        println!(
            "  unreadable: {} not JSON objects, {} with wrong field types",
            counters.parse_errors, counters.field_errors
        );
    }
    println!("  baseline groups (user, HourOfDay, isWeekend): {}", thousands(groups.len() as u64));
    println!("  groups with cardinality >= {min_cardinality} (judged by the detection): {}", thousands(judged as u64));
    println!("  model written to {out}");
    Ok(ExitCode::SUCCESS)
}

/// The configuration (or `{}`) with the baseline detection learning and every rule off, which
/// fitting does not need.
fn fit_config(path: Option<&Path>) -> Result<Value> {
    let mut document = match path {
        None => json!({}),
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading --config {}", p.display()))?;
            serde_json::from_slice(&bytes).with_context(|| format!("--config {} is not valid JSON", p.display()))?
        }
    };
    let Some(root) = document.as_object_mut() else { bail!("the configuration must be a JSON object") };
    let detections = root.entry("detections").or_insert_with(|| json!({}));
    let Some(detections) = detections.as_object_mut() else {
        bail!("configuration key `detections` must be an object")
    };
    for rule in tripline::catalog::builtin_rules() {
        section(detections, &rule.metadata.key)?.insert("enabled".into(), json!(false));
    }
    let baseline = section(detections, BASELINE)?;
    baseline.insert("enabled".into(), json!(true));
    baseline.insert("mode".into(), json!("learn"));
    Ok(document)
}

fn section<'a>(detections: &'a mut Map<String, Value>, key: &str) -> Result<&'a mut Map<String, Value>> {
    detections
        .entry(key)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| anyhow!("configuration key `detections.{key}` must be an object"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forces_the_fitting_modes_and_keeps_other_settings() {
        let dir = std::env::temp_dir().join(format!("tripline-fit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.json");
        std::fs::write(&path, br#"{"detections":{"abnormally_high_cloud_security_group_api_calls":{"mode":"judge","utc_offset_minutes":60}}}"#).unwrap();
        let doc = fit_config(Some(&path)).unwrap();
        assert_eq!(doc["detections"]["aws_exfiltration_via_batch_service"]["enabled"], json!(false));
        assert_eq!(doc["detections"][BASELINE]["mode"], json!("learn"));
        assert_eq!(doc["detections"][BASELINE]["utc_offset_minutes"], json!(60));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
