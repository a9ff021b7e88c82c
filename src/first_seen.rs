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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;

/// The first-seen set of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirstSeenSet {
    /// Key -> (first time, last time), epoch seconds.
    keys: BTreeMap<String, (i64, i64)>,
    /// Keys forgotten because the set was full.
    #[serde(default)]
    evicted: u64,
    /// Keys forgotten past the horizon.
    #[serde(default)]
    expired: u64,
}

impl FirstSeenSet {
    pub fn new() -> FirstSeenSet {
        FirstSeenSet { keys: BTreeMap::new(), evicted: 0, expired: 0 }
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
            Some(seen) => *seen = (seen.0.min(first), seen.1.max(last)),
            None => {
                self.keys.insert(key.to_string(), (first, last));
            }
        }
        if self.keys.len() > max_keys.max(1) {
            let mut by_age: Vec<(i64, String)> = self.keys.iter().map(|(k, &(_, last))| (last, k.clone())).collect();
            by_age.sort_unstable();
            let n = (self.keys.len() / 10).max(self.keys.len() - max_keys.max(1));
            for (_, key) in by_age.into_iter().take(n) {
                self.keys.remove(&key);
                self.evicted += 1;
            }
        }
    }

    /// Forgets the keys last seen at or before `horizon_days` days before `now`'s day.
    pub fn expire(&mut self, now: i64, horizon_days: i64) {
        let bound = day_start(now) - horizon_days * DAY;
        let before = self.keys.len();
        self.keys.retain(|_, &mut (_, last)| last > bound);
        self.expired += (before - self.keys.len()) as u64;
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
