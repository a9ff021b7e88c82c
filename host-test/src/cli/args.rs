//! A tiny argument parser: `--name value`, `--name=value`, switches, `--` and positionals.

use std::collections::HashMap;
use std::fmt;

/// A command-line mistake (exit status 2, message includes what to do).
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
    switches: Vec<&'static str>,
    pub positional: Vec<String>,
}

/// Parses `argv` against options that take a value (`valued`) and `switches`; `--help` and
/// `-h` are always switches (as `--help`).
pub fn parse(
    argv: impl Iterator<Item = String>,
    valued: &[&'static str],
    switches: &[&'static str],
    usage: &str,
) -> Result<Parsed, Usage> {
    let mut parsed = Parsed { values: HashMap::new(), switches: Vec::new(), positional: Vec::new() };
    let mut argv = argv.peekable();
    let fail = |message: String| Usage(format!("{message}\n\n{usage}"));
    while let Some(arg) = argv.next() {
        if arg == "--" {
            parsed.positional.extend(argv.by_ref());
            break;
        }
        if arg == "-h" || arg == "--help" {
            parsed.switches.push("--help");
            continue;
        }
        if !arg.starts_with("--") {
            parsed.positional.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        if let Some(known) = valued.iter().find(|v| **v == name) {
            let value = match inline {
                Some(v) => v,
                None => argv.next().ok_or_else(|| fail(format!("{name} needs a value")))?,
            };
            parsed.values.entry(known).or_default().push(value);
        } else if let Some(known) = switches.iter().find(|s| **s == name) {
            if inline.is_some() {
                return Err(fail(format!("{name} takes no value")));
            }
            parsed.switches.push(known);
        } else {
            return Err(fail(format!("unknown option {name}")));
        }
    }
    Ok(parsed)
}

impl Parsed {
    /// The value of an option given at most once.
    pub fn one(&self, name: &str) -> Result<Option<&str>, Usage> {
        match self.values.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v.as_str())),
            Some(_) => Err(Usage(format!("{name} is given more than once"))),
        }
    }

    /// Every value of a repeatable option, in order.
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn has(&self, switch: &str) -> bool {
        self.switches.contains(&switch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options_switches_and_files() {
        let argv = ["--model", "a.json", "x.ndjson", "--model=b.json", "--quiet", "--", "--odd-file"];
        let p = parse(argv.iter().map(|s| s.to_string()), &["--model", "--out"], &["--quiet"], "usage").unwrap();
        assert_eq!(p.all("--model"), ["a.json", "b.json"]);
        assert!(p.one("--model").is_err());
        assert_eq!(p.one("--out").unwrap(), None);
        assert!(p.has("--quiet") && !p.has("--help"));
        assert_eq!(p.positional, ["x.ndjson", "--odd-file"]);
        assert!(parse(["--nope".to_string()].into_iter(), &[], &[], "u").is_err());
        assert!(parse(["--out".to_string()].into_iter(), &["--out"], &[], "u").is_err());
    }
}
