//! State in someone else's process, through the real Fluent Bit module: snapshots that survive
//! a restart (or a swapped .wasm) exactly, damaged snapshots that never stop records, and a
//! flood that stays inside the caps while the true alerts still fire.

mod common;

use common::*;
use serde_json::{json, Value};
use tripline_host_test::fluentbit::FluentBitFilter;
use tripline_host_test::seeds::seeds_only;

fn restart(dir: &std::path::PathBuf, config: &Value) -> FluentBitFilter {
    start_filter(dir, config)
}

fn stats_of(filter: &mut FluentBitFilter, t: i64) -> Value {
    // A config with stats_every_records = 1 attaches counters to every record.
    let reply = filter.filter(t as u32, &heartbeat(t)).unwrap();
    reply.stats().expect("stats attached")
}

#[test]
fn replay_split_anywhere_restores_to_the_same_alerts() {
    let mut records = example_records();
    let end = tripline::time::parse_event_time(records.last().unwrap()["eventTime"].as_str().unwrap()).unwrap();
    records.push(heartbeat(end + 3 * 3600));
    let base = json!({"snapshot": {"every_records": 0}});

    let whole_dir = scratch_dir("whole");
    let mut whole = start_filter(&whole_dir, &base);
    let uninterrupted = run(&mut whole, &records);
    assert_eq!(of(&uninterrupted, BATCH).len(), 2);
    assert_eq!(of(&uninterrupted, SG).len(), 2);

    for split in [1, 2_345, 7_001, records.len() - 2] {
        let dir = scratch_dir("split");
        // The first instance saves exactly once, after record `split`, then goes away
        // (a restart, a hot reload, or a new .wasm file).
        let config = json!({"snapshot": {"every_records": split}});
        let mut first = start_filter(&dir, &config);
        let mut alerts = run(&mut first, &records[..split]);
        drop(first);
        let mut second = restart(&dir, &config);
        alerts.extend(run(&mut second, &records[split..]));
        assert!(second.captured_stderr().contains("restored state"), "{}", second.captured_stderr());
        assert_eq!(alerts, uninterrupted, "split at {split}");
    }
}

/// Fluent Bit gives a filter no shutdown call: a stop (or hot reload, or `.wasm` swap) may come
/// after any record. The journal makes every such stop invisible in the alerts.
#[test]
fn a_stop_at_any_record_changes_no_alert() {
    let mut records = example_records();
    let end = tripline::time::parse_event_time(records.last().unwrap()["eventTime"].as_str().unwrap()).unwrap();
    records.push(heartbeat(end + 3 * 3600));
    // The shipped defaults: a snapshot every 100,000 records or 4 MiB of journal, the journal
    // in between.
    let config = json!({});
    let mut whole = start_filter(&scratch_dir("whole"), &config);
    let uninterrupted = run(&mut whole, &records);
    // The seeds' four planted anomalies and what the rest of the default pack finds.
    assert!(uninterrupted.len() >= 4, "{}", uninterrupted.len());

    // Twenty stop points spread over the run by a fixed LCG, so a failure names its point.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let stop = 1 + (x >> 33) as usize % (records.len() - 1);
        let dir = scratch_dir("stop");
        let mut first = start_filter(&dir, &config);
        let mut alerts = run(&mut first, &records[..stop]);
        drop(first); // no warning, no final save
        let mut second = restart(&dir, &config);
        alerts.extend(run(&mut second, &records[stop..]));
        assert_eq!(alerts, uninterrupted, "stopped after record {stop}");
    }
}

/// The journal keeps whole-snapshot writes rare: the snapshot is rewritten every
/// `snapshot.every_records` records at most, however many windows close.
#[test]
fn snapshots_are_written_only_by_count() {
    let records = example_records();
    // The seeds alone: ESCU's excessive-scanning rule selects every Describe/List/Get call, which
    // makes most records journal entries, and the journal's size bound then compacts it as well.
    let config = seeds_only(json!({"output": {"stats_every_records": 13_000}, "snapshot": {"every_records": 10_000}}));
    let mut filter = start_filter(&scratch_dir("writes"), &config);
    let mut stats = None;
    for (i, record) in records.iter().enumerate().take(13_000) {
        let t = tripline::time::parse_event_time(record["eventTime"].as_str().unwrap()).unwrap();
        let reply = filter.filter(t as u32, record).unwrap();
        if i + 1 == 13_000 {
            stats = reply.stats();
        }
    }
    let counters = &stats.expect("stats on record 13,000")["counters"];
    assert_eq!(counters["snapshot_saves"], 1, "one save in 13,000 records (at 10,000): {counters}");
    assert_eq!(counters["journal_failures"], 0);
}

