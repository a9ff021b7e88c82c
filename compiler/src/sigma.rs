//! Sigma rules (YAML) to tripline rules: the front end for SigmaHQ's CloudTrail rules and a
//! user's own.
//!
//! A rule's `detection` becomes one selection over the raw record ([`Cond::Sigma`] tests,
//! `docs/semantics.md` "Sigma"): a search identifier's map is an AND of its fields, a list of
//! maps an OR; a field's list of values an OR (`|all`: AND); `contains`/`startswith`/`endswith`
//! add wildcards around the value as the specification says; `re` (with `i`/`m`/`s`), `cased`,
//! `exists`, `fieldref` and `null` are tests of their own. The condition (`and`, `or`, `not`,
//! brackets, `1 of`/`all of` a pattern or `them`, a list of conditions) is parsed with Sigma's
//! precedence. Every match tags its record at once; there is no aggregation. What a rule asks
//! that the engine cannot do (keyword searches, correlations, other log sources, other
//! modifiers) makes it not compile, with the reason.
//!
//! The YAML is read with `serde_norway` (as ESCU's): no Sigma crate is linked, and the module
//! links none either, as it embeds only the compiled pack.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_norway::Value as Yaml;
use tripline::rule::sigma::{escape, pattern_match, Relation, SigmaRegex, SigmaTest};
use tripline::rule::{Cond, Metadata, Pack, Rule, SigmaMetadata, Source, Technique};

use crate::enrich::Enrichment;
use crate::Outcome;

pub const REPOSITORY: &str = "SigmaHQ/sigma";
/// SigmaHQ's CloudTrail rules, relative to a checkout's root.
pub const RULES: &str = "rules/cloud/aws/cloudtrail";
/// Configuration keys are the file's name under this prefix, apart from ESCU's keys.
pub const KEY_PREFIX: &str = "sigma_";

/// The top-level members of a CloudTrail record (AWS, "CloudTrail record contents for
/// management, data, and network activity events"): a field outside them is worth a warning.
const RECORD_FIELDS: &[&str] = &[
    "eventTime", "eventVersion", "userIdentity", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent",
    "errorCode", "errorMessage", "requestParameters", "responseElements", "additionalEventData", "requestID", "eventID",
    "eventType", "apiVersion", "managementEvent", "readOnly", "resources", "recipientAccountId", "serviceEventDetails",
    "sharedEventID", "vpcEndpointId", "vpcEndpointAccountId", "eventCategory", "addendum", "sessionCredentialFromConsole",
    "edgeDeviceDetails", "tlsDetails", "insightDetails",
];

/// The risk score of a level: Elastic Security's default risk score per severity (low 21,
/// medium 47, high 73, critical 99), informational taken as low.
fn risk_score(level: &str) -> Option<u32> {
    Some(match level {
        "informational" | "low" => 21,
        "medium" => 47,
        "high" => 73,
        "critical" => 99,
        _ => return None,
    })
}

/// Compiles one Sigma rule file; `file` is its path relative to its collection's root, and its
/// name (without `.yml`) the rule's key after [`KEY_PREFIX`].
pub fn compile_rule(file: &str, text: &str, commit: &str, enrichment: Option<&Enrichment>) -> Outcome {
    let stem = Path::new(file).file_stem().map_or(file.to_string(), |s| s.to_string_lossy().into_owned());
    let key = format!("{KEY_PREFIX}{stem}");
    let yaml: Result<Yaml, _> = serde_norway::from_str(text);
    let text_of = |y: &Yaml, k: &str| y.get(k).and_then(Yaml::as_str).unwrap_or_default().to_string();
    let (id, name, level, status) = match &yaml {
        Ok(y) => (text_of(y, "id"), text_of(y, "title"), text_of(y, "level"), text_of(y, "status")),
        Err(_) => (String::new(), key.clone(), String::new(), String::new()),
    };
    let result = yaml
        .map_err(|e| format!("the YAML does not read: {e}"))
        .and_then(|y| compile_yaml(&key, file, text, &y, commit, enrichment));
    Outcome { key, id, name, analytic_type: level, status, other_sourcetype: None, result, warnings: Vec::new() }
}

