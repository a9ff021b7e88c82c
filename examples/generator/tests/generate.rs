use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tripline_generate::{generate, Options, Summary, MAX_JITTER_SECS, SECURITY_GROUP_EVENTS};

fn run(opts: &Options) -> (Vec<u8>, Summary) {
    let mut buf = Vec::new();
    let summary = generate(opts, &mut buf).expect("writing to a Vec cannot fail");
    (buf, summary)
}

fn parse(buf: &[u8]) -> Vec<Value> {
    std::str::from_utf8(buf)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON ({e}): {l}")))
        .collect()
}

fn time(r: &Value) -> DateTime<Utc> {
    let s = r["eventTime"].as_str().expect("eventTime is a string");
    DateTime::parse_from_rfc3339(s).expect("eventTime parses").with_timezone(&Utc)
}

fn hour(r: &Value) -> String {
    format!("{}:00:00Z", &r["eventTime"].as_str().unwrap()[..13])
}

/// Successful security-group calls per (principalId, clock hour).
fn sg_counts(recs: &[Value]) -> BTreeMap<(String, String), (u64, BTreeSet<String>)> {
    let mut m: BTreeMap<(String, String), (u64, BTreeSet<String>)> = BTreeMap::new();
    for r in recs {
        let name = r["eventName"].as_str().unwrap();
        if !SECURITY_GROUP_EVENTS.contains(&name) || r.get("errorCode").is_some() {
            continue;
        }
        let who = r["userIdentity"]["principalId"].as_str().unwrap().to_string();
        let e = m.entry((who, hour(r))).or_default();
        e.0 += 1;
        e.1.insert(name.to_string());
    }
    m
}

fn check_plants(recs: &[Value], summary: &Summary) {
    let spikes: BTreeSet<(String, String, u64)> = summary
        .planted
        .iter()
        .filter(|p| p.kind == "security_group_spike")
        .map(|p| (p.actor.clone(), p.hour_start.clone(), p.count))
        .collect();
    assert_eq!(spikes.len(), 2);
    let big: BTreeSet<(String, String, u64)> = sg_counts(recs)
        .into_iter()
        .filter(|(_, (n, _))| *n >= 20)
        .map(|((who, h), (n, names))| {
            assert!(names.len() >= 3, "spike {who} {h} mixes only {names:?}");
            (who, h, n)
        })
        .collect();
    assert_eq!(big, spikes, "only the planted spikes reach 20 calls/hour");

    let mut jobs: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in recs.iter().filter(|r| r["eventName"] == "JobCreated") {
        assert_eq!(r["eventType"], "AwsServiceEvent");
        assert_eq!(r["serviceEventDetails"]["status"], "New");
        let acct = r["recipientAccountId"].as_str().unwrap().to_string();
        *jobs.entry((acct, hour(r))).or_default() += 1;
    }
    let planted_jobs: BTreeMap<(String, String), u64> = summary
        .planted
        .iter()
        .filter(|p| p.kind == "batch_job_created")
        .map(|p| ((p.actor.clone(), p.hour_start.clone()), p.count))
        .collect();
    assert_eq!(jobs, planted_jobs);
    assert_eq!(jobs.values().sum::<u64>(), 4);
    assert_eq!(jobs.len(), 2);
}

#[test]
fn deterministic_and_seed_sensitive() {
    let (a, sa) = run(&Options::default());
    let (b, sb) = run(&Options::default());
    assert!(a == b, "same options must give byte-identical output");
    assert_eq!(sa, sb);
    let (c, _) = run(&Options { seed: 8, ..Options::default() });
    assert!(a != c, "a different seed must change the output");
}

