//! Every detection this build can run, by configuration key: the compiled rules (data, see
//! `rule/`) and the detections that need code of their own (`detections/`), each with whether
//! it runs when the host's configuration does not say.

use serde_json::{Map, Value};

use crate::config::ConfigError;
use crate::detection::{no_settings, Constructor, Detection};
use crate::detections;
use crate::rule::{Rule, RuleDetection};

pub struct Entry {
    pub key: String,
    pub enabled_by_default: bool,
    build: Build,
}

enum Build {
    Code(Constructor),
    Rule(Box<Rule>),
}

impl Entry {
    /// A rule runs by default where ESCU ships it to run: production TTP and Anomaly searches.
    pub fn of_rule(rule: Rule) -> Entry {
        let m = &rule.metadata;
        let enabled_by_default = m.status == "production" && matches!(m.analytic_type.as_str(), "TTP" | "Anomaly");
        Entry { key: m.key.clone(), enabled_by_default, build: Build::Rule(Box::new(rule)) }
    }

    /// The detection, configured by its own settings (the section without `enabled`/`suppress`).
    pub fn construct(&self, settings: &Map<String, Value>) -> Result<Box<dyn Detection>, ConfigError> {
        match &self.build {
            Build::Code(construct) => construct(settings),
            Build::Rule(rule) => {
                no_settings(&self.key, settings)?;
                let detection = RuleDetection::new((**rule).clone())
                    .map_err(|e| ConfigError::new(format!("detections.{}", self.key), e))?;
                Ok(Box::new(detection))
            }
        }
    }
}

/// The catalog, hand-written detections first.
pub fn catalog(rules: Vec<Rule>) -> Vec<Entry> {
    let code = detections::REGISTRY.iter().map(|(key, construct)| Entry {
        key: key.to_string(),
        enabled_by_default: true,
        build: Build::Code(*construct),
    });
    code.chain(rules.into_iter().map(Entry::of_rule)).collect()
}
