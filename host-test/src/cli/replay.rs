//! `tripline replay`: every record through the Fluent Bit module, exactly as Fluent Bit's
//! `filter_wasm` would call it (the harness in `tripline_host_test::fluentbit`).
//!
//! Each record is handed over as `tail` with the example `cloudtrail` parser would: parsed and
//! re-encoded by Fluent Bit's rules, timed by its `eventTime` (the wall clock when it has none),
//! kept as `{"log": ...}` when it is not a JSON object. Records go in chunks of about 32 KiB of
//! input, like `tail`'s reads. The configuration and model files are copied into a fresh
//! directory that is the filter's `Accessible_Paths` (or `--dir`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tripline_host_test::artifacts::project_root;
use tripline_host_test::fluentbit::{
    ingest_line, ContractViolation, FilterOptions, FluentBitFilter, Outcome, Reply, DEFAULT_TAG, FILTER_FUNCTION,
};

use super::args::{self, Usage};
use super::input::{total_disk_size, InputFile};
use super::progress::{thousands, Progress};
use super::table;

const USAGE: &str = "\
usage: tripline replay [options] FILE...

Runs every record through the Fluent Bit module exactly as Fluent Bit 5.1's filter_wasm calls
it, then prints the alerts and a summary. FILEs: NDJSON, CloudTrail S3 exports, .gz of either.

  --module FILE    the module (default dist/tripline-fluentbit.wasm)
  --function NAME  Function_Name (default tripline_filter)
  --config FILE    tripline.json to use (default: none, the module's defaults)
  --model FILE     a model file the configuration lists in \"models\" (repeatable; a name the
                   configuration does not list yet is added to it)
  --dir DIR        use DIR as Accessible_Paths and keep it (state snapshot included) instead
                   of a fresh temporary directory; --config/--model are copied into it
  --tag TAG        the records' tag (default aws.cloudtrail)
  --out FILE       write every resulting record as NDJSON, as Fluent Bit would output it
  --alerts FILE    write every alert object as NDJSON
  --max-rows N     alerts shown in the table (default 200)
  --quiet          no progress line

Exit status: 0 when every record came back (unchanged or annotated), 3 when the module broke
the filter_wasm contract (a dropped or trapped record, invalid output), 1 on other errors
(an invalid configuration included: the module then passes everything through).";

/// Input bytes per chunk (`tail`'s default `Buffer_Chunk_Size`).
const CHUNK_BYTES: usize = 32 * 1024;
/// Contract violations printed in full; the rest are only counted.
const SHOWN_VIOLATIONS: usize = 10;

#[derive(Default)]
struct Summary {
    files: usize,
    records: u64,
    unchanged: u64,
    pass_through: u64,
    modified: u64,
    tagged: u64,
    with_alerts: u64,
    alerts: Vec<Value>,
    violations: u64,
    fatal: Option<String>,
    not_objects: u64,
    untimed: u64,
    last_stats: Option<(u64, Value)>,
}

