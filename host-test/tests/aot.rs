//! `dist/tripline-fluentbit.aot` (`make aot`: the Fluent Bit module compiled ahead of time by
//! Fluent Bit's own `wamrc`) in the real `fluent-bit` binary. Only WAMR loads `.aot` files, so the
//! harness cannot check this one: Fluent Bit itself runs a tail -> wasm filter -> file pipeline
//! over a few CloudTrail records, once with the `.aot` and once with the `.wasm` it came from.
//!
//! `make test` builds the `.aot` first (`make aot`, with the LLVM-based `wamrc` built once).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tripline_host_test::artifacts::{dist, project_root, shared_data};

const BATCH: &str = "AWS Exfiltration via Batch Service";

/// Fluent Bit exits by itself at the end of the input (`Exit_On_Eof`); this is only a backstop.
const TIMEOUT: Duration = Duration::from_secs(60);

fn shared_json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(shared_data(name)).unwrap()).unwrap()
}

/// The records fed to Fluent Bit: a quiet record, the real JobCreated record, and a quiet record
/// later in the same hour (so no window closes and nothing but the JobCreated record changes).
fn records() -> Vec<Value> {
    // A bucket call no built-in rule selects (ESCU's bucket-replication rule selects the original).
    let mut quiet = shared_json("splunk_security_content_putbucketreplication_example.json");
    quiet["eventName"] = json!("PutBucketTagging");
    let mut later = quiet.clone();
    later["eventTime"] = json!("2023-04-24T23:58:00Z");
    vec![quiet, shared_json("splunk_security_content_jobcreated_example.json"), later]
}

/// Runs `module` as the `tripline_filter` of examples/fluent-bit/fluent-bit.conf's main pipeline,
/// over `records` as NDJSON, and returns the lines the file output wrote.
fn run_fluent_bit(module: &Path, records: &[Value]) -> Vec<String> {
    let binary = tripline_host_test::real_fluentbit::binary().unwrap();
    let name = module.extension().unwrap().to_string_lossy();
    let dir = project_root().join("target/test-scratch").join(format!("aot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tripline.json"), "{}").unwrap();
    let input = dir.join("cloudtrail.ndjson");
    let ndjson: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&input, ndjson).unwrap();
    let parsers = project_root().join("examples/fluent-bit/parsers.conf");
    let config = format!(
        "[SERVICE]
    Flush        1
    Log_Level    info
    Parsers_File {parsers}

[INPUT]
    Name           tail
    Path           {input}
    Tag            aws.cloudtrail
    Parser         cloudtrail
    Read_From_Head On
    Exit_On_Eof    On

[FILTER]
    Name             wasm
    Match            aws.cloudtrail
    Wasm_Path        {module}
    Function_Name    tripline_filter
    Event_Format     json
    Accessible_Paths {dir}
    Wasm_Heap_Size   64M
    Wasm_Stack_Size  256K

[OUTPUT]
    Name   file
    Match  aws.cloudtrail
    Path   {dir}
    File   out.ndjson
    Format plain
",
        parsers = parsers.display(),
        input = input.display(),
        module = module.display(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("fluent-bit.conf"), config).unwrap();

    // Fluent Bit's log goes to files, not pipes: nobody drains a pipe while we wait.
    let log = dir.join("fluent-bit.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(&binary)
        .arg("-c")
        .arg(dir.join("fluent-bit.conf"))
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            child.kill().unwrap();
            panic!("fluent-bit still running after {TIMEOUT:?}; log in {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "fluent-bit with {}: {status}\n{log_text}", module.display());
    // The wasm filter logs load failures, traps and refused results as errors; none may occur.
    assert!(!log_text.contains("[error]"), "fluent-bit with {} logged errors:\n{log_text}", module.display());
    let out = std::fs::read_to_string(dir.join("out.ndjson"))
        .unwrap_or_else(|e| panic!("no output from fluent-bit with {} ({e}):\n{log_text}", module.display()));
    out.lines().map(str::to_owned).collect()
}

#[test]
fn aot_module_tags_job_created_in_real_fluent_bit_like_the_wasm() {
    let aot = project_root().join("dist/tripline-fluentbit.aot");
    assert!(aot.exists(), "{} is missing: run `make aot` first", aot.display());
    let records = records();
    let lines = run_fluent_bit(&aot, &records);
    let out: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(out.len(), records.len(), "one record out per record in: {lines:#?}");

    let mut tagged = out[1].clone();
    let tag = tagged.as_object_mut().unwrap().remove("tripline").expect("the JobCreated record is tagged");
    assert_eq!(tagged, records[1], "the JobCreated record keeps every field of its own");
    let matches = tag["matches"].as_array().expect("tripline.matches");
    assert_eq!(matches.len(), 1, "{tag}");
    assert_eq!(matches[0]["detection"]["name"], BATCH);
    assert_eq!(matches[0]["detection"]["search_name"], format!("ESCU - {BATCH} - Rule"));
    assert_eq!(out[0], records[0], "a record no detection selects arrives unchanged");
    assert_eq!(out[2], records[2], "a record no detection selects arrives unchanged");

    let interpreted = run_fluent_bit(&dist("tripline-fluentbit.wasm"), &records);
    assert_eq!(lines, interpreted, "the .aot and the .wasm give byte-identical output");
}
