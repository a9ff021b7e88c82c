//! What a search does differently from what its author meant. The rule still runs as written
//! (Splunk's semantics); these warnings go into `Rule.warnings` and `docs/coverage.md`.
//!
//! - A `by` list with `eventID` (unique per CloudTrail event) and a threshold over `count` or
//!   `dc()` above 1: every group holds one event, so the threshold never holds.
//! - An unquoted dotted name in eval/where (`userIdentity.userName`): `.` is concatenation
//!   there, so it reads two fields (usually both null), not the field.
//! - A search that mixes AND (implicit or written) with OR without parentheses: Splunk's search
//!   command reads OR first (`a b OR c` is `a AND (b OR c)`), which may not be what was meant.
//! - A `by` field that the ESCU data source for the rule's eventName lacks (neither in its
//!   example record nor in its add-on field list): such records join no group.
//! - `errorCode=success` over `ConsoleLogin`: a failed console login carries no raw `errorCode`
//!   (the failure is in `responseElements.ConsoleLogin`); add-ons before 7.10.0 default the field
//!   to `success`, so the search matches failed logins too (7.10.0, which tripline's field table
//!   follows, calculates `failure` for them).
//! - A `spath` path over the raw record that the ESCU data source's example record of the rule's
//!   eventName does not have (`{}` steps into arrays only): spath extracts nothing there.
//! - A risk object, threat object or message token that names no field of the result row.

use std::collections::BTreeSet;

use tripline::rule::{AggFunc, BinaryOp, CompareOp, Cond, Expr, Metadata, Stats, Step};

use crate::ast::{Command, CommandKind, EvalNode, SearchNode};
use crate::datasources::{DataSource, DataSources};
use crate::lower::{row_fields, Lowered};

/// Warnings from the parsed commands alone (also given for rules that do not compile).
pub fn lint_commands(commands: &[Command]) -> Vec<String> {
    let mut out = Vec::new();
    for cmd in commands {
        let place = if cmd.pipe == 0 { "the base search".to_string() } else { format!("`{}` (pipe {})", command_name(cmd), cmd.pipe) };
        match &cmd.kind {
            CommandKind::Search(node) => mixed_and_or(node, cmd.pipe == 0, &place, &mut out),
            CommandKind::Where(e) => dotted_names(e, &place, &mut out),
            CommandKind::Eval(assigns) => assigns.iter().for_each(|(_, e)| dotted_names(e, &place, &mut out)),
            CommandKind::Append(inner) => {
                out.extend(lint_commands(inner).into_iter().map(|w| format!("the `append` subsearch (pipe {}): {w}", cmd.pipe)))
            }
            _ => {}
        }
    }
    out
}

fn command_name(cmd: &Command) -> &str {
    cmd.text.split_whitespace().next().unwrap_or("")
}

fn is_sourcetype(node: &SearchNode) -> bool {
    matches!(node, SearchNode::Compare { field, .. } if field == "sourcetype")
}

fn mixed_and_or(node: &SearchNode, top: bool, place: &str, out: &mut Vec<String>) {
    match node {
        SearchNode::And(items) => {
            let kept: Vec<SearchNode> = items.iter().filter(|i| !(top && is_sourcetype(i))).cloned().collect();
            if kept.len() >= 2 && kept.iter().any(|i| matches!(i, SearchNode::Or(_))) {
                out.push(format!(
                    "{place} mixes AND and OR without parentheses; Splunk's search reads OR first, so it runs as `{}`",
                    SearchNode::And(kept).to_spl()
                ));
            }
            items.iter().for_each(|i| mixed_and_or(i, false, place, out));
        }
        SearchNode::Or(items) => items.iter().for_each(|i| mixed_and_or(i, false, place, out)),
        SearchNode::Not(inner) | SearchNode::Paren(inner) => mixed_and_or(inner, false, place, out),
        _ => {}
    }
}

fn dotted_text(node: &EvalNode) -> String {
    match node {
        EvalNode::Binary { left, right, dotted: true, .. } => format!("{}.{}", dotted_text(left), dotted_text(right)),
        other => other.to_spl(),
    }
}