pub fn run(argv: impl Iterator<Item = String>) -> Result<ExitCode> {
    let a = args::parse(
        argv,
        &["--module", "--function", "--config", "--model", "--dir", "--tag", "--out", "--alerts", "--max-rows"],
        &["--quiet"],
        USAGE,
    )?;
    if a.has("--help") {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    if a.positional.is_empty() {
        return Err(Usage(format!("no input files\n\n{USAGE}")).into());
    }
    let module = module_path(a.one("--module")?);
    let function = a.one("--function")?.unwrap_or(FILTER_FUNCTION).to_string();
    let tag = a.one("--tag")?.unwrap_or(DEFAULT_TAG).to_string();
    let max_rows = match a.one("--max-rows")? {
        Some(n) => n.parse().map_err(|_| Usage(format!("--max-rows: not a number: {n}")))?,
        None => 200,
    };
    let models: Vec<PathBuf> = a.all("--model").iter().map(PathBuf::from).collect();
    let dir = WorkDir::prepare(a.one("--config")?.map(Path::new), &models, a.one("--dir")?.map(Path::new))?;
    let field = output_field(&dir.path);
    // The module reports a bad configuration only on its stderr and then passes everything
    // through; the same check, natively, makes it impossible to miss in the summary.
    let config_error = std::fs::read(dir.path.join("tripline.json"))
        .ok()
        .and_then(|bytes| tripline::Engine::from_json(&bytes).config_error().map(|e| e.to_string()));

    let options = FilterOptions::new(&module, &function).accessible_path(&dir.path).tag(&tag);
    let mut filter = FluentBitFilter::start(options)
        .with_context(|| format!("starting the filter (Wasm_Path {}, Function_Name {function})", module.display()))?;
    let mut out = open(a.one("--out")?)?;
    let mut alerts_out = open(a.one("--alerts")?)?;

    let files: Vec<PathBuf> = a.positional.iter().map(PathBuf::from).collect();
    let total = total_disk_size(&files);
    let mut progress = Progress::new("replay", total, a.has("--quiet"));
    let started = Instant::now();
    let now = chrono::Utc::now().timestamp();
    let mut summary = Summary::default();
    let mut done_bytes = 0u64;
    'files: for path in &files {
        let input = InputFile::read(path)?;
        summary.files += 1;
        let mut chunk = 0usize;
        for record in input.records() {
            if chunk >= CHUNK_BYTES {
                filter.begin_chunk();
                chunk = 0;
            }
            chunk += record.len() + 1;
            summary.records += 1;
            let ingested = ingest_line(record, now);
            summary.not_objects += u64::from(!ingested.parsed);
            summary.untimed += u64::from(!ingested.timed);
            match filter.call_raw(tag.as_bytes(), ingested.time_sec, 0, &ingested.body) {
                Ok(reply) => take(&mut summary, &reply, &field, out.as_mut(), alerts_out.as_mut())?,
                Err(e) => {
                    let Some(violation) = e.downcast_ref::<ContractViolation>() else { return Err(e) };
                    progress.finish();
                    summary.violations += 1;
                    if summary.violations as usize <= SHOWN_VIOLATIONS {
                        eprintln!("tripline: record {} of {}: {violation}", summary.records, path.display());
                    }
                    if violation.fatal {
                        summary.fatal = Some(format!("record {} of {}", summary.records, path.display()));
                        break 'files;
                    }
                }
            }
            progress.update(summary.records, done_bytes + input.disk_position(record));
        }
        done_bytes += input.disk_size;
    }
    progress.finish();
    for w in [out.as_mut(), alerts_out.as_mut()].into_iter().flatten() {
        w.flush()?;
    }

    let elapsed = started.elapsed().as_secs_f64();
    if !summary.alerts.is_empty() {
        print!("{}", table::alerts_table(&summary.alerts, table::width(), max_rows));
        println!();
    }
    print_summary(&summary, &module, &function, elapsed, filter.host_log().len());
    if let Some(error) = &config_error {
        println!("CONFIGURATION ERROR: {error}; the module ran no detection and passed every record through");
    }
    if let Some(kept) = dir.kept() {
        println!("Accessible_Paths directory kept: {}", kept.display());
    }
    Ok(if summary.violations > 0 {
        ExitCode::from(3)
    } else if config_error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Counts one reply and writes what it carries.
fn take(
    summary: &mut Summary,
    reply: &Reply,
    field: &str,
    out: Option<&mut BufWriter<File>>,
    mut alerts_out: Option<&mut BufWriter<File>>,
) -> Result<()> {
    match &reply.outcome {
        Outcome::Dropped | Outcome::Trapped(_) => {
            summary.violations += 1;
            if summary.violations as usize <= SHOWN_VIOLATIONS {
                let why = match &reply.outcome {
                    Outcome::Trapped(t) => format!("trapped ({t})"),
                    _ => "returned \"\" (dropped)".to_string(),
                };
                eprintln!("tripline: record {}: the module {why}; Fluent Bit loses this record", summary.records);
            }
            return Ok(());
        }
        Outcome::PassThrough(_) => {
            summary.unchanged += 1;
            summary.pass_through += 1;
        }
        Outcome::Unchanged(_) => summary.unchanged += 1,
        Outcome::Modified(_) => {
            summary.modified += 1;
            let carried = reply.annotation(field).unwrap_or(Value::Null);
            let matches = carried.get("matches").and_then(Value::as_array).map_or(0, Vec::len);
            summary.tagged += u64::from(matches > 0);
            if let Some(alerts) = carried.get("alerts").and_then(Value::as_array) {
                summary.with_alerts += u64::from(!alerts.is_empty());
                for alert in alerts {
                    if let Some(w) = alerts_out.as_deref_mut() {
                        serde_json::to_writer(&mut *w, alert)?;
                        w.write_all(b"\n")?;
                    }
                    summary.alerts.push(alert.clone());
                }
            }
            if let Some(stats) = carried.get("stats") {
                summary.last_stats = Some((summary.records, stats.clone()));
            }
        }
    }
    if let Some(w) = out {
        let body = reply.reencoded().context("re-encoding a record the module returned")?;
        w.write_all(&body)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

fn print_summary(s: &Summary, module: &Path, function: &str, elapsed: f64, host_errors: usize) {
    let rate = s.records as f64 / elapsed.max(1e-9);
    println!(
        "replay: {} records from {} file(s) through {} ({function}) in {elapsed:.1} s ({} records/s)",
        thousands(s.records),
        s.files,
        module.display(),
        thousands(rate as u64)
    );
    let row = |label: &str, n: u64, note: &str| {
        println!("{}", format!("  {label:<20}{:>10}  {note}", thousands(n)).trim_end())
    };
    row("unchanged", s.unchanged, &format!("({} zero-copy pass-through)", thousands(s.pass_through)));
    row("annotated", s.modified, "(records that came back with the tripline field)");
    row("tagged", s.tagged, "(records carrying per-event matches)");
    row("carrying alerts", s.with_alerts, "");
    row("alerts seen", s.alerts.len() as u64, "");
    row("contract violations", s.violations, "(dropped, trapped or invalid output: must be 0)");
    if s.not_objects > 0 {
        row("not JSON objects", s.not_objects, "(sent as {\"log\": line}, as tail does when its parser fails)");
    }
    if s.untimed > 0 {
        row("no eventTime", s.untimed, "(record time = wall clock)");
    }
    if host_errors > 0 {
        println!("  the host logged {host_errors} error(s) (see stderr)");
    }
    if let Some(at) = &s.fatal {
        println!("  FATAL at {at}: real Fluent Bit 5.1.1 would have aborted; the replay stopped there");
    }
    match &s.last_stats {
        None => println!(
            "module stats: none attached (set output.stats_every_records in the configuration to see the module's counters)"
        ),
        Some((at, stats)) => print_stats(*at, s.records, stats),
    }
    if s.last_stats.as_ref().is_none_or(|(at, _)| *at < s.records) {
        println!(
            "note: windows still open at the end of the input stay open, and alerts not yet attached wait, until later \
             records arrive (Fluent Bit gives a filter no timer)"
        );
    }
}

fn print_stats(at: u64, records: u64, stats: &Value) {
    println!("module stats (attached to record {} of {}):", thousands(at), thousands(records));
    if let Some(counters) = stats.get("counters").and_then(Value::as_object) {
        let always = ["records", "matched", "alerts"];
        let shown: Vec<String> = counters
            .iter()
            .filter(|(k, v)| always.contains(&k.as_str()) || v.as_u64().is_some_and(|n| n > 0))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("  counters: {}", shown.join(", "));
    }
    if let Some(error) = stats.get("config_error").and_then(Value::as_str) {
        println!("  CONFIGURATION ERROR: {error} (the module passes every record through unchanged)");
    }
    let pending = stats.get("pending_alerts").and_then(Value::as_u64).unwrap_or(0);
    let open: u64 = stats
        .get("detections")
        .and_then(Value::as_object)
        .map(|d| d.values().filter_map(|v| v.get("open_groups").and_then(Value::as_u64)).sum())
        .unwrap_or(0);
    if let Some(mark) = stats.get("watermark").and_then(Value::as_str) {
        println!("  watermark: {mark}");
    }
    if pending > 0 || open > 0 {
        println!(
            "  at that record: {pending} alert(s) waiting for a record to carry them, {open} group(s) in windows still open. \
             Fluent Bit has no timer: windows close, and alerts leave, only when later records arrive."
        );
    }
}

/// `dist/tripline-fluentbit.wasm` relative to the current directory, else to the project.
fn module_path(given: Option<&str>) -> PathBuf {
    if let Some(path) = given {
        return PathBuf::from(path);
    }
    let local = PathBuf::from("dist/tripline-fluentbit.wasm");
    if local.exists() {
        local
    } else {
        project_root().join(local)
    }
}

fn open(path: Option<&str>) -> Result<Option<BufWriter<File>>> {
    path.map(|p| File::create(p).map(BufWriter::new).with_context(|| format!("creating {p}"))).transpose()
}

/// The field the module adds (`output.field`), from the configuration it will read.
fn output_field(dir: &Path) -> String {
    std::fs::read(dir.join("tripline.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|c| c.get("output")?.get("field")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "tripline".to_string())
}

/// The `Accessible_Paths` directory: a fresh temporary one (removed afterwards) or `--dir`.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn prepare(config: Option<&Path>, models: &[PathBuf], keep: Option<&Path>) -> Result<WorkDir> {
        let dir = match keep {
            Some(d) => WorkDir { path: d.to_path_buf(), keep: true },
            None => {
                let nanos =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
                let path = std::env::temp_dir().join(format!("tripline-replay-{}-{nanos}", std::process::id()));
                WorkDir { path, keep: false }
            }
        };
        std::fs::create_dir_all(&dir.path).with_context(|| format!("creating {}", dir.path.display()))?;
        let config_bytes = match config {
            Some(c) => Some(std::fs::read(c).with_context(|| format!("reading --config {}", c.display()))?),
            None if dir.keep => std::fs::read(dir.path.join("tripline.json")).ok(),
            None => None,
        };
        let (config_bytes, names) = place_models(config_bytes, models)?;
        if let Some(bytes) = config_bytes {
            std::fs::write(dir.path.join("tripline.json"), bytes).context("writing tripline.json")?;
        }
        for (model, name) in models.iter().zip(names) {
            std::fs::copy(model, dir.path.join(&name))
                .with_context(|| format!("copying --model {}", model.display()))?;
        }
        Ok(dir)
    }

    fn kept(&self) -> Option<&Path> {
        self.keep.then_some(self.path.as_path())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The name each model file gets beside the configuration, and the configuration to write: a
/// model whose file name the configuration lists keeps it; otherwise it takes the name listed at
/// its position; otherwise its file name is added to `models` (a configuration is created if
/// there is none). The configuration is written unchanged unless a name had to be added.
fn place_models(config: Option<Vec<u8>>, models: &[PathBuf]) -> Result<(Option<Vec<u8>>, Vec<String>)> {
    if models.is_empty() {
        return Ok((config, Vec::new()));
    }
    let mut document = match &config {
        None => json!({}),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(v) if v.is_object() => v,
            _ => bail!("--model needs the configuration's \"models\" list, but the configuration is not a JSON object"),
        },
    };
    let listed: Vec<String> = document
        .get("models")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut names = Vec::new();
    let mut added = Vec::new();
    for (i, model) in models.iter().enumerate() {
        let file_name = model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("--model {} has no file name", model.display()))?;
        let name = if listed.contains(&file_name) {
            file_name
        } else if let Some(n) = listed.get(i).filter(|n| !names.contains(*n)) {
            n.clone()
        } else {
            added.push(file_name.clone());
            file_name
        };
        names.push(name);
    }
    if added.is_empty() {
        return Ok((config, names));
    }
    let object = document.as_object_mut().context("configuration is not an object")?;
    let list = object.entry("models").or_insert_with(|| json!([]));
    let Some(list) = list.as_array_mut() else { bail!("the configuration's \"models\" is not a list") };
    list.extend(added.into_iter().map(Value::String));
    Ok((Some(serde_json::to_vec_pretty(&document)?), names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_take_the_names_the_configuration_lists() {
        let config = br#"{"models":["baseline.json"]}"#.to_vec();
        let (c, names) = place_models(Some(config.clone()), &[PathBuf::from("/x/fitted.json")]).unwrap();
        assert_eq!((c, names), (Some(config), vec!["baseline.json".to_string()]));
        let (c, names) = place_models(None, &[PathBuf::from("m.json")]).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&c.unwrap()).unwrap(), json!({"models": ["m.json"]}));
        assert_eq!(names, ["m.json"]);
        assert!(place_models(Some(b"{".to_vec()), &[PathBuf::from("m.json")]).is_err());
    }
}
