//! `docs/coverage.md`: every detection, whether it compiles, what it is indexed by, its
//! warnings or the reason it does not compile, with totals. Generated; deterministic.

use std::collections::BTreeMap;
use std::fmt::Write;

use tripline::catalog::{builtin_rules, catalog, Entry};

use crate::Outcome;

/// The command that regenerates the report and the pack (from the repository root).
pub const REGENERATE: &str = "cargo run -p tripline-compiler --bin tripline-compile -- escu ../shared/escu \
                              --pack rules/escu/pack.json --coverage docs/coverage.md";

/// How the compiler reads searches, stated once in the report.
const DECISIONS: &str = "\
- The base search's `sourcetype=aws:cloudtrail` (the `cloudtrail` macro) is dropped: tripline is fed \
CloudTrail records. Searches over another sourcetype, such as Amazon Security Lake's OCSF records \
(`amazon_security_lake`, `sourcetype=aws:cloudtrail:lake`), do not compile.
- `<detection>_filter` macros expand to `search *` (contentctl generates them so) and are dropped.
- Searches run with Splunk's semantics, not their authors' apparent intent: `OR` binds tighter than \
`AND` in `search`; an unquoted `a.b` in `eval`/`where` is the concatenation of fields `a` and `b`. \
The warnings say where that matters.
- *Indexed eventNames*: the names a top-level term of the base search restricts `eventName` to \
(literal names or `Prefix*`); the engine looks at a rule only for records with such a name. \
\"no\" means the rule sees every record.
- `stats ... by _time` without `bin` groups by the event's second: a 1-second span.
- `rename P* as *` (the one wildcard rename supported) becomes, for each field the rest of the \
pipeline reads, `eval f = coalesce('P<f>', f)`: Splunk renames `P<f>` onto `f` where it exists and \
leaves `f` alone where it does not.
- Regexes are PCRE in Splunk. A literal one (`rex`, `match()`) is translated to the engine's syntax \
(`regex_lite`: literal braces escaped, `(?'n'...)` named `(?<n>...)`, a final `$` also before a final \
newline) or the rule does not compile (lookaround, backreferences, possessive quantifiers...). A \
`match()` pattern computed per event is compiled by the engine as it comes, in its own syntax.
- `spath` and `rex` without `input=`/`field=` read `_raw`, the record's JSON text; `spath` without \
a path extracts every value by its path (`a.b`, `a{}.b`).
- Where every observable is an `Attacker`, the rule has no risk object (contentctl makes threat \
objects only); alerts carry the threat object.
- `fillnull` without a field list fills the fields the pipeline reads after it (before `stats`: the \
`by` fields and function inputs, traced back through renames and evals; after `stats`: the row's \
fields). Splunk fills every field some result has; the two differ only for a field that no event \
of the search window has at all.
- `append [search ...]` of a subsearch without `stats` over the same records becomes two branches \
side by side: each event runs through the main search's pipeline and the subsearch's, and the rows \
of both go on (an event both keep counts twice, as in Splunk). Splunk cuts an `append` subsearch at \
50,000 results (`maxout`) or 60 seconds (`maxtime`), where it would warn; tripline has no such cut.
- `join F1 F2 [search ... | stats ... by F1 F2 ...]` after a per-event main search ending in \
`table` runs as Splunk's `join` with its defaults (`type=inner`, `max=1`, `overwrite=true`; the \
subsearch over the same window): the main rows wait in the rule's window beside the subsearch's \
`stats` groups; when it closes, each main row takes the first subsearch row (in `stats` order) \
with the same texts in the join fields, whose non-null fields overwrite and extend it, and a main \
row without one is dropped (docs/semantics.md, \"join\"). A join option, a subsearch that is not a \
search over the same records (`inputlookup`, `summary`) or has no `stats`, or a command after the \
join (but the `_filter` macro) is refused. Splunk cuts the subsearch at 50,000 rows; tripline has \
no such cut.
- `values(object.*) as *` (the one wildcard stats function supported, and only before any per-event \
step) gives one column per field of the record under `object.`, as the add-on's JSON extraction names \
them (`a.b`, `a{}`), named by the rest of the name; the columns come in name order (Splunk's order \
among them is not documented), and a name another column has already is left to that column. \
The `max_values` cap counts the wildcard's values together.
- `eventstats` after `stats` runs over the rows of the window as it closes, where those are the \
rows the search's `eventstats` sees: after `bin`, a window is one bin, so `_time` must be among \
its `by` fields; without `bin`, the window is the search's own. Functions: avg, stdev (sample; 0 \
for a single value, which is tripline's choice where Splunk's documentation is silent), sum, \
min, max, count. Groups closed early by the caps (partial results) are each their own window.
- `| tstats ... from datamodel=Authentication` reads the records the model admits from CloudTrail \
(every `ConsoleLogin`: the add-on 7.10.0 tags only its two console-login eventtypes \
`authentication`), with the model's fields derived as the add-on's `props.conf` and the CIM \
model's calculations make them (`compiler/src/datamodel.rs` cites each): `action`, `app`, \
`signature`, `src`, `dest`, `user` (the add-on 7.10.0 `EVAL-user`, not tripline's 5.x `user`), \
`user_id`. The constraint `NOT (action=success user=*$)` and the `where` are applied to them. \
`drop_dm_object_name(M)` (ESCU's app macro, not among the YAML macros) is `rename M.* as *` \
(`\"M\".*`, as a quoted argument expands, reads as `M.*`: SPL joins a quoted part to what follows it).
- `| tstats ... from datamodel=Change` (dataset `All_Changes`) compiles where its `where` admits \
only eventNames the mapping covers: the eventNames whose add-on 7.10.0 lookup rows (`action`, \
`status`; `object_category` from `aws_cloudtrail_eventname_lookup_7100.csv`) can pass the filter \
become the selection (and the engine's index), and for those each field is the branch of the \
add-on's `case()` they take, under the CIM model's `unknown` fill (`compiler/src/datamodel.rs`). \
Mapped today: the security-group calls and the provisioning calls (lookup rows `created` or \
`started` with `success`). A filter that events the lookups do not name could pass (all three \
`unknown`) is refused. `by _time span=S` groups each scheduled window's rows by \
`S`-bins of `_time` (the bin is the row's `_time`), so an `eventstats` after it sees the whole \
window's rows, as the scheduled search's does.
- `lookup previously_seen_<x> <key> OUTPUT firstTimeSeen, lastTimeSeen, enough_data`, of a table \
a baseline search keeps (`compiler/src/baselines.rs` cites it), compiles where the search reads \
the baseline's data model with its filter and the lookup's key is a `tstats` group field: the \
rule's first-seen set, learned from its own groups as each window closes and judged before it \
learns (`docs/semantics.md`, \"First-seen sets\"). `now()` after `stats` is the end of the \
window being closed.
- ESCU 2024 `tags:` metadata: risk and threat objects as contentctl 4.4.1 derives them from the \
observables; `risk_score` checked against impact x confidence / 100.";

pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The reason with its place removed, to tally reasons.
fn reason_kind(reason: &str) -> String {
    let head = reason.split(": ").next().unwrap_or(reason);
    let mut out = String::new();
    let mut rest = head;
    while let Some(i) = rest.find(" (pipe ") {
        out.push_str(&rest[..i]);
        rest = rest[i + 1..].split_once(')').map_or("", |(_, r)| r);
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// A row's `Compiled`, `Indexed eventNames` and notes cells.
pub fn outcome_cells(o: &Outcome) -> (&'static str, String, String) {
    match &o.result {
        Ok(rule) => {
            let indexed = if rule.event_names.is_empty() { "no".to_string() } else { rule.event_names.join(", ") };
            let notes: Vec<String> = rule.warnings.iter().map(|w| format!("warning: {}", cell(w))).collect();
            ("yes", cell(&indexed), notes.join("<br>"))
        }
        Err(reason) => {
            let mut notes = vec![format!("**{}**", cell(reason))];
            notes.extend(o.warnings.iter().map(|w| format!("warning: {}", cell(w))));
            ("no", String::new(), notes.join("<br>"))
        }
    }
}

/// The built-in rule written by hand (`rules/seeds/`) that runs the detection `o` does not
/// compile to: one whose id is the detection's, written from a search the compiler does not
/// take (an MLTK model's `summary`/`apply`, run as a density baseline).
fn stand_in<'c>(o: &Outcome, hand_written: &'c [Entry]) -> Option<&'c Entry> {
    let id = (o.result.is_err() && !o.id.is_empty()).then_some(o.id.as_str())?;
    hand_written.iter().find(|entry| entry.rule().metadata.id == id)
}

/// The note of a detection a hand-written rule runs, ahead of why it does not compile.
fn stand_in_note(entry: &Entry) -> String {
    let default = if entry.enabled_by_default { "on" } else { "off" };
    format!("**runs as the built-in rule `{}`, written by hand from this search (`rules/seeds/`; {default} by default)**; not compiled: ", entry.key)
}

pub fn render(outcomes: &[Outcome], origin: &str) -> String {
    let hand_written: Vec<Entry> = catalog(builtin_rules()).into_iter().filter(|e| e.rule().source.kind == "local").collect();
    let total = outcomes.len();
    let compiled = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let production = outcomes.iter().filter(|o| o.status == "production").count();
    let production_compiled = outcomes.iter().filter(|o| o.status == "production" && o.result.is_ok()).count();
    let indexed = outcomes.iter().filter(|o| o.result.as_ref().is_ok_and(|r| !r.event_names.is_empty())).count();
    let warned = outcomes.iter().filter(|o| o.result.is_ok() && !o.warnings().is_empty()).count();

    let mut s = String::new();
    let _ = writeln!(s, "# ESCU coverage");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Generated by `tripline-compile` from `{origin}` (`detections/cloud/`); do not edit. \
         Regenerate, with the ESCU tree beside the checkout, by:"
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "    {REGENERATE}");
    let _ = writeln!(s);
    let _ = writeln!(s, "`make test` fails when this file or `rules/escu/pack.json` is stale.");
    let _ = writeln!(s);
    let _ = writeln!(s, "## Totals");
    let _ = writeln!(s);
    let _ = writeln!(s, "- Compiled: **{compiled} of {total}** detections.");
    let _ = writeln!(s, "- Production compiled: **{production_compiled} of {production}** production detections.");
    // Detections over another sourcetype cannot compile; the count over CloudTrail's own records
    // is the one a CloudTrail pipeline can reach.
    let elsewhere: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == "production" && o.other_sourcetype.is_some()).collect();
    if !elsewhere.is_empty() {
        let mut sourcetypes: Vec<String> = elsewhere.iter().filter_map(|o| o.other_sourcetype.as_ref()).map(|t| format!("`sourcetype={t}`")).collect();
        sourcetypes.sort_unstable();
        sourcetypes.dedup();
        let compiled_elsewhere = elsewhere.iter().filter(|o| o.result.is_ok()).count();
        let _ = writeln!(
            s,
            "- Production over CloudTrail's own records: **{} of {}** (the other {} production detections read {}).",
            production_compiled - compiled_elsewhere,
            production - elsewhere.len(),
            elsewhere.len(),
            sourcetypes.join(", ")
        );
    }
    let run_by_hand: Vec<String> = outcomes
        .iter()
        .filter_map(|o| stand_in(o, &hand_written).map(|entry| format!("`{}` as `{}`", o.key, entry.key)))
        .collect();
    if !run_by_hand.is_empty() {
        let _ = writeln!(s, "- Not compiled, but run by a built-in rule written by hand for the same detection: {}.", run_by_hand.join(", "));
    }
    let _ = writeln!(s, "- Indexed by eventName: {indexed} of the {compiled} compiled rules.");
    let _ = writeln!(s, "- Compiled with warnings: {warned}.");
    let _ = writeln!(s);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes {
        if let Err(reason) = &o.result {
            *reasons.entry(reason_kind(reason)).or_default() += 1;
        }
    }
    if !reasons.is_empty() {
        let _ = writeln!(s, "Why the others do not compile (first blocker of each):");
        let _ = writeln!(s);
        let mut tally: Vec<(String, usize)> = reasons.into_iter().collect();
        tally.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (reason, n) in tally {
            let _ = writeln!(s, "- {n} x {}", cell(&reason));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## How searches become rules");
    let _ = writeln!(s);
    let _ = writeln!(s, "{DECISIONS}");
    let _ = writeln!(s);
    let _ = writeln!(s, "## Detections");
    let _ = writeln!(s);
    let _ = writeln!(s, "| Detection | Key | Type | Status | Compiled | Indexed eventNames | Warnings, or why it does not compile |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for o in outcomes {
        let (compiled, indexed, mut notes) = outcome_cells(o);
        if let Some(entry) = stand_in(o, &hand_written) {
            notes.insert_str(0, &stand_in_note(entry));
        }
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {compiled} | {} | {notes} |",
            cell(&o.name),
            o.key,
            cell(&o.analytic_type),
            cell(&o.status),
            indexed
        );
    }
    let rules: Vec<&tripline::rule::Rule> = outcomes.iter().filter_map(|o| o.result.as_ref().ok()).collect();
    let _ = writeln!(s);
    s.push_str(&crate::partition::render(&rules, crate::partition::DEFAULT_KEY));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_kinds_drop_places() {
        assert_eq!(reason_kind("command `tstats` (pipe 1): CIM data-model searches"), "command `tstats`");
        assert_eq!(reason_kind("eval function `now()` is not supported (pipe 3)"), "eval function `now()` is not supported");
    }

    #[test]
    fn a_detection_a_hand_written_rule_runs_says_so() {
        let not_compiled = |key: &str, id: &str| Outcome {
            key: key.into(),
            id: id.into(),
            name: key.into(),
            analytic_type: "Anomaly".into(),
            status: "experimental".into(),
            other_sourcetype: None,
            result: Err("command `apply` (pipe 9): model scoring is not supported".into()),
            warnings: Vec::new(),
        };
        // Seed B's id, which is ESCU's for the security-group DensityFunction search.
        let seed_b = not_compiled("abnormally_high_number_of_cloud_security_group_api_calls", "d4dfb7f3-7a37-498a-b5df-f19334e871af");
        let other = not_compiled("abnormally_high_number_of_cloud_instances_launched", "f2361e9f-3928-496c-a556-120cd4223a65");
        let report = render(&[seed_b, other], "test");
        let row = |key: &str| report.lines().find(|l| l.contains(&format!("| `{key}` |"))).unwrap().to_string();
        assert!(row("abnormally_high_number_of_cloud_security_group_api_calls")
            .contains("**runs as the built-in rule `abnormally_high_cloud_security_group_api_calls`, written by hand from this search (`rules/seeds/`; on by default)**; not compiled: **command `apply`"));
        assert!(!row("abnormally_high_number_of_cloud_instances_launched").contains("runs as"));
        assert!(report.contains(
            "- Not compiled, but run by a built-in rule written by hand for the same detection: \
             `abnormally_high_number_of_cloud_security_group_api_calls` as `abnormally_high_cloud_security_group_api_calls`.\n"
        ));
    }

    #[test]
    fn detections_over_another_sourcetype_are_counted_apart() {
        let ctx = crate::Context::default();
        let yaml = |search: &str, status: &str| {
            format!(
                "name: D\nid: '1'\nversion: 1\ntype: TTP\nstatus: {status}\nsearch: '{search}'\ntags:\n  confidence: 50\n  impact: 50\n  \
                 message: m\n  risk_score: 25\n  observable:\n  - name: eventName\n    type: Other\n    role:\n    - Victim\n"
            )
        };
        let outcome = |key: &str, search: &str, status: &str| crate::compile_detection(key, "d.yml", &yaml(search, status), &ctx);
        let lake = outcome("lake", "sourcetype=aws:cloudtrail:lake api.operation=DeletePolicy | stats count by api.operation", "production");
        let trail = outcome("trail", "sourcetype=aws:cloudtrail eventName=DeletePolicy | stats count by eventName", "production");
        let bare = outcome("bare", "eventName=DeletePolicy | table eventName", "experimental");
        assert_eq!(lake.other_sourcetype.as_deref(), Some("aws:cloudtrail:lake"));
        let lake_later = outcome("lake_later", "api.operation=DeletePolicy sourcetype=aws:cloudtrail:lake | table api.operation", "experimental");
        assert_eq!(lake_later.other_sourcetype.as_deref(), Some("aws:cloudtrail:lake"));
        assert_eq!((trail.other_sourcetype.as_deref(), bare.other_sourcetype.as_deref()), (None, None));
        assert!(trail.result.is_ok(), "{:?}", trail.result);
        let report = render(&[lake, lake_later, trail, bare], "test");
        assert!(report.contains(
            "- Production over CloudTrail's own records: **1 of 1** (the other 1 production detections read `sourcetype=aws:cloudtrail:lake`).\n"
        ), "{report}");
    }
}
