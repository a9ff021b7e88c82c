//! The parsed pipeline to the rule form: selection, per-event steps, `stats`, per-row steps.
//!
//! Decisions made here (each documented in `docs/coverage.md`'s header too):
//! - The base search's `sourcetype=aws:cloudtrail` term (what the `cloudtrail` macro expands
//!   to) is dropped: tripline is fed CloudTrail records only. Any other `sourcetype` (such as
//!   Amazon Security Lake's `aws:cloudtrail:lake`, OCSF records) or an `index` term refuses
//!   the rule.
//! - `event_names`: the names a top-level conjunct of the base search restricts `eventName` to
//!   (`eventName=X`, `eventName IN (...)`, or an `OR` of such, with literal names or prefixes
//!   `X*`, which the engine's index takes); empty when no conjunct does. The conjunct stays in
//!   the selection.
//! - `bin span=S _time` must be followed by `stats ... by _time`; `stats ... by _time`
//!   without `bin` groups by the exact event second, which is a 1-second span.
//! - `fillnull` without a field list fills the fields the rest of the pipeline reads: before
//!   `stats`, those its `by` and functions read (traced back through the steps in between); after
//!   `stats`, every field of the row. Splunk fills every field some result has, which differs only
//!   for a field no event of the search window has.
//! - `rename P* as *` (the only wildcard rename supported) renames each field `P<name>` to
//!   `<name>`, overwriting it; Splunk leaves `<name>` alone where no `P<name>` exists. Before
//!   `stats` that is, for each field the rest of the pipeline reads, `eval <name> =
//!   coalesce('P<name>', <name>)` (exact where a field is null exactly when it is absent); after
//!   `stats` the row's fields are known, so it is a plain rename of those that match.
//! - `tag_each_event`: no `where`/`search` after `stats`, so every selected event ends up in a
//!   result row.
//! - `spath` and `rex` without `input=`/`field=` read `_raw` (the record's JSON text); `spath`
//!   without a path extracts every value ([`Step::SpathAll`]), so a bare `fillnull` or a
//!   wildcard rename after it and `stats` (which need the row's fields) is refused.
//! - Regexes (`rex`, a literal `match()` pattern) are PCRE, translated to the engine's syntax by
//!   [`crate::pcre`] or refused; a `match()` pattern computed per event goes to the engine as is.
//! - `eventstats` is refused with what it would compute and why the rule form cannot.
//! - `join F ... [search ... | stats ...]` after a per-event main search ending in `table` is the
//!   rule's [`Join`]: the subsearch becomes the rule's `steps`/`stats`/`after`, the main search
//!   its join side, each behind a `search` step of its own selection. Nothing may follow it but
//!   the `_filter` macro.

use std::collections::BTreeSet;

use tripline::rule::{AggFunc, Aggregation, Assign, BinaryOp, CompareOp, Cond, Expr, FirstSeen, Func, Join, Rename, Stats, Step};

use crate::ast::{AggSpec, Command, CommandKind, EvalNode, SearchNode};
use crate::pcre;

/// The group field that holds an event's `tstats ... by _time span=S` bin (epoch seconds).
const TSTATS_BIN: &str = "_time_span";

/// The search part of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Lowered {
    pub event_names: Vec<String>,
    pub selection: Cond,
    pub steps: Vec<Step>,
    pub stats: Option<Stats>,
    pub after: Vec<Step>,
    pub first_seen: Option<FirstSeen>,
    pub join: Option<Join>,
    pub tag_each_event: bool,
    /// The base search without the dropped `sourcetype` term, for the linter.
    pub base: SearchNode,
}

