//! One core, every host: the same data set through all four artifacts, each in its real host
//! (the Fluent Bit contract harness, the Extism Rust SDK, Node with the JS package, wasmtime's
//! component API), must give identical alerts in identical order. And the `wasm-opt -Oz` copies
//! `make build` writes beside two of them (scripts/report-sizes.sh) must answer byte for byte
//! like the artifacts they were made from.

mod common;

use common::*;
use serde_json::Value;
use tripline_host_test::artifacts::{dist, project_root};
use tripline_host_test::component_host::ComponentHost;
use tripline_host_test::extism_host::ExtismEngine;
use tripline_host_test::fluentbit::{FilterOptions, FluentBitFilter, FILTER_FUNCTION};

fn ndjson_values(bytes: &[u8]) -> Vec<Value> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

/// The example data, ended with a later record: Fluent Bit closes windows only when records arrive.
fn example_records_closed() -> Vec<Value> {
    let mut records = example_records();
    let end = tripline::time::parse_event_time(records.last().unwrap()["eventTime"].as_str().unwrap()).unwrap();
    records.push(heartbeat(end + 3 * 3600));
    records
}

#[test]
fn all_four_artifacts_raise_identical_alerts() {
    let records = example_records_closed();
    let dir = scratch_dir("equivalence");
    let data = dir.join("data.ndjson");
    let ndjson = records.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    std::fs::write(&data, &ndjson).unwrap();
    let config = "{}";

    let mut fluentbit = start_filter(&dir, &serde_json::from_str(config).unwrap());
    let from_fluentbit = run(&mut fluentbit, &records);

    let mut extism = ExtismEngine::load(&dist("tripline-extism.wasm"), Some(config), None).unwrap();
    let from_extism = ndjson_values(&extism.process(ndjson.as_bytes()).unwrap().alerts);

    let component = ComponentHost::load(&dist("tripline-component.wasm")).unwrap();
    let mut engine = component.instantiate(config).unwrap();
    let from_component = ndjson_values(&engine.process(ndjson.as_bytes()).unwrap().alerts);

    let script = r#"
        import { readFileSync } from "node:fs";
        import { initSync, Tripline } from "./dist/js/index.js";
        initSync(readFileSync("./dist/js/tripline_bg.wasm"));
        const t = new Tripline(process.argv[2]);
        const { alerts } = t.process(readFileSync(process.argv[1]));
        process.stdout.write(JSON.stringify(alerts));
    "#;
    let node = std::process::Command::new("node")
        .current_dir(project_root())
        .args(["--input-type=module", "-e", script])
        .arg(&data)
        .arg(config)
        .output()
        .expect("node is installed");
    assert!(node.status.success(), "{}", String::from_utf8_lossy(&node.stderr));
    let from_js: Vec<Value> = serde_json::from_slice(&node.stdout).unwrap();

    assert_eq!(of(&from_fluentbit, BATCH).len(), 2);
    assert_eq!(of(&from_fluentbit, SG).len(), 2);
    assert_eq!(from_extism, from_fluentbit, "Extism");
    assert_eq!(from_component, from_fluentbit, "component");
    assert_eq!(from_js, from_fluentbit, "JS");
}

#[test]
fn opt_copies_answer_byte_for_byte_like_the_built_artifacts() {
    let records = example_records_closed();
    let config = "{}";

    // Fluent Bit: every reply (pass-through, tag, alert) for every record, one call at a time.
    let mut filters = ["tripline-fluentbit.wasm", "tripline-fluentbit.opt.wasm"].map(|artifact| {
        let dir = scratch_dir("equivalence-opt");
        std::fs::write(dir.join("tripline.json"), config).unwrap();
        let options = FilterOptions::new(dist(artifact), FILTER_FUNCTION).accessible_path(&dir).capture_output();
        FluentBitFilter::start(options).unwrap()
    });
    for record in &records {
        let time = record["eventTime"].as_str().and_then(tripline::time::parse_event_time).unwrap_or(0) as u32;
        let [plain, opt] = filters.each_mut().map(|f| f.filter(time, record).unwrap().outcome);
        assert_eq!(opt, plain, "tripline-fluentbit.opt.wasm on {record}");
    }

    // Extism: the whole data set as one batch, then the stats.
    let ndjson = records.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    let [plain, opt] = ["tripline-extism.wasm", "tripline-extism.opt.wasm"].map(|artifact| {
        let mut engine = ExtismEngine::load(&dist(artifact), Some(config), None).unwrap();
        let out = engine.process_framed(ndjson.as_bytes()).unwrap();
        (out, engine.stats().unwrap())
    });
    assert!(plain.0 == opt.0, "tripline-extism.opt.wasm: the framed output differs");
    assert_eq!(opt.1, plain.1, "tripline-extism.opt.wasm: stats");
}