fn compile_yaml(key: &str, file: &str, text: &str, y: &Yaml, commit: &str, enrichment: Option<&Enrichment>) -> Result<Rule, String> {
    if y.get("correlation").is_some() {
        return Err("a correlation rule (several events) is not supported: tripline runs single-event Sigma rules".into());
    }
    let logsource = y.get("logsource").ok_or("no `logsource`")?;
    let (product, service) = (logsource.get("product").and_then(Yaml::as_str), logsource.get("service").and_then(Yaml::as_str));
    if product != Some("aws") || service != Some("cloudtrail") {
        return Err(format!(
            "logsource product `{}`, service `{}`: tripline reads AWS CloudTrail (product: aws, service: cloudtrail)",
            product.unwrap_or(""),
            service.unwrap_or("")
        ));
    }
    let detection = y.get("detection").and_then(Yaml::as_mapping).ok_or("no `detection` map")?;
    if detection.get("timeframe").is_some() {
        return Err("`timeframe` (a condition over several events) is not supported".into());
    }
    let mut identifiers = Vec::new();
    for (name, body) in detection {
        let name = name.as_str().ok_or("a search identifier that is not a string")?;
        if name == "condition" || name == "timeframe" {
            continue;
        }
        let cond = identifier(body).map_err(|e| format!("`{name}`: {e}"))?;
        identifiers.push((name.to_string(), cond));
    }
    let conditions: Vec<&str> = match detection.get("condition") {
        Some(Yaml::String(c)) => vec![c.as_str()],
        Some(Yaml::Sequence(items)) => items.iter().map(|c| c.as_str().ok_or("a condition that is not a string")).collect::<Result<_, _>>()?,
        _ => return Err("no `condition`".into()),
    };
    let mut branches = Vec::new();
    for c in conditions {
        branches.push(condition(c, &identifiers).map_err(|e| format!("condition `{c}`: {e}"))?);
    }
    let selection = simplify(Cond::Any(branches));

    let id = y.get("id").and_then(Yaml::as_str).ok_or("no `id`")?.to_string();
    let title = y.get("title").and_then(Yaml::as_str).ok_or("no `title`")?.to_string();
    let level = y.get("level").and_then(Yaml::as_str).unwrap_or_default().to_string();
    let score = risk_score(&level).ok_or_else(|| format!("level `{level}` is none of informational, low, medium, high, critical"))?;
    let status = y.get("status").and_then(Yaml::as_str).unwrap_or_default().to_string();
    let tags: Vec<String> = y.get("tags").and_then(Yaml::as_sequence).into_iter().flatten().filter_map(Yaml::as_str).map(str::to_string).collect();
    let author = y.get("author").and_then(Yaml::as_str).unwrap_or_default().to_string();
    let metadata = Metadata {
        id,
        key: key.to_string(),
        message: format!("{title}: $eventName$ by $userIdentity.arn$ from $sourceIPAddress$"),
        name: title,
        version: 0,
        analytic_type: String::new(),
        status,
        impact: score,
        confidence: 100,
        risk_object: None,
        threat_object: None,
        message_aliases: Vec::new(),
        mitre_attack: techniques(&tags, enrichment),
        kill_chain_phases: Vec::new(),
        nist: Vec::new(),
        cis20: Vec::new(),
        threat_actors: Vec::new(),
        analytic_stories: Vec::new(),
        sigma: Some(SigmaMetadata { level, tags, author }),
    };
    let mut warnings = Vec::new();
    lint(&selection, &mut warnings);
    Ok(Rule {
        metadata,
        source: Source { kind: "sigma".into(), file: file.into(), commit: commit.into(), search: detection_text(text) },
        event_names: required_names(&selection).unwrap_or_default(),
        selection,
        steps: Vec::new(),
        stats: None,
        after: Vec::new(),
        first_seen: None,
        density: None,
        join: None,
        tag_each_event: true,
        warnings,
        enabled_by_default: None,
    })
}

