//! `tripline compile` and `tripline coverage`: the rule compiler (`tripline-compiler`) through
//! its library, for ESCU detections and Sigma rules alike (each YAML file is read as what it is:
//! a Sigma rule has a `detection`, an ESCU detection a `search`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use tripline::rule::Pack;
use tripline_compiler::datasources::DataSources;
use tripline_compiler::enrich::Enrichment;
use tripline_compiler::escu::{self, DETECTIONS};
use tripline_compiler::macros::Macros;
use tripline_compiler::sigma;
use tripline_compiler::{compile_detection, coverage, partition, Context, Outcome};

use crate::{FINDINGS, OK};

/// The ATT&CK enrichment the shipped pack was compiled with, built in.
const ENRICHMENT: &str = include_str!("../../compiler/data/attack-enrichment.json");
/// The coverage report of the shipped pack, as the compiler generated it.
const SHIPPED_COVERAGE: &str = include_str!("../../docs/coverage.md");

/// Compile ESCU detection YAML or Sigma rules to tripline rules; say why each that does not
/// compile does not.
///
/// PATH is a detection or Sigma rule .yml, a folder of them (searched recursively), an ESCU tree
/// (a folder with detections/cloud) or a SigmaHQ/sigma checkout (its rules/cloud/aws/cloudtrail).
/// ESCU macros and data sources come from the ESCU tree the files are in (found upwards from
/// them) or --escu-root. Exit status 1 when some rule does not compile (the pack holds the others).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  tripline compile security_content/detections/cloud/aws_exfiltration_via_batch_service.yml
  tripline compile --out pack.json security_content
  tripline compile --escu-root security_content --out mine.json my-detections/
  tripline compile --out sigma.json sigma             # a SigmaHQ/sigma checkout
  tripline compile --out mine.json my-sigma-rules/")]
pub struct CompileArgs {
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The ESCU tree whose macros/ and data_sources/ the detections use.
    #[arg(long, value_name = "DIR")]
    escu_root: Option<PathBuf>,
    /// Write the rules (a pack) here; default: standard output, the report on standard error.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Print the coverage table: which detections compile, which do not and exactly why.
///
/// Without ROOT, the report of the rules built into this tripline (ESCU and Sigma); with it, the
/// report of that ESCU tree (its detections/cloud), SigmaHQ/sigma checkout (its CloudTrail
/// rules) or folder or file of Sigma rules, compiled now.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  tripline coverage
  tripline coverage ../security_content > coverage.md
  tripline coverage ../sigma
  tripline coverage my-sigma-rules/
  tripline coverage --partition-key userIdentity.accountId")]
pub struct CoverageArgs {
    #[arg(value_name = "ROOT")]
    root: Option<PathBuf>,
    /// Only the partition-safety table: each rule built in (or of ESCU_ROOT) exact or not, with
    /// the reason, when the records are split over instances by FIELD (docs/scale-out.md).
    #[arg(long, value_name = "FIELD")]
    partition_key: Option<String>,
}

fn enrichment() -> Result<Enrichment> {
    serde_json::from_str(ENRICHMENT).map_err(|e| anyhow!("the built-in ATT&CK enrichment does not read: {e}"))
}

/// An ESCU tree: a folder with `detections/cloud`.
fn is_escu_root(dir: &Path) -> bool {
    dir.join(DETECTIONS).is_dir()
}

/// The ESCU tree `path` lies in: the nearest folder upwards with a `macros/` folder.
fn root_of(path: &Path) -> Option<PathBuf> {
    let absolute = std::fs::canonicalize(path).ok()?;
    absolute.ancestors().find(|d| d.join("macros").is_dir()).map(Path::to_path_buf)
}

fn compile_tree(root: &Path) -> Result<escu::Compiled> {
    let origin = escu::readme_commit(root).is_err().then_some("local");
    escu::compile_tree(root, origin, Some(enrichment()?))
}

pub fn run_compile(a: CompileArgs) -> Result<u8> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut origin = None;
    for path in &a.paths {
        if !path.exists() {
            bail!("{}: no such file or directory; give a detection .yml, a folder of them or an ESCU tree", path.display());
        }
        if path.is_dir() && is_escu_root(path) && a.escu_root.is_none() {
            let compiled = compile_tree(path)?;
            origin.get_or_insert(compiled.origin);
            outcomes.extend(compiled.outcomes);
            continue;
        }
        if path.is_dir() && sigma::is_sigma_root(path) {
            let compiled = compile_sigma_tree(path)?;
            origin.get_or_insert(compiled.origin);
            outcomes.extend(compiled.outcomes);
            continue;
        }
        let files = sigma::rule_files(path).with_context(|| format!("{}: cannot list", path.display()))?;
        if files.is_empty() {
            bail!("{}: no .yml files here; give a detection or Sigma rule .yml, a folder of them, an ESCU tree or a SigmaHQ checkout", path.display());
        }
        let mut texts = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).with_context(|| format!("{}: cannot read", file.display()))?;
            texts.push((file, text));
        }
        let (sigma_files, files): (Vec<_>, Vec<_>) = texts.into_iter().partition(|(_, text)| sigma::is_sigma_rule(text));
        let base = if path.is_dir() { path.as_path() } else { path.parent().unwrap_or(Path::new("")) };
        let attack = enrichment()?;
        for (file, text) in &sigma_files {
            let relative = file.strip_prefix(base).unwrap_or(file).to_string_lossy().into_owned();
            outcomes.push(sigma::compile_rule(&relative, text, "", Some(&attack)));
        }
        if files.is_empty() {
            continue;
        }
        let root = a.escu_root.clone().or_else(|| root_of(path));
        let ctx = context(root.as_deref())?;
        if !ctx.commit.is_empty() {
            origin.get_or_insert(format!("{}@{}", escu::REPOSITORY, ctx.commit));
        }
        if root.is_none() {
            eprintln!("tripline: warning: {}: in no ESCU tree, so no macros; give --escu-root DIR", path.display());
        }
        for (file, text) in files {
            let key = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let relative = root
                .as_deref()
                .and_then(|r| std::fs::canonicalize(&file).ok()?.strip_prefix(r).ok().map(Path::to_path_buf))
                .unwrap_or(file.clone());
            outcomes.push(compile_detection(&key, &relative.to_string_lossy(), &text, &ctx));
        }
    }
    let rules: Vec<_> = outcomes.iter().filter_map(|o| o.result.as_ref().ok().cloned()).collect();
    let compiled = rules.len();
    // A pack of one collection carries its license; a mixed one both.
    let sigma_rules = rules.iter().filter(|r| r.source.kind == "sigma").count();
    let (collection, license) = match sigma_rules {
        0 => ("escu", "Apache-2.0"),
        n if n == rules.len() => ("sigma", "DRL-1.1"),
        _ => ("local", "Apache-2.0 (ESCU rules), DRL-1.1 (Sigma rules)"),
    };
    let pack = Pack { collection: collection.into(), origin: origin.unwrap_or_else(|| "local".into()), license: license.into(), rules };
    let text = escu::pack_json(&pack);
    let mut report = String::new();
    for o in &outcomes {
        match &o.result {
            Ok(_) => report.push_str(&format!("compiled      {}\n", o.key)),
            Err(why) => report.push_str(&format!("not compiled  {}: {why}\n", o.key)),
        }
        for w in o.warnings() {
            report.push_str(&format!("  warning: {w}\n"));
        }
    }
    report.push_str(&format!("{compiled} of {} detections compiled\n", outcomes.len()));
    match &a.out {
        Some(out) => {
            crate::write_whole(out, text.as_bytes())?;
            print!("{report}");
            println!("rules written to {}", out.display());
        }
        None => {
            print!("{text}");
            eprint!("{report}");
        }
    }
    Ok(if compiled == outcomes.len() { OK } else { FINDINGS })
}

