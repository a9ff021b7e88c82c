//! `tripline check`: a host's configuration directory as the module would load it, with the
//! module's own messages (the same core calls: `Engine::for_host`, `load_model`),
//! before deploying it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tripline::config::Config;
use tripline::rule::parse_rule_file;
use tripline::Engine;

use crate::host::Place;
use crate::{FINDINGS, OK};

/// Validate a host's configuration (tripline.json, the rule files and models it names) and
/// rule files, with the exact errors the module would give. Exit status 1 on any problem.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  tripline check /etc/tripline
  tripline check examples/fluent-bit/tripline.json
  tripline check --rules my-rules.json")]
pub struct Args {
    /// The directory holding tripline.json (Accessible_Paths), or the file.
    #[arg(value_name = "DIR|FILE")]
    config: Option<PathBuf>,
    /// A rule file to check on its own, beside the built-in rules (repeatable).
    #[arg(long, value_name = "FILE")]
    rules: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<u8> {
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    if a.config.is_some() || a.rules.is_empty() {
        let place = Place::locate(a.config.as_deref().unwrap_or(std::path::Path::new(".")))?;
        let (mut engine, host) = place.engine(&place.read()?);
        match place.config_problem(&engine) {
            Some(problem) => problems.push(problem),
            None => {
                problems.extend(place.rule_problems(&engine, &host));
                problems.extend(place.load_models(&mut engine, &host));
                let enabled = engine.stats()["detections"].as_object().map_or(0, |d| d.len());
                summary.push(format!(
                    "{}: {enabled} detections enabled, {} rule file(s), {} model(s)",
                    place.file.display(),
                    host.rules.len(),
                    host.models.len()
                ));
            }
        }
    }
    for file in &a.rules {
        let bytes = std::fs::read(file).with_context(|| format!("{}: cannot read; check the path", file.display()))?;
        let name = file.display().to_string();
        match parse_rule_file(&name, &bytes) {
            Err(e) => problems.push(format!("{e}; fix the rule file (docs/rules.md)")),
            Ok(rules) => {
                let count = rules.len();
                let mut all = tripline::catalog::builtin_rules();
                all.extend(rules);
                match Engine::with_rules(Config::default(), all) {
                    Err(e) => problems.push(format!("{name}: {e}")),
                    Ok(engine) if engine.rule_errors().is_empty() => summary.push(format!("{name}: {count} rule(s) load")),
                    Ok(engine) => {
                        problems.extend(engine.rule_errors().iter().map(|e| format!("{name}: {e}; fix the rule (docs/rules.md)")))
                    }
                }
            }
        }
    }
    for problem in &problems {
        println!("{problem}");
    }
    if problems.is_empty() {
        for line in &summary {
            println!("ok: {line}");
        }
        Ok(OK)
    } else {
        println!("check failed: {} problem(s)", problems.len());
        Ok(FINDINGS)
    }
}
