//! Partition safety: whether a rule's alerts stay exact when its records are split over several
//! instances by one field, the partitioning key (a Kafka message key, an S3 prefix).
//!
//! tripline keeps its state inside each instance, so a rule that aggregates is exact only if every
//! event of each of its groups reaches the same instance. That holds when one of its `stats ... by`
//! fields *determines* the key: two events with the same value of that field necessarily have the
//! same key. This module decides it from the rule's data alone (no rule is named here): it traces
//! each `by` field back through the per-event steps to the record field it copies, and checks it
//! against [`determines`]. A per-event rule (no `stats`) keeps no state and is always exact. An
//! `eventstats` after `stats` compares the rows of different groups, so its own `by` fields must
//! determine the key too. docs/scale-out.md explains the reasoning and the deployment.

use std::fmt::Write;

use tripline::rule::{Expr, Rule, Step};

/// The key CloudTrail streams are naturally sharded by: the account the event was delivered to,
/// the account in an S3 prefix (`AWSLogs/<account>/CloudTrail/...`, or `AWSLogs/<org>/<account>/...`
/// for an organization trail), the natural Kafka message key.
pub const DEFAULT_KEY: &str = "recipientAccountId";

/// Whether one rule stays exact under one key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub exact: bool,
    pub reason: String,
}

/// The record field a Splunk field name reads, where it is only another name for it (the
/// add-on's aliases, `src/cloudtrail.rs`); any other name is itself.
fn canonical(name: &str) -> &str {
    match name {
        "src" | "src_ip" => "sourceIPAddress",
        "region" | "vendor_region" => "awsRegion",
        "user_agent" => "userAgent",
        "command" => "eventName",
        "user_access_key" => "userIdentity.accessKeyId",
        other => other,
    }
}

/// Whether equal values of `field` (a record field, canonical) imply equal values of `key`.
///
/// - The key determines itself.
/// - `eventID` determines every field: CloudTrail gives each delivered event its own `eventID`
///   (the copies of one cross-account action delivered to two accounts have distinct `eventID`s
///   and share `sharedEventID`), and a record delivered twice is the same record.
/// - `userIdentity.arn` determines `userIdentity.accountId`: the ARN names the account that owns
///   the user or role, which is what CloudTrail's `accountId` is.
///
/// Deliberately not: `aws_account_id` and `user_arn` (the add-on's choices between the caller's
/// and the recipient's account, or a fallback to `requestParameters.roleArn`), `userIdentity.arn`
/// and `userIdentity.accountId` for `recipientAccountId` (a cross-account call is delivered to
/// the resource owner's account as well, with the caller's identity), `sharedEventID` (shared by
/// the copies delivered to different accounts), `user`, `userIdentity.principalId`,
/// `sourceIPAddress`, `eventName` and every other field several accounts can share.
pub fn determines(field: &str, key: &str) -> bool {
    let (field, key) = (canonical(field), canonical(key));
    field == key || field == "eventID" || (field == "userIdentity.arn" && key == "userIdentity.accountId")
}

/// Why a field does not determine the key, where users commonly expect it to.
fn why_not(field: &str, key: &str) -> Option<&'static str> {
    Some(match (canonical(field), canonical(key)) {
        ("aws_account_id" | "user_arn" | "userIdentity.arn" | "userIdentity.accountId", "recipientAccountId") => {
            "the caller's account, and a cross-account call is delivered to the resource owner's account as well"
        }
        ("aws_account_id", _) => "the add-on's `aws_account_id` is `recipientAccountId` for `AWSAccount`/`AWSService` identities",
        ("user_arn", _) => "the add-on's `user_arn` falls back to `requestParameters.roleArn`",
        ("sharedEventID", _) => "shared by the copies of one action delivered to different accounts",
        _ => return None,
    })
}

