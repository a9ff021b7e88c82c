//! Detection B through the real Fluent Bit module: the worked example of splunk-semantics.md,
//! what counts as a call, calls with no user, the cardinality floor, `fit --until`, offline fit
//! against online learning, and the mapping of the real third-party samples.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};
use tripline_host_test::artifacts::shared_data;

/// Monday 2026-10-05T10:00:00Z: the 8-12 weekday block.
const MONDAY_10H: i64 = 1_791_194_400;
const WORKED: [usize; 16] = [2, 3, 3, 4, 2, 5, 3, 4, 3, 2, 3, 4, 3, 2, 5, 3];
const COMMANDS: [&str; 3] = ["AuthorizeSecurityGroupIngress", "CreateSecurityGroup", "RevokeSecurityGroupEgress"];

fn weekdays() -> impl Iterator<Item = i64> {
    (0..).filter(|d| d % 7 < 5)
}

/// One hour of `calls` successful security-group calls by `user`, plus noise that must not
/// count: failed calls and EC2 calls outside the six `firewall` eventNames.
fn hour_of_calls(start: i64, user: &str, calls: usize) -> Vec<Value> {
    let mut records = Vec::new();
    for i in 0..calls {
        records.push(ec2_call(start + 1790 * i as i64 / calls as i64, user, COMMANDS[i % COMMANDS.len()], None));
    }
    records.push(ec2_call(start + 1800, user, "AuthorizeSecurityGroupIngress", Some("Client.UnauthorizedOperation")));
    records.push(ec2_call(start + 1801, user, "DescribeSecurityGroups", None));
    records.push(ec2_call(start + 1802, user, "ModifySecurityGroupRules", None));
    records
}

/// `history` hours on consecutive weekdays, then the judged hour, then a heartbeat that closes it.
fn scenario(history: &[usize], judged_calls: usize) -> Vec<Value> {
    let days: Vec<i64> = weekdays().take(history.len() + 1).collect();
    let mut records = Vec::new();
    for (day, calls) in days.iter().zip(history) {
        records.extend(hour_of_calls(MONDAY_10H + day * 86_400, "AIDAWORKEDEXAMPLE", *calls));
    }
    let judged = MONDAY_10H + days[history.len()] * 86_400;
    records.extend(hour_of_calls(judged, "AIDAWORKEDEXAMPLE", judged_calls));
    records.push(heartbeat(judged + 2 * 3600));
    records
}

fn run_scenario(history: &[usize], judged_calls: usize) -> Vec<Value> {
    let dir = scratch_dir("worked");
    let mut filter = start_filter(&dir, &json!({}));
    of(&run(&mut filter, &scenario(history, judged_calls)), SG)
}

#[test]
fn worked_example_six_calls_fire_at_5_854() {
    let alerts = run_scenario(&WORKED, 6);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    let r = &a["result"];
    assert_eq!(r["security_group_api_calls"], 6);
    assert_eq!(r["expected_upper_threshold"], json!(5.854));
    assert_eq!(r["distance_from_threshold"], json!(0.146));
    assert_eq!(r["user"], "AIDAWORKEDEXAMPLE");
    assert_eq!(r["command"], json!(COMMANDS));
    let columns: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        columns,
        ["_time", "user", "command", "security_group_api_calls", "expected_upper_threshold", "distance_from_threshold"]
    );
    assert_eq!(a["risk_score"], 15);
    assert_eq!(a["risk_object"], "AIDAWORKEDEXAMPLE");
    assert_eq!(a["risk_object_type"], "user");
    assert_eq!(
        a["risk_message"],
        "user AIDAWORKEDEXAMPLE has made 6 api calls related to security groups, violating the dynamic threshold of 5.854 \
         with the following command AuthorizeSecurityGroupIngress, CreateSecurityGroup, RevokeSecurityGroupEgress."
    );
    assert_eq!(a["annotations"]["mitre_attack"], json!(["T1078.004", "T1078"]));
}

#[test]
fn worked_example_five_calls_do_not_fire() {
    assert!(run_scenario(&WORKED, 5).is_empty());
}

#[test]
fn groups_under_cardinality_16_never_fire() {
    assert!(run_scenario(&WORKED[..15], 500).is_empty());
}

