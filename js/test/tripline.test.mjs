// The JS package under Node's built-in test runner: `cd js && node --test test/` (after `make js`
// and `make example-data`). It loads the built package from dist/js/, exactly as users would.
//
// Third-party records are read from ../shared/data/ (relative to the project root) at test time.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const dist = path.join(root, "dist/js/index.js");
const shared = path.resolve(root, "../shared/data");
const generated = path.join(root, "examples/data/generated");

if (!existsSync(dist)) throw new Error(`${dist} is missing: run \`make js\` first`);
const { ready, initSync, Tripline, parseNdjson, upperThreshold, detections } = await import(dist);
await ready();

const SG = "abnormally_high_cloud_security_group_api_calls";
const BATCH = "aws_exfiltration_via_batch_service";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const jobCreated = readFileSync(path.join(shared, "splunk_security_content_jobcreated_example.json"));
const jobCreatedRecord = JSON.parse(decoder.decode(jobCreated));

/** Lines of an NDJSON buffer as strings (no trailing empty line). */
function lines(bytes) {
  const text = decoder.decode(bytes);
  assert.ok(text === "" || text.endsWith("\n"), "output ends with a newline");
  return text === "" ? [] : text.slice(0, -1).split("\n");
}

let example;
function exampleData() {
  if (!example) {
    const file = path.join(generated, "cloudtrail.ndjson");
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`make example-data\` first`);
    example = {
      bytes: readFileSync(file),
      planted: JSON.parse(readFileSync(path.join(generated, "planted.json"), "utf8")),
    };
    example.lines = decoder.decode(example.bytes).split("\n").filter((l) => l !== "");
  }
  return example;
}

const eventTime = (line) => /"eventTime":"([^"]+)"/.exec(line)?.[1] ?? "";
const key = (a) => `${a.detection.name}|${a.risk_object}|${a.window.start}`;

// --- the real JobCreated record ---------------------------------------------------------------

test("the real JobCreated record is tagged at once and alerts when its hour is flushed", () => {
  const t = new Tripline({});
  const { records, alerts } = t.process(jobCreated);
  assert.deepEqual(alerts, [], "the hourly window is still open");

  const out = lines(records);
  assert.equal(out.length, 1);
  const tagged = JSON.parse(out[0]);
  // The record itself is unchanged apart from the one added field.
  const { tripline, ...rest } = tagged;
  assert.deepEqual(rest, jobCreatedRecord);
  assert.ok(Array.isArray(tripline.matches) && tripline.matches.length === 1);
  assert.equal(tripline.matches[0].detection.name, "AWS Exfiltration via Batch Service");
  assert.equal(tripline.matches[0].risk_score, 64);
  assert.equal(
    tripline.matches[0].risk_message,
    "AWS Batch Job is created on account id - 111111111111 from src_ip s3.amazonaws.com",
  );
  // Tagging appends the field: the original bytes are a prefix of the tagged line.
  const original = decoder.decode(jobCreated).trim();
  assert.ok(out[0].startsWith(original.slice(0, -1)), "original bytes kept, field appended");

  const flushed = t.flush(Date.parse("2023-04-25T01:00:00Z") / 1000);
  assert.equal(flushed.length, 1);
  const [alert] = flushed;
  assert.equal(alert.risk_score, 64);
  assert.equal(alert.risk_object, "111111111111");
  assert.equal(alert.threat_object, "s3.amazonaws.com");
  assert.equal(alert.detection.id, "04455dd3-ced7-480f-b8e6-5469b99e98e2");
  assert.deepEqual(alert.window, { start: "2023-04-24T23:00:00Z", end: "2023-04-25T00:00:00Z", partial: null, values_dropped: 0 });
  // firstTime/lastTime are the record's own eventTime (2023-04-24T23:51:17Z) in Splunk's ctime form.
  const seconds = eventTime(original).replace(/Z$/, "");
  assert.equal(seconds, "2023-04-24T23:51:17");
  assert.deepEqual(alert.result, {
    src_ip: "s3.amazonaws.com",
    aws_account_id: "111111111111",
    eventName: "JobCreated",
    errorCode: "success",
    userAgent: "s3.amazonaws.com",
    count: 1,
    firstTime: seconds,
    lastTime: seconds,
    job_arn: jobCreatedRecord.serviceEventDetails.jobArn,
    status: "New",
  });
  assert.deepEqual(t.flush(Date.parse("2023-04-25T02:00:00Z") / 1000), [], "an alert is emitted once");

  const stats = t.stats();
  assert.equal(stats.config_error, null);
  assert.equal(stats.counters.records, 1);
  assert.equal(stats.counters.matched, 1);
  assert.equal(stats.counters.alerts, 1);
  assert.equal(stats.pending_alerts, 0);
  t.free();
});

