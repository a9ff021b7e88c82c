//! The engine natively: windows, watermark, lateness, future records, suppression, caps,
//! snapshots, and the hot path's promise of no allocation. The same code runs in every .wasm;
//! host-test proves the artifacts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use serde_json::{json, Value};
use tripline::batch::BatchEngine;
use tripline::output::{tag_record, Carry};
use tripline::Engine;

/// Counts allocations made by the current thread, so the hot-path test is exact and immune to
/// other test threads.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const BATCH: &str = "aws_exfiltration_via_batch_service";
const SG: &str = "abnormally_high_cloud_security_group_api_calls";

fn job_created(time: &str, ip: &str, account: &str, job: &str) -> String {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"accountId": account, "invokedBy": "s3.amazonaws.com"},
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": "JobCreated",
        "sourceIPAddress": ip,
        "userAgent": "s3.amazonaws.com",
        "recipientAccountId": account,
        "eventType": "AwsServiceEvent",
        "serviceEventDetails": {"jobArn": format!("arn:aws:s3:us-west-2:{account}:job/{job}"), "status": "New"}
    })
    .to_string()
}

fn other(time: &str) -> String {
    json!({"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAX"},"eventTime":time,
           "eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","sourceIPAddress":"10.0.0.1"})
    .to_string()
}

/// A record no built-in rule selects: KMS's most frequent call.
fn quiet(time: &str) -> String {
    json!({"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAX:s"},"eventTime":time,
           "eventSource":"kms.amazonaws.com","eventName":"GenerateDataKey","sourceIPAddress":"10.0.0.1"})
    .to_string()
}

fn engine(config: Value) -> Engine {
    let engine = Engine::from_json(config.to_string().as_bytes());
    assert_eq!(engine.config_error(), None);
    engine
}

/// [`engine`] as the batch hosts run it.
fn batch(config: Value) -> BatchEngine {
    let batch = BatchEngine::from_config(config.to_string().as_bytes());
    assert_eq!(batch.engine.config_error(), None);
    batch
}

fn alerts_of(engine: &mut Engine) -> Vec<Value> {
    parsed(&engine.take_alerts(usize::MAX))
}

/// Alerts or tags, as the engine writes them (JSON text), parsed.
fn parsed(texts: &[Box<serde_json::value::RawValue>]) -> Vec<Value> {
    texts.iter().map(|a| serde_json::from_str(a.get()).unwrap()).collect()
}

