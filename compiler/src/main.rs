//! `tripline-compile`: compiles an ESCU tree into a rule pack and a coverage report.
//!
//! ```text
//! tripline-compile escu <ESCU_ROOT> --pack rules/escu/pack.json --coverage docs/coverage.md
//! tripline-compile sigma <SIGMA_ROOT> --pack rules/sigma/pack.json --coverage docs/coverage.md
//! ```
//!
//! Both write `docs/coverage.md`: ESCU's report first, then the Sigma section; each command
//! keeps the other's part as it finds it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tripline_compiler::enrich::Enrichment;
use tripline_compiler::{coverage, escu, sigma};

/// The enrichment data beside the crate.
const DEFAULT_ENRICHMENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/attack-enrichment.json");

#[derive(Parser)]
#[command(name = "tripline-compile", about = "Compile Splunk ESCU detections and Sigma rules into tripline rules")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile `<ROOT>/detections/cloud/*.yml` (with its macros/ and data_sources/) of a
    /// splunk/security_content checkout (or the subset of it in shared/escu).
    Escu(Args),
    /// Compile `<ROOT>/rules/cloud/aws/cloudtrail/*.yml` of a SigmaHQ/sigma checkout.
    Sigma(Args),
}

#[derive(clap::Args)]
struct Args {
    /// The collection's root.
    root: PathBuf,
    /// Where to write the pack (JSON).
    #[arg(long)]
    pack: PathBuf,
    /// Where to write the coverage report (Markdown); each collection writes its own part.
    #[arg(long)]
    coverage: PathBuf,
    /// The pack's origin, `repo@commit`; by default from ROOT/README.md.
    #[arg(long)]
    origin: Option<String>,
    /// ATT&CK enrichment data (technique names, tactics, groups).
    #[arg(long, default_value = DEFAULT_ENRICHMENT)]
    enrichment: PathBuf,
    /// Compare with the files instead of writing them; fail when they differ.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tripline-compile: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_enrichment(path: &std::path::Path) -> anyhow::Result<Option<Enrichment>> {
    if path.exists() {
        return Ok(Some(Enrichment::load(path)?));
    }
    eprintln!("tripline-compile: no {}: ATT&CK names, kill chain, NIST, CIS and actors left empty", path.display());
    Ok(None)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let (is_sigma, args) = match cli.command {
        Command::Escu(args) => (false, args),
        Command::Sigma(args) => (true, args),
    };
    let Args { root, pack, coverage: coverage_path, origin, enrichment, check } = args;
    let enrichment = load_enrichment(&enrichment)?;
    let current = std::fs::read_to_string(&coverage_path).unwrap_or_default();
    let (outcomes, pack_text, report) = if is_sigma {
        let compiled = sigma::compile_tree(&root, origin.as_deref(), enrichment.as_ref())?;
        let report = sigma::splice(&current, &sigma::render_coverage(&compiled.outcomes, &compiled.origin));
        (compiled.outcomes, escu::pack_json(&compiled.pack), report)
    } else {
        let compiled = escu::compile_tree(&root, origin.as_deref(), enrichment)?;
        let report = coverage::render(&compiled.outcomes, &compiled.origin) + sigma::section_of(&current);
        (compiled.outcomes, escu::pack_json(&compiled.pack), report)
    };
    let outputs = [(pack, pack_text), (coverage_path, report)];
    let mut stale = false;
    for (path, text) in &outputs {
        if check {
            let current = std::fs::read_to_string(path).unwrap_or_default();
            if current != *text {
                eprintln!("tripline-compile: {} is stale", path.display());
                stale = true;
            }
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, text)?;
        }
    }
    let compiled = outcomes.iter().filter(|o| o.result.is_ok()).count();
    eprintln!("tripline-compile: {compiled} of {} detections compiled", outcomes.len());
    Ok(if stale { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
