//! `tripline`: replay CloudTrail through the Fluent Bit module exactly as Fluent Bit would call
//! it, and fit detection baselines offline. See `tripline --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
