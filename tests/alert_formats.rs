//! `output.alert_format`: every alert the example data raises, written as an OCSF Detection
//! Finding and as an ECS alert, is checked against its schema, from facts generated out of the
//! schemas' own repositories (tests/schemas/, with the generators in scripts/): required
//! attributes, the type of every field present, no field the schema lacks, enumerated values.
//! The default stays the Splunk risk event, byte for byte.

use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::{json, Map, Value};
use tripline::Engine;

fn schema(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemas").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Records that raise alerts of several detections, with users, ARNs, addresses, accounts,
/// regions and event ids: the CloudTrail samples in ../shared/data, in time order.
fn sample_records() -> Vec<String> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let mut records: Vec<(String, String)> = Vec::new();
    for file in ["panther_analysis_cloudtrail_test_events.jsonl", "security_content_data_sources_cloudtrail_examples.jsonl"] {
        let text = std::fs::read_to_string(data.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let line: Value = serde_json::from_str(line).unwrap();
            let record = line.get("log").or_else(|| line.get("event")).unwrap_or(&line);
            if let Some(time) = record["eventTime"].as_str() {
                records.push((time.to_string(), record.to_string()));
            }
        }
    }
    let job: Value = serde_json::from_slice(&std::fs::read(data.join("splunk_security_content_jobcreated_example.json")).unwrap()).unwrap();
    records.push((job["eventTime"].as_str().unwrap().to_string(), job.to_string()));
    records.sort();
    records.into_iter().map(|(_, r)| r).collect()
}

/// Every alert the samples raise, as JSON text, with `output` as the configuration's output section.
fn alerts(output: Value) -> Vec<String> {
    let mut engine = Engine::from_json(json!({"output": output}).to_string().as_bytes());
    assert_eq!(engine.config_error(), None);
    for record in sample_records() {
        engine.process(record.as_bytes(), None);
    }
    engine.finish_all();
    engine.take_alerts(usize::MAX).iter().map(|a| a.get().to_string()).collect()
}

fn parsed(alerts: &[String]) -> Vec<Value> {
    alerts.iter().map(|a| serde_json::from_str(a).unwrap()).collect()
}

#[test]
fn the_default_is_the_splunk_risk_event_unchanged() {
    let default = alerts(json!({}));
    assert!(default.len() >= 10, "the samples raise alerts of several detections ({})", default.len());
    assert_eq!(alerts(json!({"alert_format": "splunk"})), default);
    for alert in parsed(&default) {
        let keys: Vec<&str> = alert.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys[..2], ["detection", "risk_score"]);
        assert_eq!(keys[keys.len() - 3..], ["annotations", "window", "result"]);
    }
}

