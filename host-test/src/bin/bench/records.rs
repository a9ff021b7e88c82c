//! The Fluent Bit section's input: realistic CloudTrail records from the example generator,
//! written once under `target/bench/` and reused, since generating them takes a while.
//!
//! The generator holds a whole run in memory and writes about 3,470 records a week, so a file is
//! generated in runs of `WEEKS` weeks, one after another in time, each with its own seed; the
//! million-record file is one such run ending where the example data starts (no record lies in
//! the wall clock's future), the ten-million one runs from 1970 to 2025.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Duration, TimeZone, Utc};
use tripline_generate::{generate, Options};

/// Records per run: enough that start-up is noise next to the per-record cost.
pub const RECORDS: u64 = 1_000_000;

/// Records in the memory run: the ten million.
pub const LONG_RECORDS: u64 = 10_000_000;

/// Weeks per generator run: about 1,040,000 records, a margin over `RECORDS`.
const WEEKS: u32 = 300;

/// The cached file of `count` records, generated first when missing.
pub fn ensure(dir: &Path, count: u64) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("cloudtrail-{count}.ndjson"));
    if !path.exists() {
        std::fs::create_dir_all(dir)?;
        eprintln!("generating {count} records into {} (once)", path.display());
        write_records(&path, count)?;
    }
    Ok(path)
}

/// Writes the first `count` generated lines through a temporary file, so that an interrupted
/// run never leaves a short file that later runs would take for the cache.
fn write_records(path: &Path, count: u64) -> anyhow::Result<()> {
    let defaults = Options::default();
    let runs = count.div_ceil(RECORDS) as u32;
    // Never before 1970 (a Monday in its first week): Fluent Bit's record times are unsigned.
    let earliest = Utc.with_ymd_and_hms(1970, 1, 5, 0, 0, 0).unwrap();
    let start = (defaults.start - Duration::weeks((WEEKS * runs).into())).max(earliest);
    let partial = path.with_extension("partial");
    let mut out = FirstLines { inner: BufWriter::new(File::create(&partial)?), left: count };
    for run in 0..runs {
        if out.left == 0 {
            break;
        }
        // The last run keeps the defaults' seed: the million-record file is what it always was.
        let seed = defaults.seed + u64::from(runs - 1 - run);
        let opts = Options { weeks: WEEKS, start: start + Duration::weeks((WEEKS * run).into()), seed, ..Options::default() };
        generate(&opts, &mut out)?;
    }
    anyhow::ensure!(out.left == 0, "the generator wrote only {} of {count} records", count - out.left);
    out.flush()?;
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