#[test]
fn a_write_killed_before_rename_leaves_the_previous_snapshot() {
    let dir = scratch_dir("killed");
    let config = json!({"snapshot": {"every_records": 1}, "output": {"stats_every_records": 1}});
    let t0 = 1_791_194_400;
    let mut first = start_filter(&dir, &config);
    run(&mut first, &[ec2_call(t0, "AIDAA", "CreateSecurityGroup", None)]);
    drop(first);
    let good = std::fs::read(dir.join("tripline-state.snap")).unwrap();
    // What a process killed mid-write leaves: a torn temp file beside the last good snapshot.
    std::fs::write(dir.join("tripline-state.tmp"), &good[..good.len() / 2]).unwrap();

    let mut second = restart(&dir, &config);
    let stats = stats_of(&mut second, t0 + 60);
    assert_eq!(stats["counters"]["restores"], 1);
    assert_eq!(stats["counters"]["restore_failures"], 0);
    assert_eq!(stats["counters"]["records"], 2, "the restored counters continue");
    assert!(tripline::snapshot::decode(&std::fs::read(dir.join("tripline-state.snap")).unwrap()).is_ok());
}

/// A save appends a section of changes to the state file; one cut short (the process killed
/// mid-write) restores what came before it, is logged and counted, drops no record, and the
/// next save rewrites the file whole.
#[test]
fn a_section_cut_short_restores_what_came_before_it() {
    let dir = scratch_dir("torn-section");
    let config = json!({"snapshot": {"every_records": 1}, "output": {"stats_every_records": 1}});
    let t0 = 1_791_194_400;
    let mut first = start_filter(&dir, &config);
    run(&mut first, &[ec2_call(t0, "AIDAA", "CreateSecurityGroup", None), ec2_call(t0 + 60, "AIDAA", "CreateSecurityGroup", None)]);
    drop(first);
    let path = dir.join("tripline-state.snap");
    let mut file = std::fs::read(&path).unwrap();
    let whole = tripline::snapshot::decode_sections(&file).unwrap();
    assert!(file.len() > whole.base_bytes, "the second save appended a section");
    let section = file[whole.base_bytes..].to_vec();
    file.extend_from_slice(&section[..section.len() / 2]);
    std::fs::write(&path, &file).unwrap();

    let mut second = restart(&dir, &config);
    let reply = second.filter((t0 + 120) as u32, &ec2_call(t0 + 120, "AIDAA", "CreateSecurityGroup", None)).unwrap();
    assert!(!reply.is_dropped());
    let counters = &reply.stats().unwrap()["counters"];
    assert_eq!((counters["restores"].clone(), counters["restore_damaged"].clone(), counters["restore_failures"].clone()), (json!(1), json!(1), json!(0)));
    assert_eq!(counters["records"], 3, "the records of the whole sections, and this one");
    assert!(second.captured_stderr().contains("ends in a damaged section"), "{}", second.captured_stderr());
    let rewritten = std::fs::read(&path).unwrap();
    let read = tripline::snapshot::decode_sections(&rewritten).unwrap();
    assert_eq!((read.base_bytes, read.damaged), (rewritten.len(), None), "the save after it rewrote the file whole");
}

#[test]
fn a_snapshot_from_an_older_module_restores() {
    let config = json!({"snapshot": {"every_records": 1}, "output": {"stats_every_records": 1}});
    let t0 = 1_791_194_400;
    let dir = scratch_dir("older");
    let mut first = start_filter(&dir, &config);
    run(&mut first, &[ec2_call(t0, "AIDAA", "CreateSecurityGroup", None)]);
    drop(first);
    // Same format version, written by an older release of the module.
    let path = dir.join("tripline-state.snap");
    let snap = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    let (header, body) = snap.split_once('\n').unwrap();
    let mut fields: Vec<&str> = header.split(' ').collect();
    assert_eq!((fields.len(), fields[1]), (5, "1"), "header: magic, format, module version, length, checksum");
    fields[2] = "0.0.1";
    std::fs::write(&path, format!("{}\n{body}", fields.join(" "))).unwrap();
    let mut second = restart(&dir, &config);
    let stats = stats_of(&mut second, t0 + 60);
    assert_eq!(stats["counters"]["restores"], 1);
    assert_eq!(stats["counters"]["restore_failures"], 0);
}

