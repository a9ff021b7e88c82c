//! `stats count min(_time) max(_time) values(..) by ..` over event-time tumbling windows, bounded.
//!
//! Groups live in the window that holds their events until the watermark closes it. Caps keep
//! the state safe inside someone else's process:
//! - `max_groups` open groups in all, and `max_bytes` of them: when a new group would exceed
//!   the first, or the windows outgrow the second, the tenth of the open groups with the fewest
//!   events (oldest window first on ties) is closed early and reported as a partial result. A
//!   flood of one-off groups thus cannot push out a group that is really busy.
//! - `max_value_bytes` per kept text (group field or value): longer ones are cut on a character
//!   boundary and counted, so one huge field costs what a normal one does.
//! - `max_values` distinct values per `values()` column: the lexicographically smallest are kept
//!   (the first entries of Splunk's sorted list), and each distinct value let go is counted once:
//!   a digest of each is kept, as many per group as values are kept (past that a value let go
//!   again may be counted again, so the count is an upper bound from there on).

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cloudtrail::Texts;
use crate::digest::fnv1a64;

/// The running result of one group.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    pub count: u64,
    pub first: i64,
    pub last: i64,
    /// One sorted set per `values()` column, in the detection's order.
    pub values: Vec<BTreeSet<String>>,
    /// Distinct values not kept because of `max_values`.
    pub values_dropped: u64,
    /// Digests of the values let go (column and text), so one that comes back is not counted
    /// again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub dropped: BTreeSet<u64>,
}

impl GroupStats {
    /// Counts one event at `time` with its `values`, one list per column: texts new to the group
    /// are copied and added to `bytes`, and those `max_values` lets go are counted in `evictions`.
    fn add(&mut self, time: i64, values: Vec<Texts<'_>>, caps: Caps, bytes: &mut usize, evictions: &mut Evictions) {
        self.count += 1;
        self.first = self.first.min(time);
        self.last = self.last.max(time);
        for (index, column) in values.into_iter().enumerate() {
            for value in column {
                let set = &mut self.values[index];
                if set.contains(&*value) {
                    continue;
                }
                let added = text_bytes(&value);
                set.insert(value.into_owned());
                *bytes += added;
                if set.len() > caps.max_values {
                    let gone = set.pop_last().unwrap_or_default();
                    *bytes -= text_bytes(&gone);
                    if self.let_go(index, &gone, caps.max_values) {
                        *bytes += 8;
                        evictions.values += 1;
                    }
                }
            }
        }
    }

    /// Counts `value` of `column` as let go, once per distinct value while at most `remembered`
    /// digests are kept.
    fn let_go(&mut self, column: usize, value: &str, remembered: usize) -> bool {
        let digest = fnv1a64(value.as_bytes()) ^ (column as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if self.dropped.contains(&digest) {
            return false;
        }
        if self.dropped.len() < remembered {
            self.dropped.insert(digest);
        }
        self.values_dropped += 1;
        true
    }
}

/// Why a group was reported before (or after) its window closed normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partial {
    /// Closed early to respect `max_groups`; counts are lower bounds.
    Evicted,
    /// Built from one event that arrived after its window had closed.
    Late,
}

/// A group whose window has closed (or that was closed early).
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedGroup {
    pub window_start: i64,
    pub window_end: i64,
    pub key: Vec<String>,
    pub stats: GroupStats,
    pub partial: Option<Partial>,
}

/// Caps on aggregation state.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_groups: usize,
    pub max_values: usize,
    pub max_value_bytes: usize,
    /// Bytes these windows may hold (see [`Windows::bytes`]).
    pub max_bytes: usize,
}

/// What a group costs beyond its texts: the map entries, the stats, the allocations' headers.
const GROUP_BYTES: usize = 160;
/// What a kept text costs beyond its bytes.
const TEXT_BYTES: usize = 48;

/// Where `text` is cut to at most `max` bytes on a character boundary, if it is longer.
fn cut_at(text: &str, max: usize) -> Option<usize> {
    if text.len() <= max {
        return None;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(end)
}

/// Cuts `text` to at most `max` bytes on a character boundary; true when it was cut.
pub fn clip(text: &mut String, max: usize) -> bool {
    let Some(end) = cut_at(text, max) else { return false };
    text.truncate(end);
    // Truncating keeps the allocation: the cut text would still hold all of its bytes.
    text.shrink_to_fit();
    true
}

/// [`clip`] for a text that may be borrowed from the record: a borrowed one is cut by
/// borrowing less of it.
fn clip_cow(text: &mut Cow<'_, str>, max: usize) -> bool {
    match text {
        Cow::Borrowed(borrowed) => {
            let Some(end) = cut_at(borrowed, max) else { return false };
            *borrowed = &borrowed[..end];
            true
        }
        Cow::Owned(owned) => clip(owned, max),
    }
}

/// A group key as the windows look one up: the owned key they keep, or the texts an event
/// brings, ordered alike (as `Vec<String>` orders), so that an event of an open group finds
/// it without copying its texts.
trait GroupKey {
    fn len(&self) -> usize;
    fn part(&self, index: usize) -> &str;
}

impl GroupKey for Vec<String> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn part(&self, index: usize) -> &str {
        &self[index]
    }
}

