//! Scale-out (docs/scale-out.md): a month of CloudTrail for twenty accounts split by
//! `recipientAccountId` over eight instances, each its own engine as shipped; each instance's
//! records per second against one instance taking them all, measured in the same run. The target:
//! every instance within 10% of the single instance's rate (linear scaling: eight instances do
//! eight times the work). Natively, one instance after another, so they do not share the cores.

use std::time::Instant;

use serde_json::Value;
use tripline::Engine;
use tripline_generate::{generate, Options};

const INSTANCES: u64 = 8;
/// Each set's time is the best of this many rounds.
const ROUNDS: usize = 5;

pub fn scale_out() -> anyhow::Result<()> {
    let mut data = Vec::new();
    generate(&Options { organizations: 10, cross_account: true, ..Options::default() }, &mut data)?;
    let all = tripline::input::split_records(&data);
    // Each instance's records in a buffer of its own, as a shipper's are: records picked out of
    // the whole stream in place would be read from all over it, and cost each instance cache
    // misses the single instance, reading them in order, does not have.
    let mut buffers = vec![Vec::new(); INSTANCES as usize];
    for record in &all {
        let value: Value = serde_json::from_slice(record)?;
        let key = value["recipientAccountId"].as_str().unwrap_or_default();
        let buffer = &mut buffers[(tripline::digest::fnv1a64(key.as_bytes()) % INSTANCES) as usize];
        buffer.extend_from_slice(record);
        buffer.push(b'\n');
    }
    let parts: Vec<Vec<&[u8]>> = buffers.iter().map(|b| tripline::input::split_records(b)).collect();
    // Each set is timed whole: a timer around every record (as this bench once did) costs as
    // much as a quiet record and charges each window close to whichever record happened to
    // cross the hour, which made the smaller instances look slower than they are. Rounds
    // interleave the runs, each best kept: a drift of the machine's speed over the run (other
    // work, frequency) then shifts every run alike instead of the later ones.
    let mut single_ns = f64::MAX;
    let mut instance_ns = vec![f64::MAX; parts.len()];
    for _ in 0..ROUNDS {
        single_ns = single_ns.min(timed_run(&all));
        for (part, best) in parts.iter().zip(&mut instance_ns).filter(|(part, _)| !part.is_empty()) {
            *best = best.min(timed_run(part));
        }
    }
    let single = all.len() as f64 * 1e9 / single_ns;
    println!("scale-out: {} records of 20 accounts split by recipientAccountId over {INSTANCES} instances (engine as shipped)", all.len());
    println!("{:<48} {:>12.0} records/s", "one instance, all records", single);
    // The partitions hold different accounts, whose records differ in what they cost (how many a
    // rule selects, how many raise alerts): part of an instance's distance from the single
    // instance is its mix of records, not the split.
    let mut worst = f64::MAX;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            // Hash partitioning of a few keys leaves some partitions empty, and others doubled.
            println!("{:<48} no account hashes here", format!("instance {i} of {INSTANCES}"));
            continue;
        }
        let rate = part.len() as f64 * 1e9 / instance_ns[i];
        worst = worst.min(rate / single);
        println!("{:<48} {rate:>12.0} records/s  {:.2}x", format!("instance {i} of {INSTANCES}, {} records", part.len()), rate / single);
    }
    let verdict = if worst >= 0.9 { "met" } else { "missed" };
    println!("slowest instance's rate against the single instance's: {worst:.2}x (target: within 10%, {verdict})");
    // Whether splitting itself added work.
    let together: f64 = parts.iter().zip(&instance_ns).filter(|(part, _)| !part.is_empty()).map(|(_, ns)| ns).sum();
    println!("the instances' time together against the single instance's: {:.3}x", together / single_ns);
    Ok(())
}

/// Runs `records` through a fresh engine as shipped; the nanoseconds it took.
fn timed_run(records: &[&[u8]]) -> f64 {
    let mut engine = Engine::from_json(b"{}");
    let start = Instant::now();
    for record in records {
        engine.process(record, None);
    }
    start.elapsed().as_nanos() as f64
}
