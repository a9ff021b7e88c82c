//! `dist/tripline-extism.wasm` in the Extism Rust SDK: configuration through the manifest's
//! `config`, state in plugin memory across calls, alerts framed into `process`'s one output.

use std::sync::OnceLock;

use serde_json::{json, Value};
use tripline_generate::{generate, Options, Summary};
use tripline_host_test::artifacts::{dist, shared_data};
use tripline_host_test::extism_host::{unframe, ExtismEngine, ALERT_PREFIX};

const SPIKES: &str = "abnormally_high_cloud_security_group_api_calls";
/// 2023-04-25T00:10:00Z: the end of the JobCreated record's hour plus the default 10-minute lateness.
const JOB_CREATED_CLOSES: i64 = 1_682_381_400;

/// The plugin as built and its `wasm-opt -Oz` copy (scripts/report-sizes.sh): a host may load
/// either, so the tests that cover every export run on both.
const ARTIFACTS: [&str; 2] = ["tripline-extism.wasm", "tripline-extism.opt.wasm"];

fn plugin(config: Option<&str>, model: Option<&str>) -> ExtismEngine {
    plugin_from(ARTIFACTS[0], config, model)
}

fn plugin_from(artifact: &str, config: Option<&str>, model: Option<&str>) -> ExtismEngine {
    ExtismEngine::load(&dist(artifact), config, model).unwrap_or_else(|e| panic!("{artifact} loads: {e:#}"))
}

fn read(path: std::path::PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn alerts(ndjson: &[u8]) -> Vec<Value> {
    lines(ndjson).into_iter().map(|l| serde_json::from_slice(l).expect("alert is JSON")).collect()
}

/// The generated example data (four weeks, anomalies planted in the last) and what was planted.
fn generated() -> &'static (Vec<u8>, Summary) {
    static DATA: OnceLock<(Vec<u8>, Summary)> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut data = Vec::new();
        let summary = generate(&Options::default(), &mut data).expect("generate");
        (data, summary)
    })
}

/// Every planted anomaly is alerted once, and the seeds alert nothing else. The rest of the
/// default pack fires on the generator's ordinary traffic too (security-group changes, new
/// provisioning sources): `tests/rules.rs` pins those rules.
fn assert_planted_alerts(alerts: &[Value]) {
    let planted = &generated().1.planted;
    let seeds = ["AWS Exfiltration via Batch Service", "Abnormally High Number Of Cloud Security Group API Calls"];
    let alerts: Vec<&Value> = alerts.iter().filter(|a| seeds.iter().any(|s| a["detection"]["name"] == *s)).collect();
    assert_eq!(alerts.len(), planted.len(), "alerts: {alerts:#?}");
    for p in planted {
        let hit = alerts.iter().any(|a| {
            let r = &a["result"];
            match p.kind {
                "batch_job_created" => {
                    a["window"]["start"] == p.hour_start.as_str()
                        && r["aws_account_id"] == p.actor.as_str()
                        && r["count"] == p.count
                }
                _ => {
                    r["_time"] == p.hour_start.as_str()
                        && r["user"] == p.actor.as_str()
                        && r["security_group_api_calls"] == p.count
                }
            }
        });
        assert!(hit, "no alert for planted {p:?}; alerts: {alerts:#?}");
    }
}