test("flush without an argument uses the wall clock", () => {
  const t = new Tripline();
  t.process(jobCreated);
  assert.equal(t.flush().length, 1);
});

test("an S3 export ({\"Records\":[...]}) and a string input work like NDJSON bytes", () => {
  const exportDoc = `{"Records":[${decoder.decode(jobCreated).trim()}]}`;
  for (const input of [exportDoc, encoder.encode(exportDoc), decoder.decode(jobCreated)]) {
    const t = new Tripline("{}");
    const out = lines(t.process(input).records);
    assert.equal(out.length, 1);
    assert.ok(JSON.parse(out[0]).tripline.matches.length === 1);
    assert.equal(t.finishAll().length, 1);
  }
});

test("records no detection selects come back byte-identical (48 real ESCU records + odd lines)", () => {
  const real = readFileSync(path.join(shared, "security_content_data_sources_cloudtrail_examples.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
  const odd = [
    '  {"eventName" : "DescribeInstances",  "eventTime":"2026-10-05T10:00:00Z", "x": "caf\\u00e9 \u00e9\u2603"}  ',
    "not json at all",
    '{"eventName":"JobCreated"',
    "[1,2,3]",
    '{"eventName":42,"eventTime":"2026-10-05T10:00:00Z"}',
    '{"eventName":"AuthorizeSecurityGroupIngress","eventTime":"nonsense"}',
  ];
  const input = [...real, ...odd].join("\r\n") + "\n\n";
  const t = new Tripline({});
  const out = lines(t.process(encoder.encode(input)).records);
  assert.equal(out.length, real.length + odd.length, "one line out per record in; blank lines dropped");
  // ESCU's rules tag several of these real records; each tagged one is the record with only the
  // `tripline` field added at its end, every other one comes back byte for byte.
  let jobCreatedTagged = 0;
  for (const [i, line] of [...real, ...odd].entries()) {
    if (out[i] === line) continue;
    assert.ok(i < real.length, `odd line ${i} comes back byte-identical`);
    const parsed = JSON.parse(out[i]);
    assert.ok(parsed.tripline.matches.length >= 1, `record ${i} changed only to carry tags`);
    delete parsed.tripline;
    assert.equal(JSON.stringify(parsed), JSON.stringify(JSON.parse(line)), `record ${i} keeps every field of its own`);
    assert.ok(out[i].startsWith(line.trimEnd().slice(0, -1)), `record ${i}: its own bytes first`);
    if (eventName(line) === "JobCreated") jobCreatedTagged++;
  }
  assert.equal(jobCreatedTagged, 1, "the one JobCreated among them is tagged");
  const { counters } = t.stats();
  assert.equal(counters.records, real.length + odd.length);
  assert.ok(counters.parse_errors >= 2, "unreadable records are counted");
  assert.ok(counters.field_errors >= 1, "wrongly typed fields are counted");
});

function assertClose(actual, expected, where = "") {
  if (typeof expected === "number" && typeof actual === "number") {
    assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)), `${where}: ${actual} != ${expected}`);
  } else if (expected && typeof expected === "object") {
    assert.equal(typeof actual, "object", where);
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), where);
    for (const k of Object.keys(expected)) assertClose(actual[k], expected[k], `${where}.${k}`);
  } else {
    assert.equal(actual, expected, where);
  }
}

