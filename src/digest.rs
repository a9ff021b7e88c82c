//! FNV-1a, 64-bit: small, dependency-free, and the same in every build, for the digests that
//! are saved (group keys past their cap, rule shapes, snapshot and journal checksums).

/// FNV-1a, 64-bit: enough to catch torn or flipped bytes, not a defence against forgery.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
