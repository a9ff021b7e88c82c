//! A detection as data: the form the compiler emits (`compiler/`) and the engine runs.
//!
//! A rule is a Splunk search reduced to the parts a stream can run: a selection over one record
//! (`search` semantics), per-event steps (`eval`, `rename`, `where`, `spath`, `mvexpand`, ...),
//! an optional `stats ... by` over event-time windows, and steps over each output row. The
//! engine knows no single rule: everything a detection means is in this data. Field names are
//! Splunk's, resolved through the add-on's field table (`cloudtrail.rs`).

mod density;
mod eval;
mod regex;
mod run;
pub mod sigma;
mod specialize;
pub mod value;

use serde::{Deserialize, Serialize};

pub use eval::Locale;
pub use run::RuleDetection;

/// One compiled detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub metadata: Metadata,
    pub source: Source,
    /// The `eventName`s the selection requires (compared case-insensitively, as Splunk does);
    /// empty when the rule may select any record. The engine's index: a record whose name no
    /// rule lists costs no rule a look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_names: Vec<String>,
    /// The base search over the raw record.
    pub selection: Cond,
    /// Per selected event, in order; an event that a step filters out is not selected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// The aggregation, if the search has one; without it every selected event is a result row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// Per result row (after `stats`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Step>,
    /// `join F ... [subsearch]`: the main search's per-event side, whose rows wait in the
    /// window for the rows of the `stats` above (then the subsearch's); see [`Join`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<Join>,
    /// The rule's first-seen set, for a `lookup previously_seen_*` step (`Step::FirstSeen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<FirstSeen>,
    /// The rule's density baseline, for its `density` step (`Step::Density`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<Density>,
    /// Tag each selected event at once (the real-time path), ahead of the windowed result.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tag_each_event: bool,
    /// What the compiler found the search cannot do as written (it still runs as written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Whether the rule runs where the host's configuration does not say. `None`: as its origin
    /// ships it (production TTP and Anomaly searches for ESCU; see `catalog.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_by_default: Option<bool>,
}

/// Where a rule came from, for provenance and `explain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `escu`, `sigma`, or `local` for a host's own rule file.
    pub kind: String,
    /// The source file, relative to its collection's root.
    #[serde(default)]
    pub file: String,
    /// The collection's commit, where it has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit: String,
    /// The search as written, before macro expansion.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub search: String,
}

/// One MITRE ATT&CK technique with the tactic the detection maps it to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Technique {
    pub id: String,
    pub name: String,
    pub tactic: String,
}

/// A field of the output row that names a risk or threat object, with its Splunk type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectField {
    pub field: String,
    pub kind: String,
}

/// The ESCU metadata a detection carries, rendered into every alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// ESCU detection id (a UUID).
    pub id: String,
    /// The detection's key in the per-host configuration.
    pub key: String,
    pub name: String,
    pub version: u32,
    /// ESCU analytic type: `TTP`, `Anomaly`, `Hunting`, ...
    pub analytic_type: String,
    /// `production`, `experimental`, `deprecated`.
    pub status: String,
    pub impact: u32,
    pub confidence: u32,
    /// `None` where ESCU names no victim (a Hunting search with only threat objects): the
    /// alert then carries no risk object, as Splunk ES writes no risk event for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_object: Option<ObjectField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_object: Option<ObjectField>,
    /// The risk message; `$field$` tokens are filled from the row (or the event).
    pub message: String,
    /// Message tokens that name no row field, mapped to the field they mean.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_aliases: Vec<(String, String)>,
    #[serde(default)]
    pub mitre_attack: Vec<Technique>,
    #[serde(default)]
    pub kill_chain_phases: Vec<String>,
    #[serde(default)]
    pub nist: Vec<String>,
    #[serde(default)]
    pub cis20: Vec<String>,
    #[serde(default)]
    pub threat_actors: Vec<String>,
    #[serde(default)]
    pub analytic_stories: Vec<String>,
    /// What a Sigma rule says of itself beyond the fields above; `None` for ESCU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<SigmaMetadata>,
}

