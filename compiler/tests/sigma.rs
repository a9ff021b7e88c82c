//! The compiler over SigmaHQ's CloudTrail rules (`../shared/sigma` beside the checkout): all 57
//! compile, the engine accepts each, and the committed pack and the Sigma section of the
//! coverage report are exactly what the compiler produces now.

use std::path::{Path, PathBuf};

use tripline::rule::{parse_rule_file, RuleDetection};
use tripline_compiler::enrich::Enrichment;
use tripline_compiler::escu::pack_json;
use tripline_compiler::sigma::{compile_tree, render_coverage, section_of, Compiled, REGENERATE};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compile() -> Compiled {
    let root: PathBuf = manifest().join("../../shared/sigma");
    assert!(root.join("rules").is_dir(), "no Sigma tree at {}", root.display());
    let enrichment_path = manifest().join("data/attack-enrichment.json");
    let enrichment = enrichment_path.exists().then(|| Enrichment::load(&enrichment_path).unwrap());
    compile_tree(&root, None, enrichment.as_ref()).unwrap()
}

#[test]
fn committed_pack_and_coverage_section_are_fresh() {
    let compiled = compile();
    let repo = manifest().join("..");
    let pack = std::fs::read_to_string(repo.join("rules/sigma/pack.json")).unwrap();
    let report = std::fs::read_to_string(repo.join("docs/coverage.md")).unwrap();
    let hint = format!("stale; regenerate from the repository root with\n    {REGENERATE}");
    assert!(pack == pack_json(&compiled.pack), "rules/sigma/pack.json is {hint}");
    assert!(section_of(&report) == render_coverage(&compiled.outcomes, &compiled.origin), "docs/coverage.md (Sigma) is {hint}");
}

#[test]
fn all_57_rules_compile_and_run() {
    let compiled = compile();
    assert_eq!(compiled.pack.origin, "SigmaHQ/sigma@8eaafff1f2845a696050e05e72ba1140ee190698");
    let failed: Vec<String> =
        compiled.outcomes.iter().filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.key))).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(compiled.pack.rules.len(), 57);
    for rule in &compiled.pack.rules {
        assert!(rule.tag_each_event && rule.metadata.sigma.is_some() && rule.source.commit.len() == 40, "{}", rule.metadata.key);
        RuleDetection::new(rule.clone()).unwrap_or_else(|e| panic!("the engine refuses {}: {e}", rule.metadata.key));
    }
    let back = parse_rule_file("pack", pack_json(&compiled.pack).as_bytes()).unwrap();
    assert_eq!(back, compiled.pack.rules);
}
