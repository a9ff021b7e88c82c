//! ATT&CK enrichment: technique names and tactics, kill-chain phases, NIST and CIS tags and
//! threat actors, which ESCU does not write in a detection but contentctl adds at build time.
//!
//! The data is `data/attack-enrichment.json`, produced by `data/attack_enrichment.py` from a
//! pinned MITRE CTI release with contentctl v4.4.1's rules (the file's `source` says which).
//! [`Enrichment::apply`] is the one place those rules run here:
//! - technique name from `techniques[id].name`; a technique with several tactics gets them all,
//!   joined with `, ` (the rule form has one tactic string per technique);
//! - kill-chain phases: `kill_chain_by_tactic` of every tactic of every technique, deduplicated
//!   and sorted (contentctl `DetectionTags.kill_chain_phases`);
//! - NIST: `nist_by_type[type]`, else `nist_by_type["*"]` (TTP is `DE.CM`, others `DE.AE`);
//! - CIS: the first `cis20` entry whose `security_domain` is the detection's, or `*`;
//! - threat actors: the groups of all techniques, deduplicated and sorted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use tripline::rule::{Metadata, Technique};

#[derive(Debug, Clone, Deserialize)]
pub struct TechniqueInfo {
    pub name: String,
    #[serde(default)]
    pub tactics: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CisRule {
    pub security_domain: String,
    pub value: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Enrichment {
    pub kill_chain_by_tactic: BTreeMap<String, String>,
    #[serde(default)]
    pub nist_by_type: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub cis20: Vec<CisRule>,
    pub techniques: BTreeMap<String, TechniqueInfo>,
}

impl Enrichment {
    pub fn load(path: &Path) -> anyhow::Result<Enrichment> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Fills the enrichment fields of `meta` (whose `mitre_attack` holds the ids); returns what
    /// it could not resolve.
    pub fn apply(&self, meta: &mut Metadata, security_domain: Option<&str>) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut phases = BTreeSet::new();
        let mut actors = BTreeSet::new();
        for technique in &mut meta.mitre_attack {
            let Some(info) = self.techniques.get(&technique.id) else {
                warnings.push(format!("ATT&CK technique `{}` is not in the enrichment data", technique.id));
                continue;
            };
            technique.name = info.name.clone();
            technique.tactic = info.tactics.join(", ");
            for tactic in &info.tactics {
                match self.kill_chain_by_tactic.get(tactic) {
                    Some(phase) => {
                        phases.insert(phase.clone());
                    }
                    None => warnings.push(format!("tactic `{tactic}` has no kill-chain phase in the enrichment data")),
                }
            }
            actors.extend(info.groups.iter().cloned());
        }
        meta.kill_chain_phases = phases.into_iter().collect();
        meta.threat_actors = actors.into_iter().collect();
        meta.nist = self
            .nist_by_type
            .get(&meta.analytic_type)
            .or_else(|| self.nist_by_type.get("*"))
            .cloned()
            .unwrap_or_default();
        meta.cis20 = self
            .cis20
            .iter()
            .find(|r| Some(r.security_domain.as_str()) == security_domain || r.security_domain == "*")
            .map(|r| r.value.clone())
            .unwrap_or_default();
        warnings
    }
}

/// Techniques as the detection lists them, before enrichment (names and tactics empty).
pub fn bare_techniques(ids: &[String]) -> Vec<Technique> {
    ids.iter().map(|id| Technique { id: id.clone(), name: String::new(), tactic: String::new() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrichment() -> Enrichment {
        serde_json::from_str(
            r#"{"kill_chain_by_tactic": {"Collection": "Exploitation", "Persistence": "Installation"},
                "nist_by_type": {"TTP": ["DE.CM"], "*": ["DE.AE"]},
                "cis20": [{"security_domain": "network", "value": ["CIS 13"]}, {"security_domain": "*", "value": ["CIS 10"]}],
                "techniques": {"T1": {"name": "One", "tactics": ["Collection", "Persistence"], "groups": ["b", "A", "b"]},
                               "T2": {"name": "Two", "tactics": ["Collection"], "groups": ["A"]}}}"#,
        )
        .unwrap()
    }

    fn meta(kind: &str, ids: &[&str]) -> Metadata {
        Metadata {
            id: String::new(),
            key: String::new(),
            name: String::new(),
            version: 1,
            analytic_type: kind.into(),
            status: String::new(),
            impact: 0,
            confidence: 0,
            risk_object: None,
            threat_object: None,
            message: String::new(),
            message_aliases: vec![],
            mitre_attack: bare_techniques(&ids.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            kill_chain_phases: vec![],
            nist: vec![],
            cis20: vec![],
            threat_actors: vec![],
            analytic_stories: vec![],
            sigma: None,
        }
    }

    #[test]
    fn applies_contentctl_rules() {
        let mut m = meta("TTP", &["T1", "T2"]);
        assert!(enrichment().apply(&mut m, Some("network")).is_empty());
        assert_eq!(m.mitre_attack[0].tactic, "Collection, Persistence");
        assert_eq!(m.kill_chain_phases, vec!["Exploitation", "Installation"]);
        assert_eq!(m.threat_actors, vec!["A", "b"]);
        assert_eq!(m.nist, vec!["DE.CM"]);
        assert_eq!(m.cis20, vec!["CIS 13"]);
        let mut h = meta("Hunting", &["T9"]);
        assert_eq!(enrichment().apply(&mut h, Some("threat")).len(), 1);
        assert_eq!((h.nist, h.cis20), (vec!["DE.AE".to_string()], vec!["CIS 10".to_string()]));
    }
}
