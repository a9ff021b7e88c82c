//! Fluent Bit 5.1's `filter_wasm`, reproduced with wasmtime (see
//! `shared/research/fluentbit-abi.md`, the contract this follows to the letter).
//!
//! What Fluent Bit does, and this harness does the same way:
//! - **Start-up.** One instance per filter, kept for the life of the filter: module statics and
//!   heap persist across records. WASI preview 1 with every `Accessible_Paths` directory
//!   preopened under the guest path exactly as written (default `.`; a missing directory fails
//!   start-up), no argv, no environment, the process's stdout and stderr (or captured pipes for
//!   tests). Like WAMR, `_initialize` runs once for a WASI module (`__post_instantiate` if
//!   exported, `__wasm_call_ctors` for a non-WASI one), and imports nothing provides are linked
//!   as traps rather than refused. SIMD is disabled: WAMR's interpreter cannot load it.
//! - **Per record** (`flb_wasm_call_function_format_json`): the tag and the JSON record are
//!   copied into the module NUL-terminated, with the module's own exported `malloc` when it
//!   exports both `malloc (i32)->i32` and `free (i32)->()`, otherwise from an emulation of
//!   WAMR's app heap (`Wasm_Heap_Size`, default 8 KiB). A copy that fails is passed as address
//!   0 with the real length. The call gets `(tag, tag_len, time_sec as u32, time_nsec, record,
//!   record_len)`, lengths without the NUL. The result is read as a NUL-terminated C string at
//!   the returned address (no length; address 0 is read like any other address), copied, and
//!   only then are the two inputs freed with the module's `free`.
//! - **Outcome.** `""` drops the record. A trap drops it and logs the exception; the instance
//!   stays usable. Anything else must be one JSON object, which replaces the body. Returning the
//!   record's own address is the zero-copy pass-through.
//!
//! Where this harness is deliberately louder than Fluent Bit:
//! - A `Function_Name` the module does not export, or one with another signature than six i32
//!   in and one i32 out, fails [`FluentBitFilter::start`]. Real Fluent Bit checks neither: a
//!   wrong name logs "function is not found" and drops every record; a wrong signature (an i64
//!   anywhere) misbehaves silently under WAMR.
//! - A result that is not one valid JSON object (or that lies outside memory) is returned as an
//!   `Err` holding a [`ContractViolation`]. Fluent Bit drops such a record with an error, and
//!   5.1.1 **aborts the whole process** (double free) when invalid JSON follows a valid record in
//!   the same chunk: [`ContractViolation::fatal`] says when that would have happened here (all
//!   calls since [`FluentBitFilter::begin_chunk`] form one chunk; without it, the whole life of
//!   the filter is one chunk, the strictest reading).
//!
//! Known approximations: wasmtime compiles instead of interpreting, so `Wasm_Stack_Size` is
//! applied as wasmtime's `max_wasm_stack` (native stack bytes, not WAMR's interpreter frames:
//! recursion limits differ); the app heap emulation is a bump allocator with an 8-byte header
//! per block and may differ from WAMR's allocator by a few bytes at the edge (WAMR in practice
//! grants about 63 KiB to a wasip1 cdylib; pass that as `wasm_heap_size` to reproduce it);
//! stdin is not connected; `tail`'s JSON parser keeps a line nested deeper than about 63 levels
//! as `{"log": line}`, which [`ingest_line`] does not model.
//!
//! The JSON Fluent Bit hands the module is not the input line: Fluent Bit parses input into
//! msgpack and encodes it again. [`fluentbit_json`] encodes a `serde_json::Value` that way and
//! [`fluentbit_reencode`] does the whole parse-and-encode on raw JSON text (`flb_pack.c`: number
//! quirks, last duplicate key wins, non-ASCII escaped as `\uXXXX` because `json.escape_unicode`
//! is on by default). [`ingest_line`] is what `tail` with the example `cloudtrail` parser makes
//! of one line, record time included.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use wasmtime::{Config, Engine, Func, Instance, Linker, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, TypedFunc, ValType};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{DirPerms, FilePerms, WasiCtxBuilder};

/// `Function_Name` of tripline's detection filter.
pub const FILTER_FUNCTION: &str = "tripline_filter";
/// `Function_Name` of tripline's second filter, for the `rewrite_tag`ged alert stream.
pub const ALERTS_ONLY_FUNCTION: &str = "tripline_alerts_only";
/// The tag of the example pipeline's CloudTrail input.
pub const DEFAULT_TAG: &str = "aws.cloudtrail";
/// Fluent Bit's default (and minimum) `Wasm_Heap_Size`.
pub const DEFAULT_HEAP_SIZE: u32 = 8 * 1024;
/// `Wasm_Stack_Size` of the example configurations.
pub const EXAMPLE_STACK_SIZE: usize = 256 * 1024;
/// Captured guest output beyond this is an error inside the guest (tests only).
const CAPTURE_LIMIT: usize = 256 * 1024 * 1024;
/// WASI's page size.
const PAGE: u64 = 65_536;

/// One `[FILTER] Name wasm` block.
#[derive(Debug, Clone)]
pub struct FilterOptions {
    /// `Wasm_Path`.
    pub wasm_path: PathBuf,
    /// `Function_Name`.
    pub function_name: String,
    /// `Accessible_Paths`; empty means Fluent Bit's default, `.`.
    pub accessible_paths: Vec<String>,
    /// `Wasm_Heap_Size`: only used when the module does not export `malloc` and `free`.
    pub wasm_heap_size: u32,
    /// `Wasm_Stack_Size`, applied as wasmtime's `max_wasm_stack`.
    pub wasm_stack_size: usize,
    /// The tag of the records this filter sees (the input's `Tag`).
    pub tag: String,
    /// Capture the guest's stdout and stderr (and the host's own log lines) instead of
    /// writing them to this process's stdout and stderr.
    pub capture_output: bool,
    /// A cap on the module's linear memory. Fluent Bit sets none (WAMR lets a module grow to
    /// 4 GiB); this stands for a host that does (wasmtime's limits, a browser).
    pub max_memory: Option<usize>,
}