#[test]
fn an_unknown_format_is_refused_by_name() {
    let engine = Engine::from_json(br#"{"output":{"alert_format":"cef"}}"#);
    assert_eq!(
        engine.config_error().unwrap().to_string(),
        "configuration key `output.alert_format`: unknown variant `cef`, expected one of `splunk`, `ocsf`, `ecs`"
    );
}

/// When a risk event happened, as Splunk times one: the row's `_time`, else `lastTime` (a
/// `security_content_ctime`, UTC without a zone), else the window's end.
fn event_time(risk: &Value) -> Value {
    let result = &risk["result"];
    let text = result["_time"].as_str().map(str::to_string).or_else(|| result["lastTime"].as_str().map(|t| format!("{t}Z")));
    text.map_or_else(|| risk["window"]["end"].clone(), Value::from)
}

/// The samples' alerts in `format`, each checked by `errors`, beside the same alerts as risk events.
fn checked(format: &str, errors: &dyn Fn(&Value) -> Vec<String>) -> (Vec<Value>, Vec<Value>) {
    let risk_events = parsed(&alerts(json!({})));
    let formatted = parsed(&alerts(json!({ "alert_format": format })));
    assert_eq!(formatted.len(), risk_events.len());
    for (alert, risk) in formatted.iter().zip(&risk_events) {
        let errors = errors(alert);
        assert!(errors.is_empty(), "{}:\n  {}\n{alert:#}", risk["detection"]["name"], errors.join("\n  "));
    }
    (formatted, risk_events)
}

/// What `errors` finds in the first of the samples' alerts in `format` once `edit` changed it.
fn errors_after(format: &str, errors: &dyn Fn(&Value) -> Vec<String>, edit: &dyn Fn(&mut Value)) -> String {
    let mut alert = parsed(&alerts(json!({ "alert_format": format }))).remove(0);
    edit(&mut alert);
    errors(&alert).join("; ")
}

// ---- OCSF -------------------------------------------------------------------------------------

/// The problems of `value` as an instance of OCSF type `fact` at `path`.
fn check_ocsf_value(facts: &Value, path: &str, value: &Value, fact: &Value, errors: &mut Vec<String>) {
    if fact["array"] == true {
        match value.as_array() {
            Some(items) => {
                let one = json!({"type": fact["type"], "object": fact["object"]});
                for (i, item) in items.iter().enumerate() {
                    check_ocsf_value(facts, &format!("{path}[{i}]"), item, &one, errors);
                }
            }
            None => errors.push(format!("{path}: must be an array")),
        }
        return;
    }
    let ok = match fact["type"].as_str().unwrap() {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "any" => true,
        "object" => {
            let name = fact["object"].as_str().unwrap();
            match value.as_object() {
                Some(members) if name == "object" => !members.is_empty() || { errors.push(format!("{path}: empty object")); true },
                Some(members) => {
                    check_ocsf_object(facts, path, members, name, errors);
                    true
                }
                None => false,
            }
        }
        other => panic!("a type the facts do not have: {other}"),
    };
    if !ok {
        errors.push(format!("{path}: {value} is not of OCSF type {}", fact["type"]));
    }
    if let (Some(allowed), Some(n)) = (fact["enum"].as_array(), value.as_i64()) {
        if !allowed.contains(&json!(n)) {
            errors.push(format!("{path}: {n} is not one of {allowed:?}"));
        }
    }
}

fn check_members(facts: &Value, path: &str, members: &Map<String, Value>, attributes: &Value, profiles: &[&str], errors: &mut Vec<String>) {
    let attributes = attributes.as_object().unwrap();
    for (name, fact) in attributes {
        let applies = fact["profile"].as_str().is_none_or(|p| profiles.contains(&p));
        if fact["requirement"] == "required" && applies && !members.contains_key(name) {
            errors.push(format!("{path}.{name}: required, missing"));
        }
    }
    for (name, value) in members {
        match attributes.get(name) {
            Some(fact) => check_ocsf_value(facts, &format!("{path}.{name}"), value, fact, errors),
            None => errors.push(format!("{path}.{name}: not an attribute of the schema")),
        }
    }
}

fn check_ocsf_object(facts: &Value, path: &str, members: &Map<String, Value>, name: &str, errors: &mut Vec<String>) {
    let Some(attributes) = facts["objects"].get(name) else {
        errors.push(format!("{path}: object `{name}` is not in the facts (add it to scripts/ocsf-facts.py's list)"));
        return;
    };
    check_members(facts, path, members, attributes, &[], errors);
    if name == "observable" {
        let type_id = members["type_id"].to_string();
        if facts["observable_type_ids"].get(&type_id).is_none() {
            errors.push(format!("{path}.type_id: {type_id} is not an observable type"));
        }
    }
}

fn ocsf_errors(facts: &Value, finding: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let members = finding.as_object().unwrap();
    let profiles: Vec<&str> = finding["metadata"]["profiles"].as_array().map(|p| p.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    check_members(facts, "", members, &facts["class"]["attributes"], &profiles, &mut errors);
    let class = &facts["class"];
    for (key, expected) in [("class_uid", &class["class_uid"]), ("category_uid", &class["category_uid"])] {
        if &finding[key] != expected {
            errors.push(format!("{key}: {} is not {expected}", finding[key]));
        }
    }
    let type_uid = class["class_uid"].as_i64().unwrap() * 100 + finding["activity_id"].as_i64().unwrap_or(-1);
    if finding["type_uid"] != type_uid {
        errors.push(format!("type_uid: {} is not class_uid * 100 + activity_id = {type_uid}", finding["type_uid"]));
    }
    if finding["metadata"]["version"] != facts["ocsf_version"] {
        errors.push(format!("metadata.version: {} is not the schema's {}", finding["metadata"]["version"], facts["ocsf_version"]));
    }
    errors
}

#[test]
fn ocsf_findings_follow_the_detection_finding_schema() {
    let facts = schema("ocsf-1.6.0-detection_finding.json");
    let (findings, splunk) = checked("ocsf", &|finding| ocsf_errors(&facts, finding));
    for (finding, risk) in findings.iter().zip(&splunk) {
        // The facts of the risk event are all there.
        let info = &finding["finding_info"];
        assert_eq!(info["analytic"]["uid"], risk["detection"]["id"]);
        assert_eq!(info["title"], risk["detection"]["name"]);
        // Sigma rules have no version.
        let version = &risk["detection"]["version"];
        assert_eq!(info["analytic"]["version"], if version.is_null() { Value::Null } else { Value::String(version.to_string()) });
        assert_eq!(finding["message"], risk["risk_message"]);
        assert_eq!(finding["risk_score"], risk["risk_score"]);
        assert_eq!(finding["unmapped"]["result"], risk["result"]);
        let seconds = |text: &Value| tripline::time::parse_event_time(text.as_str().unwrap()).unwrap();
        assert_eq!(finding["end_time"].as_i64().unwrap() / 1000, seconds(&risk["window"]["end"]));
        assert_eq!(finding["time"].as_i64().unwrap() / 1000, seconds(&event_time(risk)));
        let techniques = risk["annotations"]["mitre_attack"].as_array().unwrap();
        for attack in info["attacks"].as_array().into_iter().flatten() {
            let tactics: Vec<&Value> = attack["tactics"].as_array().map_or_else(|| attack.get("tactic").into_iter().collect(), |t| t.iter().collect());
            assert!(tactics.iter().all(|t| t["uid"].is_string()), "every tactic has its uid: {attack}");
        }
        for id in techniques {
            let id = id.as_str().unwrap();
            let placed = info["attacks"].as_array().unwrap().iter().any(|a| a["technique"]["uid"] == id || a["sub_technique"]["uid"] == id);
            assert!(placed, "{id} is in finding_info.attacks");
        }
        let values: Vec<&Value> = finding["observables"].as_array().map(|o| o.iter().map(|o| &o["value"]).collect()).unwrap_or_default();
        for object in ["risk_object", "threat_object"] {
            if let Some(value) = risk.get(object).filter(|v| !v.as_str().unwrap_or_default().is_empty()) {
                assert!(values.contains(&value), "the {object} {value} is an observable");
            }
        }
    }
    // The source record's identifiers land in their OCSF attributes somewhere in the samples.
    let seen = |pointer: &str| findings.iter().any(|f| f.pointer(pointer).is_some());
    for pointer in [
        "/cloud/account/uid",
        "/cloud/region",
        "/evidences/0/actor/user/name",
        "/evidences/0/src_endpoint/ip",
        "/evidences/0/api/operation",
        "/finding_info/related_events/0/uid",
        "/finding_info/first_seen_time",
    ] {
        assert!(seen(pointer), "no finding has {pointer}");
    }
    // Replaying gives the same findings, ids included.
    assert_eq!(parsed(&alerts(json!({"alert_format": "ocsf"}))), findings);
}

#[test]
fn the_ocsf_checks_catch_what_they_are_for() {
    let facts = schema("ocsf-1.6.0-detection_finding.json");
    let broken = |edit: &dyn Fn(&mut Value)| errors_after("ocsf", &|finding| ocsf_errors(&facts, finding), edit);
    assert_eq!(broken(&|_| ()), "");
    assert!(broken(&|f| {
        f.as_object_mut().unwrap().remove("finding_info");
    })
    .contains("finding_info: required, missing"));
    assert!(broken(&|f| f["time"] = json!("2026-01-01T00:00:00Z")).contains("time:"));
    assert!(broken(&|f| f["severity_id"] = json!(7)).contains("severity_id: 7 is not one of"));
    assert!(broken(&|f| f["finding_info"]["analytic"]["colour"] = json!("red")).contains("finding_info.analytic.colour: not an attribute"));
    assert!(broken(&|f| f["type_uid"] = json!(200402)).contains("type_uid"));
    assert!(broken(&|f| {
        f["cloud"].as_object_mut().unwrap().remove("provider");
    })
    .contains("cloud.provider: required, missing"));
    assert!(broken(&|f| f["observables"] = json!([{"name": "x", "type_id": 18}])).contains("not an observable type"));
}

// ---- ECS --------------------------------------------------------------------------------------

/// Leaf fields of an ECS document by their dotted names (arrays are leaves).
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value.as_object() {
        Some(members) => {
            for (key, member) in members {
                let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&name, member, out);
            }
        }
        None => out.push((prefix.to_string(), value.clone())),
    }
}