#[test]
fn default_data_set_is_well_formed_and_planted() {
    let (buf, summary) = run(&Options::default());
    let recs = parse(&buf);
    assert_eq!(recs.len() as u64, summary.records);

    let start = Options::default().start;
    let end = start + chrono::Duration::weeks(4);
    let mut max_seen: Option<DateTime<Utc>> = None;
    let mut worst = 0;
    for r in &recs {
        assert!(r.is_object());
        assert!(r["eventName"].is_string() && r["userIdentity"].is_object(), "{r}");
        let t = time(r);
        assert!(t >= start && t < end + chrono::Duration::hours(1), "{t} outside the run");
        if let Some(m) = max_seen {
            worst = worst.max((m - t).num_seconds());
        }
        max_seen = Some(max_seen.map_or(t, |m| m.max(t)));

        match r["eventType"].as_str().unwrap() {
            "AwsApiCall" | "AwsConsoleSignIn" => {
                let id = &r["userIdentity"];
                match id["type"].as_str().unwrap() {
                    "IAMUser" => assert!(id["userName"].is_string() && id["principalId"].as_str().unwrap().starts_with("AIDA")),
                    "AssumedRole" => {
                        assert!(id.get("userName").is_none());
                        assert_eq!(id["sessionContext"]["sessionIssuer"]["type"], "Role");
                    }
                    "Root" => assert_eq!(id["principalId"], id["accountId"]),
                    other => panic!("unexpected identity type {other}"),
                }
            }
            "AwsServiceEvent" => assert_eq!(r["userIdentity"]["invokedBy"], "s3.amazonaws.com"),
            other => panic!("unexpected eventType {other}"),
        }
        if r.get("errorCode").is_some() {
            assert!(r["errorMessage"].is_string() && r["responseElements"].is_null());
        }
    }
    assert!(worst > 0, "some delivery jitter is expected");
    assert!(worst <= MAX_JITTER_SECS, "out of order by {worst}s");

    check_plants(&recs, &summary);

    let hours: Vec<&str> = summary.planted.iter().map(|p| p.hour_start.as_str()).collect();
    assert_eq!(
        hours,
        ["2026-10-27T10:00:00Z", "2026-10-28T02:00:00Z", "2026-10-29T21:00:00Z", "2026-10-30T15:00:00Z"]
    );
}

#[test]
fn other_seeds_keep_the_plants_unique() {
    for seed in [1, 2, 99] {
        let (buf, summary) = run(&Options { seed, weeks: 2, ..Options::default() });
        check_plants(&parse(&buf), &summary);
    }
}

#[test]
fn zero_weeks_is_empty() {
    let (buf, summary) = run(&Options { weeks: 0, ..Options::default() });
    assert!(buf.is_empty());
    assert_eq!(summary, Summary { records: 0, planted: vec![] });
}

#[test]
fn organizations_have_their_own_accounts_and_cross_account_calls_reach_both() {
    let opts = Options { weeks: 1, organizations: 3, cross_account: true, ..Options::default() };
    let (buf, summary) = run(&opts);
    let recs = parse(&buf);
    let accounts: BTreeSet<&str> = recs.iter().map(|r| r["recipientAccountId"].as_str().unwrap()).collect();
    assert_eq!(accounts.len(), 6);
    // Identities are derived from the account: no principal is shared between organisations.
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &recs {
        if let (Some(p), Some(a)) = (r["userIdentity"]["principalId"].as_str(), r["userIdentity"]["accountId"].as_str()) {
            assert_eq!(*owner.entry(p).or_insert(a), a, "{p} acts for one account");
        }
    }
    assert_eq!(summary.planted.len(), 12, "each organisation has the plants");
    // A cross-account call is delivered twice: one sharedEventID, two eventIDs, both accounts.
    let mut shared: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for r in &recs {
        if let Some(id) = r["sharedEventID"].as_str() {
            shared.entry(id).or_default().push(r);
        }
    }
    assert!(!shared.is_empty());
    for copies in shared.values() {
        let [caller, owner] = copies[..] else { panic!("two deliveries: {copies:?}") };
        assert_eq!(caller["eventName"], "Decrypt");
        assert_ne!(caller["eventID"], owner["eventID"]);
        assert_eq!(caller["recipientAccountId"], caller["userIdentity"]["accountId"]);
        assert_eq!(owner["recipientAccountId"], owner["resources"][0]["accountId"]);
        assert_ne!(caller["recipientAccountId"], owner["recipientAccountId"]);
    }
    // Without cross-account calls, the first organisation's traffic is the default data set's.
    let (default, _) = run(&Options { weeks: 1, ..Options::default() });
    let first: BTreeSet<String> = parse(&default).iter().map(|r| r["eventID"].to_string()).collect();
    let (three, _) = run(&Options { weeks: 1, organizations: 3, ..Options::default() });
    let ours: BTreeSet<String> = parse(&three)
        .iter()
        .filter(|r| tripline_generate::ACCOUNTS.contains(&r["recipientAccountId"].as_str().unwrap()))
        .map(|r| r["eventID"].to_string())
        .collect();
    assert_eq!(ours, first);
}
