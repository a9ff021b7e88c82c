//! `tripline replay`: every record through the engine natively, as the batch hosts (Extism,
//! JS, the component) run it; the alerts as a table and a summary.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::Value;
use tripline::batch::BatchEngine;

use crate::input::{for_each_record, total_disk_size};
use crate::progress::{thousands, Progress};
use crate::{host, input_files, table, FINDINGS, OK};

/// Run CloudTrail records through the detections; show the alerts and a summary.
///
/// The engine runs natively, as the batch hosts run it: the same records give the same alerts
/// as the Fluent Bit module (host-test/tests/equivalence.rs). At the end the windows close by
/// the wall clock, as a host flushes when traffic stops (--keep-open leaves them open, as
/// Fluent Bit, which gives a filter no timer, would). Exit status 1 when there are alerts.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  tripline replay cloudtrail.ndjson
  tripline replay --config /etc/tripline --alerts alerts.ndjson archive/*.json.gz
  tripline replay --config tripline.json --model baseline.json --out tagged.ndjson cloudtrail.ndjson")]
pub struct Args {
    /// NDJSON, CloudTrail S3 exports ({"Records":[...]}) or .gz of either; - for stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The host's configuration: the directory holding tripline.json (rule files and models
    /// are read from it, as the module reads Accessible_Paths), or the file. Default: none.
    #[arg(long, value_name = "DIR|FILE")]
    config: Option<PathBuf>,
    /// A model file to load after the configuration's own (repeatable).
    #[arg(long, value_name = "FILE")]
    model: Vec<PathBuf>,
    /// Write every record as it leaves (tagged or unchanged) as NDJSON.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write every alert as NDJSON.
    #[arg(long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// Alerts shown in the table.
    #[arg(long, default_value_t = 50, value_name = "N")]
    max_rows: usize,
    /// Leave the windows still open at the end open (their alerts are not raised).
    #[arg(long)]
    keep_open: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(a: Args) -> Result<u8> {
    let files = input_files(&a.files)?;
    let (engine, host) = host::engine_for(a.config.as_deref())?;
    let mut batch = BatchEngine { engine, field: host.output.field };
    for model in &a.model {
        let bytes = std::fs::read(model).with_context(|| format!("{}: cannot read the model", model.display()))?;
        batch.engine.load_model(&bytes).map_err(|e| {
            anyhow::anyhow!("{}: model not loaded: {e}; fit it with `tripline fit` under the same configuration", model.display())
        })?;
    }
    let mut out = create(a.out.as_ref())?;
    let mut alerts_out = create(a.alerts.as_ref())?;
    let now = chrono::Utc::now().timestamp();
    let progress = Progress::new("replay", total_disk_size(&files), a.quiet);
    let started = Instant::now();
    let (mut records, mut tagged) = (0u64, 0u64);
    let mut alerts: Vec<Value> = Vec::new();
    for_each_record(&files, |_, record, position| {
        records += 1;
        let result = batch.process(record, Some(now));
        tagged += u64::from(result.records.strip_suffix(b"\n") != Some(record));
        if let Some(w) = out.as_mut() {
            w.write_all(&result.records)?;
        }
        take_alerts(&result.alerts, &mut alerts, &mut alerts_out)?;
        progress.update(records, position);
        Ok(())
    })?;
    progress.finish();
    let during = alerts.len();
    if !a.keep_open {
        take_alerts(&batch.flush(now).alerts, &mut alerts, &mut alerts_out)?;
    }
    for w in [out.as_mut(), alerts_out.as_mut()].into_iter().flatten() {
        w.flush()?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    if !alerts.is_empty() {
        print!("{}", table::alerts_table(&alerts, batch.engine.config().alert_format, a.max_rows));
        println!();
    }
    println!(
        "replay: {} records from {} file(s) in {elapsed:.1} s ({} records/s)",
        thousands(records),
        files.len(),
        thousands((records as f64 / elapsed.max(1e-9)) as u64)
    );
    let row = |label: &str, n: u64, note: &str| println!("{}", format!("  {label:<18}{:>10}  {note}", thousands(n)).trim_end());
    row("tagged", tagged, "(records that left with the tripline field)");
    row("alerts", alerts.len() as u64, "");
    if !a.keep_open {
        row("  at the end", (alerts.len() - during) as u64, "(windows closed when the input ended)");
    }
    let counters = serde_json::to_value(batch.engine.counters())?;
    let shown: Vec<String> = counters
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !matches!(k.as_str(), "records" | "alerts") && v.as_u64().is_some_and(|n| n > 0))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !shown.is_empty() {
        println!("  counters: {}", shown.join(", "));
    }
    if a.keep_open {
        println!("  windows still open at the end stay open (--keep-open)");
    }
    Ok(if alerts.is_empty() { OK } else { FINDINGS })
}

/// Keeps the alerts of `lines` (NDJSON) and writes them to `--alerts`.
fn take_alerts(lines: &[u8], alerts: &mut Vec<Value>, alerts_out: &mut Option<BufWriter<File>>) -> Result<()> {
    for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(w) = alerts_out.as_mut() {
            w.write_all(line)?;
            w.write_all(b"\n")?;
        }
        alerts.push(serde_json::from_slice(line)?);
    }
    Ok(())
}

fn create(path: Option<&PathBuf>) -> Result<Option<BufWriter<File>>> {
    path.map(|p| {
        File::create(p)
            .map(BufWriter::new)
            .with_context(|| format!("{}: cannot create; check that its directory exists and is writable", p.display()))
    })
    .transpose()
}
