// The playground: reads CloudTrail, runs tripline's WebAssembly engine in the page, shows the
// alerts and, per user, hourly security-group calls against the learned threshold.
//
// The engine does all the detecting. This file only splits the input into daily batches (so it
// can read the learned baseline between days via model()), counts hourly calls for the charts,
// and renders.

import { renderUserChart } from "./chart.js";

const PACKAGE = "../../dist/js/index.js";
const EXAMPLE = "../data/generated/cloudtrail.ndjson";
const SG = "abnormally_high_cloud_security_group_api_calls";
const SG_COMMANDS = [
  "CreateSecurityGroup",
  "DeleteSecurityGroup",
  "AuthorizeSecurityGroupIngress",
  "AuthorizeSecurityGroupEgress",
  "RevokeSecurityGroupIngress",
  "RevokeSecurityGroupEgress",
];
const HOUR = 3600_000;
const DAY = 24 * HOUR;

const $ = (id) => document.getElementById(id);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let tripline = null; // the package module
let source = null; // {name, bytes} from a file or the example; pasted text takes precedence
let lastOutput = null; // tagged NDJSON chunks, for download

// --- start-up -------------------------------------------------------------------------------------

async function start() {
  wireInput();
  try {
    tripline = await import(PACKAGE);
    await tripline.ready();
  } catch (e) {
    setStatus("");
    showBanner(
      "error",
      `Could not load the WebAssembly package from <code>dist/js/</code>: build it with <code>make js</code> ` +
        `and serve the project root (<code>node examples/playground/serve.mjs</code>). <span class="muted">${escapeHtml(String(e))}</span>`,
    );
    return;
  }
  const catalog = tripline.detections();
  $("build").textContent = `detections: ${catalog.filter((d) => d.enabled_by_default).length} of ${catalog.length} on by default`;
  setStatus("Ready. Drop a file, paste records or load the example.");
  updateRunButton();
  document.body.dataset.ready = "true";
}

function wireInput() {
  const drop = $("drop");
  const file = $("file");
  drop.addEventListener("click", () => file.click());
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      file.click();
    }
  });
  file.addEventListener("change", () => file.files[0] && takeFile(file.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const f = e.dataTransfer?.files?.[0];
    if (f) takeFile(f);
  });
  $("paste").addEventListener("input", () => {
    if ($("paste").value.trim() !== "") setSource(null);
    updateRunButton();
  });
  $("example").addEventListener("click", loadExample);
  $("run").addEventListener("click", run);
  $("clear").addEventListener("click", () => {
    setSource(null);
    $("paste").value = "";
    $("results").hidden = true;
    $("about").hidden = false;
    hideBanner();
    updateRunButton();
    setStatus(tripline ? "Ready." : "");
  });
  $("download").addEventListener("click", download);
}

async function takeFile(f) {
  setSource({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) });
  $("paste").value = "";
  updateRunButton();
  setStatus(`Loaded ${f.name}. Click Run.`);
}

async function loadExample() {
  setStatus("Fetching the example data…");
  try {
    const res = await fetch(EXAMPLE);
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    setSource({ name: "examples/data/generated/cloudtrail.ndjson", bytes: new Uint8Array(await res.arrayBuffer()) });
    $("paste").value = "";
    updateRunButton();
    await run();
  } catch (e) {
    setStatus("");
    showBanner("error", `Could not fetch the example data (${escapeHtml(e.message)}). Generate it with <code>make example-data</code>.`);
  }
}

function setSource(s) {
  source = s;
  if (!s) {
    $("source").textContent = "No input yet";
    $("drop").classList.remove("loaded");
    return;
  }
  let lines = 0;
  for (let i = 0; i < s.bytes.length; i++) if (s.bytes[i] === 10) lines++;
  $("source").textContent = `${s.name} · ${formatBytes(s.bytes.length)} · ${lines.toLocaleString()} lines`;
  $("drop").classList.add("loaded");
}

function updateRunButton() {
  $("run").disabled = !tripline || (!source && $("paste").value.trim() === "");
}

// --- running --------------------------------------------------------------------------------------