impl FilterOptions {
    /// A filter block for `wasm_path` calling `function_name`, with the example configuration's
    /// `Wasm_Stack_Size` (256 KiB) and Fluent Bit's defaults otherwise.
    pub fn new(wasm_path: impl Into<PathBuf>, function_name: &str) -> FilterOptions {
        FilterOptions {
            wasm_path: wasm_path.into(),
            function_name: function_name.to_string(),
            accessible_paths: Vec::new(),
            wasm_heap_size: DEFAULT_HEAP_SIZE,
            wasm_stack_size: EXAMPLE_STACK_SIZE,
            tag: DEFAULT_TAG.to_string(),
            capture_output: false,
            max_memory: None,
        }
    }

    /// Adds one `Accessible_Paths` entry (preopened under this same path in the guest).
    pub fn accessible_path(mut self, dir: impl AsRef<Path>) -> FilterOptions {
        self.accessible_paths.push(dir.as_ref().to_string_lossy().into_owned());
        self
    }

    pub fn tag(mut self, tag: &str) -> FilterOptions {
        self.tag = tag.to_string();
        self
    }

    pub fn heap_size(mut self, bytes: u32) -> FilterOptions {
        self.wasm_heap_size = bytes;
        self
    }

    pub fn max_memory(mut self, bytes: usize) -> FilterOptions {
        self.max_memory = Some(bytes);
        self
    }

    pub fn stack_size(mut self, bytes: usize) -> FilterOptions {
        self.wasm_stack_size = bytes;
        self
    }

    /// Captures guest stdout/stderr and host log lines (read them with
    /// [`FluentBitFilter::captured_stderr`] and friends).
    pub fn capture_output(mut self) -> FilterOptions {
        self.capture_output = true;
        self
    }

    /// The directories as Fluent Bit would preopen them.
    pub fn preopens(&self) -> Vec<String> {
        if self.accessible_paths.is_empty() {
            vec![".".to_string()]
        } else {
            self.accessible_paths.clone()
        }
    }
}

/// What became of one record.
#[derive(Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The module returned the record's own address: Fluent Bit keeps the body as sent.
    PassThrough(Vec<u8>),
    /// The module returned other memory holding exactly the bytes sent.
    Unchanged(Vec<u8>),
    /// The module returned a different JSON object, which replaces the body.
    Modified(Vec<u8>),
    /// The module returned `""`: the record is dropped.
    Dropped,
    /// The call trapped: the record is dropped and the exception logged.
    Trapped(String),
}

/// Bodies shown as text (the first 300 bytes), not as byte lists.
impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| {
            let shown = String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
            if b.len() > 300 {
                format!("{shown}... ({} bytes)", b.len())
            } else {
                shown
            }
        };
        match self {
            Outcome::PassThrough(b) => write!(f, "PassThrough({:?})", text(b)),
            Outcome::Unchanged(b) => write!(f, "Unchanged({:?})", text(b)),
            Outcome::Modified(b) => write!(f, "Modified({:?})", text(b)),
            Outcome::Dropped => write!(f, "Dropped"),
            Outcome::Trapped(t) => write!(f, "Trapped({t:?})"),
        }
    }
}

/// One call's outcome and the addresses involved.
#[derive(Debug, Clone)]
pub struct Reply {
    pub outcome: Outcome,
    /// Where the tag was copied (0: the copy failed).
    pub tag_ptr: u32,
    /// Where the record was copied (0: the copy failed and the module got NULL).
    pub record_ptr: u32,
    /// The address the module returned (`None` after a trap).
    pub returned_ptr: Option<u32>,
}

impl Reply {
    /// The body Fluent Bit carries on with, as the module returned it; `None` when dropped.
    pub fn body(&self) -> Option<&[u8]> {
        match &self.outcome {
            Outcome::PassThrough(b) | Outcome::Unchanged(b) | Outcome::Modified(b) => Some(b),
            Outcome::Dropped | Outcome::Trapped(_) => None,
        }
    }

    /// True for the zero-copy pass-through (the input address returned).
    pub fn is_pass_through(&self) -> bool {
        matches!(self.outcome, Outcome::PassThrough(_))
    }

    /// True when the record goes on byte-identical to what was sent.
    pub fn is_unchanged(&self) -> bool {
        matches!(self.outcome, Outcome::PassThrough(_) | Outcome::Unchanged(_))
    }

    pub fn is_modified(&self) -> bool {
        matches!(self.outcome, Outcome::Modified(_))
    }

    /// True when the record is gone (`""` or a trap).
    pub fn is_dropped(&self) -> bool {
        self.body().is_none()
    }

    /// The body parsed (serde_json's depth limit applies: `None` for 128+ levels or non-JSON).
    pub fn value(&self) -> Option<Value> {
        self.body().and_then(|b| serde_json::from_slice(b).ok())
    }

    /// The top-level `field` tripline added, if the record was modified and carries it.
    pub fn annotation(&self, field: &str) -> Option<Value> {
        if !self.is_modified() {
            return None;
        }
        self.value()?.get(field).cloned()
    }

    /// The default `tripline` field.
    pub fn tripline(&self) -> Option<Value> {
        self.annotation("tripline")
    }

    /// `tripline.matches` (empty when absent).
    pub fn matches(&self) -> Vec<Value> {
        list(self.tripline(), "matches")
    }

    /// `tripline.alerts` (empty when absent).
    pub fn alerts(&self) -> Vec<Value> {
        list(self.tripline(), "alerts")
    }

