//! The `tripline` command: the engine natively (the `tripline` library crate, no wasm runtime),
//! the rule compiler through its library (`tripline-compiler`). One module per subcommand.
//!
//! Exit status: 0 ok, 1 findings (alerts found, a check that failed, a record a rule does not
//! select, detections that do not compile), 2 usage or an error that stopped the command. Every
//! error is one line naming the file and what to do.

mod check;
mod compile;
mod explain;
mod fit;
mod host;
mod input;
mod progress;
mod replay;
mod state;
mod table;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

/// Exit status: the command ran and found nothing to report.
pub const OK: u8 = 0;
/// Exit status: the command ran and has findings.
pub const FINDINGS: u8 = 1;
/// Exit status: a usage error, or an error that stopped the command.
pub const TROUBLE: u8 = 2;

const EXAMPLES: &str = "\
Examples:
  tripline fit --detection abnormally_high_cloud_security_group_api_calls --until 2026-10-26T00:00:00Z --out baseline.json cloudtrail.ndjson
  tripline replay --config /etc/tripline cloudtrail/*.json.gz
  tripline check /etc/tripline
  tripline explain aws_exfiltration_via_batch_service record.json
  tripline compile security_content/detections/cloud/aws_exfiltration_via_batch_service.yml
  tripline coverage --partition-key recipientAccountId
  tripline state export --partition 5 --partitions 12 --out p5.snap /etc/tripline
  tripline completions bash > /etc/bash_completion.d/tripline

Input files are NDJSON, CloudTrail S3 exports ({\"Records\":[...]}) or .gz of either; `-` is stdin.
Exit status: 0 ok, 1 findings (alerts, a failed check, a record not selected, rules that do not
compile), 2 usage or error.";

#[derive(Parser)]
#[command(
    name = "tripline",
    version,
    about = "Security detections for CloudTrail: replay archives through them, fit baselines, compile, check and explain rules",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Replay(replay::Args),
    Fit(fit::Args),
    Compile(compile::CompileArgs),
    Coverage(compile::CoverageArgs),
    Check(check::Args),
    Explain(explain::Args),
    State(state::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        shell: clap_complete::Shell,
    },
}

/// Runs the command line `args` (the program name first); returns the exit status.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { TROUBLE } else { OK };
        }
    };
    let result = match cli.command {
        Command::Replay(a) => replay::run(a),
        Command::Fit(a) => fit::run(a),
        Command::Compile(a) => compile::run_compile(a),
        Command::Coverage(a) => compile::run_coverage(a),
        Command::Check(a) => check::run(a),
        Command::Explain(a) => explain::run(a),
        Command::State(a) => state::run(a),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tripline", &mut std::io::stdout());
            Ok(OK)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tripline: {}", one_line(&format!("{e:#}")));
            TROUBLE
        }
    }
}

/// Errors are one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A path as the user gave it, for messages.
fn shown(path: &std::path::Path) -> String {
    path.display().to_string()
}

/// Writes `bytes` to `path` whole or not at all (a temporary file beside it, then renamed), so a
/// failed run never leaves half a model or pack where a host would load it.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let fail = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!("{}: cannot write ({e}); check that its directory exists and is writable", path.display())
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(&e))?;
    file.write_all(bytes).map_err(|e| fail(&e))?;
    file.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}

/// Input files from the command line, checked to exist before any work starts.
fn input_files(files: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    for file in files {
        if file.as_os_str() != "-" && !file.exists() {
            anyhow::bail!("{}: no such file; give an NDJSON, CloudTrail S3 export or .gz file (or - for stdin)", shown(file));
        }
    }
    Ok(files.to_vec())
}
