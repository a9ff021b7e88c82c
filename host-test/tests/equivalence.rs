//! One core, every host: the same data set through all four artifacts, each in its real host
//! (the Fluent Bit contract harness, the Extism Rust SDK, Node with the JS package, wasmtime's
//! component API), must give identical alerts in identical order.

mod common;

use common::*;
use serde_json::Value;
use tripline_host_test::artifacts::{dist, project_root};
use tripline_host_test::component_host::ComponentHost;
use tripline_host_test::extism_host::ExtismEngine;

fn ndjson_values(bytes: &[u8]) -> Vec<Value> {
    bytes.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

#[test]
fn all_four_artifacts_raise_identical_alerts() {
    let mut records = example_records();
    let end = tripline::time::parse_event_time(records.last().unwrap()["eventTime"].as_str().unwrap()).unwrap();
    // Fluent Bit closes windows only when records arrive: end the data with a later record.
    records.push(heartbeat(end + 3 * 3600));
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
