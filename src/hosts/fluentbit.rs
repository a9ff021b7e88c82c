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
use std::path::{Path, PathBuf};

use crate::config::{ConfigError, HostConfig, CONFIG_FILE};
use crate::engine::Engine;
use crate::journal;
use crate::json::{validate, Kind, RawObject};
use crate::output::{tag_record, Carry};


/// Returned when the host could not copy the record in (record == NULL): the record is already
/// lost to us, so the loss is made visible instead of silent.
const LOST_RECORD: &[u8] = b"{\"tripline\":{\"error\":\"record did not fit in module memory\"}}\0";
/// Fluent Bit drops a record when the module returns an empty string.
const DROP: &[u8] = b"\0";

struct Filter {
    engine: Engine,
    /// This adapter's settings from the same document: output, snapshot, models.
    host: HostConfig,
    dir: Option<PathBuf>,
    output: Vec<u8>,
    /// Where state survives the instance; `None` when saving is off or impossible.
    durable: Option<DurableState>,
    /// `tripline_alert_record` met a copy with several alerts (logged once).
    said_several: bool,
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
    // The record time is the event's own when the parser takes it from `eventTime` (as the
    // examples do), so it cannot bound a forged one: the wall clock (WASI's, which WAMR
    // provides) does. The record time only stands in where the host has no clock.
    let now = wall_clock().unwrap_or(i64::from(time_sec));
    let bytes = trim_nul(std::slice::from_raw_parts(record, record_len as usize));
    FILTER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let filter = slot.get_or_insert_with(Filter::start);
        filter.filter(bytes, now).unwrap_or(record)
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
    reduce_copy(record, record_len, Framing::List)
}

/// As [`tripline_alerts_only`], but the copy becomes its alert itself: one record per alert,
/// which is what an Elasticsearch index, Splunk HEC, S3 or Firehose wants. With
/// `output.max_alerts_per_record: 1` (as the examples' alert routes set it) every copy carries
/// one alert at most; a copy carrying several (another setting) passes as `{"alerts":[..]}`
/// rather than lose any, and the log says why once.
///
/// # Safety
/// As [`tripline_filter`].
#[no_mangle]
pub unsafe extern "C" fn tripline_alert_record(
    _tag: *const u8,
    _tag_len: u32,
    _time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    reduce_copy(record, record_len, Framing::Each)
}

/// The two alert exports' common body: the copy reduced as `framing` says, or dropped.
///
/// # Safety
/// As [`tripline_filter`].
unsafe fn reduce_copy(record: *const u8, record_len: u32, framing: Framing) -> *const u8 {
    if record.is_null() {
        return DROP.as_ptr();
    }
    let bytes = trim_nul(std::slice::from_raw_parts(record, record_len as usize));
    FILTER.with(|cell| {
        let mut slot = cell.borrow_mut();
        // This instance only reads records: it must never restore or save the main filter's state.
        let filter = slot.get_or_insert_with(Filter::read_only);
        match filter.alerts_only(bytes, framing) {
            Some(()) => filter.output.as_ptr(),
            None => DROP.as_ptr(),
        }
    })
}

/// How an alert-carrying copy is reduced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `{"alerts":[..]}`
    List,
    /// The one alert itself.
    Each,
}

fn trim_nul(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(&[0]).unwrap_or(bytes)
}

impl Filter {
    /// Loads configuration, models and the saved state from the preopened directory.
    fn start() -> Filter {
        let mut filter = Filter::read_only();
        let Some(dir) = filter.dir.clone() else { return filter };
        for model in &filter.host.models {
            let loaded = std::fs::read(dir.join(model))
                .map_err(|e| e.to_string())
                .and_then(|bytes| filter.engine.load_model(&bytes));
            match loaded {
                Ok(()) => log(&format!("loaded model {model}")),
                Err(e) => log(&format!("model {model} not loaded: {e}")),
            }
        }
        let snapshot = &filter.host.snapshot;
        if !snapshot.file.is_empty() && filter.engine.config_error().is_none() {
            filter.durable = DurableState::open(&dir.join(&snapshot.file), snapshot.every_records, &mut filter.engine);
        }
        filter
    }