    /// `tripline.stats`, when attached.
    pub fn stats(&self) -> Option<Value> {
        self.tripline()?.get("stats").cloned()
    }

    /// The body as Fluent Bit stores and later outputs it: parsed to msgpack and encoded again.
    pub fn reencoded(&self) -> Option<Vec<u8>> {
        match &self.outcome {
            // What was sent is already Fluent Bit's own encoding.
            Outcome::PassThrough(b) | Outcome::Unchanged(b) => Some(b.clone()),
            Outcome::Modified(b) => fluentbit_reencode(b).ok(),
            Outcome::Dropped | Outcome::Trapped(_) => None,
        }
    }
}

fn list(annotation: Option<Value>, key: &str) -> Vec<Value> {
    match annotation.and_then(|mut a| a.get_mut(key).map(Value::take)) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

/// A result the module must never return.
#[derive(Debug, Clone)]
pub struct ContractViolation {
    pub kind: ViolationKind,
    /// What the module returned (at most the first 4 KiB).
    pub output: Vec<u8>,
    /// Real Fluent Bit 5.1.1 would have aborted the whole process here.
    pub fatal: bool,
    /// The 1-based call number on this filter.
    pub call: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationKind {
    /// The returned address is outside memory or no NUL follows it.
    InvalidAddress(u32),
    /// Not valid JSON.
    InvalidJson(String),
    /// Valid JSON, but not an object.
    NotAnObject,
}

impl fmt::Display for ContractViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = String::from_utf8_lossy(&self.output[..self.output.len().min(200)]).into_owned();
        match &self.kind {
            ViolationKind::InvalidAddress(a) => write!(
                f,
                "contract violation (call {}): the module returned address {a:#x}, which is outside its memory or \
                 not NUL-terminated; Fluent Bit warns \"returned value is invalid\" and drops the record",
                self.call
            )?,
            ViolationKind::InvalidJson(e) => write!(
                f,
                "contract violation (call {}): the module returned invalid JSON ({e}): `{shown}`; Fluent Bit drops \
                 the record with an error",
                self.call
            )?,
            ViolationKind::NotAnObject => write!(
                f,
                "contract violation (call {}): the module returned JSON that is not an object: `{shown}`; Fluent Bit \
                 drops the record with an error",
                self.call
            )?,
        }
        if self.fatal {
            write!(
                f,
                ". FATAL: a valid record was already emitted in this chunk, so real Fluent Bit 5.1.1 aborts the \
                 whole process here (double free)"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ContractViolation {}

/// Per-filter counts of what the harness saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HarnessCounts {
    pub calls: u64,
    pub pass_through: u64,
    pub unchanged: u64,
    pub modified: u64,
    pub dropped: u64,
    pub trapped: u64,
    pub violations: u64,
    /// Records the host could not copy in (the module got NULL).
    pub null_records: u64,
    /// Modified records whose values Fluent Bit's own JSON parser would change (for example a
    /// number written `1e20`, which `flb_pack.c` reads as the integer 1).
    pub lossy_reparse: u64,
}

struct HostState {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

enum Allocator {
    /// The module's own exported `malloc` and `free` (WAMR then disables its app heap).
    Module { malloc: TypedFunc<i32, i32>, free: TypedFunc<i32, ()> },
    /// WAMR's app heap: `size` bytes at `base`, appended to linear memory at instantiation.
    AppHeap { base: u32, size: u32, used: u32 },
}

/// Fluent Bit's filter function: `(tag, tag_len, time_sec, time_nsec, record, record_len) -> result`.
type FilterFunc = TypedFunc<(i32, i32, i32, i32, i32, i32), i32>;

/// One instantiated filter: one module instance, kept for the filter's whole life.
pub struct FluentBitFilter {
    options: FilterOptions,
    store: Store<HostState>,
    function: FilterFunc,
    memory: Memory,
    allocator: Allocator,
    stdout: Option<MemoryOutputPipe>,
    stderr: Option<MemoryOutputPipe>,
    host_log: Vec<String>,
    chunk_has_record: bool,
    counts: HarnessCounts,
    /// Time inside the filter function's calls: the module's own cost, without the host's copies
    /// and this harness's checks of each reply.
    guest_time: Duration,
}

impl FluentBitFilter {
    /// Fluent Bit's start-up for one filter block. Errors where Fluent Bit would refuse to start,
    /// and (louder than Fluent Bit) on a missing or mistyped `Function_Name`.
    pub fn start(options: FilterOptions) -> Result<FluentBitFilter> {
        let (engine, module) = compiled(&options.wasm_path, options.wasm_stack_size)?;
        let mut builder = WasiCtxBuilder::new();
        for dir in options.preopens() {
            if !Path::new(&dir).is_dir() {
                bail!("Accessible_Paths `{dir}` is not a directory (Fluent Bit fails start-up the same way)");
            }
            builder
                .preopened_dir(&dir, &dir, DirPerms::all(), FilePerms::all())
                .map_err(anyhow::Error::from)
                .with_context(|| format!("preopening Accessible_Paths `{dir}`"))?;
        }
        let (stdout, stderr) = if options.capture_output {
            let (out, err) = (MemoryOutputPipe::new(CAPTURE_LIMIT), MemoryOutputPipe::new(CAPTURE_LIMIT));
            builder.stdout(out.clone()).stderr(err.clone());
            (Some(out), Some(err))
        } else {
            builder.inherit_stdout().inherit_stderr();
            (None, None)
        };
        let limits = StoreLimitsBuilder::new().memory_size(options.max_memory.unwrap_or(usize::MAX)).build();
        let mut store = Store::new(&engine, HostState { wasi: builder.build_p1(), limits });
        store.limiter(|state| &mut state.limits);

        let mut linker: Linker<HostState> = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi).map_err(anyhow::Error::from)?;
        // WAMR loads a module whose imports it cannot resolve and traps only if one is called.
        linker.define_unknown_imports_as_traps(&module).map_err(anyhow::Error::from)?;
        let instance = linker
            .instantiate(&mut store, &module)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("instantiating {}", options.wasm_path.display()))?;
        post_instantiate(&mut store, &module, &instance)?;

        let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| {
            anyhow!("{} exports no `memory`; this harness needs it to copy records in", options.wasm_path.display())
        })?;
        let function = lookup_filter(&mut store, &instance, &options)?;
        let allocator =
            match (typed::<i32, i32>(&mut store, &instance, "malloc"), typed::<i32, ()>(&mut store, &instance, "free"))
            {
                (Some(malloc), Some(free)) => Allocator::Module { malloc, free },
                _ => {
                    let size = options.wasm_heap_size.max(DEFAULT_HEAP_SIZE);
                    let before = memory.size(&store);
                    memory
                        .grow(&mut store, u64::from(size).div_ceil(PAGE))
                        .map_err(anyhow::Error::from)
                        .context("growing memory for the emulated WAMR app heap")?;
                    let base = u32::try_from(before * PAGE).context("memory too large for wasm32")?;
                    Allocator::AppHeap { base, size, used: 0 }
                }
            };
        Ok(FluentBitFilter {
            options,
            store,
            function,
            memory,
            allocator,
            stdout,
            stderr,
            host_log: Vec::new(),
            chunk_has_record: false,
            counts: HarnessCounts::default(),
            guest_time: Duration::ZERO,
        })
    }

    /// The options this filter started with.
    pub fn options(&self) -> &FilterOptions {
        &self.options
    }

    /// True when records are copied with the module's own `malloc` (no WAMR app heap).
    pub fn uses_module_malloc(&self) -> bool {
        matches!(self.allocator, Allocator::Module { .. })
    }

    /// Starts a new chunk (see [`ContractViolation::fatal`]).
    pub fn begin_chunk(&mut self) {
        self.chunk_has_record = false;
    }

    /// Sends `record` encoded as Fluent Bit encodes it ([`fluentbit_json`]).
    pub fn filter(&mut self, time_sec: u32, record: &Value) -> Result<Reply> {
        let tag = self.options.tag.clone();
        self.call_raw(tag.as_bytes(), time_sec, 0, &fluentbit_json(record))
    }

    /// Sends one input line as `tail` with the example JSON parser would ([`ingest_line`]);
    /// `now` is the fallback record time.
    pub fn filter_line(&mut self, line: &[u8], now: i64) -> Result<Reply> {
        let ingested = ingest_line(line, now);
        let tag = self.options.tag.clone();
        self.call_raw(tag.as_bytes(), ingested.time_sec, 0, &ingested.body)
    }

    /// One call with exactly these bytes (no NUL inside `record` expected; Fluent Bit never sends
    /// one). Bytes Fluent Bit would never send (invalid JSON) that come back unchanged are
    /// reported as [`Outcome::PassThrough`]/[`Outcome::Unchanged`] without validation.
    pub fn call_raw(&mut self, tag: &[u8], time_sec: u32, time_nsec: u32, record: &[u8]) -> Result<Reply> {
        self.counts.calls += 1;
        let tag_ptr = self.dup(tag)?;
        let record_ptr = self.dup(record)?;
        if record_ptr == 0 {
            self.counts.null_records += 1;
        }
        let args = (
            tag_ptr as i32,
            tag.len() as i32,
            time_sec as i32,
            time_nsec as i32,
            record_ptr as i32,
            record.len() as i32,
        );
        let started = Instant::now();
        let result = self.function.call(&mut self.store, args);
        self.guest_time += started.elapsed();
        let (returned, text) = match result {
            Ok(address) => {
                let address = address as u32;
                (Some(address), c_string(self.memory.data(&self.store), address))
            }
            Err(e) => {
                let message = format!("{:#}", anyhow::Error::from(e));
                self.log(format!("Got exception running wasm code: {message}"));
                self.free_inputs(tag_ptr, record_ptr);
                self.counts.trapped += 1;
                let outcome = Outcome::Trapped(message);
                return Ok(Reply { outcome, tag_ptr, record_ptr, returned_ptr: None });
            }
        };
        // Fluent Bit copies the result before it frees the inputs (a pass-through needs that).
        self.free_inputs(tag_ptr, record_ptr);
        let address = returned.unwrap_or_default();
        let Some(text) = text else {
            self.log("[wasm] returned value is invalid".to_string());
            return Err(self.violation(ViolationKind::InvalidAddress(address), Vec::new()));
        };
        // The input address first: an empty record (which Fluent Bit never sends) returned as
        // itself is a pass-through, not a drop.
        let outcome = if text == record && address == record_ptr && record_ptr != 0 {
            Outcome::PassThrough(text)
        } else if text.is_empty() {
            Outcome::Dropped
        } else if text == record {
            Outcome::Unchanged(text)
        } else {
            match validate_object(&text) {
                Ok(()) => {
                    if lossy_reparse(&text) {
                        self.counts.lossy_reparse += 1;
                        self.log(
                            "record values change when Fluent Bit parses the module's JSON (number format)".into(),
                        );
                    }
                    Outcome::Modified(text)
                }
                Err(kind) => {
                    let shown =
                        format!("invalid JSON format. buf: {}", String::from_utf8_lossy(&text[..text.len().min(200)]));
                    self.log(shown);
                    return Err(self.violation(kind, text));
                }
            }
        };
        match &outcome {
            Outcome::PassThrough(_) => self.counts.pass_through += 1,
            Outcome::Unchanged(_) => self.counts.unchanged += 1,
            Outcome::Modified(_) => self.counts.modified += 1,
            Outcome::Dropped => self.counts.dropped += 1,
            Outcome::Trapped(_) => {}
        }
        if !matches!(outcome, Outcome::Dropped) {
            self.chunk_has_record = true;
        }
        Ok(Reply { outcome, tag_ptr, record_ptr, returned_ptr: returned })
    }

    /// The instance's linear memory size in bytes.
    pub fn memory_size(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// The first `Accessible_Paths` directory (host side).
    pub fn accessible_dir(&self) -> PathBuf {
        PathBuf::from(&self.options.preopens()[0])
    }

    /// Reads `name` from the first `Accessible_Paths` directory, if it exists.
    pub fn read_accessible(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.accessible_dir().join(name)).ok()
    }

    /// The guest's stdout so far (empty unless captured).
    pub fn captured_stdout(&self) -> String {
        self.stdout.as_ref().map(|p| String::from_utf8_lossy(&p.contents()).into_owned()).unwrap_or_default()
    }

    /// The guest's stderr so far (empty unless captured).
    pub fn captured_stderr(&self) -> String {
        self.stderr.as_ref().map(|p| String::from_utf8_lossy(&p.contents()).into_owned()).unwrap_or_default()
    }

    /// The host's own log lines (what Fluent Bit would log for this filter).
    pub fn host_log(&self) -> &[String] {
        &self.host_log
    }

    pub fn counts(&self) -> &HarnessCounts {
        &self.counts
    }

    /// Time spent inside the filter function so far.
    pub fn guest_time(&self) -> Duration {
        self.guest_time
    }

    fn log(&mut self, message: String) {
        let line = format!("[error] [filter:wasm:{}] {message}", self.options.function_name);
        if !self.options.capture_output {
            eprintln!("{line}");
        }
        self.host_log.push(line);
    }

    fn violation(&mut self, kind: ViolationKind, mut output: Vec<u8>) -> anyhow::Error {
        self.counts.violations += 1;
        output.truncate(4096);
        ContractViolation { kind, output, fatal: self.chunk_has_record, call: self.counts.calls }.into()
    }

    /// `wasm_runtime_module_dup_data(bytes + NUL)`: the module address, or 0 when it fails.
    fn dup(&mut self, bytes: &[u8]) -> Result<u32> {
        let size = bytes.len() + 1;
        let address = match &mut self.allocator {
            Allocator::Module { malloc, .. } => {
                let Ok(size) = i32::try_from(size) else { return Ok(0) };
                match malloc.call(&mut self.store, size) {
                    Ok(a) => a as u32,
                    Err(e) => {
                        let message = format!("module malloc failed: {:#}", anyhow::Error::from(e));
                        self.log(message);
                        0
                    }
                }
            }
            Allocator::AppHeap { base, size: heap, used } => {
                // An 8-byte block header, 8-byte alignment.
                let need = (size as u64).div_ceil(8) * 8 + 8;
                if u64::from(*used) + need > u64::from(*heap) {
                    0
                } else {
                    let address = *base + *used + 8;
                    *used += need as u32;
                    address
                }
            }
        };
        if address == 0 {
            return Ok(0);
        }
        let data = self.memory.data_mut(&mut self.store);
        let start = address as usize;
        let Some(target) = data.get_mut(start..start + size) else {
            self.log(format!("malloc returned {address:#x}, outside memory"));
            return Ok(0);
        };
        target[..bytes.len()].copy_from_slice(bytes);
        target[bytes.len()] = 0;
        Ok(address)
    }

    /// `wasm_runtime_module_free` for both inputs, tag first.
    fn free_inputs(&mut self, tag_ptr: u32, record_ptr: u32) {
        match &mut self.allocator {
            Allocator::Module { free, .. } => {
                let free = free.clone();
                for address in [tag_ptr, record_ptr] {
                    if address != 0 {
                        if let Err(e) = free.call(&mut self.store, address as i32) {
                            let message = format!("module free({address:#x}) trapped: {:#}", anyhow::Error::from(e));
                            self.log(message);
                        }
                    }
                }
            }
            Allocator::AppHeap { used, .. } => *used = 0,
        }
    }
}

/// Compiles each module once per process (tests start many filters).
fn compiled(path: &Path, stack: usize) -> Result<(Engine, Module)> {
    type Key = (PathBuf, u64, Option<SystemTime>, usize);
    static CACHE: OnceLock<Mutex<HashMap<Key, (Engine, Module)>>> = OnceLock::new();
    let meta = std::fs::metadata(path).with_context(|| format!("Wasm_Path {}", path.display()))?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok(), stack);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().map_err(|_| anyhow!("module cache poisoned"))?.get(&key) {
        return Ok(hit.clone());
    }
    let mut config = Config::new();
    config.max_wasm_stack(stack);
    // WAMR's interpreter has no SIMD: a module using it must fail to load here too.
    config.wasm_relaxed_simd(false);
    config.wasm_simd(false);
    let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
    let module = Module::from_file(&engine, path)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("loading {}", path.display()))?;
    cache.lock().map_err(|_| anyhow!("module cache poisoned"))?.insert(key, (engine.clone(), module.clone()));
    Ok((engine, module))
}

