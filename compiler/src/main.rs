//! `tripline-compile`: compiles an ESCU tree into a rule pack and a coverage report.
//!
//! ```text
//! tripline-compile escu <ESCU_ROOT> --pack rules/escu/pack.json --coverage docs/coverage.md
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tripline_compiler::enrich::Enrichment;
use tripline_compiler::{coverage, escu};

/// The enrichment data beside the crate.
const DEFAULT_ENRICHMENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/attack-enrichment.json");

#[derive(Parser)]
#[command(name = "tripline-compile", about = "Compile Splunk ESCU detections into tripline rules")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile `<ESCU_ROOT>/detections/cloud/*.yml` (with its macros/ and data_sources/).
    Escu {
        /// The root of a splunk/security_content checkout (or the subset of it in shared/escu).
        root: PathBuf,
        /// Where to write the pack (JSON).
        #[arg(long)]
        pack: PathBuf,
        /// Where to write the coverage report (Markdown).
        #[arg(long)]
        coverage: PathBuf,
        /// The pack's origin, `repo@commit`; by default from ESCU_ROOT/README.md.
        #[arg(long)]
        origin: Option<String>,
        /// ATT&CK enrichment data (technique names, tactics, groups).
        #[arg(long, default_value = DEFAULT_ENRICHMENT)]
        enrichment: PathBuf,
        /// Compare with the files instead of writing them; fail when they differ.
        #[arg(long)]
        check: bool,
    },
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Command::Escu { root, pack, coverage: coverage_path, origin, enrichment, check } = cli.command;
    let enrichment = if enrichment.exists() {
        Some(Enrichment::load(&enrichment)?)
    } else {
        eprintln!("tripline-compile: no {}: ATT&CK names, kill chain, NIST, CIS and actors left empty", enrichment.display());
        None
    };
    let compiled = escu::compile_tree(&root, origin.as_deref(), enrichment)?;
    let outputs = [
        (pack, escu::pack_json(&compiled.pack)),
        (coverage_path, coverage::render(&compiled.outcomes, &compiled.origin)),
    ];
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
    let ok = compiled.outcomes.iter().filter(|o| o.result.is_ok()).count();
    eprintln!("tripline-compile: {ok} of {} detections compiled", compiled.outcomes.len());
    Ok(if stale { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