#[test]
fn non_matching_records_cost_no_allocation() {
    let mut e = engine(json!({}));
    let warm = quiet("2026-10-05T10:00:00Z");
    e.process(warm.as_bytes(), None);
    let records: Vec<String> = (0..100).map(|i| quiet(&format!("2026-10-05T10:{:02}:00Z", i % 60))).collect();
    let before = ALLOCATIONS.with(Cell::get);
    for r in &records {
        let processed = e.process(r.as_bytes(), Some(1_791_194_400 + 3600));
        assert!(processed.matches.is_empty() && processed.error.is_none());
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(after - before, 0, "the hot path allocated");
}

/// The one step every host takes per record: a batch host (nothing carried but matches) and a
/// record-at-a-time one (waiting alerts and counters ride along) differ only in `Carry`.
#[test]
fn a_record_carries_its_matches_and_what_the_host_asks() {
    let tag = |e: &mut Engine, record: &str, carry: Carry| {
        let mut out = Vec::new();
        let tagged = tag_record(e, record.as_bytes(), "tripline", None, carry, &mut out);
        let carried = tagged.written.then(|| serde_json::from_slice::<Value>(&out).unwrap()["tripline"].take());
        (tagged, carried)
    };
    let record_at_a_time = Carry { alerts: 10, stats_every: 0 };
    let mut e = engine(json!({}));
    let (tagged, carried) = tag(&mut e, &job_created("2026-10-05T10:15:00Z", "1.2.3.4", "111", "a"), Carry::default());
    assert!(tagged.written && tagged.changed);
    assert_eq!(carried.unwrap()["route"], "match");
    // A record with nothing of its own: a batch host gets it back as it came, and the alert
    // that closed waits for the batch's alert list.
    let (tagged, carried) = tag(&mut e, &quiet("2026-10-05T11:10:00Z"), Carry::default());
    assert!(!tagged.written && carried.is_none() && tagged.taken == 0);
    assert_eq!(e.pending_alerts(), 1);
    // A record-at-a-time host hands the alert on with the next record, and counters with every
    // Nth (the engine has read 3 records).
    let (tagged, carried) = tag(&mut e, &quiet("2026-10-05T11:10:01Z"), Carry { stats_every: 3, ..record_at_a_time });
    let carried = carried.unwrap();
    assert_eq!((tagged.taken, carried["route"].as_str()), (1, Some("alert")));
    assert_eq!(carried["alerts"][0]["detection"]["name"], "AWS Exfiltration via Batch Service");
    assert_eq!(carried["stats"]["counters"]["records"], 3);
    assert_eq!(e.pending_alerts(), 0);
    // Nothing waiting, no counters due: untouched.
    let (tagged, _) = tag(&mut e, &quiet("2026-10-05T11:10:02Z"), Carry { stats_every: 3, ..record_at_a_time });
    assert!(!tagged.written);
    // A record that is not JSON cannot carry the alert that waits: it leaves as it came, counted.
    e.process(quiet("2026-10-05T12:10:00Z").as_bytes(), None);
    let (tagged, _) = tag(&mut e, r#"{"eventName":"JobCreated","#, Carry { alerts: 10, stats_every: 1 });
    assert!(!tagged.written && tagged.taken == 0);
    assert_eq!(e.counters().unannotatable, 1);
}

#[test]
fn window_closes_only_after_lateness() {
    let mut e = engine(json!({}));
    let tagged = e.process(job_created("2026-10-05T10:15:00Z", "1.2.3.4", "111", "a").as_bytes(), None);
    assert_eq!(tagged.matches.len(), 1);
    assert_eq!(parsed(&tagged.matches)[0]["risk_message"], "AWS Batch Job is created on account id - 111 from src_ip 1.2.3.4");
    e.process(other("2026-10-05T11:09:59Z").as_bytes(), None);
    assert!(alerts_of(&mut e).is_empty(), "window end + 10 min not reached");
    e.process(other("2026-10-05T11:10:00Z").as_bytes(), None);
    let alerts = alerts_of(&mut e);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["window"]["start"], "2026-10-05T10:00:00Z");
    assert_eq!(alerts[0]["result"]["count"], 1);
    // Reaching the bound closed the hour: an event one second before its end is now late.
    let late = e.process(job_created("2026-10-05T10:59:59Z", "1.2.3.4", "111", "b").as_bytes(), None);
    assert_eq!(late.matches.len(), 1);
    assert_eq!(e.counters().late, 1);
    let alerts = alerts_of(&mut e);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["window"]["partial"], "late");
}

#[test]
fn late_events_are_counted_and_reported_per_policy() {
    for (policy, expected_alerts) in [("alert", 1), ("drop", 0)] {
        let mut e = engine(json!({"window": {"late_events": policy}}));
        e.process(other("2026-10-05T12:00:00Z").as_bytes(), None);
        let late = e.process(job_created("2026-10-05T10:15:00Z", "1.2.3.4", "111", "a").as_bytes(), None);
        assert_eq!(late.matches.len(), 1, "the real-time tag never depends on lateness");
        assert_eq!(e.counters().late, 1);
        let alerts = alerts_of(&mut e);
        assert_eq!(alerts.len(), expected_alerts, "policy {policy}");
        if let Some(a) = alerts.first() {
            assert_eq!(a["window"]["partial"], "late");
        }
    }
}

#[test]
fn a_forged_future_record_cannot_close_windows() {
    let mut e = engine(json!({}));
    let host_now = 1_791_194_400 + 1800; // 2026-10-05T10:30:00Z
    e.process(job_created("2026-10-05T10:15:00Z", "1.2.3.4", "111", "a").as_bytes(), Some(host_now));
    let forged = e.process(job_created("2030-01-01T00:00:00Z", "6.6.6.6", "111", "b").as_bytes(), Some(host_now));
    assert_eq!(forged.matches.len(), 1, "still tagged");
    assert_eq!(e.counters().future, 1);
    assert!(alerts_of(&mut e).is_empty(), "the 10:00 window must still be open");
    e.process(other("2026-10-05T11:10:00Z").as_bytes(), Some(host_now + 2400));
    let alerts = alerts_of(&mut e);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["result"]["src_ip"], "1.2.3.4");
}