#[test]
fn job_created_is_tagged_at_once_and_alerted_when_its_hour_closes() {
    for artifact in ARTIFACTS {
        println!("{artifact}"); // names the artifact in a failing test's output
        let record = read(shared_data("splunk_security_content_jobcreated_example.json"));
        let record = record.trim_ascii();
        let mut engine = plugin_from(artifact, None, None);

        let framed = engine.process_framed(record).unwrap();
        let out = unframe(&framed);
        assert!(out.alerts.is_empty(), "the window is still open");
        let tagged = lines(&out.records);
        assert_eq!(tagged.len(), 1);
        // The record keeps its bytes and gains one last member.
        assert!(tagged[0].starts_with(&record[..record.len() - 1]));
        let tagged: Value = serde_json::from_slice(tagged[0]).unwrap();
        let tag = &tagged["tripline"];
        assert_eq!(tag["route"], "match");
        assert_eq!(tag["matches"][0]["detection"]["name"], "AWS Exfiltration via Batch Service");
        assert_eq!(
            tag["matches"][0]["risk_message"],
            "AWS Batch Job is created on account id - 111111111111 from src_ip s3.amazonaws.com"
        );

        // Wall-clock flush: nothing a second early, the alert exactly at the close.
        assert!(engine.flush(JOB_CREATED_CLOSES - 1).unwrap().alerts.is_empty());
        let framed = engine.call_raw("flush", JOB_CREATED_CLOSES.to_string().as_bytes()).unwrap();
        assert!(framed.starts_with(ALERT_PREFIX), "flush returns framed alerts");
        let alerts = alerts(&unframe(&framed).alerts);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        let alert = &alerts[0];
        assert_eq!(alert["risk_score"], 64);
        assert_eq!(alert["detection"]["id"], "04455dd3-ced7-480f-b8e6-5469b99e98e2");
        assert_eq!(alert["risk_object"], "111111111111");
        assert_eq!(alert["threat_object"], "s3.amazonaws.com");
        assert_eq!(
            alert["result"],
            json!({
                "src_ip": "s3.amazonaws.com",
                "aws_account_id": "111111111111",
                "eventName": "JobCreated",
                "errorCode": "success",
                "userAgent": "s3.amazonaws.com",
                "count": 1,
                // The record's own eventTime, 2023-04-24T23:51:17Z, in security_content_ctime's format.
                "firstTime": "2023-04-24T23:51:17",
                "lastTime": "2023-04-24T23:51:17",
                "job_arn": tagged["serviceEventDetails"]["jobArn"],
                "status": "New",
            })
        );
        assert!(engine.flush(JOB_CREATED_CLOSES + 86_400).unwrap().alerts.is_empty(), "alerts are handed out once");

        let stats = engine.stats().unwrap();
        assert_eq!(stats["counters"]["records"], 1);
        assert_eq!(stats["counters"]["matched"], 1);
        assert_eq!(stats["counters"]["alerts"], 1);
        assert_eq!(stats["config_error"], Value::Null);
    }
}

#[test]
fn third_party_records_pass_byte_identical_unless_selected() {
    let mut input = Vec::new();
    for file in [
        "security_content_data_sources_cloudtrail_examples.jsonl",
        "awsdocs_s3_batch_operations_cloudtrail_examples.jsonl",
    ] {
        input.extend_from_slice(&read(shared_data(file)));
    }
    for line in lines(&read(shared_data("panther_analysis_cloudtrail_test_events.jsonl"))) {
        let wrapper: Value = serde_json::from_slice(line).unwrap();
        input.extend_from_slice(wrapper["log"].to_string().as_bytes());
        input.push(b'\n');
    }
    let records = lines(&input);
    let mut engine = plugin(Some("{}"), None);
    let out = engine.process(&input).unwrap();
    let returned = lines(&out.records);
    assert_eq!(returned.len(), records.len());

    // Which records the rules tag is the core's business (the native engine says); the host's is
    // to return every other record byte for byte and a tagged one with only the field added.
    let mut native = tripline::Engine::from_json(b"{}");
    let mut job_created_tagged = 0;
    for (sent, got) in records.iter().zip(&returned) {
        if native.process(sent, None).matches.is_empty() {
            assert_eq!(String::from_utf8_lossy(got), String::from_utf8_lossy(sent));
            continue;
        }
        assert!(got.starts_with(&sent[..sent.len() - 1]));
        let tagged: Value = serde_json::from_slice(got).unwrap();
        assert!(tagged["tripline"]["matches"].is_array());
        job_created_tagged += usize::from(tagged["eventName"] == "JobCreated");
    }
    assert_eq!(job_created_tagged, 2, "the two real JobCreated records");

    let counters = engine.stats().unwrap()["counters"].clone();
    assert_eq!(counters["records"], records.len());
    assert_eq!(counters["parse_errors"], 0);

    // The same records as one CloudTrail S3 export give the same output.
    let export = format!(
        "{{\"Records\":[{}]}}",
        records.iter().map(|r| String::from_utf8_lossy(r)).collect::<Vec<_>>().join(",")
    );
    let out_export = plugin(None, None).process(export.as_bytes()).unwrap();
    assert_eq!(out_export.records, out.records);
    assert_eq!(out_export.alerts, out.alerts);
}