function eventName(line) {
  try {
    return JSON.parse(line).eventName;
  } catch {
    return undefined;
  }
}

// --- configuration ------------------------------------------------------------------------------

test("an invalid configuration never throws: records pass through and stats report config_error", () => {
  const cycle = {};
  cycle.self = cycle;
  const bad = [
    "{not json",
    '{"window":{"length_seconds":"an hour"}}',
    { detections: { no_such_detection: {} } },
    { detections: { [SG]: { mode: "guess" } } },
    encoder.encode('{"unknown_section":1}'),
    cycle,
  ];
  for (const config of bad) {
    const t = new Tripline(config);
    const stats = t.stats();
    assert.equal(typeof stats.config_error, "string", `config_error for ${String(config)}`);
    assert.ok(stats.config_error.length > 0);
    assert.equal(stats.counters.config_errors, 1);
    const input = decoder.decode(jobCreated).trim();
    const { records, alerts } = t.process(input);
    assert.deepEqual(lines(records), [input], "passed through unchanged");
    assert.deepEqual(alerts, []);
    assert.deepEqual(t.flush(2e9), []);
    assert.deepEqual(t.finishAll(), []);
    assert.equal(t.model(SG), null);
  }
  const t = new Tripline({ detections: { [SG]: { mode: "guess" } } });
  assert.match(t.stats().config_error, /detections\.abnormally_high_cloud_security_group_api_calls\.mode/);
});

test("configuration can disable a detection", () => {
  const t = new Tripline({ detections: { [BATCH]: { enabled: false } } });
  assert.equal(t.stats().config_error, null);
  const input = decoder.decode(jobCreated).trim();
  assert.deepEqual(lines(t.process(input).records), [input]);
  assert.deepEqual(t.finishAll(), []);
  assert.equal(t.model(BATCH), null);
});

test("detections() lists the catalog: every key a configuration takes, the seeds among them", () => {
  const catalog = detections();
  const keys = catalog.map((d) => d.key);
  assert.ok(keys.includes(BATCH) && keys.includes(SG));
  assert.equal(new Set(keys).size, keys.length);
  assert.ok(catalog.some((d) => d.key.startsWith("sigma_")) && catalog.some((d) => !d.enabled_by_default));
  // Each key is one the engine takes: turning it off is no configuration error.
  for (const { key } of catalog) {
    const t = new Tripline({ detections: { [key]: { enabled: false } } });
    assert.equal(t.stats().config_error, null, key);
    t.free();
  }
});

// --- the generated four weeks ------------------------------------------------------------------

// The seeds' alerts; the rest of the default pack fires on the generator's ordinary traffic too
// (security-group changes, new provisioning sources), which the Rust rule tests pin.
function assertPlanted(alerts, planted) {
  const batch = alerts.filter((a) => a.detection.name === "AWS Exfiltration via Batch Service");
  const spikes = alerts.filter((a) => a.detection.name === "Abnormally High Number Of Cloud Security Group API Calls");

  const wantBatch = planted.filter((p) => p.kind === "batch_job_created");
  const wantSpikes = planted.filter((p) => p.kind === "security_group_spike");
  assert.equal(wantBatch.length, 2);
  assert.equal(wantSpikes.length, 2);

  assert.deepEqual(
    batch.map((a) => [a.result.aws_account_id, a.result.count, a.window.start]).sort(),
    wantBatch.map((p) => [p.actor, p.count, p.hour_start]).sort(),
    "exactly the planted batch jobs",
  );
  assert.deepEqual(
    batch.map((a) => a.result.aws_account_id).sort(),
    ["123456789012", "210987654321"],
  );
  for (const a of batch) {
    assert.equal(a.risk_score, 64);
    assert.equal(a.result.eventName, "JobCreated");
  }

  assert.deepEqual(
    spikes.map((a) => [a.result.user, a.result.security_group_api_calls, a.window.start]).sort(),
    wantSpikes.map((p) => [p.actor, p.count, p.hour_start]).sort(),
    "exactly the planted spike hours",
  );
  for (const a of spikes) {
    assert.equal(a.risk_object, a.result.user);
    assert.equal(a.risk_object_type, "user");
    assert.ok(a.result.security_group_api_calls > a.result.expected_upper_threshold);
    assert.match(a.risk_message, /violating the dynamic threshold of/);
  }
}

