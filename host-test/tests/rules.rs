//! The compiled ESCU rules against the cases written from their searches (`rules/escu/tests/`,
//! format in its README): each case through the Fluent Bit module in the harness, one filter per
//! case, and all cases together through the real Fluent Bit. A case's rows are what Splunk's
//! search returns; a mismatch is reported for every case at once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tripline_host_test::artifacts::{dist, project_root};
use tripline_host_test::real_fluentbit::{printed_alerts, Example, Layout, Running};

struct Case {
    key: String,
    /// The case's own days (`YYYY-MM-DD`), those of its records: most cases have one; a
    /// first-seen rule's has the history it learns from, too.
    days: BTreeSet<String>,
    records: Vec<Value>,
    /// (window start, row), in the order the search returns them.
    expected: Vec<(String, Value)>,
}

fn cases() -> Vec<Case> {
    let dir = project_root().join("rules/escu/tests");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let key = doc["rule"].as_str().unwrap_or_else(|| panic!("{}: no `rule`", path.display())).to_string();
            assert_eq!(path.file_stem().unwrap().to_string_lossy(), key, "a case file is named by its rule");
            let mut records: Vec<Value> =
                ["positive", "negative"].iter().flat_map(|k| doc[k].as_array().cloned().unwrap_or_default()).collect();
            records.sort_by_key(event_time);
            let expected = doc["expected"]
                .as_array()
                .unwrap_or_else(|| panic!("{key}: no `expected`"))
                .iter()
                .map(|row| (row["window_start"].as_str().unwrap().to_string(), without_nulls(&row["result"])))
                .collect();
            let days = records.iter().filter_map(|r| r["eventTime"].as_str()?.get(..10).map(str::to_string)).collect();
            Case { key, days, records, expected }
        })
        .collect()
}

fn event_time(record: &Value) -> i64 {
    record["eventTime"].as_str().and_then(tripline::time::parse_event_time).unwrap_or(0)
}

/// A row as Splunk's results show it: a null field is no field.
fn without_nulls(row: &Value) -> Value {
    let kept: Map<String, Value> =
        row.as_object().into_iter().flatten().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
    Value::Object(kept)
}

fn compiled() -> Vec<tripline::rule::Rule> {
    // Sigma's rules have their cases in rules/sigma/tests.json (tests/sigma.rs); seed B, written
    // by hand, in tests/detection_b.rs.
    tripline::catalog::builtin_rules().into_iter().filter(|r| r.source.kind == "escu").collect()
}

/// Every detection off but the rules in `keys`, which run whatever their default.
fn config_for(keys: &BTreeSet<&str>) -> Value {
    let mut detections = Map::new();
    for rule in tripline::catalog::builtin_rules() {
        let key = rule.metadata.key;
        detections.insert(key.clone(), json!({"enabled": keys.contains(key.as_str())}));
    }
    detections.insert(common::SG.into(), json!({"enabled": false}));
    json!({"detections": detections})
}

/// A record after every case's day: the watermark it sets closes every window.
fn closer() -> Value {
    common::heartbeat(tripline::time::parse_event_time("2024-12-31T00:00:00Z").unwrap())
}

/// The rows of rule `id` among `alerts`, as (window start, row).
fn rows_of(alerts: &[Value], id: &str) -> Vec<(String, Value)> {
    alerts
        .iter()
        .filter(|a| a["detection"]["id"] == id)
        .map(|a| (a["window"]["start"].as_str().unwrap_or_default().to_string(), without_nulls(&a["result"])))
        .collect()
}

/// A row with each fractional number cut to 15 significant digits: Fluent Bit prints a double
/// with 16 (`%.16g`), so its last digit differs from the shortest form the case writes.
fn rounded(row: &Value) -> Value {
    match row {
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), rounded(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(rounded).collect()),
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or_default();
            json!(format!("{x:.14e}").parse::<f64>().unwrap_or(x))
        }
        other => other.clone(),
    }
}