/// Lowers the base search (`commands[0]`) and the commands after it.
pub fn lower(commands: &[Command]) -> Result<Lowered, String> {
    let (base, rest) = commands.split_first().ok_or("empty search")?;
    let CommandKind::Search(base_node) = &base.kind else { return Err("the search does not start with a search".into()) };
    let base_node = drop_sourcetype(base_node)?;
    let conjuncts: Vec<&SearchNode> = match strip_paren(&base_node) {
        SearchNode::And(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut event_names = index_names(&conjuncts);
    let mut selection = search_cond(&base_node);

    let mut steps = Vec::new();
    let mut after = Vec::new();
    let mut stats: Option<Stats> = None;
    let mut pending_bin: Option<(usize, i64)> = None;
    // Steps that depend on the fields the rest of the pipeline reads, resolved once it is known:
    // (after stats?, index, wildcard prefix or `None` for a bare `fillnull`).
    let mut pending: Vec<(bool, usize, Option<String>)> = Vec::new();
    // The pipe of a `spath` without a path after `stats`: the row's fields are unknown from there.
    let mut unknown_after: Option<usize> = None;
    let mut first_seen: Option<FirstSeen> = None;
    let mut join: Option<Join> = None;
    // The data model and filter of a `tstats` start, for a first-seen lookup to check against.
    let mut model_search: Option<(&str, &SearchNode)> = None;
    let mut rest = rest;
    if let Some((Command { pipe, kind: CommandKind::Tstats { aggs, datamodel, filter, by, span_seconds }, .. }, after_tstats)) =
        rest.split_first()
    {
        let here = format!("(pipe {pipe})");
        if !matches!(base_node, SearchNode::MatchAll) {
            return Err(format!("`tstats` {here} after a search is not supported"));
        }
        let model = crate::datamodel::model(datamodel).map_err(|m| format!("`tstats` {here}: {m}"))?;
        let functions = aggs.iter().map(aggregation).collect::<Result<Vec<_>, _>>().map_err(|m| format!("{m} {here}"))?;
        let used: Vec<String> = by.iter().chain(functions.iter().filter_map(|a| a.field.as_ref())).cloned().collect();
        let (cond, names, model_steps) =
            crate::datamodel::lower_model(model, filter, &used).map_err(|m| format!("`tstats` {here}: {m}"))?;
        selection = cond;
        event_names = names;
        steps = model_steps;
        let mut by = by.clone();
        if let Some(span) = span_seconds {
            // `by _time span=S` inside the scheduled window: each event's bin is a group field
            // of the window, renamed `_time` in its row (the window's rows are the search's,
            // so an `eventstats` after it sees what Splunk's does).
            let bin = Expr::Binary {
                op: BinaryOp::Mul,
                left: Box::new(Expr::Call {
                    func: Func::Floor,
                    args: vec![Expr::Binary { op: BinaryOp::Div, left: Box::new(Expr::Field("_time".into())), right: Box::new(Expr::Num(*span as f64)) }],
                }),
                right: Box::new(Expr::Num(*span as f64)),
            };
            steps.push(Step::Eval(vec![Assign { field: TSTATS_BIN.into(), expr: bin }]));
            by.iter_mut().filter(|f| *f == "_time").for_each(|f| *f = TSTATS_BIN.into());
            after.push(Step::Rename(vec![Rename { from: TSTATS_BIN.into(), to: "_time".into() }]));
        }
        stats = Some(Stats { span_seconds: None, by, functions });
        model_search = Some((datamodel.as_str(), filter));
        rest = after_tstats;
    }
    for cmd in rest {
        let here = format!("(pipe {})", cmd.pipe);
        if matches!(cmd.kind, CommandKind::Search(SearchNode::MatchAll)) {
            continue;
        }
        if join.is_some() {
            return Err(format!("`{}` after `join` {here} is not supported", cmd.text.split_whitespace().next().unwrap_or_default()));
        }
        if let Some((pipe, _)) = pending_bin {
            if !matches!(cmd.kind, CommandKind::Stats { .. }) {
                return Err(format!("`bin` (pipe {pipe}) must be followed by `stats`"));
            }
        }
        let target = if stats.is_some() { &mut after } else { &mut steps };
        match &cmd.kind {
            CommandKind::Search(node) => target.push(Step::Search(search_cond(node))),
            CommandKind::Where(e) => {
                let e = expr(e).map_err(|m| format!("{m} {here}"))?;
                no_now_per_event(&e, stats.is_some(), &here)?;
                target.push(Step::Where(e))
            }
            CommandKind::Eval(assigns) => {
                let mut out = Vec::new();
                for (field, e) in assigns {
                    let e = expr(e).map_err(|m| format!("{m} {here}"))?;
                    no_now_per_event(&e, stats.is_some(), &here)?;
                    out.push(Assign { field: field.clone(), expr: e });
                }
                target.push(Step::Eval(out));
            }
            CommandKind::Rename(pairs) => {
                let mut plain = Vec::new();
                for (from, to) in pairs {
                    if let Some(prefix) = from.strip_suffix('*') {
                        if !plain.is_empty() {
                            target.push(Step::Rename(std::mem::take(&mut plain)));
                        }
                        pending_after_unknown(unknown_after, &here)?;
                        pending.push((stats.is_some(), target.len(), Some(prefix.to_string())));
                        target.push(Step::Rename(Vec::new()));
                    } else {
                        plain.push(Rename { from: from.clone(), to: to.clone() });
                    }
                }
                if !plain.is_empty() {
                    target.push(Step::Rename(plain));
                }
            }
            CommandKind::Fillnull { value, fields } => {
                if fields.is_empty() {
                    pending_after_unknown(unknown_after, &here)?;
                    pending.push((stats.is_some(), target.len(), None));
                }
                target.push(Step::Fillnull { value: value.clone(), fields: fields.clone() });
            }
            CommandKind::Spath { input, output, path } => {
                target.push(Step::Spath { input: input.clone(), output: output.clone(), path: path.clone() })
            }
            CommandKind::SpathAll { input } => {
                if stats.is_some() {
                    unknown_after = Some(cmd.pipe);
                }
                target.push(Step::SpathAll { input: input.clone() })
            }
            CommandKind::Rex { field, pattern } => {
                let regex = pcre::translate(pattern).map_err(|m| format!("`rex` {here}: {m}"))?;
                if pcre::group_names(&regex).is_empty() {
                    return Err(format!("`rex` {here} has no named group: it extracts no field"));
                }
                target.push(Step::Rex { field: field.clone(), regex })
            }
            CommandKind::Eventstats { aggs, by } => match (&stats, eventstats_step(aggs, by, stats.as_ref())) {
                (Some(_), Some(step)) => after.push(step),
                _ => return Err(eventstats(aggs, by, stats.as_ref(), &here)),
            },
            CommandKind::Mvexpand(field) => {
                if stats.is_some() {
                    return Err(format!("`mvexpand` after `stats` {here} is not supported"));
                }
                target.push(Step::Mvexpand(field.clone()))
            }
            CommandKind::Table(fields) => target.push(Step::Table(fields.clone())),
            CommandKind::Tstats { .. } => return Err(format!("`tstats` {here} must start the search")),
            CommandKind::Append(inner) => {
                if stats.is_some() {
                    return Err(format!("`append` after `stats` {here} is not supported"));
                }
                if !pending.is_empty() {
                    return Err(format!("`append` {here} after a bare `fillnull` or a wildcard `rename` is not supported"));
                }
                let sub = lower(inner).map_err(|m| format!("the `append` subsearch {here}: {m}"))?;
                if sub.stats.is_some() {
                    return Err(format!("the `append` subsearch {here} has `stats`: only per-event subsearches are supported"));
                }
                let mut main = vec![Step::Search(selection.clone())];
                main.append(&mut steps);
                let mut other = vec![Step::Search(sub.selection.clone())];
                other.extend(sub.steps);
                steps.push(Step::Union(vec![main, other]));
                selection = Cond::Any(vec![selection, sub.selection]);
                event_names = union_names(event_names, sub.event_names);
            }
            CommandKind::Join { fields, sub } => {
                if stats.is_some() {
                    return Err(format!("`join` after `stats` {here} is not supported: only a per-event main search is"));
                }
                if !pending.is_empty() {
                    return Err(format!("`join` {here} after a bare `fillnull` or a wildcard `rename` is not supported"));
                }
                match steps.last() {
                    Some(Step::Table(columns)) if fields.iter().all(|f| columns.contains(f)) => {}
                    _ => {
                        return Err(format!(
                            "`join` {here}: the main search must end in a `table` of the join fields (its rows wait in the window whole)"
                        ))
                    }
                }
                let sub = lower(sub).map_err(|m| format!("the `join` subsearch {here}: {m}"))?;
                if sub.stats.is_none() || sub.first_seen.is_some() || sub.join.is_some() {
                    return Err(format!("the `join` subsearch {here}: only a subsearch with `stats` (and no lookup or join) is supported"));
                }
                let mut main = vec![Step::Search(selection.clone())];
                main.append(&mut steps);
                steps = vec![Step::Search(sub.selection.clone())];
                steps.extend(sub.steps);
                join = Some(Join { fields: fields.clone(), steps: main });
                stats = sub.stats;
                after = sub.after;
                selection = Cond::Any(vec![selection, sub.selection]);
                event_names = union_names(event_names, sub.event_names);
            }
            CommandKind::Lookup { table, inputs, outputs, new_only } => {
                let wildcards: Vec<(usize, &str)> =
                    pending.iter().filter(|(after_stats, ..)| *after_stats).filter_map(|(_, i, p)| Some((*i, p.as_deref()?))).collect();
                let step = first_seen_lookup(table, inputs, outputs, *new_only, model_search, &after, &wildcards)
                    .map_err(|m| format!("`lookup` {here}: {m}"))?;
                if stats.is_none() || first_seen.is_some() {
                    return Err(format!("`lookup` {here}: a first-seen lookup is supported once, after `tstats`"));
                }
                first_seen = Some(step.0);
                after.push(step.1);
            }
            CommandKind::Ctime { fields, format } => {
                for field in fields {
                    target.push(Step::Ctime { field: field.clone(), format: format.clone() });
                }
            }
            CommandKind::Bin { field, span_seconds } => {
                if stats.is_some() {
                    return Err(format!("`bin` after `stats` {here} is not supported"));
                }
                if field != "_time" {
                    return Err(format!("`bin` of `{field}` {here} is not supported (only `_time`)"));
                }
                pending_bin = Some((cmd.pipe, *span_seconds));
            }
            CommandKind::Stats { aggs, by } => {
                if stats.is_some() {
                    return Err(format!("a second `stats` {here} is not supported"));
                }
                let functions = aggs.iter().map(aggregation).collect::<Result<Vec<_>, _>>().map_err(|m| format!("{m} {here}"))?;
                let by_time = by.iter().any(|f| f == "_time");
                let span_seconds = match pending_bin.take() {
                    Some((_, span)) if by_time => Some(span),
                    Some((pipe, _)) => {
                        return Err(format!("`bin _time` (pipe {pipe}) is followed by a `stats` {here} that does not group by `_time`"))
                    }
                    None if by_time => Some(1),
                    None => None,
                };
                if let Some(f) = by.iter().find(|f| f.contains('*')) {
                    return Err(format!("wildcard `by` field `{f}` {here} is not supported"));
                }
                if functions.iter().any(|a| a.name == "*") && (!steps.is_empty() || !pending.is_empty()) {
                    return Err(format!(
                        "wildcard `values(prefix*) as *` {here} after per-event steps is not supported: it reads the record's own fields"
                    ));
                }
                stats = Some(Stats { span_seconds, by: by.clone(), functions });
            }
        }
    }
    if let Some((pipe, _)) = pending_bin {
        return Err(format!("`bin` (pipe {pipe}) is not followed by `stats`"));
    }
    // Before `stats`, what a step must provide is what the later steps read: resolve from the
    // last back. After it, a row's fields are known going forward.
    pending.sort_by_key(|(after_stats, index, _)| (*after_stats, if *after_stats { *index as i64 } else { -(*index as i64) }));
    for (after_stats, index, wildcard) in pending {
        if after_stats {
            if stats.as_ref().is_some_and(|s| s.functions.iter().any(|a| a.name == "*")) {
                return Err("a bare `fillnull` or a wildcard `rename` after a wildcard `values(prefix*) as *` is not supported: the row's fields are known only at run time".into());
            }
            let fields = row_fields(stats.as_ref().expect("after stats"), &after[..index]);
            after[index] = match wildcard {
                Some(prefix) => Step::Rename(
                    fields
                        .iter()
                        .filter_map(|f| f.strip_prefix(prefix.as_str()).filter(|rest| !rest.is_empty()).map(|rest| (f, rest)))
                        .map(|(f, rest)| Rename { from: f.clone(), to: rest.to_string() })
                        .collect(),
                ),
                None => match &after[index] {
                    Step::Fillnull { value, .. } => Step::Fillnull { value: value.clone(), fields },
                    _ => unreachable!("a pending fillnull"),
                },
            };
            continue;
        }
        let Some(stats) = &stats else {
            return Err(match wildcard {
                Some(prefix) => format!("`rename {prefix}* as *` with no `stats` after it: the fields it renames are unknown"),
                None => "`fillnull` without a field list and no `stats` after it: the fields to fill are unknown".into(),
            });
        };
        let live = fields_read(&steps[index + 1..], stats);
        steps[index] = match wildcard {
            Some(prefix) => {
                if let Some(f) = live.iter().find(|f| f.starts_with(prefix.as_str())) {
                    return Err(format!("`rename {prefix}* as *` is followed by a read of `{f}`, which it renames away"));
                }
                Step::Eval(
                    live.iter()
                        .map(|f| Assign {
                            field: f.clone(),
                            expr: Expr::Call {
                                func: Func::Coalesce,
                                args: vec![Expr::Field(format!("{prefix}{f}")), Expr::Field(f.clone())],
                            },
                        })
                        .collect(),
                )
            }
            None => match &steps[index] {
                Step::Fillnull { value, .. } => Step::Fillnull { value: value.clone(), fields: live },
                _ => unreachable!("a pending fillnull"),
            },
        };
    }
    steps.retain(|s| !matches!(s, Step::Rename(r) if r.is_empty()) && !matches!(s, Step::Eval(a) if a.is_empty()));
    after.retain(|s| !matches!(s, Step::Rename(r) if r.is_empty()));
    let tag_each_event = join.is_none()
        && (stats.is_none()
            || !after.iter().any(|s| matches!(s, Step::Where(_) | Step::Search(_) | Step::Eventstats { .. } | Step::FirstSeen { .. })));
    Ok(Lowered { event_names, selection, steps, stats, after, first_seen, join, tag_each_event, base: base_node })
}

/// The eventNames of two searches read together: none (every record) if either has none.
fn union_names(mut names: Vec<String>, other: Vec<String>) -> Vec<String> {
    if names.is_empty() || other.is_empty() {
        return Vec::new();
    }
    for n in other {
        if !names.iter().any(|a| a.eq_ignore_ascii_case(&n)) {
            names.push(n);
        }
    }
    names
}

/// A `lookup` of a baseline-kept `previously_seen_*` table as the rule's first-seen set: where
/// the search reads the baseline's data model with the baseline's filter, and the lookup's field
/// is the baseline's key, a `stats` group field renamed at most (`crate::baselines`).
fn first_seen_lookup(
    table: &str,
    inputs: &[(String, String)],
    outputs: &[(String, String)],
    new_only: bool,
    model_search: Option<(&str, &SearchNode)>,
    after: &[Step],
    wildcards: &[(usize, &str)],
) -> Result<(FirstSeen, Step), String> {
    let baseline = crate::baselines::baseline(table)
        .ok_or_else(|| format!("lookup tables are not supported (`{table}` is no baseline-kept table tripline learns in-stream)"))?;
    let (datamodel, filter) = model_search.ok_or("a first-seen lookup needs the search to start with `tstats` over its baseline's data model")?;
    let same_filter = crate::parse::parse_search(baseline.filter).map(|f| strip_paren(&f) == strip_paren(filter)).unwrap_or(false);
    if datamodel != baseline.datamodel || !same_filter {
        return Err(format!(
            "`{table}` is kept by a baseline over `datamodel={}` where `{}`; this search reads other events, which the set would learn",
            baseline.datamodel, baseline.filter
        ));
    }
    if new_only {
        return Err("OUTPUTNEW is not supported (OUTPUT is)".into());
    }
    let [(key, field)] = inputs else { return Err(format!("`{table}` is matched on `{}` alone", baseline.key)) };
    if key != baseline.key {
        return Err(format!("`{table}` is matched on `{}`, not `{key}`", baseline.key));
    }
    // The row field, back through the renames since `stats`, must be the baseline's group field.
    let mut source = field.clone();
    for (index, step) in after.iter().enumerate().rev() {
        match step {
            // `rename P* as *`, resolved once the row's fields are known: `<f>` was `P<f>`.
            Step::Rename(renames) if renames.is_empty() => {
                if let Some((_, prefix)) = wildcards.iter().find(|(i, _)| *i == index) {
                    source = format!("{prefix}{source}");
                }
            }
            Step::Rename(renames) => {
                if let Some(r) = renames.iter().rev().find(|r| r.to == source) {
                    source = r.from.clone();
                }
            }
            _ => return Err("a first-seen lookup must come right after `tstats` and its renames".into()),
        }
    }
    if source != baseline.group_field {
        return Err(format!("`{field}` is not the baseline's key `{}`", baseline.group_field));
    }
    let (mut first_time, mut last_time, mut enough_data) = (None, None, None);
    for (output, name) in outputs {
        match output.as_str() {
            "firstTimeSeen" => first_time = Some(name.clone()),
            "lastTimeSeen" => last_time = Some(name.clone()),
            "enough_data" => enough_data = Some(name.clone()),
            other => return Err(format!("the first-seen set has no `{other}` (it has firstTimeSeen, lastTimeSeen, enough_data)")),
        }
    }
    let set = FirstSeen {
        group_field: baseline.group_field.to_string(),
        horizon_days: baseline.horizon_days,
        warm_up_days: baseline.warm_up_days,
        baseline: baseline.source.to_string(),
    };
    Ok((set, Step::FirstSeen { key: field.clone(), first_time, last_time, enough_data }))
}

/// `now()` is the search's run time; per event in a stream there is none to give (after `stats`,
/// the engine gives the end of the window being closed).
fn no_now_per_event(e: &Expr, after_stats: bool, here: &str) -> Result<(), String> {
    fn has_now(e: &Expr) -> bool {
        match e {
            Expr::Call { func: Func::Now, .. } => true,
            Expr::Call { args, .. } => args.iter().any(has_now),
            Expr::Not(e) | Expr::Neg(e) => has_now(e),
            Expr::Binary { left, right, .. } => has_now(left) || has_now(right),
            Expr::Str(_) | Expr::Num(_) | Expr::Field(_) => false,
        }
    }
    if !after_stats && has_now(e) {
        return Err(format!("`now()` before `stats` {here} is not supported: a stream has no search run time per event"));
    }
    Ok(())
}

/// A bare `fillnull` or a `rename P* as *` after `stats` needs the row's fields, which a `spath`
/// without a path before it leaves unknown.
fn pending_after_unknown(unknown_after: Option<usize>, here: &str) -> Result<(), String> {
    match unknown_after {
        Some(pipe) => Err(format!(
            "the command {here} needs the row's fields, which the `spath` without a path (pipe {pipe}) makes known only at run time"
        )),
        None => Ok(()),
    }
}

/// `eventstats` after `stats` as a step over the window's rows, where those are exactly the rows
/// the search's `eventstats` sees: after `bin`, the window is one `_time` bin, so `_time` must be
/// a `by` field; without `bin`, the window is the search's own (the schedule's). Functions:
/// avg, stdev, sum, min, max, count.
fn eventstats_step(aggs: &[AggSpec], by: &[String], stats: Option<&Stats>) -> Option<Step> {
    let stats = stats?;
    if stats.span_seconds.is_some() && !by.iter().any(|f| f == "_time") {
        return None;
    }
    if by.iter().any(|f| f.contains('*')) {
        return None;
    }
    let mut functions = Vec::new();
    for spec in aggs {
        let func = match (spec.func.to_ascii_lowercase().as_str(), spec.field.as_deref()) {
            (_, Some(f)) if f.contains('*') => return None,
            ("count", _) => AggFunc::Count,
            ("avg" | "mean", Some(_)) => AggFunc::Avg,
            ("stdev", Some(_)) => AggFunc::Stdev,
            ("sum", Some(_)) => AggFunc::Sum,
            ("min", Some(_)) => AggFunc::Min,
            ("max", Some(_)) => AggFunc::Max,
            _ => return None,
        };
        functions.push(Aggregation { func, field: spec.field.clone(), name: spec.alias.clone().unwrap_or_else(|| written(spec)) });
    }
    Some(Step::Eventstats { functions, by: by.to_vec() })
}

/// Why `eventstats` does not compile, as precisely as its place allows.
fn eventstats(aggs: &[AggSpec], by: &[String], stats: Option<&Stats>, here: &str) -> String {
    let functions: Vec<String> = aggs.iter().map(written).collect();
    let by_text = if by.is_empty() { String::new() } else { format!(" by {}", by.join(", ")) };
    let command = format!("`eventstats {}{by_text}`", functions.join(", "));
    let any_window = Stats { span_seconds: None, by: Vec::new(), functions: Vec::new() };
    let supported = |a: &AggSpec| eventstats_step(std::slice::from_ref(a), &[], Some(&any_window)).is_some();
    let missing: Vec<String> = aggs.iter().filter(|a| !supported(a)).map(written).collect();
    let missing = match missing.as_slice() {
        [] => String::new(),
        m => format!("; nor are {} stats functions of the rule form", m.join(", ")),
    };
    match stats {
        Some(Stats { span_seconds: Some(span), .. }) if !by.iter().any(|f| f == "_time") => format!(
            "`eventstats` after `stats` {here} is not supported: {command} gives each row statistics over the rows \
             of every `_time` bin the search covers, while a rule's window is one bin ({span} seconds){missing}"
        ),
        Some(_) => {
            let missing: Vec<String> = aggs.iter().filter(|a| !supported(a)).map(written).collect();
            format!(
                "`eventstats` after `stats` {here} is not supported: {command} uses {}, not among the functions a rule's \
                 `eventstats` has (avg, stdev, sum, min and max of a field, count)",
                missing.join(", ")
            )
        }
        None => format!(
            "`eventstats` {here} is not supported: {command} gives each event statistics over all the events of the \
             search{by_text}, which a stream knows only when the search's window ends{missing}"
        ),
    }
}

fn strip_paren(node: &SearchNode) -> &SearchNode {
    match node {
        SearchNode::Paren(inner) => strip_paren(inner),
        other => other,
    }
}

/// The value of a `sourcetype=` term.
fn sourcetype_of(node: &SearchNode) -> Option<&str> {
    match node {
        SearchNode::Compare { field, op: CompareOp::Eq, value } if field == "sourcetype" => Some(value),
        _ => None,
    }
}

fn is_cloudtrail(node: &SearchNode) -> bool {
    sourcetype_of(node).is_some_and(|value| value.eq_ignore_ascii_case("aws:cloudtrail"))
}

/// The sourcetype a search's base term names when it is not CloudTrail's own
/// (`aws:cloudtrail`), such as Security Lake's `aws:cloudtrail:lake`; `None` for CloudTrail's
/// and for a search without one (`tstats` over a data model), which reads CloudTrail's records.
pub fn other_sourcetype(commands: &[Command]) -> Option<String> {
    let Some(Command { kind: CommandKind::Search(base), .. }) = commands.first() else { return None };
    let conjuncts = match strip_paren(base) {
        SearchNode::And(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    conjuncts.iter().map(strip_paren).filter(|node| !is_cloudtrail(node)).find_map(sourcetype_of).map(str::to_string)
}

/// Drops the top-level `sourcetype=aws:cloudtrail` conjunct; refuses other sourcetypes.
fn drop_sourcetype(node: &SearchNode) -> Result<SearchNode, String> {
    let kept = match node {
        SearchNode::And(items) => {
            let kept: Vec<SearchNode> = items.iter().filter(|n| !is_cloudtrail(n)).cloned().collect();
            match kept.len() {
                0 => SearchNode::MatchAll,
                1 => kept.into_iter().next().expect("one"),
                _ => SearchNode::And(kept),
            }
        }
        n if is_cloudtrail(n) => SearchNode::MatchAll,
        other => other.clone(),
    };
    check_source_terms(&kept)?;
    Ok(kept)
}

fn check_source_terms(node: &SearchNode) -> Result<(), String> {
    match node {
        SearchNode::And(items) | SearchNode::Or(items) => items.iter().try_for_each(check_source_terms),
        SearchNode::Not(inner) | SearchNode::Paren(inner) => check_source_terms(inner),
        SearchNode::Compare { field, value, .. } if field == "sourcetype" => Err(format!(
            "`sourcetype={value}`{}: tripline reads raw CloudTrail records (`sourcetype=aws:cloudtrail`) only",
            if value.eq_ignore_ascii_case("aws:cloudtrail:lake") { " (Amazon Security Lake's OCSF records)" } else { "" }
        )),
        SearchNode::Compare { field, .. } | SearchNode::In { field, .. } if field == "sourcetype" || field == "index" || field == "source" => {
            Err(format!("a `{field}` term is not supported: tripline reads one CloudTrail stream"))
        }
        _ => Ok(()),
    }
}

/// A name the engine's index takes: a literal, or a prefix written with one trailing `*`.
fn indexable(value: &str) -> bool {
    match value.strip_suffix('*') {
        Some(prefix) => !prefix.is_empty() && !prefix.contains('*'),
        None => !value.is_empty() && !value.contains('*'),
    }
}

/// The eventNames a conjunct restricts `eventName` to (literals, or prefixes such as
/// `Describe*`, which the engine's index takes too), or `None` when it does not.
fn names_of(node: &SearchNode) -> Option<Vec<String>> {
    match node {
        SearchNode::Compare { field, op: CompareOp::Eq, value } if field == "eventName" && indexable(value) => {
            Some(vec![value.clone()])
        }
        SearchNode::In { field, values } if field == "eventName" && values.iter().all(|v| indexable(v)) => {
            Some(values.clone())
        }
        SearchNode::Or(items) => {
            let mut all = Vec::new();
            for item in items {
                all.extend(names_of(item)?);
            }
            Some(all)
        }
        SearchNode::Paren(inner) => names_of(inner),
        _ => None,
    }
}

/// The names every record the selection passes must have (case-insensitive, deduplicated, in
/// the order written); empty when no conjunct restricts `eventName`. With several restricting
/// conjuncts the literal sets are intersected; where a prefix is involved the smallest set is
/// kept, a superset being a correct index too.
fn index_names(conjuncts: &[&SearchNode]) -> Vec<String> {
    let mut result: Option<Vec<String>> = None;
    for conjunct in conjuncts {
        let Some(names) = names_of(conjunct) else { continue };
        let mut dedup: Vec<String> = Vec::new();
        for n in names {
            if !dedup.iter().any(|d| d.eq_ignore_ascii_case(&n)) {
                dedup.push(n);
            }
        }
        result = Some(match result {
            None => dedup,
            Some(prev) if prev.iter().chain(&dedup).any(|n| n.ends_with('*')) => {
                if dedup.len() < prev.len() {
                    dedup
                } else {
                    prev
                }
            }
            Some(prev) => prev.into_iter().filter(|p| dedup.iter().any(|d| d.eq_ignore_ascii_case(p))).collect(),
        });
    }
    result.unwrap_or_default()
}

/// A search expression as a condition (parentheses dropped, `*` true).
pub fn search_cond(node: &SearchNode) -> Cond {
    match node {
        SearchNode::And(items) => {
            let mut out = Vec::new();
            for item in items {
                match search_cond(item) {
                    Cond::All(inner) => out.extend(inner),
                    c => out.push(c),
                }
            }
            if out.len() == 1 {
                out.pop().expect("one")
            } else {
                Cond::All(out)
            }
        }
        SearchNode::Or(items) => {
            let mut out = Vec::new();
            for item in items {
                match search_cond(item) {
                    Cond::All(inner) if inner.is_empty() => return Cond::All(Vec::new()),
                    Cond::Any(inner) => out.extend(inner),
                    c => out.push(c),
                }
            }
            Cond::Any(out)
        }
        SearchNode::Not(inner) => Cond::Not(Box::new(search_cond(inner))),
        SearchNode::Paren(inner) => search_cond(inner),
        SearchNode::Compare { field, op, value } => Cond::Compare { field: field.clone(), op: *op, value: value.clone() },
        SearchNode::In { field, values } => Cond::In { field: field.clone(), values: values.clone() },
        SearchNode::MatchAll => Cond::All(Vec::new()),
    }
}

/// The eval functions of the rule form, with their argument counts.
fn func(name: &str) -> Option<(Func, usize, usize)> {
    Some(match name {
        "if" => (Func::If, 3, 3),
        "case" => (Func::Case, 2, usize::MAX),
        "coalesce" => (Func::Coalesce, 1, usize::MAX),
        "isnull" => (Func::Isnull, 1, 1),
        "isnotnull" => (Func::Isnotnull, 1, 1),
        "match" => (Func::Match, 2, 2),
        "like" => (Func::Like, 2, 2),
        "in" => (Func::In, 2, usize::MAX),
        "lower" => (Func::Lower, 1, 1),
        "upper" => (Func::Upper, 1, 1),
        "len" => (Func::Len, 1, 1),
        "tostring" => (Func::Tostring, 1, 1),
        "tonumber" => (Func::Tonumber, 1, 1),
        "floor" => (Func::Floor, 1, 1),
        "round" => (Func::Round, 1, 2),
        "abs" => (Func::Abs, 1, 1),
        "mvcount" => (Func::Mvcount, 1, 1),
        "mvindex" => (Func::Mvindex, 2, 3),
        "mvappend" => (Func::Mvappend, 1, usize::MAX),
        "mvjoin" => (Func::Mvjoin, 2, 2),
        "split" => (Func::Split, 2, 2),
        "strftime" => (Func::Strftime, 2, 2),
        "null" => (Func::Null, 0, 0),
        "min" => (Func::Min, 1, usize::MAX),
        "now" => (Func::Now, 0, 0),
        "relative_time" => (Func::RelativeTime, 2, 2),
        _ => return None,
    })
}

/// An eval expression in the rule form. A literal `match()` pattern is PCRE, translated to the
/// engine's syntax (or refused); one computed per event is compiled by the engine as it comes.
pub fn expr(node: &EvalNode) -> Result<Expr, String> {
    Ok(match node {
        EvalNode::Str(s) => Expr::Str(s.clone()),
        EvalNode::Num(n) => Expr::Num(*n),
        EvalNode::Field(f) => Expr::Field(f.clone()),
        EvalNode::Not(e) => Expr::Not(Box::new(expr(e)?)),
        EvalNode::Neg(e) => Expr::Neg(Box::new(expr(e)?)),
        EvalNode::Binary { op, left, right, .. } => {
            Expr::Binary { op: *op, left: Box::new(expr(left)?), right: Box::new(expr(right)?) }
        }
        EvalNode::Call { name, args } => {
            let (f, min, max) = func(name).ok_or_else(|| format!("eval function `{name}()` is not supported"))?;
            if args.len() < min || args.len() > max || (f == Func::Case && args.len() % 2 != 0) {
                return Err(format!("`{name}()` with {} argument(s) is not supported", args.len()));
            }
            let mut args = args.iter().map(expr).collect::<Result<Vec<_>, _>>()?;
            if let (Func::Match, Some(Expr::Str(pattern))) = (f, args.get_mut(1)) {
                *pattern = pcre::translate(pattern).map_err(|e| format!("`match()`: {e}"))?;
            }
            Expr::Call { func: f, args }
        }
    })
}

/// An aggregation as written, without its `as`.
fn written(spec: &AggSpec) -> String {
    match &spec.field {
        Some(field) => format!("{}({field})", spec.func),
        None => spec.func.clone(),
    }
}

fn aggregation(spec: &AggSpec) -> Result<Aggregation, String> {
    let f = spec.func.to_ascii_lowercase();
    let written = written(spec);
    if f == "values" && spec.alias.as_deref() == Some("*") {
        if let Some(prefix) = spec.field.as_deref().and_then(|f| f.strip_suffix('*')) {
            if !prefix.is_empty() && !prefix.contains('*') {
                return Ok(Aggregation { func: AggFunc::Values, field: spec.field.clone(), name: "*".into() });
            }
        }
    }
    if spec.field.as_deref().is_some_and(|f| f.contains('*')) || spec.alias.as_deref().is_some_and(|a| a.contains('*')) {
        return Err(format!("wildcard stats `{written}` is not supported (only `values(prefix*) as *`)"));
    }
    let func = match (f.as_str(), spec.field.as_deref()) {
        ("count", None) => AggFunc::Count,
        ("count", Some(_)) => return Err(format!("stats `{written}` (count of a field) is not supported")),
        ("values", Some("_raw")) => return Err("stats `values(_raw)` is not supported".into()),
        ("values", Some(_)) => AggFunc::Values,
        ("dc", Some(_)) => AggFunc::Dc,
        ("min", Some("_time")) => AggFunc::Min,
        ("max", Some("_time")) => AggFunc::Max,
        ("earliest", Some("_time")) => AggFunc::Earliest,
        ("latest", Some("_time")) => AggFunc::Latest,
        ("min" | "max" | "earliest" | "latest", _) => {
            return Err(format!("stats `{written}` is not supported ({f} of `_time` only)"))
        }
        _ => return Err(format!("stats function `{written}` is not supported")),
    };
    Ok(Aggregation { func, field: spec.field.clone(), name: spec.alias.clone().unwrap_or(written) })
}

/// The fields an expression reads.
pub fn expr_fields(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::Field(f) => {
            out.insert(f.clone());
        }
        Expr::Not(inner) | Expr::Neg(inner) => expr_fields(inner, out),
        Expr::Binary { left, right, .. } => {
            expr_fields(left, out);
            expr_fields(right, out);
        }
        Expr::Call { args, .. } => args.iter().for_each(|a| expr_fields(a, out)),
        Expr::Str(_) | Expr::Num(_) => {}
    }
}

/// The fields a condition reads.
pub fn cond_fields(c: &Cond, out: &mut BTreeSet<String>) {
    match c {
        Cond::All(items) | Cond::Any(items) => items.iter().for_each(|i| cond_fields(i, out)),
        Cond::Not(inner) => cond_fields(inner, out),
        Cond::Compare { field, .. } | Cond::In { field, .. } | Cond::Sigma { field, .. } => {
            out.insert(field.clone());
        }
    }
}

/// The fields `stats` reads from each event, traced back through `steps` (those between a
/// `fillnull` and the `stats`), in order of first mention; `_time` and `_raw` are never null.
fn fields_read(steps: &[Step], stats: &Stats) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut live: BTreeSet<String> = BTreeSet::new();
    for f in stats.by.iter().chain(stats.functions.iter().filter_map(|a| a.field.as_ref())) {
        add_read(f, &mut live, &mut order);
    }
    read_back(steps, &mut live, &mut order);
    order.into_iter().filter(|f| live.contains(f)).collect()
}

fn add_read(f: &str, live: &mut BTreeSet<String>, order: &mut Vec<String>) {
    if f != "_time" && f != "_raw" && live.insert(f.to_string()) && !order.iter().any(|o| o == f) {
        order.push(f.to_string());
    }
}

/// Walks `steps` from the last back: `live` becomes what they read to provide what was live.
fn read_back(steps: &[Step], live: &mut BTreeSet<String>, order: &mut Vec<String>) {
    let add = add_read;
    for step in steps.iter().rev() {
        match step {
            Step::Rename(renames) => {
                for r in renames.iter().rev() {
                    let needed = live.remove(&r.to);
                    live.remove(&r.from);
                    if needed {
                        add(&r.from, live, order);
                    }
                }
            }
            Step::Eval(assigns) => {
                for a in assigns.iter().rev() {
                    live.remove(&a.field);
                    let mut reads = BTreeSet::new();
                    expr_fields(&a.expr, &mut reads);
                    reads.iter().for_each(|f| add(f, live, order));
                }
            }
            Step::Where(e) => {
                let mut reads = BTreeSet::new();
                expr_fields(e, &mut reads);
                reads.iter().for_each(|f| add(f, live, order));
            }
            Step::Search(c) => {
                let mut reads = BTreeSet::new();
                cond_fields(c, &mut reads);
                reads.iter().for_each(|f| add(f, live, order));
            }
            Step::Spath { input, output, .. } => {
                live.remove(output);
                add(input, live, order);
            }
            Step::SpathAll { input } | Step::Rex { field: input, .. } => add(input, live, order),
            Step::Mvexpand(f) | Step::Ctime { field: f, .. } => add(f, live, order),
            Step::Table(fields) => live.retain(|f| fields.contains(f)),
            Step::Fillnull { .. } => {}
            Step::Eventstats { functions, by } => {
                functions.iter().for_each(|a| {
                    live.remove(&a.name);
                });
                for f in functions.iter().filter_map(|a| a.field.as_ref()).chain(by) {
                    add(f, live, order);
                }
            }
            Step::FirstSeen { key, first_time, last_time, enough_data } => {
                for output in [first_time, last_time, enough_data].into_iter().flatten() {
                    live.remove(output);
                }
                add(key, live, order);
            }
            // SPL lowers to no density step (a `summary` model is refused before this).
            Step::Density => {}
            Step::Union(branches) => {
                let mut all = BTreeSet::new();
                for branch in branches {
                    let mut mine = live.clone();
                    read_back(branch, &mut mine, order);
                    all.extend(mine);
                }
                *live = all;
            }
        }
    }
}

/// The fields of a result row after `stats` and the given later steps.
pub fn row_fields(stats: &Stats, steps: &[Step]) -> Vec<String> {
    let mut fields: Vec<String> = stats.by.iter().cloned().chain(stats.functions.iter().map(|a| a.name.clone())).collect();
    let add = |fields: &mut Vec<String>, f: &str| {
        if !fields.iter().any(|x| x == f) {
            fields.push(f.to_string());
        }
    };
    for step in steps {
        match step {
            Step::Rename(renames) => {
                for r in renames {
                    fields.retain(|f| f != &r.from);
                    add(&mut fields, &r.to);
                }
            }
            Step::Eval(assigns) => assigns.iter().for_each(|a| add(&mut fields, &a.field)),
            Step::Spath { output, .. } => add(&mut fields, output),
            Step::Rex { regex, .. } => pcre::group_names(regex).iter().for_each(|f| add(&mut fields, f)),
            Step::Table(keep) => fields = keep.clone(),
            Step::Eventstats { functions, .. } => functions.iter().for_each(|a| add(&mut fields, &a.name)),
            Step::FirstSeen { first_time, last_time, enough_data, .. } => {
                [first_time, last_time, enough_data].into_iter().flatten().for_each(|f| add(&mut fields, f))
            }
            _ => {}
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_command;
    use crate::lexer::split_pipes;

    fn lower_text(text: &str) -> Result<Lowered, String> {
        let commands = split_pipes(text)?
            .iter()
            .enumerate()
            .map(|(i, s)| parse_command(i, s))
            .collect::<Result<Vec<_>, _>>()?;
        lower(&commands)
    }

    #[test]
    fn drops_the_cloudtrail_sourcetype_and_indexes_event_names() {
        let l = lower_text("sourcetype=aws:cloudtrail (eventName=A OR eventName IN (b, a, C)) x=1").unwrap();
        assert_eq!(l.event_names, vec!["A", "b", "C"]);
        assert_eq!(
            l.selection,
            Cond::All(vec![
                Cond::Any(vec![
                    Cond::Compare { field: "eventName".into(), op: CompareOp::Eq, value: "A".into() },
                    Cond::In { field: "eventName".into(), values: vec!["b".into(), "a".into(), "C".into()] },
                ]),
                Cond::Compare { field: "x".into(), op: CompareOp::Eq, value: "1".into() },
            ])
        );
        assert_eq!(
            lower_text("sourcetype=aws:cloudtrail eventName=Describe* OR eventName=List*").unwrap().event_names,
            vec!["Describe*", "List*"]
        );
        assert!(lower_text("sourcetype=aws:cloudtrail eventName=*Key").unwrap().event_names.is_empty());
        assert!(lower_text("sourcetype=aws:cloudtrail eventName=A OR x=1").unwrap().event_names.is_empty());
        assert_eq!(lower_text("eventName=A eventName IN (A, B)").unwrap().event_names, vec!["A"]);
    }

    #[test]
    fn refuses_other_sourcetypes() {
        assert!(lower_text("sourcetype=aws:cloudtrail:lake api.operation=X").unwrap_err().contains("Security Lake"));
    }

    #[test]
    fn steps_stats_and_after() {
        let l = lower_text(
            "eventName=X | bin span=5m _time | stats count dc(src_ip) as n values(userAgent) by _time user | where n > 1 \
             | convert timeformat=\"%H\" ctime(a) ctime(b) | search *",
        )
        .unwrap();
        let stats = l.stats.unwrap();
        assert_eq!(stats.span_seconds, Some(300));
        assert_eq!(stats.functions.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), vec!["count", "n", "values(userAgent)"]);
        assert_eq!(l.after.len(), 3);
        assert!(!l.tag_each_event);
        assert!(lower_text("x=1 | bin span=5m _time | stats count by user").unwrap_err().contains("does not group by `_time`"));
        assert_eq!(lower_text("x=1 | stats count by _time").unwrap().stats.unwrap().span_seconds, Some(1));
    }

    #[test]
    fn fillnull_without_fields_fills_what_stats_reads() {
        let l = lower_text("x=1 | rename a as b | fillnull | eval c=d | stats count values(v) by b c _time").unwrap();
        assert_eq!(l.steps[1], Step::Fillnull { value: "0".into(), fields: vec!["b".into(), "v".into(), "d".into()] });
        let l = lower_text("x=1 | stats count by u | fillnull value=none").unwrap();
        assert_eq!(l.after[0], Step::Fillnull { value: "none".into(), fields: vec!["u".into(), "count".into()] });
        assert!(lower_text("x=1 | fillnull").unwrap_err().contains("unknown"));
    }

    #[test]
    fn prefix_wildcard_renames_become_coalesces_of_what_is_read() {
        let l = lower_text("x=1 | rename requestParameters.* as * | rename repositoryName AS repository | stats count by user repository").unwrap();
        let coalesce = |f: &str| Assign {
            field: f.into(),
            expr: Expr::Call {
                func: Func::Coalesce,
                args: vec![Expr::Field(format!("requestParameters.{f}")), Expr::Field(f.into())],
            },
        };
        assert_eq!(l.steps[0], Step::Eval(vec![coalesce("user"), coalesce("repositoryName")]));
        let l = lower_text("x=1 | stats count by p.a p.b q | rename p.* as *").unwrap();
        assert_eq!(
            l.after[0],
            Step::Rename(vec![Rename { from: "p.a".into(), to: "a".into() }, Rename { from: "p.b".into(), to: "b".into() }])
        );
        assert!(lower_text("x=1 | rename p.* as * | stats count by p.a").unwrap_err().contains("renames away"));
    }

    #[test]
    fn a_baseline_kept_lookup_is_the_rules_first_seen_set_or_says_why_not() {
        let search = |filter: &str, lookup: &str| {
            lower_text(&format!(
                "| tstats min(_time) as firstTime from datamodel=Change where {filter} by All_Changes.src, All_Changes.user \
                 | rename All_Changes.* as * | {lookup} | where isnull(firstTimeSeen)"
            ))
        };
        let provisioning = "(All_Changes.action=started OR All_Changes.action=created) All_Changes.status=success";
        let table = "lookup previously_seen_cloud_provisioning_activity_sources src as src OUTPUT firstTimeSeen, enough_data";
        let l = search(provisioning, table).unwrap();
        let set = l.first_seen.expect("a first-seen set");
        assert_eq!((set.group_field.as_str(), set.horizon_days, set.warm_up_days), ("All_Changes.src", 90, 7));
        assert_eq!(
            l.after[1],
            Step::FirstSeen { key: "src".into(), first_time: Some("firstTimeSeen".into()), last_time: None, enough_data: Some("enough_data".into()) }
        );
        assert!(!l.tag_each_event);
        assert!(search("All_Changes.action=created All_Changes.status=success", table).unwrap_err().contains("reads other events"));
        assert!(search(provisioning, "lookup previously_seen_cloud_provisioning_activity_sources src as user OUTPUT firstTimeSeen")
            .unwrap_err()
            .contains("is not the baseline's key"));
        assert!(search(provisioning, "lookup previously_seen_cloud_provisioning_activity_sources src OUTPUT City")
            .unwrap_err()
            .contains("no `City`"));
        assert!(search(provisioning, "lookup some_table src OUTPUT firstTimeSeen").unwrap_err().contains("lookup tables are not supported"));
    }

    #[test]
    fn unsupported_functions_and_patterns_say_where() {
        assert!(lower_text("x=1 | eval t=cidrmatch(\"10.0.0.0/8\", a)").unwrap_err().contains("`cidrmatch()` is not supported (pipe 1)"));
        assert!(lower_text("x=1 | eval t=relative_time(now(), \"-1d\")").unwrap_err().contains("`now()` before `stats` (pipe 1)"));
        assert!(lower_text("x=1 | stats count by u | where relative_time(now(), \"-1d\") > 0").is_ok());
        assert!(lower_text("x=1 | stats avg(n) by u").unwrap_err().contains("`avg(n)`"));
        assert!(lower_text("x=1 | eval m=match(a, \"(\")").unwrap_err().contains("an unclosed `(`"));
        assert!(lower_text("x=1 | eval m=match(a, \"(?=b)\")").unwrap_err().contains("`match()`: PCRE pattern \"(?=b)\": lookahead"));
    }

    #[test]
    fn match_patterns_are_pcre_translated_or_computed_per_event() {
        let call = |l: Lowered| match &l.steps[0] {
            Step::Eval(assigns) => assigns[0].expr.clone(),
            other => panic!("{other:?}"),
        };
        let field = |f: &str| Expr::Field(f.into());
        assert_eq!(
            call(lower_text("x=1 | eval m=match(a, \"^{x}$\")").unwrap()),
            Expr::Call { func: Func::Match, args: vec![field("a"), Expr::Str(r"^\{x\}\n?\z".into())] }
        );
        // A pattern computed per event (here the concatenation `requestParameters . userName`).
        assert_eq!(
            call(lower_text("x=1 | eval m=if(match(a, requestParameters.userName), 1, 0)").unwrap()),
            Expr::Call {
                func: Func::If,
                args: vec![
                    Expr::Call {
                        func: Func::Match,
                        args: vec![
                            field("a"),
                            Expr::Binary { op: tripline::rule::BinaryOp::Concat, left: Box::new(field("requestParameters")), right: Box::new(field("userName")) },
                        ],
                    },
                    Expr::Num(1.0),
                    Expr::Num(0.0),
                ],
            }
        );
        assert_eq!(call(lower_text("x=1 | eval n=null()").unwrap()), Expr::Call { func: Func::Null, args: vec![] });
        assert!(lower_text("x=1 | eval n=null(a)").unwrap_err().contains("`null()` with 1 argument(s)"));
    }

    #[test]
    fn rex_and_spath_read_the_raw_record() {
        let l = lower_text(
            "x=1 | rex field=_raw \"(?<json_field>{.+})\" | spath input=json_field output=g path=a.b{} | mvexpand g \
             | spath input=g | spath path=c{}.d output=e | stats count by g e severity",
        )
        .unwrap();
        assert_eq!(
            l.steps,
            vec![
                Step::Rex { field: "_raw".into(), regex: r"(?<json_field>\{.+\})".into() },
                Step::Spath { input: "json_field".into(), output: "g".into(), path: "a.b{}".into() },
                Step::Mvexpand("g".into()),
                Step::SpathAll { input: "g".into() },
                Step::Spath { input: "_raw".into(), output: "e".into(), path: "c{}.d".into() },
            ]
        );
        let l = lower_text("x=1 | stats count by u | rex field=u \"^(?<first>.)\" | table u first").unwrap();
        assert_eq!(row_fields(l.stats.as_ref().unwrap(), &l.after[..1]), vec!["u", "count", "first"]);
        assert!(lower_text("x=1 | rex \"a(b)\"").unwrap_err().contains("`rex` (pipe 1) has no named group"));
        assert!(lower_text("x=1 | rex \"(?<a>x)\\1\"").unwrap_err().contains("`rex` (pipe 1): PCRE pattern"));
        assert!(lower_text("x=1 | stats count by u | spath input=u | fillnull")
            .unwrap_err()
            .contains("the `spath` without a path (pipe 2) makes known only at run time"));
    }

    #[test]
    fn append_of_a_per_event_subsearch_is_a_union_of_two_branches() {
        let l = lower_text("eventName=A x=1 | append [search eventName=B x!=1 | where y > 2] | stats count by x").unwrap();
        assert_eq!(l.event_names, ["A", "B"]);
        let a = Cond::All(vec![
            Cond::Compare { field: "eventName".into(), op: CompareOp::Eq, value: "A".into() },
            Cond::Compare { field: "x".into(), op: CompareOp::Eq, value: "1".into() },
        ]);
        let b = Cond::All(vec![
            Cond::Compare { field: "eventName".into(), op: CompareOp::Eq, value: "B".into() },
            Cond::Compare { field: "x".into(), op: CompareOp::Ne, value: "1".into() },
        ]);
        assert_eq!(l.selection, Cond::Any(vec![a.clone(), b.clone()]));
        let Step::Union(branches) = &l.steps[0] else { panic!("{:?}", l.steps) };
        assert_eq!(branches[0], [Step::Search(a)]);
        assert_eq!(branches[1][0], Step::Search(b));
        assert!(matches!(branches[1][1], Step::Where(_)));
        assert!(lower_text("x=1 | stats count by u | append [search y=1]").unwrap_err().contains("`append` after `stats`"));
        assert!(lower_text("x=1 | append [search y=1 | stats count]").unwrap_err().contains("has `stats`"));
        assert!(parse_command(1, "append maxout=5 [search y=1]").unwrap_err().contains("without options"));
    }

    #[test]
    fn join_of_a_table_with_a_stats_subsearch_is_the_rules_join_side() {
        let l = lower_text(
            "eventName=A | rename p as k | table ip k who | join k ip [| search eventName=B | rename q as k | stats count by ip k | eval n=count] | search *",
        )
        .unwrap();
        let name_is = |v: &str| Cond::Compare { field: "eventName".into(), op: CompareOp::Eq, value: v.into() };
        assert_eq!(l.event_names, ["A", "B"]);
        assert_eq!(l.selection, Cond::Any(vec![name_is("A"), name_is("B")]));
        let join = l.join.as_ref().unwrap();
        assert_eq!(join.fields, ["k", "ip"]);
        assert_eq!(join.steps[0], Step::Search(name_is("A")));
        assert_eq!(join.steps[2], Step::Table(["ip", "k", "who"].map(String::from).to_vec()));
        // The subsearch is the rule's own pipeline: its selection first, then its steps, `stats`, `after`.
        assert_eq!(l.steps[0], Step::Search(name_is("B")));
        assert!(matches!(&l.steps[1], Step::Rename(r) if r[0].to == "k"));
        assert_eq!(l.stats.as_ref().unwrap().by, ["ip", "k"]);
        assert!(matches!(l.after[..], [Step::Eval(_)]));
        assert!(!l.tag_each_event, "a join's rows wait for the window");
    }

    #[test]
    fn a_join_it_cannot_run_is_refused_with_its_reason() {
        let refused = |text: &str| lower_text(text).unwrap_err();
        assert!(refused("x=1 | table a | join a type=outer [search y=1 | stats count by a]").contains("`join` option `type=outer`"));
        assert!(refused("x=1 | table a | join a max=0 [search y=1 | stats count by a]").contains("`join` option `max=0`"));
        let lookup = refused("x=1 | table a | join a [| inputlookup seen | stats min(t) by a]");
        assert!(lookup.contains("does not start with `search`") && lookup.contains("`inputlookup`: lookup tables"), "{lookup}");
        assert!(refused("x=1 | table a | join a [ summary model_v1]").contains("command `summary`"));
        assert!(refused("x=1 | table a | join a [search y=1 | table a]").contains("only a subsearch with `stats`"));
        assert!(refused("x=1 | join a [search y=1 | stats count by a]").contains("must end in a `table` of the join fields"));
        assert!(refused("x=1 | table b | join a [search y=1 | stats count by a]").contains("must end in a `table` of the join fields"));
        assert!(refused("x=1 | stats count by a | join a [search y=1 | stats count by a]").contains("`join` after `stats`"));
        assert!(refused("x=1 | table a | join a [search y=1 | stats count by a] | where count > 1").contains("`where` after `join`"));
        assert!(refused("x=1 | table a | join [search y=1 | stats count by a]").contains("`join` without fields"));
    }

    #[test]
    fn eventstats_after_stats_runs_over_the_window_or_says_why_not() {
        let l = lower_text(
            "x=1 | bucket span=10m _time | stats dc(_raw) AS n by _time, src_ip \
             | eventstats avg(n) as a, stdev(n) as s by _time | where n > a",
        )
        .unwrap();
        assert_eq!(
            l.after[0],
            Step::Eventstats {
                functions: vec![
                    Aggregation { func: AggFunc::Avg, field: Some("n".into()), name: "a".into() },
                    Aggregation { func: AggFunc::Stdev, field: Some("n".into()), name: "s".into() },
                ],
                by: vec!["_time".into()],
            }
        );
        assert!(!l.tag_each_event);
        let e = lower_text("x=1 | bucket span=10m _time | stats dc(_raw) AS n by _time, u | eventstats avg(n) by u").unwrap_err();
        assert_eq!(
            e,
            "`eventstats` after `stats` (pipe 3) is not supported: `eventstats avg(n) by u` gives each row statistics over \
             the rows of every `_time` bin the search covers, while a rule's window is one bin (600 seconds)"
        );
        let e = lower_text("x=1 | stats count by u | eventstats perc95(count) by u").unwrap_err();
        assert!(e.contains("uses perc95(count), not among the functions"), "{e}");
        assert!(lower_text("x=1 | eventstats count by u").unwrap_err().starts_with("`eventstats` (pipe 1) is not supported: `eventstats count by u` gives each event"));
    }

    #[test]
    fn eval_in_is_a_function() {
        let l = lower_text(r#"x=1 | where in(eventName, "A", "B")"#).unwrap();
        let args = vec![Expr::Field("eventName".into()), Expr::Str("A".into()), Expr::Str("B".into())];
        assert_eq!(l.steps, [Step::Where(Expr::Call { func: Func::In, args })]);
    }

}
