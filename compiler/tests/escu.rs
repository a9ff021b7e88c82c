//! The compiler over the real ESCU tree (`../shared/escu` beside the checkout): the committed
//! pack and coverage report are exactly what it produces now, every rule it emits is one the
//! engine accepts, and the seed detection's metadata matches the hand-written one.

use std::path::{Path, PathBuf};

use tripline::rule::{Pack, RuleDetection};
use tripline_compiler::enrich::Enrichment;
use tripline_compiler::escu::{compile_tree, pack_json, Compiled};
use tripline_compiler::coverage;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn escu_root() -> PathBuf {
    manifest().join("../../shared/escu")
}

fn enrichment_path() -> PathBuf {
    manifest().join("data/attack-enrichment.json")
}

/// Compiles the tree as `tripline-compile escu` does by default.
fn compile() -> Compiled {
    let root = escu_root();
    assert!(root.join("detections/cloud").is_dir(), "no ESCU tree at {}", root.display());
    let enrichment = enrichment_path().exists().then(|| Enrichment::load(&enrichment_path()).unwrap());
    compile_tree(&root, None, enrichment).unwrap()
}

#[test]
fn committed_pack_and_coverage_are_fresh() {
    let compiled = compile();
    let repo = manifest().join("..");
    let pack = std::fs::read_to_string(repo.join("rules/escu/pack.json")).unwrap();
    let report = std::fs::read_to_string(repo.join("docs/coverage.md")).unwrap();
    let fresh_pack = pack_json(&compiled.pack);
    // The Sigma section after it is `tests/sigma.rs`'s to check.
    let fresh_report = coverage::render(&compiled.outcomes, &compiled.origin) + tripline_compiler::sigma::section_of(&report);
    let hint = format!("stale; regenerate from the repository root with\n    {}", coverage::REGENERATE);
    assert!(pack == fresh_pack, "rules/escu/pack.json is {hint}");
    assert!(report == fresh_report, "docs/coverage.md is {hint}");
}

#[test]
fn every_detection_is_accounted_for_and_every_rule_runs() {
    let compiled = compile();
    assert_eq!(compiled.outcomes.len(), 89);
    assert_eq!(compiled.pack.origin, "splunk/security_content@b13b314aed0e1778335a55620474e7d27289a20a");
    let keys: Vec<&str> = compiled.pack.rules.iter().map(|r| r.metadata.key.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "rules sorted by key");
    for rule in &compiled.pack.rules {
        if let Err(e) = RuleDetection::new(rule.clone()) {
            panic!("the engine refuses {}: {e}", rule.metadata.key);
        }
    }
    // The pack reads back as the engine's rule files do.
    let text = pack_json(&compiled.pack);
    let back: Pack = serde_json::from_str(&text).unwrap();
    assert_eq!(back, compiled.pack);
    assert_eq!(tripline::rule::parse_rule_file("pack.json", text.as_bytes()).unwrap().len(), compiled.pack.rules.len());
}

#[test]
fn the_seed_detection_compiles_to_its_hand_written_metadata() {
    let compiled = compile();
    let rule = compiled
        .pack
        .rules
        .iter()
        .find(|r| r.metadata.key == "aws_exfiltration_via_batch_service")
        .expect("compiled");
    assert!(
        enrichment_path().exists(),
        "{} is missing: technique names, kill chain, NIST, CIS and actors come from it",
        enrichment_path().display()
    );
    // The seed's published annotations (`../shared/seeds/aws_exfiltration_via_batch_service.txt`).
    let expected: tripline::rule::Metadata = serde_json::from_value(serde_json::json!({
        "id": "04455dd3-ced7-480f-b8e6-5469b99e98e2",
        "key": "aws_exfiltration_via_batch_service",
        "name": "AWS Exfiltration via Batch Service",
        "version": 3,
        "analytic_type": "TTP",
        "status": "production",
        "impact": 80,
        "confidence": 80,
        "risk_object": {"field": "aws_account_id", "kind": "other"},
        "threat_object": {"field": "src_ip", "kind": "ip_address"},
        "message": "AWS Batch Job is created on account id - $aws_account_id$ from src_ip $src_ip$",
        "mitre_attack": [{"id": "T1119", "name": "Automated Collection", "tactic": "Collection"}],
        "kill_chain_phases": ["Exploitation"],
        "nist": ["DE.CM"],
        "cis20": ["CIS 10"],
        "threat_actors": ["APT1", "APT28", "Chimera", "Confucius", "FIN5", "FIN6", "Gamaredon Group", "Ke3chang",
                          "Mustang Panda", "OilRig", "Patchwork", "Sidewinder", "Threat Group-3390", "Tropic Trooper", "menuPass"],
        "analytic_stories": ["Data Exfiltration"]
    }))
    .unwrap();
    assert_eq!(rule.metadata, expected);
    assert_eq!(rule.event_names, vec!["JobCreated"]);
    assert!(rule.tag_each_event);
    assert!(rule.warnings.is_empty(), "{:?}", rule.warnings);
}

/// The five search-vs-intent cases the linter was written for, on the real detections.
#[test]
fn lint_cases_on_the_real_detections() {
    let compiled = compile();
    let warnings = |key: &str| -> Vec<String> {
        compiled.outcomes.iter().find(|o| o.key == key).expect(key).warnings().to_vec()
    };
    let has = |key: &str, needle: &str| {
        let w = warnings(key);
        assert!(w.iter().any(|x| x.contains(needle)), "{key}: no warning with {needle:?} in {w:?}");
    };
    has("aws_iam_assume_role_policy_brute_force", "`count >= 2` can never hold");
    has("aws_updateloginprofile", "unquoted `userIdentity.userName` is `userIdentity . userName`");
    has("aws_createaccesskey", "unquoted `requestParameters.userName`");
    has("detect_new_open_s3_buckets_over_aws_cli", "mixes AND and OR without parentheses");
    has("aws_console_login_failed_during_mfa_challenge", "groups by `userIdentity.arn`");
    has("aws_successful_single_factor_authentication", "`errorCode=success` over ConsoleLogin");
}
