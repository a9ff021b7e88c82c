//! The alert routes of `examples/fluent-bit/` (`alerts-*.yaml`) in the real Fluent Bit: each
//! passes `fluent-bit --dry-run` as shipped (only its absolute paths moved), and the Elasticsearch
//! (ECS) and Splunk HEC routes deliver every alert the main filter attached, one document or
//! event per alert, to a local stand-in for the service that records what it receives.
//!
//! The Firehose route (OCSF) is checked by the dry run only: Fluent Bit's `kinesis_firehose`
//! always speaks TLS with AWS's request signing, which no stand-in here answers.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tripline_host_test::artifacts::{dist, project_root, shared_data};
use tripline_host_test::real_fluentbit::{binary, Example, Layout, Running};

const PATIENCE: Duration = Duration::from_secs(120);

/// A route: its file, the `alert_format` its header tells the user to set, and values for the
/// environment variables it reads.
type Route = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

const ROUTES: [Route; 3] = [
    ("alerts-splunk-hec.yaml", "splunk", &[("SPLUNK_HEC_HOST", "splunk.example.com"), ("SPLUNK_HEC_TOKEN", "t")]),
    (
        "alerts-elasticsearch-ecs.yaml",
        "ecs",
        &[("ELASTICSEARCH_HOST", "es.example.com"), ("ELASTICSEARCH_USER", "u"), ("ELASTICSEARCH_PASSWORD", "p")],
    ),
    ("alerts-firehose-ocsf.yaml", "ocsf", &[("AWS_REGION", "us-east-1"), ("FIREHOSE_DELIVERY_STREAM", "tripline-findings")]),
];

/// A layout with the module installed and the example `tripline.json` with the route's output
/// settings, as the route's header says.
fn route_layout(name: &str, format: &str) -> Layout {
    let layout = Layout::new(common::scratch_dir(name)).unwrap();
    layout.install_module(&dist("tripline-fluentbit.wasm")).unwrap();
    let mut config: Value = serde_json::from_slice(&std::fs::read(project_root().join("examples/fluent-bit/tripline.json")).unwrap()).unwrap();
    config["output"]["alert_format"] = json!(format);
    config["output"]["max_alerts_per_record"] = json!(1);
    // The example names a fitted baseline; these tests have none to give.
    config["models"] = json!([]);
    std::fs::write(layout.etc.join("tripline.json"), config.to_string()).unwrap();
    layout
}

#[test]
fn every_alert_route_passes_the_dry_run() {
    let header = |file: &str| std::fs::read_to_string(project_root().join("examples/fluent-bit").join(file)).unwrap();
    let shipped: Vec<String> = std::fs::read_dir(project_root().join("examples/fluent-bit"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("alerts-"))
        .collect();
    assert_eq!(shipped.len(), ROUTES.len(), "every alert route is tested: {shipped:?}");
    for (file, format, env) in ROUTES {
        assert!(header(file).contains(&format!("\"alert_format\": \"{format}\"")), "{file} tells the user its format");
        let layout = route_layout(&format!("dry-run-{format}"), format);
        let config = layout.write_config(Example::Other(file)).unwrap();
        let out = Command::new(binary().unwrap())
            .arg("--dry-run")
            .arg("-c")
            .arg(&config)
            .current_dir(&layout.root)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && log.contains("configuration test is successful"), "{file}:\n{log}");
        // The dry run reads every property: a misspelt one fails it.
        let misspelt = std::fs::read_to_string(&config).unwrap().replacen("retry_limit:", "retry_limt:", 1);
        std::fs::write(&config, misspelt).unwrap();
        let out = Command::new(binary().unwrap()).arg("--dry-run").arg("-c").arg(&config).current_dir(&layout.root).envs(env.iter().copied()).output().unwrap();
        assert!(!out.status.success(), "{file}: a misspelt property passes the dry run");
    }
}

/// A request a stand-in service received: (request line, body).
type Request = (String, Vec<u8>);