#[test]
fn damaged_or_future_snapshots_start_clean_and_drop_nothing() {
    let config = json!({"output": {"stats_every_records": 1}});
    let t0 = 1_791_194_400;
    let mut seed = start_filter(&scratch_dir("seed"), &json!({"snapshot": {"every_records": 1}}));
    run(&mut seed, &[ec2_call(t0, "AIDAA", "CreateSecurityGroup", None)]);
    let good = std::fs::read(seed.accessible_dir().join("tripline-state.snap")).unwrap();
    let future = String::from_utf8_lossy(&good).replacen("TRIPLINE-SNAPSHOT 1 ", "TRIPLINE-SNAPSHOT 2 ", 1).into_bytes();
    let mut flipped = good.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x20;
    for (name, bytes) in [
        ("truncated", good[..good.len() - 7].to_vec()),
        ("flipped", flipped),
        ("future", future),
        ("garbage", b"\x00\x01not a snapshot".to_vec()),
    ] {
        let dir = scratch_dir(name);
        std::fs::write(dir.join("tripline-state.snap"), bytes).unwrap();
        let mut filter = start_filter(&dir, &config);
        let record = ec2_call(t0, "AIDAB", "DescribeInstances", None);
        let reply = filter.filter(t0 as u32, &record).unwrap();
        assert!(!reply.is_dropped(), "{name}");
        let stats = reply.stats().unwrap();
        assert_eq!(stats["counters"]["restore_failures"], 1, "{name}");
        assert_eq!(stats["counters"]["restores"], 0, "{name}");
        assert!(filter.captured_stderr().contains("starting clean"), "{name}: {}", filter.captured_stderr());
    }
}