fn ecs_errors(facts: &Value, document: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let fields = facts["fields"].as_object().unwrap();
    if fields.keys().any(|name| name.split('.').next() == Some("tripline")) {
        errors.push("ECS has a field set named tripline: the custom fields would collide".into());
    }
    let mut leaves = Vec::new();
    flatten("", document, &mut leaves);
    for (name, value) in leaves {
        if name.starts_with("tripline.") {
            continue; // custom fields, namespaced as ECS asks
        }
        let Some(fact) = fields.get(&name) else {
            errors.push(format!("{name}: not an ECS field"));
            continue;
        };
        let values = match (&value, fact["array"] == true) {
            (Value::Array(items), true) => items.clone(),
            (Value::Array(_), false) => {
                errors.push(format!("{name}: ECS does not normalize it to an array"));
                continue;
            }
            (_, true) => {
                errors.push(format!("{name}: ECS expects an array"));
                continue;
            }
            (one, false) => vec![one.clone()],
        };
        for v in values {
            let ok = match fact["type"].as_str().unwrap() {
                "keyword" | "wildcard" | "match_only_text" | "constant_keyword" => v.is_string(),
                "long" => v.is_i64() || v.is_u64(),
                "float" | "scaled_float" | "double" => v.is_number(),
                "boolean" => v.is_boolean(),
                "date" => v.as_str().and_then(tripline::time::parse_event_time).is_some(),
                "ip" => v.as_str().is_some_and(|s| s.parse::<IpAddr>().is_ok()),
                other => panic!("{name}: a type this test does not know: {other}"),
            };
            if !ok {
                errors.push(format!("{name}: {v} is not of ECS type {}", fact["type"]));
            }
            if let Some(allowed) = fact["allowed_values"].as_array() {
                if !allowed.contains(&v) {
                    errors.push(format!("{name}: {v} is not an allowed value"));
                }
            }
        }
    }
    errors
}

