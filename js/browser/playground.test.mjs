// End-to-end test of the playground in headless Chromium (run by scripts/test-browser.sh, which
// installs Debian's chromium and a pinned playwright-core and sets PLAYWRIGHT_CORE_DIR).
//
// Serves the project root on 127.0.0.1, loads examples/playground/, feeds it the generated example
// data, a pasted S3 export of the real JobCreated record and a bad configuration, and checks what
// a user would see. Saves target/test-artifacts/playground.png.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const artifacts = path.join(root, "target/test-artifacts");
const shared = path.resolve(root, "../shared/data");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const playwrightDir = process.env.PLAYWRIGHT_CORE_DIR ?? path.join(root, "target/tools/playwright");
const { chromium } = createRequire(path.join(playwrightDir, "package.json"))("playwright-core");

const planted = JSON.parse(readFileSync(path.join(root, "examples/data/generated/planted.json"), "utf8"));

let server;
let base;
let context;
let profile;

before(async () => {
  for (const f of ["dist/js/index.js", "dist/js/tripline_bg.wasm", "examples/data/generated/cloudtrail.ndjson"]) {
    assert.ok(existsSync(path.join(root, f)), `${f} is missing: run \`make js example-data\``);
  }
  server = spawn(process.execPath, [path.join(root, "examples/playground/serve.mjs"), "0"], { stdio: ["ignore", "pipe", "inherit"] });
  base = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n")[0];
      if (out.includes("\n")) resolve(line.trim());
    });
    server.on("exit", (code) => reject(new Error(`static server exited (${code})`)));
    setTimeout(() => reject(new Error("static server did not start")), 10_000);
  });
  profile = mkdtempSync(path.join(tmpdir(), "tripline-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await context?.close();
  server?.kill();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** A fresh page on the playground, with its errors collected. */
async function openPlayground() {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  const wasm = page.waitForResponse((r) => r.url().endsWith("/dist/js/tripline_bg.wasm"));
  await page.goto(`${base}examples/playground/`);
  const response = await wasm;
  assert.equal(response.status(), 200);
  assert.equal(response.headers()["content-type"], "application/wasm");
  await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
  return { page, errors };
}

async function alertRows(page) {
  return page.$$eval("#alerts tbody tr.alert-row", (rows) =>
    rows.map((r) => ({
      detection: r.dataset.detection,
      riskObject: r.dataset.riskObject,
      cells: [...r.cells].map((c) => c.innerText.trim()),
    })),
  );
}

test("the example data shows the planted alerts and a chart per user", async () => {
  const { page, errors } = await openPlayground();
  await page.click("#example");
  await page.waitForSelector("#alerts tbody tr.alert-row", { timeout: 60_000 });
  const rows = await alertRows(page);

  const batch = rows.filter((r) => r.detection === "AWS Exfiltration via Batch Service");
  const spikes = rows.filter((r) => r.detection === "Abnormally High Number Of Cloud Security Group API Calls");
  assert.deepEqual(batch.map((r) => r.riskObject).sort(), ["123456789012", "210987654321"]);
  assert.ok(spikes.length >= 1, "at least one security-group spike alert");
  assert.deepEqual(
    spikes.map((r) => r.riskObject).sort(),
    planted.filter((p) => p.kind === "security_group_spike").map((p) => p.actor).sort(),
  );
  for (const r of batch) {
    assert.equal(r.cells[3], "64", "risk score column");
    assert.match(r.cells[4], /AWS Batch Job is created on account id - \d{12}/);
    assert.match(r.cells[1], /\d{4}-\d{2}-\d{2} \d{2}:00–\d{2}:00/, "time window column");
  }
  assert.equal(await page.textContent("#alert-count"), String(rows.length));

  // Charts: one per user with security-group activity, alerted users first, drawn.
  const charts = await page.$$eval("#charts figure.chart", (figs) =>
    figs.map((f) => ({
      user: f.dataset.user,
      alerted: f.classList.contains("alerted"),
      bars: f.querySelector("path.bars")?.getAttribute("d")?.length ?? 0,
      threshold: f.querySelector("path.threshold")?.getAttribute("d")?.length ?? 0,
      dots: f.querySelectorAll(".marks circle").length,
      weekends: f.querySelectorAll(".weekend rect").length,
      box: (() => {
        const b = f.querySelector("svg").getBoundingClientRect();
        return [b.width, b.height];
      })(),
    })),
  );
  assert.ok(charts.length >= 2, `charts: ${charts.length}`);
  const alerted = charts.filter((c) => c.alerted);
  assert.deepEqual(alerted.map((c) => c.user).sort(), spikes.map((r) => r.riskObject).sort());
  assert.ok(charts.slice(0, alerted.length).every((c) => c.alerted), "alerted users come first");
  for (const c of charts) {
    assert.ok(c.bars > 100, `${c.user}: bars drawn`);
    assert.ok(c.box[0] > 600 && c.box[1] > 80, `${c.user}: chart has a size (${c.box})`);
    assert.ok(c.weekends >= 4, `${c.user}: four weeks have weekends`);
  }
  for (const c of alerted) {
    assert.ok(c.threshold > 20, `${c.user}: threshold line drawn`);
    assert.ok(c.dots >= 1, `${c.user}: alert marked`);
  }

  // Hovering a chart shows the read-out.
  const svg = await page.$("#charts figure.chart svg");
  await svg.scrollIntoViewIfNeeded();
  const b = await svg.boundingBox();
  await page.mouse.move(b.x + b.width * 0.6, b.y + b.height / 2);
  assert.equal(await page.isVisible("#tooltip"), true);
  assert.match(await page.textContent("#tooltip"), /call/);
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));

  // The summary tiles.
  const tiles = await page.$$eval(".tile", (ts) => ts.map((t) => t.textContent));
  assert.ok(tiles.some((t) => /Records\s*13,876/.test(t)), tiles.join(" | "));

  mkdirSync(artifacts, { recursive: true });
  // The first screen: with the whole default pack the alert table runs to thousands of rows.
  await page.screenshot({ path: path.join(artifacts, "playground.png") });
  assert.deepEqual(errors, []);
  await page.close();
});

