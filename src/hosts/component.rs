//! WASI component (`--features component`, target `wasm32-wasip2`), world `tripline` of
//! `wit/tripline.wit`: the `tripline:detect/detector` interface exports a resource `engine`
//! whose methods map one to one onto the engine and the batch API. Configuration is the
//! constructor's argument, the component model's convention; every other value crosses as
//! `list<u8>` (a memcpy) or a string.

use std::cell::RefCell;

use crate::batch::{BatchEngine, BatchOutput};

wit_bindgen::generate!({
    path: "wit",
    world: "tripline",
});

use exports::tripline::detect::detector;

struct Component;

/// The `engine` resource: the component model hands methods `&self`.
struct Engine(RefCell<BatchEngine>);

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
        Engine(RefCell::new(BatchEngine::from_config(config.as_bytes())))
    }

    fn process(&self, batch: Vec<u8>) -> detector::BatchOutput {
        self.0.borrow_mut().process(&batch, None).into()
    }

    fn flush(&self, now: i64) -> detector::BatchOutput {
        self.0.borrow_mut().flush(now).into()
    }

    fn stats(&self) -> String {
        self.0.borrow().engine.stats().to_string()
    }

    fn snapshot(&self) -> Result<Vec<u8>, String> {
        self.0.borrow_mut().engine.snapshot()
    }

    fn restore(&self, snapshot: Vec<u8>) -> Result<(), String> {
        self.0.borrow_mut().engine.restore(&snapshot)
    }

    fn load_model(&self, model: Vec<u8>) -> Result<(), String> {
        self.0.borrow_mut().engine.load_model(&model)
    }

    fn model(&self, detection: String) -> Option<String> {
        self.0.borrow().engine.model(&detection).map(|m| m.to_string())
    }

    fn config_error(&self) -> Option<String> {
        self.0.borrow().engine.config_error().map(|e| e.to_string())
    }
}

export!(Component);