/// A security-group call by an assumed-role session: its `userIdentity` has no `userName`.
fn assumed_role_call(t: i64, session: &str, event_name: &str) -> Value {
    let mut r = ec2_call(t, "unused", event_name, None);
    r["userIdentity"] = json!({
        "type": "AssumedRole",
        "principalId": format!("AROAEXAMPLEROLE:{session}"),
        "arn": format!("arn:aws:sts::123456789012:assumed-role/Deployer/{session}"),
        "accountId": "123456789012",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "Deployer"}}
    });
    r
}

/// One hour of `role_calls` by two assumed-role sessions and one call by the IAM user `alice`.
fn hour_of_role_calls(start: i64, role_calls: usize) -> Vec<Value> {
    let mut records = vec![ec2_call(start, "alice", "CreateSecurityGroup", None)];
    for i in 0..role_calls {
        let session = if i % 2 == 0 { "deploy-a" } else { "deploy-b" };
        records.push(assumed_role_call(start + 60 + 1700 * i as i64 / role_calls as i64, session, COMMANDS[i % COMMANDS.len()]));
    }
    records
}

/// Runs the CLI's `fit` with `args` over `records` (written to `dir`); returns the model.
fn fit(dir: &std::path::Path, args: &[&str], records: &[Value]) -> Value {
    let data = dir.join("history.ndjson");
    std::fs::write(&data, records.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")).unwrap();
    let model_path = dir.join("baseline.json");
    let argv = ["tripline", "fit", "--quiet", "--detection", SG].iter().chain(args).map(std::ffi::OsString::from);
    let status = tripline_cli::run(argv.chain([std::ffi::OsString::from("--out"), model_path.clone().into(), data.clone().into()]));
    assert_eq!(status, 0, "tripline fit {args:?}");
    serde_json::from_slice(&std::fs::read(&model_path).unwrap()).unwrap()
}

/// The fit of group (`user`, `HourOfDay`, weekday) in `model`.
fn weekday_fit<'a>(model: &'a Value, user: &str, hour_of_day: u64) -> &'a Value {
    let groups = model["groups"].as_array().unwrap();
    let group = groups.iter().find(|g| g["user"] == user && g["HourOfDay"] == hour_of_day && g["isWeekend"] == 0);
    &group.unwrap_or_else(|| panic!("no group for {user}, HourOfDay {hour_of_day}: {groups:#?}"))["fit"]
}

/// The Change data model fills a missing or empty `user` with `unknown` (CIM's
/// `All_Changes_fillnull_user`), so Splunk counts and baselines calls with no user under
/// `unknown`. Worked example: with `user_field: userName`, assumed-role sessions (no `userName`)
/// make the worked example's hourly calls while `alice` makes one an hour. Splunk's `unknown`
/// group is then the worked example: cardinality 16, mean 3.1875, population std 0.94992, and an
/// hour with 6 such calls fires with `expected_upper_threshold` 5.854, distance 0.146; `alice`
/// (always 1 call, std 0 taken as 1e-6, bound 1.0) does not fire. Online and fitted alike.
#[test]
fn calls_without_a_user_count_under_unknown_online_and_in_fit() {
    let days: Vec<i64> = weekdays().take(WORKED.len() + 1).collect();
    let mut history = Vec::new();
    for (day, calls) in days.iter().zip(WORKED) {
        history.extend(hour_of_role_calls(MONDAY_10H + day * 86_400, calls));
    }
    let judged_start = MONDAY_10H + days[WORKED.len()] * 86_400;
    let mut judged = hour_of_role_calls(judged_start, 6);
    judged.push(heartbeat(judged_start + 2 * 3600));
    let config = json!({"detections": {SG: {"user_field": "userName"}}});
    let assert_fires_for_unknown = |alerts: &[Value]| {
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        let r = &alerts[0]["result"];
        assert_eq!(r["user"], "unknown");
        assert_eq!(r["security_group_api_calls"], 6);
        assert_eq!(r["expected_upper_threshold"], json!(5.854));
        assert_eq!(r["distance_from_threshold"], json!(0.146));
        assert_eq!(alerts[0]["risk_object"], "unknown");
    };

    // Online: the module learns each hour as it closes, then judges the seventeenth.
    let dir = scratch_dir("no-user-online");
    let mut filter = start_filter(&dir, &config);
    let mut alerts = run(&mut filter, &history);
    alerts.extend(run(&mut filter, &judged));
    assert_fires_for_unknown(&of(&alerts, SG));

    // Offline: `fit` over the history, then the module judges with the fitted model alone.
    let dir = scratch_dir("no-user-fit");
    std::fs::write(dir.join("fit.json"), config.to_string()).unwrap();
    let model = fit(&dir, &["--config", dir.join("fit.json").to_str().unwrap()], &history);
    let unknown = weekday_fit(&model, "unknown", 8);
    assert_eq!(unknown["cardinality"], 16);
    assert!((unknown["mean"].as_f64().unwrap() - 3.1875).abs() < 1e-12, "{unknown}");
    assert!((unknown["std"].as_f64().unwrap() - 0.94992).abs() < 5e-6, "{unknown}");
    assert_eq!(weekday_fit(&model, "alice", 8)["mean"], json!(1.0));
    let judge = json!({"models": ["baseline.json"], "detections": {SG: {"user_field": "userName", "mode": "judge"}}});
    let mut filter = start_filter(&dir, &judge);
    assert_fires_for_unknown(&of(&run(&mut filter, &judged), SG));
}

