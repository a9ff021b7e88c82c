//! The alert formats a host chooses with `output.alert_format`: the Splunk risk event that
//! `alert.rs` builds (the default, unchanged), an OCSF Detection Finding, or an ECS alert.
//!
//! OCSF and ECS alerts are derived from the risk event when an alert is emitted, never on the
//! record path, so every format carries the same facts and the default stays byte for byte what
//! it was. Result columns are read by their Splunk (CIM and add-on) names: whichever of a
//! column's usual names a detection's row has. Whatever a schema has no field for stays in the
//! format's own place for the rest (OCSF `unmapped`, ECS `tripline.*`). docs/alerts.md has the
//! mapping table and an example of each.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::digest::fnv1a64;
use crate::time::{format_rfc3339, parse_event_time};

/// How alerts are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertFormat {
    /// A Splunk risk event, ready for `index=risk` (docs/alerts.md).
    #[default]
    Splunk,
    /// An OCSF Detection Finding (class 2004) of [`OCSF_VERSION`].
    Ocsf,
    /// An Elastic Common Schema document with `event.kind: alert`, ECS [`ECS_VERSION`].
    Ecs,
}

/// The OCSF release the findings follow (`metadata.version`).
pub const OCSF_VERSION: &str = "1.6.0";
/// The ECS release the alerts follow (`ecs.version`).
pub const ECS_VERSION: &str = "9.4.0";
const PRODUCT: &str = "tripline";

impl AlertFormat {
    /// `alert`, a risk event as `alert::Alert` serializes to, in this format.
    pub fn write(self, alert: Value) -> Value {
        match self {
            AlertFormat::Splunk => alert,
            AlertFormat::Ocsf => ocsf(&RiskEvent::read(&alert)),
            AlertFormat::Ecs => ecs(&RiskEvent::read(&alert)),
        }
    }
}

/// Each entity a result row may name, by the column names detections use for it.
const SOURCE_ADDRESS: &[&str] = &["src_ip", "src", "sourceIPAddress"];
const USER_NAME: &[&str] = &["user", "user_name", "userName", "userIdentity.userName", "userIdentity.principalId"];
const USER_ARN: &[&str] = &["user_arn", "userIdentity.arn"];
const ACCOUNT: &[&str] = &["aws_account_id", "vendor_account", "recipientAccountId"];
const REGION: &[&str] = &["vendor_region", "region", "awsRegion"];
const OPERATION: &[&str] = &["eventName", "command"];
const SERVICE: &[&str] = &["eventSource"];
const EVENT_ID: &[&str] = &["eventID"];
const USER_AGENT: &[&str] = &["user_agent", "userAgent"];

/// MITRE ATT&CK Enterprise tactics by name (attack.mitre.org/tactics/enterprise/): ESCU
/// annotates a technique with the tactic's name only, Sigma with its tag's form
/// (`privilege-escalation`). ATT&CK renamed TA0005 Stealth and added TA0112 Defense Impairment,
/// which Sigma's rules use (SigmaHQ/sigma-specification, sigma-appendix-tags.md); ESCU still
/// writes Defense Evasion.
const TACTICS: [(&str, &str); 16] = [
    ("Reconnaissance", "TA0043"),
    ("Resource Development", "TA0042"),
    ("Initial Access", "TA0001"),
    ("Execution", "TA0002"),
    ("Persistence", "TA0003"),
    ("Privilege Escalation", "TA0004"),
    ("Defense Evasion", "TA0005"),
    ("Stealth", "TA0005"),
    ("Defense Impairment", "TA0112"),
    ("Credential Access", "TA0006"),
    ("Discovery", "TA0007"),
    ("Lateral Movement", "TA0008"),
    ("Collection", "TA0009"),
    ("Command and Control", "TA0011"),
    ("Exfiltration", "TA0010"),
    ("Impact", "TA0040"),
];

/// The facts of one risk event that the other formats place.
struct RiskEvent<'a> {
    alert: &'a Value,
    detection: &'a Value,
    result: Map<String, Value>,
    /// Unix seconds: the window's bounds.
    start: Option<i64>,
    end: Option<i64>,
    /// Unix seconds: when it happened, as Splunk times a risk event: the row's `_time` (an
    /// event's own, or its hour's), else its last event's (`lastTime`), else the window's end.
    time: Option<i64>,
    /// A stable id: the same alert gets the same id after a restart or a replay.
    uid: String,
    techniques: Vec<Technique<'a>>,
}