/// An event's group key, borrowed.
struct EventKey<'k, 's>(&'k [Cow<'s, str>]);

impl GroupKey for EventKey<'_, '_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn part(&self, index: usize) -> &str {
        &self.0[index]
    }
}

impl<'k> Borrow<dyn GroupKey + 'k> for Vec<String> {
    fn borrow(&self) -> &(dyn GroupKey + 'k) {
        self
    }
}

impl Ord for dyn GroupKey + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        (0..self.len()).map(|i| self.part(i)).cmp((0..other.len()).map(|i| other.part(i)))
    }
}

impl PartialOrd for dyn GroupKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn GroupKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn GroupKey + '_ {}

/// Open windows of one detection.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(from = "Vec<SavedWindow>")]
pub struct Windows {
    open: BTreeMap<i64, BTreeMap<Vec<String>, GroupStats>>,
    groups: usize,
    bytes: usize,
}

/// How an open window is saved: JSON objects cannot have a group key (a list) as a key.
#[derive(Serialize, Deserialize)]
struct SavedWindow {
    start: i64,
    groups: Vec<(Vec<String>, GroupStats)>,
}

/// Saved as [`SavedWindow`]s, written from the windows in place: serde's `into` would copy
/// them all, which is what may not fit when a snapshot is most needed.
impl Serialize for Windows {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Saving<'a> {
            start: i64,
            #[serde(serialize_with = "as_pairs")]
            groups: &'a BTreeMap<Vec<String>, GroupStats>,
        }
        fn as_pairs<S: serde::Serializer>(groups: &&BTreeMap<Vec<String>, GroupStats>, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(groups.iter())
        }
        serializer.collect_seq(self.open.iter().map(|(&start, groups)| Saving { start, groups }))
    }
}

impl From<Vec<SavedWindow>> for Windows {
    fn from(saved: Vec<SavedWindow>) -> Self {
        let open: BTreeMap<_, BTreeMap<_, _>> =
            saved.into_iter().map(|w| (w.start, w.groups.into_iter().collect())).collect();
        let groups = open.values().map(BTreeMap::len).sum();
        let bytes = open.values().flat_map(|w| w.iter()).map(|(key, stats)| group_bytes(key, stats)).sum();
        Windows { open, groups, bytes }
    }
}

/// What one [`Windows::add`] let go of.
#[derive(Debug, Default)]
pub struct Evictions {
    pub groups: Vec<ClosedGroup>,
    pub values: u64,
    /// Texts cut to `max_value_bytes`.
    pub truncated: u64,
}

fn text_bytes(text: &str) -> usize {
    text.len() + TEXT_BYTES
}

/// What a group holds, as [`Windows::bytes`] counts it.
fn group_bytes(key: &[String], stats: &GroupStats) -> usize {
    let texts: usize = key.iter().chain(stats.values.iter().flatten()).map(|t| text_bytes(t)).sum();
    GROUP_BYTES + texts + stats.dropped.len() * 8
}

