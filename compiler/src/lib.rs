//! tripline-compiler: Splunk ESCU detections (YAML with an SPL search) to tripline rules
//! (`tripline::rule`), plus a coverage report of what compiles and why the rest does not.
//!
//! The pipeline per detection: read the YAML ([`metadata`]), split the search on pipes and
//! expand its macros per pipe ([`lexer`], [`macros`]), parse each command ([`parse`] into
//! [`ast`]), lower the pipeline into the rule form ([`lower`]), and lint what it does against
//! what it seems to mean ([`lint`], with ESCU's data sources, [`datasources`]). ATT&CK names,
//! kill-chain, NIST, CIS and threat actors come from one data file ([`enrich`]). [`escu`]
//! compiles a whole ESCU tree into a pack and [`coverage`] renders the report.
//!
//! A detection the rule form cannot express exactly does not compile: the reason names the
//! command or function and its pipe. A rule that compiles runs the search as Splunk does,
//! including where that differs from its author's intent; the linter says where.
//!
//! YAML is read with `serde_norway`, the maintained fork of `serde_yaml` (deprecated since
//! 2024), with the same serde API over libyaml's full YAML parser, so ESCU's files read as
//! contentctl's PyYAML reads them.

pub mod ast;
pub mod baselines;
pub mod coverage;
pub mod datamodel;
pub mod datasources;
pub mod enrich;
pub mod escu;
pub mod lexer;
pub mod lint;
pub mod lower;
pub mod macros;
pub mod metadata;
mod narrow;
pub mod parse;
pub mod partition;
pub mod pcre;
pub mod sigma;

use tripline::rule::{Rule, Source};

use crate::ast::Command;
use crate::datasources::DataSources;
use crate::enrich::Enrichment;
use crate::macros::Macros;

/// What compiling needs besides the detection itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub macros: Macros,
    pub sources: DataSources,
    pub enrichment: Option<Enrichment>,
    /// The collection's commit, for `Source.commit`.
    pub commit: String,
}

/// One detection's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub key: String,
    /// The detection's own id (ESCU's UUID, Sigma's `id`), empty where its YAML does not read.
    pub id: String,
    pub name: String,
    pub analytic_type: String,
    pub status: String,
    /// The sourcetype the detection reads when it is not CloudTrail's own records (Security
    /// Lake's `aws:cloudtrail:lake`), for the report to count those apart.
    pub other_sourcetype: Option<String>,
    /// The rule, or why there is none.
    pub result: Result<Rule, String>,
    /// Lint warnings of a detection that does not compile (a compiled rule carries its own).
    pub warnings: Vec<String>,
}

impl Outcome {
    pub fn warnings(&self) -> &[String] {
        match &self.result {
            Ok(rule) => &rule.warnings,
            Err(_) => &self.warnings,
        }
    }
}

/// Splits, expands and parses a search; each pipe that parses is returned, and the first
/// error in pipe order, if any.
pub fn parse_search(search: &str, macros: &Macros) -> (Vec<Command>, Option<String>) {
    let segments = match lexer::split_pipes(search) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut commands = Vec::new();
    let mut first_error = None;
    let fail = |e: String, first_error: &mut Option<String>| {
        if first_error.is_none() {
            *first_error = Some(e);
        }
    };
    for (pipe, segment) in segments.iter().enumerate() {
        let place = if pipe == 0 { "the base search".to_string() } else { format!("pipe {pipe}") };
        let expanded = match macros.expand(segment) {
            Ok(e) => e,
            Err(e) => {
                fail(format!("{e} ({place})"), &mut first_error);
                continue;
            }
        };
        // A macro may expand into several commands.
        let parts = match lexer::split_pipes(&expanded) {
            Ok(p) => p,
            Err(e) => {
                fail(format!("{e} ({place})"), &mut first_error);
                continue;
            }
        };
        for (i, part) in parts.iter().enumerate() {
            if pipe == 0 && i == 0 && part.is_empty() && segments.len() > 1 {
                // `| tstats ...`: the search starts with a command.
                commands.push(Command { pipe: 0, text: String::new(), kind: ast::CommandKind::Search(ast::SearchNode::MatchAll) });
                continue;
            }
            let command_pipe = if pipe == 0 && i == 0 { 0 } else { pipe.max(1) };
            match parse::parse_command(command_pipe, part) {
                Ok(c) => commands.push(c),
                Err(e) if e.starts_with("command `") => {
                    let (head, why) = e.split_once(": ").unwrap_or((&e, ""));
                    fail(format!("{head} (pipe {command_pipe}): {why}"), &mut first_error)
                }
                Err(e) if e.contains("(pipe ") => fail(e, &mut first_error),
                Err(e) if command_pipe == 0 => fail(format!("the base search: {e}"), &mut first_error),
                Err(e) => {
                    let name = part.split_whitespace().next().unwrap_or("");
                    fail(format!("`{name}` (pipe {command_pipe}): {e}"), &mut first_error)
                }
            }
        }
    }
    (commands, first_error)
}

/// Compiles one detection file. `file` is its path relative to the collection's root.
pub fn compile_detection(key: &str, file: &str, text: &str, ctx: &Context) -> Outcome {
    let d: metadata::DetectionYaml = match serde_norway::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            return Outcome {
                key: key.into(),
                id: String::new(),
                name: key.into(),
                analytic_type: String::new(),
                status: String::new(),
                other_sourcetype: None,
                result: Err(format!("the YAML does not read as a detection: {e}")),
                warnings: Vec::new(),
            }
        }
    };
    let search = d.search.trim();
    let (commands, error) = parse_search(search, &ctx.macros);
    let mut outcome = Outcome {
        key: key.into(),
        id: d.id.clone(),
        name: d.name.clone(),
        analytic_type: d.analytic_type.clone(),
        status: d.status.clone(),
        other_sourcetype: lower::other_sourcetype(&commands),
        result: Err(String::new()),
        warnings: Vec::new(),
    };
    let command_warnings = lint::lint_commands(&commands);
    let compiled = (|| -> Result<Rule, String> {
        if let Some(e) = error {
            return Err(e);
        }
        let lowered = lower::lower(&commands)?;
        let (meta, meta_warnings) = metadata::read(key, &d, ctx.enrichment.as_ref())?;
        let mut warnings = command_warnings.clone();
        warnings.extend(lint::lint_rule(&lowered, &meta, &ctx.sources));
        warnings.extend(meta_warnings);
        Ok(Rule {
            metadata: meta,
            source: Source { kind: "escu".into(), file: file.into(), commit: ctx.commit.clone(), search: search.into() },
            event_names: lowered.event_names,
            selection: lowered.selection,
            steps: lowered.steps,
            stats: lowered.stats,
            after: lowered.after,
            first_seen: lowered.first_seen,
            density: None,
            join: lowered.join,
            tag_each_event: lowered.tag_each_event,
            warnings,
            enabled_by_default: None,
        })
    })();
    if compiled.is_err() {
        outcome.warnings = command_warnings;
    }
    outcome.result = compiled;
    outcome
}