    /// Configuration only.
    fn read_only() -> Filter {
        let dirs = preopened_dirs();
        let dir = dirs.iter().find(|d| d.join(CONFIG_FILE).is_file()).or(dirs.first()).cloned();
        let (engine, host) = match &dir {
            None => {
                log(&format!("no Accessible_Paths directory, so no {CONFIG_FILE}: running the defaults, keeping no state"));
                (Engine::from_json(b"{}"), HostConfig::default())
            }
            Some(d) => match std::fs::read(d.join(CONFIG_FILE)) {
                Ok(bytes) => Engine::for_host(&bytes, |name| std::fs::read(d.join(name)).map_err(|e| format!("{name}: cannot read: {e}"))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    log(&format!("no {CONFIG_FILE} in any Accessible_Paths directory: running the defaults"));
                    (Engine::from_json(b"{}"), HostConfig::default())
                }
                Err(e) => (
                    Engine::disabled(ConfigError::new("", format!("cannot read {}: {e}", d.join(CONFIG_FILE).display()))),
                    HostConfig::default(),
                ),
            },
        };
        if let Some(e) = engine.config_error() {
            log(&format!("{e}; passing every record through unchanged"));
        }
        for e in engine.rule_errors() {
            log(e);
        }
        Filter { engine, host, dir, output: Vec::new(), durable: None, said_several: false }
    }

    /// `None` keeps the record as it is (the host reuses the input pointer).
    fn filter(&mut self, record: &[u8], now: i64) -> Option<*const u8> {
        let watermark = self.engine.watermark();
        let output = &self.host.output;
        let carry = Carry { alerts: output.max_alerts_per_record, stats_every: output.stats_every_records };
        self.output.clear();
        let tagged = tag_record(&mut self.engine, record, &output.field, Some(now), carry, &mut self.output);
        if let Some(durable) = &mut self.durable {
            // Before the record leaves: a stop after this call loses nothing it changed, and a
            // restore never emits the alerts it carried twice.
            if tagged.changed || tagged.taken > 0 {
                let seq = self.engine.counters().records;
                durable.append(&journal::Entry { seq, watermark, now: Some(now), taken: tagged.taken, record }, &mut self.engine);
            }
            durable.after_record(&mut self.engine);
        }
        tagged.written.then(|| {
            self.output.push(0);
            self.output.as_ptr()
        })
    }

    fn alerts_only(&mut self, record: &[u8], framing: Framing) -> Option<()> {
        let object = RawObject::new(record).ok()?;
        let carried = object.get(&self.host.output.field).ok()??.as_object()?;
        let alerts = carried.get("alerts").ok()??;
        // The scan only delimits the value: returning it unchecked could hand Fluent Bit
        // invalid JSON, which 5.1.1 can abort on.
        if alerts.kind() != Kind::Array || validate(alerts.bytes()).is_err() {
            return None;
        }
        let mut out = Vec::with_capacity(alerts.bytes().len() + 16);
        if framing == Framing::Each {
            let list: Vec<&serde_json::value::RawValue> = serde_json::from_slice(alerts.bytes()).ok()?;
            match list.as_slice() {
                [] => return None,
                [alert] if alert.get().starts_with('{') => out.extend_from_slice(alert.get().as_bytes()),
                several => {
                    if !self.said_several {
                        self.said_several = true;
                        log(&format!(
                            "tripline_alert_record: a record carried {} alerts, passed on as {{\"alerts\":[..]}}; set output.max_alerts_per_record to 1 for one record per alert",
                            several.len()
                        ));
                    }
                }
            }
        }
        if out.is_empty() {
            out.extend_from_slice(b"{\"alerts\":");
            out.extend_from_slice(alerts.bytes());
            out.push(b'}');
        }
        out.push(0);
        self.output = out;
        Some(())
    }
}