/// WAMR's `execute_post_instantiate_functions` (the start function already ran).
fn post_instantiate(store: &mut Store<HostState>, module: &Module, instance: &Instance) -> Result<()> {
    let imports_wasi = module.imports().any(|i| i.module().starts_with("wasi_"));
    let mut names = Vec::new();
    if imports_wasi {
        names.push("_initialize");
    }
    names.push("__post_instantiate");
    if !imports_wasi {
        names.push("__wasm_call_ctors");
    }
    for name in names {
        if let Some(f) = typed::<(), ()>(store, instance, name) {
            f.call(&mut *store, ())
                .map_err(anyhow::Error::from)
                .with_context(|| format!("running `{name}` at instantiation"))?;
        }
    }
    Ok(())
}

fn typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    store: &mut Store<HostState>,
    instance: &Instance,
    name: &str,
) -> Option<TypedFunc<P, R>> {
    instance.get_func(&mut *store, name)?.typed::<P, R>(&*store).ok()
}

fn lookup_filter(store: &mut Store<HostState>, instance: &Instance, options: &FilterOptions) -> Result<FilterFunc> {
    let name = &options.function_name;
    let Some(func): Option<Func> = instance.get_func(&mut *store, name) else {
        bail!(
            "{} does not export function `{name}` (Function_Name). Real Fluent Bit does not catch this at start-up: \
             it logs \"The {name} wasm function is not found.\" and drops every record",
            options.wasm_path.display()
        );
    };
    let ty = func.ty(&*store);
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    let all_i32 = |v: &[ValType]| v.iter().all(|t| matches!(t, ValType::I32));
    if params.len() != 6 || results.len() != 1 || !all_i32(&params) || !all_i32(&results) {
        bail!(
            "`{name}` has type {ty}, not (i32, i32, i32, i32, i32, i32) -> i32. Real Fluent Bit does not check: \
             WAMR calls it anyway and it misbehaves silently",
        );
    }
    func.typed(&*store).map_err(anyhow::Error::from)
}

