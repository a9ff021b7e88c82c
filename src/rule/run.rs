//! A [`Rule`] as the engine runs it: a [`Detection`] whose every decision comes from the data.

use std::collections::BTreeSet;
use std::hash::Hasher;

use regex_lite::Regex;
use serde_json::{Map, Value};

use super::eval::{run_steps, test, Regexes, Row};
use super::value::Val;
use super::{AggFunc, Expr, Metadata, Rule, Step};
use crate::aggregate::ClosedGroup;
use crate::cloudtrail::{Event, FieldError, UserSource};
use crate::detection::{values_field, Detection, Selected};
use crate::time::format_rfc3339;

pub struct RuleDetection {
    rule: Rule,
    regexes: Regexes,
    /// The `stats` group fields other than `_time` (which is the window).
    group_fields: Vec<String>,
    /// The input field of each `values()`/`dc()`, in the order of `GroupStats::values`.
    value_fields: Vec<String>,
}

impl RuleDetection {
    /// Prepares a rule to run; rejects what the engine cannot run as written.
    pub fn new(rule: Rule) -> Result<RuleDetection, String> {
        let mut regexes = Regexes::new();
        for step in rule.steps.iter().chain(&rule.after) {
            for expr in step_exprs(step) {
                collect_regexes(expr, &mut regexes)?;
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
                    (AggFunc::Values | AggFunc::Dc, Some(field)) => value_fields.push(field.to_string()),
                    (AggFunc::Min | AggFunc::Max | AggFunc::Earliest | AggFunc::Latest, Some("_time")) => {}
                    (func, field) => return Err(format!("stats function {func:?} over {field:?} is not supported")),
                }
            }
        }
        Ok(RuleDetection { rule, regexes, group_fields, value_fields })
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }
}

fn step_exprs(step: &Step) -> Vec<&Expr> {
    match step {
        Step::Where(e) => vec![e],
        Step::Eval(assigns) => assigns.iter().map(|a| &a.expr).collect(),
        _ => Vec::new(),
    }
}

/// Compiles the pattern of every `match()` with a literal pattern; a pattern computed at run
/// time is rejected, since compiling per event would put a regex compiler on the hot path.
fn collect_regexes(expr: &Expr, out: &mut Regexes) -> Result<(), String> {
    match expr {
        Expr::Call { func: super::Func::Match, args } => {
            match args.get(1) {
                Some(Expr::Str(pattern)) => {
                    let re = Regex::new(pattern).map_err(|e| format!("match() pattern {pattern:?}: {e}"))?;
                    out.insert(pattern.clone(), re);
                }
                _ => return Err("match() needs a literal pattern".into()),
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
fn raw_digest(text: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hasher.write(text.as_bytes());
    format!("{:016x}", hasher.finish())
}

impl Detection for RuleDetection {
    fn metadata(&self) -> &Metadata {
        &self.rule.metadata
    }

    fn event_names(&self) -> Vec<String> {
        self.rule.event_names.clone()
    }

    fn window_seconds(&self) -> Option<i64> {
        self.rule.stats.as_ref().and_then(|s| s.span_seconds)
    }

    fn select(&self, event: &Event<'_>) -> Result<Vec<Selected>, FieldError> {
        let row = Row::of_event(event, UserSource::default());
        if !test(&self.rule.selection, &row)? {
            return Ok(Vec::new());
        }
        let rows = run_steps(&self.rule.steps, vec![row], &self.regexes)?;
        let mut selected = Vec::with_capacity(rows.len());
        for row in rows {
            if self.rule.stats.is_none() {
                selected.push(Selected::Row(row.into_map()));
                continue;
            }
            // A multivalue group field puts the event in one group per value, as `stats` does.
            let mut keys = vec![Vec::with_capacity(self.group_fields.len())];
            for field in &self.group_fields {
                let texts = row.get(field)?.texts();
                keys = keys.into_iter().flat_map(|k| texts.iter().map(move |t| [k.clone(), vec![t.clone()]].concat())).collect();
            }
            let mut values = Vec::with_capacity(self.value_fields.len());
            for field in &self.value_fields {
                let texts = row.get(field)?.texts();
                values.push(if field == "_raw" { texts.iter().map(|t| raw_digest(t)).collect() } else { texts });
            }
            if keys.is_empty() {
                selected.push(Selected::Group { key: None, values });
                continue;
            }
            selected.extend(keys.into_iter().map(|key| Selected::Group { key: Some(key), values: values.clone() }));
        }
        Ok(selected)
    }

    fn tags_each_event(&self) -> bool {
        self.rule.tag_each_event
    }

    fn on_close(&mut self, group: &ClosedGroup) -> Option<Map<String, Value>> {
        let stats = self.rule.stats.as_ref()?;
        let mut fields = Vec::with_capacity(stats.by.len() + stats.functions.len());
        let mut key = group.key.iter();
        for field in &stats.by {
            let value = if field == "_time" {
                Val::Num(group.window_start as f64)
            } else {
                Val::Str(key.next().cloned().unwrap_or_default())
            };
            fields.push((field.clone(), value));
        }
        let mut sets = group.stats.values.iter();
        let s = &group.stats;
        for agg in &stats.functions {
            let value = match agg.func {
                AggFunc::Count => Val::Num(s.count as f64),
                AggFunc::Min | AggFunc::Earliest => Val::Num(s.first as f64),
                AggFunc::Max | AggFunc::Latest => Val::Num(s.last as f64),
                AggFunc::Values => json_val(values_field(sets.next().unwrap_or(&BTreeSet::new()))),
                AggFunc::Dc => Val::Num(sets.next().map_or(0, BTreeSet::len) as f64),
            };
            fields.push((agg.name.clone(), value));
        }
        let rows = run_steps(&self.rule.after, vec![Row::of_fields(fields)], &self.regexes).ok()?;
        let mut row = rows.into_iter().next()?.into_map();
        // A bin's `_time` leaves the search as a time, as Splunk prints `_time`.
        if let Some(secs) = row.get("_time").and_then(Value::as_i64) {
            row.insert("_time".into(), Value::String(format_rfc3339(secs)));
        }
        Some(row)
    }
}

fn json_val(value: Value) -> Val {
    match value {
        Value::String(s) => Val::Str(s),
        Value::Array(items) => Val::Multi(items.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
        _ => Val::Null,
    }
}
