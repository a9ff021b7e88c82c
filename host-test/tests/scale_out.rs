//! Scale-out (docs/scale-out.md): a month of generated CloudTrail for twenty accounts (ten
//! organisations, with cross-account KMS calls CloudTrail delivers to both accounts), split over
//! N = 1, 3 and 8 instances by `recipientAccountId` as a keyed Kafka producer or a per-account S3
//! prefix would split it, each instance its own engine (the core natively, as the batch hosts run
//! it; host-test/tests/equivalence.rs holds every host to the same alerts). For every rule the
//! compiler's partition analysis marks exact, the union of the instances' alerts must equal the
//! single instance's alerts exactly; for the rules it marks not exact whose groups the data
//! splits, they must differ as predicted: the same groups, cut into one part per partition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde_json::Value;
use tripline::config::Config;
use tripline::rule::{parse_rule_file, Rule};
use tripline::Engine;
use tripline_compiler::partition::{analyse, key_column, DEFAULT_KEY};
use tripline_generate::{generate, Options};

/// Rules of this test's own, beside the built-in pack: one grouped by the key, two grouped by
/// fields that do not determine it (the caller's account, which cross-account calls carry into
/// the resource owner's partition; the source address, which organisations share).
const OWN_RULES: &str = r#"[
  {"metadata": {"id": "scale-out-1", "key": "calls_per_recipient_account", "name": "Calls per recipient account",
                "version": 1, "analytic_type": "TTP", "status": "production", "impact": 10, "confidence": 10,
                "message": "$count$ calls to $recipientAccountId$"},
   "source": {"kind": "local"}, "selection": {"all": []},
   "stats": {"by": ["recipientAccountId"], "functions": [{"func": "count", "name": "count"},
             {"func": "dc", "field": "eventName", "name": "names"}]}},
  {"metadata": {"id": "scale-out-2", "key": "decrypts_per_caller_account", "name": "Decrypts per caller account",
                "version": 1, "analytic_type": "TTP", "status": "production", "impact": 10, "confidence": 10,
                "message": "$count$ decrypts by $aws_account_id$"},
   "source": {"kind": "local"}, "event_names": ["Decrypt"],
   "selection": {"compare": {"field": "eventName", "op": "eq", "value": "Decrypt"}},
   "stats": {"by": ["aws_account_id"], "functions": [{"func": "count", "name": "count"}]}},
  {"metadata": {"id": "scale-out-3", "key": "calls_per_source_address", "name": "Calls per source address",
                "version": 1, "analytic_type": "TTP", "status": "production", "impact": 10, "confidence": 10,
                "message": "$count$ calls from $src_ip$"},
   "source": {"kind": "local"}, "selection": {"all": []},
   "stats": {"by": ["src_ip"], "functions": [{"func": "count", "name": "count"}]}}
]"#;

/// A month of twenty accounts, with the rules and the single instance's alerts over it: made
/// once for both tests.
struct Month {
    records: Vec<Vec<u8>>,
    rules: Vec<Rule>,
    single: Alerts,
}

fn month() -> &'static Month {
    static MONTH: OnceLock<Month> = OnceLock::new();
    MONTH.get_or_init(|| {
        let mut bytes = Vec::new();
        let opts = Options { organizations: 10, cross_account: true, ..Options::default() };
        generate(&opts, &mut bytes).unwrap();
        let records: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
        let rules = rules();
        let single = run_split(&rules, &records, 1);
        Month { records, rules, single }
    })
}

fn rules() -> Vec<Rule> {
    let mut rules = tripline::catalog::builtin_rules();
    rules.extend(parse_rule_file("own rules", OWN_RULES.as_bytes()).unwrap());
    rules
}

/// Every rule on (Hunting and experimental ones too), and the hand-written detections.
fn engine(rules: &[Rule]) -> Engine {
    let on = serde_json::Map::from_iter([("enabled".to_string(), Value::Bool(true))]);
    let config = Config { detections: rules.iter().map(|r| (r.metadata.key.clone(), on.clone())).collect(), ..Config::default() };
    Engine::with_rules(config, rules.to_vec()).unwrap()
}