/// The `detection:` block as written, for `explain` and the pack's reader.
fn detection_text(text: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("detection:"));
    let first = lines.next().unwrap_or_default();
    let rest = lines.take_while(|l| l.is_empty() || l.starts_with([' ', '\t', '#']));
    std::iter::once(first).chain(rest).collect::<Vec<_>>().join("\n").trim_end().to_string()
}

/// ATT&CK techniques from `attack.tNNNN[.NNN]` tags, with the rule's own tactic tags and the
/// technique's name where the enrichment data knows it.
fn techniques(tags: &[String], enrichment: Option<&Enrichment>) -> Vec<Technique> {
    let attack: Vec<&str> = tags.iter().filter_map(|t| t.strip_prefix("attack.")).collect();
    // `t1078.004`, `g0016`, `s0002`: technique, group and software ids; the rest are tactics.
    let is_id = |t: &str, kind: char| t.len() > 1 && t.starts_with(kind) && t[1..].bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let is_technique = |t: &str| is_id(t, 't');
    let tactics: Vec<&str> = attack.iter().copied().filter(|t| !is_id(t, 't') && !is_id(t, 'g') && !is_id(t, 's')).collect();
    attack
        .iter()
        .filter(|t| is_technique(t))
        .map(|t| {
            let id = t.to_uppercase();
            let name = enrichment.and_then(|e| e.techniques.get(&id)).map(|i| i.name.clone()).unwrap_or_default();
            Technique { id, name, tactic: tactics.join(", ") }
        })
        .collect()
}

/// A search identifier: a map (AND of its fields) or a list of maps (OR).
fn identifier(body: &Yaml) -> Result<Cond, String> {
    match body {
        Yaml::Mapping(map) => {
            let mut all = Vec::new();
            for (key, value) in map {
                let key = key.as_str().ok_or("a field name that is not a string")?;
                all.push(field(key, value).map_err(|e| format!("`{key}`: {e}"))?);
            }
            Ok(simplify(Cond::All(all)))
        }
        Yaml::Sequence(items) if items.iter().all(|i| matches!(i, Yaml::Mapping(_))) => {
            Ok(simplify(Cond::Any(items.iter().map(identifier).collect::<Result<_, _>>()?)))
        }
        Yaml::Sequence(_) | Yaml::String(_) => {
            Err("a keyword search (values without a field, matched anywhere in the record) is not supported: name the field".into())
        }
        _ => Err("a search identifier is a map of fields or a list of maps".into()),
    }
}