fn compile_sigma_tree(root: &Path) -> Result<sigma::Compiled> {
    let origin = escu::readme_commit(root).is_err().then_some("local");
    sigma::compile_tree(root, origin, Some(&enrichment()?))
}

fn context(root: Option<&Path>) -> Result<Context> {
    let Some(root) = root else { return Ok(Context { enrichment: Some(enrichment()?), ..Context::default() }) };
    let macros = Macros::load(&root.join("macros")).map_err(|e| anyhow!("{}: macros do not read: {e}", root.display()))?;
    let sources = DataSources::load(root).map_err(|e| anyhow!("{}: data sources do not read: {e}", root.display()))?;
    let commit = escu::readme_commit(root).unwrap_or_default();
    Ok(Context { macros, sources, enrichment: Some(enrichment()?), commit })
}

/// `root`, checked to be an ESCU tree.
fn escu_root(root: &Path) -> Result<PathBuf> {
    if !is_escu_root(root) {
        bail!("{}: no {DETECTIONS} folder here; give the root of an ESCU (splunk/security_content) tree", root.display());
    }
    Ok(root.to_path_buf())
}

pub fn run_coverage(a: CoverageArgs) -> Result<u8> {
    if let Some(key) = &a.partition_key {
        let rules = match &a.root {
            Some(root) => compile_tree(&escu_root(root)?)?.pack.rules,
            None => tripline::catalog::builtin_rules(),
        };
        print!("{}", partition::render(&rules.iter().collect::<Vec<_>>(), key));
        return Ok(OK);
    }
    let Some(root) = a.root else {
        print!("{SHIPPED_COVERAGE}");
        return Ok(OK);
    };
    if is_escu_root(&root) {
        let compiled = compile_tree(&root)?;
        print!("{}", coverage::render(&compiled.outcomes, &compiled.origin));
        return Ok(OK);
    }
    let (outcomes, origin) = if sigma::is_sigma_root(&root) {
        let compiled = compile_sigma_tree(&root)?;
        (compiled.outcomes, compiled.origin)
    } else if root.exists() {
        let base = if root.is_dir() { root.as_path() } else { root.parent().unwrap_or(Path::new("")) };
        let files = sigma::rule_files(&root).with_context(|| format!("{}: cannot list", root.display()))?;
        (sigma::compile_files(base, &files, "", Some(&enrichment()?))?, "local".to_string())
    } else {
        bail!("{}: no such file or directory; give an ESCU tree (with {DETECTIONS}), a SigmaHQ checkout or Sigma rules", root.display());
    };
    if outcomes.is_empty() {
        bail!("{}: no .yml files here; give an ESCU tree (with {DETECTIONS}), a SigmaHQ checkout or Sigma rules", root.display());
    }
    print!("{}", sigma::render_coverage(&outcomes, &origin));
    Ok(OK)
}