fn dotted_names(node: &EvalNode, place: &str, out: &mut Vec<String>) {
    fn visit(node: &EvalNode, in_chain: bool, place: &str, out: &mut Vec<String>) {
        match node {
            EvalNode::Binary { left, right, dotted: true, .. } => {
                if !in_chain {
                    let name = dotted_text(node);
                    let parts = name.replace('.', " . ");
                    out.push(format!(
                        "{place}: unquoted `{name}` is `{parts}` in eval, a concatenation of fields, not the field \
                         `{name}` (that needs single quotes: '{name}')"
                    ));
                }
                visit(left, true, place, out);
                visit(right, true, place, out);
            }
            EvalNode::Binary { left, right, .. } => {
                visit(left, false, place, out);
                visit(right, false, place, out);
            }
            EvalNode::Not(e) | EvalNode::Neg(e) => visit(e, false, place, out),
            EvalNode::Call { args, .. } => args.iter().for_each(|a| visit(a, false, place, out)),
            EvalNode::Str(_) | EvalNode::Num(_) | EvalNode::Field(_) => {}
        }
    }
    visit(node, false, place, out)
}

/// Warnings about a lowered rule and its metadata.
pub fn lint_rule(l: &Lowered, meta: &Metadata, sources: &DataSources) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(stats) = &l.stats {
        unique_group_threshold(stats, &l.after, &mut out);
        by_fields_in_data_sources(l, stats, sources, &mut out);
    }
    console_login_success(l, &mut out);
    spath_paths_in_data_sources(l, sources, &mut out);
    row_names(l, meta, &mut out);
    out
}

/// The aggregation outputs that count events or distinct values.
fn counting_outputs(stats: &Stats) -> Vec<&str> {
    stats.functions.iter().filter(|a| matches!(a.func, AggFunc::Count | AggFunc::Dc)).map(|a| a.name.as_str()).collect()
}

/// Whether `field op n` needs two or more.
fn needs_two(op: CompareOp, n: f64) -> bool {
    match op {
        CompareOp::Ge | CompareOp::Eq => n > 1.0,
        CompareOp::Gt => n >= 1.0,
        _ => false,
    }
}

fn unique_group_threshold(stats: &Stats, after: &[Step], out: &mut Vec<String>) {
    if !stats.by.iter().any(|f| f == "eventID") {
        return;
    }
    let counting = counting_outputs(stats);
    let mut found: Vec<String> = Vec::new();
    for step in after {
        match step {
            Step::Where(e) => thresholds_expr(e, &counting, &mut found),
            Step::Search(c) => thresholds_cond(c, &counting, &mut found),
            _ => {}
        }
    }
    for t in found {
        out.push(format!(
            "`stats` groups by `eventID`, unique to each CloudTrail event, so every group holds one event and `{t}` \
             can never hold: the rule never fires"
        ));
    }
}

fn compare_op(op: BinaryOp) -> Option<CompareOp> {
    Some(match op {
        BinaryOp::Eq => CompareOp::Eq,
        BinaryOp::Gt => CompareOp::Gt,
        BinaryOp::Ge => CompareOp::Ge,
        _ => return None,
    })
}

fn thresholds_expr(e: &Expr, counting: &[&str], found: &mut Vec<String>) {
    match e {
        Expr::Binary { op, left, right, .. } => {
            if let (Some(cop), Expr::Field(f), Expr::Num(n)) = (compare_op(*op), left.as_ref(), right.as_ref()) {
                if counting.contains(&f.as_str()) && needs_two(cop, *n) {
                    found.push(format!("{f} {} {}", crate::ast::compare_spl(cop), crate::ast::format_num(*n)));
                }
            }
            thresholds_expr(left, counting, found);
            thresholds_expr(right, counting, found);
        }
        Expr::Not(_) => {}
        Expr::Call { .. } | Expr::Neg(_) | Expr::Str(_) | Expr::Num(_) | Expr::Field(_) => {}
    }
}

fn thresholds_cond(c: &Cond, counting: &[&str], found: &mut Vec<String>) {
    match c {
        Cond::All(items) | Cond::Any(items) => items.iter().for_each(|i| thresholds_cond(i, counting, found)),
        Cond::Compare { field, op, value } => {
            if let Ok(n) = value.parse::<f64>() {
                if counting.contains(&field.as_str()) && needs_two(*op, n) {
                    found.push(format!("{field}{}{value}", crate::ast::compare_spl(*op)));
                }
            }
        }
        Cond::Not(_) | Cond::In { .. } | Cond::Sigma { .. } => {}
    }
}

