//! The real Fluent Bit section of `make bench`: the CPU time and peak memory of a whole fluent-bit
//! process (tail, the examples' JSON parser, one filter, the `null` output) over the same million
//! records, one row per filter, as ratios against the cheapest `wasm` filter there is (a module
//! that returns its input). The reference runs first and last so that drift shows; the section
//! ends with the targets: tripline as shipped within 1.25x of that pass-through, and
//! cheaper than a Lua filter doing only the selection. With `BENCH_LONG=1` (`make bench` sets it)
//! a last run checks the third: memory stays flat, within 10%, over ten million records.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use tripline_host_test::artifacts::{dist, project_root};
use tripline_host_test::fluentbit::FILTER_FUNCTION;
use tripline_host_test::seeds::seeds_only;

use crate::process::{self, Usage};
use crate::detections_off;
use crate::records::{self, LONG_RECORDS, RECORDS};

/// The target for tripline as shipped, as a multiple of the pass-through's CPU time.
const SHIPPED_TARGET: f64 = 1.25;
/// A row past this multiple of the pass-through's CPU time is cut off and reported with its cost
/// per record so far, rather than holding the section for an hour; CPU time, not a fixed number of
/// seconds, because a busy machine inflates every row alike.
const CUT_OFF: u32 = 4;
/// The cut-off for the rows that run before the pass-through.
const FIRST_CUT_OFF: Duration = Duration::from_secs(600);
/// The memory target: resident memory over the last tenth of the long run at most this
/// multiple of what it was after the first tenth.
const FLAT_TARGET: f64 = 1.10;