test("generated data: learning online over 4 weeks finds exactly the planted anomalies", () => {
  const { bytes, planted } = exampleData();
  const t = new Tripline({});
  const { records, alerts } = t.process(bytes);
  const all = [...alerts, ...t.finishAll()];
  assertPlanted(all, planted);
  assert.equal(lines(records).length, exampleData().lines.length);
  const stats = t.stats();
  assert.equal(stats.counters.alerts, all.length);
  assert.equal(stats.counters.parse_errors + stats.counters.field_errors, 0);
  assert.ok(stats.detections[SG].baseline_groups > 0);
});

test("generated data: batch boundaries do not matter (many small batches = one big batch)", () => {
  const { lines: all, planted } = exampleData();
  const t = new Tripline({});
  const alerts = [];
  const size = 997;
  let out = 0;
  for (let i = 0; i < all.length; i += size) {
    const batch = t.process(encoder.encode(all.slice(i, i + size).join("\n")));
    out += lines(batch.records).length;
    alerts.push(...batch.alerts);
  }
  alerts.push(...t.finishAll());
  assert.equal(out, all.length);
  assertPlanted(alerts, planted);
});

test("snapshot and restore carry an engine across instances", () => {
  const { lines: all, planted } = exampleData();
  const half = Math.floor(all.length / 2);
  const first = new Tripline({});
  const alerts = [...first.process(all.slice(0, half).join("\n")).alerts];
  const snap = first.snapshot();
  assert.ok(snap instanceof Uint8Array && snap.length > 0);
  first.free();

  const second = new Tripline({});
  assert.deepEqual(second.restore(snap), { ok: true });
  alerts.push(...second.process(all.slice(half).join("\n")).alerts, ...second.finishAll());
  assertPlanted(alerts, planted);
  assert.equal(second.stats().counters.restores, 1);

  // A damaged snapshot is refused and the current state is kept.
  const before = second.stats();
  const damaged = snap.slice();
  damaged[damaged.length - 3] ^= 0x55;
  for (const junk of [damaged, new Uint8Array(0), "not a snapshot", snap.subarray(0, 20)]) {
    const r = second.restore(junk);
    assert.equal(r.ok, false);
    assert.equal(typeof r.error, "string");
  }
  const after = second.stats();
  assert.equal(after.counters.restore_failures, 4);
  assert.equal(after.watermark, before.watermark);
  assert.equal(after.detections[SG].baseline_groups, before.detections[SG].baseline_groups);
});

