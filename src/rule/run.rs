//! A [`Rule`] as the engine runs it: a [`Detection`] whose every decision comes from the data.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{json, Map, Value};
use smallvec::{smallvec, SmallVec};

use super::density::{DensityBaseline, BASELINE_FORMAT, SETTINGS as DENSITY_SETTINGS};
use super::eval::{run_steps, test, Locale, Regexes, Row, Rows};
use super::sigma::SigmaTest;
use super::specialize::{specialize, Specialized};
use super::value::Val;
use super::{AggFunc, CompareOp, Cond, Expr, Join, Metadata, Rule, Step};
use crate::aggregate::{ClosedGroup, GroupStats};
use crate::cloudtrail::{Event, FieldError};
use crate::config::{parse_at, ConfigError};
use crate::detection::{Detection, Selected, Selection, INDEX_FIELDS};
use crate::first_seen::FirstSeenSet;
use crate::digest::fnv1a64;
use crate::time::format_rfc3339;

#[derive(Debug)]
pub struct RuleDetection {
    rule: Rule,
    regexes: Regexes,
    /// The `stats` group fields other than `_time` (which is the window).
    group_fields: Vec<String>,
    /// The input field of each `values()`/`dc()`, in the order of `GroupStats::values`.
    value_fields: Vec<ValueField>,
    /// The fields the per-event steps set (eval assignments, both sides of renames): room made
    /// at once in a selected event's row, which would otherwise grow field by field.
    step_fields: usize,
    /// A digest of what decides the content of the rule's windows (selection, steps, stats),
    /// saved with them: windows saved under another form of the rule are not restored.
    shape: String,
    /// The selection and steps settled for each literal name of the rule's index that settles
    /// any ([`specialize`]), in name order.
    by_name: Vec<(String, Specialized)>,
    /// The first-seen set, for a rule with one.
    first_seen: Option<Learned>,
    /// The density baseline, for a rule with one.
    density: Option<DensityBaseline>,
    /// How the host reads the rule's `user` and times.
    locale: Locale,
    /// Rows of a `join`'s main search not emitted because of [`MAX_ALIKE_ROWS`].
    join_rows_cut: u64,
}

/// A `values()`/`dc()` input, and whether it is the last read of its field when an event is
/// selected (no later column reads it): then a value a step set is moved out of the row, not
/// copied.
#[derive(Debug)]
struct ValueField {
    name: String,
    last_read: bool,
}

/// The first part of every group key of a rule with a `join`: which side the group is of. A
/// main row is a group of its own kind in the same windows, under the same caps, saved in the
/// same snapshot as the `stats` groups.
const JOIN_MAIN: &str = "m";
const JOIN_STATS: &str = "s";

/// At most this many rows from one group of alike main rows of a `join` (each is a row of
/// Splunk's result): a flood of identical records must not build a flood of alerts at once.
/// The rest are counted (`join_rows_cut`).
const MAX_ALIKE_ROWS: u64 = 100;

/// Identifies a first-seen set's documents (the state it saves, the model `tripline fit` writes).
pub const FIRST_SEEN_FORMAT: &str = "tripline-first-seen";

/// A rule's first-seen set and how it learns.
#[derive(Debug)]
struct Learned {
    set: FirstSeenSet,
    /// The index of the set's key among the group key's fields.
    key_index: usize,
    settings: FirstSeenSettings,
}

/// `detections.<key>.first_seen` in the host's configuration; the rule's values by default.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FirstSeenSettings {
    horizon_days: i64,
    warm_up_days: i64,
    /// At most this many keys; beyond, the tenth least recently seen are forgotten and counted.
    max_keys: usize,
}

/// Keys of 1 KiB at most (`limits.max_value_bytes`): 100,000 of them stay within about 100 MiB
/// in the worst case and a few MiB for addresses.
const DEFAULT_MAX_KEYS: usize = 100_000;

