//! `dist/tripline-component.wasm` in wasmtime's component API, with bindings generated from
//! `wit/tripline.wit` and WASI preview 2 linked in (a `wasm32-wasip2` component imports it).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;
use tripline::batch::BatchOutput;
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "tripline",
});

use exports::tripline::detect::detector;

/// Per-store host state: only what WASI needs.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The compiled component and its linker: compile once, instantiate many engines.
pub struct ComponentHost {
    pre: TriplinePre<HostState>,
}

impl ComponentHost {
    pub fn load(wasm: &Path) -> Result<ComponentHost> {
        let engine = Engine::default();
        let component = Component::from_file(&engine, wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading {}", wasm.display()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let pre = TriplinePre::new(linker.instantiate_pre(&component)?)?;
        Ok(ComponentHost { pre })
    }

    /// A fresh instance holding one `engine` resource built from `config`.
    pub fn instantiate(&self, config: &str) -> Result<ComponentEngine> {
        let state = HostState { wasi: WasiCtx::builder().inherit_stderr().build(), table: ResourceTable::new() };
        let mut store = Store::new(self.pre.engine(), state);
        let bindings = self.pre.instantiate(&mut store)?;
        let engine = bindings.tripline_detect_detector().engine().call_constructor(&mut store, config)?;
        Ok(ComponentEngine { store, bindings, engine })
    }
}

/// One `engine` resource in its own store.
pub struct ComponentEngine {
    store: Store<HostState>,
    bindings: Tripline,
    engine: ResourceAny,
}

impl ComponentEngine {
    /// Calls one method of the `engine` resource.
    fn call<R>(
        &mut self,
        method: impl FnOnce(detector::GuestEngine<'_>, &mut Store<HostState>, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R> {
        Ok(method(self.bindings.tripline_detect_detector().engine(), &mut self.store, self.engine)?)
    }

    pub fn process(&mut self, batch: &[u8]) -> Result<BatchOutput> {
        let out = self.call(|api, store, engine| api.call_process(store, engine, batch))?;
        Ok(BatchOutput { records: out.records, alerts: out.alerts })
    }

    pub fn flush(&mut self, now: i64) -> Result<BatchOutput> {
        let out = self.call(|api, store, engine| api.call_flush(store, engine, now))?;
        Ok(BatchOutput { records: out.records, alerts: out.alerts })
    }

    pub fn stats(&mut self) -> Result<Value> {
        Ok(serde_json::from_str(&self.call(|api, store, engine| api.call_stats(store, engine))?)?)
    }

    pub fn snapshot(&mut self) -> Result<Vec<u8>> {
        self.call(|api, store, engine| api.call_snapshot(store, engine))?.map_err(anyhow::Error::msg)
    }

    /// `restore`: the outer error is the host's (a trap), the inner one the component's answer.
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<Result<(), String>> {
        self.call(|api, store, engine| api.call_restore(store, engine, snapshot))
    }

    pub fn load_model(&mut self, model: &[u8]) -> Result<Result<(), String>> {
        self.call(|api, store, engine| api.call_load_model(store, engine, model))
    }

    /// A detection's learned model, or `Value::Null` when the detection is not enabled.
    pub fn model(&mut self, detection: &str) -> Result<Value> {
        match self.call(|api, store, engine| api.call_model(store, engine, detection))? {
            Some(text) => Ok(serde_json::from_str(&text)?),
            None => Ok(Value::Null),
        }
    }

    pub fn config_error(&mut self) -> Result<Option<String>> {
        self.call(|api, store, engine| api.call_config_error(store, engine))
    }
}

impl Drop for ComponentEngine {
    fn drop(&mut self) {
        let _ = self.engine.resource_drop(&mut self.store);
    }
}
