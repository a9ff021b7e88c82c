// Types for tripline's JS wrapper (index.js). The raw wasm-bindgen module is tripline.js.

/**
 * A risk event (see the project README for every field): the default `output.alert_format`.
 * With `"ocsf"` or `"ecs"` the alerts are OCSF Detection Findings or ECS documents instead
 * (docs/alerts.md).
 */
export interface Alert {
  detection: { id: string; name: string; version: number; analytic_type: string; search_name: string };
  risk_score: number;
  risk_object: string | null;
  risk_object_type: string;
  threat_object?: string | null;
  threat_object_type?: string;
  risk_message: string;
  annotations: Record<string, unknown>;
  window: { start: string; end: string; partial: string | null; values_dropped: number };
  /** The Splunk search's output row, columns in the search's order. */
  result: Record<string, unknown>;
}

export interface Outcome {
  ok: boolean;
  error?: string;
}

export interface BaselineFit {
  mean: number;
  std: number;
  cardinality: number;
  min: number;
  max: number;
}

export interface BaselineGroup {
  user: string;
  HourOfDay: number;
  isWeekend: 0 | 1;
  fit: BaselineFit | null;
  days: unknown[];
}

export interface BaselineModel {
  format: string;
  version: number;
  detection: string;
  user_field: string;
  utc_offset_minutes: number;
  groups: BaselineGroup[];
}

export type Bytes = Uint8Array | ArrayBuffer | ArrayBufferView | string;

export interface DetectionEntry {
  /** The configuration key: `detections.<key>`, `model(key)`. */
  key: string;
  /** Whether it runs when the configuration does not say. */
  enabled_by_default: boolean;
}

/** Every detection this build can run, in the catalog's order (after `ready()`). */
export function detections(): DetectionEntry[];

/** Loads the WebAssembly module (browser: fetch next to index.js; Node: read from disk). */
export function ready(source?: URL | string | Response | BufferSource | WebAssembly.Module): Promise<void>;
export default ready;
/** Loads the module synchronously from bytes or a compiled module. */
export function initSync(module: BufferSource | WebAssembly.Module): void;
export function toBytes(input: Bytes | null | undefined): Uint8Array;
export function parseNdjson(bytes: Uint8Array | string): any[];
/** mean + z*std rounded to 4 decimals, or null below minCardinality. */
export function upperThreshold(fit: BaselineFit | null | undefined, options?: { z?: number; minCardinality?: number }): number | null;

export class Tripline {
  /** Never throws for a bad configuration: see stats().config_error. */
  constructor(config?: object | string | Uint8Array | ArrayBuffer | null);
  /** records: every input record as NDJSON, tagged or byte-identical; alerts: closed windows. */
  process(input: Bytes): { records: Uint8Array; alerts: Alert[] };
  flush(nowSeconds?: number): Alert[];
  finishAll(): Alert[];
  stats(): {
    counters: Record<string, number>;
    watermark: string | null;
    pending_alerts: number;
    detections: Record<string, Record<string, number>>;
    config_error: string | null;
  };
  snapshot(): Uint8Array;
  restore(bytes: Bytes): Outcome;
  loadModel(model: Bytes | object): Outcome;
  model(key?: string): BaselineModel | Record<string, unknown> | null;
  free(): void;
  [Symbol.dispose](): void;
}