test("a model fitted on three weeks, loaded into a judge-only engine, flags week four", () => {
  const { lines: all, planted } = exampleData();
  const cutoff = "2026-10-26T00:00:00Z";
  const history = all.filter((l) => eventTime(l) < cutoff);
  const recent = all.filter((l) => eventTime(l) >= cutoff);
  assert.ok(history.length > 0 && recent.length > 0);

  const learner = new Tripline({ detections: { [SG]: { mode: "learn" } } });
  learner.process(history.join("\n"));
  learner.finishAll();
  const model = learner.model(SG);
  assert.equal(model.detection, SG);
  assert.ok(model.groups.length > 0);
  for (const g of model.groups) {
    assert.equal(typeof g.user, "string");
    assert.ok([0, 4, 8, 12, 16, 20].includes(g.HourOfDay));
    assert.ok(g.isWeekend === 0 || g.isWeekend === 1);
    assert.ok(g.fit && typeof g.fit.mean === "number" && typeof g.fit.std === "number" && g.fit.cardinality >= 1);
  }

  const judge = new Tripline({ detections: { [SG]: { mode: "judge" } } });
  assert.deepEqual(judge.loadModel(model), { ok: true }, "model as an object");
  assert.deepEqual(judge.loadModel(JSON.stringify(model)), { ok: true }, "model as text");
  assert.deepEqual(judge.loadModel(encoder.encode(JSON.stringify(model))), { ok: true }, "model as bytes");
  const alerts = [...judge.process(encoder.encode(recent.join("\n"))).alerts, ...judge.finishAll()];
  const spikes = alerts.filter((a) => a.detection.name.startsWith("Abnormally"));
  assert.deepEqual(
    spikes.map((a) => [a.result.user, a.window.start]).sort(),
    planted.filter((p) => p.kind === "security_group_spike").map((p) => [p.actor, p.hour_start]).sort(),
  );
  // The chart's JS threshold (mean + 2.807033768 * std, 4 decimals) equals the engine's.
  for (const a of spikes) {
    const start = new Date(a.window.start);
    const group = model.groups.find(
      (g) =>
        g.user === a.result.user &&
        g.HourOfDay === Math.floor(start.getUTCHours() / 4) * 4 &&
        g.isWeekend === (start.getUTCDay() === 0 || start.getUTCDay() === 6 ? 1 : 0),
    );
    assert.ok(group, "the alert's baseline group is in the model");
    assert.equal(upperThreshold(group.fit), a.result.expected_upper_threshold);
  }
  // A judge-only engine does not learn. (Numbers are compared to 1e-12: serde_json without its
  // `float_roundtrip` feature may read a float back one unit in the last place off.)
  assertClose(judge.model(SG).groups, model.groups);

  const r = judge.loadModel("{nope");
  assert.equal(r.ok, false);
  assert.match(r.error, /not valid JSON/);
  assert.equal(judge.loadModel({ detection: "nothing" }).ok, false);
  assert.equal(judge.stats().counters.model_errors, 2);
  assert.equal(judge.model("no_such_detection"), null);
});

test("upperThreshold ignores groups with fewer than 16 samples", () => {
  assert.equal(upperThreshold({ mean: 3, std: 1, cardinality: 15 }), null);
  assert.equal(upperThreshold({ mean: 3, std: 1, cardinality: 16 }), 5.807);
  assert.equal(upperThreshold(null), null);
});

test("the raw module also initializes synchronously from bytes (Node's initSync path)", () => {
  // Already initialized above: initSync must be a harmless no-op then.
  initSync(readFileSync(path.join(root, "dist/js/tripline_bg.wasm")));
  assert.deepEqual(parseNdjson('{"a":1}\n\n{"b":2}\n'), [{ a: 1 }, { b: 2 }]);
});