/// A Sigma rule's own metadata, shown in every match as Sigma users know it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaMetadata {
    /// `informational`, `low`, `medium`, `high`, `critical`.
    pub level: String,
    /// The rule's `tags`, as written (`attack.t1562.008`, `attack.defense-evasion`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The rule's author(s), whom the Detection Rule License asks derived works to credit.
    #[serde(default)]
    pub author: String,
}

impl Metadata {
    /// ESCU's formula: impact x confidence / 100.
    pub fn risk_score(&self) -> u32 {
        self.impact * self.confidence / 100
    }
}

/// A boolean over one record or row with the `search` command's semantics: values compared
/// case-insensitively with `*` wildcards, a multivalue field matching when any value does,
/// `field!=v` only where the field exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Compare { field: String, op: CompareOp, value: String },
    In { field: String, values: Vec<String> },
    /// A Sigma test of a raw record field ([`sigma`]): Sigma's semantics, not `search`'s.
    Sigma { field: String, test: sigma::SigmaTest },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// An `eval`/`where` expression with eval's semantics: exact, case-sensitive comparisons,
/// numbers where both sides read as numbers, null propagating (a null condition is false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Expr {
    Str(String),
    Num(f64),
    Field(String),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary { op: BinaryOp, left: Box<Expr>, right: Box<Expr> },
    Call { func: Func, args: Vec<Expr> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryOp {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    /// `.`: string concatenation.
    Concat,
}

/// The eval functions the engine implements, by Splunk name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Func {
    If,
    Case,
    Coalesce,
    Isnull,
    Isnotnull,
    /// `match(value, regex)`: unanchored regex test.
    Match,
    /// `like(value, pattern)`: SQL `%`/`_` pattern.
    Like,
    /// `in(value, v1, v2, ...)`: whether a value of `value` equals one of the others, as `=`
    /// compares (`value=v1 OR value=v2 ...`, read once).
    In,
    Lower,
    Upper,
    Len,
    Tostring,
    Tonumber,
    Floor,
    Round,
    Abs,
    Mvcount,
    Mvindex,
    Mvappend,
    Mvjoin,
    Split,
    Strftime,
    /// `null()`.
    Null,
    /// `min(x, ...)`: the least of its arguments' values, numbers below texts, as eval's does.
    Min,
    /// `now()`: after `stats`, the end of the window being closed (the search's run time, in
    /// event time); null before it.
    Now,
    /// `relative_time(t, "-70m@m")`: `t` moved by the offset, then snapped to the unit's start.
    RelativeTime,
}

