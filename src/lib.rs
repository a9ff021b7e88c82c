//! tripline: Splunk ESCU detections over AWS CloudTrail, run inside the log pipeline.
//!
//! The core is host-free: [`engine::Engine`] takes raw records and returns tags and alerts, with
//! all state explicit so it can be snapshotted. Each host adapter (`hosts/`) is a thin module
//! behind a Cargo feature that turns one host's ABI into calls on the engine.

pub mod aggregate;
pub mod alert;
pub mod alert_format;
pub mod baseline;
pub mod batch;
pub mod catalog;
pub mod cloudtrail;
pub mod config;
pub mod detection;
pub mod digest;
pub mod engine;
pub mod first_seen;
pub mod input;
pub mod journal;
pub mod json;
pub mod memory;
pub mod output;
pub mod rebalance;
pub mod rule;
pub mod snapshot;
pub mod state;
pub mod suppress;
pub mod time;

mod hosts;

pub use engine::Engine;