/// `fit --until T` holds every hour that ends at or before T, as Splunk's baseline window
/// (`latest=-1d@d`) does. Worked example: the training hours are the weekday 23:00 hours, the
/// sixteenth ending exactly at T (midnight). Splunk's baseline has all sixteen: cardinality 16,
/// mean 3.1875, population std 0.94992, so the next weekday's 23:00 hour with 6 calls fires at
/// 5.854 (distance 0.146). One hour short, the group would stay under the cardinality cut and
/// nothing would fire. Calls after T, in the archive too, stay out of the model.
#[test]
fn fit_until_includes_the_hour_that_ends_at_until() {
    const USER: &str = "AIDAWORKEDEXAMPLE";
    let eleven_pm = |day: i64| MONDAY_10H + 13 * 3600 + day * 86_400;
    let days: Vec<i64> = weekdays().take(WORKED.len() + 1).collect();
    let mut archive = Vec::new();
    for (day, calls) in days.iter().zip(WORKED) {
        archive.extend(hour_of_calls(eleven_pm(*day), USER, calls));
    }
    let until = eleven_pm(days[WORKED.len() - 1]) + 3600;
    let judged_start = eleven_pm(days[WORKED.len()]);
    archive.extend(hour_of_calls(judged_start, USER, 40));

    let dir = scratch_dir("fit-until");
    let model = fit(&dir, &["--until", &rfc3339(until)], &archive);
    let fitted = weekday_fit(&model, USER, 20);
    assert_eq!(fitted["cardinality"], 16, "{fitted}");
    assert!((fitted["mean"].as_f64().unwrap() - 3.1875).abs() < 1e-12, "{fitted}");
    assert!((fitted["std"].as_f64().unwrap() - 0.94992).abs() < 5e-6, "{fitted}");

    let mut filter = start_filter(&dir, &json!({"models": ["baseline.json"], "detections": {SG: {"mode": "judge"}}}));
    let mut judged = hour_of_calls(judged_start, USER, 6);
    judged.push(heartbeat(judged_start + 2 * 3600));
    let alerts = of(&run(&mut filter, &judged), SG);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["result"]["expected_upper_threshold"], json!(5.854));
    assert_eq!(alerts[0]["result"]["distance_from_threshold"], json!(0.146));
}

/// The learned model as the module's saved state holds it.
fn model_from_saved_state(dir: &std::path::Path, config: &Value) -> Value {
    saved_state(dir, config).model(SG).unwrap()
}

