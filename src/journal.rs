//! An append-only journal of the records that changed state since the last snapshot.
//!
//! Fluent Bit gives a filter no shutdown call, so whatever state a record changed must be on
//! disk before the next record, or a stop or reload at that point changes later alerts. Saving
//! the whole snapshot that often would rewrite megabytes per record; the journal instead keeps
//! the few records that mattered and replays them onto the last snapshot at start. The engine is
//! deterministic, so replaying gives the exact state, provided each entry also carries what the
//! outcome depended on besides the record: the watermark before it, the host's clock, and how
//! many alerts the host took away after it.
//!
//! ```text
//! TRIPLINE-JOURNAL2 <seq> <watermark|-> <now|-> <taken> <record length> <checksum of record, hex>\n
//! <record bytes>\n
//! ```
//! The checksum is [`word_checksum`]: FNV-1a's step over eight bytes at a time, since every
//! journaled record pays for it, under Fluent Bit's interpreter at tens of instructions a step.
//! Entries of the first format (`TRIPLINE-JOURNAL`, byte-wise FNV-1a) are still read, so a
//! journal left by an older module replays after the `.wasm` is swapped.
//! `seq` is the engine's record count after the record: entries a snapshot already holds (its
//! count is as high) are skipped, so a stop between writing a snapshot and emptying the journal
//! applies nothing twice. A torn last entry (a write cut short) ends the journal.

use crate::engine::Engine;
use crate::digest::fnv1a64;

const MAGIC: &str = "TRIPLINE-JOURNAL2";
/// The first format's header, read but no longer written.
const MAGIC_BYTEWISE: &str = "TRIPLINE-JOURNAL";

/// FNV-1a over the little-endian words of `bytes` (the last one zero-padded), then its length.
pub fn word_checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut words = bytes.chunks_exact(8);
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for word in words.by_ref() {
        hash = (hash ^ u64::from_le_bytes(word.try_into().expect("eight bytes"))).wrapping_mul(PRIME);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    hash = (hash ^ u64::from_le_bytes(tail)).wrapping_mul(PRIME);
    (hash ^ bytes.len() as u64).wrapping_mul(PRIME)
}

/// One record that changed state, and what its outcome depended on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The engine's record count after this record.
    pub seq: u64,
    /// The watermark before this record.
    pub watermark: Option<i64>,
    /// The host's clock passed with the record.
    pub now: Option<i64>,
    /// Alerts the host took from the queue after this record (they were delivered).
    pub taken: usize,
    pub record: &'a [u8],
}

impl Entry<'_> {
    /// Writes the entry in three pieces, so a large record is never copied (memory may be short
    /// exactly when records are large); returns the bytes written.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<u64> {
        let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let header = format!(
            "{MAGIC} {} {} {} {} {} {:016x}\n",
            self.seq,
            opt(self.watermark),
            opt(self.now),
            self.taken,
            self.record.len(),
            word_checksum(self.record)
        );
        out.write_all(header.as_bytes())?;
        out.write_all(self.record)?;
        out.write_all(b"\n")?;
        Ok((header.len() + self.record.len() + 1) as u64)
    }
}

/// The entries of a journal, in order; stops at the first entry that is torn or damaged.
pub fn entries(journal: &[u8]) -> Entries<'_> {
    Entries { rest: journal, damaged: false }
}

pub struct Entries<'a> {
    rest: &'a [u8],
    damaged: bool,
}

impl Entries<'_> {
    /// True when the journal ended in a torn or damaged entry rather than cleanly.
    pub fn damaged(&self) -> bool {
        self.damaged
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let entry = parse(self.rest);
        match entry {
            Some((entry, used)) => {
                self.rest = &self.rest[used..];
                Some(entry)
            }
            None => {
                self.damaged = true;
                self.rest = &[];
                None
            }
        }
    }
}

fn parse(bytes: &[u8]) -> Option<(Entry<'_>, usize)> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..newline]).ok()?;
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, seq, watermark, now, taken, length, checksum] = fields[..] else { return None };
    let opt = |v: &str| if v == "-" { Some(None) } else { v.parse().ok().map(Some) };
    let checksum_of: fn(&[u8]) -> u64 = match magic {
        MAGIC => word_checksum,
        MAGIC_BYTEWISE => fnv1a64,
        _ => return None,
    };
    let length: usize = length.parse().ok()?;
    let start = newline + 1;
    let end = start.checked_add(length)?;
    let record = bytes.get(start..end)?;
    if bytes.get(end) != Some(&b'\n') || format!("{:016x}", checksum_of(record)) != checksum {
        return None;
    }
    let entry = Entry { seq: seq.parse().ok()?, watermark: opt(watermark)?, now: opt(now)?, taken: taken.parse().ok()?, record };
    Some((entry, end + 1))
}

