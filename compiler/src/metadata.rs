//! A detection YAML's metadata in the rule's form, from any of ESCU's three layouts.
//!
//! - 2024, contentctl 4 (`tags:`): `tags.impact`, `tags.confidence`, `tags.risk_score`,
//!   `tags.message` and `tags.observable` (name, type, role). The risk object is the first
//!   observable that contentctl v4.4.1 (`detection_abstract.py`, `risk`) turns into a risk
//!   object, the threat object the first it turns into a threat object, with its types:
//!   a `Victim` of type User/Username/Email Address is `user`, of type
//!   Device/Endpoint/Hostname/IP Address `system`, an `Attacker` IP Address `ip_address`,
//!   Process (Name) `process`, File (Name/Hash) `file_name`, URL (String) `url`, another
//!   `Attacker` its type in lower case, and anything else a risk object of type `other`.
//!   `risk_score` must equal impact x confidence / 100; a mismatch is a warning. Where every
//!   observable is an `Attacker` there is no risk object (`None`, with a warning): the alert
//!   carries the threat object only.
//! - 2025, contentctl 5 (`rba:`): `rba.message`, `rba.risk_objects` (field, type, score) and
//!   `rba.threat_objects` (field, type); `tags` keeps stories, techniques and security domain
//!   and has no impact or confidence. The first risk and threat objects are used; the risk
//!   score (contentctl 5: the largest risk object score) becomes `impact` with `confidence`
//!   100, so `risk_score()` gives it back.
//! - 2026, ESCU 6 (`finding:`, `intermediate_findings:` and top-level `threat_objects:`,
//!   contentctl-ng): refused with a clear reason, since no published contentctl defines its
//!   fields to check a reading against.

use serde::Deserialize;
use tripline::rule::{Metadata, ObjectField};

use crate::enrich::{bare_techniques, Enrichment};