/// The state snapshot and the journal of what changed since (see `journal.rs`), side by side in
/// the configuration's directory. The journal is compacted into the snapshot every
/// `snapshot.every_records` records or when it outgrows [`JOURNAL_COMPACT_BYTES`]: by appending
/// a section of what changed to the snapshot file (see `snapshot.rs`), or, once the sections
/// reach half the whole snapshot ([`DurableState::appendable`]), by rewriting it whole.
struct DurableState {
    snapshot: PathBuf,
    /// The length of the whole snapshot at the start of the file; 0 when sections may not be
    /// appended (no snapshot yet, one that could not be read whole, or a write that failed).
    base_bytes: u64,
    /// The length of the snapshot file: the whole snapshot and the sections after it.
    file_bytes: u64,
    journal: PathBuf,
    /// Open for appending once the first entry is written.
    appender: Option<std::fs::File>,
    /// An entry assembled for one write (reused).
    entry: Vec<u8>,
    journal_bytes: u64,
    records_since_save: u64,
    /// `snapshot.every_records`: fold the journal into a new snapshot after this many records.
    every_records: u64,
}

/// A journal this large is folded into the snapshot, bounding the replay at start.
const JOURNAL_COMPACT_BYTES: u64 = 4 << 20;

/// Entries up to this size are written in one piece: each write is a host call and a system
/// call. Larger ones are written in pieces, never copied (memory may be short exactly when
/// records are large).
const ONE_WRITE_BYTES: usize = 64 << 10;

