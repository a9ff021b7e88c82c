//! The Fluent Bit section's input: a million realistic CloudTrail records from the example
//! generator, written once under `target/bench/` and reused, since generating them takes a while
//! and holds them all in memory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::Duration;
use tripline_generate::{generate, Options};

/// Records per run: enough that start-up is noise next to the per-record cost.
pub const RECORDS: u64 = 1_000_000;

/// The generator writes about 3,470 records a week; 300 weeks leave a margin over `RECORDS`.
const WEEKS: u32 = 300;

/// The cached records file, generated first when missing.
pub fn ensure(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("cloudtrail-{RECORDS}.ndjson"));
    if !path.exists() {
        std::fs::create_dir_all(dir)?;
        eprintln!("generating {RECORDS} records into {} (once)", path.display());
        write_records(&path)?;
    }
    Ok(path)
}

/// Writes the first `RECORDS` generated lines through a temporary file, so that an interrupted
/// run never leaves a short file that later runs would take for the cache.
fn write_records(path: &Path) -> anyhow::Result<()> {
    let defaults = Options::default();
    // End where the example data starts, so that no record lies in the wall clock's future.
    let opts = Options { weeks: WEEKS, start: defaults.start - Duration::weeks(WEEKS.into()), ..defaults };
    let partial = path.with_extension("partial");
    let mut out = FirstLines { inner: BufWriter::new(File::create(&partial)?), left: RECORDS };
    let summary = generate(&opts, &mut out)?;
    anyhow::ensure!(summary.records >= RECORDS, "the generator wrote only {} records in {WEEKS} weeks", summary.records);
    std::fs::rename(&partial, path)?;
    Ok(())
}

/// Passes the first `left` lines to `inner` and drops the rest.
struct FirstLines<W> {
    inner: W,
    left: u64,
}

impl<W: Write> Write for FirstLines<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut end = 0;
        while self.left > 0 && end < buf.len() {
            match buf[end..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    end += i + 1;
                    self.left -= 1;
                }
                None => end = buf.len(),
            }
        }
        self.inner.write_all(&buf[..end])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