/// What runs between the parser and the output.
#[derive(Clone)]
enum Filter {
    None,
    /// A module in Fluent Bit's `wasm` filter, with the `tripline.json` its directory holds.
    Wasm { module: PathBuf, function: &'static str, config: Option<String> },
    Lua,
}

/// How a row went.
enum Outcome {
    Ran(Usage),
    /// Past the CPU limit before every record went through: its figures are projected from the
    /// cost per record so far.
    CutOff(Usage),
    Skipped(String),
    Failed(anyhow::Error),
}

struct Row {
    name: &'static str,
    /// Its directory under `target/bench/fluent-bit/`: configuration, module state, log.
    key: &'static str,
    /// `Err` says why the row is skipped.
    filter: Result<Filter, String>,
}

pub fn section(fluent_bit: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let work = project_root().join("target").join("bench");
    let records = records::ensure(&work, RECORDS)?;
    let rows = rows(&work.join("fluent-bit"))?;
    println!("Real Fluent Bit ({}): {RECORDS} records, tail -> cloudtrail parser -> filter -> null", fluent_bit.display());
    let mut outcomes = Vec::new();
    for row in &rows {
        let reference = cpu_of(&rows[..outcomes.len()], &outcomes, "passthrough");
        let limit = reference.map_or(FIRST_CUT_OFF, |r| r * CUT_OFF);
        outcomes.push(measure_row(fluent_bit, &records, RECORDS, &work, row, limit));
    }
    let reference = ["passthrough", "passthrough-again"]
        .iter()
        .filter_map(|key| cpu_of(&rows, &outcomes, key))
        .min()
        .context("the pass-through reference did not run")?;
    print_table(&rows, &outcomes, reference);
    print_targets(&rows, &outcomes, reference);
    let long = long_run(fluent_bit, &work, &rows, reference);
    println!(
        "Each row ran once, CPU time of the whole process (user + system, every thread, start-up included) on a machine \
         shared with other work; the pass-through ran first and last, and the ratios use the lower of the two: read \
         their difference as the noise. Section took {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    anyhow::ensure!(!outcomes.iter().any(|o| matches!(o, Outcome::Failed(_))), "some Fluent Bit rows failed");
    long
}

/// The memory target: tripline as shipped over `LONG_RECORDS` records at the default caps,
/// resident memory sampled as the records go through. The AOT build when there is one: the
/// interpreter would take over an hour on a 2-core machine, and the state it holds is the same.
fn long_run(fluent_bit: &Path, work: &Path, rows: &[Row], reference: Duration) -> anyhow::Result<()> {
    if std::env::var("BENCH_LONG").ok().as_deref() != Some("1") {
        println!("memory over {LONG_RECORDS} records: skipped (BENCH_LONG=1 runs it; make bench sets it)");
        return Ok(());
    }
    let shipped = |key| rows.iter().find(|r| r.key == key).and_then(|r| r.filter.as_ref().ok());
    let (filter, build) = match shipped("tripline-aot") {
        Some(aot) => (aot, "AOT build"),
        None => (shipped("tripline").context("no tripline row")?, "interpreted .wasm (no AOT build: run make aot)"),
    };
    let records = records::ensure(work, LONG_RECORDS)?;
    let row = Row { name: "tripline as shipped, 10M records", key: "tripline-long", filter: Ok(filter.clone()) };
    let scale = (LONG_RECORDS / RECORDS) as u32;
    let usage = match measure_row(fluent_bit, &records, LONG_RECORDS, work, &row, reference * CUT_OFF * scale) {
        Outcome::Ran(usage) => usage,
        Outcome::CutOff(u) => anyhow::bail!("the memory run was cut off at {} records, {:.0} s CPU", u.delivered, u.cpu.as_secs_f64()),
        Outcome::Failed(e) => return Err(e.context("the memory run failed")),
        Outcome::Skipped(why) => anyhow::bail!("the memory run was skipped: {why}"),
    };
    // Resident memory once each tenth of the records had gone through (the first sample at or
    // past it); then like against like: the highest over the second tenth (the first after
    // start-up) against the highest over the last, so that a passing peak (a snapshot being
    // written) is compared with the peaks of its kind, not with a quiet moment.
    let at = |share: u64| usage.rss_samples.iter().find(|(n, _)| *n >= LONG_RECORDS * share / 10).map(|s| s.1);
    let peak = |tenth: u64| {
        let (from, to) = (LONG_RECORDS * (tenth - 1) / 10, LONG_RECORDS * tenth / 10);
        usage.rss_samples.iter().filter(|(n, _)| *n > from && *n <= to).map(|s| s.1).max()
    };
    let (second, last) = (peak(2).context("no memory sample in the second tenth")?, peak(10).context("no memory sample in the last tenth")?);
    let tenths: Vec<String> = (1..=10).map(|k| at(k).map_or("-".into(), |b| format!("{:.0}", mib(b)))).collect();
    let peaks: Vec<String> = (1..=10).map(|k| peak(k).map_or("-".into(), |b| format!("{:.0}", mib(b)))).collect();
    println!(
        "memory over {LONG_RECORDS} records, tripline as shipped ({build}, default caps): {:.1} s CPU, max RSS {:.1} MiB; \
         VmRSS MiB at each tenth: {}; highest within each tenth: {}",
        usage.cpu.as_secs_f64(),
        mib(usage.max_rss_bytes),
        tenths.join(" "),
        peaks.join(" ")
    );
    let ratio = last as f64 / second as f64;
    let verdict = if ratio <= FLAT_TARGET { "met" } else { "missed" };
    println!(
        "target: memory flat within 10% (highest VmRSS over the last tenth <= {FLAT_TARGET}x the highest over the second): \
         {verdict} ({:.1} MiB vs {:.1} MiB, {ratio:.3}x)",
        mib(last),
        mib(second)
    );
    Ok(())
}

/// Every row, in the order they run.
fn rows(dir: &Path) -> anyhow::Result<Vec<Row>> {
    let passthrough = passthrough_module(dir)?;
    let wasm = |module: PathBuf, config: Option<&str>| Filter::Wasm { module, function: FILTER_FUNCTION, config: config.map(str::to_string) };
    let bare = |module: &Path| Filter::Wasm { module: module.to_path_buf(), function: "passthrough", config: None };
    let shipped_config = std::fs::read_to_string(project_root().join("examples/fluent-bit/tripline.json"))?;
    // The example's configuration with only its two seeds on: what "as shipped" was when the
    // issue set its targets.
    let seeds_config = seeds_only(serde_json::from_str(&shipped_config)?).to_string();
    let aot = aot_modules(dir, &passthrough);
    Ok(vec![
        Row { name: "no filter", key: "none", filter: Ok(Filter::None) },
        Row { name: "pass-through module", key: "passthrough", filter: Ok(bare(&passthrough)) },
        Row { name: "tripline, detections off", key: "tripline-off", filter: Ok(wasm(dist("tripline-fluentbit.wasm"), Some(&detections_off()))) },
        Row { name: "tripline as shipped", key: "tripline", filter: Ok(wasm(dist("tripline-fluentbit.wasm"), Some(&shipped_config))) },
        Row { name: "tripline, the two seeds alone", key: "tripline-seeds", filter: Ok(wasm(dist("tripline-fluentbit.wasm"), Some(&seeds_config))) },
        Row { name: "tripline, wasm-opt build", key: "tripline-opt", filter: Ok(wasm(dist("tripline-fluentbit.opt.wasm"), Some(&shipped_config))) },
        Row { name: "Lua filter, same selection", key: "lua", filter: Ok(Filter::Lua) },
        Row { name: "AOT: pass-through module", key: "passthrough-aot", filter: aot.clone().map(|(p, _)| bare(&p)) },
        Row { name: "AOT: tripline as shipped", key: "tripline-aot", filter: aot.map(|(_, t)| wasm(t, Some(&shipped_config))) },
        Row { name: "pass-through module, again", key: "passthrough-again", filter: Ok(bare(&passthrough)) },
    ])
}

/// The committed pass-through WAT, assembled into `dir`.
fn passthrough_module(dir: &Path) -> anyhow::Result<PathBuf> {
    let wat = project_root().join("bench/fluent-bit/passthrough.wat");
    let wasm = dir.join("passthrough.wasm");
    std::fs::create_dir_all(dir)?;
    std::fs::write(&wasm, wat::parse_file(&wat)?)?;
    Ok(wasm)
}

/// The AOT pass-through and tripline modules: tripline's from `make aot`, the pass-through compiled
/// here by the same `wamrc` (env `WAMRC`, which `scripts/bench.sh` sets when the former exists).
fn aot_modules(dir: &Path, passthrough: &Path) -> Result<(PathBuf, PathBuf), String> {
    let skipped = || "skipped (run make aot)".to_string();
    let tripline = project_root().join("dist/tripline-fluentbit.aot");
    let wamrc = std::env::var_os("WAMRC").filter(|_| tripline.exists()).ok_or_else(skipped)?;
    let aot = dir.join("passthrough.aot");
    let status = Command::new(&wamrc).arg("--disable-simd").arg("-o").arg(&aot).arg(passthrough).stdout(Stdio::null()).status();
    match status {
        Ok(s) if s.success() => Ok((aot, tripline)),
        other => Err(format!("failed: {wamrc:?} could not compile the pass-through ({other:?})")),
    }
}

/// One Fluent Bit run for `row`.
fn measure_row(fluent_bit: &Path, records: &Path, count: u64, work: &Path, row: &Row, cpu_limit: Duration) -> Outcome {
    let filter = match &row.filter {
        Ok(filter) => filter,
        Err(why) => return Outcome::Skipped(why.clone()),
    };
    eprintln!("fluent-bit: {}", row.name);
    let dir = work.join("fluent-bit").join(row.key);
    let run = || -> anyhow::Result<Usage> {
        let port = tripline_host_test::real_fluentbit::free_port()?;
        let config = prepare(&dir, records, port, filter)?;
        let log = File::create(dir.join("fluent-bit.log"))?;
        let mut command = Command::new(fluent_bit);
        command
            .arg("-c")
            .arg(&config)
            // For bench/fluent-bit/selection.lua: the list stays in one place.
            .env("TRIPLINE_FIREWALL_COMMANDS", tripline_host_test::seeds::security_group_calls().join(","))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        process::measure(&mut command, port, count, cpu_limit)
    };
    match run() {
        Ok(usage) if usage.delivered < count => {
            eprintln!("  cut off: {} of {count} records in {:.1} s CPU", usage.delivered, usage.cpu.as_secs_f64());
            Outcome::CutOff(usage)
        }
        Ok(usage) => {
            eprintln!("  {:.1} s CPU, {:.0} MiB", usage.cpu.as_secs_f64(), mib(usage.max_rss_bytes));
            Outcome::Ran(usage)
        }
        Err(e) => Outcome::Failed(e.context(format!("see {}", dir.join("fluent-bit.log").display()))),
    }
}

/// A fresh `dir` (no state from an earlier run) holding the row's configuration; returns the
/// Fluent Bit configuration file.
fn prepare(dir: &Path, records: &Path, port: u16, filter: &Filter) -> anyhow::Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    if let Filter::Wasm { config: Some(config), .. } = filter {
        std::fs::write(dir.join("tripline.json"), config)?;
    }
    let parsers = project_root().join("examples/fluent-bit/parsers.conf");
    let config = format!(
        "[SERVICE]
    Flush        1
    Grace        30
    Log_Level    warn
    Parsers_File {parsers}
    HTTP_Server  On
    HTTP_Listen  127.0.0.1
    HTTP_Port    {port}

[INPUT]
    Name           tail
    Path           {records}
    Tag            aws.cloudtrail
    Parser         cloudtrail
    Read_From_Head On
{filter}
[OUTPUT]
    Name  null
    Match *
",
        parsers = parsers.display(),
        records = records.display(),
        filter = filter_section(filter, dir),
    );
    let path = dir.join("fluent-bit.conf");
    std::fs::write(&path, config)?;
    Ok(path)
}

fn filter_section(filter: &Filter, dir: &Path) -> String {
    match filter {
        Filter::None => String::new(),
        Filter::Wasm { module, function, .. } => format!(
            "
[FILTER]
    Name             wasm
    Match            aws.cloudtrail
    Wasm_Path        {}
    Function_Name    {function}
    Event_Format     json
    Accessible_Paths {}
    Wasm_Heap_Size   64M
    Wasm_Stack_Size  256K
",
            module.display(),
            dir.display()
        ),
        Filter::Lua => format!(
            "
[FILTER]
    Name   lua
    Match  aws.cloudtrail
    Script {}
    Call   select_record
",
            project_root().join("bench/fluent-bit/selection.lua").display()
        ),
    }
}

/// The row's CPU time over `RECORDS` records, projected when it was cut off.
fn cpu_of(rows: &[Row], outcomes: &[Outcome], key: &str) -> Option<Duration> {
    match &outcomes[rows.iter().position(|r| r.key == key)?] {
        Outcome::Ran(usage) => Some(usage.cpu),
        Outcome::CutOff(usage) => Some(projected(usage)),
        _ => None,
    }
}

/// A cut-off run's CPU time at its cost per record so far, over `RECORDS` records.
fn projected(usage: &Usage) -> Duration {
    usage.cpu.mul_f64(RECORDS as f64 / usage.delivered.max(1) as f64)
}

fn is_cut_off(rows: &[Row], outcomes: &[Outcome], key: &str) -> bool {
    rows.iter().position(|r| r.key == key).is_some_and(|i| matches!(outcomes[i], Outcome::CutOff(_)))
}

fn print_table(rows: &[Row], outcomes: &[Outcome], reference: Duration) {
    println!("{:<36} {:>8} {:>16} {:>12}", "Fluent Bit, whole process", "CPU s", "vs pass-through", "max RSS MiB");
    for (row, outcome) in rows.iter().zip(outcomes) {
        match outcome {
            Outcome::Ran(u) => println!(
                "{:<36} {:>8.1} {:>15.2}x {:>12.1}",
                row.name,
                u.cpu.as_secs_f64(),
                u.cpu.as_secs_f64() / reference.as_secs_f64(),
                mib(u.max_rss_bytes)
            ),
            Outcome::CutOff(u) => println!(
                "{:<36} {:>7.0}* {:>14.1}x* {:>12.1}  * cut off at {CUT_OFF}x the pass-through: {} records in {:.1} s CPU \
                 ({:.0} us a record), projected to {RECORDS}",
                row.name,
                projected(u).as_secs_f64(),
                projected(u).as_secs_f64() / reference.as_secs_f64(),
                mib(u.max_rss_bytes),
                u.delivered,
                u.cpu.as_secs_f64(),
                u.cpu.as_secs_f64() * 1e6 / u.delivered.max(1) as f64
            ),
            Outcome::Skipped(why) => println!("{:<36} {why}", row.name),
            Outcome::Failed(e) => println!("{:<36} FAILED: {e:#}", row.name),
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_targets(rows: &[Row], outcomes: &[Outcome], reference: Duration) {
    let (Some(shipped), Some(lua)) = (cpu_of(rows, outcomes, "tripline"), cpu_of(rows, outcomes, "lua")) else {
        println!("targets: not judged, a row they need failed");
        return;
    };
    let note = if is_cut_off(rows, outcomes, "tripline") { ", projected: the run was cut off" } else { "" };
    let ratio = shipped.as_secs_f64() / reference.as_secs_f64();
    let verdict = if ratio <= SHIPPED_TARGET { "met".to_string() } else { format!("missed by {:.2}x", ratio - SHIPPED_TARGET) };
    println!("target: tripline as shipped <= {SHIPPED_TARGET}x pass-through: {verdict} ({ratio:.2}x{note})");
    let verdict = if shipped < lua { "met" } else { "missed" };
    println!(
        "target: tripline < Lua: {verdict} ({:.1} s vs {:.1} s, {:.2}x{note})",
        shipped.as_secs_f64(),
        lua.as_secs_f64(),
        shipped.as_secs_f64() / lua.as_secs_f64()
    );
}