#[derive(Debug, Clone, Deserialize)]
pub struct DetectionYaml {
    pub name: String,
    pub id: String,
    pub version: u32,
    #[serde(default)]
    pub status: String,
    #[serde(rename = "type")]
    pub analytic_type: String,
    pub search: String,
    #[serde(default)]
    pub data_source: Vec<String>,
    #[serde(default)]
    pub tags: Tags,
    #[serde(default)]
    pub rba: Option<Rba>,
    #[serde(default)]
    pub finding: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tags {
    #[serde(default)]
    pub analytic_story: Vec<String>,
    pub confidence: Option<u32>,
    pub impact: Option<u32>,
    pub message: Option<String>,
    #[serde(default)]
    pub mitre_attack_id: Vec<String>,
    #[serde(default)]
    pub observable: Vec<Observable>,
    pub risk_score: Option<u32>,
    pub security_domain: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Observable {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub role: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rba {
    pub message: String,
    #[serde(default)]
    pub risk_objects: Vec<RiskObject>,
    #[serde(default)]
    pub threat_objects: Vec<ThreatObject>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RiskObject {
    pub field: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub score: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ThreatObject {
    pub field: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// What contentctl v4.4.1 makes of one observable.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    Risk(String),
    Threat(String),
}

fn classify(o: &Observable) -> Role {
    let kind = o.kind.to_ascii_lowercase();
    let victim = o.role.iter().any(|r| r == "Victim");
    let attacker = o.role.iter().any(|r| r == "Attacker");
    let is = |set: &[&str]| set.contains(&kind.as_str());
    if victim && is(&["user", "username", "email address"]) {
        Role::Risk("user".into())
    } else if victim && is(&["device", "endpoint", "hostname", "ip address"]) {
        Role::Risk("system".into())
    } else if attacker && is(&["process name", "process"]) {
        Role::Threat("process".into())
    } else if attacker && is(&["file name", "file", "file hash"]) {
        Role::Threat("file_name".into())
    } else if attacker && is(&["ip address"]) {
        Role::Threat("ip_address".into())
    } else if attacker && is(&["url string", "url"]) {
        Role::Threat("url".into())
    } else if attacker {
        Role::Threat(kind)
    } else {
        Role::Risk("other".into())
    }
}

/// The metadata of one detection, with the warnings reading it raised.
pub fn read(key: &str, d: &DetectionYaml, enrichment: Option<&Enrichment>) -> Result<(Metadata, Vec<String>), String> {
    if d.finding.is_some() {
        return Err("the ESCU 6 `finding:` layout (contentctl-ng) is not supported: no published contentctl \
                    defines its fields"
            .into());
    }
    let mut warnings = Vec::new();
    let (impact, confidence, message, risk_object, threat_object) = if let Some(rba) = &d.rba {
        let score = rba.risk_objects.iter().map(|r| r.score).max().ok_or("`rba.risk_objects` is empty: no risk score")?;
        (
            score,
            100,
            rba.message.clone(),
            rba.risk_objects.first().map(|r| ObjectField { field: r.field.clone(), kind: r.kind.clone() }),
            rba.threat_objects.first().map(|t| ObjectField { field: t.field.clone(), kind: t.kind.clone() }),
        )
    } else {
        let t = &d.tags;
        let impact = t.impact.ok_or("`tags.impact` is missing (and there is no `rba:` block)")?;
        let confidence = t.confidence.ok_or("`tags.confidence` is missing")?;
        let message = t.message.clone().ok_or("`tags.message` is missing")?;
        let mut risk = None;
        let mut threat = None;
        for o in &t.observable {
            match classify(o) {
                Role::Risk(kind) if risk.is_none() => risk = Some(ObjectField { field: o.name.clone(), kind }),
                Role::Threat(kind) if threat.is_none() => threat = Some(ObjectField { field: o.name.clone(), kind }),
                _ => {}
            }
        }
        if risk.is_none() {
            warnings.push(
                "no risk object: every observable is an `Attacker`, which contentctl makes a threat object only; \
                 alerts carry no risk object (Splunk ES writes no risk event without one)"
                    .into(),
            );
        }
        let expected = impact * confidence / 100;
        match t.risk_score {
            Some(score) if score != expected => warnings.push(format!(
                "`risk_score: {score}` is not impact {impact} x confidence {confidence} / 100 = {expected}; the rule uses {expected}"
            )),
            None => warnings.push(format!("no `risk_score`; impact x confidence / 100 = {expected}")),
            _ => {}
        }
        (impact, confidence, message, risk, threat)
    };
    let mut meta = Metadata {
        id: d.id.clone(),
        key: key.to_string(),
        name: d.name.clone(),
        version: d.version,
        analytic_type: d.analytic_type.clone(),
        status: d.status.clone(),
        impact,
        confidence,
        risk_object,
        threat_object,
        message: message.trim().to_string(),
        message_aliases: Vec::new(),
        mitre_attack: bare_techniques(&d.tags.mitre_attack_id),
        kill_chain_phases: Vec::new(),
        nist: Vec::new(),
        cis20: Vec::new(),
        threat_actors: Vec::new(),
        analytic_stories: d.tags.analytic_story.clone(),
        sigma: None,
    };
    if let Some(e) = enrichment {
        warnings.extend(e.apply(&mut meta, d.tags.security_domain.as_deref()));
    }
    Ok((meta, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> DetectionYaml {
        serde_norway::from_str(yaml).unwrap()
    }

    const TAGS_2024: &str = r#"
name: AWS Example
id: 0000
version: 3
status: production
type: TTP
search: '`cloudtrail` eventName=X | stats count by src_ip aws_account_id'
tags:
  analytic_story:
  - Data Exfiltration
  confidence: 80
  impact: 80
  message: Something on $aws_account_id$ from $src_ip$
  mitre_attack_id:
  - T1119
  observable:
  - name: src_ip
    type: IP Address
    role:
    - Attacker
  - name: aws_account_id
    type: Other
    role:
    - Victim
  risk_score: 63
  security_domain: threat
"#;

    #[test]
    fn tags_layout_maps_observables_as_contentctl_4_does() {
        let (m, warnings) = read("aws_example", &parse(TAGS_2024), None).unwrap();
        assert_eq!(m.risk_object, Some(ObjectField { field: "aws_account_id".into(), kind: "other".into() }));
        assert_eq!(m.threat_object, Some(ObjectField { field: "src_ip".into(), kind: "ip_address".into() }));
        assert_eq!((m.impact, m.confidence, m.risk_score()), (80, 80, 64));
        assert_eq!(m.mitre_attack[0].id, "T1119");
        assert_eq!(m.analytic_stories, vec!["Data Exfiltration"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("risk_score: 63"));
    }

    #[test]
    fn attacker_observables_alone_give_no_risk_object() {
        let yaml = TAGS_2024.replace("    - Victim", "    - Attacker").replace("risk_score: 63", "risk_score: 64");
        let (m, warnings) = read("aws_example", &parse(&yaml), None).unwrap();
        assert_eq!(m.risk_object, None);
        assert_eq!(m.threat_object, Some(ObjectField { field: "src_ip".into(), kind: "ip_address".into() }));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("no risk object: every observable is an `Attacker`"), "{warnings:?}");
    }

    #[test]
    fn victim_types_map_to_user_system_or_other() {
        let o = |kind: &str, role: &str| Observable { name: "f".into(), kind: kind.into(), role: vec![role.into()] };
        assert_eq!(classify(&o("User", "Victim")), Role::Risk("user".into()));
        assert_eq!(classify(&o("IP Address", "Victim")), Role::Risk("system".into()));
        assert_eq!(classify(&o("Endpoint", "Victim")), Role::Risk("system".into()));
        assert_eq!(classify(&o("Other", "Victim")), Role::Risk("other".into()));
        assert_eq!(classify(&o("User", "Attacker")), Role::Threat("user".into()));
    }

    /// contentctl 5's field names (`contentctl/objects/rba.py`, and the v5 template detection
    /// `anomalous_usage_of_7zip.yml`): `rba.message`, `risk_objects[].field/type/score`,
    /// `threat_objects[].field/type`, no impact or confidence in `tags`.
    #[test]
    fn rba_layout_takes_first_objects_and_the_largest_score() {
        let yaml = r#"
name: AWS Example
id: 0001
version: 5
status: production
type: Anomaly
search: '`cloudtrail` eventName=X | stats count by user src_ip'
rba:
  message: User $user$ did X from $src_ip$
  risk_objects:
  - field: user
    type: user
    score: 20
  - field: aws_account_id
    type: other
    score: 35
  threat_objects:
  - field: src_ip
    type: ip_address
tags:
  analytic_story:
  - Suspicious AWS Activity
  asset_type: AWS Account
  mitre_attack_id:
  - T1078.004
  security_domain: threat
"#;
        let (m, warnings) = read("aws_example", &parse(yaml), None).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(m.risk_object, Some(ObjectField { field: "user".into(), kind: "user".into() }));
        assert_eq!(m.threat_object, Some(ObjectField { field: "src_ip".into(), kind: "ip_address".into() }));
        assert_eq!(m.risk_score(), 35);
        assert_eq!(m.message, "User $user$ did X from $src_ip$");
        assert_eq!(m.version, 5);
    }

    #[test]
    fn finding_layout_is_refused_with_a_reason() {
        let yaml = r#"
name: AWS Example
id: 0002
version: 6
type: TTP
search: '`cloudtrail` eventName=X'
finding:
  message: X happened
threat_objects: []
"#;
        assert!(read("aws_example", &parse(yaml), None).unwrap_err().contains("`finding:` layout"));
    }
}
