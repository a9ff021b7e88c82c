//! The `tripline` command line: one module per subcommand, plain functions, hand-written
//! argument parsing (`args.rs`).

mod args;
mod fit;
mod input;
mod progress;
mod replay;
mod table;

use std::process::ExitCode;

pub use args::Usage;

const USAGE: &str = "\
usage: tripline <command> [options] FILE...

commands:
  replay   run CloudTrail records through the Fluent Bit module exactly as Fluent Bit's
           filter_wasm calls it; show the alerts and a summary
  fit      fit the security-group baseline offline (Splunk's weekly baseline search), natively

FILEs are NDJSON, CloudTrail S3 exports ({\"Records\":[...]}) or .gz of either; `-` is stdin.
Run `tripline <command> --help` for the options of each command.";

pub fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next();
    let result = match command.as_deref() {
        Some("replay") => replay::run(argv),
        Some("fit") => fit::run(argv),
        None | Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(Usage(format!("unknown command `{other}`\n\n{USAGE}")).into()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(usage) = e.downcast_ref::<Usage>() {
                eprintln!("tripline: {usage}");
                return ExitCode::from(2);
            }
            eprintln!("tripline: {e:#}");
            ExitCode::FAILURE
        }
    }
}