/// One step of the pipeline over a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// `search`: keep the row when the condition holds.
    Search(Cond),
    /// `where`: keep the row when the expression is true.
    Where(Expr),
    /// `eval a=..., b=...`: assignments in order, each seeing the ones before.
    Eval(Vec<Assign>),
    /// `rename a as b`: `b` takes `a`'s value (null included) and `a` goes.
    Rename(Vec<Rename>),
    /// `fillnull value=V f1 f2`: null fields among `fields` become `value`.
    Fillnull { value: String, fields: Vec<String> },
    /// `spath input=F output=O path=P`: `O` = the values at `P` in the JSON text of `F`.
    Spath { input: String, output: String, path: String },
    /// `spath input=F` without a path: every value in the JSON text of `F`, each as a field
    /// named by its path (`a.b`, `a{}.b` below arrays), as spath extracts them.
    SpathAll { input: String },
    /// `rex field=F "(?<name>...)"`: each named group of the first match sets its field.
    Rex { field: String, regex: String },
    /// `mvexpand F`: one row per value of `F`.
    Mvexpand(String),
    /// `convert timeformat=F ctime(field)`: epoch seconds to text.
    Ctime { field: String, format: String },
    /// `table`/`fields`: keep only these fields, in this order.
    Table(Vec<String>),
    /// `eventstats F(x) as y ... by a b` after `stats`: every row of the window gets, per
    /// function, the statistic over the rows (of that window) with its values of the `by`
    /// fields; a row with a null `by` field gets none. Over the numeric values of `x` only
    /// (`count` without a field counts rows). The compiler emits it only where the window's rows
    /// are exactly the rows the search's `eventstats` sees.
    Eventstats { functions: Vec<Aggregation>, by: Vec<String> },
    /// `append [search ...]` over the same records: each branch takes its own copy of the row
    /// (the event as selected) and runs its steps, the first branch's being the main search's
    /// (its own selection a `search` step first); the rows of every branch go on, in branch
    /// order. An event both branches keep gives a row in each, as `append` would.
    Union(Vec<Vec<Step>>),
    /// `lookup previously_seen_<x> <key> OUTPUT firstTimeSeen, lastTimeSeen, enough_data` over
    /// the rule's own first-seen set ([`FirstSeen`]) as it stood before the window being closed:
    /// a row whose `key` the set has gets its first and last time (epoch seconds) and whether
    /// the set has enough data (1 or 0); other rows get nulls, as a lookup without a match.
    /// Each output is `None` where the search does not ask for it.
    FirstSeen {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_time: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_time: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enough_data: Option<String>,
    },
    /// `join <by> [summary M] | where cardinality >= N | apply M threshold=T` over the rule's
    /// density baseline ([`Density`]) as it stood before the window being closed: a row whose
    /// key (its values of the baseline's `by` fields) has a fit of at least N rows gets
    /// `cardinality`, `IsOutlier(<field>)` (1 where its value lies outside the fit's bounds,
    /// else 0) and `BoundaryRanges` (`-Infinity:<lower>:<T/2>` and `<upper>:Infinity:<T/2>`,
    /// the bounds rounded to 4 decimals, as MLTK writes them); any other row is dropped, as the
    /// inner join and the `where` drop it.
    Density,
}

/// `<main search> | join F1 F2 [search <subsearch> | stats ... by F1 F2 ...]` with Splunk's
/// defaults (`type=inner`, `max=1`, `overwrite=true`), the subsearch over the same time range:
/// the rule's window. The rule's `selection` admits both searches' events; its `steps`, `stats`
/// and `after` are the subsearch (its `steps` start with a `search` step of its own selection),
/// and `steps` here are the main search's, per event (likewise starting with its selection),
/// ending in `table`. Each main row waits in its window, among the `stats` groups, until the
/// window closes; then every main row with a value in each join field takes the first
/// subsearch row (in `stats` order) with the same texts in them, the subsearch row's non-null
/// fields overwriting its own, and rows without a match are dropped (an inner join).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// The join fields, which both rows must have.
    pub fields: Vec<String>,
    /// The main search's steps over each selected event, the last a `table` naming every join field.
    pub steps: Vec<Step>,
}

/// A first-seen set learned in-stream, standing for a `previously_seen_*` lookup and the
/// baseline searches that fill it (see `first_seen.rs`). After each window closes and its rows
/// are judged, every group of it is learned: its value of `group_field` as the key, seen from
/// its first to its last event. Host settings (`detections.<key>.first_seen`) may change the
/// horizon, the warm-up and the cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstSeen {
    /// The `stats` group field whose values are the keys.
    pub group_field: String,
    /// Keys last seen before this many days before the window's day are forgotten (the
    /// baseline's `-<n>d@d` forget window).
    pub horizon_days: i64,
    /// The set has enough data once its oldest key was first seen this many days before the
    /// window's day (the baseline's `globalFirstTime <= relative_time(now(), "-<n>d@d")`).
    pub warm_up_days: i64,
    /// The baseline searches this set stands for, for provenance.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub baseline: String,
}

