//! Scale-out (docs/scale-out.md): a month of CloudTrail for twenty accounts split by
//! `recipientAccountId` over eight instances, each its own engine as shipped; each instance's
//! records per second against one instance taking them all, measured in the same run. The target:
//! every instance within 10% of the single instance's rate (linear scaling: eight instances do
//! eight times the work). The partitions hold different accounts, whose records cost different
//! amounts, so the rate that decides is the single instance's on the same records: its time is
//! also taken record by record and summed per partition. Natively, one instance after another,
//! so they do not share the cores.

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
    let mut parts: Vec<Vec<&[u8]>> = vec![Vec::new(); INSTANCES as usize];
    let mut partition_of = Vec::with_capacity(all.len());
    for record in &all {
        let value: Value = serde_json::from_slice(record)?;
        let key = value["recipientAccountId"].as_str().unwrap_or_default();
        let partition = (tripline::digest::fnv1a64(key.as_bytes()) % INSTANCES) as usize;
        parts[partition].push(record);
        partition_of.push(partition);
    }
    // Every record is timed on its own, in the single instance (summed per partition) and in its
    // instance. Rounds interleave the runs, each best kept: a drift of the machine's speed over
    // the run (other work, frequency) then shifts every run alike instead of the later ones.
    let mut single_total = f64::MAX;
    let mut single_spent = vec![f64::MAX; parts.len()];
    let mut instance_spent = vec![f64::MAX; parts.len()];
    for _ in 0..ROUNDS {
        let mut spent = vec![0.0; parts.len()];
        timed_records(&all, |i, ns| spent[partition_of[i]] += ns);
        single_total = single_total.min(spent.iter().sum());
        single_spent.iter_mut().zip(&spent).for_each(|(best, ns)| *best = best.min(*ns));
        for (part, best) in parts.iter().zip(&mut instance_spent).filter(|(part, _)| !part.is_empty()) {
            let mut total = 0.0;
            timed_records(part, |_, ns| total += ns);
            *best = best.min(total);
        }
    }
    let single = all.len() as f64 * 1e9 / single_total;
    println!("scale-out: {} records of 20 accounts split by recipientAccountId over {INSTANCES} instances (engine as shipped)", all.len());
    println!("{:<48} {:>12.0} records/s", "one instance, all records", single);
    // The partitions hold different accounts, whose records differ in what they cost (how many a
    // rule selects, how many raise alerts): against the single instance's rate over all records
    // an instance is also compared with another mix of records; on its own records, only with
    // itself unsplit.
    let (mut worst_overall, mut worst) = (f64::MAX, f64::MAX);
    for (i, part) in parts.iter().enumerate() {
        let name = format!("instance {i} of {INSTANCES}, {} records", part.len());
        if part.is_empty() {
            // Hash partitioning of a few keys leaves some partitions empty, and others doubled.
            println!("{:<48} no account hashes here", format!("instance {i} of {INSTANCES}"));
            continue;
        }
        let rate = part.len() as f64 * 1e9 / instance_spent[i];
        let same_records = single_spent[i] / instance_spent[i];
        worst_overall = worst_overall.min(rate / single);
        worst = worst.min(same_records);
        println!("{name:<48} {rate:>12.0} records/s  {:.2}x overall, {same_records:.2}x on the same records", rate / single);
    }
    println!("slowest instance's rate against the single instance's over all records: {worst_overall:.2}x");
    let verdict = if worst >= 0.9 { "met" } else { "missed" };
    println!("slowest instance's rate against the single instance's on the same records: {worst:.2}x (target: within 10%, {verdict})");
    // Whether splitting itself added work.
    let together: f64 = parts.iter().zip(&instance_spent).filter(|(part, _)| !part.is_empty()).map(|(_, ns)| ns).sum();
    println!("the instances' time together against the single instance's: {:.3}x", together / single_total);
    Ok(())
}

/// Runs `records` through a fresh engine as shipped, giving `spent` each record's index and
/// nanoseconds.
fn timed_records(records: &[&[u8]], mut spent: impl FnMut(usize, f64)) {
    let mut engine = Engine::from_json(b"{}");
    for (i, record) in records.iter().enumerate() {
        let start = Instant::now();
        engine.process(record, None);
        spent(i, start.elapsed().as_nanos() as f64);
    }
}