test("a fresh Node process can initialize with initSync(bytes) alone", async () => {
  const { execFileSync } = await import("node:child_process");
  const script = `
    import { readFileSync } from "node:fs";
    import { initSync, Tripline } from ${JSON.stringify(dist)};
    initSync(readFileSync(${JSON.stringify(path.join(root, "dist/js/tripline_bg.wasm"))}));
    const t = new Tripline({});
    t.process(readFileSync(${JSON.stringify(path.join(shared, "splunk_security_content_jobcreated_example.json"))}));
    console.log(JSON.stringify(t.finishAll().map((a) => a.risk_score)));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(out.trim(), "[64]");
});

// --- alert formats (output.alert_format) -------------------------------------------------------

// The schemas' facts the Rust format tests check every alert against (tests/alert_formats.rs,
// generated from ocsf/ocsf-schema 1.6.0 and elastic/ecs 9.4.0): here only what says that the JS
// host passes the setting through, the required attributes and the defining values.
const schemas = path.join(root, "tests/schemas");
const ocsfFacts = JSON.parse(readFileSync(path.join(schemas, "ocsf-1.6.0-detection_finding.json"), "utf8"));
const ecsFacts = JSON.parse(readFileSync(path.join(schemas, "ecs-9.4.0-fields.json"), "utf8"));

/** Every alert of the four generated weeks, one engine configured with `config`. */
function exampleAlerts(config) {
  const t = new Tripline(config);
  assert.equal(t.stats().config_error, null);
  const { alerts } = t.process(exampleData().bytes);
  return [...alerts, ...t.finishAll()];
}

/** The names of `attributes` (OCSF facts) that are required under `profiles` and absent from `object`. */
function missingRequired(object, attributes, profiles) {
  return Object.entries(attributes)
    .filter(([name, fact]) => fact.requirement === "required" && (!fact.profile || profiles.includes(fact.profile)))
    .map(([name]) => name)
    .filter((name) => object?.[name] === undefined);
}

test("alert_format ocsf and ecs in the constructor's configuration: the same alerts as Splunk risk events", () => {
  const splunk = exampleAlerts({});
  const { planted } = exampleData();
  assertPlanted(splunk, planted);
  const ocsf = exampleAlerts({ output: { alert_format: "ocsf" } });
  const ecs = exampleAlerts({ output: { alert_format: "ecs" } });
  assert.equal(ocsf.length, splunk.length);
  assert.equal(ecs.length, splunk.length);

  const { class: ocsfClass, objects } = ocsfFacts;
  splunk.forEach((risk, i) => {
    const finding = ocsf[i];
    const profiles = finding.metadata.profiles;
    assert.deepEqual(missingRequired(finding, ocsfClass.attributes, profiles), [], `finding ${i}`);
    for (const object of ["finding_info", "metadata", "cloud"]) {
      assert.deepEqual(missingRequired(finding[object], objects[object], profiles), [], `finding ${i}: ${object}`);
    }
    assert.equal(finding.class_uid, 2004);
    assert.equal(finding.class_uid, ocsfClass.class_uid);
    assert.equal(finding.category_uid, ocsfClass.category_uid);
    assert.equal(finding.type_uid, finding.class_uid * 100 + finding.activity_id);
    assert.equal(finding.metadata.version, ocsfFacts.ocsf_version);
    assert.match(finding.finding_info.uid, new RegExp(`^${risk.detection.id}-[0-9a-f]{16}$`));
    assert.equal(finding.finding_info.title, risk.detection.name);
    assert.equal(finding.finding_info.analytic.uid, risk.detection.id);
    assert.equal(finding.message, risk.risk_message);
    assert.equal(finding.risk_score, risk.risk_score);
    assert.equal(finding.start_time, Date.parse(risk.window.start));
    assert.deepEqual(finding.unmapped.result, risk.result);

    const document = ecs[i];
    assert.equal(document.event.kind, "alert");
    assert.ok(ecsFacts.fields["event.kind"].allowed_values.includes(document.event.kind));
    assert.equal(document.ecs.version, ecsFacts.ecs_version);
    assert.equal(document.event.id, finding.finding_info.uid, "one id for the alert in both formats");
    assert.equal(document.rule.id, risk.detection.id);
    assert.equal(document.rule.name, risk.detection.name);
    for (const field of Object.keys(document.rule)) assert.ok(ecsFacts.fields[`rule.${field}`], `rule.${field} is an ECS field`);
    assert.equal(document.event.risk_score, risk.risk_score);
    assert.equal(document.event.start, risk.window.start);
    assert.equal(document.message, risk.risk_message);
    assert.ok(!Number.isNaN(Date.parse(document["@timestamp"])));
    assert.deepEqual(document.tripline.result, risk.result);
  });

  // The planted alerts, by their own fields: the batch jobs' accounts, the spikes' users.
  const named = (list, name, fact) => list.filter((a) => name(a) === "AWS Exfiltration via Batch Service").map(fact).sort();
  const accounts = planted.filter((p) => p.kind === "batch_job_created").map((p) => p.actor).sort();
  assert.deepEqual(named(ocsf, (f) => f.finding_info.title, (f) => f.cloud.account.uid), accounts);
  assert.deepEqual(named(ecs, (d) => d.rule.name, (d) => d.cloud.account.id), accounts);
  const spike = "Abnormally High Number Of Cloud Security Group API Calls";
  const users = planted.filter((p) => p.kind === "security_group_spike").map((p) => p.actor).sort();
  assert.deepEqual(ocsf.filter((f) => f.finding_info.title === spike).map((f) => f.evidences[0].actor.user.name).sort(), users);
  assert.deepEqual(ecs.filter((d) => d.rule.name === spike).map((d) => d.user.name).sort(), users);
});
