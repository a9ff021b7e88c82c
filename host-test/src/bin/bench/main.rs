//! `make bench`: tripline's hot path against peers measured in the same run, as ratios.
//!
//! Peers do the same job (decide whether a CloudTrail record concerns either detection and read
//! its event time) the way most filters do it: a full serde_json DOM per record. Native runs
//! show the algorithmic difference; the Fluent Bit module runs in the host harness against the
//! same module with every detection disabled (the host's own per-call cost). Timings are best of
//! several rounds; allocation counts are exact. Then, given a `fluent-bit` binary, the real
//! Fluent Bit section (`fluentbit.rs`) prices each filter in the process users actually run.
//! `BENCH_ONLY=fluent-bit` runs that section alone, `BENCH_ONLY=scale-out` the scale-out one,
//! `BENCH_ONLY=pack` the pack against the seeds and where its time goes.

mod fluentbit;
mod process;
mod records;
mod scale_out;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::path::Path;
use std::time::Instant;

use serde_json::Value;
use tripline::input::split_records;
use tripline::Engine;
use tripline_host_test::seeds::{every_detection, security_group_calls, seeds_only};

struct CountingAlloc;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    // The default realloc is alloc + copy + dealloc: it would charge the peers a copy for every
    // buffer growth that the system allocator does in place. One growth is one allocation event.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// A `tripline.json` with every detection off: what remains is the module's and its host's cost
/// of a call.
fn detections_off() -> String {
    every_detection(false).to_string()
}

/// The DOM peer: parse everything, then look at two fields.
fn dom_peer(record: &[u8], calls: &[String]) -> (bool, Option<String>) {
    match serde_json::from_slice::<Value>(record) {
        Ok(v) => {
            let wanted = v["eventName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("JobCreated") || calls.iter().any(|c| c == n));
            (wanted, v["eventTime"].as_str().map(str::to_string))
        }
        Err(_) => (false, None),
    }
}

/// Best wall time of `rounds` runs, each with a fresh `setup()`, in nanoseconds per record, and
/// allocations per record (setup excluded).
fn measure<F: FnMut(&[u8])>(records: &[&[u8]], rounds: usize, mut setup: impl FnMut() -> F) -> (f64, f64) {
    let mut best = f64::MAX;
    let mut allocations = 0;
    for _ in 0..rounds {
        let mut f = setup();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let start = Instant::now();
        for r in records {
            f(r);
        }
        best = best.min(start.elapsed().as_nanos() as f64);
        allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    }
    (best / records.len() as f64, allocations as f64 / records.len() as f64)
}

fn main() -> anyhow::Result<()> {
    match std::env::var("BENCH_ONLY").ok().as_deref() {
        Some("fluent-bit") => return real_fluent_bit(),
        Some("scale-out") => return scale_out::scale_out(),
        _ => {}
    }
    let path = std::env::args().nth(1).unwrap_or_else(|| "examples/data/generated/cloudtrail.ndjson".into());
    let data = std::fs::read(&path).map_err(|e| anyhow::anyhow!("{path}: {e} (run `make example-data`)"))?;
    let all = split_records(&data);
    if std::env::var("BENCH_ONLY").ok().as_deref() == Some("pack") {
        return pack_against_seeds(&all);
    }
    let calls = security_group_calls();
    let quiet: Vec<&[u8]> = all.iter().copied().filter(|r| !dom_peer(r, &calls).0).collect();
    let bytes: usize = all.iter().map(|r| r.len()).sum();
    println!("tripline bench: {} records ({} MB) from {path}; {} match no rule", all.len(), bytes / 1_000_000, quiet.len());
    println!();
    println!("{:<48} {:>12} {:>14}", "native, per record", "ns", "allocations");

    let rounds = 5;
    let mut rows = Vec::new();
    for (name, set) in [("all records", &all), ("records that match nothing", &quiet)] {
        let (t_ns, t_alloc) = engine_cost(set, &serde_json::json!({}));
        let (d_ns, d_alloc) = measure(set, rounds, || {
            |r: &[u8]| {
                std::hint::black_box(dom_peer(r, &calls));
            }
        });
        println!("{:<48} {:>12.0} {:>14.2}", format!("tripline engine, {name}"), t_ns, t_alloc);
        println!("{:<48} {:>12.0} {:>14.2}", format!("serde_json DOM peer, {name}"), d_ns, d_alloc);
        rows.push((format!("serde_json DOM peer, {name}"), d_ns / t_ns));
        #[cfg(feature = "vrl-peer")]
        {
            let (v_ns, v_alloc) = measure(set, rounds, vrl_peer::matcher);
            println!("{:<48} {:>12.0} {:>14.2}", format!("VRL remap peer, {name}"), v_ns, v_alloc);
            rows.push((format!("VRL remap peer, {name}"), v_ns / t_ns));
        }
    }
    println!();
    for (name, ratio) in rows {
        println!("tripline's speed-up over the {name}: {ratio:.1}x");
    }
    println!();
    pack_against_seeds(&all)?;
    println!();
    scale_out::scale_out()?;
    println!();
    fluentbit_module(&all)?;
    println!();
    real_fluent_bit()
}

/// The pack (its default set as shipped, the same without the Sigma rules, and every rule)
/// against the two seeds alone, natively, on the same records: on records no rule selects (the
/// index's promise: the pack costs what two rules cost) and on all of them.
fn pack_against_seeds(all: &[&[u8]]) -> anyhow::Result<()> {
    let (seeds, pack) = (seeds_only(serde_json::json!({})), every_detection(true));
    // The ESCU pack the detections-as-data issue measured against the seeds, before the Sigma
    // rules joined it.
    let sigma_off: serde_json::Map<String, Value> = tripline::catalog::builtin_rules()
        .into_iter()
        .filter(|rule| rule.metadata.sigma.is_some())
        .map(|rule| (rule.metadata.key, serde_json::json!({"enabled": false})))
        .collect();
    let escu = serde_json::json!({ "detections": sigma_off });
    // The example is mostly Describe/List/Get calls, which ESCU's excessive-scanning rule
    // selects: the records no rule selects are its records as KMS `Decrypt` calls (the bulk of
    // real CloudTrail), every field but the name as generated, minus any a shipped rule still
    // takes (the whole pack's Hunting searches take most: they list every assumed-role call).
    let shipped = serde_json::json!({});
    let mut probe = Engine::from_json(shipped.to_string().as_bytes());
    let renamed: Vec<Vec<u8>> = all
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(r).ok())
        .map(|mut v| {
            v["eventName"] = Value::from("Decrypt");
            v["eventSource"] = Value::from("kms.amazonaws.com");
            v.to_string().into_bytes()
        })
        .collect();
    let unselected: Vec<&[u8]> = renamed
        .iter()
        .map(Vec::as_slice)
        .filter(|r| {
            let before = probe.counters().matched;
            probe.process(r, None);
            probe.counters().matched == before
        })
        .collect();
    let rules = tripline::catalog::builtin_rules().len();
    println!("{:<48} {:>12} {:>14}", format!("whole pack ({rules} detections) vs the two seeds"), "ns", "allocations");
    let mut shipped_ns = 0.0;
    for (name, set) in [("records no rule selects", &unselected), ("all records", &all.to_vec())] {
        let mut costs = Vec::new();
        for (label, config) in [("two seeds", &seeds), ("pack as shipped", &shipped), ("whole pack", &pack), ("ESCU pack as shipped", &escu)] {
            let (ns, allocations) = engine_cost(set, config);
            println!("{:<48} {ns:>12.0} {allocations:>14.2}", format!("{label}, {name} ({})", set.len()));
            costs.push(ns);
        }
        println!("pack as shipped over the two seeds, {name}: {:.2}x", costs[1] / costs[0]);
        println!("whole pack over the two seeds, {name}: {:.2}x", costs[2] / costs[0]);
        println!("ESCU pack as shipped (no Sigma rule) over the two seeds, {name}: {:.2}x", costs[3] / costs[0]);
        shipped_ns = costs[1];
    }
    println!();
    pack_cost_by_rule(all, shipped_ns);
    Ok(())
}