impl RuleDetection {
    /// Prepares a rule to run; rejects what the engine cannot run as written.
    pub fn new(rule: Rule) -> Result<RuleDetection, String> {
        let mut regexes = Regexes::default();
        if rule.after.iter().any(|s| matches!(s, Step::Union(_))) {
            return Err("`append` after `stats` is not supported".into());
        }
        let main_steps = rule.join.iter().flat_map(|j| &j.steps);
        for step in flat_steps(rule.steps.iter().chain(&rule.after).chain(main_steps)) {
            if let Step::Rex { regex, .. } = step {
                regexes.add(regex)?;
            }
            for expr in step_exprs(step) {
                collect_regexes(expr, &mut regexes)?;
            }
        }
        for step in rule.steps.iter().chain(&rule.after) {
            let Step::Eventstats { functions, .. } = step else { continue };
            if rule.stats.is_none() || rule.steps.contains(step) {
                return Err("`eventstats` is supported after `stats` only".into());
            }
            if rule.tag_each_event {
                return Err("`eventstats` after `stats` needs the window's rows: its events cannot be tagged one by one".into());
            }
            for agg in functions {
                match (agg.func, &agg.field) {
                    (AggFunc::Count, _) | (AggFunc::Avg | AggFunc::Stdev | AggFunc::Sum | AggFunc::Min | AggFunc::Max, Some(_)) => {}
                    (func, field) => return Err(format!("eventstats function {func:?} over {field:?} is not supported")),
                }
            }
        }
        if rule.after.iter().any(|s| matches!(s, Step::Mvexpand(_))) {
            return Err("`mvexpand` after `stats` is not supported".into());
        }
        let mut group_fields = Vec::new();
        let mut value_fields = Vec::new();
        if let Some(stats) = &rule.stats {
            if stats.span_seconds.is_some_and(|s| s <= 0 || 86_400 % s != 0) {
                return Err("the `bin` span must divide a day".into());
            }
            if stats.span_seconds.is_some() != stats.by.iter().any(|f| f == "_time") {
                return Err("a `bin` span needs `_time` among the `by` fields, and `_time` a span".into());
            }
            group_fields = stats.by.iter().filter(|f| *f != "_time").cloned().collect();
            for agg in &stats.functions {
                match (agg.func, agg.field.as_deref()) {
                    (AggFunc::Count, None) => {}
                    (AggFunc::Values, Some("_raw")) => return Err("values(_raw) is not supported; dc(_raw) is".into()),
                    (AggFunc::Values, Some(field)) if field.contains('*') => {
                        let prefix = field.strip_suffix('*').filter(|p| p.ends_with('.') && !p.contains('*'));
                        if prefix.is_none() || agg.name != "*" {
                            return Err(format!("wildcard values({field}) as {}: only `values(object.*) as *` is supported", agg.name));
                        }
                        if !rule.steps.is_empty() {
                            return Err(format!("wildcard values({field}) reads the record's own fields: no step may come before it"));
                        }
                        value_fields.push(field.to_string());
                    }
                    (AggFunc::Values | AggFunc::Dc, Some(field)) => value_fields.push(field.to_string()),
                    (AggFunc::Min | AggFunc::Max | AggFunc::Earliest | AggFunc::Latest, Some("_time")) => {}
                    (func, field) => return Err(format!("stats function {func:?} over {field:?} is not supported")),
                }
            }
        }
        let lookups = rule.after.iter().filter(|s| matches!(s, Step::FirstSeen { .. })).count();
        let first_seen = match (&rule.first_seen, lookups) {
            (None, 0) => None,
            (Some(spec), 1) => {
                let key_index = group_fields
                    .iter()
                    .position(|f| *f == spec.group_field)
                    .ok_or_else(|| format!("the first-seen set's key `{}` is not a `stats` group field", spec.group_field))?;
                if rule.tag_each_event {
                    return Err("a first-seen lookup needs the window's rows: its events cannot be tagged one by one".into());
                }
                let settings =
                    FirstSeenSettings { horizon_days: spec.horizon_days, warm_up_days: spec.warm_up_days, max_keys: DEFAULT_MAX_KEYS };
                Some(Learned { set: FirstSeenSet::new(), key_index, settings })
            }
            _ => return Err("a rule has a first-seen set exactly when it has one `first_seen` step after `stats`".into()),
        };
        if rule.steps.iter().any(|s| matches!(s, Step::FirstSeen { .. })) {
            return Err("the first-seen lookup is supported after `stats` only".into());
        }
        let judged = rule.after.iter().filter(|s| matches!(s, Step::Density)).count();
        let density = match (&rule.density, judged) {
            (None, 0) => None,
            (Some(spec), 1) => {
                if rule.tag_each_event || rule.join.is_some() || rule.first_seen.is_some() {
                    return Err("a density baseline needs the window's rows, and is a rule's only baseline: no tag per event, `join` or first-seen set beside it".into());
                }
                if spec.by.is_empty() {
                    return Err("a density baseline needs `by` fields".into());
                }
                let path = format!("detections.{}", rule.metadata.key);
                Some(DensityBaseline::new(spec, Map::new(), &path).map_err(|e| e.message)?)
            }
            _ => return Err("a rule has a density baseline exactly when it has one `density` step after `stats`".into()),
        };
        if rule.steps.iter().any(|s| matches!(s, Step::Density)) {
            return Err("the density step is supported after `stats` only".into());
        }
        if let Some(join) = &rule.join {
            check_join(join, &rule)?;
        }
        let locale = Locale::default();
        let shape = shape_of(&rule, locale)?;
        let value_fields = value_fields
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let read_later = value_fields[i + 1..].iter().any(|later| later == name || later.ends_with('*'));
                ValueField { name: name.clone(), last_read: !read_later }
            })
            .collect();
        let step_fields = rule
            .steps
            .iter()
            .map(|step| match step {
                Step::Eval(assigns) => assigns.len(),
                Step::Rename(renames) => 2 * renames.len(),
                _ => 0,
            })
            .sum();
        let mut by_name: Vec<_> = rule
            .event_names
            .iter()
            .filter(|name| !name.ends_with('*'))
            .filter_map(|name| Some((name.clone(), specialize(&rule.selection, &rule.steps, name, &regexes)?)))
            .collect();
        by_name.sort_by(|a, b| a.0.cmp(&b.0));
        by_name.dedup_by(|a, b| a.0 == b.0);
        Ok(RuleDetection { rule, regexes, group_fields, value_fields, step_fields, shape, by_name, first_seen, density, locale, join_rows_cut: 0 })
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The rule configured by its own settings in the host's configuration (`detections.<key>`
    /// without `enabled`/`suppress`): `user_field` and `utc_offset_minutes` ([`Locale`]) for
    /// any rule, `first_seen` for a rule with a first-seen set, and the settings of a density
    /// baseline ([`DENSITY_SETTINGS`]) beside them for a rule with one.
    pub fn configured(rule: Rule, settings: &Map<String, Value>) -> Result<RuleDetection, ConfigError> {
        let key = rule.metadata.key.clone();
        let path = format!("detections.{key}");
        let mut own = settings.clone();
        let first_seen = own.remove("first_seen");
        let mut locale = Locale::default();
        if let Some(user) = own.remove("user_field") {
            locale.user = parse_at(&format!("{path}.user_field"), user)?;
        }
        if let Some(offset) = own.remove("utc_offset_minutes") {
            locale.utc_offset_minutes = parse_at(&format!("{path}.utc_offset_minutes"), offset)?;
            if !(-1440..=1440).contains(&locale.utc_offset_minutes) {
                return Err(ConfigError::new(format!("{path}.utc_offset_minutes"), "must be -1440 to 1440"));
            }
        }
        let density: Map<String, Value> = DENSITY_SETTINGS.iter().filter_map(|name| Some((name.to_string(), own.remove(*name)?))).collect();
        if let Some(name) = own.keys().next() {
            // Named in the message: `tripline fit` tells a detection that takes no `mode` by it.
            return Err(ConfigError::new(
                format!("{path}.{name}"),
                format!(
                    "unknown setting `{name}`; a rule takes only `enabled`, `suppress`, `user_field`, `utc_offset_minutes`, \
                     with a first-seen set `first_seen`, and with a density baseline {}",
                    DENSITY_SETTINGS.map(|s| format!("`{s}`")).join(", ")
                ),
            ));
        }
        let mut detection = RuleDetection::new(rule).map_err(|e| ConfigError::new(&path, e))?;
        if let Some(name) = density.keys().next() {
            let Some(spec) = &detection.rule.density else {
                return Err(ConfigError::new(format!("{path}.{name}"), format!("`{name}` is a setting of a density baseline, which this rule has not")));
            };
            detection.density = Some(DensityBaseline::new(spec, density, &path)?);
        }
        if locale != Locale::default() {
            detection.shape = shape_of(&detection.rule, locale).map_err(|e| ConfigError::new(&path, e))?;
            detection.locale = locale;
        }
        match (first_seen, &mut detection.first_seen) {
            (None, _) => {}
            (Some(_), None) => return Err(ConfigError::new(format!("detections.{key}.first_seen"), "this rule has no first-seen set")),
            (Some(value), Some(learned)) => {
                let mut merged = serde_json::to_value(learned.settings).map_err(|e| ConfigError::new(format!("detections.{key}"), e.to_string()))?;
                if let (Some(into), Some(from)) = (merged.as_object_mut(), value.as_object()) {
                    into.extend(from.clone());
                }
                let path = format!("detections.{key}.first_seen");
                learned.settings = serde_json::from_value(merged).map_err(|e| ConfigError::new(&path, e.to_string()))?;
                let s = learned.settings;
                if s.horizon_days < 1 || s.warm_up_days < 0 || s.max_keys == 0 {
                    return Err(ConfigError::new(path, "horizon_days must be at least 1, warm_up_days at least 0, max_keys at least 1"));
                }
            }
        }
        Ok(detection)
    }

    /// Whether the `after` steps need the window's rows together: an `eventstats`, or a
    /// baseline's step, which reads the baseline as it stood before the window.
    fn window_steps(&self) -> bool {
        self.rule.after.iter().any(window_step)
    }

    /// The `lookup` of the first-seen set for every row, as the set stands (before this
    /// window is learned), with `now` the window's end.
    fn look_up<'r>(&self, step: &'r Step, rows: &mut [Row<'r, 'static>], now: i64) {
        let (Step::FirstSeen { key, first_time, last_time, enough_data }, Some(learned)) = (step, &self.first_seen) else { return };
        let enough = learned.set.enough_data(now, learned.settings.warm_up_days);
        for row in rows {
            let seen = row.get(key).ok().and_then(|v| v.text()).and_then(|k| learned.set.get(&k));
            let outputs = [
                (first_time, seen.map(|(first, _)| first as f64)),
                (last_time, seen.map(|(_, last)| last as f64)),
                (enough_data, seen.map(|_| if enough { 1.0 } else { 0.0 })),
            ];
            for (name, value) in outputs {
                if let Some(name) = name {
                    row.set(name.as_str(), Some(value.map_or(Val::Null, Val::Num)));
                }
            }
        }
    }

    /// Learns every group of a closed window into the first-seen set, then forgets what is
    /// past the horizon; or learns what the density step noted.
    fn learn(&mut self, groups: &[ClosedGroup]) {
        if let Some(density) = &mut self.density {
            density.learn();
        }
        let Some(learned) = &mut self.first_seen else { return };
        for group in groups {
            if let Some(key) = group.key.get(learned.key_index) {
                learned.set.learn(key, group.stats.first, group.stats.last, learned.settings.max_keys);
            }
        }
        if let Some(now) = groups.iter().map(|g| g.window_end).max() {
            learned.set.expire(now, learned.settings.horizon_days);
        }
    }
}