/// What a stand-in service received, in order.
type Received = Arc<Mutex<Vec<Request>>>;

/// An HTTP/1.1 service on a free loopback port answering every request with `reply` (JSON).
fn stand_in(reply: &'static str) -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::default();
    let log = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || serve(stream, reply, &log));
        }
    });
    (port, received)
}

/// Answers requests on one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, reply: &str, log: &Received) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        log.lock().unwrap().push((request_line.trim().to_string(), body));
        let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}", reply.len());
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// CloudTrail records that raise alerts of many detections, in time order: the samples in
/// ../shared/data, as NDJSON.
fn sample_input() -> Vec<u8> {
    let mut records: Vec<(String, String)> = Vec::new();
    for file in ["panther_analysis_cloudtrail_test_events.jsonl", "security_content_data_sources_cloudtrail_examples.jsonl"] {
        for line in std::fs::read_to_string(shared_data(file)).unwrap().lines().filter(|l| !l.trim().is_empty()) {
            let line: Value = serde_json::from_str(line).unwrap();
            let record = line.get("log").or_else(|| line.get("event")).unwrap_or(&line);
            if let Some(time) = record["eventTime"].as_str() {
                records.push((time.to_string(), record.to_string()));
            }
        }
    }
    records.sort();
    records.into_iter().flat_map(|(_, r)| (r + "\n").into_bytes()).collect()
}

