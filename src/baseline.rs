//! MLTK's `DensityFunction dist=norm`, fitted per group and judged as ESCU's search does.
//!
//! A group's history is kept as per-day running moments (Welford), merged with Chan's formula
//! when judged. The same code fits offline (the CLI's `fit`) and learns online (inside the
//! module), so both produce bit-identical models from the same hourly rows. Day buckets let an
//! optional horizon age old behaviour out, as the baseline search's `-90d@d` window does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Count, mean, sum of squared deviations, min and max of a sample, updated one value at a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunningStats {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for RunningStats {
    fn default() -> Self {
        RunningStats { n: 0, mean: 0.0, m2: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl RunningStats {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Chan et al.'s pairwise combination of two samples' moments.
    pub fn merge(&self, other: &RunningStats) -> RunningStats {
        if self.n == 0 {
            return *other;
        }
        if other.n == 0 {
            return *self;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        let mean = self.mean + delta * other.n as f64 / n as f64;
        let m2 = self.m2 + other.m2 + delta * delta * self.n as f64 * other.n as f64 / n as f64;
        RunningStats { n, mean, m2, min: self.min.min(other.min), max: self.max.max(other.max) }
    }

    /// The normal fit MLTK reports: population standard deviation, 0 replaced by 1e-6.
    pub fn fit(&self) -> NormalFit {
        let variance = if self.n == 0 { 0.0 } else { (self.m2 / self.n as f64).max(0.0) };
        let std = variance.sqrt();
        NormalFit {
            mean: self.mean,
            std: if std == 0.0 { 1e-6 } else { std },
            cardinality: self.n,
            min: self.min,
            max: self.max,
        }
    }
}

/// A fitted normal distribution with MLTK's summary fields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormalFit {
    pub mean: f64,
    pub std: f64,
    pub cardinality: u64,
    pub min: f64,
    pub max: f64,
}

impl NormalFit {
    /// The upper outlier bound for `threshold` split over both tails, rounded to 4 decimals as
    /// MLTK reports it in `BoundaryRanges` (and as the search then compares against).
    pub fn upper_threshold(&self, threshold: f64) -> f64 {
        round4(self.mean + normal_quantile(1.0 - threshold / 2.0) * self.std)
    }
}

/// One day's share of a group's history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DayStats {
    /// Days since the Unix epoch.
    pub day: i64,
    #[serde(flatten)]
    pub stats: RunningStats,
}

/// Per-group histories, bounded in age (`horizon_days`) and in number (`max_groups`).
#[derive(Debug, Clone, PartialEq)]
pub struct Baselines<K: Ord> {
    groups: BTreeMap<K, Vec<DayStats>>,
    horizon_days: Option<i64>,
    max_groups: usize,
    evicted: u64,
}

impl<K: Ord + Clone> Baselines<K> {
    pub fn new(horizon_days: Option<i64>, max_groups: usize) -> Self {
        Baselines { groups: BTreeMap::new(), horizon_days, max_groups, evicted: 0 }
    }

    /// Adds one observation on `day`. When a new group would exceed `max_groups`, the tenth of
    /// the groups with the least history (fewest observations, then least recently updated) is
    /// forgotten and counted in `evicted`: a flood of one-off users cannot push out the
    /// established baselines the detection depends on.
    pub fn push(&mut self, key: K, day: i64, x: f64) {
        if !self.groups.contains_key(&key) && self.groups.len() >= self.max_groups {
            self.evict_weakest((self.max_groups / 10).max(1));
        }
        let days = self.groups.entry(key).or_default();
        match days.last_mut() {
            Some(last) if last.day == day => last.stats.push(x),
            _ => {
                let mut stats = RunningStats::default();
                stats.push(x);
                days.push(DayStats { day, stats });
            }
        }
        if let Some(horizon) = self.horizon_days {
            let oldest = day - horizon;
            days.retain(|d| d.day > oldest);
        }
    }

    /// The group's fit over the days inside the horizon as of `today`.
    pub fn fit(&self, key: &K, today: i64) -> Option<NormalFit> {
        let oldest = self.horizon_days.map_or(i64::MIN, |h| today - h);
        let merged = self.groups.get(key)?.iter().filter(|d| d.day > oldest).fold(RunningStats::default(), |acc, d| acc.merge(&d.stats));
        (merged.n > 0).then(|| merged.fit())
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Restores the eviction count (from a snapshot).
    pub fn set_evicted(&mut self, evicted: u64) {
        self.evicted = evicted;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &[DayStats])> {
        self.groups.iter().map(|(k, v)| (k, v.as_slice()))
    }

    /// Replaces a group's history (loading a model or a snapshot).
    pub fn insert(&mut self, key: K, days: Vec<DayStats>) {
        self.groups.insert(key, days);
    }

    pub fn clear(&mut self) {
        self.groups.clear();
    }

    fn evict_weakest(&mut self, how_many: usize) {
        let mut ranked: Vec<(u64, i64, K)> = self
            .groups
            .iter()
            .map(|(k, days)| (days.iter().map(|d| d.stats.n).sum(), days.last().map_or(i64::MIN, |d| d.day), k.clone()))
            .collect();
        let how_many = how_many.min(ranked.len());
        if how_many == 0 {
            return;
        }
        ranked.select_nth_unstable_by(how_many - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (_, _, key) in ranked.into_iter().take(how_many) {
            self.groups.remove(&key);
            self.evicted += 1;
        }
    }
}

/// Rounds half away from zero to 4 decimals.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The standard normal quantile, Wichura's AS 241 (PPND16), accurate to about 1e-16 for
/// `1e-11 <= min(p, 1 - p)`. Configuration keeps thresholds inside that range.
// The coefficients are Wichura's, digit for digit as published.
#[allow(clippy::excessive_precision, clippy::inconsistent_digit_grouping)]
pub fn normal_quantile(p: f64) -> f64 {
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        let num = ((((((2509.080_928_730_122_7 * r + 33_430.575_583_588_13) * r + 67_265.770_927_008_7) * r
            + 45_921.953_931_549_87)
            * r
            + 13_731.693_765_509_461)
            * r
            + 1_971.590_950_306_551_4)
            * r
            + 133.141_667_891_784_38)
            * r
            + 3.387_132_872_796_366_6;
        let den = ((((((5_226.495_278_852_854 * r + 28_729.085_735_721_943) * r + 39_307.895_800_092_71) * r
            + 21_213.794_301_586_596)
            * r
            + 5_394.196_021_424_751)
            * r
            + 687.187_007_492_057_9)
            * r
            + 42.313_330_701_600_91)
            * r
            + 1.0;
        return q * num / den;
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let r = (-tail.ln()).sqrt() - 1.6;
    let num = ((((((7.745_450_142_783_414e-4 * r + 2.272_384_498_926_918_4e-2) * r + 2.417_807_251_774_506e-1)
        * r
        + 1.270_458_252_452_368_4)
        * r
        + 3.647_848_324_763_204_5)
        * r
        + 5.769_497_221_460_691)
        * r
        + 4.630_337_846_156_545)
        * r
        + 1.423_437_110_749_683_5;
    let den = ((((((1.050_750_071_644_416_8e-9 * r + 5.475_938_084_995_345e-4) * r + 1.519_866_656_361_645_7e-2)
        * r
        + 1.481_039_764_274_800_7e-1)
        * r
        + 6.897_673_349_851e-1)
        * r
        + 1.676_384_830_183_803_8)
        * r
        + 2.053_191_626_637_758_8)
        * r
        + 1.0;
    let z = num / den;
    if q < 0.0 {
        -z
    } else {
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKED: [f64; 16] = [2., 3., 3., 4., 2., 5., 3., 4., 3., 2., 3., 4., 3., 2., 5., 3.];

    #[test]
    fn quantile_matches_the_documented_z() {
        assert!((normal_quantile(1.0 - 0.0025) - 2.807_033_768).abs() < 1e-9);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_quantile(0.5)).abs() < 1e-15);
        assert!((normal_quantile(0.0025) + 2.807_033_768).abs() < 1e-9);
    }

    #[test]
    fn worked_example_from_the_semantics() {
        let mut s = RunningStats::default();
        WORKED.iter().for_each(|&x| s.push(x));
        let fit = s.fit();
        assert!((fit.mean - 3.1875).abs() < 1e-12);
        assert!((fit.std - 0.94992).abs() < 1e-5);
        assert_eq!(fit.cardinality, 16);
        assert_eq!(fit.upper_threshold(0.005), 5.854);
        assert_eq!(round4(fit.mean - normal_quantile(0.9975) * fit.std), 0.521);
    }

    #[test]
    fn merging_equals_pushing() {
        let (mut a, mut b, mut all) = (RunningStats::default(), RunningStats::default(), RunningStats::default());
        WORKED[..7].iter().for_each(|&x| a.push(x));
        WORKED[7..].iter().for_each(|&x| b.push(x));
        WORKED.iter().for_each(|&x| all.push(x));
        let merged = a.merge(&b);
        assert_eq!(merged.n, all.n);
        assert!((merged.mean - all.mean).abs() < 1e-12 && (merged.m2 - all.m2).abs() < 1e-9);
        assert_eq!((merged.min, merged.max), (2.0, 5.0));
    }

    #[test]
    fn horizon_ages_out_old_days_and_cap_evicts_the_weakest() {
        let mut b = Baselines::new(Some(90), 2);
        b.push("a", 0, 100.0);
        b.push("a", 50, 2.0);
        b.push("a", 100, 4.0);
        let fit = b.fit(&"a", 100).unwrap();
        assert_eq!((fit.cardinality, fit.mean), (2, 3.0));
        assert_eq!(b.fit(&"a", 200), None);
        b.push("b", 101, 1.0);
        b.push("c", 102, 1.0);
        assert_eq!(b.len(), 2);
        assert_eq!(b.evicted(), 1);
        assert!(b.fit(&"a", 102).is_some(), "the group with history stays");
        assert!(b.fit(&"b", 102).is_none(), "the one-off group went");
    }

    #[test]
    fn constant_history_gets_the_tiny_std() {
        let mut s = RunningStats::default();
        (0..20).for_each(|_| s.push(4.0));
        assert_eq!(s.fit().std, 1e-6);
        assert_eq!(s.fit().upper_threshold(0.005), 4.0);
    }
}
