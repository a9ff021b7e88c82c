//! Reading input files: NDJSON or CloudTrail S3 exports, plain or gzip (by content, not name),
//! or `-` for stdin. Records are split by `tripline::input::split_records`.

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
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        };
        let disk_size = raw.len() as u64;
        let data = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut data = Vec::with_capacity(raw.len() * 8);
            MultiGzDecoder::new(raw.as_slice())
                .read_to_end(&mut data)
                .with_context(|| format!("decompressing {}", path.display()))?;
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
        let end = (record.as_ptr() as usize + record.len()).saturating_sub(self.data.as_ptr() as usize);
        if self.data.is_empty() {
            return self.disk_size;
        }
        (end as u128 * self.disk_size as u128 / self.data.len() as u128) as u64
    }
}

/// Total size on disk of `paths` (0 for stdin or unreadable files; reading reports those).
pub fn total_disk_size(paths: &[PathBuf]) -> u64 {
    paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}