/// The alerts the main filter attached to the records that reached the main output.
fn attached_alerts(layout: &Layout) -> Vec<Value> {
    layout
        .tagged_lines()
        .iter()
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .flat_map(|record| record["tripline"]["alerts"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Runs `file` with `format` over the samples, its service answered by a stand-in on the port
/// `settings` are given; returns the attached alerts and what the stand-in received once every
/// attached alert has been delivered (as `delivered` counts them).
fn run_route(file: &'static str, format: &str, reply: &'static str, settings: &dyn Fn(String, u16) -> String, delivered: &dyn Fn(&[Request]) -> usize) -> (Vec<Value>, Vec<Request>) {
    let (port, received) = stand_in(reply);
    let layout = route_layout(&format!("route-{format}"), format);
    let input = sample_input();
    let records = input.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    std::fs::write(layout.input.join("cloudtrail.ndjson"), &input).unwrap();
    let config = layout.write_config(Example::Other(file)).unwrap();
    std::fs::write(&config, settings(std::fs::read_to_string(&config).unwrap(), port)).unwrap();
    let mut fluent_bit = Running::start(&config, &[]).unwrap();
    fluent_bit
        .wait_until("every record, and every attached alert delivered", PATIENCE, |_| {
            layout.tagged_lines().len() >= records && delivered(&received.lock().unwrap()) >= attached_alerts(&layout).len()
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let finished = fluent_bit.stop().unwrap();
    assert!(finished.status.success(), "fluent-bit did not exit cleanly ({}):\n{}", finished.status, finished.stderr);
    // (The samples include eventTimes the example parser cannot read: it says so, and the record goes on.)
    let output_errors: Vec<&str> = finished.stderr.lines().filter(|l| l.contains("[error]") && l.contains("[output:")).collect();
    assert!(output_errors.is_empty(), "{file}: the output failed:\n{}", output_errors.join("\n"));
    let attached = attached_alerts(&layout);
    assert!(attached.len() >= 20, "{file}: the samples raise alerts ({} attached)", attached.len());
    let received = received.lock().unwrap().clone();
    (attached, received)
}

/// `got` and `expected` hold the same alerts, each as often (in any order; members in any order).
fn assert_same_alerts(what: &str, got: Vec<Value>, mut expected: Vec<Value>) {
    assert_eq!(got.len(), expected.len(), "{what}: one per attached alert");
    for alert in got {
        let Some(at) = expected.iter().position(|e| *e == alert) else { panic!("{what}: {alert} is not an attached alert") };
        expected.swap_remove(at);
    }
}

/// A route's configuration pointed at the stand-in: its host variable and port replaced, TLS off
/// (the stand-in speaks plain HTTP).
fn on_loopback(text: String, host_variable: &str, shipped_port: u16, port: u16) -> String {
    text.replace(host_variable, "127.0.0.1")
        .replace(&format!("port: {shipped_port}"), &format!("port: {port}"))
        .replace("tls: on", "tls: off")
        .replace("tls.verify: on", "tls.verify: off")
}

/// Elasticsearch's bulk body: an action line, then the document.
fn bulk_documents(received: &[(String, Vec<u8>)]) -> Vec<(Value, Value)> {
    received
        .iter()
        .filter(|(request, _)| request.starts_with("POST /_bulk"))
        .flat_map(|(_, body)| {
            let lines: Vec<Value> = body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
            lines.chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn ecs_alerts_reach_elasticsearch_one_document_each() {
    let settings = |text: String, port: u16| {
        on_loopback(text, "${ELASTICSEARCH_HOST}", 9200, port)
            .replace("${ELASTICSEARCH_USER}", "elastic")
            .replace("${ELASTICSEARCH_PASSWORD}", "secret")
    };
    let (attached, received) = run_route(
        "alerts-elasticsearch-ecs.yaml",
        "ecs",
        r#"{"took":1,"errors":false,"items":[]}"#,
        &settings,
        &|received| bulk_documents(received).len(),
    );
    let documents: Vec<Value> = bulk_documents(&received)
        .into_iter()
        .map(|(action, mut document)| {
            assert_eq!(action["create"]["_index"].as_str().or(action["index"]["_index"].as_str()), Some("tripline-alerts"), "{action}");
            // The output's own time key, where the route puts it: beside the alert, not in place of @timestamp.
            let record_time = document.as_object_mut().unwrap().remove("tripline.record_time");
            assert!(record_time.is_some_and(|t| t.is_string()), "{document}");
            assert_eq!(document["event"]["kind"], "alert");
            assert!(document["@timestamp"].is_string() && document["rule"]["id"].is_string(), "{document}");
            document
        })
        .collect();
    assert!(attached.iter().all(|a| a["ecs"]["version"].is_string()), "the main filter attached ECS alerts");
    assert_same_alerts("Elasticsearch documents", documents, attached);
}

#[test]
fn risk_events_reach_splunk_hec_one_event_each() {
    let settings = |text: String, port: u16| {
        on_loopback(text, "${SPLUNK_HEC_HOST}", 8088, port).replace("${SPLUNK_HEC_TOKEN}", "00000000-0000-0000-0000-000000000000")
    };
    let hec_events = |received: &[(String, Vec<u8>)]| -> Vec<Value> {
        received
            .iter()
            .filter(|(request, _)| request.starts_with("POST /services/collector/event"))
            .flat_map(|(_, body)| serde_json::Deserializer::from_slice(body).into_iter::<Value>().map(Result::unwrap).collect::<Vec<_>>())
            .collect()
    };
    let (attached, received) =
        run_route("alerts-splunk-hec.yaml", "splunk", r#"{"text":"Success","code":0}"#, &settings, &|received| hec_events(received).len());
    let events: Vec<Value> = hec_events(&received)
        .into_iter()
        .map(|event| {
            assert_eq!((&event["index"], &event["source"], &event["sourcetype"]), (&json!("risk"), &json!("tripline"), &json!("tripline:risk")));
            let alert = &event["event"];
            let fields = &event["fields"];
            assert_eq!(fields["search_name"], alert["detection"]["search_name"], "{event}");
            assert_eq!(fields["risk_score"], alert["risk_score"], "{event}");
            if let Some(object) = alert.get("risk_object") {
                assert_eq!(&fields["risk_object"], object, "{event}");
            }
            alert.clone()
        })
        .collect();
    // Risk events: ESCU's name their saved search, Sigma's their rule's title and level.
    assert!(attached.iter().all(|a| a["risk_score"].is_number() && a["detection"]["name"].is_string()), "the main filter attached risk events");
    assert_same_alerts("HEC events", events, attached);
}