#[test]
fn offline_fit_and_online_learning_give_identical_models() {
    let records = example_records();
    let last = records.last().unwrap()["eventTime"].as_str().unwrap().to_string();
    let end = chrono::DateTime::parse_from_rfc3339(&last).unwrap().timestamp();
    let heartbeat = heartbeat(end + 3 * 3600);

    // Online, inside the module: learn from every hour as it closes.
    let dir = scratch_dir("online");
    let config = json!({"detections": {SG: {"mode": "learn"}}, "snapshot": {"every_records": 0}});
    let mut filter = start_filter(&dir, &config);
    run(&mut filter, &records);
    run(&mut filter, std::slice::from_ref(&heartbeat));
    let online = model_from_saved_state(&dir, &config);

    // Offline, the CLI's `fit` over the same history.
    let history: Vec<Value> = records.iter().chain([&heartbeat]).cloned().collect();
    let offline = fit(&dir, &[], &history);

    assert_eq!(offline["groups"].as_array().unwrap().len(), online["groups"].as_array().unwrap().len());
    assert!(offline["groups"].as_array().unwrap().len() >= 20);
    assert_eq!(offline, online, "bit-identical models");

    // And the model is the plain two-pass normal fit of the hourly counts.
    let g = &online["groups"][0];
    let (n, mean) = (g["fit"]["cardinality"].as_u64().unwrap(), g["fit"]["mean"].as_f64().unwrap());
    let total: f64 = g["days"].as_array().unwrap().iter().map(|d| d["n"].as_f64().unwrap() * d["mean"].as_f64().unwrap()).sum();
    assert!((total / n as f64 - mean).abs() < 1e-9);
}

/// What the Splunk Add-on 5.x + Change data model would count, computed independently:
/// per principalId (`unknown` where it is missing or empty, as the data model fills it), the
/// total successful firewall calls and the number of distinct hours.
fn expected_counts(records: &[Value]) -> BTreeMap<String, (u64, u64)> {
    // Written out from splunk-semantics.md, not taken from the code under test.
    let six = [
        "CreateSecurityGroup",
        "DeleteSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress",
    ];
    let mut hours: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
    for r in records {
        let user = match r["userIdentity"]["principalId"].as_str() {
            None | Some("") => "unknown",
            Some(principal) => principal,
        };
        if !six.contains(&r["eventName"].as_str().unwrap_or("")) || r.get("errorCode").is_some() {
            continue;
        }
        let t = tripline::time::parse_event_time(r["eventTime"].as_str().unwrap()).unwrap();
        *hours.entry(user.to_string()).or_default().entry(t.div_euclid(3600)).or_default() += 1;
    }
    hours.into_iter().map(|(u, h)| (u, (h.values().sum(), h.len() as u64))).collect()
}

#[test]
fn third_party_samples_map_to_the_change_data_model() {
    let mut records: Vec<Value> = Vec::new();
    for line in std::fs::read_to_string(shared_data("panther_analysis_cloudtrail_test_events.jsonl")).unwrap().lines() {
        records.push(serde_json::from_str::<Value>(line).unwrap()["log"].clone());
    }
    for line in std::fs::read_to_string(shared_data("security_content_data_sources_cloudtrail_examples.jsonl")).unwrap().lines() {
        records.push(serde_json::from_str(line).unwrap());
    }
    // Replayed in event-time order, as an archive replay would be.
    let time = |r: &Value| r["eventTime"].as_str().and_then(tripline::time::parse_event_time).unwrap_or(i64::MIN);
    records.sort_by_key(time);
    let expected = expected_counts(&records);
    assert!(expected.len() >= 2, "the samples hold security-group calls by several principals");

    let dir = scratch_dir("samples");
    let config = json!({"detections": {SG: {"mode": "learn", "horizon_days": null}}});
    let mut filter = start_filter(&dir, &config);
    let end = records.iter().map(time).max().unwrap();
    let mut alerts = run(&mut filter, &records);
    alerts.extend(run(&mut filter, &[heartbeat(end + 3 * 3600)]));
    assert!(of(&alerts, SG).is_empty(), "learn mode never judges");

    let model = model_from_saved_state(&dir, &config);
    let mut learned: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for g in model["groups"].as_array().unwrap() {
        let entry = learned.entry(g["user"].as_str().unwrap().to_string()).or_default();
        for d in g["days"].as_array().unwrap() {
            let n = d["n"].as_u64().unwrap();
            entry.0 += (d["mean"].as_f64().unwrap() * n as f64).round() as u64;
            entry.1 += n;
        }
    }
    assert_eq!(learned, expected);
}
