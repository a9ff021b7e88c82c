//! `tripline`: see `tripline --help`, or the crate documentation in `lib.rs`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(tripline_cli::run(std::env::args_os()))
}