#[test]
fn any_host_time_is_safe_arithmetic() {
    // Hosts pass any i64 to `flush` and as the clock; none may overflow (a panic is a trap).
    for now in [i64::MIN, -1, 0, i64::MAX] {
        let mut e = engine(json!({}));
        e.process(job_created("2023-04-24T23:51:17Z", "1.2.3.4", "111", "a").as_bytes(), Some(now));
        e.flush(now);
        e.finish_all();
    }
}

#[test]
fn suppression_drops_the_alert_not_the_record() {
    let mut e = batch(json!({"detections": {BATCH: {"suppress": [{"aws_account_id": {"equals": "111"}}]}}}));
    let out = e.process(job_created("2026-10-05T10:15:00Z", "1.2.3.4", "111", "a").as_bytes(), None);
    assert!(String::from_utf8(out.records).unwrap().contains("\"tripline\""));
    let flushed = e.flush(1_791_200_000);
    assert!(flushed.alerts.is_empty());
    assert_eq!(e.engine.counters().suppressed, 1);
}

#[test]
fn group_cap_closes_small_groups_early_and_keeps_busy_ones() {
    let mut e = batch(json!({"limits": {"max_groups": 50, "max_values": 3}}));
    let mut input = String::new();
    for i in 0..20 {
        input.push_str(&job_created("2026-10-05T10:05:00Z", "9.9.9.9", "111", &format!("busy-{i:02}")));
        input.push('\n');
    }
    for i in 0..2000 {
        input.push_str(&job_created("2026-10-05T10:10:00Z", &format!("10.0.{}.{}", i / 256, i % 256), "222", "x"));
        input.push('\n');
    }
    let out = e.process(input.as_bytes(), None);
    let flushed = e.flush(1_791_200_000);
    let alerts: Vec<Value> = [out.alerts, flushed.alerts]
        .concat()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(alerts.len(), 2001, "every group reported once, evicted or not");
    let busy: Vec<_> = alerts.iter().filter(|a| a["result"]["src_ip"] == "9.9.9.9").collect();
    assert_eq!(busy.len(), 1);
    assert_eq!(busy[0]["result"]["count"], 20);
    assert_eq!(busy[0]["window"]["values_dropped"], 17);
    assert_eq!(busy[0]["result"]["job_arn"].as_array().unwrap().len(), 3);
    assert!(e.engine.counters().evicted_groups >= 1900);
    assert_eq!(e.engine.counters().evicted_values, 17);
}

#[test]
fn snapshot_restores_mid_window_and_refuses_damage() {
    let lines = [
        job_created("2026-10-05T10:15:00Z", "1.2.3.4", "111", "a"),
        job_created("2026-10-05T10:20:00Z", "1.2.3.4", "111", "b"),
        other("2026-10-05T11:30:00Z"),
    ];
    let mut whole = engine(json!({}));
    for l in &lines {
        whole.process(l.as_bytes(), None);
    }
    let mut first = engine(json!({}));
    first.process(lines[0].as_bytes(), None);
    let snap = first.snapshot().unwrap();
    let mut second = engine(json!({}));
    second.restore(&snap).unwrap();
    for l in &lines[1..] {
        second.process(l.as_bytes(), None);
    }
    assert_eq!(alerts_of(&mut second), alerts_of(&mut whole));

    let mut damaged = snap.clone();
    let last = damaged.len() - 2;
    damaged[last] ^= 1;
    let mut fresh = engine(json!({}));
    assert!(fresh.restore(&damaged).unwrap_err().contains("checksum"));
    assert!(fresh.restore(&snap[..snap.len() - 5]).unwrap_err().contains("bytes"));
    let future = String::from_utf8_lossy(&snap).replacen("TRIPLINE-SNAPSHOT 1 ", "TRIPLINE-SNAPSHOT 9 ", 1);
    assert!(fresh.restore(future.as_bytes()).unwrap_err().contains("newer"));
    assert_eq!(fresh.counters().restore_failures, 3);
    assert!(fresh.watermark().is_none(), "a failed restore leaves a clean engine");
}