/// The raw field a `by` field comes from, traced back through the steps before `stats`; `None`
/// when a step computes or fills it.
fn source_field(field: &str, steps: &[Step]) -> Option<String> {
    let mut f = field.to_string();
    for step in steps.iter().rev() {
        match step {
            Step::Rename(renames) => {
                if let Some(r) = renames.iter().rev().find(|r| r.to == f) {
                    f = r.from.clone();
                }
            }
            Step::Eval(assigns) if assigns.iter().any(|a| a.field == f) => return None,
            Step::Spath { output, .. } if *output == f => return None,
            Step::Rex { regex, .. } if crate::pcre::group_names(regex).contains(&f) => return None,
            Step::Fillnull { fields, .. } if fields.contains(&f) => return None,
            _ => {}
        }
    }
    Some(f)
}

fn by_fields_in_data_sources(l: &Lowered, stats: &Stats, sources: &DataSources, out: &mut Vec<String>) {
    for by in stats.by.iter().filter(|f| *f != "_time") {
        let Some(field) = source_field(by, &l.steps) else { continue };
        let mut lacking: Vec<(String, String)> = Vec::new();
        for name in &l.event_names {
            if let Some(source) = sources.for_event(name).iter().find(|s| !s.has(&field)) {
                lacking.push((name.clone(), source.file.clone()));
            }
        }
        if lacking.is_empty() {
            continue;
        }
        let via = if field != *by { format!(" (renamed from `{field}`)") } else { String::new() };
        let examples: Vec<String> = lacking.iter().map(|(name, file)| format!("{name} in {file}")).collect();
        out.push(format!(
            "`stats` groups by `{by}`{via}, which the example record of {} lacks (nor does its field list name it): \
             records without it join no group",
            examples.join(", ")
        ));
    }
}

/// Whether a record with these leaf paths has something at the spath `path`.
fn has_path(source: &DataSource, path: &str) -> bool {
    source.example_paths.iter().any(|p| {
        p.strip_prefix(path).is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with("{}"))
    })
}

fn spath_paths_in_data_sources(l: &Lowered, sources: &DataSources, out: &mut Vec<String>) {
    for step in &l.steps {
        let Step::Spath { input, output, path } = step else { continue };
        if input != "_raw" {
            continue;
        }
        let lacking: Vec<String> = l
            .event_names
            .iter()
            .filter_map(|name| sources.for_event(name).iter().find(|s| !has_path(s, path)).map(|s| format!("{name} in {}", s.file)))
            .collect();
        if lacking.is_empty() {
            continue;
        }
        let grouped = match &l.stats {
            Some(stats) if stats.by.contains(output) => format!(", and `stats` groups by `{output}`: such records join no group"),
            _ => String::new(),
        };
        out.push(format!(
            "`spath path={path}` finds nothing in the example record of {} (`{{}}` steps into arrays only): `{output}` is null \
             for such records{grouped}",
            lacking.join(", ")
        ));
    }
}

fn has_success_error_code(c: &Cond) -> bool {
    match c {
        Cond::All(items) | Cond::Any(items) => items.iter().any(has_success_error_code),
        Cond::Compare { field, op: CompareOp::Eq, value } => field == "errorCode" && value.eq_ignore_ascii_case("success"),
        Cond::In { field, values } => field == "errorCode" && values.iter().any(|v| v.eq_ignore_ascii_case("success")),
        _ => false,
    }
}

fn console_login_success(l: &Lowered, out: &mut Vec<String>) {
    if !l.event_names.iter().any(|n| n.eq_ignore_ascii_case("ConsoleLogin")) {
        return;
    }
    let searched = std::iter::once(&l.selection).chain(l.steps.iter().filter_map(|s| match s {
        Step::Search(c) => Some(c),
        _ => None,
    }));
    if searched.into_iter().any(has_success_error_code) {
        out.push(
            "`errorCode=success` over ConsoleLogin depends on the add-on: a failed console login carries no raw \
             `errorCode` (AWS records the failure in `responseElements.ConsoleLogin`); add-ons before 7.10.0 default \
             the field to `success`, so there the search matches failed logins too; 7.10.0, which tripline follows, \
             calculates `failure` for them"
                .into(),
        );
    }
}

