//! `tripline fit`: a learning detection's model from history, offline (for detection B:
//! Splunk's weekly baseline search). Every other detection is off; the chosen one learns only.
//! Which detections learn is found from the engine, not named here: those whose learned state
//! is a model document (it has a `format`).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use tripline::catalog::{builtin_rules, catalog};
use tripline::Engine;

use crate::host::Place;
use crate::input::{event_time, for_each_record, total_disk_size};
use crate::progress::{thousands, Progress};
use crate::{input_files, OK};

/// Fit a learning detection's model (a baseline) from history, offline.
///
/// Reads every record stamped before --until, closes every window that ends by then, and
/// writes the detection's model for the configuration's "models". The configuration's settings
/// for the detection apply (for a baseline: user_field, utc_offset_minutes, horizon_days...);
/// the detection is forced to learn and every other detection is off.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  tripline fit --detection abnormally_high_cloud_security_group_api_calls --out baseline.json cloudtrail.ndjson
  tripline fit --detection cloud_provisioning_activity_from_previously_unseen_ip_address --until 2026-11-01T00:00:00Z \\
    --config /etc/tripline --out first-seen.json archive/*.json.gz
  tripline fit --list")]
pub struct Args {
    /// NDJSON, CloudTrail S3 exports or .gz of either; - for stdin.
    #[arg(value_name = "FILE", required_unless_present = "list")]
    files: Vec<PathBuf>,
    /// The detection to fit, by configuration key; may be left out when one detection learns.
    #[arg(long, value_name = "KEY")]
    detection: Option<String>,
    /// The configuration whose settings to fit with (a directory holding tripline.json, or the file).
    #[arg(long, value_name = "DIR|FILE")]
    config: Option<PathBuf>,
    /// Only records with eventTime before this instant; the model holds every window that ends
    /// at or before it. Default: every record, and every window.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    until: Option<i64>,
    /// Where to write the model (pretty JSON).
    #[arg(long, value_name = "FILE", required_unless_present = "list")]
    out: Option<PathBuf>,
    /// List the detections that learn, and exit.
    #[arg(long)]
    list: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_time(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| format!("not an RFC 3339 time ({e}); write it like 2026-11-01T00:00:00Z"))
}

pub fn run(a: Args) -> Result<u8> {
    let place = a.config.as_deref().map(Place::locate).transpose()?;
    let document: Value = match &place {
        None => json!({}),
        Some(p) => serde_json::from_slice(&p.read()?)
            .map_err(|e| anyhow!("{}: not valid JSON ({e}); fix the configuration", p.file.display()))?,
    };
    let learners = learners();
    if a.list {
        for key in &learners {
            println!("{key}");
        }
        return Ok(OK);
    }
    let key = match (&a.detection, learners.as_slice()) {
        (Some(key), _) => key.clone(),
        (None, [only]) => only.clone(),
        (None, _) => bail!("--detection KEY is needed: these detections learn: {}", learners.join(", ")),
    };
    if !learners.contains(&key) {
        bail!("`{key}` learns nothing to fit; these detections learn: {}", learners.join(", "));
    }
    let files = input_files(&a.files)?;
    let out = a.out.clone().context("--out FILE is required")?;
    let mut engine = fit_engine(&document, &key, place.as_ref())?;
    let lateness = engine.config().window.allowed_lateness_seconds;

    let progress = Progress::new("fit", total_disk_size(&files), a.quiet);
    let (mut read, mut fed) = (0u64, 0u64);
    for_each_record(&files, |_, record, position| {
        read += 1;
        if a.until.is_none_or(|u| event_time(record).is_some_and(|t| t < u)) {
            engine.process(record, None);
            fed += 1;
        }
        progress.update(read, position);
        Ok(())
    })?;
    progress.finish();
    match a.until {
        // The history ends at `u`, so a window ending at `u` is whole: close it as the watermark
        // at `u` plus the lateness would. At `u` itself it would stay open and the model would be
        // a window short of the baseline search's.
        Some(u) => engine.flush(u.saturating_add(lateness)),
        None => engine.finish_all(),
    }
    let model = engine.model(&key).ok_or_else(|| anyhow!("detection `{key}` is not enabled"))?;
    let mut text = serde_json::to_vec_pretty(&model)?;
    text.push(b'\n');
    crate::write_whole(&out, &text)?;

    println!("fit {key}: {} records read, {} fed", thousands(read), thousands(fed));
    println!("  selected: {}", thousands(engine.counters().matched));
    let counters = serde_json::to_value(engine.counters())?;
    let trouble: Vec<String> = ["parse_errors", "field_errors", "late", "untimed", "evicted_groups"]
        .iter()
        .filter_map(|k| counters[k].as_u64().filter(|n| *n > 0).map(|n| format!("{k} {n}")))
        .collect();
    if !trouble.is_empty() {
        println!("  {}", trouble.join(", "));
    }
    if let Some(own) = engine.stats()["detections"][&key].as_object() {
        let own: Vec<String> = own.iter().filter(|(k, _)| *k != "open_groups").map(|(k, v)| format!("{k} {v}")).collect();
        println!("  {}", own.join(", "));
    }
    println!("  model written to {}", out.display());
    Ok(OK)
}

/// The detections whose learned state is a model document, in catalog order.
fn learners() -> Vec<String> {
    let keys: Vec<String> = catalog(builtin_rules()).into_iter().map(|e| e.key).collect();
    let sections: Map<String, Value> = keys.iter().map(|k| (k.clone(), json!({"enabled": true}))).collect();
    let engine = Engine::from_json(json!({ "detections": sections }).to_string().as_bytes());
    keys.into_iter().filter(|k| engine.model(k).is_some_and(|m| m.get("format").is_some_and(Value::is_string))).collect()
}

/// The engine that fits `key`: every other detection off, `key` on and learning only.
fn fit_engine(document: &Value, key: &str, place: Option<&Place>) -> Result<Engine> {
    let build = |learn: bool| -> Result<Engine> {
        let doc = fit_config(document, key, learn)?;
        let bytes = serde_json::to_vec(&doc)?;
        Ok(match place {
            Some(p) => p.engine(&bytes).0,
            None => Engine::from_json(&bytes),
        })
    };
    let mut engine = build(true)?;
    // A detection without a `mode` setting learns as it runs.
    if engine.config_error().is_some_and(|e| e.message.contains("`mode`")) {
        engine = build(false)?;
    }
    if let Some(e) = engine.config_error() {
        let file = place.map_or("the configuration".to_string(), |p| p.file.display().to_string());
        bail!("{file}: {e}; fix the configuration (`tripline check` shows every problem)");
    }
    if engine.model(key).is_none() {
        bail!("`{key}` is no detection here; `tripline fit --list` lists the detections that learn");
    }
    Ok(engine)
}

/// The configuration with `key` learning and every other detection off.
fn fit_config(document: &Value, key: &str, learn: bool) -> Result<Value> {
    let mut document = document.clone();
    let Some(root) = document.as_object_mut() else { bail!("the configuration must be a JSON object") };
    let detections = root.entry("detections").or_insert_with(|| json!({}));
    let Some(detections) = detections.as_object_mut() else { bail!("configuration key `detections` must be an object") };
    let rules: Vec<String> = catalog(builtin_rules()).into_iter().map(|e| e.key).filter(|k| k != key).collect();
    for other in rules {
        section(detections, &other)?.insert("enabled".into(), json!(false));
    }
    let own = section(detections, key)?;
    own.insert("enabled".into(), json!(true));
    if learn {
        if own.get("mode").is_some_and(|m| m != "learn" && m != "learn_and_judge") {
            bail!("configuration key `detections.{key}.mode` is {}: fitting learns; set it to learn_and_judge or leave it out", own["mode"]);
        }
        own.insert("mode".into(), json!("learn"));
    }
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
    fn some_detection_learns_and_fitting_forces_it_alone_to_learn() {
        let learners = learners();
        assert!(!learners.is_empty());
        let key = &learners[0];
        let doc = fit_config(&json!({"detections": {key: {"utc_offset_minutes": 60}}}), key, true).unwrap();
        assert_eq!(doc["detections"][key]["mode"], json!("learn"));
        assert_eq!(doc["detections"][key]["utc_offset_minutes"], json!(60));
        let others = doc["detections"].as_object().unwrap().iter().filter(|(k, _)| *k != key);
        assert!(others.clone().count() > 0 && others.into_iter().all(|(_, v)| v["enabled"] == json!(false)));
        assert!(fit_config(&json!({"detections": {key: {"mode": "judge"}}}), key, true).is_err());
    }
}