/// One `field|modifiers: value(s)` entry.
fn field(key: &str, value: &Yaml) -> Result<Cond, String> {
    let mut parts = key.split('|');
    let name = parts.next().unwrap_or_default().to_string();
    if name.is_empty() {
        return Err("a keyword search (a modifier without a field) is not supported: name the field".into());
    }
    let modifiers: Vec<&str> = parts.collect();
    let mut all = false;
    let mut wrap = (false, false);
    let (mut regex, mut cased, mut exists, mut fieldref) = (false, false, false, false);
    let mut flags = String::new();
    for m in &modifiers {
        match *m {
            "contains" => wrap = (true, true),
            "startswith" => wrap.1 = true,
            "endswith" => wrap.0 = true,
            "all" => all = true,
            "re" => regex = true,
            "i" | "m" | "s" if regex => flags.push_str(m),
            "cased" => cased = true,
            "exists" => exists = true,
            "fieldref" => fieldref = true,
            other => return Err(format!("modifier `{other}` is not supported (supported: contains, startswith, endswith, all, re with i/m/s, cased, exists, fieldref)")),
        }
    }
    let values: Vec<&Yaml> = match value {
        Yaml::Sequence(items) => items.iter().collect(),
        single => vec![single],
    };
    if values.is_empty() {
        return Err("an empty list of values".into());
    }
    let mut tests = Vec::new();
    for v in values {
        let test = if exists {
            match v {
                Yaml::Bool(true) => Cond::Not(Box::new(sigma(&name, SigmaTest::Null))),
                Yaml::Bool(false) => sigma(&name, SigmaTest::Null),
                _ => return Err("`exists` takes true or false".into()),
            }
        } else if v.is_null() {
            if !modifiers.is_empty() {
                return Err("`null` takes no modifier".into());
            }
            sigma(&name, SigmaTest::Null)
        } else {
            let text = scalar(v)?;
            if regex {
                let pattern = if flags.is_empty() { text } else { format!("(?{flags}){text}") };
                sigma(&name, SigmaTest::Regex(SigmaRegex::new(&pattern).map_err(|e| format!("`re`: {e} (the engine's regex syntax is regex_lite's)"))?))
            } else if fieldref {
                let relation = match wrap {
                    (false, false) => Relation::Equals,
                    (false, true) => Relation::StartsWith,
                    (true, false) => Relation::EndsWith,
                    (true, true) => Relation::Contains,
                };
                sigma(&name, SigmaTest::Field { field: text, relation })
            } else {
                let body = pattern(&text);
                let pattern = format!("{}{body}{}", if wrap.0 { "*" } else { "" }, if wrap.1 { "*" } else { "" });
                sigma(&name, SigmaTest::Pattern { pattern, cased })
            }
        };
        tests.push(test);
    }
    Ok(simplify(if all { Cond::All(tests) } else { Cond::Any(tests) }))
}

fn sigma(field: &str, test: SigmaTest) -> Cond {
    Cond::Sigma { field: field.to_string(), test }
}

/// A YAML scalar as Sigma's string value (numbers and booleans as written).
fn scalar(v: &Yaml) -> Result<String, String> {
    match v {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        _ => Err("a value is a string, number, boolean or null".into()),
    }
}

/// A Sigma value in the engine's pattern form, where every literal `*`, `?` and `\` is escaped.
/// Sigma's escaping: `\` escapes a following `*`, `?` or `\`; any other `\` is itself.
pub fn pattern(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push_str(&escape(&next.to_string()));
                }
                _ => out.push_str(r"\\"),
            },
            c => out.push(c),
        }
    }
    out
}

/// Flattens nested AND/OR and drops one-item groups.
fn simplify(cond: Cond) -> Cond {
    match cond {
        Cond::All(items) | Cond::Any(items) if items.len() == 1 => simplify(items.into_iter().next().unwrap_or(Cond::All(Vec::new()))),
        Cond::All(items) => Cond::All(items.into_iter().map(simplify).flat_map(|c| if let Cond::All(i) = c { i } else { vec![c] }).collect()),
        Cond::Any(items) => Cond::Any(items.into_iter().map(simplify).flat_map(|c| if let Cond::Any(i) = c { i } else { vec![c] }).collect()),
        Cond::Not(inner) => Cond::Not(Box::new(simplify(*inner))),
        other => other,
    }
}

/// Sigma's condition, by precedence (least binding first): `or`, `and`, `not`, `x of`, brackets.
fn condition(text: &str, identifiers: &[(String, Cond)]) -> Result<Cond, String> {
    let spaced = text.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut parser = Parser { tokens, at: 0, identifiers };
    let cond = parser.or()?;
    match parser.tokens.get(parser.at) {
        None => Ok(simplify(cond)),
        Some(t) => Err(format!("unexpected `{t}`")),
    }
}