/// One million distinct users calling security-group APIs from one million distinct addresses
/// in one hour, with a real spike and a real batch job hidden inside.
#[test]
fn a_million_distinct_groups_stay_inside_the_caps_and_true_alerts_still_fire() {
    const FLOOD: usize = 1_000_000;
    let flood_hour = 1_791_194_400 + 14 * 86_400; // Monday, two weeks after the history starts
    let dir = scratch_dir("flood");

    // Two weeks of ordinary history for the spiking user, fitted offline with the CLI.
    let mut history = Vec::new();
    for day in (0..14).filter(|d| d % 7 < 5) {
        for hour in 0..4 {
            let start = 1_791_194_400 - 2 * 3600 + day * 86_400 + hour * 3600; // 08:00-11:59
            for i in 0..(2 + (day + hour) % 3) {
                history.push(ec2_call(start + i * 600, "AIDASPIKE", "AuthorizeSecurityGroupIngress", None));
            }
        }
    }
    let history_path = dir.join("history.ndjson");
    std::fs::write(&history_path, history.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")).unwrap();
    let baseline = dir.join("baseline.json");
    let status = tripline_cli::run(["tripline".as_ref(), "fit".as_ref(), "--quiet".as_ref(), "--detection".as_ref(), SG.as_ref(), "--out".as_ref(), baseline.as_os_str(), history_path.as_os_str()]);
    assert_eq!(status, 0);

    let config = json!({
        "models": ["baseline.json"],
        "limits": {"max_groups": 10_000, "max_values": 16, "max_pending_alerts": 1_000},
        "output": {"stats_every_records": 250_000},
        "snapshot": {"every_records": 0},
        // Learning too: the flood's groups that close normally become baselines and press on
        // a small cap, which must not push out the spiking user's established one.
        "detections": {SG: {"mode": "learn_and_judge", "max_baselines": 5_000}}
    });
    let mut filter = start_filter(&dir, &config);

    let mut alerts = Vec::new();
    let mut last_stats = Value::Null;
    let mut template = ec2_call(flood_hour, "AIDAFLOOD", "AuthorizeSecurityGroupIngress", None);
    for i in 0..FLOOD {
        let t = flood_hour + (i as i64 * 3000) / FLOOD as i64;
        template["eventTime"] = json!(rfc3339(t));
        template["userIdentity"]["principalId"] = json!(format!("AIDAFLOOD{i:07}"));
        template["sourceIPAddress"] = json!(format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255));
        let mut batch = vec![template.clone()];
        if i == FLOOD / 2 {
            // The spike (40 calls, normal is 2-4) and an exfiltration job, in a burst.
            batch.extend((0..40).map(|k| ec2_call(t + k, "AIDASPIKE", "AuthorizeSecurityGroupIngress", None)));
            batch.push(json!({"userIdentity": {"accountId": "123456789012", "invokedBy": "s3.amazonaws.com"},
                "eventTime": rfc3339(t), "eventName": "JobCreated", "sourceIPAddress": "s3.amazonaws.com",
                "userAgent": "s3.amazonaws.com", "recipientAccountId": "123456789012",
                "serviceEventDetails": {"jobArn": "arn:aws:s3:us-east-1:123456789012:job/x", "status": "New"}}));
        }
        for record in &batch {
            let reply = filter.filter(t as u32, record).unwrap();
            assert!(!reply.is_dropped());
            if let Some(stats) = reply.stats() {
                last_stats = stats;
            }
            alerts.extend(reply.alerts());
        }
    }
    alerts.extend(run(&mut filter, &[heartbeat(flood_hour + 2 * 3600)]));

    assert!(filter.captured_stderr().contains("loaded model baseline.json"), "{}", filter.captured_stderr());
    let memory = filter.memory_size();
    assert!(memory < 64 << 20, "linear memory {memory} bytes is over the 64 MiB heap of the example config");
    let counters = &last_stats["counters"];
    assert!(counters["evicted_groups"].as_u64().unwrap() > 900_000, "{counters}");
    // The state after the flood's window closed, as the module saved it.
    let state = saved_state(&dir, &config);
    assert!(state.counters().evicted_groups > 990_000);
    let model = &state.model(SG).unwrap();
    let groups = model["groups"].as_array().unwrap();
    assert!(groups.len() <= 5_000);
    // About 9,500 flood groups closed normally and were learned against a cap of 5,000.
    assert!(model["evicted_groups"].as_u64().unwrap() > 4_000, "{}", model["evicted_groups"]);
    assert!(groups.iter().any(|g| g["user"] == "AIDASPIKE"), "the established baseline survived the flood");
    let sg = of(&alerts, SG);
    assert_eq!(sg.len(), 1, "{sg:#?}");
    assert_eq!(sg[0]["result"]["user"], "AIDASPIKE");
    assert_eq!(sg[0]["result"]["security_group_api_calls"], 40);
    let batch = of(&alerts, BATCH);
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0]["result"]["aws_account_id"], "123456789012");
}

