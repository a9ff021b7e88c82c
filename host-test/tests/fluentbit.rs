//! The Fluent Bit module (`dist/tripline-fluentbit.wasm`, `make fluentbit`) through the harness
//! that reproduces Fluent Bit 5.1's `filter_wasm` (host-test/src/fluentbit.rs), fed with
//! third-party CloudTrail records from `../shared/data`. The last section checks the harness
//! itself on tiny hand-written modules.
//!
//! Every call goes through `call_raw(..).unwrap()` or `send(..)`: a contract violation (invalid
//! JSON returned, which real Fluent Bit 5.1.1 can abort on) fails the test loudly.

use std::path::PathBuf;

use serde_json::{json, Value};
use tripline_host_test::artifacts::{dist, project_root, shared_data};
use tripline_host_test::seeds::seeds_only;
use tripline_host_test::fluentbit::{
    fluentbit_json, record_time, ContractViolation, FilterOptions, FluentBitFilter, Outcome, Reply, ViolationKind,
    ALERTS_ONLY_FUNCTION, FILTER_FUNCTION,
};

const TAG: &[u8] = b"aws.cloudtrail";
const BATCH: &str = "AWS Exfiltration via Batch Service";
const BATCH_MESSAGE: &str = "AWS Batch Job is created on account id - 111111111111 from src_ip s3.amazonaws.com";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A fresh directory for one filter's `Accessible_Paths` (under target/, kept for inspection).
fn scratch(name: &str) -> PathBuf {
    let dir = project_root().join("target/test-scratch").join(format!("fluentbit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The module as built and its `wasm-opt -Oz` copy (scripts/report-sizes.sh): Fluent Bit may load
/// either, so the tests of the exports and of a whole detection run on both.
const ARTIFACTS: [&str; 2] = ["tripline-fluentbit.wasm", "tripline-fluentbit.opt.wasm"];

/// A `tripline_filter` instance of the real module; `config` becomes `tripline.json`.
fn start(name: &str, config: Option<&str>) -> FluentBitFilter {
    start_from(ARTIFACTS[0], name, config)
}

/// A filter over the module `artifact` with `config`, or with the seeds alone (see `seeds.rs`).
fn start_from(artifact: &str, name: &str, config: Option<&str>) -> FluentBitFilter {
    let dir = scratch(name);
    let config = config.map_or_else(|| seeds_only(json!({})).to_string(), str::to_string);
    std::fs::write(dir.join("tripline.json"), config).unwrap();
    let options = FilterOptions::new(dist(artifact), FILTER_FUNCTION).accessible_path(&dir).capture_output();
    FluentBitFilter::start(options).unwrap()
}

fn shared_json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(shared_data(name)).unwrap()).unwrap()
}

fn shared_lines(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(shared_data(name)).unwrap();
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The real JobCreated record (splunk/security_content's example).
fn job_created() -> Value {
    shared_json("splunk_security_content_jobcreated_example.json")
}

/// A record no detection selects, stamped `time`.
fn quiet(time: &str) -> Value {
    let mut record = shared_json("splunk_security_content_putbucketreplication_example.json");
    record["eventTime"] = json!(time);
    record
}

fn seconds(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp()
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Sends `record` as Fluent Bit would: its JSON encoding, record time = `eventTime` (else now).
fn send(filter: &mut FluentBitFilter, record: &Value) -> (Vec<u8>, Reply) {
    let body = fluentbit_json(record);
    let time = record_time(&body).unwrap_or_else(|| chrono::Utc::now().timestamp());
    let reply = filter.call_raw(TAG, time as u32, 0, &body).unwrap();
    (body, reply)
}

/// Sends raw bytes (timed as the JobCreated record).
fn send_raw(filter: &mut FluentBitFilter, bytes: &[u8]) -> Reply {
    let time = seconds("2023-04-24T23:51:17Z") as u32;
    filter.call_raw(TAG, time, 0, bytes).unwrap()
}

/// The record came back unchanged, or as the exact bytes sent plus one last top-level `field`;
/// returns that field's value (`Null` when unchanged). Works at any nesting depth.
fn added_field(sent: &[u8], reply: &Reply, field: &str) -> Value {
    let body = reply.body().unwrap_or_else(|| panic!("the record was dropped: {:?}", reply.outcome));
    if reply.is_unchanged() {
        assert_eq!(body, sent);
        return Value::Null;
    }
    assert!(sent.ends_with(b"}"), "only objects can be annotated");
    let cut = sent.len() - 1;
    assert!(body.len() > cut && body[..cut] == sent[..cut], "the record's own bytes changed");
    let rest = &body[cut..];
    let rest = if sent == b"{}" { rest } else { rest.strip_prefix(b",").expect("a comma before the added field") };
    let mut object = b"{".to_vec();
    object.extend_from_slice(rest);
    let added: serde_json::Map<String, Value> =
        serde_json::from_slice(&object).unwrap_or_else(|e| panic!("the added field is not one JSON member ({e})"));
    assert_eq!(added.len(), 1, "exactly one field added");
    added.get(field).cloned().unwrap_or_else(|| panic!("the added field is not `{field}`: {added:?}"))
}

fn list(annotation: &Value, key: &str) -> Vec<Value> {
    annotation.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
}

/// The Splunk result row the seed search gives for one JobCreated record alone in its hour.
fn expected_row(record: &Value) -> String {
    let time = record["eventTime"].as_str().unwrap().trim_end_matches('Z').to_string();
    let row = json!({
        "src_ip": record["sourceIPAddress"],
        "aws_account_id": record["userIdentity"]["accountId"],
        "eventName": "JobCreated",
        "errorCode": "success",
        "userAgent": record["userAgent"],
        "count": 1,
        "firstTime": time,
        "lastTime": time,
        "job_arn": record["serviceEventDetails"]["jobArn"],
        "status": "New",
    });
    serde_json::to_string(&row).unwrap()
}

/// The window of `record` closes once an event stamped its end plus 10 minutes arrives.
fn close_time(record: &Value) -> i64 {
    let time = seconds(record["eventTime"].as_str().unwrap());
    time - time.rem_euclid(3600) + 3600 + 600
}

fn is_job_created(record: &Value) -> bool {
    record["eventName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("JobCreated"))
}

/// Sends a JobCreated record (and optional neighbours) and checks the per-event tag, then the
/// hourly alert when a later record closes the window.
fn job_created_end_to_end(artifact: &str, name: &str, before: &[Value], record: &Value, after: &[Value]) {
    let mut filter = start_from(artifact, name, None);
    for other in before.iter().chain(after) {
        assert!(!is_job_created(other));
    }
    for other in before {
        let (sent, reply) = send(&mut filter, other);
        assert_eq!(added_field(&sent, &reply, "tripline"), Value::Null, "{other}");
    }
    let (sent, reply) = send(&mut filter, record);
    let tag = added_field(&sent, &reply, "tripline");
    assert_eq!(tag["route"], "match");
    let matches = list(&tag, "matches");
    assert_eq!(matches.len(), 1, "{tag}");
    assert_eq!(matches[0]["risk_score"], 64);
    assert_eq!(matches[0]["detection"]["name"], BATCH);
    assert!(list(&tag, "alerts").is_empty());
    for other in after {
        let (sent, reply) = send(&mut filter, other);
        assert_eq!(added_field(&sent, &reply, "tripline"), Value::Null, "{other}");
    }
    let close = close_time(record);
    let (sent, reply) = send(&mut filter, &quiet(&rfc3339(close - 1)));
    assert_eq!(added_field(&sent, &reply, "tripline"), Value::Null, "the window closed before its lateness ran out");
    let (sent, reply) = send(&mut filter, &quiet(&rfc3339(close + 1)));
    let carried = added_field(&sent, &reply, "tripline");
    assert_eq!(carried["route"], "alert");
    let alerts = list(&carried, "alerts");
    assert_eq!(alerts.len(), 1, "{carried}");
    let alert = &alerts[0];
    assert_eq!(alert["detection"]["name"], BATCH);
    assert_eq!(alert["risk_score"], 64);
    assert_eq!(serde_json::to_string(&alert["result"]).unwrap(), expected_row(record));
    // Nothing more follows.
    let (sent, reply) = send(&mut filter, &quiet(&rfc3339(close + 7200)));
    assert_eq!(added_field(&sent, &reply, "tripline"), Value::Null);
    // The state changes are journaled beside the configuration (default snapshot settings).
    let journal = filter.read_accessible("tripline-state.journal").expect("a journal in the Accessible_Paths directory");
    assert!(journal.starts_with(b"TRIPLINE-JOURNAL2 "));
}

// ---------------------------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------------------------

#[test]
fn exports_fluent_bits_signature_and_libc_allocator() {
    for artifact in ARTIFACTS {
        println!("{artifact}"); // names the artifact in a failing test's output
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::from_file(&engine, dist(artifact)).unwrap();
        let func = |name: &str| match module.get_export(name) {
            Some(wasmtime::ExternType::Func(f)) => f,
            other => panic!("`{name}` is not an exported function: {other:?}"),
        };
        let i32s = |types: Vec<wasmtime::ValType>| types.iter().filter(|t| matches!(t, wasmtime::ValType::I32)).count();
        for name in [FILTER_FUNCTION, ALERTS_ONLY_FUNCTION] {
            let f = func(name);
            assert_eq!((f.params().len(), i32s(f.params().collect())), (6, 6), "{name} params");
            assert_eq!((f.results().len(), i32s(f.results().collect())), (1, 1), "{name} result");
        }
        let malloc = func("malloc");
        let malloc_types = (malloc.params().len(), i32s(malloc.params().collect()), i32s(malloc.results().collect()));
        assert_eq!(malloc_types, (1, 1, 1));
        let free = func("free");
        assert_eq!((free.params().len(), i32s(free.params().collect()), free.results().len()), (1, 1, 0));
        let filter = start_from(artifact, "exports", None);
        assert!(filter.uses_module_malloc(), "the harness must copy records with the module's malloc");
    }
}

#[test]
fn passes_a_quiet_record_through_as_the_same_pointer() {
    for artifact in ARTIFACTS {
        println!("{artifact}"); // names the artifact in a failing test's output
        let mut filter = start_from(artifact, "pass-through", None);
        let (sent, reply) = send(&mut filter, &quiet("2023-04-24T23:52:00Z"));
        assert!(reply.is_pass_through(), "{:?}", reply.outcome);
        assert_eq!(reply.returned_ptr, Some(reply.record_ptr));
        assert_ne!(reply.record_ptr, 0);
        assert_eq!(reply.body().unwrap(), sent.as_slice());
        // Non-ASCII arrives as \uXXXX (json.escape_unicode) and still passes through byte for byte.
        let mut record = quiet("2023-04-24T23:53:00Z");
        record["userAgent"] = json!("Mozilla/5.0 (Müller; 中文; 😀)");
        let (sent, reply) = send(&mut filter, &record);
        assert!(String::from_utf8(sent.clone()).unwrap().contains(r"M\u00fcller; \u4e2d\u6587; \ud83d\ude00"));
        assert!(reply.is_pass_through());
        assert_eq!(reply.body().unwrap(), sent.as_slice());
        assert_eq!(filter.counts().violations, 0);
    }
}

#[test]
fn state_persists_across_calls_on_one_instance() {
    let mut filter = start("state", Some(r#"{"output":{"stats_every_records":1}}"#));
    for n in 1..=3u64 {
        let (sent, reply) = send(&mut filter, &quiet("2023-04-24T23:52:00Z"));
        let stats = added_field(&sent, &reply, "tripline")["stats"].clone();
        assert_eq!(stats["counters"]["records"], n);
    }
}

#[test]
fn alerts_only_filter_keeps_just_the_alerts() {
    for artifact in ARTIFACTS {
        println!("{artifact}"); // names the artifact in a failing test's output
        let mut main = start_from(artifact, "alerts-only", None);
        let record = job_created();
        let (sent, reply) = send(&mut main, &record);
        let tagged_record: Value = serde_json::from_slice(reply.body().unwrap()).unwrap();
        assert!(!list(&added_field(&sent, &reply, "tripline"), "matches").is_empty());
        let (_, reply) = send(&mut main, &quiet(&rfc3339(close_time(&record) + 1)));
        let alert_record: Value = serde_json::from_slice(reply.body().unwrap()).unwrap();
        assert_eq!(alert_record["tripline"]["route"], "alert");

        // A second filter instance on the rewrite_tag'ged stream, same Accessible_Paths.
        let options = FilterOptions::new(dist(artifact), ALERTS_ONLY_FUNCTION)
            .accessible_path(main.accessible_dir())
            .tag("tripline.alerts")
            .capture_output();
        let mut alerts_only = FluentBitFilter::start(options).unwrap();
        let reply = alerts_only.filter(1, &alert_record).unwrap();
        assert!(reply.is_modified(), "{:?}", reply.outcome);
        assert_eq!(reply.value().unwrap(), json!({"alerts": alert_record["tripline"]["alerts"]}));
        let reply = alerts_only.filter(1, &tagged_record).unwrap();
        assert_eq!(reply.outcome, Outcome::Dropped, "a record with matches but no alerts");
        let reply = alerts_only.filter(1, &quiet("2023-04-24T23:52:00Z")).unwrap();
        assert_eq!(reply.outcome, Outcome::Dropped);
        // Whatever it is given, it returns one valid JSON object or drops the copy.
        for broken in [&br#"{"tripline":{"alerts":[1,}]}}"#[..], br#"{"tripline":{"alerts":"not a list"}}"#, br#"{"tripline":{"alerts":[{"a":tru}]}}"#] {
            let reply = alerts_only.call_raw(b"tripline.alerts", 1, 0, broken).unwrap();
            assert_eq!(reply.outcome, Outcome::Dropped, "{}", String::from_utf8_lossy(broken));
        }
    }
}

#[test]
fn an_incoming_tripline_field_is_quarantined_and_never_routed_as_an_alert() {
    let forged_alert = json!({"route": "alert", "alerts": [{"forged": true}]});
    for artifact in ARTIFACTS {
        println!("{artifact}"); // names the artifact in a failing test's output
        let config = seeds_only(json!({"output": {"stats_every_records": 3}})).to_string();
        let mut main = start_from(artifact, "quarantine", Some(&config));
        let mut quiet_forged = quiet("2023-04-24T23:52:00Z");
        quiet_forged["tripline"] = forged_alert.clone();
        let mut job_forged = job_created();
        job_forged["tripline"] = forged_alert.clone();
        for (record, route) in [(&quiet_forged, "quarantine"), (&job_forged, "match")] {
            let reply = main.filter(1, record).unwrap();
            assert!(reply.is_modified(), "{:?}", reply.outcome);
            let mut expected = record.clone();
            let carried = expected.as_object_mut().unwrap().remove("tripline").unwrap();
            let out = reply.value().unwrap();
            assert_eq!(out["tripline"]["route"], route);
            assert_eq!(out["tripline"]["quarantined"], json!([carried]));
            let mut rest = out.clone();
            rest.as_object_mut().unwrap().remove("tripline");
            assert_eq!(rest, expected, "every other member unchanged");
        }
        let (_, reply) = send(&mut main, &quiet("2023-04-24T23:53:00Z"));
        let stats = reply.stats().expect("stats on the third record");
        assert_eq!(stats["counters"]["quarantined"], 2, "{stats}");
    }
}

#[test]
fn a_value_left_out_is_counted_once_however_often_it_comes_back() {
    let record = job_created();
    let config = seeds_only(json!({"limits": {"max_values": 2}})).to_string();
    for artifact in ARTIFACTS {
        println!("{artifact}"); // names the artifact in a failing test's output
        let mut filter = start_from(artifact, "values-dropped", Some(&config));
        // One group (same source, account, name, agent), job ARNs a, b kept; z and c let go,
        // z three times and c twice.
        for job in ["a", "b", "z", "z", "c", "z", "c"] {
            let mut event = record.clone();
            event["serviceEventDetails"]["jobArn"] = json!(format!("arn:aws:s3:us-west-2:111111111111:job/{job}"));
            send(&mut filter, &event);
        }
        let (sent, reply) = send(&mut filter, &quiet(&rfc3339(close_time(&record) + 1)));
        let alerts = list(&added_field(&sent, &reply, "tripline"), "alerts");
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["result"]["count"], 7);
        assert_eq!(alerts[0]["window"]["values_dropped"], 2, "z and c, once each");
    }
}

// ---------------------------------------------------------------------------------------------
// Detection A on real records
// ---------------------------------------------------------------------------------------------

#[test]
fn splunk_job_created_is_tagged_then_alerted() {
    let record = job_created();
    for artifact in ARTIFACTS {
        println!("{artifact}"); // names the artifact in a failing test's output
        let (sent, reply) = send(&mut start_from(artifact, "splunk-tag", None), &record);
        let tag = added_field(&sent, &reply, "tripline");
        assert_eq!(list(&tag, "matches")[0]["risk_message"], BATCH_MESSAGE);
        assert_eq!(list(&tag, "matches")[0]["risk_score"], 64);
        job_created_end_to_end(artifact, "splunk", &[], &record, &[]);
    }
}

#[test]
fn awsdocs_job_created_is_tagged_then_alerted_and_status_changes_are_not() {
    let lines = shared_lines("awsdocs_s3_batch_operations_cloudtrail_examples.jsonl");
    let index = lines.iter().position(is_job_created).unwrap();
    assert_eq!(lines.iter().filter(|l| is_job_created(l)).count(), 1);
    job_created_end_to_end(ARTIFACTS[0], "awsdocs", &lines[..index], &lines[index], &lines[index + 1..]);
}

/// Every record comes back unchanged or with only the extra field; detection A tags and alerts
/// only genuine JobCreated records; detection B (no baseline) raises nothing.
fn no_false_positives(name: &str, records: &[Value]) -> (usize, usize) {
    let mut filter = start(name, None);
    let genuine: Vec<&Value> = records.iter().filter(|r| is_job_created(r)).collect();
    let arns: Vec<Value> = genuine.iter().map(|r| r["serviceEventDetails"]["jobArn"].clone()).collect();
    let (mut matched, mut alerts) = (0, Vec::new());
    for record in records {
        let (sent, reply) = send(&mut filter, record);
        let carried = added_field(&sent, &reply, "tripline");
        for m in list(&carried, "matches") {
            assert_eq!(m["detection"]["name"], BATCH);
            assert!(is_job_created(record), "tagged a record that is not JobCreated: {record}");
            matched += 1;
        }
        alerts.extend(list(&carried, "alerts"));
    }
    let latest = records
        .iter()
        .filter_map(|r| r["eventTime"].as_str().and_then(tripline::time::parse_event_time))
        .max()
        .unwrap();
    let (sent, reply) = send(&mut filter, &quiet(&rfc3339(latest + 7200)));
    alerts.extend(list(&added_field(&sent, &reply, "tripline"), "alerts"));
    for alert in &alerts {
        assert_eq!(alert["detection"]["name"], BATCH, "{alert}");
        assert_eq!(alert["result"]["eventName"], "JobCreated");
        assert!(arns.contains(&alert["result"]["job_arn"]), "an alert for no genuine JobCreated: {alert}");
    }
    assert_eq!(matched, genuine.len());
    assert_eq!(filter.counts().violations, 0);
    (matched, alerts.len())
}

#[test]
fn panther_events_raise_nothing() {
    let logs: Vec<Value> =
        shared_lines("panther_analysis_cloudtrail_test_events.jsonl").into_iter().map(|l| l["log"].clone()).collect();
    assert_eq!(logs.len(), 438);
    assert!(logs.iter().all(|l| !is_job_created(l)));
    assert_eq!(no_false_positives("panther", &logs), (0, 0));
}

#[test]
fn escu_samples_raise_only_their_job_created() {
    let records = shared_lines("security_content_data_sources_cloudtrail_examples.jsonl");
    assert_eq!(records.len(), 48);
    // One of the 48 data-source samples is the JobCreated example itself.
    assert_eq!(records.iter().filter(|r| is_job_created(r)).count(), 1);
    assert_eq!(no_false_positives("escu", &records), (1, 1));
}

// ---------------------------------------------------------------------------------------------
// Malformed input: passed through byte for byte, never a trap, always counted
// ---------------------------------------------------------------------------------------------

/// The module's counters, from the stats a quiet record carries (`stats_every_records: 1`).
fn counters(filter: &mut FluentBitFilter) -> Value {
    let (sent, reply) = send(filter, &quiet("2023-04-24T23:52:00Z"));
    added_field(&sent, &reply, "tripline")["stats"]["counters"].clone()
}

const STATS_EVERY_RECORD: &str = r#"{"output":{"stats_every_records":1}}"#;

/// Sends `bytes` and checks that exactly `counter` grew, and what came back: for a record that
/// cannot be read as JSON (`parse_errors`), the bytes sent; for a readable object with bad fields
/// (`field_errors`), its own bytes unchanged, at most with the `stats` the test configuration
/// asks for on every record, and no tags.
fn assert_passed_and_counted(filter: &mut FluentBitFilter, case: &str, bytes: &[u8], counter: &str) {
    let before = counters(filter);
    let reply = send_raw(filter, bytes);
    if counter == "parse_errors" {
        assert!(reply.is_unchanged(), "{case}: {:?}", reply.outcome);
        assert_eq!(reply.body().unwrap(), bytes, "{case}");
    } else {
        let added = added_field(bytes, &reply, "tripline");
        assert!(added.is_null() || added["route"] == "stats", "{case}: {added}");
    }
    let after = counters(filter);
    for name in ["parse_errors", "field_errors"] {
        let grew = after[name].as_u64().unwrap() - before[name].as_u64().unwrap();
        assert_eq!(grew, u64::from(name == counter), "{case}: {name} {before} -> {after}");
    }
}

fn job_created_bytes() -> Vec<u8> {
    fluentbit_json(&job_created())
}

fn with_field(field: &str, value: Value) -> Vec<u8> {
    let mut record = job_created();
    record[field] = value;
    fluentbit_json(&record)
}

fn without_field(field: &str) -> Vec<u8> {
    let mut record = job_created();
    record.as_object_mut().unwrap().shift_remove(field);
    fluentbit_json(&record)
}

#[test]
fn truncated_and_non_object_records_pass_through_counted() {
    let mut filter = start("malformed-parse", Some(STATS_EVERY_RECORD));
    let full = job_created_bytes();
    for cut in [1, 10, full.len() / 4, full.len() / 2, full.len() - 2, full.len() - 1] {
        assert_passed_and_counted(&mut filter, &format!("cut at {cut}"), &full[..cut], "parse_errors");
    }
    for text in ["[1,2]", "\"str\"", "42", "null"] {
        assert_passed_and_counted(&mut filter, text, text.as_bytes(), "parse_errors");
    }
    assert_passed_and_counted(&mut filter, "empty record", b"", "parse_errors");
    let mut unclosed = br#"{"eventName":"JobCreated","eventTime":"2023-04-24T23:51:17Z","x":"#.to_vec();
    unclosed.extend(std::iter::repeat_n(b'[', 10_000));
    assert_passed_and_counted(&mut filter, "10,000 unclosed brackets", &unclosed, "parse_errors");
    assert_eq!(filter.counts().trapped, 0);
}

#[test]
fn invalid_utf8_in_event_name_passes_through_counted() {
    let mut filter = start("malformed-utf8", Some(STATS_EVERY_RECORD));
    let full = job_created_bytes();
    let invalid_utf8 = {
        let at = full.windows(12).position(|w| w == b"\"JobCreated\"").unwrap();
        let mut b = full.clone();
        b.splice(at..at + 12, b"\"Job\xff\xfeCreated\"".iter().copied());
        b
    };
    assert_passed_and_counted(&mut filter, "invalid UTF-8 in eventName", &invalid_utf8, "parse_errors");
}

#[test]
fn wrong_field_types_pass_through_counted() {
    let mut filter = start("malformed-fields", Some(STATS_EVERY_RECORD));
    assert_passed_and_counted(&mut filter, "eventName number", &with_field("eventName", json!(42)), "field_errors");
    let bytes = with_field("sourceIPAddress", json!({"ip": "1.2.3.4"}));
    assert_passed_and_counted(&mut filter, "sourceIPAddress object", &bytes, "field_errors");
    assert_eq!(filter.counts().trapped, 0);
}

/// The per-event match needs no time: a JobCreated whose `eventTime` is missing, garbage, a
/// number or an object is tagged at once, counted as `untimed`, and kept out of every window.
#[test]
fn job_created_without_a_usable_event_time_is_tagged_and_counted() {
    let mut filter = start("untimed", Some(STATS_EVERY_RECORD));
    let cases = [
        ("no eventTime", without_field("eventTime")),
        ("garbage", with_field("eventTime", json!("yesterday"))),
        ("number", with_field("eventTime", json!(1_682_380_277))),
        ("object", with_field("eventTime", json!({"t": "2023-04-24T23:51:17Z"}))),
    ];
    for (n, (case, bytes)) in cases.iter().enumerate() {
        let reply = send_raw(&mut filter, bytes);
        let added = added_field(bytes, &reply, "tripline");
        assert_eq!(list(&added, "matches").len(), 1, "{case}: tagged: {added}");
        assert_eq!(added["matches"][0]["detection"]["name"], BATCH, "{case}");
        let counters = &added["stats"]["counters"];
        assert_eq!(counters["untimed"], n as u64 + 1, "{case}: {counters}");
        assert_eq!(counters["field_errors"], 0, "{case}");
    }
    let stats = counters(&mut filter);
    assert_eq!(stats["alerts"], 0, "no window got an untimed event");
}

#[test]
fn job_created_without_source_ip_is_tagged_but_makes_no_row() {
    let mut filter = start("no-src-ip", Some(STATS_EVERY_RECORD));
    let sent = without_field("sourceIPAddress");
    let reply = send_raw(&mut filter, &sent);
    let tag = added_field(&sent, &reply, "tripline");
    assert_eq!(list(&tag, "matches").len(), 1, "{tag}");
    assert_eq!(tag["stats"]["counters"]["null_group"], 1);
    let (sent, reply) = send(&mut filter, &quiet(&rfc3339(close_time(&job_created()) + 1)));
    let carried = added_field(&sent, &reply, "tripline");
    assert!(list(&carried, "alerts").is_empty(), "{carried}");
    assert_eq!(carried["stats"]["counters"]["alerts"], 0);
}

#[test]
fn five_megabyte_job_created_arrives_whole_and_is_tagged() {
    let mut filter = start("five-mb", None);
    let mut record = job_created();
    record["requestParameters"] = json!({"padding": "x".repeat(5 * 1024 * 1024)});
    let (sent, reply) = send(&mut filter, &record);
    assert!(sent.len() > 5 * 1024 * 1024);
    let tag = added_field(&sent, &reply, "tripline");
    assert_eq!(list(&tag, "matches").len(), 1, "a valid JobCreated must be tagged, however large");
    assert_eq!(list(&tag, "matches")[0]["risk_message"], BATCH_MESSAGE);
    // And the next record still works (memory grew, nothing broke).
    let (_, reply) = send(&mut filter, &quiet("2023-04-24T23:55:00Z"));
    assert!(reply.is_pass_through());
    // The host frees its copies after every call: memory settles (allocator slack for the input
    // copy and the module's old and new output buffers) instead of growing 5 MB per record.
    assert!(filter.memory_size() > 5 * 1024 * 1024);
    let mut sizes = Vec::new();
    for _ in 0..10 {
        let (sent, reply) = send(&mut filter, &record);
        assert_eq!(list(&added_field(&sent, &reply, "tripline"), "matches").len(), 1);
        sizes.push(filter.memory_size());
    }
    assert!(sizes[9] - sizes[3] < 5 * 1024 * 1024, "memory keeps growing: {sizes:?}");
}

#[test]
fn ten_thousand_deep_records_arrive_whole() {
    let mut filter = start("deep", None);
    let deep = |prefix: &str| {
        let mut b = prefix.as_bytes().to_vec();
        b.extend(std::iter::repeat_n(b'[', 10_000));
        b.extend(std::iter::repeat_n(b']', 10_000));
        b.push(b'}');
        b
    };
    let quiet_deep = deep(r#"{"eventTime":"2023-04-24T23:51:17Z","x":"#);
    let reply = send_raw(&mut filter, &quiet_deep);
    assert!(reply.is_pass_through(), "{:?}", reply.outcome);
    let job_deep = {
        let full = job_created_bytes();
        let mut b = full[..full.len() - 1].to_vec();
        b.extend_from_slice(b",\"x\":");
        let mut nested = deep("");
        nested.pop();
        b.extend(nested);
        b.push(b'}');
        b
    };
    let reply = send_raw(&mut filter, &job_deep);
    let tag = added_field(&job_deep, &reply, "tripline");
    assert_eq!(list(&tag, "matches").len(), 1, "a deep JobCreated is still a JobCreated");
    assert_eq!(filter.counts().trapped, 0);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

fn assert_config_error_passes_through(name: &str, config: &str, reported: &str) {
    let mut filter = start(name, Some(config));
    let record = job_created();
    let (sent, reply) = send(&mut filter, &record);
    assert!(reply.is_pass_through(), "{:?}", reply.outcome);
    assert_eq!(reply.body().unwrap(), sent.as_slice());
    let (_, reply) = send(&mut filter, &quiet(&rfc3339(close_time(&record) + 1)));
    assert!(reply.is_pass_through(), "no alerts from a filter without a valid configuration");
    let stderr = filter.captured_stderr();
    assert!(stderr.contains(reported), "the module's stderr should report `{reported}`: {stderr:?}");
}

#[test]
fn invalid_configuration_passes_everything_through_and_says_why() {
    assert_config_error_passes_through("config-bad-json", "{\"output\": ", "not valid JSON");
    assert_config_error_passes_through("config-unknown-key", r#"{"windoww":{"length_seconds":3600}}"#, "windoww");
    // Note: `stats.config_error` cannot be observed through Fluent Bit here: a module without a
    // valid configuration uses output.stats_every_records = 0 and never attaches stats.
}

#[test]
fn suppression_drops_the_alert_not_the_records() {
    let config = r#"{"output":{"stats_every_records":1},
        "detections":{"aws_exfiltration_via_batch_service":{"suppress":[{"aws_account_id":{"equals":"111111111111"}}]}}}"#;
    let mut filter = start("suppress", Some(config));
    let record = job_created();
    let (sent, reply) = send(&mut filter, &record);
    assert_eq!(list(&added_field(&sent, &reply, "tripline"), "matches").len(), 1, "per-event tags are not suppressed");
    let (sent, reply) = send(&mut filter, &quiet(&rfc3339(close_time(&record) + 1)));
    let carried = added_field(&sent, &reply, "tripline");
    assert!(list(&carried, "alerts").is_empty(), "{carried}");
    assert_eq!(carried["stats"]["counters"]["suppressed"], 1);
    assert_eq!(carried["stats"]["counters"]["alerts"], 0);
}

// ---------------------------------------------------------------------------------------------
// The harness itself, on hand-written modules
// ---------------------------------------------------------------------------------------------

/// No malloc/free (so WAMR's app heap is emulated); imports WASI (so `_initialize` runs).
const PROBE_WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"null\":true}\00")
  (data (i32.const 80) "not json\00")
  (data (i32.const 96) "[1]\00")
  (func (export "_initialize") (i32.store8 (i32.const 200) (i32.const 123)) (i32.store8 (i32.const 201) (i32.const 125)))
  (func (export "echo") (param i32 i32 i32 i32 i32 i32) (result i32)
    (if (result i32) (i32.eqz (local.get 4)) (then (i32.const 16)) (else (local.get 4))))
  (func (export "tag") (param i32 i32 i32 i32 i32 i32) (result i32) (local.get 0))
  (func (export "drop") (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const 64))
  (func (export "zero") (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const 0))
  (func (export "init") (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const 200))
  (func (export "outside") (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const 0x7ffffff0))
  (func (export "array") (param i32 i32 i32 i32 i32 i32) (result i32) (i32.const 96))
  (func (export "bad_if_long") (param i32 i32 i32 i32 i32 i32) (result i32)
    (if (result i32) (i32.gt_u (local.get 5) (i32.const 10)) (then (i32.const 80)) (else (local.get 4))))
  (func (export "trap_if_long") (param i32 i32 i32 i32 i32 i32) (result i32)
    (if (i32.gt_u (local.get 5) (i32.const 10)) (then unreachable))
    (local.get 4))
  (func (export "args") (param i32 i32 i32 i32 i32 i32) (result i32)
    (if (result i32)
      (i32.and
        (i32.and (i32.eq (local.get 1) (i32.const 14)) (i32.eq (local.get 2) (i32.const -1294967296)))
        (i32.and
          (i32.and (i32.eq (local.get 3) (i32.const 42)) (i32.eq (local.get 5) (i32.const 7)))
          (i32.and (i32.eqz (i32.load8_u (i32.add (local.get 0) (i32.const 14))))
                   (i32.eqz (i32.load8_u (i32.add (local.get 4) (i32.const 7)))))))
      (then (local.get 4)) (else (i32.const 64))))
  (func (export "wide") (param i64 i32 i32 i32 i32 i32) (result i32) (i32.const 64))
)
"#;

fn probe(function: &str) -> anyhow::Result<FluentBitFilter> {
    let dir = scratch(&format!("probe-{function}"));
    let wat = dir.join("probe.wat");
    std::fs::write(&wat, PROBE_WAT).unwrap();
    FluentBitFilter::start(FilterOptions::new(wat, function).accessible_path(&dir).capture_output())
}

fn violation(result: anyhow::Result<Reply>) -> ContractViolation {
    result.unwrap_err().downcast::<ContractViolation>().expect("a ContractViolation")
}

#[test]
fn harness_copies_in_wamrs_app_heap_and_passes_null_when_it_is_full() {
    let mut filter = probe("echo").unwrap();
    assert!(!filter.uses_module_malloc());
    let reply = filter.call_raw(TAG, 1, 0, br#"{"a":1}"#).unwrap();
    assert!(reply.is_pass_through());
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(10_000));
    let reply = filter.call_raw(TAG, 1, 0, big.as_bytes()).unwrap();
    assert_eq!(reply.record_ptr, 0, "10 KB does not fit WAMR's default 8 KiB app heap");
    assert_eq!(reply.outcome, Outcome::Modified(br#"{"null":true}"#.to_vec()));
    assert!(filter.call_raw(TAG, 1, 0, br#"{"a":1}"#).unwrap().is_pass_through(), "inputs are freed after each call");
    let mut roomy = FluentBitFilter::start(filter.options().clone().heap_size(64 * 1024)).unwrap();
    assert!(roomy.call_raw(TAG, 1, 0, big.as_bytes()).unwrap().is_pass_through());
}

#[test]
fn harness_passes_fluent_bits_arguments() {
    let mut filter = probe("args").unwrap();
    // time_sec is truncated to u32 and passed as its i32 bits (3000000000 = -1294967296).
    let reply = filter.call_raw(b"aws.cloudtrail", 3_000_000_000, 42, br#"{"a":1}"#).unwrap();
    assert!(reply.is_pass_through(), "{:?}", reply.outcome);
    let mut tag = probe("tag").unwrap();
    let reply = tag.call_raw(br#"{"tag":1}"#, 1, 0, br#"{"a":1}"#).unwrap();
    assert_eq!(reply.outcome, Outcome::Modified(br#"{"tag":1}"#.to_vec()), "the tag is copied NUL-terminated");
}

#[test]
fn harness_outcomes_follow_fluent_bit() {
    assert_eq!(probe("drop").unwrap().call_raw(TAG, 1, 0, b"{}").unwrap().outcome, Outcome::Dropped);
    assert_eq!(
        probe("zero").unwrap().call_raw(TAG, 1, 0, b"{}").unwrap().outcome,
        Outcome::Dropped,
        "address 0 reads \"\""
    );
    assert_eq!(
        probe("init").unwrap().call_raw(TAG, 1, 0, b"{}").unwrap().outcome,
        Outcome::Unchanged(b"{}".to_vec()),
        "_initialize ran"
    );

    let mut trap = probe("trap_if_long").unwrap();
    assert!(matches!(trap.call_raw(TAG, 1, 0, br#"{"long":"record"}"#).unwrap().outcome, Outcome::Trapped(_)));
    assert!(
        trap.call_raw(TAG, 1, 0, br#"{"a":1}"#).unwrap().is_pass_through(),
        "the instance stays usable after a trap"
    );
    assert!(trap.host_log().iter().any(|l| l.contains("Got exception running wasm code")));

    let mut bad = probe("bad_if_long").unwrap();
    let alone = violation(bad.call_raw(TAG, 1, 0, br#"{"long":"record"}"#));
    assert!(matches!(alone.kind, ViolationKind::InvalidJson(_)) && !alone.fatal);
    assert!(bad.call_raw(TAG, 1, 0, br#"{"a":1}"#).unwrap().is_pass_through());
    let after_valid = violation(bad.call_raw(TAG, 1, 0, br#"{"long":"record"}"#));
    assert!(after_valid.fatal, "invalid JSON after a valid record in one chunk aborts Fluent Bit 5.1.1");
    assert!(after_valid.to_string().contains("FATAL"));
    bad.begin_chunk();
    assert!(!violation(bad.call_raw(TAG, 1, 0, br#"{"long":"record"}"#)).fatal);

    assert_eq!(violation(probe("array").unwrap().call_raw(TAG, 1, 0, b"{}")).kind, ViolationKind::NotAnObject);
    assert!(matches!(
        violation(probe("outside").unwrap().call_raw(TAG, 1, 0, b"{}")).kind,
        ViolationKind::InvalidAddress(_)
    ));
}

#[test]
fn harness_refuses_what_fluent_bit_would_silently_mishandle() {
    let missing = probe("no_such_function").err().unwrap().to_string();
    assert!(missing.contains("does not export function `no_such_function`"), "{missing}");
    let wide = format!("{:#}", probe("wide").err().unwrap());
    assert!(wide.contains("not (i32, i32, i32, i32, i32, i32) -> i32"), "{wide}");
    let dir = scratch("simd");
    let wat = dir.join("simd.wat");
    std::fs::write(&wat, r#"(module (memory (export "memory") 1) (func (export "f") (param i32 i32 i32 i32 i32 i32) (result i32) (drop (v128.const i64x2 0 0)) (i32.const 0)))"#).unwrap();
    assert!(FluentBitFilter::start(FilterOptions::new(wat, "f")).is_err(), "WAMR's interpreter cannot load SIMD");
    let options =
        FilterOptions::new(dist("tripline-fluentbit.wasm"), FILTER_FUNCTION).accessible_path("/no/such/directory");
    assert!(FluentBitFilter::start(options).is_err(), "a missing Accessible_Paths directory fails start-up");
}