struct Parser<'a> {
    tokens: Vec<&'a str>,
    at: usize,
    identifiers: &'a [(String, Cond)],
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.at).copied()
    }

    fn take(&mut self, word: &str) -> bool {
        let hit = self.peek().is_some_and(|t| t.eq_ignore_ascii_case(word));
        self.at += usize::from(hit);
        hit
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.and()?];
        while self.take("or") {
            items.push(self.and()?);
        }
        Ok(Cond::Any(items))
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.not()?];
        while self.take("and") {
            items.push(self.not()?);
        }
        Ok(Cond::All(items))
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self.take("not") {
            return Ok(Cond::Not(Box::new(simplify(self.not()?))));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, String> {
        let token = self.peek().ok_or("the condition ends too early")?;
        self.at += 1;
        if token == "(" {
            let inner = self.or()?;
            return if self.take(")") { Ok(inner) } else { Err("a `(` without its `)`".into()) };
        }
        let quantifier = match token.to_ascii_lowercase().as_str() {
            "1" | "any" => Some(false),
            "all" => Some(true),
            _ => None,
        };
        if let Some(every) = quantifier.filter(|_| self.peek().is_some_and(|t| t.eq_ignore_ascii_case("of"))) {
            self.at += 1;
            let target = self.peek().ok_or("`of` without a pattern")?;
            self.at += 1;
            let chosen: Vec<Cond> = self
                .identifiers
                .iter()
                .filter(|(name, _)| if target == "them" { !name.starts_with('_') } else { pattern_match(target, name, true) })
                .map(|(_, c)| c.clone())
                .collect();
            if chosen.is_empty() {
                return Err(format!("`{target}` names no search identifier"));
            }
            return Ok(if every { Cond::All(chosen) } else { Cond::Any(chosen) });
        }
        match self.identifiers.iter().find(|(name, _)| name == token) {
            Some((_, cond)) => Ok(cond.clone()),
            None => Err(format!("`{token}` is no search identifier of the rule")),
        }
    }
}