/// A digest of what decides the content of the rule's windows under `locale` (which reads
/// `user` and times). A rule without `join`, read as by default, keeps the digest it had before
/// joins and locales existed: its saved windows stay valid.
fn shape_of(rule: &Rule, locale: Locale) -> Result<String, String> {
    let form = match (&rule.join, locale == Locale::default()) {
        (None, true) => serde_json::to_vec(&(&rule.selection, &rule.steps, &rule.stats)),
        (Some(join), true) => serde_json::to_vec(&(&rule.selection, &rule.steps, &rule.stats, join)),
        (join, false) => serde_json::to_vec(&(&rule.selection, &rule.steps, &rule.stats, join, locale)),
    };
    Ok(format!("{:016x}", fnv1a64(&form.map_err(|e| e.to_string())?)))
}

/// A step over the window's rows together.
fn window_step(step: &Step) -> bool {
    matches!(step, Step::Eventstats { .. } | Step::FirstSeen { .. } | Step::Density)
}

/// What the engine needs of a `join`: main rows whole (a `table` with the join fields), per-event
/// steps on that side, and a `stats` side whose rows come together when the window closes.
fn check_join(join: &Join, rule: &Rule) -> Result<(), String> {
    let Some(Step::Table(columns)) = join.steps.last() else {
        return Err("a `join`'s main search must end in `table`: its rows wait in the window whole".into());
    };
    if join.fields.is_empty() {
        return Err("a `join` needs join fields".into());
    }
    if let Some(field) = join.fields.iter().find(|f| !columns.contains(f)) {
        return Err(format!("the join field `{field}` is not a column of the main search's `table`"));
    }
    if join.steps.iter().any(|s| matches!(s, Step::Eventstats { .. } | Step::FirstSeen { .. })) {
        return Err("a `join`'s main search takes per-event steps only".into());
    }
    if rule.stats.is_none() {
        return Err("a `join` needs a subsearch with `stats`".into());
    }
    if rule.tag_each_event || rule.first_seen.is_some() {
        return Err("a `join` waits for the window's rows: its events cannot be tagged one by one, nor feed a first-seen set".into());
    }
    Ok(())
}

/// A main row's column as a part of its group key: empty for null, `=` and the text for one
/// value, `~` and the JSON for anything else (a multivalue field, a number). A text cut by
/// `max_value_bytes` still reads back (as the text it was cut to).
pub(super) fn encode_column(value: Val) -> String {
    encode_json(value.into_json())
}

/// [`encode_column`] of a value as JSON holds it (a saved document's key part).
pub(super) fn encode_json(value: Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => format!("={text}"),
        other => format!("~{other}"),
    }
}

pub(super) fn decode_column(part: &str) -> Value {
    match part.split_at_checked(1) {
        Some(("=", text)) => Value::String(text.to_string()),
        Some(("~", json)) => serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.to_string())),
        _ => Value::Null,
    }
}

/// The values of the join fields in a row, where each is one text (else the row joins nothing).
fn join_key(fields: &[String], row: &Map<String, Value>) -> Option<Vec<String>> {
    fields.iter().map(|f| row.get(f).and_then(Value::as_str).map(str::to_string)).collect()
}

/// Every step, those inside `append` branches included.
fn flat_steps<'r>(steps: impl Iterator<Item = &'r Step>) -> Vec<&'r Step> {
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::Union(branches) => out.extend(flat_steps(branches.iter().flatten())),
            other => out.push(other),
        }
    }
    out
}

fn step_exprs(step: &Step) -> Vec<&Expr> {
    match step {
        Step::Where(e) => vec![e],
        Step::Eval(assigns) => assigns.iter().map(|a| &a.expr).collect(),
        _ => Vec::new(),
    }
}

/// Compiles the pattern of every `match()` with a literal pattern when the rule loads (a bad
/// one rejects the rule); patterns computed per event are compiled as they come.
fn collect_regexes(expr: &Expr, out: &mut Regexes) -> Result<(), String> {
    match expr {
        Expr::Call { func: super::Func::Match, args } => {
            if let Some(Expr::Str(pattern)) = args.get(1) {
                out.add(pattern).map_err(|e| format!("match() {e}"))?;
            }
            args.iter().try_for_each(|a| collect_regexes(a, out))
        }
        Expr::Call { args, .. } => args.iter().try_for_each(|a| collect_regexes(a, out)),
        Expr::Not(e) | Expr::Neg(e) => collect_regexes(e, out),
        Expr::Binary { left, right, .. } => {
            collect_regexes(left, out)?;
            collect_regexes(right, out)
        }
        Expr::Str(_) | Expr::Num(_) | Expr::Field(_) => Ok(()),
    }
}

/// `dc(_raw)` counts distinct records: a digest stands in for the text, which would be
/// kilobytes per event of state.
/// FNV rather than std's hasher, whose output may change between Rust releases: the digests
/// are saved state, and a rebuilt module must read them alike.
fn raw_digest(text: &str) -> String {
    format!("{:016x}", fnv1a64(text.as_bytes()))
}

impl Detection for RuleDetection {
    fn metadata(&self) -> &Metadata {
        &self.rule.metadata
    }

    fn event_names(&self) -> Vec<String> {
        self.rule.event_names.clone()
    }