async function run() {
  if (!tripline) return;
  const input = $("paste").value.trim() !== "" ? encoder.encode($("paste").value) : source?.bytes;
  if (!input || input.length === 0) return;
  hideBanner();
  $("run").disabled = true;
  setStatus("Running…");
  // Let the status paint before the (synchronous) work.
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  try {
    const result = analyze(input, $("config").value, $("finish").checked);
    render(result);
    const s = result.stats.counters;
    setStatus(
      `${plural(s.records, "record")} in ${result.engineMs.toFixed(0)} ms of engine time` +
        (input.length > 1_000_000 ? ` (${formatBytes(input.length / (result.engineMs / 1000))}/s).` : "."),
    );
  } catch (e) {
    console.error(e);
    setStatus("");
    showBanner("error", `Something went wrong: ${escapeHtml(String(e && e.stack ? e.message : e))}`);
  } finally {
    updateRunButton();
  }
}

/** Splits the input into record strings: NDJSON lines, or the records of S3 exports. */
function splitRecords(bytes) {
  const text = decoder.decode(bytes);
  const trimmed = text.trim();
  const isExport = (s) => /^\{\s*"Records"\s*:/.test(s);
  if (isExport(trimmed)) {
    try {
      return JSON.parse(trimmed).Records.map((r) => JSON.stringify(r));
    } catch {
      /* not one export: read it line by line */
    }
  }
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") continue;
    if (isExport(line.trim())) {
      try {
        out.push(...JSON.parse(line).Records.map((r) => JSON.stringify(r)));
        continue;
      } catch {
        /* an unreadable line stays a record: the engine counts it */
      }
    }
    out.push(line);
  }
  return out;
}

function readConfig(text) {
  let parsed = null;
  try {
    parsed = JSON.parse(text || "{}");
  } catch {
    /* the engine reports the error */
  }
  const sg = parsed?.detections?.[SG] ?? {};
  return {
    text: text.trim() === "" ? "{}" : text,
    userField: { principal_id: "principalId", principalId: "principalId", user_name: "userName", userName: "userName", arn: "arn" }[sg.user_field] ?? "principalId",
    offsetMs: (Number(sg.utc_offset_minutes) || 0) * 60_000,
  };
}

/**
 * Runs the engine over the input in daily batches (batch boundaries do not change results),
 * reading the learned baseline before each day, and counts hourly security-group calls.
 */
function analyze(input, configText, finish) {
  const config = readConfig(configText);
  const records = splitRecords(input);

  // Parse each record once for the chart counts and the day it belongs to.
  const counts = new Map(); // user -> Map(hourMs -> count)
  const days = []; // [{day, lines: []}]
  let minHour = Infinity;
  let maxHour = -Infinity;
  for (const line of records) {
    let rec = null;
    try {
      rec = JSON.parse(line);
    } catch {
      /* passed to the engine all the same */
    }
    const t = rec && typeof rec.eventTime === "string" ? Date.parse(rec.eventTime) : NaN;
    const day = Number.isFinite(t) ? Math.floor(t / DAY) : days.at(-1)?.day ?? 0;
    // A new batch at each new (later) day; out-of-order records join the current batch, so
    // shuffled input cannot turn into thousands of batches.
    if (!days.length || day > days.at(-1).day) days.push({ day, lines: [] });
    days.at(-1).lines.push(line);
    if (!Number.isFinite(t)) continue;
    const hour = Math.floor(t / HOUR) * HOUR;
    minHour = Math.min(minHour, hour);
    maxHour = Math.max(maxHour, hour);
    const user = rec.userIdentity?.[config.userField];
    const failed = rec.errorCode !== undefined && rec.errorCode !== null;
    if (typeof user === "string" && SG_COMMANDS.includes(rec.eventName) && !failed) {
      if (!counts.has(user)) counts.set(user, new Map());
      const m = counts.get(user);
      m.set(hour, (m.get(hour) ?? 0) + 1);
    }
  }

  const engine = new tripline.Tripline(config.text);
  const alerts = [];
  const output = [];
  const baselines = []; // [{fromMs, thresholds: Map("user|block|weekend" -> {upper, n})}]
  let engineMs = 0;
  let stats;
  let finalModel;
  try {
    for (const { day, lines } of days) {
      const t0 = performance.now();
      const model = engine.model(SG);
      engineMs += performance.now() - t0;
      if (model) baselines.push({ fromMs: day * DAY, thresholds: thresholdsOf(model, tripline.upperThreshold) });
      const bytes = encoder.encode(lines.join("\n"));
      const t1 = performance.now();
      const out = engine.process(bytes);
      engineMs += performance.now() - t1;
      output.push(out.records);
      alerts.push(...out.alerts);
    }
    if (finish) alerts.push(...engine.finishAll());
    stats = engine.stats();
    finalModel = engine.model(SG);
  } finally {
    engine.free();
  }
  lastOutput = output;
  return { alerts, stats, counts, baselines, minHour, maxHour, config, engineMs, finalModel };
}