/// What differs between the rows a rule gave and the case's, or nothing.
fn mismatch(case: &Case, got: &[(String, Value)]) -> Option<String> {
    let round = |rows: &[(String, Value)]| -> Vec<(String, Value)> { rows.iter().map(|(w, r)| (w.clone(), rounded(r))).collect() };
    let (expected, got) = (round(&case.expected), round(got));
    let got = got.as_slice();
    let order = |rows: &[(String, Value)]| -> Vec<Vec<String>> {
        rows.iter().map(|(_, r)| r.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()).collect()
    };
    (got != expected.as_slice() || order(got) != order(&expected)).then(|| {
        format!(
            "{}:\n  expected {}\n       got {}",
            case.key,
            serde_json::to_string(&case.expected).unwrap(),
            serde_json::to_string(got).unwrap()
        )
    })
}

fn rule_id(key: &str) -> String {
    compiled().into_iter().find(|r| r.metadata.key == key).map(|r| r.metadata.id).unwrap_or_default()
}

/// The cases whose rule is in the pack; the others wait for their rule (the coverage table says
/// why it does not compile), and must be exactly those.
fn runnable() -> Vec<Case> {
    let keys: BTreeSet<String> = compiled().into_iter().map(|r| r.metadata.key).collect();
    let all = cases();
    let waiting: Vec<&str> = all.iter().filter(|c| !keys.contains(&c.key)).map(|c| c.key.as_str()).collect();
    let coverage = std::fs::read_to_string(project_root().join("docs/coverage.md")).unwrap();
    for key in &waiting {
        let line = coverage.lines().find(|l| l.contains(&format!("`{key}`"))).unwrap_or_else(|| panic!("{key} is not in the coverage table"));
        assert!(line.contains("| no |"), "{key} has a case and is compiled, yet not in the pack: {line}");
    }
    let with_case: BTreeSet<&str> = all.iter().map(|c| c.key.as_str()).collect();
    let missing: Vec<&String> = keys.iter().filter(|k| !with_case.contains(k.as_str())).collect();
    assert!(missing.is_empty(), "compiled rules without a case in rules/escu/tests/: {missing:?}");
    all.into_iter().filter(|c| keys.contains(&c.key)).collect()
}