test("a pasted S3 export of the real JobCreated record gives its alert", async () => {
  const { page, errors } = await openPlayground();
  const record = readFileSync(path.join(shared, "splunk_security_content_jobcreated_example.json"), "utf8").trim();
  await page.fill("#paste", `{"Records": [${record}]}`);
  await page.click("#run");
  await page.waitForSelector("#alerts tbody tr.alert-row");
  const rows = await alertRows(page);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].riskObject, "111111111111");
  assert.equal(rows[0].cells[3], "64");
  assert.match(rows[0].cells[1], /2023-04-24 23:00–00:00/);
  assert.match(rows[0].cells[4], /account id - 111111111111 from src_ip s3\.amazonaws\.com/);
  assert.equal(await page.isVisible("#no-charts"), true, "no security-group activity to chart");
  // Clicking the row shows the search's result row.
  await page.click("#alerts tbody tr.alert-row");
  assert.match(await page.textContent("#alerts tbody tr.details pre"), /"firstTime": "2023-04-24T23:51:17"/);
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, "playground-jobcreated.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test("a bad configuration is reported and records pass through", async () => {
  const { page, errors } = await openPlayground();
  const record = readFileSync(path.join(shared, "splunk_security_content_jobcreated_example.json"), "utf8").trim();
  await page.click(".config summary");
  await page.fill("#config", '{"window": {"length_seconds": "an hour"}}');
  await page.fill("#paste", record);
  await page.click("#run");
  await page.waitForSelector("#banner.warn");
  assert.match(await page.textContent("#banner"), /Configuration error.*window\.length_seconds/s);
  assert.equal(await page.isVisible("#no-alerts"), true);
  assert.deepEqual(errors, []);
  await page.close();
});
