//! A host's configuration as the Fluent Bit module reads it: `tripline.json` in a directory
//! (`Accessible_Paths`), the rule files and models it names read from that directory, through
//! the same core calls (`Engine::for_host`, `Engine::load_model`) and with the same
//! messages.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tripline::config::{HostConfig, CONFIG_FILE};
use tripline::Engine;

/// A configuration as given on the command line: its directory and its file.
pub struct Place {
    pub dir: PathBuf,
    pub file: PathBuf,
}

impl Place {
    /// `path` is the directory holding `tripline.json`, or the configuration file itself.
    pub fn locate(path: &Path) -> Result<Place> {
        if path.is_dir() {
            let file = path.join(CONFIG_FILE);
            if !file.is_file() {
                bail!(
                    "{}: no such file, so the module would run the defaults; write it (docs/configuration.md) or give the directory that holds it",
                    file.display()
                );
            }
            return Ok(Place { dir: path.to_path_buf(), file });
        }
        if !path.is_file() {
            bail!("{}: no such file or directory; give the directory that holds {CONFIG_FILE}, or the file", path.display());
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        Ok(Place { dir, file: path.to_path_buf() })
    }

    pub fn read(&self) -> Result<Vec<u8>> {
        std::fs::read(&self.file).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}; check its permissions", self.file.display()))
    }

    /// The engine the module would build from this configuration document, and the module's
    /// own settings from it.
    pub fn engine(&self, document: &[u8]) -> (Engine, HostConfig) {
        Engine::for_host(document, |name| std::fs::read(self.dir.join(name)).map_err(|e| format!("{name}: cannot read: {e}")))
    }

    /// Loads the models the configuration lists, as the module does at start; the problems,
    /// each with the module's message, placed at their file.
    pub fn load_models(&self, engine: &mut Engine, host: &HostConfig) -> Vec<String> {
        let mut problems = Vec::new();
        for model in &host.models {
            let path = self.dir.join(model);
            let loaded = std::fs::read(&path).map_err(|e| e.to_string()).and_then(|bytes| engine.load_model(&bytes));
            if let Err(e) = loaded {
                problems.push(format!(
                    "{}: model {model} not loaded: {e}; fit it with `tripline fit` under this configuration, or remove it from `models`",
                    path.display()
                ));
            }
        }
        problems
    }

    /// A configuration error, placed at the file, with the fix.
    pub fn config_problem(&self, engine: &Engine) -> Option<String> {
        engine.config_error().map(|e| format!("{}: {e}; fix the configuration (docs/configuration.md)", self.file.display()))
    }

    /// The rule problems, each placed at its rule file where the message names one.
    pub fn rule_problems(&self, engine: &Engine, host: &HostConfig) -> Vec<String> {
        let files = &host.rules;
        engine
            .rule_errors()
            .iter()
            .map(|e| match files.iter().find(|f| e.starts_with(&format!("{f}:"))) {
                Some(_) => format!("{}; fix the rule file or remove it from `rules` (docs/rules.md)", self.dir.join(e).display()),
                None => format!("{}: {e}; fix the rule or disable it in `detections`", self.file.display()),
            })
            .collect()
    }
}

/// The engine for `config` (a directory or file; the defaults without one), refusing a
/// configuration the module would refuse. Rule and model problems are printed as warnings: the
/// module runs without them.
pub fn engine_for(config: Option<&Path>) -> Result<(Engine, HostConfig)> {
    let Some(path) = config else { return Ok((Engine::from_json(b"{}"), HostConfig::default())) };
    let place = Place::locate(path)?;
    let (mut engine, host) = place.engine(&place.read()?);
    if let Some(problem) = place.config_problem(&engine) {
        bail!("{problem}");
    }
    for problem in place.rule_problems(&engine, &host).into_iter().chain(place.load_models(&mut engine, &host)) {
        eprintln!("tripline: warning: {problem}");
    }
    Ok((engine, host))
}
