//! `tripline explain RULE RECORD`: why a record is or is not selected by a rule, part by part:
//! the eventName index, each condition of the base search (with the record's value), then the
//! first per-event step that drops it, then what the rule does with it.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::Value;
use tripline::cloudtrail::{Event, FieldError, UserSource};
use tripline::detection::{Detection, Selected};
use tripline::json::{RawObject, ScannedObject};
use tripline::rule::{parse_rule_file, test_condition, Cond, Rule, RuleDetection};

use crate::host::Place;
use crate::input::{event_time, InputFile};
use crate::{FINDINGS, OK};

/// Explain why a record is or is not selected by a rule.
///
/// RULE is a rule's key (as in the configuration's "detections"): a built-in rule, a rule of
/// the configuration's rule files, or of --rules files. RECORD is a file holding CloudTrail
/// records (each is explained, up to 20), `-` for stdin, or the record's JSON itself.
/// Exit status 0 when every record is selected, 1 when one is not.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  tripline explain aws_exfiltration_via_batch_service record.json
  tripline explain --config /etc/tripline my_rule '{\"eventName\":\"JobCreated\",...}'")]
pub struct Args {
    #[arg(value_name = "RULE")]
    rule: String,
    #[arg(value_name = "RECORD")]
    record: String,
    /// A host's configuration, whose rule files are searched too (directory or tripline.json).
    #[arg(long, value_name = "DIR|FILE")]
    config: Option<PathBuf>,
    /// A rule file to search too (repeatable).
    #[arg(long, value_name = "FILE")]
    rules: Vec<PathBuf>,
}

const MAX_RECORDS: usize = 20;

pub fn run(a: Args) -> Result<u8> {
    let rule = find_rule(&a)?;
    let detection = RuleDetection::new(rule.clone()).map_err(|e| anyhow!("rule `{}` cannot run: {e}", a.rule))?;
    let data = if a.record.trim_start().starts_with('{') {
        a.record.clone().into_bytes()
    } else {
        let path = Path::new(&a.record);
        if a.record != "-" && !path.exists() {
            bail!("{}: no such file; give a file holding the record, - for stdin, or the record's JSON", a.record);
        }
        InputFile::read(path)?.data
    };
    let records = tripline::input::split_records(&data);
    if records.is_empty() {
        bail!("{}: no record in it; give a CloudTrail record (JSON object)", a.record);
    }
    let m = &rule.metadata;
    println!("rule {} ({}, {} {}), from {} {}", m.key, m.name, m.status, m.analytic_type, rule.source.kind, rule.source.file);
    let mut all_selected = true;
    for (i, record) in records.iter().take(MAX_RECORDS).enumerate() {
        if records.len() > 1 {
            println!("\nrecord {}:", i + 1);
        }
        let mut out = String::new();
        let selected = explain(&rule, &detection, record, &mut out);
        print!("{out}");
        all_selected &= selected;
    }
    if records.len() > MAX_RECORDS {
        println!("\n({} more records not explained)", records.len() - MAX_RECORDS);
    }
    Ok(if all_selected { OK } else { FINDINGS })
}

/// The rule named `a.rule`: the configuration's and --rules files first, then the built-in ones.
fn find_rule(a: &Args) -> Result<Rule> {
    let mut rules = Vec::new();
    if let Some(path) = &a.config {
        let place = Place::locate(path)?;
        let document = tripline::config::Document::from_json(&place.read()?)
            .map_err(|e| anyhow!("{}: {e}; fix the configuration (`tripline check`)", place.file.display()))?;
        for file in &document.host.rules {
            let path = place.dir.join(file);
            let bytes = std::fs::read(&path).with_context(|| format!("{}: cannot read the rule file", path.display()))?;
            rules.extend(parse_rule_file(&path.display().to_string(), &bytes).map_err(|e| anyhow!("{e}"))?);
        }
    }
    for path in &a.rules {
        let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read the rule file", path.display()))?;
        rules.extend(parse_rule_file(&path.display().to_string(), &bytes).map_err(|e| anyhow!("{e}"))?);
    }
    rules.extend(tripline::catalog::builtin_rules());
    if let Some(rule) = rules.iter().find(|r| r.metadata.key == a.rule || r.metadata.id == a.rule) {
        return Ok(rule.clone());
    }
    let known = tripline::catalog::catalog(Vec::new()).into_iter().any(|e| e.key == a.rule);
    if known {
        bail!("`{}` is a detection written in code, not a rule, so there is nothing to explain part by part; `tripline replay` shows its alerts", a.rule);
    }
    bail!("no rule `{}`; the keys are in docs/coverage.md, or give the rule's file with --rules FILE", a.rule)
}