#[test]
fn ecs_alerts_follow_the_ecs_field_reference() {
    let facts = schema("ecs-9.4.0-fields.json");
    let (documents, splunk) = checked("ecs", &|document| ecs_errors(&facts, document));
    for (document, risk) in documents.iter().zip(&splunk) {
        assert_eq!(document["event"]["kind"], "alert");
        assert_eq!(document["ecs"]["version"], facts["ecs_version"]);
        assert_eq!(document["rule"]["id"], risk["detection"]["id"]);
        assert_eq!(document["rule"]["name"], risk["detection"]["name"]);
        assert_eq!(document["event"]["risk_score"].as_f64(), risk["risk_score"].as_f64());
        assert_eq!(document["message"], risk["risk_message"]);
        assert_eq!(document["@timestamp"], event_time(risk));
        assert_eq!(document["tripline"]["result"], risk["result"]);
        let threat = &document["threat"];
        // Every tactic named has its id, ESCU's ("Defense Evasion") and Sigma's ("stealth") alike:
        // the id, name and reference arrays line up.
        let tactic_ids = threat["tactic"]["id"].as_array().map_or(0, Vec::len);
        assert_eq!(tactic_ids, threat["tactic"]["name"].as_array().map_or(0, Vec::len), "{}", threat["tactic"]);
        for id in risk["annotations"]["mitre_attack"].as_array().unwrap() {
            let placed = [&threat["technique"]["id"], &threat["technique"]["subtechnique"]["id"]]
                .iter()
                .any(|ids| ids.as_array().is_some_and(|ids| ids.contains(id)));
            assert!(placed, "{id} is in threat.technique");
        }
    }
    let seen = |pointer: &str| documents.iter().any(|d| d.pointer(pointer).is_some());
    for pointer in ["/cloud/account/id", "/cloud/region", "/user/name", "/source/ip", "/event/action", "/user_agent/original", "/threat/tactic/id/0"] {
        assert!(seen(pointer), "no document has {pointer}");
    }
}

#[test]
fn the_ecs_checks_catch_what_they_are_for() {
    let facts = schema("ecs-9.4.0-fields.json");
    let broken = |edit: &dyn Fn(&mut Value)| errors_after("ecs", &|document| ecs_errors(&facts, document), edit);
    assert_eq!(broken(&|_| ()), "");
    assert!(broken(&|d| d["event"]["kind"] = json!("finding")).contains("event.kind: \"finding\" is not an allowed value"));
    assert!(broken(&|d| d["event"]["risk_score"] = json!("64")).contains("event.risk_score"));
    assert!(broken(&|d| d["rule"]["colour"] = json!("red")).contains("rule.colour: not an ECS field"));
    assert!(broken(&|d| d["source"] = json!({"ip": "s3.amazonaws.com"})).contains("source.ip"));
    assert!(broken(&|d| d["threat"]["tactic"]["id"] = json!("TA0010")).contains("ECS expects an array"));
}