#[test]
fn every_rule_gives_splunks_rows_in_the_harness() {
    let mut failures = Vec::new();
    let cases = runnable();
    for case in &cases {
        let dir = common::scratch_dir(&format!("rule-{}", case.key));
        let mut filter = common::start_filter(&dir, &config_for(&BTreeSet::from([case.key.as_str()])));
        let mut records = case.records.clone();
        records.push(closer());
        let alerts = common::run(&mut filter, &records);
        failures.extend(mismatch(case, &rows_of(&alerts, &rule_id(&case.key))));
    }
    assert!(failures.is_empty(), "{} of {} rules differ from their case:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// All cases in one stream through the example pipeline of the real Fluent Bit: every day is a
/// case's own, so each rule's rows are those of its case alone.
#[test]
fn every_rule_gives_splunks_rows_in_real_fluent_bit() {
    let cases = runnable();
    let mut records: Vec<Value> = cases.iter().flat_map(|c| c.records.clone()).collect();
    records.sort_by_key(event_time);
    records.push(closer());
    let expected_alerts: usize = cases.iter().map(|c| c.expected.len()).sum();

    let layout = Layout::new(common::scratch_dir("rules-real-fb")).unwrap();
    layout.install_module(&dist("tripline-fluentbit.wasm")).unwrap();
    let keys: BTreeSet<&str> = cases.iter().map(|c| c.key.as_str()).collect();
    std::fs::write(layout.etc.join("tripline.json"), config_for(&keys).to_string()).unwrap();
    let lines: Vec<Vec<u8>> = records.iter().map(|r| r.to_string().into_bytes()).collect();
    layout.append_input("cloudtrail.ndjson", &lines.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap();
    let config = layout.write_config(Example::Classic).unwrap();
    let mut fluent_bit = Running::start(&config, &[]).unwrap();
    fluent_bit
        .wait_until("every record and alert", Duration::from_secs(120), |fb| {
            layout.tagged_lines().len() >= records.len() && printed_alerts(&fb.stdout()).len() >= expected_alerts
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let finished = fluent_bit.stop().unwrap();
    assert!(finished.status.success(), "fluent-bit did not exit cleanly:\n{}", finished.stderr);
    let alerts = printed_alerts(&finished.stdout);
    // Other cases' records may fire a rule too (a failed console login is several rules'
    // business): each rule is judged on its own case's days.
    let on_its_day = |c: &Case| -> Vec<(String, Value)> {
        rows_of(&alerts, &rule_id(&c.key)).into_iter().filter(|(start, _)| start.get(..10).is_some_and(|d| c.days.contains(d))).collect()
    };
    let failures: Vec<String> = cases.iter().filter_map(|c| mismatch(c, &on_its_day(c))).collect();
    assert!(failures.is_empty(), "{} of {} rules differ in Fluent Bit:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// A first-seen rule's set is state like its windows, and so are a `join`'s main rows waiting
/// for their window to close: a stop after any record of its case (the journal), or a snapshot
/// there and a restart, changes none of its rows.
#[test]
fn a_first_seen_or_join_rule_gives_the_same_rows_across_a_stop_anywhere() {
    let learning: BTreeSet<String> = compiled().into_iter().filter(|r| r.first_seen.is_some()).map(|r| r.metadata.key).collect();
    let joining: BTreeSet<String> = compiled().into_iter().filter(|r| r.join.is_some()).map(|r| r.metadata.key).collect();
    let cases: Vec<Case> = runnable().into_iter().filter(|c| learning.contains(&c.key) || joining.contains(&c.key)).collect();
    for (kind, keys) in [("first-seen", &learning), ("join", &joining)] {
        assert!(cases.iter().any(|c| keys.contains(&c.key)), "no {kind} rule has a case");
    }
    let mut failures = Vec::new();
    for case in &cases {
        let mut records = case.records.clone();
        records.push(closer());
        let id = rule_id(&case.key);
        for stop in 1..records.len() {
            for snapshot_at_stop in [false, true] {
                let mut config = config_for(&BTreeSet::from([case.key.as_str()]));
                if snapshot_at_stop {
                    config["snapshot"] = json!({"every_records": stop});
                }
                let dir = common::scratch_dir(&format!("{}-stop-{stop}", case.key));
                let mut first = common::start_filter(&dir, &config);
                let mut alerts = common::run(&mut first, &records[..stop]);
                drop(first); // no final save
                let mut second = common::start_filter(&dir, &config);
                alerts.extend(common::run(&mut second, &records[stop..]));
                if let Some(m) = mismatch(case, &rows_of(&alerts, &id)) {
                    failures.push(format!("stopped after record {stop} (snapshot there: {snapshot_at_stop}): {m}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const LARGE_SET_RULE: &str = "cloud_provisioning_activity_from_previously_unseen_ip_address";

/// A fitted first-seen set of 100,000 addresses for [`LARGE_SET_RULE`], each seen once at
/// `seen`, as `tripline fit` writes it.
fn large_set_model(seen: i64) -> String {
    let keys: Map<String, Value> = (0..100_000u32).map(|i| (format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255), json!([seen, seen]))).collect();
    json!({"format": "tripline-first-seen", "version": 1, "detection": LARGE_SET_RULE, "first_seen": {"keys": keys}}).to_string()
}

/// The default pack and [`LARGE_SET_RULE`] with the model loaded, saved every `every` records.
/// (Room for more keys: at `max_keys` a new key makes a tenth of the set go, a save of that size.)
fn large_set_config(every: usize) -> Value {
    json!({
        "models": ["first-seen.json"],
        "detections": {LARGE_SET_RULE: {"enabled": true, "first_seen": {"max_keys": 200_000}}},
        "snapshot": {"every_records": every},
    })
}

/// A save writes what changed, not the set: with 100,000 keys in a first-seen set (a fitted
/// model) and the whole default pack running, the first save writes the whole snapshot and every
/// later one appends a section of under 64 KiB to it; a restart from those sections gives the
/// set and the alerts of a run that never stopped.
#[test]
fn a_save_of_a_large_first_seen_set_writes_what_changed() {
    let key = LARGE_SET_RULE;
    let case = runnable().into_iter().find(|c| c.key == key).expect("the rule's case");
    let mut records = case.records.clone();
    records.push(closer());
    // Keys as old as the case's first record: the set's warm-up, and so the case's rows, stay.
    let model = large_set_model(event_time(&records[0]));
    let start = |name: &str, every: usize| {
        let dir = common::scratch_dir(name);
        std::fs::write(dir.join("first-seen.json"), &model).unwrap();
        (common::start_filter(&dir, &large_set_config(every)), dir)
    };
    // The set as the module restores it at start: the model, then the snapshot and the journal.
    let learned = |dir: &std::path::Path, every: usize| {
        let mut engine = tripline::Engine::from_json(large_set_config(every).to_string().as_bytes());
        engine.load_model(model.as_bytes()).unwrap();
        if let Ok(bytes) = std::fs::read(dir.join("tripline-state.snap")) {
            engine.restore(&bytes).unwrap();
        }
        if let Ok(journal) = std::fs::read(dir.join("tripline-state.journal")) {
            assert!(!tripline::journal::replay(&mut engine, &journal).damaged);
        }
        assert_eq!(engine.counters().restore_damaged, 0);
        let set = engine.model(key).unwrap()["first_seen"].clone();
        let keys = set["keys"].as_object().map(Map::len).unwrap_or_default();
        assert!(keys > 100_000, "{}: {keys} keys", dir.display());
        set
    };

    let (mut whole, whole_dir) = start("large-set-whole", 0);
    let uninterrupted = common::run(&mut whole, &records);
    assert_eq!(mismatch(&case, &rows_of(&uninterrupted, &rule_id(key))), None);

    // Saved after every record that changes state; stopped before the record that closes the
    // judged window, so the rows come from the restored set.
    let stop = records.len() - 1;
    let (mut first, dir) = start("large-set-saves", 1);
    let path = dir.join("tripline-state.snap");
    let mut alerts = Vec::new();
    let mut file: Vec<u8> = Vec::new();
    let mut saves = Vec::new();
    for record in &records[..stop] {
        alerts.extend(common::run(&mut first, std::slice::from_ref(record)));
        let now = std::fs::read(&path).unwrap_or_default();
        if now != file {
            let appended = now.starts_with(&file) && !file.is_empty();
            saves.push(if appended { now.len() - file.len() } else { now.len() });
            if !file.is_empty() {
                assert!(appended, "save {} rewrote the file ({} bytes)", saves.len(), now.len());
            }
            file = now;
        }
    }
    drop(first);
    eprintln!("bytes written per save, 100,000-key set: {saves:?}");
    assert!(saves.len() >= 3, "{saves:?}");
    assert!(saves[0] > 3_000_000, "the first save holds the whole set: {saves:?}");
    assert!(saves[1..].iter().all(|&n| n < 64 << 10), "later saves append what changed: {saves:?}");
    let (mut reference, reference_dir) = start("large-set-reference", 0);
    common::run(&mut reference, &records[..stop]);
    drop(reference);
    assert_eq!(learned(&dir, 1), learned(&reference_dir, 0), "the saved set is the set");

    let mut second = common::start_filter(&dir, &large_set_config(1));
    alerts.extend(common::run(&mut second, &records[stop..]));
    drop(second);
    assert_eq!(alerts, uninterrupted);
    assert_eq!(learned(&dir, 1), learned(&whole_dir, 0));
}

/// The same in the real Fluent Bit: a stop (SIGTERM) and a new process mid-case, the state file
/// a whole snapshot with the 100,000 keys and small sections after it, and the rule's rows
/// those of its case.
#[test]
fn a_large_first_seen_set_survives_a_restart_in_real_fluent_bit() {
    let case = runnable().into_iter().find(|c| c.key == LARGE_SET_RULE).expect("the rule's case");
    let mut records = case.records.clone();
    records.push(closer());
    let layout = Layout::new(common::scratch_dir("large-set-real-fb")).unwrap();
    layout.install_module(&dist("tripline-fluentbit.wasm")).unwrap();
    std::fs::write(layout.etc.join("tripline.json"), large_set_config(1).to_string()).unwrap();
    std::fs::write(layout.etc.join("first-seen.json"), large_set_model(event_time(&records[0]))).unwrap();
    let lines: Vec<Vec<u8>> = records.iter().map(|r| r.to_string().into_bytes()).collect();
    let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let stop = lines.len() - 1;
    let config = layout.write_config(Example::Classic).unwrap();

    layout.append_input("cloudtrail.ndjson", &lines[..stop]).unwrap();
    let mut fluent_bit = Running::start(&config, &[]).unwrap();
    fluent_bit.wait_until("the records before the stop", Duration::from_secs(120), |_| layout.tagged_lines().len() >= stop).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let finished = fluent_bit.stop().unwrap();
    assert!(finished.status.success(), "{}", finished.stderr);
    let mut alerts = printed_alerts(&finished.stdout);
    let state = std::fs::read(layout.etc.join("tripline-state.snap")).unwrap();
    let decoded = tripline::snapshot::decode_sections(&state).unwrap();
    assert!(decoded.damaged.is_none());
    let sections = state.len() - decoded.base_bytes;
    eprintln!("state file: whole snapshot {} bytes, then {sections} bytes of sections", decoded.base_bytes);
    assert!(decoded.base_bytes > 3_000_000 && sections > 0 && sections < stop * (64 << 10), "{} + {sections}", decoded.base_bytes);

    let mut fluent_bit = Running::start(&config, &[]).unwrap();
    layout.append_input("cloudtrail.ndjson", &lines[stop..]).unwrap();
    fluent_bit
        .wait_until("every record and alert", Duration::from_secs(120), |fb| {
            layout.tagged_lines().len() >= lines.len() && alerts.len() + printed_alerts(&fb.stdout()).len() >= case.expected.len()
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let finished = fluent_bit.stop().unwrap();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(finished.stderr.contains("[tripline] restored state"), "{}", finished.stderr);
    alerts.extend(printed_alerts(&finished.stdout));
    assert_eq!(mismatch(&case, &rows_of(&alerts, &rule_id(LARGE_SET_RULE))), None);
}

/// `tripline fit` fills a first-seen set offline from an archive: fitted on a case's history (the
/// days before the hour its rows come from), loaded as a model by a module that sees only that
/// hour's day, the rule gives the case's rows, as when it learned the history in-stream.
#[test]
fn a_fitted_first_seen_set_gives_the_rows_of_the_learned_one() {
    let learning: BTreeSet<String> = compiled().into_iter().filter(|r| r.first_seen.is_some()).map(|r| r.metadata.key).collect();
    let cases: Vec<Case> = runnable().into_iter().filter(|c| learning.contains(&c.key)).collect();
    assert!(!cases.is_empty(), "no first-seen rule has a case");
    for case in &cases {
        let last_day = case.days.iter().next_back().unwrap().clone();
        let (history, judged): (Vec<Value>, Vec<Value>) =
            case.records.iter().cloned().partition(|r| r["eventTime"].as_str().is_some_and(|t| !t.starts_with(&last_day)));
        assert!(!history.is_empty(), "{}: the case has no history before {last_day}", case.key);
        let dir = common::scratch_dir(&format!("fit-{}", case.key));
        let archive = dir.join("archive.ndjson");
        std::fs::write(&archive, history.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")).unwrap();
        let model = dir.join("first-seen.json");
        let until = format!("{last_day}T00:00:00Z");
        let argv = ["tripline", "fit", "--quiet", "--detection", &case.key, "--until", &until, "--out"]
            .into_iter()
            .map(std::ffi::OsString::from)
            .chain([model.clone().into_os_string(), archive.into_os_string()]);
        assert_eq!(tripline_cli::run(argv), 0, "tripline fit {}", case.key);
        let fitted: Value = serde_json::from_slice(&std::fs::read(&model).unwrap()).unwrap();
        assert_eq!(fitted["format"], "tripline-first-seen");
        assert!(fitted["first_seen"]["keys"].as_object().is_some_and(|k| !k.is_empty()), "{fitted}");

        let mut config = config_for(&BTreeSet::from([case.key.as_str()]));
        config["models"] = json!(["first-seen.json"]);
        let mut filter = common::start_filter(&dir, &config);
        let mut records = judged;
        records.push(closer());
        let alerts = common::run(&mut filter, &records);
        assert_eq!(mismatch(case, &rows_of(&alerts, &rule_id(&case.key))), None);
    }
}