/// What a field of the row after `steps` is a copy of: the record fields it may come from, or
/// the step that computes it.
fn origins(field: &str, steps: &[Step]) -> Result<Vec<String>, String> {
    fn computed(what: &str) -> Result<Vec<String>, String> {
        Err(format!("computed by {what}"))
    }
    let mut field = field.to_string();
    for (at, step) in steps.iter().enumerate().rev() {
        match step {
            Step::Rename(renames) => {
                for r in renames.iter().rev() {
                    if r.to == field {
                        field = r.from.clone();
                    } else if r.from == field {
                        return computed("a `rename` that moves it away");
                    }
                }
            }
            Step::Eval(assigns) => {
                for a in assigns.iter().rev() {
                    if a.field == field {
                        match &a.expr {
                            Expr::Field(from) => field = from.clone(),
                            _ => return computed("`eval`"),
                        }
                    }
                }
            }
            Step::Fillnull { fields, .. } if fields.contains(&field) => {
                return computed("`fillnull`, which gives the events without it one value in common")
            }
            Step::Spath { output, .. } if *output == field => return computed("`spath`"),
            Step::SpathAll { .. } => return computed("`spath` (it may set any field)"),
            Step::Rex { regex, .. } if regex.contains(&format!("(?<{field}>")) => return computed("`rex`"),
            Step::Mvexpand(expanded) if *expanded == field => return computed("`mvexpand`"),
            Step::Ctime { field: converted, .. } if *converted == field => return computed("`convert ctime`"),
            Step::Union(branches) => {
                let mut all = Vec::new();
                for branch in branches {
                    all.extend(origins(&field, branch)?);
                }
                return origins_before(&all, &steps[..at]);
            }
            _ => {}
        }
    }
    Ok(vec![field])
}

/// [`origins`] of each of several fields over the same steps.
fn origins_before(fields: &[String], steps: &[Step]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for f in fields {
        out.extend(origins(f, steps)?);
    }
    Ok(out)
}

/// Whether the rule stays exact when its records are split by `key`, and why.
pub fn analyse(rule: &Rule, key: &str) -> Verdict {
    let exact = |reason: String| Verdict { exact: true, reason };
    let not_exact = |reason: String| Verdict { exact: false, reason };
    let Some(stats) = &rule.stats else {
        return exact("per event: no state between records".into());
    };
    if let Some(join) = &rule.join {
        // A main row meets a subsearch row by the join fields: both must be in one partition.
        let on_both = |f: &String| {
            [&join.steps, &rule.steps].iter().all(|steps| origins(f, steps).is_ok_and(|from| from.iter().all(|o| determines(o, key))))
        };
        if !join.fields.iter().any(on_both) {
            let list = join.fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
            return not_exact(format!("`join` matches rows of different events by {list}, none of which determines `{key}`"));
        }
    }
    let fields: Vec<&String> = stats.by.iter().filter(|f| f.as_str() != "_time").collect();
    if fields.is_empty() {
        return not_exact("one group per window holds the events of every partition (`stats` without `by`)".into());
    }
    let mut determining = None;
    // Why the fields a reader would expect to determine the key do not: (why, fields).
    let mut notes: Vec<(String, Vec<String>)> = Vec::new();
    let mut note = |why: String, field: &str| match notes.iter_mut().find(|(w, _)| *w == why) {
        Some((_, fields)) => fields.push(format!("`{field}`")),
        None => notes.push((why, vec![format!("`{field}`")])),
    };
    for field in &fields {
        match origins(field, &rule.steps) {
            Ok(from) if from.iter().all(|f| determines(f, key)) => {
                determining = Some(field.to_string());
                break;
            }
            Ok(from) => from.iter().filter_map(|f| Some((why_not(f, key)?, f))).for_each(|(why, f)| note(why.into(), f)),
            Err(computed) if determines(field, key) => note(computed, field),
            Err(_) => {}
        }
    }
    let Some(field) = determining else {
        let list = fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
        let mut reason = format!("no `by` field determines `{key}` (by {list})");
        for (why, fields) in notes {
            let _ = write!(reason, "; {}: {why}", fields.join(", "));
        }
        return not_exact(reason);
    };
    // A step after `stats` that compares rows of different groups: `eventstats` over rows that
    // share its `by` fields, and a density baseline learned from (and judging) the rows that
    // share its `by` fields, which must then determine the key as well.
    for (at, step) in rule.after.iter().enumerate() {
        let (by, what) = match (step, &rule.density) {
            (Step::Eventstats { by, .. }, _) => (by, "`eventstats` compares the rows of all groups of a window"),
            (Step::Density, Some(density)) => (&density.by, "the density baseline learns from the rows of all windows"),
            _ => continue,
        };
        let whole = by.iter().any(|f| {
            origins(f, &rule.after[..at]).is_ok_and(|from| {
                from.iter().all(|column| stats.by.contains(column) && origins(column, &rule.steps).is_ok_and(|o| o.iter().all(|f| determines(f, key))))
            })
        });
        if !whole {
            let list = by.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
            return not_exact(format!(
                "{what} that share {}: rows of several partitions",
                if list.is_empty() { "nothing (all rows)".to_string() } else { list }
            ));
        }
    }
    exact(format!("groups by `{field}`, which determines `{key}`"))
}