struct Technique<'a> {
    id: &'a str,
    name: &'a str,
    tactics: Vec<&'a str>,
}

impl<'a> RiskEvent<'a> {
    fn read(alert: &'a Value) -> RiskEvent<'a> {
        let time = |key: &str| alert["window"][key].as_str().and_then(parse_event_time);
        let detection = &alert["detection"];
        let techniques = alert["annotations"]["mitre_attack_techniques"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|t| {
                        Some(Technique {
                            id: t["id"].as_str()?,
                            name: t["technique"].as_str().unwrap_or_default(),
                            // ESCU joins a technique's tactics with ", ".
                            tactics: t["tactic"].as_str().map(|s| s.split(", ").filter(|s| !s.is_empty()).collect()).unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let result = alert["result"].as_object().cloned().unwrap_or_default();
        let column_time = |column: &str| result.get(column).and_then(Value::as_str).and_then(parse_event_time);
        RiskEvent {
            time: column_time("_time").or_else(|| column_time("lastTime")).or_else(|| time("end")),
            alert,
            detection,
            result,
            start: time("start"),
            end: time("end"),
            uid: format!("{}-{:016x}", detection["id"].as_str().unwrap_or_default(), fnv1a64(alert.to_string().as_bytes())),
            techniques,
        }
    }

    /// The first of `names` the row has a value for.
    fn column(&self, names: &[&'a str]) -> Option<&'a str> {
        names.iter().copied().find(|name| self.result.get(*name).is_some_and(|v| !v.is_null()))
    }

    /// The text values of the first of `names` the row has (a multivalue column gives several).
    fn values(&self, names: &[&'a str]) -> Vec<String> {
        let Some(value) = self.column(names).and_then(|name| self.result.get(name)) else { return Vec::new() };
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        };
        match value {
            Value::Array(items) => items.iter().filter_map(text).filter(|s| !s.is_empty()).collect(),
            one => text(one).into_iter().filter(|s| !s.is_empty()).collect(),
        }
    }

    /// The value of a column that holds exactly one.
    fn single(&self, names: &[&'a str]) -> Option<String> {
        let mut values = self.values(names);
        (values.len() == 1).then(|| values.remove(0))
    }

    fn text(&self, key: &str) -> Option<&'a str> {
        self.alert[key].as_str()
    }

    fn risk_score(&self) -> u64 {
        self.alert["risk_score"].as_u64().unwrap_or_default()
    }

    /// OCSF's severity_id from the risk score, as contentctl derives an ESCU detection's severity
    /// (splunk/contentctl, detection_abstract.py `severity`): 0-20 informational, to 40 low, to 60
    /// medium, to 80 high, above critical.
    fn severity(&self) -> (u64, &'static str) {
        match self.risk_score() {
            0..=20 => (1, "Informational"),
            21..=40 => (2, "Low"),
            41..=60 => (3, "Medium"),
            61..=80 => (4, "High"),
            _ => (5, "Critical"),
        }
    }

    /// Source addresses split into IP addresses and names (CloudTrail writes a service's name,
    /// `s3.amazonaws.com`, where an AWS service made the call).
    fn sources(&self) -> (Vec<String>, Vec<String>) {
        self.values(SOURCE_ADDRESS).into_iter().partition(|s| s.parse::<IpAddr>().is_ok())
    }

    /// What neither schema has a field for, kept whole: the row, the window's state, the risk
    /// and threat objects as Splunk names them, the other annotations.
    fn rest(&self) -> Value {
        let mut rest = Map::new();
        for key in ["risk_object", "risk_object_type", "threat_object", "threat_object_type"] {
            if let Some(value) = self.alert.get(key) {
                rest.insert(key.into(), value.clone());
            }
        }
        let annotations = &self.alert["annotations"];
        let mut kept = Map::new();
        for key in ["kill_chain_phases", "nist", "cis20", "threat_actors", "analytic_story"] {
            if annotations[key].as_array().is_some_and(|a| !a.is_empty()) {
                kept.insert(key.into(), annotations[key].clone());
            }
        }
        if !kept.is_empty() {
            rest.insert("annotations".into(), Value::Object(kept));
        }
        let window = &self.alert["window"];
        rest.insert("window".into(), json!({"partial": window["partial"], "values_dropped": window["values_dropped"]}));
        rest.insert("search_name".into(), self.detection["search_name"].clone());
        rest.insert("result".into(), Value::Object(self.result.clone()));
        Value::Object(rest)
    }
}

fn tactic_id(name: &str) -> Option<&'static str> {
    // Sigma's tag form: lower case, words joined by `-` (older rules: `_`).
    let same = |tactic: &str| {
        tactic.len() == name.len() && tactic.bytes().zip(name.bytes()).all(|(t, n)| t.eq_ignore_ascii_case(&n) || (t == b' ' && matches!(n, b'-' | b'_')))
    };
    TACTICS.iter().find(|(tactic, _)| same(tactic)).map(|(_, id)| *id)
}

fn attack_url(id: &str) -> String {
    let path = id.replace('.', "/");
    if id.starts_with("TA") {
        format!("https://attack.mitre.org/tactics/{path}/")
    } else {
        format!("https://attack.mitre.org/techniques/{path}/")
    }
}

/// Inserts `key: value` unless the value is empty: both schemas omit what is not known.
fn put(object: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    if !empty {
        object.insert(key.into(), value);
    }
}

fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let mut out = Map::new();
    for (key, value) in pairs {
        put(&mut out, key, value);
    }
    Value::Object(out)
}

fn millis(secs: Option<i64>) -> Value {
    secs.map_or(Value::Null, |s| json!(s.saturating_mul(1000)))
}

fn column_time(event: &RiskEvent<'_>, column: &str) -> Value {
    millis(event.result.get(column).and_then(Value::as_str).and_then(parse_event_time))
}

/// The OCSF Detection Finding (ocsf/ocsf-schema 1.6.0, events/findings/detection_finding.json)
/// with the Cloud profile, for the account and region every CloudTrail alert has.
fn ocsf(event: &RiskEvent<'_>) -> Value {
    const CATEGORY_UID: u64 = 2; // Findings
    const CLASS_UID: u64 = 2004; // Detection Finding
    const ACTIVITY_CREATE: u64 = 1;
    let (severity_id, severity) = event.severity();
    let detection = event.detection;
    let mitre = |id: &str, name: &str| object([("uid", json!(id)), ("name", json!(name)), ("src_url", json!(attack_url(id)))]);
    // One attack per technique, a sub-technique with its parent (a parent that is listed only
    // for its sub-technique's sake is not repeated), its tactics as ESCU names them.
    let attacks: Vec<Value> = event
        .techniques
        .iter()
        .filter(|t| !event.techniques.iter().any(|sub| sub.id.split_once('.').is_some_and(|(parent, _)| parent == t.id)))
        .map(|technique| {
            let (parent, sub_technique) = match technique.id.split_once('.') {
                Some((parent, _)) => {
                    let parent_name = event.techniques.iter().find(|t| t.id == parent).map(|t| t.name).unwrap_or_default();
                    (mitre(parent, parent_name), mitre(technique.id, technique.name))
                }
                None => (mitre(technique.id, technique.name), Value::Null),
            };
            let tactics: Vec<Value> = technique.tactics.iter().map(|name| {
                let id = tactic_id(name);
                object([("uid", json!(id)), ("name", json!(name)), ("src_url", json!(id.map(attack_url)))])
            }).collect();
            object([
                ("technique", parent),
                ("sub_technique", sub_technique),
                ("tactic", tactics.first().cloned().unwrap_or(Value::Null)),
                ("tactics", if tactics.len() > 1 { json!(tactics) } else { Value::Null }),
            ])
        })
        .collect();
    let (ips, names) = event.sources();
    let mut observables = Vec::new();
    let mut observe = |name: &str, type_id: u64, values: &[String]| {
        observables.extend(values.iter().map(|value| json!({"name": name, "type_id": type_id, "value": value})));
    };
    // Type ids: the observable types of the OCSF dictionary (tests/schemas/ has them).
    observe("evidences[0].src_endpoint.ip", 2, &ips);
    observe("evidences[0].src_endpoint.domain", 1, &names);
    observe("evidences[0].actor.user.name", 4, &event.values(USER_NAME));
    observe("evidences[0].actor.user.uid", 10, &event.values(USER_ARN));
    observe("cloud.account.uid", 10, &event.values(ACCOUNT));
    if let Some(column) = event.column(USER_AGENT) {
        observe(&format!("unmapped.result.{column}"), 16, &event.values(USER_AGENT));
    }
    // A risk or threat object no field above holds is still an observable, by its Splunk kind.
    for (key, kind) in [("risk_object", "risk_object_type"), ("threat_object", "threat_object_type")] {
        let Some(value) = event.text(key).filter(|v| !v.is_empty()) else { continue };
        if observables.iter().any(|o| o["value"] == value) {
            continue;
        }
        let type_id = match event.text(kind) {
            Some("user") => 4,
            Some("ip_address") => 2,
            Some("system") => 1,
            _ => 99,
        };
        observables.push(object([("name", json!(format!("unmapped.{key}"))), ("type_id", json!(type_id)), ("type", json!(event.text(kind))), ("value", json!(value))]));
    }
    let evidence = object([
        ("actor", object([("user", object([("name", json!(event.single(USER_NAME))), ("uid", json!(event.single(USER_ARN)))]))])),
        ("src_endpoint", object([("ip", json!(single(&ips))), ("domain", json!(single(&names)))])),
        (
            "api",
            match event.single(OPERATION) {
                Some(operation) => object([("operation", json!(operation)), ("service", object([("name", json!(event.single(SERVICE)))]))]),
                None => Value::Null,
            },
        ),
    ]);
    let related_events: Vec<Value> = event.values(EVENT_ID).into_iter().map(|uid| json!({"uid": uid})).collect();
    let account = event.single(ACCOUNT);
    object([
        ("activity_id", json!(ACTIVITY_CREATE)),
        ("activity_name", json!("Create")),
        ("category_uid", json!(CATEGORY_UID)),
        ("category_name", json!("Findings")),
        ("class_uid", json!(CLASS_UID)),
        ("class_name", json!("Detection Finding")),
        ("type_uid", json!(CLASS_UID * 100 + ACTIVITY_CREATE)),
        ("type_name", json!("Detection Finding: Create")),
        ("severity_id", json!(severity_id)),
        ("severity", json!(severity)),
        ("status_id", json!(1)),
        ("status", json!("New")),
        ("is_alert", json!(true)),
        ("risk_score", json!(event.risk_score())),
        // In event time, not the wall clock's: a replay writes the same finding.
        ("time", millis(event.time)),
        ("start_time", millis(event.start)),
        ("end_time", millis(event.end)),
        ("message", json!(event.text("risk_message"))),
        (
            "metadata",
            object([
                ("version", json!(OCSF_VERSION)),
                ("profiles", json!(["cloud"])),
                ("product", object([("name", json!(PRODUCT)), ("vendor_name", json!(PRODUCT)), ("version", json!(env!("CARGO_PKG_VERSION")))])),
                ("log_name", json!("tripline alerts")),
            ]),
        ),
        (
            "finding_info",
            object([
                ("uid", json!(event.uid)),
                ("title", detection["name"].clone()),
                ("desc", json!(event.text("risk_message"))),
                (
                    "analytic",
                    object([
                        ("uid", detection["id"].clone()),
                        ("name", detection["name"].clone()),
                        ("type_id", json!(1)),
                        ("type", json!("Rule")),
                        ("version", json!(detection["version"].as_u64().map(|v| v.to_string()))),
                        ("category", detection["analytic_type"].clone()),
                    ]),
                ),
                ("attacks", json!(attacks)),
                ("types", json!(detection["analytic_type"].as_str().into_iter().collect::<Vec<_>>())),
                ("first_seen_time", column_time(event, "firstTime")),
                ("last_seen_time", column_time(event, "lastTime")),
                ("related_events", json!(related_events)),
                ("data_sources", json!(["AWS CloudTrail"])),
            ]),
        ),
        (
            "cloud",
            object([
                ("provider", json!("AWS")),
                ("account", account.map_or(Value::Null, |uid| json!({"uid": uid, "type_id": 10, "type": "AWS Account"}))),
                ("region", json!(event.single(REGION))),
            ]),
        ),
        ("observables", json!(observables)),
        ("evidences", if evidence.as_object().is_some_and(|e| e.is_empty()) { Value::Null } else { json!([evidence]) }),
        ("unmapped", event.rest()),
    ])
}

fn single(values: &[String]) -> Option<&String> {
    match values {
        [one] => Some(one),
        _ => None,
    }
}

/// The ECS alert (elastic/ecs 9.4.0, generated/ecs/ecs_flat.yml): `event.kind: alert`, the
/// detection as `rule.*`, ATT&CK as `threat.*`; tripline's own fields under `tripline.*`, as ECS
/// asks of custom fields.
fn ecs(event: &RiskEvent<'_>) -> Value {
    let (severity_id, _) = event.severity();
    let detection = event.detection;
    let rfc3339 = |key: &str| event.alert["window"][key].clone();
    let (mut tactic_ids, mut tactic_names) = (Vec::new(), Vec::new());
    let (mut techniques, mut sub_techniques) = (Vec::new(), Vec::new());
    for technique in &event.techniques {
        for tactic in &technique.tactics {
            if !tactic_names.contains(tactic) {
                tactic_names.push(*tactic);
                tactic_ids.extend(tactic_id(tactic));
            }
        }
        let kind = if technique.id.contains('.') { &mut sub_techniques } else { &mut techniques };
        kind.push(technique);
    }
    let technique_fields = |list: &[&Technique<'_>]| {
        [
            ("id", json!(list.iter().map(|t| t.id).collect::<Vec<_>>())),
            ("name", json!(list.iter().map(|t| t.name).collect::<Vec<_>>())),
            ("reference", json!(list.iter().map(|t| attack_url(t.id)).collect::<Vec<_>>())),
        ]
    };
    let mut technique = technique_fields(&techniques).to_vec();
    technique.push(("subtechnique", object(technique_fields(&sub_techniques))));
    let (ips, names) = event.sources();
    let users = event.values(USER_NAME);
    object([
        ("@timestamp", json!(event.time.map(format_rfc3339))),
        ("message", json!(event.text("risk_message"))),
        ("ecs", json!({"version": ECS_VERSION})),
        (
            "event",
            object([
                ("kind", json!("alert")),
                ("id", json!(event.uid)),
                ("risk_score", json!(event.risk_score() as f64)),
                ("severity", json!(severity_id)),
                ("start", rfc3339("start")),
                ("end", rfc3339("end")),
                ("action", json!(event.single(OPERATION))),
                ("provider", json!(event.single(SERVICE))),
                ("dataset", json!("tripline.alert")),
            ]),
        ),
        (
            "rule",
            object([
                ("id", detection["id"].clone()),
                ("name", detection["name"].clone()),
                ("version", json!(detection["version"].as_u64().map(|v| v.to_string()))),
                ("category", detection["analytic_type"].clone()),
            ]),
        ),
        (
            "threat",
            if event.techniques.is_empty() {
                Value::Null
            } else {
                object([
                    ("framework", json!("MITRE ATT&CK")),
                    (
                        "tactic",
                        object([
                            ("id", json!(tactic_ids)),
                            ("name", json!(tactic_names)),
                            ("reference", json!(tactic_ids.iter().map(|id| attack_url(id)).collect::<Vec<_>>())),
                        ]),
                    ),
                    ("technique", object(technique)),
                ])
            },
        ),
        (
            "cloud",
            object([
                ("provider", json!("aws")),
                ("account", object([("id", json!(event.single(ACCOUNT)))])),
                ("region", json!(event.single(REGION))),
            ]),
        ),
        ("source", object([("ip", json!(single(&ips))), ("domain", json!(single(&names)))])),
        ("user", object([("name", json!(single(&users))), ("id", json!(event.single(USER_ARN)))])),
        ("user_agent", object([("original", json!(event.single(USER_AGENT)))])),
        ("related", object([("ip", json!(ips)), ("user", json!(users)), ("hosts", json!(names))])),
        ("observer", object([("vendor", json!(PRODUCT)), ("product", json!(PRODUCT)), ("version", json!(env!("CARGO_PKG_VERSION")))])),
        ("tripline", event.rest()),
    ])
}
