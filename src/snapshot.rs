//! One versioned, checksummed snapshot format for all engine state.
//!
//! ```text
//! TRIPLINE-SNAPSHOT <format version> <module version> <body length> <fnv1a64 of body, hex>\n
//! <body: EngineState as JSON>
//! ```
//! The header makes truncation and corruption detectable before any JSON is parsed; the JSON body
//! keeps snapshots readable by people and by later modules (new fields take defaults). A
//! snapshot from a future format version is refused, never guessed at.

use std::fmt;

use crate::engine::EngineState;

pub const MAGIC: &str = "TRIPLINE-SNAPSHOT";
/// Bumped when the body changes in a way older readers cannot take.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    NotASnapshot,
    FutureVersion(u32),
    Truncated { expected: usize, found: usize },
    ChecksumMismatch,
    Body(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::NotASnapshot => write!(f, "snapshot: not a tripline snapshot"),
            SnapshotError::FutureVersion(v) => {
                write!(f, "snapshot: format version {v} is newer than this module reads ({FORMAT_VERSION})")
            }
            SnapshotError::Truncated { expected, found } => {
                write!(f, "snapshot: body is {found} bytes, header says {expected}")
            }
            SnapshotError::ChecksumMismatch => write!(f, "snapshot: checksum mismatch (corrupt)"),
            SnapshotError::Body(e) => write!(f, "snapshot: unreadable body ({e})"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// FNV-1a, 64-bit: small, dependency-free, and enough to catch torn or flipped bytes.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A buffer whose growth fails as a write error instead of aborting: a snapshot that does not
/// fit in the memory left is a counted failure, not a trap.
struct FallibleBuffer(Vec<u8>);

impl std::io::Write for FallibleBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.try_reserve(bytes.len()).map_err(|_| std::io::ErrorKind::OutOfMemory)?;
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn encode(state: &EngineState) -> Result<Vec<u8>, String> {
    let mut body = FallibleBuffer(Vec::new());
    serde_json::to_writer(&mut body, state).map_err(|e| format!("snapshot: cannot encode state ({e})"))?;
    let mut out = body.0;
    let header = format!(
        "{MAGIC} {FORMAT_VERSION} {} {} {:016x}\n",
        env!("CARGO_PKG_VERSION"),
        out.len(),
        fnv1a64(&out)
    );
    // In place: a second copy of the body could be what no longer fits.
    out.try_reserve(header.len()).map_err(|_| "snapshot: out of memory".to_string())?;
    out.splice(0..0, header.into_bytes());
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<EngineState<'_>, SnapshotError> {
    let newline = bytes.iter().position(|&b| b == b'\n').ok_or(SnapshotError::NotASnapshot)?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| SnapshotError::NotASnapshot)?;
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, version, _module, length, checksum] = fields[..] else {
        return Err(SnapshotError::NotASnapshot);
    };
    if magic != MAGIC {
        return Err(SnapshotError::NotASnapshot);
    }
    let version: u32 = version.parse().map_err(|_| SnapshotError::NotASnapshot)?;
    if version > FORMAT_VERSION {
        return Err(SnapshotError::FutureVersion(version));
    }
    let expected: usize = length.parse().map_err(|_| SnapshotError::NotASnapshot)?;
    let body = &bytes[newline + 1..];
    if body.len() != expected {
        return Err(SnapshotError::Truncated { expected, found: body.len() });
    }
    if format!("{:016x}", fnv1a64(body)) != checksum {
        return Err(SnapshotError::ChecksumMismatch);
    }
    serde_json::from_slice(body).map_err(|e| SnapshotError::Body(e.to_string()))
}