/// The partition of a key: its value hashed, as a keyed producer does (any deterministic
/// partitioner gives the same property: one key, one partition).
fn partition_of(key: &str, partitions: u64) -> usize {
    (tripline::digest::fnv1a64(key.as_bytes()) % partitions) as usize
}

/// The partition a record goes to.
fn partition(record: &[u8], partitions: u64) -> usize {
    let value: Value = serde_json::from_slice(record).unwrap();
    partition_of(value.get(DEFAULT_KEY).and_then(Value::as_str).unwrap_or_default(), partitions)
}

/// Alerts per detection name, each as its JSON text, in a multiset (sorted).
type Alerts = BTreeMap<String, Vec<String>>;

fn drain(engine: &mut Engine, into: &mut Alerts) {
    for alert in engine.take_alerts(usize::MAX) {
        let value: Value = serde_json::from_str(alert.get()).unwrap();
        let name = value["detection"]["name"].as_str().unwrap().to_string();
        into.entry(name).or_default().push(alert.get().to_string());
    }
}

/// Runs `records` through `instances` engines, each fed the records of its partitions in order;
/// the union of their alerts.
fn run_split(rules: &[Rule], records: &[Vec<u8>], instances: u64) -> Alerts {
    let mut engines: Vec<Engine> = (0..instances).map(|_| engine(rules)).collect();
    let mut alerts = Alerts::new();
    for record in records {
        let engine = &mut engines[partition(record, instances)];
        let processed = engine.process(record, None);
        assert!(processed.error.is_none(), "{:?}", processed.error);
        drain(engine, &mut alerts);
    }
    for engine in &mut engines {
        engine.finish_all();
        drain(engine, &mut alerts);
        assert_eq!(engine.counters().evicted_groups + engine.counters().late, 0, "no cap or lateness in play");
    }
    alerts.values_mut().for_each(|v| v.sort());
    alerts
}

/// The `count` of each alert's row, per (window start, group field value).
fn counts(alerts: &[String], field: &str) -> Vec<(String, String, u64)> {
    alerts
        .iter()
        .map(|a| {
            let v: Value = serde_json::from_str(a).unwrap();
            let count = v["result"]["count"].as_str().map_or_else(|| v["result"]["count"].as_u64().unwrap(), |c| c.parse().unwrap());
            (v["window"]["start"].as_str().unwrap().to_string(), v["result"][field].as_str().unwrap().to_string(), count)
        })
        .collect()
}

#[test]
fn split_by_account_gives_the_single_instance_alerts_for_every_exact_rule() {
    let Month { records, rules, single } = month();
    let accounts: BTreeSet<String> = records.iter().map(|r| serde_json::from_slice::<Value>(r).unwrap()[DEFAULT_KEY].to_string()).collect();
    assert_eq!(accounts.len(), 20);
    let verdict: BTreeMap<&str, _> = rules.iter().map(|r| (r.metadata.name.as_str(), analyse(r, DEFAULT_KEY))).collect();
    for name in ["Calls per recipient account", "Decrypts per caller account", "Calls per source address"] {
        assert!(single.get(name).is_some_and(|a| !a.is_empty()), "{name} fires on the month");
    }
    assert!(verdict["Calls per recipient account"].exact);
    let exact_firing: Vec<&str> = single.keys().filter(|n| verdict.get(n.as_str()).is_some_and(|v| v.exact)).map(String::as_str).collect();
    println!("exact rules that fire: {exact_firing:?}");

    // N = 1 is the single instance itself.
    for instances in [3, 8] {
        let split = run_split(rules, records, instances);
        let mut differ = Vec::new();
        for (name, v) in &verdict {
            let (one, many) = (single.get(*name).cloned().unwrap_or_default(), split.get(*name).cloned().unwrap_or_default());
            if v.exact {
                assert_eq!(one, many, "{name} is marked exact ({}) but its alerts differ over {instances} instances", v.reason);
            } else if one != many {
                differ.push(*name);
            }
        }
        println!("{instances} instances: rules not exact whose alerts differ: {differ:?}");
        // Not exact, as predicted: every group of the single instance is cut into parts, one per
        // partition its events reached, whose counts add up to the whole; none is lost.
        for (name, field) in [("Decrypts per caller account", "aws_account_id"), ("Calls per source address", "src_ip")] {
            assert!(!verdict[name].exact, "{name}: {}", verdict[name].reason);
            assert!(differ.contains(&name), "{name} differs over {instances} instances");
            let whole = counts(&single[name], field);
            let parts = counts(&split[name], field);
            assert!(parts.len() > whole.len(), "{name}: groups cut into parts");
            let mut summed: BTreeMap<(String, String), u64> = BTreeMap::new();
            for (window, value, count) in parts {
                *summed.entry((window, value)).or_default() += count;
            }
            let whole: BTreeMap<(String, String), u64> = whole.into_iter().map(|(w, v, c)| ((w, v), c)).collect();
            assert_eq!(summed, whole, "{name}: the parts add up to the single instance's groups");
        }
    }
}