#[test]
fn invalid_config_passes_records_through_and_says_why() {
    let record = read(shared_data("splunk_security_content_jobcreated_example.json"));
    for (config, path) in
        [(r#"{"window":{"length_seconds":7}}"#, "window.length_seconds"), ("not json", "not valid JSON")]
    {
        let mut engine = plugin(Some(config), None);
        let out = engine.process(&record).unwrap();
        assert_eq!(out.records, [record.trim_ascii(), b"\n"].concat());
        assert!(engine.flush(JOB_CREATED_CLOSES + 86_400).unwrap().alerts.is_empty());
        let stats = engine.stats().unwrap();
        let error = stats["config_error"].as_str().expect("config_error is set");
        assert!(error.contains(path), "{error}");
        assert_eq!(stats["counters"]["records"], 1);
        assert_eq!(stats["counters"]["config_errors"], 1);
    }
}

#[test]
fn snapshot_restore_mid_stream_gives_the_same_alerts() {
    for artifact in ARTIFACTS {
        println!("{artifact}"); // names the artifact in a failing test's output
        let data = &generated().0;
        // Split right after the first JobCreated of the planted three-job hour: its group is open.
        let first_job = find(data, b"\"eventName\":\"JobCreated\"").expect("a JobCreated record");
        let split = first_job + data[first_job..].iter().position(|&b| b == b'\n').unwrap() + 1;
        let end = 2_000_000_000;

        let mut whole = plugin_from(artifact, None, None);
        let uninterrupted = whole.process(data).unwrap();
        let uninterrupted_alerts = [uninterrupted.alerts, whole.flush(end).unwrap().alerts].concat();
        assert_planted_alerts(&alerts(&uninterrupted_alerts));

        let mut first = plugin_from(artifact, None, None);
        let part1 = first.process(&data[..split]).unwrap();
        let snapshot = first.snapshot().unwrap();
        drop(first);
        let mut second = plugin_from(artifact, None, None);
        assert_eq!(second.restore(&snapshot).unwrap(), Ok(()));
        let part2 = second.process(&data[split..]).unwrap();
        let resumed_alerts = [part1.alerts, part2.alerts, second.flush(end).unwrap().alerts].concat();

        assert_eq!(String::from_utf8_lossy(&resumed_alerts), String::from_utf8_lossy(&uninterrupted_alerts));
        assert_eq!([part1.records, part2.records].concat(), uninterrupted.records);
        let counters = second.stats().unwrap()["counters"].clone();
        assert_eq!(counters["records"], lines(data).len());
        assert_eq!(counters["restores"], 1);
        assert_eq!(counters["snapshot_saves"], 1, "the snapshot counts itself");
    }
}

#[test]
fn a_bad_snapshot_is_refused_and_the_state_kept() {
    let mut engine = plugin(None, None);
    engine.process(&read(shared_data("splunk_security_content_jobcreated_example.json"))).unwrap();
    let answer = engine.call_raw("restore", b"not a snapshot").unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["ok"], false);
    assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(engine.flush(JOB_CREATED_CLOSES).unwrap().alerts.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(engine.stats().unwrap()["counters"]["restore_failures"], 1);
}

#[test]
fn a_model_fitted_on_history_judges_the_last_week() {
    for artifact in ARTIFACTS {
        println!("{artifact}"); // names the artifact in a failing test's output
        let data = &generated().0;
        // Records are in eventTime order (up to 5 minutes of delivery jitter): split at the first of
        // the last week, 2026-10-26.
        let last_week = find(data, b"\"eventTime\":\"2026-10-26").expect("records on 2026-10-26");
        let week4 = data[..last_week].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);

        let learn = format!(r#"{{"detections":{{"{SPIKES}":{{"mode":"learn"}}}}}}"#);
        let mut learner = plugin_from(artifact, Some(&learn), None);
        learner.process(&data[..week4]).unwrap();
        learner.flush(1_792_972_800 + 600).unwrap(); // 2026-10-26T00:10:00Z closes the last history hour
        let model = learner.model(SPIKES).unwrap();
        assert_eq!(model["format"], "tripline-baseline");
        assert!(model["groups"].as_array().is_some_and(|g| !g.is_empty()));
        assert_eq!(learner.model("no_such_detection").unwrap(), Value::Null);

        let judge = format!(r#"{{"detections":{{"{SPIKES}":{{"mode":"judge"}}}}}}"#);
        let mut judge_engine = plugin_from(artifact, Some(&judge), Some(&model.to_string()));
        let out = judge_engine.process(&data[week4..]).unwrap();
        let all = [out.alerts, judge_engine.flush(2_000_000_000).unwrap().alerts].concat();
        assert_planted_alerts(&alerts(&all));
        assert_eq!(judge_engine.stats().unwrap()["counters"]["model_errors"], 0);

        // The same model through the `load_model` export; a bad one is refused and counted.
        let mut late = plugin_from(artifact, Some(&judge), None);
        assert_eq!(late.load_model(model.to_string().as_bytes()).unwrap(), Ok(()));
        assert!(late.load_model(b"{}").unwrap().is_err());
        let mut bad = plugin_from(artifact, Some(&judge), Some("{\"detection\":\"nope\"}"));
        assert_eq!(bad.stats().unwrap()["counters"]["model_errors"], 1);
    }
}

#[test]
fn a_blank_config_means_the_defaults() {
    let mut engine = plugin(Some(" "), None);
    engine.process(&read(shared_data("splunk_security_content_jobcreated_example.json"))).unwrap();
    assert_eq!(lines(&engine.flush(JOB_CREATED_CLOSES).unwrap().alerts).len(), 1);
    assert_eq!(engine.stats().unwrap()["config_error"], Value::Null);
}

#[test]
fn flush_wants_unix_seconds() {
    let mut engine = plugin(None, None);
    let error = engine.call_raw("flush", b"yesterday").unwrap_err();
    assert!(format!("{error:#}").contains("Unix seconds"), "{error:#}");
    assert!(engine.flush(1_700_000_000).unwrap().records.is_empty(), "the plugin still answers");
}

#[test]
fn the_manifests_configuration_chooses_the_alert_format() {
    let record = read(shared_data("splunk_security_content_jobcreated_example.json"));
    let alert_in = |format: &str| {
        let config = json!({"output": {"alert_format": format}}).to_string();
        let mut engine = plugin(Some(&config), None);
        engine.process(record.trim_ascii()).unwrap();
        let alerts = alerts(&engine.flush(JOB_CREATED_CLOSES).unwrap().alerts);
        assert_eq!(alerts.len(), 1, "{format}: {alerts:#?}");
        alerts[0].clone()
    };
    let finding = alert_in("ocsf");
    assert_eq!((&finding["class_uid"], &finding["type_uid"]), (&json!(2004), &json!(200401)));
    assert_eq!(finding["finding_info"]["analytic"]["uid"], "04455dd3-ced7-480f-b8e6-5469b99e98e2");
    assert_eq!(finding["cloud"]["account"]["uid"], "111111111111");
    let document = alert_in("ecs");
    assert_eq!((&document["event"]["kind"], &document["rule"]["id"]), (&json!("alert"), &json!("04455dd3-ced7-480f-b8e6-5469b99e98e2")));
    assert_eq!(alert_in("splunk")["risk_object"], "111111111111");
    let mut refused = plugin(Some(r#"{"output":{"alert_format":"leef"}}"#), None);
    let error = refused.stats().unwrap()["config_error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("`output.alert_format`: unknown variant `leef`, expected one of `splunk`, `ocsf`, `ecs`"), "{error}");
}