/// The engine under `config` over `records`: ns and allocations a record, best of five rounds.
fn engine_cost(records: &[&[u8]], config: &Value) -> (f64, f64) {
    let config = config.to_string();
    measure(records, 5, || {
        let mut engine = Engine::from_json(config.as_bytes());
        move |r: &[u8]| {
            engine.process(r, None);
        }
    })
}

/// Where the pack's time goes over the records (whose cost as shipped is `shipped`, ns a
/// record): each rule it runs by default, run alone, less the cheapest of them alone (what
/// reading a record and the index cost any rule), for the six that cost most. The parts need
/// not add up to the whole: rules that read the same fields of a record share the reads.
fn pack_cost_by_rule(records: &[&[u8]], shipped: f64) {
    let mut alone: Vec<(String, f64)> = tripline::catalog::catalog(tripline::catalog::builtin_rules())
        .into_iter()
        .filter(|entry| entry.enabled_by_default)
        .map(|entry| {
            let mut config = every_detection(false);
            config["detections"][&entry.key]["enabled"] = true.into();
            (entry.key, engine_cost(records, &config).0)
        })
        .collect();
    let base = alone.iter().map(|(_, ns)| *ns).fold(f64::MAX, f64::min);
    alone.sort_by(|a, b| b.1.total_cmp(&a.1));
    let pack = shipped - base;
    println!(
        "where the pack's time goes, all records: {} rules by default, {shipped:.0} ns a record; each alone, less the cheapest alone ({base:.0} ns):",
        alone.len()
    );
    for (key, ns) in alone.iter().take(6) {
        println!("  {key:<64} {:>7.0} ns {:>5.1}%", ns - base, 100.0 * (ns - base) / pack);
    }
    // Summing the others' parts would sum their timing noise, ns each: what the six leave.
    let rest = pack - alone.iter().take(6).map(|(_, ns)| ns - base).sum::<f64>();
    println!("  {:<64} {rest:>7.0} ns {:>5.1}%", format!("the pack less these six (the other {})", alone.len().saturating_sub(6)), 100.0 * rest / pack);
}