/// The nothing-lost issue's memory case, at the defaults (the whole pack as shipped): JobCreated
/// records with distinct 1 MB user agents (a group field of detection A), then 20,000 distinct
/// groups in one hour that all close at once, queue their alerts and are saved. No record traps
/// or is dropped, and linear memory (which never shrinks, so its size is the peak) stays under
/// the 64 MiB the examples give the module.
#[test]
fn huge_values_and_a_burst_of_alerts_stay_inside_the_documented_memory() {
    const HUGE: usize = 300;
    const GROUPS: usize = 20_000;
    let hour = 1_791_194_400;
    let dir = scratch_dir("memory");
    let mut filter = start_filter(&dir, &json!({"output": {"stats_every_records": 1000}}));
    let job = |t: i64, i: usize, agent: String| {
        json!({"userIdentity": {"accountId": "123456789012", "invokedBy": "s3.amazonaws.com"},
            "eventTime": rfc3339(t), "eventName": "JobCreated", "eventSource": "s3.amazonaws.com",
            "sourceIPAddress": format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255), "userAgent": agent,
            "recipientAccountId": "123456789012",
            "serviceEventDetails": {"jobArn": format!("arn:aws:s3:us-east-1:123456789012:job/{i}"), "status": "New"}})
    };
    let mut last_stats = Value::Null;
    let mut alerts = 0;
    let mut send = |filter: &mut FluentBitFilter, record: &Value| {
        let t = tripline::time::parse_event_time(record["eventTime"].as_str().unwrap()).unwrap();
        let reply = filter.filter(t as u32, record).unwrap();
        assert!(!reply.is_dropped(), "{:?}", reply.outcome);
        assert!(reply.body().is_some_and(|b| b.len() >= record.to_string().len()), "the record came back whole");
        if let Some(stats) = reply.stats() {
            last_stats = stats;
        }
        alerts += reply.alerts().len();
    };
    for i in 0..HUGE {
        send(&mut filter, &job(hour + i as i64, i, format!("{i:06}{}", "A".repeat(1 << 20))));
    }
    for i in 0..GROUPS {
        send(&mut filter, &job(hour + 600 + (i as i64 * 2400) / GROUPS as i64, HUGE + i, "aws-cli/2".into()));
    }
    // The hour closes: every group's alert is queued at once, then they ride out on records.
    for k in 0..3_000 {
        send(&mut filter, &heartbeat(hour + 4200 + k));
    }
    let memory = filter.memory_size();
    eprintln!("linear memory after the flood: {} MiB", memory >> 20);
    assert!(memory < 64 << 20, "linear memory reached {} MiB", memory >> 20);
    let counters = &last_stats["counters"];
    assert!(counters["truncated_values"].as_u64().unwrap() >= HUGE as u64, "{counters}");
    let delivered_or_dropped = alerts as u64 + counters["alerts_dropped"].as_u64().unwrap();
    assert!(delivered_or_dropped + last_stats["pending_alerts"].as_u64().unwrap() >= (HUGE + GROUPS) as u64, "{last_stats}");
    assert!(alerts > 10_000, "{alerts} alerts delivered");
}

/// A host that gives the module less memory than its caps allow (here 32 MiB, caps raised far
/// past it): records with distinct 1 MB group fields fill it. No record traps or is lost; once
/// memory runs out records pass through unread and counted, the open windows are let go, and
/// detection resumes.
#[test]
fn running_out_of_memory_passes_records_through_and_recovers() {
    let dir = scratch_dir("out-of-memory");
    let config = json!({"output": {"stats_every_records": 1},
        "limits": {"max_value_bytes": 1 << 20, "max_window_bytes": 1 << 30}});
    std::fs::write(dir.join("tripline.json"), config.to_string()).unwrap();
    let options = tripline_host_test::fluentbit::FilterOptions::new(tripline_host_test::artifacts::dist("tripline-fluentbit.wasm"), "tripline_filter")
        .accessible_path(&dir)
        .capture_output()
        .max_memory(32 << 20);
    let mut filter = FluentBitFilter::start(options).unwrap();
    let hour = 1_791_194_400;
    let mut stats = Value::Null;
    for i in 0..60 {
        let record = json!({"userIdentity": {"accountId": "123456789012"}, "eventTime": rfc3339(hour + i),
            "eventName": "JobCreated", "sourceIPAddress": "10.0.0.1", "userAgent": format!("{i:04}{}", "A".repeat(1 << 20)),
            "serviceEventDetails": {"jobArn": "arn:aws:s3:us-east-1:123456789012:job/x", "status": "New"}});
        let reply = filter.filter((hour + i) as u32, &record).unwrap();
        assert!(reply.body().is_some(), "record {i}: {:?}", reply.outcome);
        stats = reply.stats().unwrap_or(stats);
    }
    let counters = &stats["counters"];
    assert!(counters["out_of_memory"].as_u64().unwrap() > 0, "{counters}");
    assert!(counters["evicted_groups"].as_u64().unwrap() > 0, "{counters}");
    // Memory came back: an ordinary record is tagged again.
    let reply = filter.filter(hour as u32 + 100, &json!({"userIdentity": {"accountId": "1"}, "eventTime": rfc3339(hour + 100),
        "eventName": "JobCreated", "sourceIPAddress": "10.0.0.2", "userAgent": "aws-cli",
        "serviceEventDetails": {"jobArn": "arn:aws:s3:us-east-1:1:job/y", "status": "New"}})).unwrap();
    assert_eq!(reply.value().unwrap()["tripline"]["route"], "match");
}