/// Saves of a first-seen rule as sections of changes appended to one whole snapshot: the file
/// restores what the live engine holds; a last section cut short restores what came before
/// it, counted, and a strict reader refuses it.
#[test]
fn sections_of_changes_restore_the_state_and_a_torn_one_what_came_before() {
    let key = "cloud_provisioning_activity_from_previously_unseen_ip_address";
    let path = format!("{}/rules/escu/tests/{key}.json", env!("CARGO_MANIFEST_DIR"));
    let case: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut records: Vec<String> = ["positive", "negative"].iter().flat_map(|k| case[k].as_array().unwrap().iter().map(Value::to_string)).collect();
    records.sort_by_key(|r| serde_json::from_str::<Value>(r).unwrap()["eventTime"].as_str().unwrap().to_string());
    records.push(other("2024-12-31T00:00:00Z"));
    let config = json!({"detections": {key: {"enabled": true}}});
    let mut live = engine(config.clone());
    let mut file = live.snapshot().unwrap();
    let mut before_last = file.len();
    for record in &records {
        live.process(record.as_bytes(), None);
        before_last = file.len();
        file.extend(live.snapshot_changes().unwrap());
    }
    let keys = |e: &Engine| e.model(key).unwrap()["first_seen"]["keys"].as_object().unwrap().len();
    let mut restored = engine(config.clone());
    restored.restore(&file).unwrap();
    assert_eq!(restored.model(key), live.model(key));
    assert!(keys(&live) >= 3, "the case's addresses were learned: {}", keys(&live));
    assert_eq!(restored.counters().records, live.counters().records);
    let alerts = alerts_of(&mut live);
    assert!(!alerts.is_empty());
    assert_eq!(alerts_of(&mut restored), alerts);

    let mut before = engine(config.clone());
    before.restore(&file[..before_last]).unwrap();
    assert_eq!(before.counters().restore_damaged, 0);
    for cut in [before_last + 1, (before_last + file.len()) / 2, file.len() - 1] {
        let mut torn = engine(config.clone());
        torn.restore(&file[..cut]).unwrap();
        assert_eq!(torn.counters().restore_damaged, 1, "cut at {cut}");
        assert_eq!((torn.model(key), torn.counters().records), (before.model(key), before.counters().records), "cut at {cut}");
        assert!(tripline::snapshot::decode(&file[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn a_configuration_change_refuses_only_the_state_it_invalidates() {
    let sg_call = json!({"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAX","userName":"alice"},
        "eventTime":"2026-10-05T10:20:00Z","eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupIngress",
        "sourceIPAddress":"10.0.0.1"})
    .to_string();
    let first = [job_created("2026-10-05T10:15:00Z", "1.2.3.4", "111", "a"), sg_call];
    let rest = [job_created("2026-10-05T10:40:00Z", "1.2.3.4", "111", "b"), other("2026-10-05T11:30:00Z")];
    let before = json!({});
    let after = json!({"detections": {SG: {"user_field": "userName"}}});
    let mut whole = engine(after.clone());
    let mut saved = engine(before);
    for l in &first {
        whole.process(l.as_bytes(), None);
        saved.process(l.as_bytes(), None);
    }
    let snap = saved.snapshot().unwrap();

    let mut changed = engine(after);
    changed.restore(&snap).unwrap();
    assert_eq!(changed.counters().state_refused, 1);
    assert_eq!(changed.state_refused().len(), 1);
    assert!(changed.state_refused()[0].contains(SG), "{:?}", changed.state_refused());
    assert!(changed.stats()["state_refused"][0].as_str().unwrap().contains("user_field"));
    assert_eq!(changed.stats()["detections"][SG]["open_groups"], 0, "B's groups were keyed by the old user field");
    assert_eq!(changed.stats()["detections"][BATCH]["open_groups"], 1, "A's open window is kept");
    for l in &rest {
        whole.process(l.as_bytes(), None);
        changed.process(l.as_bytes(), None);
    }
    let batch_alerts = |alerts: Vec<Value>| -> Vec<Value> {
        alerts.into_iter().filter(|a| a["detection"]["name"] == "AWS Exfiltration via Batch Service").collect()
    };
    let expected = batch_alerts(alerts_of(&mut whole));
    assert_eq!(expected.len(), 1);
    assert_eq!(expected[0]["result"]["count"], 2);
    assert_eq!(batch_alerts(alerts_of(&mut changed)), expected);

    // A new window length refuses the windows opened under the old one, and nothing else.
    let mut shorter = engine(json!({"window": {"length_seconds": 1800}}));
    shorter.restore(&snap).unwrap();
    // Each detection with an open window of the host's length: A, and every rule that selects
    // B's call too. B bins by its own hour (its search's `span=1h`), which the host's window
    // length does not change: its windows are kept.
    let detections = saved.stats()["detections"].as_object().unwrap().clone();
    let open = detections.iter().filter(|(k, d)| *k != SG && d["open_groups"].as_u64() > Some(0)).count();
    assert!(open >= 2 && detections[SG]["open_groups"] == 1);
    assert_eq!(shorter.counters().state_refused, open as u64, "{:?}", shorter.state_refused());
    assert!(shorter.state_refused().iter().all(|r| r.contains("3600 s long")));
    assert_eq!(shorter.stats()["detections"][SG]["open_groups"], 1);
    assert_eq!(shorter.watermark(), saved.watermark());
}

#[test]
fn invalid_config_passes_everything_through_and_says_why() {
    let e = Engine::from_json(br#"{"detections":{"nope":{}}}"#);
    assert!(e.config_error().unwrap().to_string().contains("`detections.nope`: unknown detection"));
    let mut e = BatchEngine::from_config(br#"{"window":{"length_seconds":"hour"}}"#);
    let record = job_created("2026-10-05T10:15:00Z", "1.2.3.4", "111", "a");
    let out = e.process(record.as_bytes(), None);
    assert_eq!(out.records, format!("{record}\n").into_bytes());
    assert_eq!(e.engine.stats()["counters"]["config_errors"], 1);
    assert!(e.engine.stats()["config_error"].as_str().unwrap().contains("window.length_seconds"));
}

/// Splunk's `stats ... by` over whole hours, computed the plain way from all events at once.
fn reference_rows(events: &[(i64, String)]) -> Vec<(i64, String, u64, i64, i64)> {
    let mut groups: std::collections::BTreeMap<(i64, String), (u64, i64, i64)> = Default::default();
    for (t, ip) in events {
        let g = groups.entry((t.div_euclid(3600) * 3600, ip.clone())).or_insert((0, i64::MAX, i64::MIN));
        g.0 += 1;
        g.1 = g.1.min(*t);
        g.2 = g.2.max(*t);
    }
    groups.into_iter().map(|((w, ip), (c, f, l))| (w, ip, c, f, l)).collect()
}

fn rows_of(alerts: &[Value]) -> Vec<(i64, String, u64, i64, i64)> {
    let parse = |s: &Value| chrono::NaiveDateTime::parse_from_str(s.as_str().unwrap(), "%Y-%m-%dT%H:%M:%S").unwrap().and_utc().timestamp();
    let mut rows: Vec<_> = alerts
        .iter()
        .map(|a| {
            let r = &a["result"];
            let first = parse(&r["firstTime"]);
            (first.div_euclid(3600) * 3600, r["src_ip"].as_str().unwrap().to_string(), r["count"].as_u64().unwrap(), first, parse(&r["lastTime"]))
        })
        .collect();
    rows.sort();
    rows
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any delivery order whose disorder stays within the allowed lateness gives exactly the
    /// rows of the batch reference.
    #[test]
    fn out_of_order_within_lateness_matches_the_batch_reference(
        offsets in prop::collection::vec((0i64..4 * 3600, 0usize..3), 1..60),
        jitter in prop::collection::vec(0i64..600, 60),
    ) {
        let base = 1_791_194_400i64;
        let ips = ["1.1.1.1", "2.2.2.2", "3.3.3.3"];
        let mut events: Vec<(i64, String)> = offsets.iter().map(|(o, i)| (base + o, ips[*i].to_string())).collect();
        events.sort();
        // Deliver each event up to 10 minutes late: sort by time + jitter.
        let mut delivery: Vec<(i64, usize)> = events.iter().enumerate().map(|(i, (t, _))| (t + jitter[i % jitter.len()], i)).collect();
        delivery.sort();
        let mut e = engine(json!({"detections": {SG: {"enabled": false}}}));
        for (_, i) in &delivery {
            let (t, ip) = &events[*i];
            let time = chrono::DateTime::from_timestamp(*t, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            e.process(job_created(&time, ip, "111", "j").as_bytes(), None);
        }
        e.finish_all();
        prop_assert_eq!(e.counters().late, 0);
        prop_assert_eq!(rows_of(&alerts_of(&mut e)), reference_rows(&events));
    }
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fluent-bit/tripline.json");
    let document = tripline::config::Document::from_json(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(document.host.models, ["baseline.json"]);
    assert!(Engine::new(document.engine).is_ok());
}

/// A rule document as the compiler writes it, with the parts these tests vary.
fn rule(key: &str, event_names: Value, selection: Value, stats: Value, after: Value) -> tripline::rule::Rule {
    let mut doc = json!({
        "metadata": {"id": key, "key": key, "name": key, "version": 1, "analytic_type": "TTP", "status": "production",
                     "impact": 50, "confidence": 50, "risk_object": {"field": "src_ip", "kind": "ip_address"},
                     "message": "from $src_ip$"},
        "source": {"kind": "local"},
        "event_names": event_names,
        "selection": selection,
        "after": after,
    });
    if !stats.is_null() {
        doc["stats"] = stats;
    }
    serde_json::from_value(doc).unwrap()
}

#[test]
fn rules_run_in_their_own_windows_and_rows() {
    let eq = |field: &str, value: &str| json!({"compare": {"field": field, "op": "eq", "value": value}});
    let five_minutes = rule(
        "burst",
        json!(["Describe*"]),
        eq("eventName", "describe*"),
        json!({"span_seconds": 300, "by": ["_time", "src_ip"], "functions": [{"func": "count", "name": "n"}]}),
        json!([{"where": {"binary": {"op": "ge", "left": {"field": "n"}, "right": {"num": 2.0}}}}]),
    );
    let per_event = rule("each", json!(["JobCreated"]), eq("eventName", "JobCreated"), Value::Null, json!([]));
    let config = tripline::config::Config::default();
    let mut e = Engine::with_rules(config, vec![five_minutes, per_event]).unwrap();

    e.process(other("2026-10-05T10:01:00Z").as_bytes(), None);
    e.process(other("2026-10-05T10:02:00Z").as_bytes(), None);
    e.process(other("2026-10-05T10:06:00Z").as_bytes(), None);
    let job = e.process(job_created("2026-10-05T10:07:00Z", "1.2.3.4", "111", "a").as_bytes(), None);
    assert!(job.matches.is_empty(), "a row rule alerts; it does not tag");
    let alerts = alerts_of(&mut e);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["detection"]["name"], "each");
    assert_eq!(alerts[0]["result"]["eventName"], Value::Null, "a row without stats or table has only the fields set");

    // 10:00-10:05 closes at 10:15 (ten minutes' lateness); the hour window stays open.
    e.process(other("2026-10-05T10:15:00Z").as_bytes(), None);
    let alerts = alerts_of(&mut e);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["result"], json!({"_time": "2026-10-05T10:00:00Z", "src_ip": "10.0.0.1", "n": 2}));
    assert_eq!(alerts[0]["window"]["end"], "2026-10-05T10:05:00Z");
}

#[test]
fn windows_saved_under_another_form_of_a_rule_are_not_restored() {
    let eq = |field: &str, value: &str| json!({"compare": {"field": field, "op": "eq", "value": value}});
    let by = |fields: Value| {
        rule("per_ip", json!(["DescribeInstances"]), eq("eventName", "DescribeInstances"),
             json!({"by": fields, "functions": [{"func": "count", "name": "n"}]}), json!([]))
    };
    let config = tripline::config::Config::default;
    let mut saved = Engine::with_rules(config(), vec![by(json!(["src_ip"]))]).unwrap();
    saved.process(other("2026-10-05T10:01:00Z").as_bytes(), None);
    let snap = saved.snapshot().unwrap();

    let mut same = Engine::with_rules(config(), vec![by(json!(["src_ip"]))]).unwrap();
    same.restore(&snap).unwrap();
    assert_eq!((same.counters().state_refused, same.stats()["detections"]["per_ip"]["open_groups"].clone()), (0, json!(1)));

    let mut regrouped = Engine::with_rules(config(), vec![by(json!(["src_ip", "eventSource"]))]).unwrap();
    regrouped.restore(&snap).unwrap();
    assert_eq!(regrouped.counters().state_refused, 1);
    assert!(regrouped.state_refused()[0].contains("the rule changed"), "{:?}", regrouped.state_refused());
    assert_eq!(regrouped.stats()["detections"]["per_ip"]["open_groups"], 0);
    assert_eq!(regrouped.watermark(), saved.watermark());
}

#[test]
fn a_bad_rule_file_is_reported_with_its_line_and_the_rest_runs() {
    let good = r#"{"metadata": {"id": "g", "key": "good", "name": "good", "version": 1, "analytic_type": "TTP",
        "status": "production", "impact": 50, "confidence": 50, "risk_object": {"field": "src_ip", "kind": "ip_address"},
        "message": "m"}, "source": {"kind": "local"}, "event_names": ["JobCreated"],
        "selection": {"compare": {"field": "eventName", "op": "eq", "value": "JobCreated"}}, "tag_each_event": true}"#;
    let typo = good.replace("\"good\"", "\"typo\"").replace("\"selection\"", "\"selektion\"");
    let bad_regex = good.replace("\"good\"", "\"regex\"").replace(
        "\"tag_each_event\": true",
        r#""steps": [{"where": {"call": {"func": "match", "args": [{"field": "a"}, {"str": "("}]}}}]"#,
    );
    let files = [("good.json", good.to_string()), ("typo.json", typo), ("regex.json", bad_regex)];
    let config = json!({"rules": ["good.json", "typo.json", "regex.json", "missing.json"]}).to_string();
    let mut e = Engine::from_json_with_rules(config.as_bytes(), |name| {
        files.iter().find(|(n, _)| *n == name).map(|(_, text)| text.clone().into_bytes()).ok_or(format!("{name}: not found"))
    });
    assert_eq!(e.config_error(), None);
    let errors = e.rule_errors().to_vec();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].starts_with("typo.json:4:19: at `selektion`") && errors[0].contains("unknown field `selektion`"), "{}", errors[0]);
    assert_eq!(errors[1], "missing.json: not found");
    assert!(errors[2].starts_with("rule `regex`: match() regex"), "{}", errors[2]);
    assert_eq!(e.counters().rule_errors, 3);
    let job = job_created("2026-10-05T10:07:00Z", "1.2.3.4", "111", "a");
    let processed = e.process(job.as_bytes(), None);
    let names: Vec<_> = parsed(&processed.matches).iter().map(|m| m["detection"]["name"].as_str().unwrap().to_string()).collect();
    assert!(names.contains(&"good".to_string()), "{names:?}");
}

#[test]
fn a_rule_that_reads_every_record_allocates_nothing_to_reject_one() {
    let everywhere = rule(
        "everywhere",
        json!([]),
        json!({"all": [{"compare": {"field": "eventSource", "op": "eq", "value": "iam.amazonaws.com"}},
                       {"in": {"field": "src_ip", "values": ["10.9.*", "192.168.*"]}}]}),
        Value::Null,
        json!([]),
    );
    let mut e = Engine::with_rules(tripline::config::Config::default(), vec![everywhere]).unwrap();
    let records: Vec<String> = (0..100).map(|i| other(&format!("2026-10-05T10:{:02}:00Z", i % 60))).collect();
    e.process(records[0].as_bytes(), None);
    let before = ALLOCATIONS.with(Cell::get);
    for r in &records {
        assert!(e.process(r.as_bytes(), None).matches.is_empty());
    }
    assert_eq!(ALLOCATIONS.with(Cell::get) - before, 0, "rejecting a record allocated");
}

#[test]
fn matched_counts_records_a_detection_selected_and_nothing_else() {
    let mut e = engine(json!({}));
    // Crossing an hour closes nothing here but moves the watermark's horizon: no match.
    e.process(quiet("2026-10-05T10:59:00Z").as_bytes(), None);
    e.process(quiet("2026-10-05T12:30:00Z").as_bytes(), None);
    assert_eq!(e.counters().matched, 0);
    e.process(job_created("2026-10-05T12:31:00Z", "1.2.3.4", "111", "a").as_bytes(), None);
    assert_eq!(e.counters().matched, 1);
}

#[test]
fn rules_that_name_no_event_are_indexed_by_the_value_they_require() {
    let denied = rule(
        "denied",
        json!([]),
        json!({"all": [{"in": {"field": "errorCode", "values": ["AccessDenied", "UnauthorizedOperation"]}},
                       {"compare": {"field": "userAgent", "op": "ne", "value": "*.amazonaws.com"}}]}),
        Value::Null,
        json!([]),
    );
    let succeeded = rule("succeeded", json!([]), json!({"compare": {"field": "errorCode", "op": "eq", "value": "success"}}), Value::Null, json!([]));
    let config = tripline::config::Config::default();
    let mut e = Engine::with_rules(config, vec![denied, succeeded]).unwrap();
    let with_error = |code: Value| {
        let mut record: Value = serde_json::from_str(&other("2026-10-05T10:01:00Z")).unwrap();
        record["errorCode"] = code;
        record["userAgent"] = json!("aws-cli/2.15");
        record.to_string()
    };
    let fired = |e: &mut Engine| alerts_of(e).iter().map(|a| a["detection"]["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();

    // No errorCode is the add-on's `success`; the search compares without case.
    e.process(other("2026-10-05T10:01:00Z").as_bytes(), None);
    assert_eq!(fired(&mut e), ["succeeded"]);
    e.process(with_error(json!("accessdenied")).as_bytes(), None);
    assert_eq!(fired(&mut e), ["denied"]);
    e.process(with_error(json!("ThrottlingException")).as_bytes(), None);
    assert_eq!(fired(&mut e), Vec::<String>::new());
    // A record whose errorCode cannot be read is a broken record to the rules that read it.
    e.process(with_error(json!({"code": "AccessDenied"})).as_bytes(), None);
    assert_eq!(e.counters().field_errors, 1);
    assert_eq!(fired(&mut e), Vec::<String>::new());
}

#[test]
fn sigma_rules_are_indexed_by_the_identity_type_they_require() {
    let sigma = |field: &str, pattern: &str| json!({"sigma": {"field": field, "test": {"pattern": {"pattern": pattern}}}});
    let root = rule(
        "root",
        json!([]),
        json!({"all": [sigma("userIdentity.type", "Root"), {"not": sigma("eventType", "AwsServiceEvent")}]}),
        Value::Null,
        json!([]),
    );
    // Sigma folds a non-ASCII pattern's case beyond ASCII (`Ä` is `ä`): the index must not
    // turn such a record away, as ASCII folding would.
    let umlaut = rule("umlaut", json!([]), sigma("userIdentity.type", "Äb"), Value::Null, json!([]));
    let config = tripline::config::Config::default();
    let mut e = Engine::with_rules(config, vec![root, umlaut]).unwrap();
    let of_type = |kind: Value| {
        let mut record: Value = serde_json::from_str(&quiet("2026-10-05T10:01:00Z")).unwrap();
        record["userIdentity"]["type"] = kind;
        record.to_string()
    };
    let fired = |e: &mut Engine| alerts_of(e).iter().map(|a| a["detection"]["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();

    e.process(of_type(json!("ROOT")).as_bytes(), None);
    assert_eq!(fired(&mut e), ["root"]);
    e.process(of_type(json!("AssumedRole")).as_bytes(), None);
    assert_eq!(fired(&mut e), Vec::<String>::new());
    e.process(of_type(json!("äB")).as_bytes(), None);
    assert_eq!(fired(&mut e), ["umlaut"]);
    // A type that is not text: the rules read it themselves, as Sigma reads any value.
    e.process(of_type(json!(["Root"])).as_bytes(), None);
    assert_eq!(fired(&mut e), ["root"]);
}