/// The real Fluent Bit section, when `FLUENT_BIT` names the binary (`scripts/bench.sh` sets it).
fn real_fluent_bit() -> anyhow::Result<()> {
    match std::env::var_os("FLUENT_BIT") {
        Some(binary) => fluentbit::section(Path::new(&binary)),
        None => {
            println!("Real Fluent Bit section skipped: set FLUENT_BIT to a fluent-bit binary (make bench does).");
            Ok(())
        }
    }
}

/// Vector's VRL doing the selection as a `remap` would: parse the record, test `eventName`.
#[cfg(feature = "vrl-peer")]
mod vrl_peer {
    use std::collections::BTreeMap;

    use tripline_host_test::seeds::security_group_calls;
    use vrl::compiler::{compile, state::RuntimeState, Context, Program, TargetValue, TimeZone};
    use vrl::value::{Secrets, Value};

    /// The peer's program, with the security-group calls taken from tripline's own list.
    fn source() -> String {
        let commands: Vec<String> = security_group_calls().iter().map(|c| format!("{c:?}")).collect();
        format!(
            r#"
        event = parse_json!(string!(.message))
        name = string(event.eventName) ?? ""
        .matched = downcase(name) == "jobcreated" || includes([{}], name)
        .time = event.eventTime
    "#,
            commands.join(", ")
        )
    }

    pub fn matcher() -> impl FnMut(&[u8]) {
        let program: Program = compile(&source(), &vrl::stdlib::all()).expect("the peer's VRL compiles").program;
        let timezone = TimeZone::default();
        move |record: &[u8]| {
            let message = Value::from(String::from_utf8_lossy(record).into_owned());
            let mut target = TargetValue {
                value: Value::from(BTreeMap::from([("message".into(), message)])),
                metadata: Value::Object(BTreeMap::new()),
                secrets: Secrets::default(),
            };
            let mut state = RuntimeState::default();
            let mut context = Context::new(&mut target, &mut state, &timezone);
            let _ = std::hint::black_box(program.resolve(&mut context));
        }
    }
}

/// The Fluent Bit module in the contract harness (wasmtime, not Fluent Bit's WAMR interpreter):
/// as shipped, as shipped without saving state, with the two seeds alone, with the whole pack,
/// and with every detection off. The time inside the filter function only: the harness checks
/// every reply (a rewritten record is re-encoded and parsed again). Saving state writes each
/// record that changed it to the journal, which under wasmtime's WASI files costs far more than
/// under Fluent Bit's (the second row shows how much).
fn fluentbit_module(records: &[&[u8]]) -> anyhow::Result<()> {
    use tripline_host_test::fluentbit::{fluentbit_json, FilterOptions, FluentBitFilter, FILTER_FUNCTION};

    let encoded: Vec<(u32, Vec<u8>)> = records
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(r).ok())
        .map(|v| {
            let t = v["eventTime"].as_str().and_then(tripline::time::parse_event_time).unwrap_or(0);
            (t as u32, fluentbit_json(&v))
        })
        .collect();
    let wasm = tripline_host_test::artifacts::dist("tripline-fluentbit.wasm");
    let mut results = Vec::new();
    let (seeds, pack, off) = (seeds_only(serde_json::json!({})).to_string(), every_detection(true).to_string(), detections_off());
    for (name, config) in [
        ("tripline_filter, as shipped", "{}"),
        ("same module as shipped, state not saved", r#"{"snapshot":{"file":""}}"#),
        ("same module, the two seeds alone", seeds.as_str()),
        ("same module, the whole pack", pack.as_str()),
        ("same module, detections off", off.as_str()),
    ] {
        let mut best = f64::MAX;
        let mut memory = 0;
        for round in 0..3 {
            // A fresh directory each round: a round that restored the last one's state would
            // find the month's windows open and its first-seen sets full, and cost less.
            let dir = std::env::temp_dir().join(format!("tripline-bench-{}-{}-{round}", std::process::id(), results.len()));
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("tripline.json"), config)?;
            let mut filter = FluentBitFilter::start(FilterOptions::new(&wasm, FILTER_FUNCTION).accessible_path(&dir).capture_output())?;
            for (t, body) in &encoded {
                filter.call_raw(b"aws.cloudtrail", *t, 0, body)?;
            }
            best = best.min(filter.guest_time().as_nanos() as f64 / encoded.len() as f64);
            memory = filter.memory_size();
            drop(filter);
            std::fs::remove_dir_all(&dir)?;
        }
        results.push((name, best, memory));
    }
    println!("{:<48} {:>12} {:>14}", "Fluent Bit module in wasmtime, per record", "ns", "linear memory");
    for (name, ns, memory) in &results {
        println!("{name:<48} {ns:>12.0} {:>11} KiB", memory / 1024);
    }
    println!("as shipped over detections off: {:.2}x", results[0].1 / results[4].1);
    println!("as shipped, state not saved, over detections off: {:.2}x", results[1].1 / results[4].1);
    println!("whole pack over the two seeds in the module: {:.2}x", results[3].1 / results[2].1);
    Ok(())
}
