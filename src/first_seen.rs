//! A first-seen set: the keys a rule's groups have had, each with the first and last time seen,
//! learned in-stream instead of read from a `previously_seen_*` lookup that a baseline search
//! keeps.
//!
//! It answers what ESCU's lookup rows do (`firstTimeSeen`, `lastTimeSeen`, `enough_data`) with
//! the baseline search's own rules: a key is forgotten once its last time is older than the
//! history horizon (`where lastTimeSeen > relative_time(now(), "-90d@d")`), and the set has
//! enough data once its oldest first time is at least the warm-up old (`globalFirstTime <=
//! relative_time(now(), "-7d@d")`). Bounded by `max_keys`: beyond it the tenth of the keys
//! least recently seen is forgotten and counted, so a flood of one-off keys cannot push out
//! the history the set depends on for long. The same code learns online (inside the module)
//! and offline (the CLI's `fit`), so both give the same set from the same rows.
//!
//! The set also notes which keys changed since it was last saved ([`FirstSeenSet::changes`]),
//! so that a save of a 100,000-key set writes the few keys a window changed, not the set
//! (snapshot.rs appends them to the saved state as a merge patch).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

const DAY: i64 = 86_400;

/// The first-seen set of one rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FirstSeenSet {
    /// Key -> (first time, last time), epoch seconds.
    keys: BTreeMap<String, (i64, i64)>,
    /// Keys forgotten because the set was full.
    #[serde(default)]
    evicted: u64,
    /// Keys forgotten past the horizon.
    #[serde(default)]
    expired: u64,
    /// What changed since the last save: not state, so never saved itself.
    #[serde(skip)]
    changed: Changed,
}

/// The keys learned, evicted or expired since the last save. `None` once nobody knows what the
/// saved copy holds (a new set, one read from a model, or more changes than half the set):
/// the next save then writes the whole set.
#[derive(Debug, Clone, Default)]
struct Changed(Option<BTreeSet<String>>);

impl PartialEq for FirstSeenSet {
    /// The same keys and counters; what is waiting to be saved is not part of the set.
    fn eq(&self, other: &FirstSeenSet) -> bool {
        (&self.keys, self.evicted, self.expired) == (&other.keys, other.evicted, other.expired)
    }
}