impl Windows {
    /// Adds one event at `time` to window `[start, start + length)`. Texts are copied only
    /// where they are new to the group: an event of an open group allocates nothing.
    pub fn add<'t>(&mut self, start: i64, length: i64, time: i64, mut key: Vec<Cow<'t, str>>, mut values: Vec<Texts<'t>>, caps: Caps) -> Evictions {
        let mut evictions = Evictions::default();
        for text in key.iter_mut().chain(values.iter_mut().flatten()) {
            evictions.truncated += u64::from(clip_cow(text, caps.max_value_bytes));
        }
        // An open group is found in one search; only a new one costs a second, to insert it.
        match self.open.get_mut(&start).and_then(|w| w.get_mut(&EventKey(&key) as &dyn GroupKey)) {
            Some(stats) => stats.add(time, values, caps, &mut self.bytes, &mut evictions),
            None => {
                if self.groups >= caps.max_groups {
                    evictions.groups = self.evict_smallest((caps.max_groups / 10).max(1), length);
                }
                self.groups += 1;
                self.bytes += GROUP_BYTES + key.iter().map(|t| text_bytes(t)).sum::<usize>();
                let mut stats = GroupStats { first: time, last: time, values: vec![BTreeSet::new(); values.len()], ..GroupStats::default() };
                stats.add(time, values, caps, &mut self.bytes, &mut evictions);
                self.open.entry(start).or_default().insert(key.iter().map(|t| t.to_string()).collect(), stats);
            }
        }
        while self.bytes > caps.max_bytes && self.groups > 1 {
            let evicted = self.evict_smallest((self.groups / 10).max(1), length);
            evictions.groups.extend(evicted);
        }
        evictions
    }

    /// What the open groups hold: their texts and a fixed cost per group, text and digest; an
    /// estimate of their memory that tracks it closely.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The start of the oldest open window.
    pub fn oldest(&self) -> Option<i64> {
        self.open.keys().next().copied()
    }

    pub fn group_count(&self) -> usize {
        self.groups
    }

    /// Takes out the open groups whose key `moves` picks, for another instance to take over
    /// (a partition moving, docs/scale-out.md); the rest stay.
    pub fn split_off(&mut self, mut moves: impl FnMut(&[String]) -> bool) -> Windows {
        let (mut kept, mut moved) = (Vec::new(), Vec::new());
        for (start, groups) in std::mem::take(&mut self.open) {
            let (go, stay): (Vec<_>, Vec<_>) = groups.into_iter().partition(|(key, _)| moves(key));
            kept.push(SavedWindow { start, groups: stay });
            moved.push(SavedWindow { start, groups: go });
        }
        *self = Windows::from(kept.into_iter().filter(|w| !w.groups.is_empty()).collect::<Vec<_>>());
        Windows::from(moved.into_iter().filter(|w| !w.groups.is_empty()).collect::<Vec<_>>())
    }

    /// Takes over the groups of `other` (what [`Windows::split_off`] gave another instance). A
    /// group open on both sides is refused whole: two instances never share a group of a rule
    /// whose key carries the partitioning key, so it means the wrong state was given.
    pub fn absorb(&mut self, other: Windows) -> Result<(), String> {
        if let Some((start, key)) = other.open.iter().flat_map(|(s, g)| g.keys().map(move |k| (s, k))).find(|(s, k)| self.open.get(s).is_some_and(|g| g.contains_key(*k))) {
            return Err(format!("the group {key:?} of the window at {start} is open on both sides"));
        }
        for (start, groups) in other.open {
            for (key, stats) in groups {
                self.groups += 1;
                self.bytes += group_bytes(&key, &stats);
                self.open.entry(start).or_default().insert(key, stats);
            }
        }
        Ok(())
    }

    /// Closes every window that starts before `bound`, groups in key order.
    pub fn close_before(&mut self, bound: i64, length: i64) -> Vec<ClosedGroup> {
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= bound {
                break;
            }
            let start = *entry.key();
            let groups = entry.remove();
            self.groups -= groups.len();
            self.bytes -= groups.iter().map(|(key, stats)| group_bytes(key, stats)).sum::<usize>();
            closed.extend(groups.into_iter().map(|(key, stats)| ClosedGroup {
                window_start: start,
                window_end: start + length,
                key,
                stats,
                partial: None,
            }));
        }
        closed
    }

    fn evict_smallest(&mut self, how_many: usize, length: i64) -> Vec<ClosedGroup> {
        let mut ranked: Vec<(u64, i64, i64, Vec<String>)> = self
            .open
            .iter()
            .flat_map(|(start, groups)| groups.iter().map(move |(k, s)| (s.count, *start, s.last, k.clone())))
            .collect();
        let how_many = how_many.min(ranked.len());
        if how_many == 0 {
            return Vec::new();
        }
        ranked.select_nth_unstable(how_many - 1);
        ranked.truncate(how_many);
        ranked.sort();
        let mut evicted = Vec::with_capacity(how_many);
        for (_, start, _, key) in ranked {
            let Some(window) = self.open.get_mut(&start) else { continue };
            if let Some(stats) = window.remove(&key) {
                self.groups -= 1;
                self.bytes -= group_bytes(&key, &stats);
                evicted.push(ClosedGroup {
                    window_start: start,
                    window_end: start + length,
                    key,
                    stats,
                    partial: Some(Partial::Evicted),
                });
            }
            if window.is_empty() {
                self.open.remove(&start);
            }
        }
        evicted
    }
}

