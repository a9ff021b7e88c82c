//! `tripline state export` and `tripline state import`: when a partition (a Kafka partition, an
//! S3 prefix) moves to another instance, the open groups of its keys move with it, through the
//! snapshot format (`tripline::rebalance`; docs/scale-out.md). Both instances are stopped while
//! their state files are rewritten: the module reads them at its next record.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Subcommand;
use tripline::rule::Rule;
use tripline_compiler::partition::{key_column, DEFAULT_KEY};

use crate::host::Place;
use crate::OK;

/// Move a partition's state between instances (both stopped): export, then import.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  tripline state export --partition 5 --partitions 12 --out p5.snap /etc/tripline
  tripline state export --key 123456789012 --key 210987654321 --out moved.snap /etc/tripline
  tripline state import /srv/other-instance/tripline p5.snap")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Export(ExportArgs),
    Import(ImportArgs),
}

/// Take the open groups of some keys out of a stopped instance's state.
///
/// Folds the instance's journal into its snapshot, writes the open groups of the keys picked to
/// --out, and rewrites the instance's snapshot without them. Keys are picked by value (--key) or
/// by partition (--partition P of --partitions N, as librdkafka's default partitioner places a
/// keyed message: CRC-32 of the key modulo N). Only rules whose groups hold the key move; the
/// rest stay and are listed (docs/scale-out.md says why that is exact).
#[derive(clap::Args)]
struct ExportArgs {
    /// The instance's configuration directory (its tripline.json, snapshot and journal).
    #[arg(value_name = "DIR")]
    config: PathBuf,
    /// The field the records are partitioned by.
    #[arg(long, value_name = "FIELD", default_value = DEFAULT_KEY)]
    partition_key: String,
    /// A key value whose state moves (repeatable).
    #[arg(long = "key", value_name = "VALUE", required_unless_present = "partition")]
    keys: Vec<String>,
    /// A partition whose keys' state moves (repeatable), with --partitions.
    #[arg(long, value_name = "P", requires = "partitions")]
    partition: Vec<u32>,
    /// The topic's number of partitions.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    partitions: Option<u32>,
    /// Where to write the moved state (a snapshot).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Take over state exported from another instance into a stopped instance.
#[derive(clap::Args)]
struct ImportArgs {
    /// The instance's configuration directory (its tripline.json, snapshot and journal).
    #[arg(value_name = "DIR")]
    config: PathBuf,
    /// What `tripline state export` wrote.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn run(a: Args) -> Result<u8> {
    match a.command {
        Command::Export(a) => export(a),
        Command::Import(a) => import(a),
    }
}

/// An instance's state files, as the Fluent Bit module keeps them.
struct Instance {
    place: Place,
    snapshot: PathBuf,
    journal: PathBuf,
    rules: Vec<Rule>,
}

impl Instance {
    fn open(dir: &Path) -> Result<Instance> {
        let place = Place::locate(dir)?;
        let (engine, host) = place.engine(&place.read()?);
        if let Some(problem) = place.config_problem(&engine) {
            bail!("{problem}");
        }
        let file = &host.snapshot.file;
        if file.is_empty() {
            bail!("{}: `snapshot.file` is \"\", so this instance keeps no state to move", place.file.display());
        }
        let snapshot = place.dir.join(file);
        let journal = snapshot.with_extension("journal");
        let mut rules = tripline::catalog::builtin_rules();
        for name in &host.rules {
            let bytes = std::fs::read(place.dir.join(name)).with_context(|| format!("{}: cannot read", place.dir.join(name).display()))?;
            rules.extend(tripline::rule::parse_rule_file(name, &bytes).map_err(|e| anyhow!(e))?);
        }
        Ok(Instance { place, snapshot, journal, rules })
    }

    /// The whole state, the journal folded in, as the module would restore it (`None`: none yet).
    fn folded(&self) -> Result<Option<Vec<u8>>> {
        let snapshot = read_if_there(&self.snapshot)?;
        let journal = read_if_there(&self.journal)?;
        if snapshot.is_none() && journal.is_none() {
            return Ok(None);
        }
        let (mut engine, _) = self.place.engine(&self.place.read()?);
        if let Some(bytes) = &snapshot {
            engine.restore(bytes).map_err(|e| anyhow!("{}: {e}", self.snapshot.display()))?;
        }
        if let Some(bytes) = &journal {
            if tripline::journal::replay(&mut engine, bytes).damaged {
                eprintln!("tripline: warning: {} ends in a damaged entry; the module would lose it too", self.journal.display());
            }
        }
        Ok(Some(engine.snapshot().map_err(|e| anyhow!(e))?))
    }

    /// Writes the instance's new state, then drops the journal it holds.
    fn save(&self, state: &[u8]) -> Result<()> {
        crate::write_whole(&self.snapshot, state)?;
        match std::fs::remove_file(&self.journal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                // Harmless: its entries are older than the snapshot, which the module skips.
                eprintln!("tripline: warning: {}: cannot remove ({e})", self.journal.display());
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn read_if_there(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("{}: cannot read: {e}; check its permissions", path.display())),
    }
}

/// librdkafka's `consistent` partitioner (the default, `consistent_random`, for a keyed message).
fn partition_of(key: &str, partitions: u32) -> u32 {
    crc32fast::hash(key.as_bytes()) % partitions
}

fn export(a: ExportArgs) -> Result<u8> {
    let instance = Instance::open(&a.config)?;
    let Some(state) = instance.folded()? else {
        bail!("{}: no state here yet (no {} nor journal); nothing to export", instance.place.dir.display(), instance.snapshot.display());
    };
    let columns: Vec<(String, usize)> =
        instance.rules.iter().filter_map(|r| Some((r.metadata.key.clone(), key_column(r, &a.partition_key)?))).collect();
    let moves = |value: &str| {
        a.keys.iter().any(|k| k == value) || a.partitions.is_some_and(|n| a.partition.contains(&partition_of(value, n)))
    };
    let split = tripline::rebalance::split(&state, |detection| columns.iter().find(|(k, _)| k == detection).map(|(_, c)| *c), moves)
        .map_err(|e| anyhow!("{}: {e}", instance.snapshot.display()))?;
    crate::write_whole(&a.out, &split.moved)?;
    instance.save(&split.remaining)?;
    let moved: usize = split.moved_groups.iter().map(|(_, n)| n).sum();
    println!("moved {moved} open groups to {}", a.out.display());
    for (detection, n) in &split.moved_groups {
        println!("  {detection}: {n}");
    }
    for (detection, n) in &split.left_groups {
        println!("  stays: {detection}: {n} open groups (its groups do not hold `{}`)", a.partition_key);
    }
    Ok(OK)
}

fn import(a: ImportArgs) -> Result<u8> {
    let instance = Instance::open(&a.config)?;
    let moved = std::fs::read(&a.file).with_context(|| format!("{}: cannot read", a.file.display()))?;
    let state = instance.folded()?;
    let merged = tripline::rebalance::merge(state.as_deref(), &moved).map_err(|e| anyhow!("{}: {e}", a.file.display()))?;
    instance.save(&merged)?;
    println!("imported {} into {}", a.file.display(), instance.snapshot.display());
    Ok(OK)
}
