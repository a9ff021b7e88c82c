//! Real hosts for tripline's artifacts, for the integration tests and the benchmark.
//!
//! Each module loads one built `.wasm` exactly as its production host does: `fluentbit` follows
//! Fluent Bit 5.1's `filter_wasm` contract to the letter, `real_fluentbit` runs the real Fluent
//! Bit binary over the example pipelines, `extism_host` uses the Extism Rust SDK,
//! `component_host` wasmtime's component API.

pub mod artifacts;
pub mod component_host;
pub mod extism_host;
pub mod fluentbit;
pub mod real_fluentbit;
pub mod seeds;