/// A single late event as its own partial group.
pub fn late_group(start: i64, length: i64, time: i64, key: Vec<Cow<'_, str>>, values: Vec<Texts<'_>>) -> ClosedGroup {
    let values = values.into_iter().map(|v| v.into_iter().map(Cow::into_owned).collect()).collect();
    ClosedGroup {
        window_start: start,
        window_end: start + length,
        key: key.into_iter().map(Cow::into_owned).collect(),
        stats: GroupStats { count: 1, first: time, last: time, values, ..GroupStats::default() },
        partial: Some(Partial::Late),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(w: &mut Windows, start: i64, time: i64, key: &str, value: &str) -> Evictions {
        w.add(start, 3600, time, vec![key.into()], vec![smallvec::smallvec![value.into()]], CAPS)
    }

    const CAPS: Caps = Caps { max_groups: 10, max_values: 2, max_value_bytes: 64, max_bytes: usize::MAX };

    #[test]
    fn counts_and_sorts_values() {
        let mut w = Windows::default();
        add(&mut w, 0, 50, "a", "z");
        add(&mut w, 0, 10, "a", "m");
        add(&mut w, 0, 30, "a", "m");
        add(&mut w, 3600, 3700, "a", "q");
        let closed = w.close_before(3600, 3600);
        assert_eq!(closed.len(), 1);
        let s = &closed[0].stats;
        assert_eq!((s.count, s.first, s.last), (3, 10, 50));
        assert_eq!(s.values[0].iter().collect::<Vec<_>>(), ["m", "z"]);
        assert_eq!(w.group_count(), 1);
    }

    #[test]
    fn values_keep_the_smallest() {
        let mut w = Windows::default();
        let mut dropped = 0;
        for v in ["d", "b", "c", "a"] {
            dropped += add(&mut w, 0, 1, "g", v).values;
        }
        let closed = w.close_before(i64::MAX, 3600);
        assert_eq!(closed[0].stats.values[0].iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((dropped, closed[0].stats.values_dropped), (2, 2));
    }

    #[test]
    fn a_value_let_go_is_counted_once_however_often_it_comes_back() {
        let mut w = Windows::default();
        let mut dropped = 0;
        for v in ["a", "b", "z", "z", "c", "z", "c", "b"] {
            dropped += add(&mut w, 0, 1, "g", v).values;
        }
        let closed = w.close_before(i64::MAX, 3600);
        assert_eq!(closed[0].stats.values[0].iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((dropped, closed[0].stats.values_dropped), (2, 2), "z and c, once each");
    }

    #[test]
    fn long_texts_are_cut_and_bytes_bound_the_windows() {
        let mut w = Windows::default();
        let caps = Caps { max_bytes: 2_000, max_value_bytes: 8, ..CAPS };
        let added = w.add(0, 3600, 1, vec!["é".repeat(10).into()], vec![smallvec::smallvec!["v".repeat(100).into()]], caps);
        assert_eq!(added.truncated, 2);
        let closed = w.close_before(i64::MAX, 3600);
        assert_eq!((closed[0].key[0].as_str(), closed[0].stats.values[0].first().unwrap().as_str()), ("éééé", "vvvvvvvv"));
        assert_eq!(w.bytes(), 0);

        for _ in 0..20 {
            add(&mut w, 0, 1, "busy", "x");
        }
        let mut evicted = 0;
        for i in 0..100 {
            evicted += w.add(0, 3600, 2, vec![format!("g{i}").into()], vec![smallvec::smallvec!["y".into()]], caps).groups.len();
            assert!(w.bytes() <= caps.max_bytes, "{} bytes", w.bytes());
        }
        assert!(evicted > 80, "{evicted}");
        let rest = w.close_before(i64::MAX, 3600);
        assert!(rest.iter().any(|g| g.key[0] == "busy" && g.stats.count == 20));
        assert_eq!(w.bytes(), 0, "the count returns to zero with the groups");
    }

    #[test]
    fn eviction_spares_busy_groups() {
        let mut w = Windows::default();
        for _ in 0..50 {
            add(&mut w, 0, 1, "busy", "x");
        }
        let mut evicted = Vec::new();
        for i in 0..1000 {
            evicted.extend(add(&mut w, 0, 2, &format!("one-off-{i}"), "x").groups);
        }
        assert!(w.group_count() <= CAPS.max_groups);
        assert_eq!(evicted.len() + w.group_count(), 1001);
        assert!(evicted.iter().all(|g| g.partial == Some(Partial::Evicted) && g.key[0] != "busy"));
        let rest = w.close_before(i64::MAX, 3600);
        assert!(rest.iter().any(|g| g.key[0] == "busy" && g.stats.count == 50));
    }
}
