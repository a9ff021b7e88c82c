//! The "previously seen" lookups ESCU's detections read, each as the first-seen set tripline
//! learns in its place (`tripline::rule::FirstSeen`, `src/first_seen.rs`).
//!
//! A `previously_seen_*` lookup is a KV-store table that two baseline searches keep: "Initial"
//! builds it from 90 days of history, "Update" (daily) merges the last day in, forgets keys not
//! seen within the forget window and marks whether the table is old enough (`enough_data`). The
//! baselines are not among the YAML files of the ESCU snapshot tripline compiles, so each one
//! tripline stands in for is written here, from splunk/security_content, with what its search
//! computes: the key, the data model and filter it reads, the forget window and the warm-up. A
//! detection's lookup compiles only where the detection reads that same data model with that same
//! filter and groups by the key: then the set can be learned from the rule's own groups.

/// One baseline-kept lookup.
pub struct Baseline {
    pub table: &'static str,
    /// The table's key field.
    pub key: &'static str,
    /// The data-model field the baseline groups by (`tstats ... by <field>`).
    pub group_field: &'static str,
    pub datamodel: &'static str,
    /// The baseline's `tstats ... where` filter.
    pub filter: &'static str,
    /// `where lastTimeSeen > relative_time(now(), "-<n>d@d")` (the forget-window macro).
    pub horizon_days: i64,
    /// `eval enough_data = if(globalFirstTime <= relative_time(now(), "-<n>d@d"), 1, 0)`.
    pub warm_up_days: i64,
    /// Where the baseline searches were read.
    pub source: &'static str,
}

pub const BASELINES: &[Baseline] = &[Baseline {
    table: "previously_seen_cloud_provisioning_activity_sources",
    key: "src",
    group_field: "All_Changes.src",
    datamodel: "Change",
    filter: "(All_Changes.action=started OR All_Changes.action=created) All_Changes.status=success",
    // Macro `previously_seen_cloud_provisioning_activity_forget_window`: "-90d@d".
    horizon_days: 90,
    warm_up_days: 7,
    source: "Previously Seen Cloud Provisioning Activity Sources - Initial (v3) and - Update (v1), \
             splunk/security_content baselines/previously_seen_cloud_provisioning_activity_sources___*.yml: \
             `tstats earliest(_time) as firstTimeSeen, latest(_time) as lastTimeSeen from datamodel=Change where \
             (All_Changes.action=started OR All_Changes.action=created) All_Changes.status=success by All_Changes.src`, \
             keys kept while `lastTimeSeen > relative_time(now(), \"-90d@d\")`, `enough_data` once the oldest \
             `firstTimeSeen <= relative_time(now(), \"-7d@d\")`; its `iplocation src | where isnotnull(Country)` is not \
             applied (no GeoIP database)",
}];

/// The baseline that keeps `table`.
pub fn baseline(table: &str) -> Option<&'static Baseline> {
    BASELINES.iter().find(|b| b.table == table)
}
