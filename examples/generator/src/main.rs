//! Command-line front end for `tripline_generate::generate`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use tripline_generate::{generate, Options, Planted};

const USAGE: &str = "usage: tripline-generate [--weeks N] [--seed S] [--start RFC3339] [--organizations N] [--cross-account] [--out FILE] [--planted FILE]

Writes synthetic AWS CloudTrail records as NDJSON (default: stdout) and lists the
planted anomalies on stderr.

  --weeks N        weeks of traffic; anomalies are planted in the last one (default 4)
  --seed S         PRNG seed, u64 (default 7)
  --start RFC3339  first hour, e.g. 2026-10-05T00:00:00Z (default; a Monday)
  --organizations N  organisations of two accounts each (default 1)
  --cross-account  the automation role decrypts with the other account's KMS key, which
                   CloudTrail delivers to both accounts (a second record)
  --out FILE       write records to FILE instead of stdout
  --planted FILE   also write the planted anomalies to FILE as JSON";

struct Args {
    opts: Options,
    out: Option<String>,
    planted: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args { opts: Options::default(), out: None, planted: None };
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--weeks" => {
                let v = value()?;
                args.opts.weeks = v.parse().map_err(|_| format!("--weeks: not a week count: {v:?}"))?;
            }
            "--seed" => {
                let v = value()?;
                args.opts.seed = v.parse().map_err(|_| format!("--seed: not a u64: {v:?}"))?;
            }
            "--start" => {
                let v = value()?;
                args.opts.start = chrono::DateTime::parse_from_rfc3339(&v)
                    .map_err(|e| format!("--start: not RFC 3339 ({e}): {v:?}"))?
                    .with_timezone(&chrono::Utc);
            }
            "--organizations" => {
                let v = value()?;
                args.opts.organizations = v.parse().map_err(|_| format!("--organizations: not a count: {v:?}"))?;
            }
            "--cross-account" => args.opts.cross_account = true,
            "--out" => args.out = Some(value()?),
            "--planted" => args.planted = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(args))
}

fn planted_json(planted: &[Planted]) -> serde_json::Value {
    serde_json::Value::Array(
        planted
            .iter()
            .map(|p| {
                serde_json::json!({
                    "kind": p.kind,
                    "hour_start": p.hour_start,
                    "actor": p.actor,
                    "count": p.count,
                })
            })
            .collect(),
    )
}

fn run(args: Args) -> io::Result<()> {
    let summary = match &args.out {
        Some(path) => {
            let mut w = BufWriter::new(File::create(path)?);
            generate(&args.opts, &mut w)?
        }
        None => {
            let stdout = io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            generate(&args.opts, &mut w)?
        }
    };
    eprintln!(
        "tripline-generate: {} records, {} week(s) from {}, seed {}",
        summary.records,
        args.opts.weeks,
        args.opts.start.format("%Y-%m-%dT%H:%M:%SZ"),
        args.opts.seed
    );
    eprintln!("planted anomalies:");
    for p in &summary.planted {
        eprintln!("  {}  {:<20}  {:<5} {}", p.hour_start, p.kind, p.count, p.actor);
    }
    if let Some(path) = &args.planted {
        let mut f = File::create(path)?;
        serde_json::to_writer_pretty(&mut f, &planted_json(&summary.planted))?;
        f.write_all(b"\n")?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tripline-generate: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (e.g. `| head`) is not a failure worth shouting about.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tripline-generate: {e}");
            ExitCode::FAILURE
        }
    }
}