    fn required_values(&self) -> Option<(&'static str, Vec<String>)> {
        let conjuncts = match &self.rule.selection {
            Cond::All(items) => items.as_slice(),
            other => std::slice::from_ref(other),
        };
        let literal = |cond: &Cond, wanted: &str| {
            let values = match cond {
                Cond::Compare { field, op: CompareOp::Eq, value } if field == wanted => std::slice::from_ref(value),
                Cond::In { field, values } if field == wanted => values.as_slice(),
                // A Sigma value without wildcards or escapes is equality, case-insensitive unless
                // `|cased` (which the index's folding over-approximates). Only an ASCII one: Sigma
                // folds a non-ASCII pattern's case beyond ASCII, and the index does not.
                Cond::Sigma { field, test: SigmaTest::Pattern { pattern, .. } } if field == wanted => {
                    return (pattern.is_ascii() && !pattern.contains(['*', '?', '\\'])).then(|| vec![pattern.clone()]);
                }
                _ => return None,
            };
            values.iter().all(|v| !v.contains('*')).then(|| values.to_vec())
        };
        INDEX_FIELDS.iter().find_map(|&field| Some((field, conjuncts.iter().find_map(|c| literal(c, field))?)))
    }

    fn window_seconds(&self) -> Option<i64> {
        self.rule.stats.as_ref().and_then(|s| s.span_seconds)
    }