function thresholdsOf(model, upperThreshold) {
  const map = new Map();
  for (const g of model.groups ?? []) {
    const upper = upperThreshold(g.fit);
    if (upper !== null) map.set(`${g.user}|${g.HourOfDay}|${g.isWeekend}`, { upper, n: g.fit.cardinality });
  }
  return map;
}

/** The threshold the detection had learned for `user`'s hour `hourMs`, or null. */
function thresholdAt(baselines, config, user, hourMs) {
  let current = null;
  for (const b of baselines) {
    if (b.fromMs <= hourMs) current = b;
    else break;
  }
  if (!current) return null;
  const local = new Date(hourMs + config.offsetMs);
  const block = Math.floor(local.getUTCHours() / 4) * 4;
  const weekday = local.getUTCDay();
  const weekend = weekday === 0 || weekday === 6 ? 1 : 0;
  return current.thresholds.get(`${user}|${block}|${weekend}`) ?? null;
}

// --- rendering ------------------------------------------------------------------------------------

function render(r) {
  $("results").hidden = false;
  $("about").hidden = true;
  const c = r.stats.counters;
  if (r.stats.config_error) {
    showBanner(
      "warn",
      `<strong>Configuration error</strong>: ${escapeHtml(r.stats.config_error)}. No detection ran; every record passed through unchanged.`,
    );
  }
  const errors = c.parse_errors + c.field_errors;
  $("tiles").innerHTML = [
    tile("Records", c.records.toLocaleString(), r.minHour <= r.maxHour ? `${formatDay(r.minHour)} – ${formatDay(r.maxHour)}` : ""),
    tile("Tagged in real time", c.matched.toLocaleString(), "selected by a detection"),
    tile("Alerts", r.alerts.length.toLocaleString(), summarizeAlerts(r.alerts), r.alerts.length ? "hot" : ""),
    tile("Unreadable", errors.toLocaleString(), errors ? `${c.parse_errors} not JSON, ${c.field_errors} bad fields` : "records passed through", errors ? "warn" : ""),
    tile(
      "Engine time",
      `${r.engineMs.toFixed(0)} ms`,
      c.records >= 1000 ? `${Math.round((c.records / Math.max(r.engineMs, 0.001)) * 1000).toLocaleString()} records/s` : "in this browser",
    ),
  ].join("");

  renderAlerts(r.alerts);
  renderCharts(r);
}

function tile(label, value, sub, cls = "") {
  return `<div class="tile ${cls}"><div class="label">${escapeHtml(label)}</div><div class="value">${escapeHtml(value)}</div><div class="sub">${escapeHtml(sub)}</div></div>`;
}

function summarizeAlerts(alerts) {
  const by = new Map();
  for (const a of alerts) by.set(a.detection.analytic_type, (by.get(a.detection.analytic_type) ?? 0) + 1);
  return [...by].map(([k, v]) => `${v} ${k}`).join(", ") || "none";
}

function renderAlerts(alerts) {
  const body = $("alerts").tBodies[0];
  body.innerHTML = "";
  $("alert-count").textContent = alerts.length ? String(alerts.length) : "";
  $("no-alerts").hidden = alerts.length > 0;
  $("alerts").hidden = alerts.length === 0;
  const sorted = [...alerts].sort((a, b) => a.window.start.localeCompare(b.window.start));
  for (const a of sorted) {
    const tr = document.createElement("tr");
    tr.className = "alert-row";
    tr.dataset.detection = a.detection.name;
    tr.dataset.riskObject = a.risk_object ?? "";
    tr.tabIndex = 0;
    const type = a.detection.analytic_type;
    const partial = a.window.partial ? ` <span class="pill muted-pill" title="window closed early">${escapeHtml(String(a.window.partial))}</span>` : "";
    tr.innerHTML = `
      <td><div class="det">${escapeHtml(a.detection.name)}</div><span class="pill ${type === "TTP" ? "ttp" : "anomaly"}">${escapeHtml(type)}</span></td>
      <td class="nowrap">${escapeHtml(formatWindow(a.window.start, a.window.end))}${partial}</td>
      <td><div class="mono">${escapeHtml(a.risk_object ?? "—")}</div><div class="muted small">${escapeHtml(a.risk_object_type)}${a.threat_object ? ` · from ${escapeHtml(a.threat_object)}` : ""}</div></td>
      <td class="num"><span class="score ${a.risk_score >= 50 ? "high" : "mid"}">${a.risk_score}</span></td>
      <td class="msg">${escapeHtml(a.risk_message)}</td>`;
    const details = document.createElement("tr");
    details.className = "details";
    details.hidden = true;
    details.innerHTML = `<td colspan="5"><pre>${escapeHtml(JSON.stringify({ result: a.result, window: a.window, detection: a.detection }, null, 2))}</pre></td>`;
    const toggle = () => {
      details.hidden = !details.hidden;
      tr.classList.toggle("open", !details.hidden);
      if (a.result.user) document.getElementById(chartId(a.result.user))?.scrollIntoView({ behavior: "smooth", block: "center" });
    };
    tr.addEventListener("click", toggle);
    tr.addEventListener("keydown", (e) => e.key === "Enter" && toggle());
    body.append(tr, details);
  }
}

