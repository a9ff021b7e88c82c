//! WASI component (`--features component`, target `wasm32-wasip2`), world `tripline` of
//! `wit/tripline.wit`: the `tripline:detect/detector` interface exports a resource `engine`
//! whose methods map one to one onto the engine and the batch API. Configuration is the
//! constructor's argument, the component model's convention; every other value crosses as
//! `list<u8>` (a memcpy) or a string.

use std::cell::RefCell;

use crate::batch::{engine_from_config, flush_batch, process_batch, BatchOutput};

wit_bindgen::generate!({
    path: "wit",
    world: "tripline",
});

use exports::tripline::detect::detector;

struct Component;

/// The `engine` resource: the component model hands methods `&self`.
struct Engine(RefCell<crate::Engine>);

impl From<BatchOutput> for detector::BatchOutput {
    fn from(out: BatchOutput) -> Self {
        detector::BatchOutput { records: out.records, alerts: out.alerts }
    }
}

impl detector::Guest for Component {
    type Engine = Engine;
}

impl detector::GuestEngine for Engine {
    fn new(config: String) -> Self {
        Engine(RefCell::new(engine_from_config(config.as_bytes())))
    }

    fn process(&self, batch: Vec<u8>) -> detector::BatchOutput {
        process_batch(&mut self.0.borrow_mut(), &batch, None).into()
    }

    fn flush(&self, now: i64) -> detector::BatchOutput {
        flush_batch(&mut self.0.borrow_mut(), now).into()
    }

    fn stats(&self) -> String {
        self.0.borrow().stats().to_string()
    }

    fn snapshot(&self) -> Result<Vec<u8>, String> {
        self.0.borrow_mut().snapshot()
    }

    fn restore(&self, snapshot: Vec<u8>) -> Result<(), String> {
        self.0.borrow_mut().restore(&snapshot)
    }

    fn load_model(&self, model: Vec<u8>) -> Result<(), String> {
        self.0.borrow_mut().load_model(&model)
    }

    fn model(&self, detection: String) -> Option<String> {
        self.0.borrow().model(&detection).map(|m| m.to_string())
    }

    fn config_error(&self) -> Option<String> {
        self.0.borrow().config_error().map(|e| e.to_string())
    }
}

export!(Component);