    fn select<'a>(&self, event: &Event<'a>) -> Result<Selection<'a>, FieldError> {
        let (selection, steps) = match self.by_name.binary_search_by(|(name, _)| name.as_str().cmp(&event.event_name)) {
            Ok(at) => (&self.by_name[at].1.selection, self.by_name[at].1.steps.as_slice()),
            Err(_) => (&self.rule.selection, self.rule.steps.as_slice()),
        };
        let row = Row::of_event(event, self.locale);
        if !test(selection, &row)? {
            return Ok(Selection::new());
        }
        let row = row.with_room(self.step_fields);
        let mut selected = Selection::new();
        if let Some(join) = &self.rule.join {
            // The main search's rows, each a group of its own kind: its columns are the key.
            // A row without one text in a join field can join nothing: it is dropped, as a
            // null group field drops an event from `stats`.
            for main in run_steps(&join.steps, smallvec![Row::of_event(event, self.locale)], &self.regexes)? {
                let mut key = vec![Cow::Borrowed(JOIN_MAIN)];
                for column in self.main_columns() {
                    let value = main.get(column)?;
                    if join.fields.contains(column) && !matches!(value, Val::Str(_)) {
                        key.clear();
                        break;
                    }
                    key.push(Cow::Owned(encode_column(value)));
                }
                selected.push(Selected::Group { key: (!key.is_empty()).then_some(key), values: Vec::new() });
            }
        }
        let rows = if steps.is_empty() { smallvec![row] } else { run_steps(steps, smallvec![row], &self.regexes)? };
        selected.reserve(rows.len());
        for mut row in rows {
            if self.rule.stats.is_none() {
                selected.push(Selected::Row(result_row(row)));
                continue;
            }
            // A multivalue group field puts the event in one group per value, as `stats` does.
            let mut keys: SmallVec<[_; 1]> = smallvec![Vec::with_capacity(self.group_fields.len() + 1)];
            if self.rule.join.is_some() {
                keys[0].push(Cow::Borrowed(JOIN_STATS));
            }
            for field in &self.group_fields {
                if let ([key], Some(text)) = (keys.as_mut_slice(), row.event_text(field)) {
                    // The common case, one group and a field of one value: no list.
                    match text? {
                        Some(text) => key.push(text),
                        // A null group field puts the event in no group.
                        None => keys.clear(),
                    }
                    continue;
                }
                let mut texts = row.texts(field)?;
                if let ([key], [_]) = (keys.as_mut_slice(), texts.as_slice()) {
                    // The common case, one group and one value: no copies.
                    key.extend(texts.pop());
                    continue;
                }
                keys = keys.into_iter().flat_map(|k| texts.iter().map(move |t| [k.clone(), vec![t.clone()]].concat())).collect();
            }
            let mut values = Vec::with_capacity(self.value_fields.len());
            for ValueField { name, last_read } in &self.value_fields {
                if let Some(prefix) = name.strip_suffix('*') {
                    values.push(fields_under(&row, prefix)?.into_iter().map(Cow::Owned).collect());
                    continue;
                }
                let texts = if *last_read { row.take_texts(name)? } else { row.texts(name)? };
                values.push(if name == "_raw" { texts.iter().map(|t| Cow::Owned(raw_digest(t))).collect() } else { texts });
            }
            if keys.is_empty() {
                selected.push(Selected::Group { key: None, values });
                continue;
            }
            // The last group takes the values; others (of a multivalue group field) copy them.
            let last = keys.len() - 1;
            for (i, key) in keys.into_iter().enumerate() {
                let values = if i == last { std::mem::take(&mut values) } else { values.clone() };
                selected.push(Selected::Group { key: Some(key), values });
            }
        }
        Ok(selected)
    }

    fn tags_each_event(&self) -> bool {
        self.rule.tag_each_event
    }

    /// The one-event group's row: its renamed and computed fields fill the tag's message.
    fn tag_row(&self, selected: &Selected<'_>, time: i64) -> Option<Map<String, Value>> {
        match selected {
            Selected::Row(row) => Some(row.clone()),
            Selected::Group { key: Some(key), values } => {
                let stats = GroupStats {
                    count: 1,
                    first: time,
                    last: time,
                    values: values.iter().map(|v| v.iter().map(|t| t.to_string()).collect()).collect(),
                    ..GroupStats::default()
                };
                let start = self.rule.stats.as_ref().and_then(|s| s.span_seconds).map_or(time, |span| crate::time::window_start(time, span));
                let key = key.iter().map(|t| t.to_string()).collect();
                self.result_of(&mut ClosedGroup { window_start: start, window_end: start, key, stats, partial: None })
            }
            Selected::Group { key: None, .. } => None,
        }
    }

    fn on_close(&mut self, group: &ClosedGroup) -> Option<Map<String, Value>> {
        if self.rule.join.is_some() {
            // A group closed on its own (evicted by the caps, or a late event's) has no window's
            // rows to join with: it gives no row (the engine counts it).
            return None;
        }
        // A group closed on its own: its values are copied for the row.
        if self.window_steps() {
            return self.window_rows(&mut [group.clone()]).pop().flatten();
        }
        self.result_of(&mut group.clone())
    }

    /// A window's rows, made together: see [`RuleDetection::window_rows`] and, for a `join`,
    /// [`RuleDetection::joined`].
    fn on_close_window(&mut self, groups: &mut [ClosedGroup]) -> Vec<Vec<Map<String, Value>>> {
        if self.rule.join.is_some() {
            return self.joined(groups);
        }
        self.window_rows(groups).into_iter().map(|row| row.into_iter().collect()).collect()
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut counters = match (&self.first_seen, &self.density) {
            (Some(l), _) => vec![("first_seen_keys", l.set.len() as u64), ("evicted_first_seen", l.set.evicted()), ("expired_first_seen", l.set.expired())],
            (None, Some(density)) => density.counters(),
            (None, None) => Vec::new(),
        };
        if self.rule.join.is_some() {
            counters.push(("join_rows_cut", self.join_rows_cut));
        }
        counters
    }


    /// The shape of the rule; with a baseline, the baseline too, as a model document that
    /// `tripline fit` writes and a host's `models` load.
    fn save_state(&self) -> Value {
        if let Some(density) = &self.density {
            return density.document(&self.rule.metadata.key, &self.shape, self.locale);
        }
        match &self.first_seen {
            Some(l) => json!({
                "format": FIRST_SEEN_FORMAT,
                "version": 1,
                "detection": self.rule.metadata.key,
                "shape": self.shape,
                "first_seen": l.set,
            }),
            None => json!({ "shape": self.shape }),
        }
    }

    /// The first-seen set's changes (the rest of the document does not change while it runs).
    fn state_changes(&self) -> Option<Value> {
        self.first_seen.as_ref()?.set.changes().map(|changes| json!({ "first_seen": changes }))
    }

    fn state_saved(&mut self) {
        if let Some(learned) = &mut self.first_seen {
            learned.set.saved();
        }
    }

    /// Refuses windows saved under another form of the rule: their groups and columns would be
    /// read as this form's. State saved before shapes were (`null`) is taken as it is.
    fn restore_state(&mut self, state: &Value) -> Result<(), String> {
        if let Some(density) = &mut self.density {
            return density.restore(state, self.locale, &self.shape);
        }
        match state.get("shape").and_then(Value::as_str) {
            Some(shape) if shape != self.shape => return Err("the rule changed since its state was saved".into()),
            _ => {}
        }
        match (&mut self.first_seen, state.get("first_seen")) {
            (Some(learned), Some(set)) => {
                learned.set = FirstSeenSet::deserialize(set).map_err(|e| format!("first-seen set: {e}"))?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A baseline fitted offline (`tripline fit`) replaces the one learned so far.
    fn load_model(&mut self, model: &Value) -> Result<(), String> {
        let key = &self.rule.metadata.key;
        if let Some(density) = &mut self.density {
            if model.get("format").and_then(Value::as_str) != Some(BASELINE_FORMAT) {
                return Err(format!("detection {key} takes a `{BASELINE_FORMAT}` model"));
            }
            return density.restore(model, self.locale, &self.shape);
        }
        if self.first_seen.is_none() {
            return Err(format!("detection {key} takes no model"));
        }
        if model.get("format").and_then(Value::as_str) != Some(FIRST_SEEN_FORMAT) {
            return Err(format!("detection {key} takes a `{FIRST_SEEN_FORMAT}` model"));
        }
        if model.get("shape").and_then(Value::as_str).is_some_and(|s| s != self.shape) {
            return Err(format!("the model was fitted for another form of rule {key}"));
        }
        self.restore_state(model)
    }
}

impl RuleDetection {
    /// The rows of one window's groups, one per group. With an `eventstats` or a first-seen
    /// lookup after `stats`, the window's rows go through the `after` steps together: each
    /// `eventstats` sees every row of the window that reached it, and the lookup reads the set
    /// as it stood before the window, which then learns every group of the window.
    fn window_rows(&mut self, groups: &mut [ClosedGroup]) -> Vec<Option<Map<String, Value>>> {
        if !self.window_steps() {
            return groups.iter_mut().map(|g| self.result_of(g)).collect();
        }
        let now = groups.iter().map(|g| g.window_end).max().unwrap_or_default();
        let mut owners = Vec::with_capacity(groups.len());
        let mut rows = Vec::with_capacity(groups.len());
        for (i, group) in groups.iter_mut().enumerate() {
            if let Some(row) = stats_row(&self.rule, self.locale, group) {
                owners.push(i);
                rows.push(row);
            }
        }
        let mut after = self.rule.after.as_slice();
        while let Some(step) = after.first() {
            if matches!(step, Step::Eventstats { .. }) {
                match run_steps(&after[..1], Rows::from_vec(rows), &self.regexes).map(SmallVec::into_vec) {
                    Ok(r) => rows = r,
                    Err(_) => {
                        self.learn(groups);
                        return vec![None; groups.len()];
                    }
                }
                after = &after[1..];
                continue;
            }
            if matches!(step, Step::FirstSeen { .. }) {
                self.look_up(step, &mut rows, now);
                after = &after[1..];
                continue;
            }
            if matches!(step, Step::Density) {
                match &mut self.density {
                    Some(density) => density.judge(&mut owners, &mut rows, groups, self.locale),
                    // `new` pairs the step with its baseline; without one the inner join keeps nothing.
                    None => (owners, rows) = (Vec::new(), Vec::new()),
                }
                after = &after[1..];
                continue;
            }
            // The steps up to the next window step, row by row (each keeps or drops its row):
            // a row's group is known by its place.
            let (steps, rest) = after.split_at(after.iter().position(window_step).unwrap_or(after.len()));
            let (mut kept_owners, mut kept) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
            for (owner, row) in owners.into_iter().zip(rows) {
                if let Some(row) = run_steps(steps, smallvec![row], &self.regexes).ok().and_then(|r| r.into_iter().next()) {
                    kept_owners.push(owner);
                    kept.push(row);
                }
            }
            (owners, rows) = (kept_owners, kept);
            after = rest;
        }
        let mut out = vec![None; groups.len()];
        for (owner, row) in owners.into_iter().zip(rows) {
            out[owner] = Some(result_row(row));
        }
        self.learn(groups);
        out
    }

    /// What a selected group's key holds, for `tripline explain`: whether it is a `join`'s main
    /// row (else a `stats` group), and its fields with their values.
    pub fn describe_group(&self, key: &[Cow<'_, str>]) -> (bool, Vec<(String, Value)>) {
        let (main, parts) = match (&self.rule.join, key.split_first()) {
            (Some(_), Some((side, parts))) => (side == JOIN_MAIN, parts),
            _ => (false, key),
        };
        let fields = if main { self.main_columns() } else { &self.group_fields };
        let value = |part: &Cow<'_, str>| if main { decode_column(part) } else { Value::String(part.to_string()) };
        (main, fields.iter().cloned().zip(parts.iter().map(value)).collect())
    }

    /// The main columns of a `join`: those of its main search's closing `table`.
    fn main_columns(&self) -> &[String] {
        match self.rule.join.as_ref().and_then(|j| j.steps.last()) {
            Some(Step::Table(columns)) => columns,
            _ => &[],
        }
    }

    /// A `join`'s rows for one window: the `stats` groups' rows (the subsearch's, in `stats`
    /// order) first, then each main row with the first of them whose join fields hold the same
    /// texts, its non-null fields written over the main row's (`overwrite=true`), new ones
    /// after the main row's columns. A main row without a match gives none (`type=inner`).
    fn joined(&mut self, groups: &[ClosedGroup]) -> Vec<Vec<Map<String, Value>>> {
        let mut subsearch: Vec<ClosedGroup> = groups
            .iter()
            .filter(|g| g.key.first().is_some_and(|side| side == JOIN_STATS))
            .map(|g| ClosedGroup { key: g.key[1..].to_vec(), ..g.clone() })
            .collect();
        let rows = self.window_rows(&mut subsearch);
        let Some(join) = &self.rule.join else { return vec![Vec::new(); groups.len()] };
        // `max=1`: the first subsearch row of each join key.
        let mut first: BTreeMap<Vec<String>, Map<String, Value>> = BTreeMap::new();
        for row in rows.into_iter().flatten() {
            if let Some(key) = join_key(&join.fields, &row) {
                first.entry(key).or_insert(row);
            }
        }
        let mut cut = 0;
        let out = groups
            .iter()
            .map(|group| {
                let Some((JOIN_MAIN, parts)) = group.key.split_first().map(|(side, parts)| (side.as_str(), parts)) else { return Vec::new() };
                let mut row: Map<String, Value> = self.main_columns().iter().cloned().zip(parts.iter().map(|p| decode_column(p))).collect();
                let Some(found) = join_key(&join.fields, &row).and_then(|key| first.get(&key)) else { return Vec::new() };
                for (field, value) in found {
                    if !value.is_null() {
                        row.insert(field.clone(), value.clone());
                    }
                }
                // Alike main rows are one group: each is a row of Splunk's result.
                cut += group.stats.count.saturating_sub(MAX_ALIKE_ROWS);
                vec![row; group.stats.count.min(MAX_ALIKE_ROWS) as usize]
            })
            .collect();
        self.join_rows_cut += cut;
        out
    }

    /// The search's result row for a closed group, or `None` where an `after` step drops it.
    fn result_of(&self, group: &mut ClosedGroup) -> Option<Map<String, Value>> {
        let row = stats_row(&self.rule, self.locale, group)?;
        let rows = run_steps(&self.rule.after, smallvec![row], &self.regexes).ok()?;
        rows.into_iter().next().map(result_row)
    }
}

/// The `stats` row of a closed group, before the `after` steps; its `values()` columns are
/// moved out of the group's sets. Borrows the rule alone: a baseline's step changes the
/// detection's state while the rows live.
fn stats_row<'r>(rule: &'r Rule, locale: Locale, group: &mut ClosedGroup) -> Option<Row<'r, 'static>> {
    let stats = rule.stats.as_ref()?;
    let mut fields = Vec::with_capacity(stats.by.len() + stats.functions.len());
    let mut key = group.key.iter();
    for field in &stats.by {
        let value = if field == "_time" {
            Val::Num(group.window_start as f64)
        } else {
            Val::Str(key.next().cloned().unwrap_or_default())
        };
        fields.push((Cow::Borrowed(field.as_str()), value));
    }
    let mut sets = std::mem::take(&mut group.stats.values).into_iter();
    let s = &group.stats;
    // After `bin`, every event's `_time` is its bin's start, and so is any time statistic.
    let (first, last) = match stats.span_seconds {
        Some(_) => (group.window_start, group.window_start),
        None => (s.first, s.last),
    };
    for agg in &stats.functions {
        let value = match agg.func {
            AggFunc::Count => Val::Num(s.count as f64),
            AggFunc::Min | AggFunc::Earliest => Val::Num(first as f64),
            AggFunc::Max | AggFunc::Latest => Val::Num(last as f64),
            AggFunc::Values if agg.name == "*" => {
                // One column per field name, in name order; a name another column has
                // already is left to that column.
                let mut columns: Vec<(String, BTreeSet<String>)> = Vec::new();
                for entry in sets.next().into_iter().flatten() {
                    let (name, value) = entry.split_once(WILDCARD_SEP).unwrap_or((entry.as_str(), ""));
                    match columns.last_mut() {
                        Some((last, set)) if last == name => {
                            set.insert(value.to_string());
                        }
                        _ => columns.push((name.to_string(), BTreeSet::from([value.to_string()]))),
                    }
                }
                for (name, set) in columns {
                    if !fields.iter().any(|(f, _)| *f == name) {
                        fields.push((Cow::Owned(name), Val::multi(set.into_iter().collect())));
                    }
                }
                continue;
            }
            // values()' output as a row value: the set in order, one value alone, none null.
            AggFunc::Values => Val::multi(sets.next().into_iter().flatten().collect()),
            AggFunc::Dc => Val::Num(sets.next().map_or(0, |set| set.len()) as f64),
            AggFunc::Avg | AggFunc::Stdev | AggFunc::Sum => Val::Null,
        };
        fields.push((Cow::Borrowed(agg.name.as_str()), value));
    }
    Some(Row::of_fields(fields, locale).at(group.window_end))
}

/// Separates a field's name from its value in a wildcard `values()` column's set: sorted, the
/// set lists each name's values together, names in order.
const WILDCARD_SEP: char = '\u{0}';

/// The record's fields under `prefix` (which ends with `.`), as the add-on's JSON extraction
/// names them, each value as `name<SEP>value` with `name` the part after the prefix.
fn fields_under(row: &Row<'_, '_>, prefix: &str) -> Result<Vec<String>, FieldError> {
    let raw = row.get("_raw")?.into_texts();
    let mut flat = std::collections::BTreeMap::new();
    for text in raw {
        if let Ok(json) = serde_json::from_str::<Value>(&text) {
            super::eval::flatten(&json, String::new(), &mut flat);
        }
    }
    let mut out = Vec::new();
    for (name, values) in flat {
        if let Some(rest) = name.strip_prefix(prefix).filter(|r| !r.is_empty()) {
            out.extend(values.into_iter().map(|v| format!("{rest}{WILDCARD_SEP}{v}")));
        }
    }
    Ok(out)
}

/// A row as the search returns it: `_time`, epoch seconds inside the pipeline, leaves it as a
/// time, as Splunk prints `_time`.
fn result_row(row: Row<'_, '_>) -> Map<String, Value> {
    let mut row = row.into_map();
    let secs = match row.get("_time") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => crate::rule::value::parse_number(s),
        _ => None,
    };
    if let Some(secs) = secs {
        row.insert("_time".into(), Value::String(format_rfc3339(secs.floor() as i64)));
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::GroupStats;
    use crate::json::{RawObject, ScannedObject};
    use crate::rule::{Aggregation, Cond, CompareOp, ObjectField, Source, Stats};
    use serde_json::json;
    use std::borrow::Cow;

    /// ESCU's "AWS Exfiltration via Batch Service" as the compiler writes it.
    fn batch_rule() -> Rule {
        let agg = |func, field: Option<&str>, name: &str| Aggregation { func, field: field.map(str::to_string), name: name.into() };
        Rule {
            metadata: Metadata {
                id: "04455dd3-ced7-480f-b8e6-5469b99e98e2".into(),
                key: "aws_exfiltration_via_batch_service".into(),
                name: "AWS Exfiltration via Batch Service".into(),
                version: 3,
                analytic_type: "TTP".into(),
                status: "production".into(),
                impact: 80,
                confidence: 80,
                risk_object: Some(ObjectField { field: "aws_account_id".into(), kind: "other".into() }),
                threat_object: Some(ObjectField { field: "src_ip".into(), kind: "ip_address".into() }),
                message: "AWS Batch Job is created on account id - $aws_account_id$ from src_ip $src_ip$".into(),
                message_aliases: Vec::new(),
                mitre_attack: Vec::new(),
                kill_chain_phases: Vec::new(),
                nist: Vec::new(),
                cis20: Vec::new(),
                threat_actors: Vec::new(),
                analytic_stories: Vec::new(),
                sigma: None,
            },
            source: Source { kind: "escu".into(), file: String::new(), commit: String::new(), search: String::new() },
            event_names: vec!["JobCreated".into()],
            selection: Cond::Compare { field: "eventName".into(), op: CompareOp::Eq, value: "JobCreated".into() },
            steps: Vec::new(),
            stats: Some(Stats {
                span_seconds: None,
                by: ["src_ip", "aws_account_id", "eventName", "errorCode", "userAgent"].map(String::from).to_vec(),
                functions: vec![
                    agg(AggFunc::Count, None, "count"),
                    agg(AggFunc::Min, Some("_time"), "firstTime"),
                    agg(AggFunc::Max, Some("_time"), "lastTime"),
                    agg(AggFunc::Values, Some("serviceEventDetails.jobArn"), "job_arn"),
                    agg(AggFunc::Values, Some("serviceEventDetails.status"), "status"),
                ],
            }),
            after: ["firstTime", "lastTime"]
                .map(|f| Step::Ctime { field: f.into(), format: "%Y-%m-%dT%H:%M:%S".into() })
                .to_vec(),
            first_seen: None,
            density: None,
            enabled_by_default: None,
            join: None,
            tag_each_event: true,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_compiled_stats_search_gives_the_seed_row() {
        let json = r#"{"userIdentity":{"accountId":"111111111111","invokedBy":"s3.amazonaws.com"},
            "eventTime":"2023-04-24T19:15:26Z","eventName":"JobCreated","sourceIPAddress":"s3.amazonaws.com",
            "userAgent":"s3.amazonaws.com","serviceEventDetails":{"jobArn":"arn:a","status":"New"}}"#;
        let mut rule = RuleDetection::new(batch_rule()).unwrap();
        let record = ScannedObject::new(RawObject::new(json.as_bytes()).unwrap());
        let event = Event { record, event_name: Cow::Borrowed("JobCreated"), time: 1 };
        let selected = rule.select(&event).unwrap();
        let key = ["s3.amazonaws.com", "111111111111", "JobCreated", "success", "s3.amazonaws.com"];
        assert_eq!(
            selected.as_slice(),
            [Selected::Group { key: Some(key.iter().map(|s| (*s).into()).collect()), values: vec![smallvec!["arn:a".into()], smallvec!["New".into()]] }]
        );
        let group = ClosedGroup {
            window_start: 0,
            window_end: 3600,
            key: key.iter().map(|s| s.to_string()).collect(),
            stats: GroupStats {
                count: 2,
                first: 1_682_363_726,
                last: 1_682_363_800,
                values: vec![["b".to_string(), "a".to_string()].into(), ["New".to_string()].into()],
                ..GroupStats::default()
            },
            partial: None,
        };
        let row = rule.on_close(&group).unwrap();
        assert_eq!(
            Value::Object(row),
            json!({"src_ip": "s3.amazonaws.com", "aws_account_id": "111111111111", "eventName": "JobCreated",
                   "errorCode": "success", "userAgent": "s3.amazonaws.com", "count": 2,
                   "firstTime": "2023-04-24T19:15:26", "lastTime": "2023-04-24T19:16:40",
                   "job_arn": ["a", "b"], "status": "New"})
        );
        let columns: Vec<_> = rule.on_close(&group).unwrap().keys().cloned().collect();
        assert_eq!(columns, ["src_ip", "aws_account_id", "eventName", "errorCode", "userAgent", "count", "firstTime", "lastTime", "job_arn", "status"]);
    }

    #[test]
    fn a_bin_span_groups_by_its_window_and_filters_rows() {
        let mut rule = batch_rule();
        let stats = rule.stats.as_mut().unwrap();
        stats.span_seconds = Some(300);
        stats.by = vec!["_time".into(), "src_ip".into()];
        stats.functions = vec![Aggregation { func: AggFunc::Dc, field: Some("_raw".into()), name: "n".into() }];
        rule.after = vec![Step::Where(Expr::Binary {
            op: super::super::BinaryOp::Gt,
            left: Box::new(Expr::Field("n".into())),
            right: Box::new(Expr::Num(1.0)),
        })];
        let mut rule = RuleDetection::new(rule).unwrap();
        assert_eq!(rule.window_seconds(), Some(300));
        let group = |n: usize| ClosedGroup {
            window_start: 600,
            window_end: 900,
            key: vec!["1.2.3.4".into()],
            stats: GroupStats { count: n as u64, first: 600, last: 700, values: vec![(0..n).map(|i| i.to_string()).collect()], ..GroupStats::default() },
            partial: None,
        };
        assert_eq!(rule.on_close(&group(1)), None);
        assert_eq!(
            Value::Object(rule.on_close(&group(2)).unwrap()),
            json!({"_time": "1970-01-01T00:10:00Z", "src_ip": "1.2.3.4", "n": 2})
        );
    }

    #[test]
    fn rejects_what_it_cannot_run() {
        let mut rule = batch_rule();
        rule.stats.as_mut().unwrap().functions.push(Aggregation { func: AggFunc::Min, field: Some("bytes".into()), name: "m".into() });
        assert!(RuleDetection::new(rule).unwrap_err().contains("not supported"));
        let mut rule = batch_rule();
        rule.steps.push(Step::Where(Expr::Call { func: super::super::Func::Match, args: vec![Expr::Field("a".into()), Expr::Str("(".into())] }));
        assert!(RuleDetection::new(rule).unwrap_err().contains("match() regex \"(\""));
    }

    /// A main search over `A` rows (`table ip who note`) joined on `ip who` with a subsearch's
    /// `stats count values(note) as note by ip who ua` over `B` events.
    fn join_rule() -> Rule {
        let name_is = |v: &str| Cond::Compare { field: "eventName".into(), op: CompareOp::Eq, value: v.into() };
        let mut rule = batch_rule();
        rule.event_names = vec!["A".into(), "B".into()];
        rule.selection = Cond::Any(vec![name_is("A"), name_is("B")]);
        rule.steps = vec![Step::Search(name_is("B"))];
        rule.stats = Some(Stats {
            span_seconds: None,
            by: ["ip", "who", "ua"].map(String::from).to_vec(),
            functions: vec![
                Aggregation { func: AggFunc::Count, field: None, name: "count".into() },
                Aggregation { func: AggFunc::Values, field: Some("note".into()), name: "note".into() },
            ],
        });
        rule.after = Vec::new();
        rule.join = Some(Join {
            fields: vec!["ip".into(), "who".into()],
            steps: vec![Step::Search(name_is("A")), Step::Table(["ip", "who", "note"].map(String::from).to_vec())],
        });
        rule.tag_each_event = false;
        rule
    }

    /// The window's groups as the engine would close them: `records` selected and grouped.
    fn closed_window(rule: &RuleDetection, records: &[&str]) -> Vec<ClosedGroup> {
        let mut groups: std::collections::BTreeMap<Vec<String>, GroupStats> = std::collections::BTreeMap::new();
        for json in records {
            let record = ScannedObject::new(RawObject::new(json.as_bytes()).unwrap());
            let name = serde_json::from_str::<Value>(json).unwrap()["eventName"].as_str().unwrap().to_string();
            let event = Event { record, event_name: Cow::Owned(name), time: 60 };
            for selected in rule.select(&event).unwrap() {
                let Selected::Group { key: Some(key), values } = selected else { continue };
                let stats = groups.entry(key.iter().map(|k| k.to_string()).collect()).or_insert_with(|| GroupStats {
                    first: 60,
                    last: 60,
                    values: vec![BTreeSet::new(); values.len()],
                    ..GroupStats::default()
                });
                stats.count += 1;
                for (set, column) in stats.values.iter_mut().zip(values) {
                    set.extend(column.into_iter().map(|v| v.to_string()));
                }
            }
        }
        groups.into_iter().map(|(key, stats)| ClosedGroup { window_start: 0, window_end: 3600, key, stats, partial: None }).collect()
    }

    #[test]
    fn a_join_takes_the_first_subsearch_row_per_main_row_when_the_window_closes() {
        let mut rule = RuleDetection::new(join_rule()).unwrap();
        let records = [
            r#"{"eventName":"A","ip":"1.1.1.1","who":"bob","note":"first"}"#,
            r#"{"eventName":"A","ip":"1.1.1.1","who":"bob","note":"first"}"#,
            r#"{"eventName":"A","ip":"1.1.1.1","who":"eve","note":"no login"}"#,
            r#"{"eventName":"A","who":"bob","note":"no address"}"#,
            r#"{"eventName":"A","ip":"2.2.2.2","who":"bob","note":"main"}"#,
            r#"{"eventName":"B","ip":"1.1.1.1","who":"bob","ua":"zeta","note":"later in stats order"}"#,
            r#"{"eventName":"B","ip":"1.1.1.1","who":"bob","ua":"alpha"}"#,
            r#"{"eventName":"B","ip":"2.2.2.2","who":"bob","ua":"u","note":"sub"}"#,
        ];
        let mut groups = closed_window(&rule, &records);
        // Four main rows (two alike, one without `ip` dropped at once) and three `stats` groups.
        assert_eq!(groups.len(), 6);
        let rows: Vec<Value> = rule.on_close_window(&mut groups).into_iter().flatten().map(Value::Object).collect();
        // `max=1` in `stats` order: `alpha` before `zeta`, whose null `note` leaves the main
        // row's (overwrite=true writes only what the subsearch row has); alike rows give a row each.
        let first = json!({"ip": "1.1.1.1", "who": "bob", "note": "first", "ua": "alpha", "count": 1});
        let second = json!({"ip": "2.2.2.2", "who": "bob", "note": "sub", "ua": "u", "count": 1});
        assert_eq!(rows, [first.clone(), first, second]);
        let columns: Vec<String> = rows[2].as_object().unwrap().keys().cloned().collect();
        assert_eq!(columns, ["ip", "who", "note", "ua", "count"], "the main row's columns, then the subsearch row's new ones");
        // A group closed alone (evicted, or a late event's) has nothing to join with.
        assert!(groups.iter().all(|g| rule.on_close(g).is_none()));
        assert_eq!(rule.counters(), [("join_rows_cut", 0)]);
    }

    #[test]
    fn a_flood_of_alike_main_rows_is_cut_and_counted() {
        let mut rule = RuleDetection::new(join_rule()).unwrap();
        let mut groups = closed_window(&rule, &[r#"{"eventName":"A","ip":"1.1.1.1","who":"bob"}"#, r#"{"eventName":"B","ip":"1.1.1.1","who":"bob","ua":"u"}"#]);
        groups.iter_mut().filter(|g| g.key[0] == JOIN_MAIN).for_each(|g| g.stats.count = MAX_ALIKE_ROWS + 5);
        let rows: usize = rule.on_close_window(&mut groups).iter().map(Vec::len).sum();
        assert_eq!(rows as u64, MAX_ALIKE_ROWS);
        assert_eq!(rule.counters(), [("join_rows_cut", 5)]);
    }

    #[test]
    fn rejects_a_join_it_cannot_run() {
        let mut rule = join_rule();
        rule.join.as_mut().unwrap().steps.pop();
        assert!(RuleDetection::new(rule).unwrap_err().contains("must end in `table`"));
        let mut rule = join_rule();
        rule.join.as_mut().unwrap().fields.push("ua".into());
        assert!(RuleDetection::new(rule).unwrap_err().contains("`ua` is not a column"));
        let mut rule = join_rule();
        rule.tag_each_event = true;
        assert!(RuleDetection::new(rule).unwrap_err().contains("cannot be tagged one by one"));
        let mut rule = join_rule();
        rule.stats = None;
        assert!(RuleDetection::new(rule).is_err());
    }

    /// Every built-in rule selects from a record of one of its names what it selects as written:
    /// over records of the example and of ../shared/data, each also renamed to every other name
    /// the rule is indexed on (so that each name's branches meet records they were not written
    /// for, and fields they read are missing).
    #[test]
    fn the_steps_settled_for_a_name_select_what_the_rule_selects() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |path: std::path::PathBuf| std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut records: Vec<Value> = Vec::new();
        let shared = ["panther_analysis_cloudtrail_test_events.jsonl", "security_content_data_sources_cloudtrail_examples.jsonl"];
        let files = std::iter::once(root.join("examples/data/generated/cloudtrail.ndjson")).chain(shared.map(|f| root.join("../shared/data").join(f)));
        for file in files {
            for line in read(file).lines().filter(|l| !l.trim().is_empty()) {
                let line: Value = serde_json::from_str(line).unwrap();
                records.push(line.get("log").or_else(|| line.get("event")).unwrap_or(&line).clone());
            }
        }
        let (mut settled_rules, mut compared) = (0, 0);
        for rule in crate::catalog::builtin_rules() {
            let settled = RuleDetection::new(rule.clone()).unwrap();
            if settled.by_name.is_empty() {
                continue;
            }
            settled_rules += 1;
            let mut as_written = RuleDetection::new(rule).unwrap();
            as_written.by_name.clear();
            let names: Vec<&str> = settled.by_name.iter().map(|(name, _)| name.as_str()).collect();
            let theirs: Vec<&Value> = records.iter().filter(|r| r["eventName"].as_str().is_some_and(|n| names.contains(&n))).collect();
            // At most about 200 of them, spread over the data.
            for record in theirs.iter().step_by(theirs.len().div_ceil(200).max(1)) {
                for name in &names {
                    let mut renamed = (*record).clone();
                    renamed["eventName"] = Value::from(*name);
                    let text = renamed.to_string();
                    let time = renamed["eventTime"].as_str().and_then(crate::time::parse_event_time).unwrap_or(0);
                    let event = Event { record: ScannedObject::validated(text.as_bytes()).unwrap(), event_name: Cow::Borrowed(name), time };
                    assert_eq!(settled.select(&event), as_written.select(&event), "{}: {text}", settled.rule.metadata.key);
                    compared += 1;
                }
            }
        }
        assert!(settled_rules >= 40, "only {settled_rules} rules settle for a name");
        assert!(compared >= 9_000, "only {compared} records compared");
    }
}