/// The NUL-terminated string at `address`, or `None` as `wasm_runtime_validate_app_str_addr`.
fn c_string(memory: &[u8], address: u32) -> Option<Vec<u8>> {
    let rest = memory.get(address as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(rest[..end].to_vec())
}

fn validate_object(text: &[u8]) -> std::result::Result<(), ViolationKind> {
    let first = text.iter().find(|b| !b.is_ascii_whitespace()).copied();
    fluentbit_reencode(text).map_err(ViolationKind::InvalidJson)?;
    if first == Some(b'{') {
        Ok(())
    } else {
        Err(ViolationKind::NotAnObject)
    }
}

/// True when Fluent Bit's parser would read different values than JSON means (checked only
/// when serde_json can hold the document).
fn lossy_reparse(text: &[u8]) -> bool {
    let Ok(meant) = serde_json::from_slice::<Value>(text) else { return false };
    let Ok(again) = fluentbit_reencode(text) else { return true };
    match serde_json::from_slice::<Value>(&again) {
        Ok(seen) => !same_values(&meant, &seen),
        Err(_) => true,
    }
}

/// Equality with numbers compared as numbers (1 and 1.0 are the same value).
fn same_values(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_values(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_values(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// Fluent Bit's JSON: how a record looks when the module receives it.
// ---------------------------------------------------------------------------------------------

/// A record as Fluent Bit's msgpack-to-JSON encoder writes it (`flb_pack.c` `msgpack2json` with
/// `json.escape_unicode on`, the default): compact, key order kept, strings escaped with
/// `\" \\ \n \r \t \b \f`, other controls and DEL as `\u00XX`, every non-ASCII character as
/// lowercase `\uXXXX` (surrogate pairs above U+FFFF); integers as written; floats with an
/// integral value as `%.1f`, others as `%.16g`.
pub fn fluentbit_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                write_float(out, n.as_f64().unwrap_or(f64::NAN));
            }
        }
        Value::String(s) => write_string(out, s.as_bytes()),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key.as_bytes());
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// `flb_utils_write_str` with `escape_unicode` on.
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x00..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            0x20..=0x7e => out.push(c),
            _ => {
                let width = utf8_width(c);
                match s.get(i..i + width).and_then(|b| std::str::from_utf8(b).ok()).and_then(|t| t.chars().next()) {
                    Some(ch) => {
                        let mut units = [0u16; 2];
                        for unit in ch.encode_utf16(&mut units) {
                            out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                        }
                        i += width;
                        continue;
                    }
                    None => {
                        // Fluent Bit maps each byte of an invalid sequence to the private-use
                        // code point U+E0XX (flb_utils.c): a bad lead byte alone, or the lead and
                        // the continuation bytes before the one that breaks the sequence.
                        let continuations =
                            s[i + 1..(i + width).min(s.len())].iter().take_while(|b| (0x80..0xc0).contains(*b)).count();
                        let bad = if width == 1 { 1 } else { 1 + continuations.min(width - 1) };
                        for &b in &s[i..i + bad] {
                            out.extend_from_slice(format!("\\u{:04x}", 0xe000 | u32::from(b)).as_bytes());
                        }
                        i += bad;
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    out.push(b'"');
}

fn utf8_width(first: u8) -> usize {
    match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

/// `msgpack2json` for FLOAT64.
fn write_float(out: &mut Vec<u8>, x: f64) {
    // `(double)(long long)x == x`, with x86's conversion of out-of-range values to LLONG_MIN.
    let limit = -(i64::MIN as f64); // 2^63
    let as_ll = if x.is_nan() || !(-limit..limit).contains(&x) { i64::MIN } else { x as i64 };
    let text = if x == as_ll as f64 { format!("{x:.1}") } else { format_g(x, 16) };
    out.extend_from_slice(text.as_bytes());
}

/// C's `%.{precision}g`.
fn format_g(x: f64, precision: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{:.*e}", precision - 1, x);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i32 {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_fraction_zeros(mantissa), exponent.abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        strip_fraction_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Raw JSON text as Fluent Bit turns it into a record and back into JSON: `flb_pack_json`
/// (jsmn tokens to msgpack) then `msgpack2json`. Strings are unescaped then escaped again as in
/// [`fluentbit_json`]; for duplicate keys the last one wins, at its own position; numbers follow
/// `pack_numeric_token`: a token with `.` or an exponent with a sign (`1e-5`, `1E+5`) is a double,
/// anything else is read by `strtoll`/`strtoull` up to the first non-digit (so `1e5` becomes 1),
/// integers out of 64-bit range become doubles. No depth limit (10,000 levels are fine).
/// Errors on anything that is not one strict JSON value.
pub fn fluentbit_reencode(json: &[u8]) -> std::result::Result<Vec<u8>, String> {
    struct Member {
        key: Vec<u8>,
        start: usize,
        end: usize,
    }
    enum Frame {
        Array,
        Object { start: usize, members: Vec<Member>, member_start: usize, key: Vec<u8> },
    }
    let mut r = Reader { s: json, i: 0 };
    let mut out = Vec::with_capacity(json.len() + 16);
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        // One value, or the opening of a container.
        r.ws();
        match r.peek() {
            Some(b'{') => {
                r.i += 1;
                let start = out.len();
                out.push(b'{');
                r.ws();
                if r.peek() == Some(b'}') {
                    r.i += 1;
                    out.push(b'}');
                } else {
                    let key = r.key(&mut out)?;
                    stack.push(Frame::Object { start, members: Vec::new(), member_start: start + 1, key });
                    continue;
                }
            }
            Some(b'[') => {
                r.i += 1;
                out.push(b'[');
                r.ws();
                if r.peek() == Some(b']') {
                    r.i += 1;
                    out.push(b']');
                } else {
                    stack.push(Frame::Array);
                    continue;
                }
            }
            Some(b'"') => {
                let s = r.string()?;
                write_string(&mut out, &s);
            }
            Some(b't') => r.literal(b"true", &mut out)?,
            Some(b'f') => r.literal(b"false", &mut out)?,
            Some(b'n') => r.literal(b"null", &mut out)?,
            Some(b'-' | b'0'..=b'9') => {
                let token = r.number()?;
                write_number(&mut out, token);
            }
            Some(c) => return Err(r.error(&format!("unexpected byte {:?}", c as char))),
            None => return Err(r.error("input ends where a value should start")),
        }
        // A value is complete: close containers until one wants another value.
        loop {
            let Some(frame) = stack.last_mut() else {
                r.ws();
                if r.i != r.s.len() {
                    return Err(r.error("trailing characters after the JSON value"));
                }
                return Ok(out);
            };
            r.ws();
            let next = r.peek();
            r.i += 1;
            match frame {
                Frame::Array => match next {
                    Some(b',') => {
                        out.push(b',');
                        break;
                    }
                    Some(b']') => {
                        out.push(b']');
                        stack.pop();
                    }
                    _ => return Err(r.error("expected `,` or `]`")),
                },
                Frame::Object { start, members, member_start, key } => {
                    members.push(Member { key: std::mem::take(key), start: *member_start, end: out.len() });
                    match next {
                        Some(b',') => {
                            out.push(b',');
                            *member_start = out.len();
                            *key = r.key(&mut out)?;
                            break;
                        }
                        Some(b'}') => {
                            let mut seen = HashSet::new();
                            let duplicated = members.iter().any(|m| !seen.insert(m.key.as_slice()));
                            if duplicated {
                                // Keep each key's last occurrence, in order.
                                let mut later = HashSet::new();
                                let mut keep = vec![false; members.len()];
                                for (j, m) in members.iter().enumerate().rev() {
                                    keep[j] = later.insert(m.key.as_slice());
                                }
                                let mut rebuilt = Vec::new();
                                for (m, _) in members.iter().zip(&keep).filter(|(_, k)| **k) {
                                    if !rebuilt.is_empty() {
                                        rebuilt.push(b',');
                                    }
                                    rebuilt.extend_from_slice(&out[m.start..m.end]);
                                }
                                out.truncate(*start + 1);
                                out.extend_from_slice(&rebuilt);
                            }
                            out.push(b'}');
                            stack.pop();
                        }
                        _ => return Err(r.error("expected `,` or `}`")),
                    }
                }
            }
        }
    }
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i.min(self.s.len()))
    }

    /// `"key":` written to `out`; returns the decoded key.
    fn key(&mut self, out: &mut Vec<u8>) -> std::result::Result<Vec<u8>, String> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string key"));
        }
        let key = self.string()?;
        write_string(out, &key);
        self.ws();
        if self.peek() != Some(b':') {
            return Err(self.error("expected `:`"));
        }
        self.i += 1;
        out.push(b':');
        Ok(key)
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), String> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            out.extend_from_slice(word);
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// A strict JSON number token.
    fn number(&mut self) -> std::result::Result<&str, String> {
        let start = self.i;
        let digits = |r: &mut Self| {
            let from = r.i;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.i += 1;
            }
            r.i - from
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.error("invalid number"))
    }

    /// A string's content, unescaped (`flb_unescape_string_utf8`); bytes are not checked as UTF-8.
    fn string(&mut self) -> std::result::Result<Vec<u8>, String> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else { return Err(self.error("unterminated string")) };
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else { return Err(self.error("unterminated string")) };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            let ch = if (0xd800..0xdc00).contains(&unit) && self.s[self.i..].starts_with(b"\\u") {
                                let save = self.i;
                                self.i += 2;
                                let low = self.hex4()?;
                                if (0xdc00..0xe000).contains(&low) {
                                    char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))
                                } else {
                                    self.i = save;
                                    None
                                }
                            } else {
                                char::from_u32(unit)
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.unwrap_or('\u{fffd}').encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                0x00..=0x1f => return Err(self.error("control character inside a string")),
                _ => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> std::result::Result<u32, String> {
        let digits = self.s.get(self.i..self.i + 4).ok_or_else(|| self.error("short \\u escape"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.error("invalid \\u escape"))?;
        let value = u32::from_str_radix(text, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.i += 4;
        Ok(value)
    }
}

/// `pack_numeric_token`, then `msgpack2json`.
fn write_number(out: &mut Vec<u8>, token: &str) {
    let b = token.as_bytes();
    let is_float =
        b.contains(&b'.') || b.windows(2).any(|w| matches!(w[0], b'e' | b'E') && matches!(w[1], b'+' | b'-'));
    let strtod = || token.parse::<f64>().unwrap_or(f64::NAN);
    if is_float {
        write_float(out, strtod());
        return;
    }
    let negative = b[0] == b'-';
    let digits_end = b
        .iter()
        .skip(usize::from(negative))
        .position(|c| !c.is_ascii_digit())
        .map_or(b.len(), |p| p + usize::from(negative));
    let integer = &token[..digits_end];
    let text = if negative {
        integer.parse::<i64>().map(|v| v.to_string()).ok()
    } else {
        integer.parse::<u64>().map(|v| v.to_string()).ok()
    };
    match text {
        Some(t) => out.extend_from_slice(t.as_bytes()),
        None => write_float(out, strtod()),
    }
}

// ---------------------------------------------------------------------------------------------
// Input: what `tail` with the example `cloudtrail` parser makes of a line.
// ---------------------------------------------------------------------------------------------

/// One record as Fluent Bit's input would hand it to the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The record body as the filter receives it.
    pub body: Vec<u8>,
    /// The record time (`Time_Key eventTime`), or the fallback.
    pub time_sec: u32,
    /// False when the line was not a JSON object: `tail` then keeps it as `{"log": line}`.
    pub parsed: bool,
    /// False when the time is the fallback (`now`), not the record's `eventTime`.
    pub timed: bool,
}

/// `tail` + the example JSON parser (`Time_Key eventTime`, `Time_Keep On`) for one line
/// (without its newline): a JSON object is re-encoded as Fluent Bit does ([`fluentbit_reencode`])
/// and timed by its `eventTime`; anything else becomes `{"log":"<line>"}` timed `now`, as `tail`
/// does when its parser fails.
pub fn ingest_line(line: &[u8], now: i64) -> Ingested {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let is_object = line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let reencoded = if is_object { fluentbit_reencode(line).ok() } else { None };
    // Fluent Bit passes `tv_sec` through a uint32 argument: truncated, not clamped.
    let as_u32 = |t: i64| t as u32;
    match reencoded {
        Some(body) => {
            let time = record_time(&body);
            Ingested { time_sec: as_u32(time.unwrap_or(now)), timed: time.is_some(), body, parsed: true }
        }
        None => {
            let mut body = b"{\"log\":".to_vec();
            write_string(&mut body, line);
            body.push(b'}');
            Ingested { body, time_sec: as_u32(now), parsed: false, timed: false }
        }
    }
}

/// The record's `eventTime` in Unix seconds, if it has a readable one.
pub fn record_time(record: &[u8]) -> Option<i64> {
    let object = tripline::json::RawObject::new(record).ok()?;
    let value = object.get("eventTime").ok()??;
    let text = value.as_str().ok()??;
    tripline::time::parse_event_time(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reencode(s: &str) -> String {
        String::from_utf8(fluentbit_reencode(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn encodes_like_msgpack2json() {
        let v = json!({"b": 1, "a": [true, null, -2, 1.5, 2.0, 0.1, 1e300, "é€😀\"\\\n\u{1}\u{7f}/"]});
        assert_eq!(
            String::from_utf8(fluentbit_json(&v)).unwrap(),
            r#"{"b":1,"a":[true,null,-2,1.5,2.0,0.1,1e+300,"\u00e9\u20ac\ud83d\ude00\"\\\n\u0001\u007f/"]}"#
        );
        assert_eq!(format_g(1.0 / 3.0, 16), "0.3333333333333333");
        assert_eq!(format_g(1e-7, 16), "1e-07");
        assert_eq!(format_g(123456.789, 16), "123456.789");
        assert_eq!(format_g(9.223372036854776e18, 16), "9.223372036854776e+18");
    }

    #[test]
    fn reencodes_like_flb_pack_json() {
        assert_eq!(
            reencode(
                r#" {"a" : "\u00e9\/x", "n": [1e5, 1E+2, 1e-2, -0, 18446744073709551615, 99999999999999999999]} "#
            ),
            r#"{"a":"\u00e9/x","n":[1,100.0,0.01,0,18446744073709551615,1e+20]}"#
        );
        assert_eq!(reencode(r#"{"k":1,"j":2,"k":3}"#), r#"{"j":2,"k":3}"#);
        assert_eq!(
            reencode(r#"{"o":{},"p":[],"q":[{"x":{"y":[1,{"x":1,"x":2}]}}]}"#),
            r#"{"o":{},"p":[],"q":[{"x":{"y":[1,{"x":2}]}}]}"#
        );
        assert_eq!(reencode(r#""\ud83d\ude00""#), r#""\ud83d\ude00""#);
        // Invalid UTF-8 as real Fluent Bit 5.1.1 printed it (tests/real_fluentbit.rs).
        assert_eq!(fluentbit_reencode(b"\"Job\xff\xfeCreated\"").unwrap(), br#""Job\ue0ff\ue0feCreated""#);
        for bad in ["{", "{\"a\":1", "[1,]", "{\"a\" 1}", "01", "1.", "{} x", "\"a\nb\"", ""] {
            assert!(fluentbit_reencode(bad.as_bytes()).is_err(), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(fluentbit_reencode(deep.as_bytes()).unwrap(), deep.as_bytes());
    }

    #[test]
    fn ingests_lines_like_tail() {
        let line = br#"{"eventTime":"2023-04-24T19:15:26Z","eventName":"JobCreated"}"#;
        let i = ingest_line(line, 5);
        assert_eq!((i.time_sec, i.parsed, i.timed), (1_682_363_726, true, true));
        let i = ingest_line(b"not json\r", 5);
        assert_eq!((i.body.as_slice(), i.time_sec, i.parsed), (&br#"{"log":"not json"}"#[..], 5, false));
    }
}
