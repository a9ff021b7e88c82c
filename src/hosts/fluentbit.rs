//! Fluent Bit `filter_wasm` adapter (fluentbit-abi.md is the contract).
//!
//! Fluent Bit calls an export once per record with six i32s and reads a NUL-terminated JSON
//! object back. This adapter returns the input pointer for every record it does not change, so
//! the common case costs one scan and no copy; a record that carries results is returned from a
//! reused output buffer. Fluent Bit passes no filter options, so configuration, model files and
//! the state snapshot live in the first preopened directory (`Accessible_Paths`) that holds
//! `tripline.json` (else the first one). Nothing here may panic: a panic is a trap, and a trap
//! drops the record.

use std::cell::RefCell;
use std::path::PathBuf;

use crate::engine::Engine;
use crate::json::RawObject;
use crate::output::{Annotation, Carrier};

const CONFIG_FILE: &str = "tripline.json";

/// Returned when the host could not copy the record in (record == NULL): the record is already
/// lost to us, so the loss is made visible instead of silent.
const LOST_RECORD: &[u8] = b"{\"tripline\":{\"error\":\"record did not fit in module memory\"}}\0";
/// Fluent Bit drops a record when the module returns an empty string.
const DROP: &[u8] = b"\0";

struct Filter {
    engine: Engine,
    dir: Option<PathBuf>,
    output: Vec<u8>,
    records_since_save: u64,
}

thread_local! {
    static FILTER: RefCell<Option<Filter>> = const { RefCell::new(None) };
}

/// The detection filter: `Function_Name tripline_filter`.
///
/// # Safety
/// Called by the host with `record` pointing at `record_len` readable bytes (or NULL).
#[no_mangle]
pub unsafe extern "C" fn tripline_filter(
    _tag: *const u8,
    _tag_len: u32,
    time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    if record.is_null() {
        return LOST_RECORD.as_ptr();
    }
    let bytes = trim_nul(std::slice::from_raw_parts(record, record_len as usize));
    FILTER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let filter = slot.get_or_insert_with(Filter::start);
        filter.filter(bytes, i64::from(time_sec)).unwrap_or(record)
    })
}

/// For a second `wasm` filter on a `rewrite_tag`ged copy of alert-carrying records: reduces the
/// copy to `{"alerts":[...]}` and drops (returns `""`) copies that carry no alerts.
///
/// # Safety
/// As [`tripline_filter`].
#[no_mangle]
pub unsafe extern "C" fn tripline_alerts_only(
    _tag: *const u8,
    _tag_len: u32,
    _time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    if record.is_null() {
        return DROP.as_ptr();
    }
    let bytes = trim_nul(std::slice::from_raw_parts(record, record_len as usize));
    FILTER.with(|cell| {
        let mut slot = cell.borrow_mut();
        // This instance only reads records: it must never restore or save the main filter's state.
        let filter = slot.get_or_insert_with(Filter::read_only);
        match filter.alerts_only(bytes) {
            Some(()) => filter.output.as_ptr(),
            None => DROP.as_ptr(),
        }
    })
}

fn trim_nul(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(&[0]).unwrap_or(bytes)
}

impl Filter {
    /// Loads configuration, models and the last snapshot from the preopened directory.
    fn start() -> Filter {
        let mut filter = Filter::read_only();
        let Some(dir) = filter.dir.clone() else { return filter };
        for model in filter.engine.config().models.clone() {
            let loaded = std::fs::read(dir.join(&model))
                .map_err(|e| e.to_string())
                .and_then(|bytes| filter.engine.load_model(&bytes));
            match loaded {
                Ok(()) => log(&format!("loaded model {model}")),
                Err(e) => log(&format!("model {model} not loaded: {e}")),
            }
        }
        if let Some(path) = filter.snapshot_path() {
            if let Ok(bytes) = std::fs::read(&path) {
                match filter.engine.restore(&bytes) {
                    Ok(()) => log(&format!("restored state from {}", path.display())),
                    Err(e) => log(&format!("starting clean: {e}")),
                }
            }
        }
        filter
    }

    /// Configuration only.
    fn read_only() -> Filter {
        let dirs = preopened_dirs();
        let dir = dirs.iter().find(|d| d.join(CONFIG_FILE).is_file()).or(dirs.first()).cloned();
        let engine = match dir.as_ref().map(|d| std::fs::read(d.join(CONFIG_FILE))) {
            Some(Ok(bytes)) => Engine::from_json(&bytes),
            _ => Engine::from_json(b"{}"),
        };
        if let Some(e) = engine.config_error() {
            log(&format!("{e}; passing every record through unchanged"));
        }
        Filter { engine, dir, output: Vec::new(), records_since_save: 0 }
    }

