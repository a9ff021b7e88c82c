//! A whole ESCU tree to a pack: `detections/cloud/*.yml` with `macros/`, `data_sources/` and
//! the enrichment data; the origin's commit from the tree's `README.md` (`... at commit <sha>`)
//! unless given.

use std::path::Path;

use anyhow::{bail, Context as _};
use tripline::rule::Pack;

use crate::datasources::DataSources;
use crate::enrich::Enrichment;
use crate::macros::Macros;
use crate::{compile_detection, Context, Outcome};

pub const REPOSITORY: &str = "splunk/security_content";
pub const DETECTIONS: &str = "detections/cloud";

/// Everything one run produces.
pub struct Compiled {
    pub origin: String,
    pub outcomes: Vec<Outcome>,
    pub pack: Pack,
}

/// The commit named in an ESCU tree's README (`at commit <40 hex digits>`).
pub fn readme_commit(root: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(root.join("README.md")).context("reading README.md for the commit")?;
    let words: Vec<&str> = text.split_whitespace().collect();
    for pair in words.windows(2) {
        let sha = pair[1].trim_matches(|c: char| !c.is_ascii_hexdigit());
        if pair[0] == "commit" && sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(sha.to_string());
        }
    }
    bail!("README.md names no `commit <sha>`; pass --origin")
}

/// Compiles every detection under `root/detections/cloud`. `origin` defaults to
/// `splunk/security_content@<README commit>`.
pub fn compile_tree(root: &Path, origin: Option<&str>, enrichment: Option<Enrichment>) -> anyhow::Result<Compiled> {
    let origin = match origin {
        Some(o) => o.to_string(),
        None => format!("{REPOSITORY}@{}", readme_commit(root)?),
    };
    let commit = origin.rsplit_once('@').map(|(_, c)| c.to_string()).unwrap_or_default();
    let ctx = Context {
        macros: Macros::load(&root.join("macros"))?,
        sources: DataSources::load(root)?,
        enrichment,
        commit,
    };
    let dir = root.join(DETECTIONS);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    paths.sort();
    let mut outcomes = Vec::new();
    for path in paths {
        let key = path.file_stem().expect("a file").to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path)?;
        let file = format!("{DETECTIONS}/{key}.yml");
        outcomes.push(compile_detection(&key, &file, &text, &ctx));
    }
    outcomes.sort_by(|a, b| a.key.cmp(&b.key));
    let rules = outcomes.iter().filter_map(|o| o.result.as_ref().ok().cloned()).collect();
    let pack = Pack { collection: "escu".into(), origin: origin.clone(), license: "Apache-2.0".into(), rules };
    Ok(Compiled { origin, outcomes, pack })
}

/// The pack as committed: pretty JSON with a trailing newline.
pub fn pack_json(pack: &Pack) -> String {
    let mut text = serde_json::to_string_pretty(pack).expect("a pack serializes");
    text.push('\n');
    text
}