/// What replaying a journal did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    pub applied: u64,
    /// Entries the snapshot already held.
    pub skipped: u64,
    /// The journal ended in a torn or damaged entry (its state is lost; nothing after it is read).
    pub damaged: bool,
}

/// Applies `journal` to an engine restored from the snapshot the journal follows. Alerts that
/// were delivered before the stop are taken away again; the rest stay queued.
pub fn replay(engine: &mut Engine, journal: &[u8]) -> Replayed {
    let mut replayed = Replayed::default();
    let mut all = entries(journal);
    for entry in all.by_ref() {
        if entry.seq <= engine.counters().records {
            replayed.skipped += 1;
            continue;
        }
        engine.replay_position(entry.seq - 1, entry.watermark);
        engine.process(entry.record, entry.now);
        engine.take_alerts(entry.taken);
        replayed.applied += 1;
    }
    replayed.damaged = all.damaged();
    replayed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, record: &[u8]) -> Entry<'_> {
        Entry { seq, watermark: Some(1_700_000_000), now: None, taken: 2, record }
    }

    fn encode(entry: &Entry<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        entry.write_to(&mut out).unwrap();
        out
    }

    #[test]
    fn entries_round_trip_and_a_torn_tail_ends_the_journal() {
        let mut journal = encode(&entry(7, br#"{"eventName":"A"}"#));
        journal.extend(encode(&entry(9, b"{\"x\":\"line\\nbreak\"}")));
        let whole: Vec<_> = entries(&journal).collect();
        assert_eq!(whole, vec![entry(7, br#"{"eventName":"A"}"#), entry(9, b"{\"x\":\"line\\nbreak\"}")]);

        let first_len = encode(&entry(7, br#"{"eventName":"A"}"#)).len();
        for cut in 1..journal.len() {
            let mut read = entries(&journal[..cut]);
            let count = read.by_ref().count();
            assert_eq!(count, usize::from(cut >= first_len), "a cut at {cut} yields the whole entries before it");
            assert_eq!(read.damaged(), cut != first_len, "a cut at {cut} is reported unless it falls between entries");
        }
        let mut flipped = journal.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        let mut read = entries(&flipped);
        assert_eq!(read.by_ref().count(), 1);
        assert!(read.damaged());
    }

    #[test]
    fn a_journal_of_the_first_format_still_replays() {
        // As the module before TRIPLINE-JOURNAL2 wrote it: byte-wise FNV-1a.
        let record = br#"{"eventName":"A"}"#;
        let old = format!("TRIPLINE-JOURNAL 7 1700000000 - 2 {} {:016x}\n", record.len(), fnv1a64(record));
        let journal = [old.as_bytes(), record, b"\n"].concat();
        assert_eq!(entries(&journal).collect::<Vec<_>>(), vec![entry(7, record)]);
        // Each format's checksum is checked as its own: the other's does not pass.
        let swapped = format!("TRIPLINE-JOURNAL2 7 1700000000 - 2 {} {:016x}\n", record.len(), fnv1a64(record));
        let journal = [swapped.as_bytes(), record, b"\n"].concat();
        let mut read = entries(&journal);
        assert_eq!(read.by_ref().count(), 0);
        assert!(read.damaged());
    }

    #[test]
    fn the_word_checksum_sees_every_byte_and_the_length() {
        let base: Vec<u8> = (0..40u8).collect();
        for len in 0..base.len() {
            let text = &base[..len];
            assert_ne!(word_checksum(text), word_checksum(&base[..len + 1]), "zero padding hides no length ({len})");
            for at in 0..len {
                let mut changed = text.to_vec();
                changed[at] ^= 0x10;
                assert_ne!(word_checksum(text), word_checksum(&changed), "byte {at} of {len}");
            }
        }
        let zeros = [0u8; 9];
        assert_ne!(word_checksum(&zeros[..8]), word_checksum(&zeros[..9]));
    }
}