/// The eventNames a selection requires, for the engine's index: a top-level conjunct on
/// `eventName` (exact names, or prefixes as `Name*`), or every branch of an OR requiring some.
fn required_names(cond: &Cond) -> Option<Vec<String>> {
    match cond {
        Cond::Sigma { field, test: SigmaTest::Pattern { pattern, cased: false } } if field == "eventName" => {
            let body = pattern.strip_suffix('*').filter(|b| !b.ends_with('\\')).unwrap_or(pattern);
            let literal = !body.contains(['*', '?', '\\']) && body.is_ascii() && !body.is_empty();
            literal.then(|| vec![if body.len() < pattern.len() { format!("{body}*") } else { body.to_string() }])
        }
        Cond::All(items) => items.iter().find_map(required_names),
        Cond::Any(items) => {
            let mut names = Vec::new();
            for item in items {
                for name in required_names(item)? {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
            Some(names)
        }
        _ => None,
    }
}

/// What a rule does that its author may not mean.
fn lint(cond: &Cond, out: &mut Vec<String>) {
    match cond {
        Cond::All(items) | Cond::Any(items) => items.iter().for_each(|i| lint(i, out)),
        Cond::Not(inner) => lint(inner, out),
        Cond::Sigma { field, test } => {
            let top = field.split('.').next().unwrap_or_default();
            let warning = if !RECORD_FIELDS.contains(&top) {
                Some(format!("`{field}` is not a CloudTrail record field: the test holds only for records that carry one"))
            } else if let SigmaTest::Pattern { pattern, .. } = test {
                let inner = pattern.trim_matches('*');
                let names_field = inner.split_once('.').is_some_and(|(head, _)| RECORD_FIELDS.contains(&head)) && !inner.contains([' ', '/', ':']);
                names_field.then(|| format!("`{field}` is compared with the text `{inner}`, which names a field: `|fieldref` compares with that field's value"))
            } else {
                None
            };
            if let Some(w) = warning.filter(|w| !out.contains(w)) {
                out.push(w);
            }
        }
        Cond::Compare { .. } | Cond::In { .. } => {}
    }
}

/// Whether a YAML text is a Sigma rule (a `detection` and no SPL `search`) rather than an ESCU
/// detection.
pub fn is_sigma_rule(text: &str) -> bool {
    serde_norway::from_str::<Yaml>(text).is_ok_and(|y| y.get("detection").is_some() && y.get("search").is_none())
}

/// Whether `dir` is a SigmaHQ/sigma checkout (it has [`RULES`]).
pub fn is_sigma_root(dir: &Path) -> bool {
    dir.join(RULES).is_dir()
}

/// Everything one run produces.
pub struct Compiled {
    pub origin: String,
    pub outcomes: Vec<Outcome>,
    pub pack: Pack,
}

/// Every `.yml`/`.yaml` file at `path` (a file, or a folder searched recursively), sorted.
pub fn rule_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let p = entry?.path();
        if p.is_dir() {
            out.extend(rule_files(&p)?);
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Compiles the rules at `paths`, each named relative to `root`.
pub fn compile_files(root: &Path, paths: &[PathBuf], commit: &str, enrichment: Option<&Enrichment>) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file = path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned();
        outcomes.push(compile_rule(&file, &text, commit, enrichment));
    }
    outcomes.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(outcomes)
}

/// Compiles SigmaHQ's CloudTrail rules under `root` ([`RULES`]); `origin` defaults to
/// `SigmaHQ/sigma@<README commit>`.
pub fn compile_tree(root: &Path, origin: Option<&str>, enrichment: Option<&Enrichment>) -> anyhow::Result<Compiled> {
    let origin = match origin {
        Some(o) => o.to_string(),
        None => format!("{REPOSITORY}@{}", crate::escu::readme_commit(root)?),
    };
    let commit = origin.rsplit_once('@').map(|(_, c)| c.to_string()).unwrap_or_default();
    let outcomes = compile_files(root, &rule_files(&root.join(RULES))?, &commit, enrichment)?;
    let rules = outcomes.iter().filter_map(|o| o.result.as_ref().ok().cloned()).collect();
    let pack = Pack { collection: "sigma".into(), origin: origin.clone(), license: "DRL-1.1".into(), rules };
    Ok(Compiled { origin, outcomes, pack })
}

/// The command that regenerates the Sigma pack and its section of the coverage report.
pub const REGENERATE: &str = "cargo run -p tripline-compiler --bin tripline-compile -- sigma ../shared/sigma \
                              --pack rules/sigma/pack.json --coverage docs/coverage.md";

/// Where the Sigma section of `docs/coverage.md` starts: the ESCU report comes before it.
pub const SECTION: &str = "\n# Sigma coverage\n";

/// The report's text with its Sigma section (from [`SECTION`] on) replaced by `section`.
pub fn splice(report: &str, section: &str) -> String {
    let head = report.find(SECTION).map_or(report, |at| &report[..at]);
    format!("{head}{section}")
}

/// The Sigma section of `report` (empty if it has none).
pub fn section_of(report: &str) -> &str {
    report.find(SECTION).map_or("", |at| &report[at..])
}

/// The Sigma section of the coverage report: every rule, whether it compiles and runs by
/// default, its index, and its warnings or why it does not compile.
pub fn render_coverage(outcomes: &[Outcome], origin: &str) -> String {
    use std::fmt::Write;
    use crate::coverage::cell;
    let compiled: Vec<&Rule> = outcomes.iter().filter_map(|o| o.result.as_ref().ok()).collect();
    let on = |r: &Rule| tripline::catalog::Entry::of_rule(r.clone()).enabled_by_default;
    let mut s = String::from(SECTION);
    let _ = writeln!(s);
    let _ = writeln!(s, "Generated by `tripline-compile` from `{origin}` (`{RULES}/`, Detection Rule License 1.1: `rules/sigma/NOTICE`); do not edit. Regenerate by:");
    let _ = writeln!(s);
    let _ = writeln!(s, "    {REGENERATE}");
    let _ = writeln!(s);
    let _ = writeln!(s, "`make test` fails when this section or `rules/sigma/pack.json` is stale.");
    let _ = writeln!(s);
    let _ = writeln!(s, "- Compiled: **{} of {}** rules.", compiled.len(), outcomes.len());
    let _ = writeln!(s, "- Enabled by default (status stable or test, level medium or higher): {}.", compiled.iter().filter(|r| on(r)).count());
    let _ = writeln!(s, "- Indexed by eventName: {} of the {} compiled rules.", compiled.iter().filter(|r| !r.event_names.is_empty()).count(), compiled.len());
    let _ = writeln!(s, "- Compiled with warnings: {}.", compiled.iter().filter(|r| !r.warnings.is_empty()).count());
    let _ = writeln!(s);
    let _ = writeln!(s, "Each rule tags the records it matches at once (`matches` in the `tripline` field) and raises an alert; `docs/semantics.md` (Sigma) says how values compare. Tests: `rules/sigma/tests.json`, a positive and a negative record per rule through the real Fluent Bit.");
    let _ = writeln!(s);
    let _ = writeln!(s, "| Rule | Key | Level | Status | Compiled | On by default | Indexed eventNames | Warnings, or why it does not compile |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        let (compiled, indexed, notes) = crate::coverage::outcome_cells(o);
        let default = match &o.result {
            Ok(rule) if on(rule) => "yes",
            Ok(_) => "no",
            Err(_) => "",
        };
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} | {compiled} | {default} | {} | {notes} |",
            cell(&o.name),
            o.key,
            cell(&o.analytic_type),
            cell(&o.status),
            indexed
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(detection: &str) -> Result<Rule, String> {
        let text = format!(
            "title: T\nid: x1\nstatus: test\nlevel: high\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n{detection}\n"
        );
        compile_rule("x.yml", &text, "c", None).result
    }

    fn p(field: &str, pattern: &str) -> Cond {
        sigma(field, SigmaTest::Pattern { pattern: pattern.into(), cased: false })
    }

    #[test]
    fn values_become_patterns_with_sigmas_escaping() {
        assert_eq!(pattern(r"C:\Windows\*"), r"C:\\Windows\*");
        assert_eq!(pattern(r"a\\*b?"), r"a\\*b?");
        assert_eq!(pattern(r"a\\\*"), r"a\\\*");
        let r = rule("    sel:\n        f|contains|all:\n            - 'a'\n            - 'b*'\n        g|endswith: x\n    condition: sel").unwrap();
        assert_eq!(r.selection, Cond::All(vec![p("f", "*a*"), p("f", "*b**"), p("g", "*x")]));
    }

    #[test]
    fn conditions_follow_sigmas_precedence() {
        let d = "    sel_a:\n        eventName: A\n    sel_b:\n        eventName|startswith: B\n    filter:\n        f: null\n    condition: 1 of sel_* and not filter or sel_a";
        let r = rule(d).unwrap();
        let either = Cond::Any(vec![p("eventName", "A"), p("eventName", "B*")]);
        let expected = Cond::Any(vec![Cond::All(vec![either, Cond::Not(Box::new(sigma("f", SigmaTest::Null)))]), p("eventName", "A")]);
        assert_eq!(r.selection, expected);
        assert_eq!(r.event_names, vec!["A".to_string(), "B*".to_string()]);
    }

    #[test]
    fn what_does_not_compile_says_why() {
        assert!(rule("    k:\n        - evil\n    condition: k").unwrap_err().contains("keyword search"));
        assert!(rule("    s:\n        f|base64: x\n    condition: s").unwrap_err().contains("modifier `base64`"));
        assert!(rule("    s:\n        f: x\n    condition: s and t").unwrap_err().contains("`t` is no search identifier"));
        assert!(rule("    s:\n        f|re: '(?=x)'\n    condition: s").unwrap_err().contains("`re`"));
        let warned = rule("    s:\n        status: x\n        userIdentity.arn|contains: responseElements.accessKey.userName\n    condition: s").unwrap();
        assert_eq!(warned.warnings.len(), 2, "{:?}", warned.warnings);
    }
}