/// Six partitions over three instances (instance `i` reads partitions `i` and `i + 3`); in the
/// middle of the month partition 5 moves from instance 2 to instance 0, its open groups with it
/// when `move_state` (exported from instance 2's snapshot, imported into instance 0's, both
/// restarted from them), or not at all.
fn run_with_move(rules: &[Rule], records: &[Vec<u8>], move_state: bool) -> (Alerts, tripline::rebalance::Split) {
    const PARTITIONS: u64 = 6;
    let mut engines: Vec<Engine> = (0..3).map(|_| engine(rules)).collect();
    let owner = |p: usize, moved: bool| if p == 5 && moved { 0 } else { p % 3 };
    let mut alerts = Alerts::new();
    let middle = records.len() / 2;
    let mut split = None;
    for (at, record) in records.iter().enumerate() {
        if at == middle {
            let columns: BTreeMap<&str, usize> =
                rules.iter().filter_map(|r| Some((r.metadata.key.as_str(), key_column(r, DEFAULT_KEY)?))).collect();
            let moved = tripline::rebalance::split(
                &engines[2].snapshot().unwrap(),
                |detection| columns.get(detection).copied(),
                |key| partition_of(key, PARTITIONS) == 5,
            )
            .unwrap();
            if move_state {
                let target = tripline::rebalance::merge(Some(&engines[0].snapshot().unwrap()), &moved.moved).unwrap();
                for (instance, state) in [(0, &target), (2, &moved.remaining)] {
                    engines[instance] = engine(rules);
                    engines[instance].restore(state).unwrap();
                }
            }
            split = Some(moved);
        }
        let engine = &mut engines[owner(partition(record, PARTITIONS), at >= middle)];
        engine.process(record, None);
        drain(engine, &mut alerts);
    }
    for engine in &mut engines {
        engine.finish_all();
        drain(engine, &mut alerts);
    }
    alerts.values_mut().for_each(|v| v.sort());
    (alerts, split.unwrap())
}

#[test]
fn a_partition_moving_mid_month_takes_its_state_with_it() {
    let Month { records, rules, single } = month();
    let (moved, split) = run_with_move(rules, records, true);
    println!("moved: {:?}; left where they were: {:?}", split.moved_groups, split.left_groups);
    assert!(split.moved_groups.iter().any(|(key, n)| key == "calls_per_recipient_account" && *n > 0), "open groups of the moving keys moved");
    for rule in rules {
        if analyse(rule, DEFAULT_KEY).exact {
            let name = &rule.metadata.name;
            assert_eq!(single.get(name), moved.get(name), "{name} is exact across the move");
        }
    }
    // The move is what keeps it exact: without the state, the hour the partition moved in is
    // counted in two halves, one on each instance.
    let (unmoved, _) = run_with_move(rules, records, false);
    let name = "Calls per recipient account";
    assert_ne!(single.get(name), unmoved.get(name), "{name} without the state moving");
}
