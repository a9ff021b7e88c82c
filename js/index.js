// tripline for JavaScript: Splunk ESCU CloudTrail detections in WebAssembly.
//
// This wrapper sits beside wasm-bindgen's `--target web` output (tripline.js, tripline_bg.wasm)
// and gives the raw class JS-friendly types: inputs may be strings, results are parsed objects.
// The same file runs in browsers, Node 20+, Deno and workers.
//
//   import { ready, Tripline } from "./index.js";
//   await ready();                       // browser: fetches tripline_bg.wasm; Node: reads it
//   const t = new Tripline({});          // configuration: object, JSON string or bytes
//   const { records, alerts } = t.process(bytes);   // records: Uint8Array NDJSON; alerts: objects
//   const late = t.flush(Date.now() / 1000);        // alerts whose windows the clock closed
//
// No method throws because of bad data: an invalid configuration gives a pass-through engine
// whose stats() report `config_error`; unreadable records pass through unchanged and are
// counted; restore()/loadModel() answer { ok, error }.

import init, { initSync as rawInitSync, Tripline as RawTripline, detectionCatalog as rawDetectionCatalog } from "./tripline.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Every detection this build can run, in the catalog's order: its configuration key
 * (`detections.<key>`, `model(key)`) and whether it runs when the configuration does not say.
 * Needs the module loaded (`ready()` or `initSync()`).
 */
export function detections() {
  return JSON.parse(rawDetectionCatalog());
}

let initialized = false;

/**
 * Loads the WebAssembly module once. Without an argument it loads `tripline_bg.wasm` next to
 * this file: by fetch in browsers, from disk in Node (whose fetch has no file: URLs). Pass a
 * URL, Response, bytes or a compiled WebAssembly.Module to load it from elsewhere.
 */
export async function ready(source) {
  if (initialized) return;
  if (source === undefined) {
    const url = new URL("./tripline_bg.wasm", import.meta.url);
    if (url.protocol === "file:") {
      const { readFile } = await import("node:fs/promises");
      source = await readFile(url);
    } else {
      source = url;
    }
  }
  if (source instanceof WebAssembly.Module || ArrayBuffer.isView(source) || source instanceof ArrayBuffer) {
    rawInitSync({ module: source });
  } else {
    await init({ module_or_path: source });
  }
  initialized = true;
}

/** Loads the module synchronously from bytes or a compiled module (Node: fs.readFileSync). */
export function initSync(module) {
  if (initialized) return;
  rawInitSync({ module });
  initialized = true;
}

/** Bytes for a batch, model or snapshot given as Uint8Array, ArrayBuffer, view or string. */
export function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (typeof input === "string") return encoder.encode(input);
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (input === undefined || input === null) return new Uint8Array(0);
  throw new TypeError("tripline: expected a Uint8Array, ArrayBuffer or string");
}

/** Parses NDJSON bytes (or text) into an array of values; blank lines are skipped. */
export function parseNdjson(bytes) {
  const text = typeof bytes === "string" ? bytes : decoder.decode(bytes);
  const out = [];
  for (const line of text.split("\n")) {
    if (line.trim() !== "") out.push(JSON.parse(line));
  }
  return out;
}

function configBytes(config) {
  if (config === undefined || config === null) return encoder.encode("{}");
  if (typeof config === "string" || config instanceof Uint8Array || config instanceof ArrayBuffer || ArrayBuffer.isView(config)) {
    return toBytes(config);
  }
  try {
    return encoder.encode(JSON.stringify(config));
  } catch (e) {
    // Not serializable (a cycle, a BigInt): hand the engine a document it rejects, so the
    // error surfaces in stats().config_error like any other configuration error.
    return encoder.encode(`unserializable configuration object: ${e && e.message}`);
  }
}

function outcome(text) {
  const r = JSON.parse(text);
  return r.ok ? { ok: true } : { ok: false, error: r.error };
}

function requireReady() {
  if (!initialized) throw new Error("tripline: call `await ready()` (or initSync) before creating a Tripline");
}

export class Tripline {
  #raw;

  /**
   * @param config the configuration document: an object, a JSON string or JSON bytes; absent
   *   means `{}` (every default). An invalid one never throws: the engine passes records
   *   through and stats().config_error says why.
   */
  constructor(config) {
    requireReady();
    this.#raw = new RawTripline(configBytes(config));
  }

  /**
   * Runs one batch: NDJSON or a CloudTrail S3 export (`{"Records":[...]}`), as bytes or text.
   * @returns {{records: Uint8Array, alerts: object[]}} every input record as one NDJSON line,
   *   tagged (a `tripline` field with `matches`) or byte-identical; and the alerts whose
   *   windows closed during this batch.
   */
  process(input) {
    const batch = this.#raw.process(toBytes(input));
    try {
      const records = batch.takeRecords();
      const alerts = parseNdjson(batch.takeAlerts());
      return { records, alerts };
    } finally {
      batch.free();
    }
  }

  /** Closes windows by the wall clock (Unix seconds; default now) and returns their alerts. */
  flush(nowSeconds = Date.now() / 1000) {
    return parseNdjson(this.#raw.flush(Number(nowSeconds)));
  }

  /** Closes every open window (end of a replay) and returns their alerts. */
  finishAll() {
    return parseNdjson(this.#raw.finishAll());
  }

  /** Counters, per-detection state sizes, watermark and `config_error`, as an object. */
  stats() {
    return JSON.parse(this.#raw.stats());
  }

  /** The whole engine state as bytes (store them; give them to restore() later). */
  snapshot() {
    return this.#raw.snapshot();
  }

  /** Restores a snapshot. @returns {{ok: boolean, error?: string}}; on error the state is kept. */
  restore(bytes) {
    return outcome(this.#raw.restore(toBytes(bytes)));
  }

  /**
   * Loads a model document (a fitted baseline) as bytes, text or object.
   * @returns {{ok: boolean, error?: string}}
   */
  loadModel(model) {
    const bytes = typeof model === "object" && model !== null && !ArrayBuffer.isView(model) && !(model instanceof ArrayBuffer)
      ? encoder.encode(JSON.stringify(model))
      : toBytes(model);
    return outcome(this.#raw.loadModel(bytes));
  }

  /**
   * A detection's learned model as an object (for the security-group detection: its baseline
   * groups with user, HourOfDay, isWeekend, fit {mean, std, cardinality} and days), or null if
   * that detection is not enabled.
   */
  model(key = "abnormally_high_cloud_security_group_api_calls") {
    return JSON.parse(this.#raw.model(String(key)));
  }

  /** Frees the WebAssembly memory now (otherwise it is freed when garbage-collected). */
  free() {
    this.#raw?.free();
    this.#raw = undefined;
  }

  [Symbol.dispose]() {
    this.free();
  }
}

/** The upper threshold the security-group detection compares an hour against, per model group:
 *  mean + z * std rounded to 4 decimals (z = 2.807033768 for the default threshold 0.005), or
 *  null where the group has fewer than `minCardinality` days and never judges. */
export function upperThreshold(fit, { z = 2.807033768, minCardinality = 16 } = {}) {
  if (!fit || fit.cardinality < minCardinality) return null;
  return Math.round((fit.mean + z * fit.std) * 1e4) / 1e4;
}

export default ready;