impl DurableState {
    /// Restores the snapshot and replays the journal into `engine`. `None` (after one log line)
    /// when either path is taken by something that is not a plain file: that is left untouched.
    fn open(snapshot: &Path, every_records: u64, engine: &mut Engine) -> Option<DurableState> {
        let journal = snapshot.with_extension("journal");
        for path in [snapshot, journal.as_path()] {
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if !meta.file_type().is_file() {
                    log(&format!("{} is not a plain file: keeping no state, leaving it as it is", path.display()));
                    return None;
                }
            }
        }
        let (mut base_bytes, mut file_bytes) = (0, 0);
        if let Ok(bytes) = std::fs::read(snapshot) {
            match engine.restore_sections(&bytes) {
                Ok(restored) => {
                    log(&format!("restored state from {}", snapshot.display()));
                    engine.state_refused().iter().for_each(|refused| log(refused));
                    match restored.damaged {
                        // The journal holds what a save cut short held; the next save rewrites the file.
                        Some(e) => log(&format!("{} ends in a damaged section ({e}): restored what came before it", snapshot.display())),
                        None => (base_bytes, file_bytes) = (restored.base_bytes as u64, bytes.len() as u64),
                    }
                }
                Err(e) => log(&format!("starting clean: {e}")),
            }
        }
        let mut state = DurableState {
            snapshot: snapshot.to_path_buf(),
            base_bytes,
            file_bytes,
            journal,
            appender: None,
            entry: Vec::new(),
            journal_bytes: 0,
            records_since_save: 0,
            every_records,
        };
        if let Ok(bytes) = std::fs::read(&state.journal) {
            let replayed = journal::replay(engine, &bytes);
            if replayed.applied > 0 {
                log(&format!("replayed {} journaled records from {}", replayed.applied, state.journal.display()));
            }
            if replayed.damaged {
                log(&format!("{} ends in a damaged entry (a write cut short): the state it held is lost", state.journal.display()));
            }
            // Fold it in at once: the snapshot then holds everything, and a damaged tail is gone.
            state.compact(engine);
        }
        Some(state)
    }

    fn append(&mut self, entry: &journal::Entry<'_>, engine: &mut Engine) {
        let buffer = &mut self.entry;
        let mut write = |file: &mut std::fs::File| {
            if entry.record.len() > ONE_WRITE_BYTES {
                return entry.write_to(file);
            }
            buffer.clear();
            let written = entry.write_to(buffer)?;
            std::io::Write::write_all(file, buffer)?;
            Ok(written)
        };
        let written = match &mut self.appender {
            Some(file) => write(file),
            None => std::fs::OpenOptions::new().create(true).append(true).open(&self.journal).and_then(|mut file| {
                let written = write(&mut file)?;
                self.appender = Some(file);
                Ok(written)
            }),
        };
        match written {
            Ok(bytes) => self.journal_bytes += bytes,
            Err(e) => {
                engine.counters_mut().journal_failures += 1;
                if engine.counters().journal_failures == 1 {
                    log(&format!("cannot write {}: {e}", self.journal.display()));
                }
                // The journal may now end in a torn entry: fold the state into a snapshot instead.
                self.appender = None;
                self.journal_bytes = 1;
                self.compact(engine);
            }
        }
    }

    fn after_record(&mut self, engine: &mut Engine) {
        self.records_since_save += 1;
        let every = self.every_records;
        if (every > 0 && self.records_since_save >= every) || self.journal_bytes >= JOURNAL_COMPACT_BYTES {
            self.compact(engine);
        }
    }

    /// Whether the next save may append a section of changes: while the sections are less than
    /// half the whole snapshot before them. The file so stays under one and a half snapshots
    /// (and a section), and a save writes about three times what changed, amortized.
    fn appendable(&self) -> bool {
        self.base_bytes > 0 && self.file_bytes - self.base_bytes < self.base_bytes / 2
    }

    /// Saves the state (a section of changes, or the whole snapshot), then empties the journal.
    /// A stop in between is harmless: the journal's entries are then older than the saved state
    /// and skipped.
    fn compact(&mut self, engine: &mut Engine) {
        self.records_since_save = 0;
        if self.journal_bytes == 0 && !self.journal.exists() {
            return; // nothing later alerts depend on changed since the last snapshot
        }
        let appending = self.appendable();
        // An encoding failure is counted by the engine itself.
        let Ok(bytes) = (if appending { engine.snapshot_changes() } else { engine.snapshot() }) else { return };
        let written = if appending {
            // A write cut short leaves a torn last section, which a restore reads as damaged:
            // what came before it and the journal (not yet emptied) still give the state.
            std::fs::OpenOptions::new().append(true).open(&self.snapshot).and_then(|mut file| std::io::Write::write_all(&mut file, &bytes))
        } else {
            // Temp file, then rename: a write killed half-way never replaces the last good snapshot.
            let tmp = self.snapshot.with_extension("tmp");
            std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &self.snapshot))
        };
        if let Err(e) = written {
            engine.count_snapshot_failure();
            // What the engine now counts as saved is not: only a whole snapshot holds it.
            self.base_bytes = 0;
            if engine.counters().snapshot_failures == 1 {
                log(&format!("cannot save state to {}: {e}", self.snapshot.display()));
            }
            return;
        }
        if appending {
            self.file_bytes += bytes.len() as u64;
        } else {
            (self.base_bytes, self.file_bytes) = (bytes.len() as u64, bytes.len() as u64);
        }
        self.appender = None;
        self.journal_bytes = 0;
        if let Err(e) = std::fs::remove_file(&self.journal) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log(&format!("cannot empty {}: {e}", self.journal.display()));
            }
        }
    }
}

/// Unix seconds by the host's wall clock, if it has one. WASI's `clock_time_get` directly:
/// std's `SystemTime::now` panics (a trap, so a dropped record) where the clock fails.
fn wall_clock() -> Option<i64> {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn clock_time_get(clock_id: u32, precision: u64, time: *mut u64) -> u16;
    }
    const REALTIME: u32 = 0;
    let mut nanos = 0u64;
    // SAFETY: WASI writes one u64 into the variable we own.
    let errno = unsafe { clock_time_get(REALTIME, 1_000_000_000, &mut nanos) };
    (errno == 0).then_some((nanos / 1_000_000_000) as i64)
}

/// One write per line: `eprintln!` writes its pieces one by one, and Fluent Bit's own log
/// lines land between them.
fn log(message: &str) {
    use std::io::Write;
    let line = format!("[tripline] {message}\n");
    // Nowhere to report a failed write to the log.
    let _ = std::io::stderr().write_all(line.as_bytes());
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
