//! The `tripline` command as a user gets it: installed with `cargo install --path cli --root`
//! a temporary directory, and run from outside the source tree on the example data (plain, .gz
//! and as a CloudTrail S3 export), checking exit codes and the messages for a missing file, a bad
//! configuration and a bad rule, which must be the module's own.
//!
//! The install builds in the test's own target directory (CARGO_TARGET_DIR, the parent of
//! CARGO_TARGET_TMPDIR), where `cargo test --release` has just built the CLI's library and every
//! dependency in the release profile: it costs little more than linking the binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `cargo install --path cli --root <root>`, run from `root` (outside the tree); the binary.
fn install(root: &Path) -> PathBuf {
    let started = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["install", "--locked", "--quiet", "--path"])
        .arg(repo().join("cli"))
        .arg("--root")
        .arg(root)
        .env("CARGO_TARGET_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap())
        .current_dir(root)
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo install failed:\n{}", String::from_utf8_lossy(&output.stderr));
    eprintln!("cargo install --path cli: {:.1} s", started.elapsed().as_secs_f64());
    root.join("bin/tripline")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(bin: &Path, cwd: &Path, args: &[&str]) -> Run {
    let Output { status, stdout, stderr } = Command::new(bin).args(args).current_dir(cwd).env("COLUMNS", "200").output().unwrap();
    let run = Run { code: status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&stdout).into(), stderr: String::from_utf8_lossy(&stderr).into() };
    eprintln!("$ tripline {}\n  exit {}\n{}{}", args.join(" "), run.code, run.stdout, run.stderr);
    run
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn alerts(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The example data, the command installed in a temporary root, and a working directory.
struct Installed {
    data: PathBuf,
    bin: PathBuf,
    work: tempfile::TempDir,
    _root: tempfile::TempDir,
}

fn installed() -> Installed {
    let data = repo().join("examples/data/generated/cloudtrail.ndjson");
    assert!(data.is_file(), "{} is missing: run `make example-data` first", data.display());
    let root = tempfile::tempdir().unwrap();
    Installed { data, bin: install(root.path()), work: tempfile::tempdir().unwrap(), _root: root }
}

/// `config` with the detections off that would bury the planted alerts: the example data is seed
/// B's security-group traffic, on every call of which Sigma's "Ingress/Egress Security Group
/// Modification" (on by default) fires, and on whose changes and provisioning sources two ESCU
/// Anomaly rules fire too. Left: the planted alerts, and Sigma's on the root logins.
fn planted_only(mut config: Value) -> String {
    config["detections"] = json!({
        "sigma_aws_cloudtrail_security_group_change_ingress_egress": {"enabled": false},
        "cloud_security_groups_modifications_by_user": {"enabled": false},
        "cloud_provisioning_activity_from_previously_unseen_ip_address": {"enabled": false}});
    config.to_string()
}

#[test]
fn the_installed_command_on_the_example_data() {
    let Installed { data, bin, work, _root } = installed();
    let w = work.path();

    // Help with examples, completions, usage errors.
    let help = run(&bin, w, &["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("tripline replay"));
    let completions = run(&bin, w, &["completions", "bash"]);
    assert!(completions.code == 0 && completions.stdout.contains("_tripline"));
    assert_eq!(run(&bin, w, &["replay"]).code, 2, "no input file is a usage error");
    assert_eq!(run(&bin, w, &["frobnicate"]).code, 2);

    // fit on the first three weeks, then replay all four with that baseline: the planted anomalies.
    let etc = w.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let fit = run(&bin, w, &["fit", "--detection", "abnormally_high_cloud_security_group_api_calls", "--until", "2026-10-26T00:00:00Z", "--out", path(&etc.join("baseline.json")), path(&data)]);
    assert_eq!(fit.code, 0);
    let not_learning = run(&bin, w, &["fit", "--detection", "aws_exfiltration_via_batch_service", "--out", "x.json", path(&data)]);
    assert!(not_learning.code == 2 && not_learning.stderr.contains("learns nothing"));
    std::fs::write(etc.join("tripline.json"), planted_only(json!({"models": ["baseline.json"]}))).unwrap();
    assert_eq!(run(&bin, w, &["check", "etc"]).code, 0, "the configuration checks");
    let replay = run(&bin, w, &["replay", "--config", "etc", "--alerts", "plain.ndjson", path(&data)]);
    assert_eq!(replay.code, 1, "alerts are findings");
    let planted: Vec<Value> = serde_json::from_slice(&std::fs::read(repo().join("examples/data/generated/planted.json")).unwrap()).unwrap();
    let plain = alerts(&w.join("plain.ndjson"));
    for p in &planted {
        let actor = p["actor"].as_str().unwrap();
        assert!(plain.iter().any(|a| a["risk_object"] == actor), "planted {actor} alerts");
        assert!(replay.stdout.contains(actor), "the table shows {actor}");
    }

    // The same as .gz: the same alerts.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&data).unwrap()).unwrap();
    std::fs::write(w.join("cloudtrail.json.gz"), gz.finish().unwrap()).unwrap();
    let replay_gz = run(&bin, w, &["replay", "--config", "etc/tripline.json", "--alerts", "gz.ndjson", "cloudtrail.json.gz"]);
    assert_eq!(replay_gz.code, 1);
    assert_eq!(alerts(&w.join("gz.ndjson")), plain, ".gz gives the same alerts");

    // A CloudTrail S3 export with a batch job: one alert; a record nothing selects: exit 0.
    let job: Value = serde_json::from_slice(&std::fs::read(repo().join("../shared/data/splunk_security_content_jobcreated_example.json")).unwrap_or_else(|_| {
        br#"{"eventVersion":"1.09","userIdentity":{"accountId":"111111111111","invokedBy":"s3.amazonaws.com"},"eventTime":"2023-04-24T19:10:00Z","eventSource":"s3.amazonaws.com","eventName":"JobCreated","awsRegion":"us-east-1","sourceIPAddress":"s3.amazonaws.com","userAgent":"s3.amazonaws.com","recipientAccountId":"111111111111"}"#.to_vec()
    }))
    .unwrap();
    std::fs::write(w.join("export.json"), json!({"Records": [job]}).to_string()).unwrap();
    let export = run(&bin, w, &["replay", "--quiet", "--alerts", "export.ndjson", "export.json"]);
    assert_eq!(export.code, 1);
    assert_eq!(alerts(&w.join("export.ndjson")).len(), 1, "one batch-job alert");
    std::fs::write(w.join("quiet.ndjson"), r#"{"eventName":"Decrypt","eventTime":"2026-10-01T00:00:00Z","eventSource":"kms.amazonaws.com"}"#).unwrap();
    assert_eq!(run(&bin, w, &["replay", "quiet.ndjson"]).code, 0, "no alerts, exit 0");

    // explain: selected (0) and not (1).
    std::fs::write(w.join("job.json"), job.to_string()).unwrap();
    let explain = run(&bin, w, &["explain", "aws_exfiltration_via_batch_service", "job.json"]);
    assert_eq!(explain.code, 0);
    assert!(explain.stdout.contains("selected"));
    let not = run(&bin, w, &["explain", "aws_exfiltration_via_batch_service", "quiet.ndjson"]);
    assert_eq!(not.code, 1);
    assert!(not.stdout.contains("JobCreated"), "says which eventName the rule wants");
    // explain of a `join`: a main-search record waits as a main row; a subsearch record is counted in a group.
    let case: Value =
        serde_json::from_slice(&std::fs::read(repo().join("rules/escu/tests/aws_createloginprofile.json")).unwrap()).unwrap();
    for (file, record, says) in [
        ("profile.json", &case["positive"][0], "selected: a main row of the `join`, src_ip=\"73.15.72.101\" eventName=\"CreateLoginProfile\" new_login_profile=\"AtomicRedTeam\""),
        ("login.json", &case["positive"][1], "selected: counted in group eventSource=\"signin.amazonaws.com\""),
    ] {
        std::fs::write(w.join(file), record.to_string()).unwrap();
        let explained = run(&bin, w, &["explain", "aws_createloginprofile", file]);
        assert_eq!(explained.code, 0, "{}", explained.stdout);
        assert!(explained.stdout.contains(says), "{}", explained.stdout);
    }

    // A missing file: one line, naming it, exit 2.
    let missing = run(&bin, w, &["replay", "nope.ndjson"]);
    assert_eq!(missing.code, 2);
    assert_eq!(missing.stderr.lines().count(), 1);
    assert!(missing.stderr.contains("nope.ndjson: no such file"));

    // An output that cannot be written: one line, naming it, and nothing half-written.
    let unwritable = run(&bin, w, &["fit", "--detection", "abnormally_high_cloud_security_group_api_calls", "--out", "no/such/dir/baseline.json", path(&data)]);
    assert_eq!(unwritable.code, 2);
    assert_eq!(unwritable.stderr.lines().count(), 1);
    assert!(unwritable.stderr.contains("no/such/dir/baseline.json: cannot write"));

    // A bad configuration: the module's own message, at the file; check fails (1), replay stops (2).
    let bad = w.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let document = br#"{"window": {"length_seconds": -5}}"#;
    std::fs::write(bad.join("tripline.json"), document).unwrap();
    let module_says = tripline::Engine::from_json(document).config_error().expect("the module refuses it").to_string();
    let check = run(&bin, w, &["check", "bad"]);
    assert_eq!(check.code, 1);
    assert!(check.stdout.contains(&format!("bad/tripline.json: {module_says}")), "the module's message: {module_says}");
    let refused = run(&bin, w, &["replay", "--config", "bad", path(&data)]);
    assert_eq!(refused.code, 2);
    assert_eq!(refused.stderr.lines().count(), 1);
    assert!(refused.stderr.contains(&module_says));

    // A bad rule file named by the configuration: the module's message, at the rule file.
    let rules = w.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let document = br#"{"rules": ["mine.json"]}"#;
    let rule = br#"{"metadata": {"id": "x", "key": "mine"}, "selection": {"all": []}}"#;
    std::fs::write(rules.join("tripline.json"), document).unwrap();
    std::fs::write(rules.join("mine.json"), rule).unwrap();
    let engine = tripline::Engine::from_json_with_rules(document, |_| Ok(rule.to_vec()));
    let module_says = engine.rule_errors().first().expect("the module refuses the rule").clone();
    let check = run(&bin, w, &["check", "rules"]);
    assert_eq!(check.code, 1);
    assert!(check.stdout.contains(&format!("rules/{module_says}")), "the module's message: {module_says}");
    assert_eq!(run(&bin, w, &["check", "--rules", "rules/mine.json"]).code, 1);

    // A partition moving: the open groups of its key leave one instance's state (its journal
    // folded in) and join another's, which starts from nothing.
    let per_account = br#"{"metadata": {"id": "p", "key": "per_account", "name": "Per account", "version": 1,
        "analytic_type": "TTP", "status": "production", "impact": 1, "confidence": 1, "message": "m"},
        "source": {"kind": "local"}, "selection": {"all": []},
        "stats": {"by": ["recipientAccountId"], "functions": [{"func": "count", "name": "count"}]}}"#;
    let document = br#"{"rules": ["per-account.json"]}"#;
    let instance = |dir: &str| {
        let engine = tripline::Engine::from_json_with_rules(document, |_| Ok(per_account.to_vec()));
        let state = std::fs::read(w.join(dir).join("tripline-state.snap")).ok();
        (engine, state)
    };
    for dir in ["one", "two"] {
        std::fs::create_dir_all(w.join(dir)).unwrap();
        std::fs::write(w.join(dir).join("tripline.json"), document).unwrap();
        std::fs::write(w.join(dir).join("per-account.json"), per_account).unwrap();
    }
    let (mut one, _) = instance("one");
    let text = std::fs::read_to_string(&data).unwrap();
    let records: Vec<&str> = text.lines().take(300).collect();
    records.iter().for_each(|r| drop(one.process(r.as_bytes(), None)));
    one.take_alerts(usize::MAX);
    std::fs::write(w.join("one/tripline-state.snap"), one.snapshot().unwrap()).unwrap();
    let closing = |dir: &str| -> Vec<Value> {
        let (mut engine, state) = instance(dir);
        if let Some(state) = state {
            engine.restore(&state).unwrap();
        }
        engine.finish_all();
        engine.take_alerts(usize::MAX).iter().map(|a| serde_json::from_str::<Value>(a.get()).unwrap()["result"].clone()).collect()
    };
    let before = closing("one");
    let moving: Value = serde_json::from_str::<Value>(records.last().unwrap()).unwrap()["recipientAccountId"].clone();
    let export = run(&bin, w, &["state", "export", "--key", moving.as_str().unwrap(), "--out", "moved.snap", "one"]);
    assert!(export.code == 0 && export.stdout.contains("per_account: 1"));
    assert_eq!(run(&bin, w, &["state", "import", "two", "moved.snap"]).code, 0);
    let (stayed, moved) = (closing("one"), closing("two"));
    assert!(stayed.iter().all(|r| r["recipientAccountId"] != moving) && moved.iter().all(|r| r["recipientAccountId"] == moving));
    assert_eq!(moved.len(), 1);
    assert_eq!([stayed, moved].concat().len(), before.len(), "every open group is in one place");
    assert!(before.iter().any(|r| r["recipientAccountId"] == moving));
    assert_eq!(run(&bin, w, &["state", "import", "two", "moved.snap"]).code, 2, "a group open on both sides is refused");

    // compile and coverage through the compiler's library.
    let coverage = run(&bin, w, &["coverage"]);
    assert!(coverage.code == 0 && coverage.stdout.contains("# ESCU coverage"));
    // Partition safety of the built-in rules under a key given on the command line: the caller's
    // ARN determines the caller's account, not the account an event was delivered to.
    let row = |out: &Run, key: &str| out.stdout.lines().find(|l| l.starts_with(&format!("| `{key}` |"))).map(str::to_string);
    let by_caller = run(&bin, w, &["coverage", "--partition-key", "userIdentity.accountId"]);
    assert_eq!(by_caller.code, 0);
    assert!(row(&by_caller, "aws_iam_accessdenied_discovery_events").is_some_and(|r| r.contains("| yes |")), "{}", by_caller.stdout);
    let by_recipient = run(&bin, w, &["coverage", "--partition-key", "recipientAccountId"]);
    assert!(row(&by_recipient, "aws_iam_accessdenied_discovery_events").is_some_and(|r| r.contains("| no |")));
    assert!(row(&by_recipient, "aws_iam_delete_policy").is_some_and(|r| r.contains("| yes |") && r.contains("`eventID`")));
    let escu = repo().join("../shared/escu");
    if escu.is_dir() {
        let yml = escu.join("detections/cloud/aws_exfiltration_via_batch_service.yml");
        let compiled = run(&bin, w, &["compile", "--out", "pack.json", path(&yml)]);
        assert_eq!(compiled.code, 0);
        let pack: Value = serde_json::from_slice(&std::fs::read(w.join("pack.json")).unwrap()).unwrap();
        assert_eq!(pack["rules"][0]["metadata"]["key"], "aws_exfiltration_via_batch_service");
        assert_eq!(run(&bin, w, &["check", "--rules", "pack.json"]).code, 1, "its key is taken by the built-in rule");
    }
    assert!(coverage.stdout.contains("# Sigma coverage") && coverage.stdout.contains("**57 of 57**"));
    // A user's own Sigma rules, one that compiles and one that does not, in nested folders.
    let mine = w.join("sigma/nested");
    std::fs::create_dir_all(&mine).unwrap();
    let rule = |detection: &str| {
        format!("title: T\nid: 9f0e7d6c-0000-4000-8000-00000000000a\nstatus: test\nlevel: high\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n{detection}\n")
    };
    std::fs::write(w.join("sigma/login.yml"), rule("    sel:\n        eventName: ConsoleLogin\n        userAgent|contains: 'curl'\n    condition: sel")).unwrap();
    std::fs::write(mine.join("words.yml"), rule("    words:\n        - evil\n    condition: words")).unwrap();
    let compiled = run(&bin, w, &["compile", "--out", "sigma.json", "sigma"]);
    assert_eq!(compiled.code, 1, "one rule does not compile");
    assert!(compiled.stdout.contains("not compiled  sigma_words: `words`: a keyword search"), "{}", compiled.stdout);
    let pack: Value = serde_json::from_slice(&std::fs::read(w.join("sigma.json")).unwrap()).unwrap();
    assert_eq!((pack["collection"].as_str(), pack["rules"][0]["metadata"]["key"].as_str()), (Some("sigma"), Some("sigma_login")));
    assert_eq!(run(&bin, w, &["check", "--rules", "sigma.json"]).code, 0, "the module takes the compiled rule");
    let table = run(&bin, w, &["coverage", "sigma"]);
    assert!(table.code == 0 && table.stdout.contains("| `sigma_login` |") && table.stdout.contains("**1 of 2**"), "{}", table.stdout);
}

/// The cells of a replay table's rows, cut at the header's column starts.
fn table_rows(stdout: &str) -> Vec<Vec<String>> {
    let mut lines = stdout.lines().filter(|l| l.starts_with('│')).map(|l| l.chars().collect::<Vec<char>>());
    let header = lines.next().expect("a table");
    // A column starts after the border's "│ " or after two spaces (a heading has one at most).
    let starts: Vec<usize> = (2..header.len()).filter(|&i| !matches!(header[i], ' ' | '│') && (i == 2 || header[i - 2..i] == [' ', ' '])).collect();
    lines
        .map(|row| {
            let bounds: Vec<usize> = starts.iter().copied().chain([row.len() - 1]).collect();
            bounds.windows(2).map(|b| row[b[0]..b[1]].iter().collect::<String>().trim().to_string()).collect()
        })
        .collect()
}

/// `output.alert_format`: replaying the example data shows the same table whichever format the
/// alerts are written in, each column read from that format's own fields, and the rows are the
/// alerts of the Splunk risk events, in their order.
#[test]
fn the_replay_table_is_the_same_in_every_alert_format() {
    let Installed { data, bin, work, _root } = installed();
    let w = work.path();
    let mut tables = Vec::new();
    for format in ["splunk", "ocsf", "ecs"] {
        std::fs::create_dir_all(w.join(format)).unwrap();
        std::fs::write(w.join(format).join("tripline.json"), planted_only(json!({"output": {"alert_format": format}}))).unwrap();
        let alerts_file = format!("{format}.ndjson");
        let replay = run(&bin, w, &["replay", "--quiet", "--max-rows", "1000", "--config", format, "--alerts", &alerts_file, path(&data)]);
        assert_eq!(replay.code, 1, "alerts are findings");
        let rows = table_rows(&replay.stdout);
        assert_eq!(rows.len(), alerts(&w.join(&alerts_file)).len(), "a row per alert\n{}", replay.stdout);
        tables.push((format, rows));
    }

    let (_, splunk) = &tables[0];
    let risk_events = alerts(&w.join("splunk.ndjson"));
    assert!(risk_events.len() >= 4, "the example data raises alerts ({})", risk_events.len());
    for (row, risk) in splunk.iter().zip(&risk_events) {
        let [detection, start, risk_object, score, message] = &row[..] else { panic!("five columns: {row:?}") };
        assert_eq!(detection, risk["detection"]["name"].as_str().unwrap());
        assert_eq!(start, risk["window"]["start"].as_str().unwrap());
        assert_eq!(risk_object, risk["risk_object"].as_str().unwrap_or("-"), "a Sigma rule names no risk object");
        assert_eq!(score, &risk["risk_score"].to_string());
        // A long message is cut at the table's width.
        assert!(risk["risk_message"].as_str().unwrap().starts_with(message.trim_end_matches('…')), "{message}");
        assert!(!message.is_empty() && message != "-");
    }
    let planted: Vec<Value> = serde_json::from_slice(&std::fs::read(repo().join("examples/data/generated/planted.json")).unwrap()).unwrap();
    for p in &planted {
        assert!(splunk.iter().any(|row| row[2] == p["actor"].as_str().unwrap()), "the planted {} alerts", p["actor"]);
    }
    for (format, rows) in &tables[1..] {
        assert_eq!(rows, splunk, "{format}: the same rows as the Splunk risk events");
    }
}