/// For a rule that is exact under `key`: the column of its group keys (its `by` fields without
/// `_time`) that holds the key's value itself, so that its open groups can move with their
/// partition (`tripline::rebalance`). `None` where no column holds it (a rule grouped by
/// `eventID`, a rule that is not exact, a rule without groups).
pub fn key_column(rule: &Rule, key: &str) -> Option<usize> {
    // A join's group keys start with the side they are of, and its main rows' hold columns.
    if !analyse(rule, key).exact || rule.join.is_some() {
        return None;
    }
    let stats = rule.stats.as_ref()?;
    stats
        .by
        .iter()
        .filter(|f| f.as_str() != "_time")
        .position(|f| origins(f, &rule.steps).is_ok_and(|from| from.iter().all(|f| canonical(f) == canonical(key))))
}

/// The partition-safety section of the coverage report: every compiled rule under `key`.
pub fn render(rules: &[&Rule], key: &str) -> String {
    let exact = rules.iter().filter(|r| analyse(r, key).exact).count();
    let mut s = String::new();
    let _ = writeln!(s, "## Partition safety (key `{key}`)");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Whether a rule's alerts stay exact when the records are split over several instances by \
         `{key}` (docs/scale-out.md; `tripline coverage --partition-key FIELD` for another key): \
         **{exact} of {}** compiled rules are exact.",
        rules.len()
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "| Key | Exact | Why |");
    let _ = writeln!(s, "|---|---|---|");
    for rule in rules {
        let v = analyse(rule, key);
        let _ = writeln!(s, "| `{}` | {} | {} |", rule.metadata.key, if v.exact { "yes" } else { "no" }, v.reason.replace('|', "\\|"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(steps: serde_json::Value, by: &[&str], after: serde_json::Value) -> Rule {
        serde_json::from_value(json!({
            "metadata": {"id": "x", "key": "k", "name": "n", "version": 1, "analytic_type": "TTP", "status": "production",
                         "impact": 1, "confidence": 1, "message": "m"},
            "source": {"kind": "local"},
            "selection": {"all": []},
            "steps": steps,
            "stats": {"by": by, "functions": [{"func": "count", "name": "count"}]},
            "after": after,
        }))
        .unwrap()
    }

    #[test]
    fn a_group_by_the_key_or_event_id_is_exact_and_by_caller_fields_is_not() {
        let key = DEFAULT_KEY;
        assert!(analyse(&rule(json!([]), &["src_ip", "recipientAccountId"], json!([])), key).exact);
        assert!(analyse(&rule(json!([]), &["eventID"], json!([])), key).exact);
        let caller = analyse(&rule(json!([]), &["_time", "aws_account_id", "user_arn", "src"], json!([])), key);
        assert!(!caller.exact);
        assert!(caller.reason.contains("`aws_account_id`, `user_arn`: the caller's account"), "{}", caller.reason);
        // The caller's ARN determines the caller's account.
        assert!(analyse(&rule(json!([]), &["userIdentity.arn"], json!([])), "userIdentity.accountId").exact);
        assert!(!analyse(&rule(json!([]), &["user_arn"], json!([])), "userIdentity.accountId").exact);
        // Aliases of the add-on: src is src_ip is sourceIPAddress.
        assert!(analyse(&rule(json!([]), &["src"], json!([])), "sourceIPAddress").exact);
        assert!(!analyse(&rule(json!([]), &["_time"], json!([])), key).exact);
    }

    #[test]
    fn steps_are_traced_to_the_field_they_copy() {
        let renamed = json!([{"rename": [{"from": "recipientAccountId", "to": "acct"}]}]);
        assert!(analyse(&rule(renamed, &["acct"], json!([])), DEFAULT_KEY).exact);
        let copied = json!([{"eval": [{"field": "acct", "expr": {"field": "recipientAccountId"}}]}]);
        assert!(analyse(&rule(copied, &["acct"], json!([])), DEFAULT_KEY).exact);
        let lowered = json!([{"eval": [{"field": "acct", "expr": {"call": {"func": "lower", "args": [{"field": "recipientAccountId"}]}}}]}]);
        assert!(!analyse(&rule(lowered, &["acct"], json!([])), DEFAULT_KEY).exact);
        let filled = json!([{"fillnull": {"value": "unknown", "fields": ["recipientAccountId"]}}]);
        let v = analyse(&rule(filled, &["recipientAccountId"], json!([])), DEFAULT_KEY);
        assert!(!v.exact && v.reason.contains("fillnull"), "{}", v.reason);
        let union = json!([{"union": [[], [{"rename": [{"from": "src_ip", "to": "recipientAccountId"}]}]]}]);
        assert!(!analyse(&rule(union, &["recipientAccountId"], json!([])), DEFAULT_KEY).exact);
    }

    #[test]
    fn eventstats_across_groups_needs_its_own_by_to_determine_the_key() {
        let functions = json!([{"func": "avg", "field": "count", "name": "avg"}]);
        let by_time = json!([{"eventstats": {"functions": functions, "by": ["_time"]}}]);
        let v = analyse(&rule(json!([]), &["_time", "recipientAccountId"], by_time), DEFAULT_KEY);
        assert!(!v.exact && v.reason.contains("eventstats"), "{}", v.reason);
        let by_account = json!([{"eventstats": {"functions": functions, "by": ["_time", "recipientAccountId"]}}]);
        assert!(analyse(&rule(json!([]), &["_time", "recipientAccountId"], by_account), DEFAULT_KEY).exact);
    }

    #[test]
    fn a_density_baseline_needs_its_own_by_to_determine_the_key() {
        let hour = json!([{"eval": [{"field": "HourOfDay", "expr": {"call": {"func": "strftime", "args": [{"field": "_time"}, {"str": "%H"}]}}}]}, "density"]);
        let density = |by: serde_json::Value| {
            serde_json::from_value(json!({"model": "m", "field": "count", "by": by, "threshold": 0.005, "min_cardinality": 16})).unwrap()
        };
        let mut per_hour = rule(json!([]), &["_time", "recipientAccountId"], hour.clone());
        per_hour.density = Some(density(json!(["HourOfDay"])));
        let v = analyse(&per_hour, DEFAULT_KEY);
        assert!(!v.exact && v.reason.contains("density baseline") && v.reason.contains("`HourOfDay`"), "{}", v.reason);
        per_hour.density = Some(density(json!(["recipientAccountId", "HourOfDay"])));
        assert!(analyse(&per_hour, DEFAULT_KEY).exact);
    }

    #[test]
    fn the_key_column_is_the_group_column_holding_the_key_itself() {
        let r = rule(json!([]), &["_time", "src_ip", "recipientAccountId"], json!([]));
        assert_eq!(key_column(&r, DEFAULT_KEY), Some(1));
        assert_eq!(key_column(&rule(json!([]), &["eventID", "src_ip"], json!([])), DEFAULT_KEY), None);
        assert_eq!(key_column(&rule(json!([]), &["src_ip"], json!([])), DEFAULT_KEY), None);
    }

    #[test]
    fn per_event_rules_are_exact() {
        let mut r = rule(json!([]), &["src_ip"], json!([]));
        r.stats = None;
        assert!(analyse(&r, DEFAULT_KEY).exact);
    }
}