/// The fields of the rows the rule emits, where they are known.
fn emitted_fields(l: &Lowered) -> Option<Vec<String>> {
    if let Some(stats) = &l.stats {
        let mut fields = row_fields(stats, &l.after);
        // A join's row is the main row's `table` columns with the subsearch row's fields.
        if let Some(Step::Table(columns)) = l.join.as_ref().and_then(|j| j.steps.last()) {
            fields.extend(columns.iter().filter(|c| !fields.contains(c)).cloned().collect::<Vec<_>>());
        }
        return Some(fields);
    }
    // Without `stats` the row is the event: known only after a `table`.
    let last_table = l.steps.iter().rposition(|s| matches!(s, Step::Table(_)))?;
    let Step::Table(fields) = &l.steps[last_table] else { unreachable!() };
    let stats = Stats { span_seconds: None, by: fields.clone(), functions: Vec::new() };
    Some(row_fields(&stats, &l.steps[last_table + 1..]))
}

fn row_names(l: &Lowered, meta: &Metadata, out: &mut Vec<String>) {
    let Some(fields) = emitted_fields(l) else { return };
    let has = |f: &str| fields.iter().any(|x| x == f);
    if let Some(risk) = meta.risk_object.as_ref().filter(|r| !has(&r.field)) {
        out.push(format!("the risk object `{}` is not a field of the result row: alerts carry no risk object", risk.field));
    }
    if let Some(t) = &meta.threat_object {
        if !has(&t.field) {
            out.push(format!("the threat object `{}` is not a field of the result row", t.field));
        }
    }
    let mut missing = BTreeSet::new();
    for token in message_tokens(&meta.message) {
        if !has(&token) {
            missing.insert(token);
        }
    }
    for token in missing {
        out.push(format!("the message token `${token}$` names no field of the result row"));
    }
}