/// Writes the explanation of one record to `out`; whether the rule selects it.
fn explain(rule: &Rule, detection: &RuleDetection, record: &[u8], out: &mut String) -> bool {
    let line = |out: &mut String, text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let Ok(object) = RawObject::new(record) else {
        line(out, "not selected: the record is not a JSON object (the engine counts it in parse_errors and passes it through)".into());
        return false;
    };
    let scanned = ScannedObject::new(object);
    let name = match scanned.get("eventName").map(|v| v.and_then(|v| v.as_str().ok().flatten())) {
        Ok(name) => name.unwrap_or(Cow::Borrowed("")),
        Err(_) => {
            line(out, "not selected: the record does not read as JSON (parse_errors)".into());
            return false;
        }
    };
    // The engine's index: a rule that names eventNames sees only records with one of them.
    if !rule.event_names.is_empty() {
        let lower = name.to_lowercase();
        let indexed = rule.event_names.iter().any(|n| {
            let n = n.to_lowercase();
            n.strip_suffix('*').map_or(lower == n, |prefix| lower.starts_with(prefix))
        });
        if !indexed {
            line(out, format!("not selected: eventName is {name:?}; the rule only looks at eventName {}", rule.event_names.join(", ")));
            return false;
        }
        line(out, format!("✓ eventName {name:?} is one the rule looks at"));
    }
    let time = event_time(record);
    let event = Event { record: scanned, event_name: name, time: time.unwrap_or(0) };
    line(out, "base search:".into());
    let selected = condition(&rule.selection, &event, 1, out);
    match selected {
        Err(e) => {
            line(out, format!("not selected: {}", field_error(&e)));
            return false;
        }
        Ok(false) => {
            line(out, "not selected: the base search does not hold (✗ above)".into());
            return false;
        }
        Ok(true) => {}
    }
    // A `join`'s main row is selected by the join's own steps: the rule's are the subsearch's.
    let main_row = |s: &Selected<'_>| matches!(s, Selected::Group { key: Some(key), .. } if detection.describe_group(key).0);
    let joined = rule.join.is_some() && detection.select(&event).is_ok_and(|s| s.iter().any(main_row));
    // The first per-event step after which no row is left.
    for k in (1..=rule.steps.len()).filter(|_| !joined) {
        let prefix = Rule { steps: rule.steps[..k].to_vec(), stats: None, after: Vec::new(), join: None, ..rule.clone() };
        let rows = RuleDetection::new(prefix).map(|d| d.select(&event));
        match rows {
            Ok(Ok(rows)) if rows.is_empty() => {
                let step = serde_json::to_string(&rule.steps[k - 1]).unwrap_or_default();
                line(out, format!("not selected: step {k} of {} leaves no row: {step}", rule.steps.len()));
                return false;
            }
            Ok(Err(e)) => {
                line(out, format!("not selected: step {k}: {}", field_error(&e)));
                return false;
            }
            _ => {}
        }
    }
    if !rule.steps.is_empty() && !joined {
        line(out, format!("✓ the {} per-event step(s) keep it", rule.steps.len()));
    }
    let selected = match detection.select(&event) {
        Ok(s) => s,
        Err(e) => {
            line(out, format!("not selected: {}", field_error(&e)));
            return false;
        }
    };
    if time.is_none() {
        line(out, "note: no usable eventTime: the engine tags the record but keeps it out of windows (untimed)".into());
    }
    for s in &selected {
        match s {
            Selected::Row(row) => {
                let row = serde_json::to_string(&Value::Object(row.clone())).unwrap_or_default();
                line(out, format!("selected: a result row of its own, tagged at once: {row}"));
            }
            Selected::Group { key: None, .. } => {
                line(out, "selected, but a `by` field is null, so it joins no group (as Splunk's stats drops it)".into());
            }
            Selected::Group { key: Some(key), .. } => {
                let stats = rule.stats.as_ref();
                let (main, fields) = detection.describe_group(key);
                let pairs: Vec<String> = fields.iter().map(|(f, v)| format!("{f}={v}")).collect();
                let window = stats.and_then(|s| s.span_seconds).map_or("the host's window".to_string(), |s| format!("{s} s windows"));
                if let (true, Some(join)) = (main, &rule.join) {
                    line(out, format!("selected: a main row of the `join`, {}, waiting in {window}", pairs.join(" ")));
                    line(out, format!("  an alert is raised when the window closes if a subsearch row has the same {}", join.fields.join(", ")));
                    continue;
                }
                line(out, format!("selected: counted in group {} of {window}", pairs.join(" ")));
                if rule.tag_each_event {
                    line(out, "  and tagged at once (real-time path)".into());
                }
                if rule.after.is_empty() {
                    line(out, "  every group raises an alert when its window closes".into());
                } else {
                    let after: Vec<String> = rule.after.iter().map(|s| serde_json::to_string(s).unwrap_or_default()).collect();
                    line(out, format!("  an alert is raised when the window closes if the group's row passes: {}", after.join(" | ")));
                }
            }
        }
    }
    if selected.is_empty() {
        line(out, "not selected".into());
        return false;
    }
    true
}