/// A per-key normal distribution learned in-stream (MLTK's `DensityFunction dist=norm`),
/// standing for the model a `fit` baseline search keeps (`summary M`, `apply M`; see
/// `baseline.rs`). After each window closes and its rows are judged (`Step::Density`), every
/// row that reached the step is learned: its value of `field`, under its key, on the window's
/// day. A row of a late event's group is neither judged nor learned (one event is no count);
/// one of a group the caps closed early is judged, not learned (its count is a lower bound).
/// Host settings (`detections.<key>.mode`, `threshold`, `min_cardinality`, `horizon_days`,
/// `max_baselines`, `utc_offset_minutes`) may change the values here and the time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Density {
    /// The MLTK model the search names, for provenance.
    pub model: String,
    /// The row field whose values are fitted and judged.
    pub field: String,
    /// The fields a fit is kept per: the `join` fields of `join ... [summary M]`.
    pub by: Vec<String>,
    /// `apply M threshold=T`: the share of the distribution outside its bounds, both tails together.
    pub threshold: f64,
    /// `where cardinality >= N` after the summary: a fit of fewer rows judges nothing.
    pub min_cardinality: u64,
    /// The days of history a fit spans (the baseline search's `-90d@d`); `None`: all it has seen.
    #[serde(default)]
    pub horizon_days: Option<i64>,
    /// The baseline search this stands for, for provenance.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub baseline: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    pub field: String,
    pub expr: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

/// `stats F(x) as y ... by a b` per event-time window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// The window: the search's `bin span` when `_time` is a `by` field (the row's `_time` is
    /// then the bin's start); otherwise `None`, the host's scheduled window (hourly by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_seconds: Option<i64>,
    /// Group fields, `_time` included where the search groups by it. An event with a null group
    /// field joins no group, as in Splunk.
    pub by: Vec<String>,
    pub functions: Vec<Aggregation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    pub func: AggFunc,
    /// The input field; `None` for `count`. `values` also takes `prefix*` with the name `*`
    /// (`values(requestParameters.*) as *`): one column per field of the record under the
    /// prefix (as the add-on's JSON extraction names them: `a.b`, `a{}` for arrays), named by
    /// the rest of its name, columns in name order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The output column (`as`, or Splunk's default name such as `values(userAgent)`).
    pub name: String,
}

/// The stats functions the engine keeps state for. `min`/`max`/`earliest`/`latest` take `_time`
/// only: they are the group's first and last event time. `avg`, `stdev` and `sum` (and `min`,
/// `max`, `count` of any field) are `eventstats` functions only, over a window's result rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggFunc {
    Count,
    Values,
    Dc,
    Min,
    Max,
    Earliest,
    Latest,
    Avg,
    /// The sample standard deviation (n - 1); 0 for one value.
    Stdev,
    Sum,
}

/// A compiled collection of rules with its provenance, as committed under `rules/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// The collection: `escu`, `sigma`.
    pub collection: String,
    /// Repository and commit the rules were compiled from.
    pub origin: String,
    pub license: String,
    pub rules: Vec<Rule>,
}

/// Reads a rule file (one rule, a list of rules, or a pack), with the file, line and reason
/// when it is not one.
pub fn parse_rule_file(name: &str, bytes: &[u8]) -> Result<Vec<Rule>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("{name}:{}:{}: not valid JSON: {e}", e.line(), e.column()))?;
    fn read<T: serde::de::DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, String> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let inner = e.inner();
            let message = inner.to_string();
            // serde_json ends its message with the position, which leads here instead.
            let reason = message.rsplit_once(" at line ").map_or(message.as_str(), |(reason, _)| reason);
            format!("{name}:{}:{}: at `{}`: {reason}", inner.line(), inner.column(), e.path())
        })
    }
    match &value {
        serde_json::Value::Object(o) if o.contains_key("rules") => read::<Pack>(name, bytes).map(|p| p.rules),
        serde_json::Value::Object(_) => read::<Rule>(name, bytes).map(|r| vec![r]),
        serde_json::Value::Array(_) => read::<Vec<Rule>>(name, bytes),
        _ => Err(format!("{name}: a rule file holds a rule, a list of rules or a pack")),
    }
}

/// Whether `cond` holds for `event`, with the `search` semantics rules select by: for explaining
/// a selection part by part (`tripline explain`).
pub fn test_condition(cond: &Cond, event: &crate::cloudtrail::Event<'_>) -> Result<bool, crate::cloudtrail::FieldError> {
    eval::test(cond, &eval::Row::of_event(event, eval::Locale::default()))
}