impl FirstSeenSet {
    pub fn new() -> FirstSeenSet {
        FirstSeenSet { keys: BTreeMap::new(), evicted: 0, expired: 0, changed: Changed::default() }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// `(first time, last time)` of `key`, if the set has it.
    pub fn get(&self, key: &str) -> Option<(i64, i64)> {
        self.keys.get(key).copied()
    }

    /// Whether the oldest key was first seen at or before `warm_up_days` days before `now`'s
    /// day (`relative_time(now(), "-<n>d@d")`, UTC days).
    pub fn enough_data(&self, now: i64, warm_up_days: i64) -> bool {
        let bound = day_start(now) - warm_up_days * DAY;
        self.keys.values().map(|&(first, _)| first).min().is_some_and(|first| first <= bound)
    }

    /// Learns that `key` was seen from `first` to `last`; beyond `max_keys` keys the tenth least
    /// recently seen (then smallest) are forgotten and counted.
    pub fn learn(&mut self, key: &str, first: i64, last: i64, max_keys: usize) {
        match self.keys.get_mut(key) {
            Some(seen) if *seen == (seen.0.min(first), seen.1.max(last)) => {}
            Some(seen) => {
                *seen = (seen.0.min(first), seen.1.max(last));
                self.note(key);
            }
            None => {
                self.keys.insert(key.to_string(), (first, last));
                self.note(key);
            }
        }
        if self.keys.len() > max_keys.max(1) {
            let mut by_age: Vec<(i64, String)> = self.keys.iter().map(|(k, &(_, last))| (last, k.clone())).collect();
            by_age.sort_unstable();
            let n = (self.keys.len() / 10).max(self.keys.len() - max_keys.max(1));
            for (_, key) in by_age.into_iter().take(n) {
                self.keys.remove(&key);
                self.evicted += 1;
                self.note(&key);
            }
        }
    }

    /// Forgets the keys last seen at or before `horizon_days` days before `now`'s day.
    pub fn expire(&mut self, now: i64, horizon_days: i64) {
        let bound = day_start(now) - horizon_days * DAY;
        let before = self.keys.len();
        let mut gone = Vec::new();
        self.keys.retain(|key, &mut (_, last)| {
            if last > bound {
                return true;
            }
            gone.push(key.clone());
            false
        });
        self.expired += (before - self.keys.len()) as u64;
        gone.iter().for_each(|key| self.note(key));
    }

    /// Notes that `key` changed since the last save; past half the set (plus a margin for small
    /// sets) the whole set is cheaper to write than the changes, and they are no longer noted.
    fn note(&mut self, key: &str) {
        let limit = self.keys.len() / 2 + 1024;
        let Some(changed) = &mut self.changed.0 else { return };
        if changed.contains(key) {
            return;
        }
        if changed.len() >= limit {
            self.changed.0 = None;
        } else {
            changed.insert(key.to_string());
        }
    }

    /// What changed since [`FirstSeenSet::saved`], as a JSON merge patch (RFC 7396) of the set's
    /// saved form: each changed key with its times, or `null` where it was forgotten, and the
    /// counters. `None` when the whole set must be saved instead.
    pub fn changes(&self) -> Option<Value> {
        let changed = self.changed.0.as_ref()?;
        let keys: Map<String, Value> =
            changed.iter().map(|key| (key.clone(), self.keys.get(key).map_or(Value::Null, |&(first, last)| json!([first, last])))).collect();
        Some(json!({ "keys": keys, "evicted": self.evicted, "expired": self.expired }))
    }

    /// The set as it stands was saved (whole, or its changes): changes are noted from here.
    pub fn saved(&mut self) {
        self.changed.0 = Some(BTreeSet::new());
    }
}

impl Default for FirstSeenSet {
    fn default() -> Self {
        FirstSeenSet::new()
    }
}

/// The start of `t`'s UTC day (`@d`).
fn day_start(t: i64) -> i64 {
    t.div_euclid(DAY) * DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 1_709_251_200; // 2024-03-01T00:00:00Z

    #[test]
    fn learns_first_and_last_and_judges_warm_up_by_whole_days() {
        let mut set = FirstSeenSet::new();
        assert!(!set.enough_data(D, 7));
        set.learn("a", D + 100, D + 200, 10);
        set.learn("a", D + 50, D + 150, 10);
        assert_eq!(set.get("a"), Some((D + 50, D + 200)));
        // `-7d@d` from any time of March 8th is March 1st 00:00: the key is 50 s too young.
        assert!(!set.enough_data(D + 7 * DAY + 3600, 7));
        assert!(set.enough_data(D + 8 * DAY, 7));
    }

    #[test]
    fn changes_since_the_last_save_are_the_keys_learned_or_forgotten() {
        let mut set = FirstSeenSet::new();
        set.learn("old", D, D, 3);
        assert_eq!(set.changes(), None, "nobody knows what a new set's saved copy holds");
        set.saved();
        set.learn("old", D, D, 3);
        assert_eq!(set.changes(), Some(serde_json::json!({"keys": {}, "evicted": 0, "expired": 0})), "nothing new learned");
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            set.learn(key, D + 10 + i as i64, D + 10 + i as i64, 3);
        }
        // The fourth key made a tenth (at least one) of the set go: "old", the least recent.
        let changes = serde_json::json!({"keys": {"a": [D + 10, D + 10], "b": [D + 11, D + 11], "c": [D + 12, D + 12], "old": null}, "evicted": 1, "expired": 0});
        assert_eq!(set.changes(), Some(changes));
        set.saved();
        set.expire(D + 100 * DAY, 90);
        assert_eq!(set.changes(), Some(serde_json::json!({"keys": {"a": null, "b": null, "c": null}, "evicted": 1, "expired": 3})));
        set.saved();
        for i in 0..3000 {
            set.learn(&format!("k{i}"), D, D, 10_000);
        }
        assert!(set.changes().is_none(), "more changes than half the set (and 1,024): saved whole");
    }

    #[test]
    fn forgets_past_the_horizon_and_the_least_recent_when_full() {
        let mut set = FirstSeenSet::new();
        for i in 0..10 {
            set.learn(&format!("k{i}"), D + i, D + i, 10);
        }
        set.learn("new", D + 100, D + 100, 10);
        assert_eq!((set.len(), set.evicted()), (10, 1));
        assert_eq!(set.get("k0"), None);
        // Last seen just after March 1st 00:00: kept while `-90d@d` is March 1st 00:00 (any time
        // of May 30th), gone once it is March 2nd (May 31st).
        set.expire(D + 91 * DAY - 1, 90);
        assert_eq!(set.len(), 10);
        set.expire(D + 91 * DAY, 90);
        assert_eq!((set.len(), set.expired()), (0, 10));
    }
}