/// One condition, indented, with its verdict; returns it.
fn condition(cond: &Cond, event: &Event<'_>, depth: usize, out: &mut String) -> Result<bool, FieldError> {
    let verdict = test_condition(cond, event);
    let mark = match &verdict {
        Ok(true) => "✓",
        Ok(false) => "✗",
        Err(_) => "!",
    };
    let pad = "  ".repeat(depth);
    let value = |field: &str| match event.field(field, UserSource::default()) {
        Ok(Some(v)) => format!("{field} is {v:?}"),
        Ok(None) => format!("{field} is null"),
        Err(e) => field_error(&e),
    };
    match cond {
        Cond::All(items) | Cond::Any(items) => {
            let word = if matches!(cond, Cond::All(_)) { "all of" } else { "any of" };
            out.push_str(&format!("{pad}{mark} {word}:\n"));
            for item in items {
                let _ = condition(item, event, depth + 1, out);
            }
        }
        Cond::Not(inner) => {
            out.push_str(&format!("{pad}{mark} not:\n"));
            let _ = condition(inner, event, depth + 1, out);
        }
        Cond::Compare { field, op, value: wanted } => {
            let op = tripline_compiler::ast::compare_spl(*op);
            out.push_str(&format!("{pad}{mark} {field}{op}{wanted:?}   ({})\n", value(field)));
        }
        Cond::In { field, values } => {
            out.push_str(&format!("{pad}{mark} {field} IN ({})   ({})\n", values.join(", "), value(field)));
        }
        Cond::Sigma { field, test } => {
            let mut seen = Vec::new();
            let read = tripline::rule::sigma::any_value(event, field, &mut |v| {
                seen.push(format!("{v:?}"));
                false
            });
            let found = match read {
                Ok(None) => format!("{field} is absent or null"),
                Ok(Some(_)) => format!("{field} is {}", seen.join(", ")),
                Err(e) => field_error(&e),
            };
            out.push_str(&format!("{pad}{mark} {field} {}   ({found})\n", serde_json::to_string(test).unwrap_or_default()));
        }
    }
    verdict
}

fn field_error(e: &FieldError) -> String {
    match e {
        FieldError::WrongType { field } => {
            format!("field {field} has the wrong JSON type (the engine counts the record in field_errors and passes it through)")
        }
        FieldError::Scan(e) => format!("the record does not read as JSON ({e:?}; parse_errors)"),
    }
}
