//! Reading input files: NDJSON or CloudTrail S3 exports, plain or gzip (by content, not name),
//! or `-` for stdin. Records are split by `tripline::input::split_records`, as every host does.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;

/// One input file, decompressed in memory.
pub struct InputFile {
    pub data: Vec<u8>,
    /// Bytes on disk (compressed size for `.gz`), for progress.
    pub disk_size: u64,
}

impl InputFile {
    pub fn read(path: &Path) -> Result<InputFile> {
        let raw = if path.as_os_str() == "-" {
            let mut raw = Vec::new();
            std::io::stdin().read_to_end(&mut raw).context("reading stdin")?;
            raw
        } else {
            std::fs::read(path).with_context(|| format!("{}: cannot read; check the path and its permissions", path.display()))?
        };
        let disk_size = raw.len() as u64;
        let data = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut data = Vec::with_capacity(raw.len() * 8);
            MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut data).with_context(|| {
                format!("{}: not a whole gzip file (truncated or corrupt); fetch it again", path.display())
            })?;
            data
        } else {
            raw
        };
        Ok(InputFile { data, disk_size })
    }

    /// The records, in order, as slices of `data`.
    pub fn records(&self) -> Vec<&[u8]> {
        tripline::input::split_records(&self.data)
    }

    /// How far into this file (in disk bytes) `record` ends.
    pub fn disk_position(&self, record: &[u8]) -> u64 {
        if self.data.is_empty() {
            return self.disk_size;
        }
        let end = (record.as_ptr() as usize + record.len()).saturating_sub(self.data.as_ptr() as usize);
        (end as u128 * self.disk_size as u128 / self.data.len() as u128) as u64
    }
}

/// Total size on disk of `paths` (0 for stdin).
pub fn total_disk_size(paths: &[PathBuf]) -> u64 {
    paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

/// Every record of every file, in order, with the file it came from and its position on disk
/// across all files (for progress).
pub fn for_each_record(files: &[PathBuf], mut each: impl FnMut(&Path, &[u8], u64) -> Result<()>) -> Result<()> {
    let mut done = 0u64;
    for path in files {
        let input = InputFile::read(path)?;
        for record in input.records() {
            each(path, record, done + input.disk_position(record))?;
        }
        done += input.disk_size;
    }
    Ok(())
}

/// A record's `eventTime` as Unix seconds, read without a DOM.
pub fn event_time(record: &[u8]) -> Option<i64> {
    let object = tripline::json::RawObject::new(record).ok()?;
    let text = object.get("eventTime").ok()??.as_str().ok()??;
    tripline::time::parse_event_time(&text)
}
