//! `dist/tripline-component.wasm` in wasmtime's component API: an `engine` resource per
//! configuration, records and alerts as two `list<u8>`s, errors as WIT `result`s. Where the
//! answer is long, the component is held to the core library run natively on the same input.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tripline::batch::BatchEngine;
use tripline_generate::{generate, Options};
use tripline_host_test::artifacts::{dist, project_root, shared_data};
use tripline_host_test::component_host::{ComponentEngine, ComponentHost};

fn host() -> &'static ComponentHost {
    static HOST: OnceLock<ComponentHost> = OnceLock::new();
    HOST.get_or_init(|| ComponentHost::load(&dist("tripline-component.wasm")).expect("component loads"))
}

fn instance(config: &str) -> ComponentEngine {
    host().instantiate(config).expect("instantiate")
}

fn example_data() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut data = Vec::new();
        generate(&Options::default(), &mut data).expect("generate");
        data
    })
}

fn shared(name: &str) -> Vec<u8> {
    std::fs::read(shared_data(name)).expect("shared data")
}

fn json_lines(ndjson: &[u8]) -> Vec<Value> {
    ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

fn wall_clock() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn an_s3_export_with_job_created_alerts_once_its_hour_closes_by_wall_clock() {
    let record = shared("splunk_security_content_jobcreated_example.json");
    let record = record.trim_ascii();
    let expected: Value = serde_json::from_slice(record).unwrap();
    let export = [b"{\"Records\": [".as_slice(), record, b"]}"].concat();
    let mut engine = instance("{}");
    assert_eq!(engine.config_error().unwrap(), None);

    let out = engine.process(&export).unwrap();
    assert!(out.alerts.is_empty());
    let tagged = json_lines(&out.records);
    assert_eq!(tagged.len(), 1);
    assert!(out.records.starts_with(&record[..record.len() - 1]), "the record's own bytes come back first");
    let matches = &tagged[0]["tripline"]["matches"];
    assert_eq!(matches[0]["detection"]["id"], "04455dd3-ced7-480f-b8e6-5469b99e98e2");
    assert_eq!(matches[0]["risk_score"], 64);

    let flushed = engine.flush(wall_clock()).unwrap();
    assert!(flushed.records.is_empty());
    let alerts = json_lines(&flushed.alerts);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let (alert, row) = (&alerts[0], &alerts[0]["result"]);
    assert_eq!(alert["risk_score"], 64);
    assert_eq!(alert["detection"]["name"], "AWS Exfiltration via Batch Service");
    assert_eq!(alert["window"]["start"], "2023-04-24T23:00:00Z");
    let columns: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        columns,
        [
            "src_ip",
            "aws_account_id",
            "eventName",
            "errorCode",
            "userAgent",
            "count",
            "firstTime",
            "lastTime",
            "job_arn",
            "status"
        ]
    );
    for (column, value) in [
        ("src_ip", "s3.amazonaws.com"),
        ("aws_account_id", "111111111111"),
        ("eventName", "JobCreated"),
        ("errorCode", "success"),
        ("userAgent", "s3.amazonaws.com"),
        ("firstTime", "2023-04-24T23:51:17"),
        ("lastTime", "2023-04-24T23:51:17"),
        ("status", "New"),
    ] {
        assert_eq!(row[column], value, "{column}");
    }
    assert_eq!(row["count"], 1);
    assert_eq!(row["job_arn"], expected["serviceEventDetails"]["jobArn"]);

    let counters = &engine.stats().unwrap()["counters"];
    assert_eq!(
        (counters["records"].as_u64(), counters["matched"].as_u64(), counters["alerts"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
}

#[test]
fn records_no_detection_selects_come_back_byte_identical() {
    let mut input = shared("security_content_data_sources_cloudtrail_examples.jsonl");
    input.extend_from_slice(&shared("splunk_security_content_putbucketreplication_example.json"));
    let sent: Vec<&[u8]> = input.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).collect();
    let mut engine = instance(""); // blank: the defaults
    assert_eq!(engine.config_error().unwrap(), None);
    let out = engine.process(&input).unwrap();
    let got: Vec<&[u8]> = out.records.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(got.len(), sent.len());
    // The native engine says which records the rules tag; every other one comes back as sent.
    let mut native = tripline::Engine::from_json(b"{}");
    let tagged: Vec<bool> = sent.iter().map(|r| !native.process(r, None).matches.is_empty()).collect();
    for ((s, g), tagged) in sent.iter().zip(&got).zip(&tagged) {
        if *tagged {
            assert!(g.starts_with(&s[..s.len() - 1]) && serde_json::from_slice::<Value>(g).unwrap()["tripline"].is_object());
        } else {
            assert_eq!(s, g);
        }
    }
    let job_created = sent.iter().zip(&tagged).filter(|(s, t)| **t && s.windows(12).any(|w| w == b"\"JobCreated\"")).count();
    assert_eq!(job_created, 1, "the JobCreated record is tagged");
    assert_eq!(engine.stats().unwrap()["counters"]["records"], sent.len());
}

#[test]
fn an_invalid_configuration_is_reported_and_records_pass_through() {
    let mut engine = instance(r#"{"detections":{"no_such_detection":{}}}"#);
    let error = engine.config_error().unwrap().expect("config error");
    assert!(error.contains("detections.no_such_detection"), "{error}");
    let record = shared("splunk_security_content_jobcreated_example.json");
    let out = engine.process(&record).unwrap();
    assert_eq!(out.records.trim_ascii(), record.trim_ascii());
    assert!(out.alerts.is_empty() && engine.flush(wall_clock()).unwrap().alerts.is_empty());
    let stats = engine.stats().unwrap();
    assert_eq!(stats["config_error"], error.as_str());
    assert_eq!(stats["counters"]["records"], 1);
}

#[test]
fn state_carried_through_snapshots_across_instances_matches_the_native_core() {
    let data = example_data();
    // Four pieces cut at line ends; after each, the state moves to a brand-new instance.
    let cuts: Vec<usize> = (1..4)
        .map(|i| {
            let at = data.len() * i / 4;
            at + data[at..].iter().position(|&b| b == b'\n').unwrap() + 1
        })
        .collect();
    let bounds: Vec<usize> = [0].into_iter().chain(cuts).chain([data.len()]).collect();

    let mut native = BatchEngine::from_config(b"{}");
    let mut expected = native.process(data, None);
    expected.alerts.extend(native.flush(wall_clock()).alerts);
    // The four planted anomalies and what the rest of the default pack finds.
    assert!(json_lines(&expected.alerts).len() >= 4, "the generator plants four anomalies");

    let (mut records, mut alerts) = (Vec::new(), Vec::new());
    let mut snapshot: Option<Vec<u8>> = None;
    for piece in bounds.windows(2) {
        let mut engine = instance("{}");
        if let Some(snapshot) = &snapshot {
            engine.restore(snapshot).unwrap().expect("restore");
        }
        let out = engine.process(&data[piece[0]..piece[1]]).unwrap();
        records.extend(out.records);
        alerts.extend(out.alerts);
        snapshot = Some(engine.snapshot().unwrap());
    }
    let mut last = instance("{}");
    last.restore(&snapshot.unwrap()).unwrap().expect("restore");
    alerts.extend(last.flush(wall_clock()).unwrap().alerts);

    assert_eq!(json_lines(&alerts), json_lines(&expected.alerts));
    assert!(records == expected.records, "tagged records differ from the native core's");
    let counters = &last.stats().unwrap()["counters"];
    assert_eq!(counters["records"], native.engine.counters().records);
    assert_eq!(counters["restores"], 4);
    assert_eq!(counters["snapshot_saves"], 4, "each snapshot counts itself");

    let refused = last.restore(b"TRIPLINE-SNAPSHOT 1 0.1.0 5 0\n{}").unwrap();
    assert!(refused.is_err_and(|e| e.contains("snapshot")));
}

#[test]
fn models_move_between_engines_and_bad_ones_are_refused() {
    const KEY: &str = "abnormally_high_cloud_security_group_api_calls";
    let data = example_data();
    let mut learner = instance(&format!(r#"{{"detections":{{"{KEY}":{{"mode":"learn"}}}}}}"#));
    learner.process(data).unwrap();
    learner.flush(wall_clock()).unwrap();
    let model = learner.model(KEY).unwrap();
    assert_eq!(model["detection"], KEY);
    assert!(!model["groups"].as_array().unwrap().is_empty());

    let mut judge = instance(&format!(r#"{{"detections":{{"{KEY}":{{"mode":"judge"}}}}}}"#));
    assert_eq!(judge.load_model(model.to_string().as_bytes()).unwrap(), Ok(()));
    assert_eq!(judge.model(KEY).unwrap()["groups"], model["groups"]);
    let refused = judge.load_model(br#"{"detection":"no_such_detection"}"#).unwrap();
    assert!(refused.is_err_and(|e| e.contains("no_such_detection")));
    assert!(judge.load_model(b"not json").unwrap().is_err());
    assert_eq!(judge.stats().unwrap()["counters"]["model_errors"], 2);

    let disabled = instance(&format!(r#"{{"detections":{{"{KEY}":{{"enabled":false}}}}}}"#)).model(KEY).unwrap();
    assert_eq!(disabled, Value::Null);
}

/// The schemas' facts that tests/alert_formats.rs checks every native alert against (generated
/// from ocsf/ocsf-schema 1.6.0 and elastic/ecs 9.4.0).
fn schema_facts(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(project_root().join("tests/schemas").join(name)).expect("schema facts")).unwrap()
}

/// The attributes the OCSF facts require of an object (under `profiles`) that `object` lacks.
fn missing_required<'a>(object: &Value, attributes: &'a Value, profiles: &[Value]) -> Vec<&'a str> {
    let applies = |fact: &Value| fact["profile"].is_null() || profiles.contains(&fact["profile"]);
    let attributes = attributes.as_object().unwrap();
    attributes.iter().filter(|(name, fact)| fact["requirement"] == "required" && applies(fact) && object.get(name).is_none()).map(|(name, _)| name.as_str()).collect()
}

/// `output.alert_format` in the constructor's document: the example data's alerts as OCSF
/// Detection Findings and ECS alerts are the Splunk risk events' alerts, in the same order, with
/// each format's required and defining fields, and what the core writes natively.
#[test]
fn ocsf_and_ecs_alerts_through_the_component_are_the_splunk_alerts() {
    let now = wall_clock();
    let alerts_in = |config: Value| -> Vec<Value> {
        let config = config.to_string();
        let mut engine = instance(&config);
        assert_eq!(engine.config_error().unwrap(), None);
        let mut alerts = engine.process(example_data()).unwrap().alerts;
        alerts.extend(engine.flush(now).unwrap().alerts);
        let mut native = BatchEngine::from_config(config.as_bytes());
        let mut expected = native.process(example_data(), None).alerts;
        expected.extend(native.flush(now).alerts);
        assert!(alerts == expected, "{config}: the component's alerts differ from the native core's");
        json_lines(&alerts)
    };
    let format = |name: &str| alerts_in(json!({"output": {"alert_format": name}}));
    let splunk = alerts_in(json!({}));
    assert_eq!(format("splunk"), splunk, "splunk is the default");
    let (ocsf, ecs) = (format("ocsf"), format("ecs"));
    assert!(splunk.len() >= 4, "the generator plants four anomalies");
    assert_eq!((ocsf.len(), ecs.len()), (splunk.len(), splunk.len()));

    let (ocsf_facts, ecs_facts) = (schema_facts("ocsf-1.6.0-detection_finding.json"), schema_facts("ecs-9.4.0-fields.json"));
    let class = &ocsf_facts["class"];
    for ((risk, finding), document) in splunk.iter().zip(&ocsf).zip(&ecs) {
        let detection = &risk["detection"];
        let profiles = finding["metadata"]["profiles"].as_array().unwrap();
        assert_eq!(missing_required(finding, &class["attributes"], profiles), Vec::<&str>::new(), "{finding}");
        for object in ["finding_info", "metadata", "cloud"] {
            assert_eq!(missing_required(&finding[object], &ocsf_facts["objects"][object], profiles), Vec::<&str>::new(), "{object}: {finding}");
        }
        assert_eq!((&finding["class_uid"], &finding["category_uid"]), (&json!(2004), &json!(2)));
        assert_eq!((&finding["class_uid"], &finding["category_uid"]), (&class["class_uid"], &class["category_uid"]));
        assert_eq!(finding["type_uid"], 2004 * 100 + finding["activity_id"].as_u64().unwrap());
        assert_eq!(finding["metadata"]["version"], ocsf_facts["ocsf_version"]);
        let uid = finding["finding_info"]["uid"].as_str().unwrap();
        assert!(uid.strip_prefix(detection["id"].as_str().unwrap()).is_some_and(|hash| hash.len() == 17), "{uid}");
        assert_eq!(finding["finding_info"]["title"], detection["name"]);
        assert_eq!(finding["finding_info"]["analytic"]["uid"], detection["id"]);
        assert_eq!((&finding["message"], &finding["risk_score"]), (&risk["risk_message"], &risk["risk_score"]));
        assert_eq!(finding["unmapped"]["result"], risk["result"]);

        assert_eq!(document["event"]["kind"], "alert");
        assert!(ecs_facts["fields"]["event.kind"]["allowed_values"].as_array().unwrap().contains(&document["event"]["kind"]));
        assert_eq!(document["ecs"]["version"], ecs_facts["ecs_version"]);
        assert_eq!(document["event"]["id"], uid, "one id for the alert in both formats");
        for field in document["rule"].as_object().unwrap().keys() {
            assert!(ecs_facts["fields"].get(format!("rule.{field}")).is_some(), "rule.{field} is an ECS field");
        }
        assert_eq!((&document["rule"]["id"], &document["rule"]["name"]), (&detection["id"], &detection["name"]));
        assert_eq!(document["event"]["risk_score"].as_f64(), risk["risk_score"].as_f64());
        assert_eq!((&document["message"], &document["event"]["start"]), (&risk["risk_message"], &risk["window"]["start"]));
        assert_eq!(document["tripline"]["result"], risk["result"]);
        // ATT&CK: every technique of the risk event, as OCSF attacks and ECS threat.technique.
        for id in risk["annotations"]["mitre_attack"].as_array().unwrap() {
            let attacks = finding["finding_info"]["attacks"].as_array().unwrap();
            assert!(attacks.iter().any(|a| a["technique"]["uid"] == *id || a["sub_technique"]["uid"] == *id), "{id} in {finding}");
            let threat = &document["threat"]["technique"];
            assert!([&threat["id"], &threat["subtechnique"]["id"]].iter().any(|ids| ids.as_array().is_some_and(|ids| ids.contains(id))), "{id} in {document}");
        }
    }

    // One id per alert: a SIEM that deduplicates by it must not merge two detections.
    let uids: std::collections::BTreeSet<&str> = ocsf.iter().map(|f| f["finding_info"]["uid"].as_str().unwrap()).collect();
    assert_eq!(uids.len(), ocsf.len(), "every finding has its own uid");

    // The planted alerts, by each format's own fields: the batch jobs' accounts, the spikes' users.
    let planted: Vec<Value> = serde_json::from_slice(&std::fs::read(project_root().join("examples/data/generated/planted.json")).expect("planted.json")).unwrap();
    let actors = |kind: &str| -> Vec<&str> {
        let mut actors: Vec<&str> = planted.iter().filter(|p| p["kind"] == kind).map(|p| p["actor"].as_str().unwrap()).collect();
        actors.sort();
        actors
    };
    let facts = |alerts: &[Value], name: &str, detection: &str, fact: &str| -> Vec<String> {
        let mut facts: Vec<String> = alerts.iter().filter(|a| a.pointer(name) == Some(&json!(detection))).map(|a| a.pointer(fact).unwrap().as_str().unwrap().to_string()).collect();
        facts.sort();
        facts
    };
    let (batch, spike) = ("AWS Exfiltration via Batch Service", "Abnormally High Number Of Cloud Security Group API Calls");
    assert_eq!(facts(&ocsf, "/finding_info/title", batch, "/cloud/account/uid"), actors("batch_job_created"));
    assert_eq!(facts(&ecs, "/rule/name", batch, "/cloud/account/id"), actors("batch_job_created"));
    assert_eq!(facts(&ocsf, "/finding_info/title", spike, "/evidences/0/actor/user/name"), actors("security_group_spike"));
    assert_eq!(facts(&ecs, "/rule/name", spike, "/user/name"), actors("security_group_spike"));
}