function renderCharts(r) {
  const box = $("charts");
  box.innerHTML = "";
  const spikeAlerts = r.alerts.filter((a) => a.detection.name.startsWith("Abnormally High"));
  const alertedUsers = new Set(spikeAlerts.map((a) => a.result.user));
  const users = [...r.counts.keys()].sort((a, b) => {
    const d = Number(alertedUsers.has(b)) - Number(alertedUsers.has(a));
    if (d) return d;
    return total(r.counts.get(b)) - total(r.counts.get(a));
  });
  $("no-charts").hidden = users.length > 0;
  for (const el of document.querySelectorAll(".legend, .explain")) el.hidden = users.length === 0;
  const hours = [];
  for (let h = r.minHour; h <= r.maxHour; h += HOUR) hours.push(h);
  for (const user of users) {
    const m = r.counts.get(user);
    const series = hours.map((h) => {
      const th = thresholdAt(r.baselines, r.config, user, h);
      return { t: h, count: m.get(h) ?? 0, upper: th?.upper ?? null, n: th?.n ?? 0 };
    });
    const marks = spikeAlerts
      .filter((a) => a.result.user === user)
      .map((a) => ({ t: Date.parse(a.window.start), count: a.result.security_group_api_calls, upper: a.result.expected_upper_threshold }));
    const figure = document.createElement("figure");
    figure.className = "chart" + (alertedUsers.has(user) ? " alerted" : "");
    figure.id = chartId(user);
    figure.dataset.user = user;
    const peak = Math.max(...m.values());
    figure.innerHTML = `<figcaption><span class="mono user">${escapeHtml(user)}</span>
      ${marks.length ? `<span class="pill alert-pill">${marks.length} alert${marks.length > 1 ? "s" : ""}</span>` : ""}
      <span class="muted small">${total(m).toLocaleString()} calls · peak ${peak}/h</span></figcaption>`;
    figure.append(renderUserChart({ series, marks, offsetMs: r.config.offsetMs, tooltip: $("tooltip") }));
    box.append(figure);
  }
}

const total = (m) => [...m.values()].reduce((a, b) => a + b, 0);
const chartId = (user) => `chart-${user.replace(/[^A-Za-z0-9_-]/g, "_")}`;

function download() {
  if (!lastOutput) return;
  const blob = new Blob(lastOutput, { type: "application/x-ndjson" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "tripline-tagged.ndjson";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// --- small helpers --------------------------------------------------------------------------------

function setStatus(text) {
  $("status").textContent = text;
}

function showBanner(kind, html) {
  const b = $("banner");
  b.className = `banner ${kind}`;
  b.innerHTML = html;
  b.hidden = false;
}

function hideBanner() {
  $("banner").hidden = true;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}

function formatBytes(n) {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

function formatDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function formatWindow(start, end) {
  const s = new Date(start);
  const e = new Date(end);
  const hm = (d) => d.toISOString().slice(11, 16);
  const sameDay = s.toISOString().slice(0, 10) === new Date(e - 1).toISOString().slice(0, 10);
  return sameDay
    ? `${WEEKDAYS[s.getUTCDay()]} ${formatDay(s)} ${hm(s)}–${hm(e)}`
    : `${formatDay(s)} ${hm(s)} – ${formatDay(e)} ${hm(e)}`;
}

start();