    /// `None` keeps the record as it is (the host reuses the input pointer).
    fn filter(&mut self, record: &[u8], time_sec: i64) -> Option<*const u8> {
        let processed = self.engine.process(record, Some(time_sec));
        let output = &self.engine.config().output;
        let every = output.stats_every_records;
        let stats_due = every > 0 && self.engine.counters().records % every == 0;
        let mut result = None;
        if !processed.matches.is_empty() || self.engine.pending_alerts() > 0 || stats_due {
            let field = output.field.clone();
            let max_alerts = output.max_alerts_per_record;
            match Carrier::new(record, &field) {
                Ok(carrier) => {
                    let alerts = self.engine.take_alerts(max_alerts);
                    let stats = stats_due.then(|| self.engine.stats());
                    let annotation = Annotation { matches: processed.matches, alerts, stats };
                    self.output = carrier.attach(&annotation);
                    self.output.push(0);
                    result = Some(self.output.as_ptr());
                }
                Err(_) => self.engine.counters_mut().unannotatable += 1,
            }
        }
        // After the alerts left the queue, so a restored snapshot never emits them twice.
        self.maybe_save();
        result
    }

    fn alerts_only(&mut self, record: &[u8]) -> Option<()> {
        let object = RawObject::new(record).ok()?;
        let carried = object.get(&self.engine.config().output.field).ok()??.as_object()?;
        let alerts = carried.get("alerts").ok()??;
        let mut out = Vec::with_capacity(alerts.bytes().len() + 16);
        out.extend_from_slice(b"{\"alerts\":");
        out.extend_from_slice(alerts.bytes());
        out.extend_from_slice(b"}\0");
        self.output = out;
        Some(())
    }

    fn snapshot_path(&self) -> Option<PathBuf> {
        let file = &self.engine.config().snapshot.file;
        if file.is_empty() || self.engine.config_error().is_some() {
            return None;
        }
        self.dir.as_ref().map(|d| d.join(file))
    }

    fn maybe_save(&mut self) {
        self.records_since_save += 1;
        let policy = &self.engine.config().snapshot;
        let by_count = policy.every_records > 0 && self.records_since_save >= policy.every_records;
        let by_close = policy.on_window_close && self.engine.take_window_closed();
        if !(by_count || by_close) {
            return;
        }
        let Some(path) = self.snapshot_path() else { return };
        self.records_since_save = 0;
        // An encoding failure is counted by the engine itself.
        let Ok(bytes) = self.engine.snapshot() else { return };
        // Temp file, then rename: a write killed half-way never replaces the last good snapshot.
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            self.engine.count_snapshot_failure();
            if self.engine.counters().snapshot_failures == 1 {
                log(&format!("cannot save state to {}: {e}", path.display()));
            }
        }
    }
}

fn log(message: &str) {
    eprintln!("[tripline] {message}");
}

/// The directories the host preopened, in descriptor order (WASI numbers them from 3).
fn preopened_dirs() -> Vec<PathBuf> {
    #[repr(C)]
    struct Prestat {
        tag: u8,
        name_len: u32,
    }
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn fd_prestat_get(fd: u32, out: *mut Prestat) -> u16;
        fn fd_prestat_dir_name(fd: u32, path: *mut u8, len: u32) -> u16;
    }
    let mut dirs = Vec::new();
    for fd in 3..64 {
        let mut prestat = Prestat { tag: 0, name_len: 0 };
        // SAFETY: WASI writes one prestat into the struct we own.
        if unsafe { fd_prestat_get(fd, &mut prestat) } != 0 {
            break;
        }
        if prestat.tag != 0 || prestat.name_len > 4096 {
            continue;
        }
        let mut name = vec![0u8; prestat.name_len as usize];
        // SAFETY: the buffer is exactly the length WASI reported.
        if unsafe { fd_prestat_dir_name(fd, name.as_mut_ptr(), prestat.name_len) } == 0 {
            let name = String::from_utf8_lossy(trim_nul(&name)).into_owned();
            dirs.push(PathBuf::from(name));
        }
    }
    dirs
}