/// The `$field$` tokens of a risk message.
pub fn message_tokens(message: &str) -> Vec<String> {
    let parts: Vec<&str> = message.split('$').collect();
    parts.iter().skip(1).step_by(2).take(parts.len().saturating_sub(1) / 2).map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasources::DataSource;
    use crate::lexer::split_pipes;
    use crate::lower::lower;
    use crate::parse::parse_command;
    use tripline::rule::ObjectField;

    fn commands(text: &str) -> Vec<Command> {
        split_pipes(text).unwrap().iter().enumerate().map(|(i, s)| parse_command(i, s).unwrap()).collect()
    }

    fn meta(risk: &str, message: &str) -> Metadata {
        Metadata {
            id: String::new(),
            key: String::new(),
            name: String::new(),
            version: 1,
            analytic_type: "TTP".into(),
            status: "production".into(),
            impact: 50,
            confidence: 50,
            risk_object: Some(ObjectField { field: risk.into(), kind: "user".into() }),
            threat_object: None,
            message: message.into(),
            message_aliases: vec![],
            mitre_attack: vec![],
            kill_chain_phases: vec![],
            nist: vec![],
            cis20: vec![],
            threat_actors: vec![],
            analytic_stories: vec![],
            sigma: None,
        }
    }

    fn rule_warnings(text: &str, sources: &DataSources) -> Vec<String> {
        let l = lower(&commands(text)).unwrap();
        lint_rule(&l, &meta("user_arn", "by $user_arn$"), sources)
    }

    #[test]
    fn event_id_groups_cannot_reach_a_count_threshold() {
        let w = rule_warnings("x=1 | stats count by eventID user_arn | where count >= 2", &DataSources::default());
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("`count >= 2` can never hold"), "{w:?}");
        assert!(rule_warnings("x=1 | stats count by eventID user_arn | where count >= 1", &DataSources::default()).is_empty());
        assert!(rule_warnings("x=1 | stats count by user_arn | where count >= 2", &DataSources::default()).is_empty());
        let dc = rule_warnings("x=1 | stats dc(src) as n by eventID user_arn | search n>1", &DataSources::default());
        assert!(dc[0].contains("`n>1`"), "{dc:?}");
    }

    #[test]
    fn unquoted_dotted_names_in_eval_are_flagged() {
        let w = lint_commands(&commands(
            "x=1 | eval match=if(match(userIdentity.userName,requestParameters.userName), 1,0) | where 'a.b'=c.d.e",
        ));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("`eval` (pipe 1): unquoted `userIdentity.userName` is `userIdentity . userName`"), "{w:?}");
        assert!(w[1].contains("`requestParameters.userName`"));
        assert!(w[2].starts_with("`where` (pipe 2): unquoted `c.d.e`"), "{w:?}");
        assert!(lint_commands(&commands(r#"x=1 | eval f = a . ", " . b"#)).is_empty());
    }

    #[test]
    fn or_without_parentheses_beside_and_is_flagged() {
        let w = lint_commands(&commands("sourcetype=aws:cloudtrail a=1 (b=2 OR b=3) c=4 OR d=5"));
        assert_eq!(w, vec!["the base search mixes AND and OR without parentheses; Splunk's search reads OR first, so it runs as `a=1 AND (b=2 OR b=3) AND (c=4 OR d=5)`"]);
        assert!(lint_commands(&commands("sourcetype=aws:cloudtrail eventName=A OR eventName=B")).is_empty());
        assert!(lint_commands(&commands("x=1 (a=1 OR b=2)")).is_empty());
        assert_eq!(lint_commands(&commands("x=1 | search a=1 AND b=2 OR c=3")).len(), 1);
    }

    #[test]
    fn by_fields_missing_from_the_data_source_example() {
        let mut sources = DataSources::default();
        let mut example_paths = BTreeSet::new();
        example_paths.insert("userIdentity.type".to_string());
        sources.insert(
            "ConsoleLogin",
            DataSource {
                file: "data_sources/aws_cloudtrail_consolelogin.yml".into(),
                fields: ["user_arn", "src"].iter().map(|s| s.to_string()).collect(),
                example_paths,
            },
        );
        let w = rule_warnings(
            "eventName=ConsoleLogin | rename userIdentity.type as t | stats count by src userIdentity.arn t user_arn",
            &sources,
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("`stats` groups by `userIdentity.arn`, which the example record of ConsoleLogin in data_sources/aws_cloudtrail_consolelogin.yml lacks"), "{w:?}");
        assert!(rule_warnings("eventName=Other | stats count by userIdentity.arn user_arn", &sources).is_empty());
    }

    #[test]
    fn spath_paths_the_data_source_example_lacks() {
        let mut sources = DataSources::default();
        let example: serde_json::Value = serde_json::json!({"requestParameters": {"bucketName": "b", "Rule": [{"Days": 1}]}});
        let mut example_paths = BTreeSet::new();
        crate::datasources::leaf_paths(&example, "", &mut example_paths);
        sources.insert("PutBucketLifecycle", DataSource { file: "data_sources/x.yml".into(), fields: BTreeSet::new(), example_paths });
        let l = lower(&commands(
            "eventName=PutBucketLifecycle | spath path=requestParameters{}.bucketName output=b | spath path=requestParameters.Rule{}.Days \
             output=d | spath path=requestParameters.bucketName output=c | stats count by b d c",
        ))
        .unwrap();
        let mut w = Vec::new();
        spath_paths_in_data_sources(&l, &sources, &mut w);
        assert_eq!(
            w,
            vec!["`spath path=requestParameters{}.bucketName` finds nothing in the example record of PutBucketLifecycle in \
                  data_sources/x.yml (`{}` steps into arrays only): `b` is null for such records, and `stats` groups by `b`: \
                  such records join no group"]
        );
    }

    #[test]
    fn error_code_success_over_console_login() {
        let w = rule_warnings("eventName=ConsoleLogin errorCode=success | stats count by user_arn", &DataSources::default());
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("`errorCode=success` over ConsoleLogin"));
        assert!(rule_warnings("eventName=GetObject errorCode=success | stats count by user_arn", &DataSources::default()).is_empty());
    }

    #[test]
    fn risk_object_and_message_tokens_must_be_row_fields() {
        let l = lower(&commands("x=1 | stats count by src")).unwrap();
        let w = lint_rule(&l, &meta("user_arn", "by $user_arn$ from $src$ ($count$)"), &DataSources::default());
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("risk object `user_arn`"));
        assert!(w[1].contains("`$user_arn$`"));
        assert_eq!(message_tokens("a $x$ b $y$ c $"), vec!["x", "y"]);
    }
}
