//! The engine: records in, tags and alerts out, state held explicitly.
//!
//! `process` is the hot path. It reads `eventName` and `eventTime` from the raw record (one
//! partial scan, no allocation), advances the watermark, and only if some detection wants that
//! `eventName` does it read more. Closed windows become alerts in a bounded queue that the host
//! adapter drains. The engine knows detections only through the `Detection` trait.

use std::borrow::Cow;
use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::aggregate::{clip, late_group, Caps, ClosedGroup, GroupStats, Windows};
use crate::alert::{build_match, Alert, AlertBlocks};
use crate::alert_format::AlertFormat;
use crate::cloudtrail::{Event, FieldError, UserSource};
use crate::config::{split_common, Config, ConfigError, Document, HostConfig, LatePolicy};
use crate::catalog::{builtin_rules, catalog, Entry};
use crate::detection::{value_text, Detection, Selected};
use crate::rule::{parse_rule_file, Rule};
use crate::json::{Kind, ScanError, ScannedObject};
use crate::snapshot;
pub use crate::state::{Counters, EngineState, SlotState};
use crate::suppress::{suppressed, Suppression};
use crate::time::{parse_event_time, window_start};


/// What [`Engine::restore_sections`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The length of the whole snapshot at the start of the bytes; sections of changes follow.
    pub base_bytes: usize,
    /// Why the sections stopped before the end of the bytes, if they did.
    pub damaged: Option<String>,
}

/// Why one record was passed through without being read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    Parse(ScanError),
    Field(String),
}

/// The per-record result: real-time tags for this record, if any.
#[derive(Debug, Default)]
pub struct Processed {
    /// JSON text, embedded in the record as it is.
    pub matches: Vec<Box<RawValue>>,
    pub error: Option<RecordError>,
    /// The record changed state that later alerts depend on (a detection selected it, a window
    /// closed, or the watermark crossed a lateness boundary): a host that must survive a stop
    /// at any record keeps it (see `journal.rs`). Counters alone do not count.
    pub changed: bool,
}

struct Slot {
    key: String,
    detection: Box<dyn Detection>,
    blocks: AlertBlocks,
    suppress: Vec<Suppression>,
    windows: Windows,
    /// Window length: the detection's own `bin` span, else the host's window.
    length: i64,
}

/// The detections by the `eventName`s they select, lower-cased: exact names, prefixes (a name
/// ending in `*`); those that name none by the value they require of another field
/// ([`INDEX_FIELDS`]); and the rest.
#[derive(Default)]
struct Index {
    /// Hashed with Fx, not SipHash: every record looks its name up, and no record chooses the
    /// keys (they are the rules' names).
    by_name: FxHashMap<Box<[u8]>, Vec<usize>>,
    by_prefix: Vec<(Box<[u8]>, usize)>,
    by_field: Vec<FieldIndex>,
    any: Vec<usize>,
    /// The longest exactly indexed name: a longer one can match none.
    longest: usize,
}

/// The detections that require a value of one field ([`INDEX_FIELDS`]).
struct FieldIndex {
    field: &'static str,
    /// By required value, lower-cased.
    by_value: FxHashMap<Box<[u8]>, Vec<usize>>,
    /// Every detection indexed by the field.
    all: Vec<usize>,
}

/// Names are folded on the stack: the lookup of a record's name never allocates.
const NAME_BUFFER: usize = 128;

/// `find` of `text` lower-cased (ASCII), folded on the stack; `text` is at most [`NAME_BUFFER`].
fn folded<T>(text: &[u8], find: impl FnOnce(&[u8]) -> T) -> T {
    let mut buffer = [0u8; NAME_BUFFER];
    let folded = &mut buffer[..text.len()];
    folded.copy_from_slice(text);
    folded.make_ascii_lowercase();
    find(folded)
}

impl Index {
    fn new(slots: &[Slot]) -> Index {
        let mut index = Index::default();
        for (i, slot) in slots.iter().enumerate() {
            let names = slot.detection.event_names();
            // A name the index cannot hold (a wildcard inside, or too long) makes the
            // detection look at every record: slower, never wrong.
            let indexable = |n: &String| n.len() <= NAME_BUFFER && !n.trim_end_matches('*').contains('*');
            if names.is_empty() {
                match slot.detection.required_values() {
                    Some((field, values)) if values.iter().all(|v| v.len() <= NAME_BUFFER) => index.add_required(field, values, i),
                    _ => index.any.push(i),
                }
                continue;
            }
            if !names.iter().all(indexable) {
                index.any.push(i);
                continue;
            }
            for name in names {
                let folded = name.to_ascii_lowercase().into_bytes();
                match folded.strip_suffix(b"*") {
                    Some(prefix) => index.by_prefix.push((prefix.into(), i)),
                    None => {
                        index.longest = index.longest.max(folded.len());
                        let list = index.by_name.entry(folded.into()).or_default();
                        if !list.contains(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        index
    }

    fn add_required(&mut self, field: &'static str, values: Vec<String>, detection: usize) {
        let at = match self.by_field.iter().position(|index| index.field == field) {
            Some(at) => at,
            None => {
                self.by_field.push(FieldIndex { field, by_value: FxHashMap::default(), all: Vec::new() });
                self.by_field.len() - 1
            }
        };
        let FieldIndex { by_value, all, .. } = &mut self.by_field[at];
        all.push(detection);
        for value in values {
            let list = by_value.entry(value.to_ascii_lowercase().into_bytes().into()).or_default();
            if !list.contains(&detection) {
                list.push(detection);
            }
        }
    }

    /// Adds to `out` the detections that may select `event`, in slot order.
    fn candidates(&self, event: &Event<'_>, out: &mut Vec<usize>) {
        let name = event.event_name.as_bytes();
        if name.len() <= self.longest {
            out.extend(folded(name, |name| self.by_name.get(name)).into_iter().flatten());
        }
        out.extend(self.prefixed(name));
        for FieldIndex { field, by_value, all } in &self.by_field {
            match event.indexed_field(field, |value| by_value.contains_key(value.as_bytes())) {
                Ok(Some(value)) if value.len() <= NAME_BUFFER => {
                    out.extend(folded(&value, |value| by_value.get(value)).into_iter().flatten());
                }
                Ok(_) => {}
                // The detections read it themselves, and count the record as broken.
                Err(_) => out.extend(all),
            }
        }
        out.extend(&self.any);
        out.sort_unstable();
        out.dedup();
    }

    fn prefixed<'s>(&'s self, name: &'s [u8]) -> impl Iterator<Item = usize> + 's {
        let matches = |p: &[u8]| name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p);
        self.by_prefix.iter().filter(move |(p, _)| matches(p)).map(|(_, i)| *i)
    }
}


pub struct Engine {
    config: Config,
    slots: Vec<Slot>,
    index: Index,
    /// The distinct window lengths of the slots.
    lengths: Vec<i64>,
    watermark: Option<i64>,
    counters: Counters,
    /// Alerts waiting for the host, as JSON text: a tenth of the memory of `Value`s.
    pending: VecDeque<Box<RawValue>>,
    pending_bytes: usize,
    config_error: Option<ConfigError>,
    /// Rules and rule files left out, with why.
    rule_errors: Vec<String>,
    /// Per detection, saved state the last restore left out because the configuration or the
    /// rule changed since (see [`Engine::restore`]).
    state_refused: Vec<String>,
    /// The detections that may select the current record (see [`Index::candidates`]).
    candidates: Vec<usize>,
    /// Set by the current record when it changes state (see [`Processed::changed`]).
    changed: bool,
    /// The watermark at which the oldest open window closes, or earlier (`i64::MIN` until found,
    /// as after a restore): windows are looked at only once the watermark reaches it.
    next_close: i64,
}

impl Engine {
    /// An engine for a validated configuration.
    pub fn new(config: Config) -> Result<Engine, ConfigError> {
        Engine::with_rules(config, builtin_rules())
    }

    /// An engine that knows `rules` (instead of the built-in ones). A rule that cannot run
    /// (or whose key is taken) is left out and reported in [`Engine::rule_errors`]; the others run.
    pub fn with_rules(config: Config, rules: Vec<Rule>) -> Result<Engine, ConfigError> {
        let mut entries = Vec::new();
        let mut rule_errors = Vec::new();
        for entry in catalog(rules) {
            if entries.iter().any(|e: &Entry| e.key == entry.key) {
                rule_errors.push(format!("rule `{}`: another detection has that key; left out", entry.key));
            } else {
                entries.push(entry);
            }
        }
        for key in config.detections.keys() {
            if !entries.iter().any(|e| e.key == *key) {
                let known: Vec<_> = entries.iter().map(|e| e.key.as_str()).collect();
                return Err(ConfigError::new(
                    format!("detections.{key}"),
                    format!("unknown detection; known: {}", known.join(", ")),
                ));
            }
        }
        let mut slots = Vec::new();
        for entry in &entries {
            let empty = Map::new();
            let section = config.detections.get(&entry.key).unwrap_or(&empty);
            let (common, own) = split_common(&entry.key, section)?;
            let detection = match entry.construct(&own) {
                Ok(detection) => detection,
                Err(e) if own.is_empty() => {
                    rule_errors.push(format!("rule `{}`: {}; left out", entry.key, e.message));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if common.enabled.unwrap_or(entry.enabled_by_default) {
                let length = detection.window_seconds().unwrap_or(config.window.length_seconds);
                let blocks = AlertBlocks::new(detection.metadata());
                slots.push(Slot { key: entry.key.clone(), detection, blocks, suppress: common.suppress, windows: Windows::default(), length });
            }
        }
        let index = Index::new(&slots);
        let mut lengths: Vec<i64> = slots.iter().map(|s| s.length).collect();
        lengths.sort_unstable();
        lengths.dedup();
        let counters = Counters { rule_errors: rule_errors.len() as u64, ..Counters::default() };
        Ok(Engine {
            config,
            slots,
            index,
            lengths,
            watermark: None,
            counters,
            pending: VecDeque::new(),
            pending_bytes: 0,
            config_error: None,
            rule_errors,
            state_refused: Vec::new(),
            candidates: Vec::new(),
            changed: false,
            next_close: i64::MIN,
        })
    }

    /// An engine from a parsed configuration document whose `rules` files `read` fetches by
    /// name (file hosts). A file that cannot be read or parsed is reported in
    /// [`Engine::rule_errors`].
    fn from_document(document: &Document, read: impl Fn(&str) -> Result<Vec<u8>, String>) -> Engine {
        let mut rules = builtin_rules();
        let mut file_errors = Vec::new();
        for file in &document.host.rules {
            match read(file).and_then(|bytes| parse_rule_file(file, &bytes)) {
                Ok(local) => rules.extend(local),
                Err(e) => file_errors.push(e),
            }
        }
        match Engine::with_rules(document.engine.clone(), rules) {
            Ok(mut engine) => {
                engine.counters.rule_errors += file_errors.len() as u64;
                engine.rule_errors.splice(0..0, file_errors);
                engine
            }
            Err(e) => Engine::disabled(e),
        }
    }

    /// A host's engine and its own settings from its configuration document. An invalid
    /// document gives the engine that runs no detection, passes every record through and
    /// reports the error in its stats, beside the default host settings.
    pub fn for_host(bytes: &[u8], read: impl Fn(&str) -> Result<Vec<u8>, String>) -> (Engine, HostConfig) {
        match Document::from_json(bytes) {
            Ok(document) => (Engine::from_document(&document, read), document.host),
            Err(e) => (Engine::disabled(e), HostConfig::default()),
        }
    }

    /// [`Engine::for_host`] without the host's settings.
    pub fn from_json_with_rules(bytes: &[u8], read: impl Fn(&str) -> Result<Vec<u8>, String>) -> Engine {
        Engine::for_host(bytes, read).0
    }

    /// An engine from a configuration document. An invalid document yields an engine that runs
    /// no detection, passes every record through, and reports the error in its stats.
    pub fn from_json(bytes: &[u8]) -> Engine {
        Engine::from_json_with_rules(bytes, |name| Err(format!("{name}: this host reads no rule files")))
    }

    /// A pass-through engine that reports `error`.
    pub fn disabled(error: ConfigError) -> Engine {
        Engine {
            config: Config::default(),
            slots: Vec::new(),
            index: Index::default(),
            lengths: Vec::new(),
            watermark: None,
            counters: Counters { config_errors: 1, ..Counters::default() },
            pending: VecDeque::new(),
            pending_bytes: 0,
            config_error: Some(error),
            rule_errors: Vec::new(),
            state_refused: Vec::new(),
            candidates: Vec::new(),
            changed: false,
            next_close: i64::MIN,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn config_error(&self) -> Option<&ConfigError> {
        self.config_error.as_ref()
    }

    pub fn rule_errors(&self) -> &[String] {
        &self.rule_errors
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Reads one record. `now` is the host's current time (Unix seconds) where it has a clock:
    /// an `eventTime` more than `max_future_seconds` past it is forged or broken, and may not
    /// move the watermark. Hosts replaying history without a clock pass `None`.
    pub fn process(&mut self, record: &[u8], now: Option<i64>) -> Processed {
        self.process_scanned(ScannedObject::validated(record), now)
    }

    /// [`Engine::process`] for a record the host has read with [`ScannedObject::validated`], to
    /// look at fields of its own too: every record is read once, whoever asks what of it.
    pub fn process_scanned(&mut self, record: Result<ScannedObject<'_>, ScanError>, now: Option<i64>) -> Processed {
        self.counters.records += 1;
        if self.slots.is_empty() {
            return Processed::default();
        }
        if !crate::memory::available(record.as_ref().map_or(0, |r| r.raw().len())) {
            // Passing records through unread alone would never give the memory back: the open
            // windows, the bulk of the state, go (counted as evicted, without results).
            self.counters.out_of_memory += 1;
            for slot in &mut self.slots {
                self.counters.evicted_groups += slot.windows.group_count() as u64;
                slot.windows = Windows::default();
            }
            return Processed::default();
        }
        let read = record.map_err(RecordError::Parse).and_then(|record| self.read(record, now));
        let changed = std::mem::take(&mut self.changed);
        match read {
            Ok(matches) => Processed { matches, error: None, changed },
            Err(error) => {
                match &error {
                    RecordError::Parse(_) => self.counters.parse_errors += 1,
                    RecordError::Field(_) => self.counters.field_errors += 1,
                }
                Processed { matches: Vec::new(), error: Some(error), changed }
            }
        }
    }

    /// Reads a record validated whole: whatever the detections change, they change for a record
    /// that is entirely JSON.
    fn read(&mut self, object: ScannedObject<'_>, now: Option<i64>) -> Result<Vec<Box<RawValue>>, RecordError> {
        let time = object.get("eventTime").map_err(RecordError::Parse)?;
        let name = object.get("eventName").map_err(RecordError::Parse)?;
        let time = match time {
            Some(t) if t.kind() == Kind::String => object.text_of(t).map_err(RecordError::Parse)?.and_then(|s| parse_event_time(&s)),
            _ => None,
        };
        let name = match name {
            None => None,
            Some(v) if v.kind() == Kind::String => object.text_of(v).map_err(RecordError::Parse)?,
            Some(_) => return Err(RecordError::Field("eventName is not a string".into())),
        };
        let named = name.is_some();
        // An untimed event is placed at the host's clock, as Splunk files an event whose
        // timestamp it cannot read under its index time; it joins no window either way.
        let event = Event { record: object, event_name: name.unwrap_or_default(), time: time.or(now).unwrap_or_default() };
        // The candidate list is a buffer kept across records: no allocation once warm.
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        if named {
            self.index.candidates(&event, &mut candidates);
        }
        let read = self.read_named(&event, time, now, &candidates);
        self.candidates = candidates;
        read
    }

    /// The rest of [`Engine::read`], given the detections that may select the record and its
    /// own time, if it has one.
    fn read_named(&mut self, event: &Event<'_>, time: Option<i64>, now: Option<i64>, candidates: &[usize]) -> Result<Vec<Box<RawValue>>, RecordError> {
        let wanted = !candidates.is_empty();
        let timing = match time {
            Some(time) => self.observe_time(time, now),
            None if wanted => {
                self.counters.untimed += 1;
                Timing::Untimed
            }
            None => return Ok(Vec::new()),
        };
        let mut matches = Vec::new();
        if wanted {
            matches = self.select(candidates, event, timing).map_err(|e| match e {
                FieldError::Scan(s) => RecordError::Parse(s),
                FieldError::WrongType { field } => RecordError::Field(format!("{field} has the wrong JSON type")),
            })?;
        }
        if self.watermark.is_some_and(|mark| mark >= self.next_close) {
            self.close_windows();
        }
        Ok(matches)
    }

    fn observe_time(&mut self, time: i64, now: Option<i64>) -> Timing {
        let w = self.config.window;
        if now.is_some_and(|now| time > now.saturating_add(w.max_future_seconds)) {
            self.counters.future += 1;
            return Timing::Future;
        }
        let mark = self.watermark.map_or(time, |mark| mark.max(time));
        // Lateness and closing depend on the watermark only through which window boundary
        // (plus the lateness) it has passed; moving within that interval changes nothing.
        let lateness = w.allowed_lateness_seconds;
        let horizon = |mark: i64, length: i64| mark.saturating_sub(lateness).div_euclid(length);
        self.changed |= self.watermark.is_none_or(|old| self.lengths.iter().any(|&l| horizon(old, l) != horizon(mark, l)));
        self.watermark = Some(mark);
        Timing::Timed
    }

    fn select(&mut self, candidates: &[usize], event: &Event<'_>, timing: Timing) -> Result<Vec<Box<RawValue>>, FieldError> {
        let w = self.config.window;
        let limits = self.config.limits;
        let mut caps = Caps {
            max_groups: limits.max_groups,
            max_values: limits.max_values,
            max_value_bytes: limits.max_value_bytes,
            max_bytes: limits.max_window_bytes,
        };
        // The detection that grows pays for it: it may use what the others leave. Summed once a
        // detection selects the record: most records with candidates are selected by none.
        let mut window_bytes: Option<usize> = None;
        let mut matches = Vec::new();
        let mut results = Vec::new();
        let mut selected_by_any = false;
        for &index in candidates {
            let selected = self.slots[index].detection.select(event)?;
            if selected.is_empty() {
                continue;
            }
            let window_bytes = window_bytes.get_or_insert_with(|| self.slots.iter().map(|s| s.windows.bytes()).sum());
            let slot = &mut self.slots[index];
            selected_by_any = true;
            self.changed = true;
            let meta = slot.detection.metadata();
            if slot.detection.tags_each_event() {
                let row = slot.detection.tag_row(&selected[0], event.time);
                let message = slot.blocks.message.render(|f| match row.as_ref().and_then(|r| r.get(f)) {
                    Some(value) => Some(value_text(value)),
                    None => event.field(f, UserSource::default()).ok().flatten(),
                });
                matches.push(build_match(meta, &slot.blocks, &message));
            }
            let start = window_start(event.time, slot.length);
            for selected in selected {
                let (key, values) = match selected {
                    // A row is a one-event window: an event without a usable time, or from the
                    // future, joins none; its tag above says it matched.
                    Selected::Row(_) if timing != Timing::Timed => continue,
                    Selected::Row(mut row) => {
                        if row.is_empty() {
                            // A rule that keeps no fields of its own (Sigma's: no `table`) shows
                            // the fields its message names, as its tag does, and the record's
                            // eventID: two alerts of one second would otherwise be one document
                            // (OCSF's and ECS's ids hash the alert).
                            for field in slot.blocks.message.fields() {
                                if let Ok(Some(text)) = event.field(field, UserSource::default()) {
                                    row.insert(field.to_string(), Value::String(text.into_owned()));
                                }
                            }
                            if let Ok(Some(id)) = event.field("eventID", UserSource::default()) {
                                row.insert("eventID".into(), Value::String(id.into_owned()));
                            }
                        }
                        self.counters.truncated_values += clip_row(&mut row, limits.max_value_bytes);
                        results.push((index, event_group(event.time), Some(row)));
                        continue;
                    }
                    Selected::Group { key: None, .. } => {
                        self.counters.null_group += 1;
                        continue;
                    }
                    Selected::Group { key: Some(key), values } => (key, values),
                };
                let late = self.watermark.is_some_and(|mark| start + slot.length + w.allowed_lateness_seconds <= mark);
                match timing {
                    Timing::Timed if !late => {
                        let own = slot.windows.bytes();
                        caps.max_bytes = limits.max_window_bytes.saturating_sub(*window_bytes - own);
                        let evictions = slot.windows.add(start, slot.length, event.time, key, values, caps);
                        self.next_close = self.next_close.min(start.saturating_add(slot.length).saturating_add(w.allowed_lateness_seconds));
                        *window_bytes = *window_bytes - own + slot.windows.bytes();
                        self.counters.evicted_groups += evictions.groups.len() as u64;
                        self.counters.evicted_values += evictions.values;
                        self.counters.truncated_values += evictions.truncated;
                        results.extend(evictions.groups.into_iter().map(|g| (index, g, None)));
                    }
                    Timing::Timed => {
                        self.counters.late += 1;
                        if w.late_events == LatePolicy::Alert {
                            results.push((index, late_group(start, slot.length, event.time, key, values), None));
                        }
                    }
                    Timing::Future | Timing::Untimed => {}
                }
            }
        }
        if selected_by_any {
            self.counters.matched += 1;
        }
        for (index, group, row) in results {
            self.finish(index, group, row);
        }
        Ok(matches)
    }

    /// Closes every window whose end plus the allowed lateness the watermark has reached.
    fn close_windows(&mut self) {
        let Some(mark) = self.watermark else { return };
        let lateness = self.config.window.allowed_lateness_seconds;
        // A window [s, s+len) closes once s + len + lateness <= watermark.
        // Saturating: `flush` takes any host time, i64::MIN included.
        self.close_before(|length| mark.saturating_sub(lateness + length - 1));
        let closes = |slot: &Slot| slot.windows.oldest().map(|start| start.saturating_add(slot.length).saturating_add(lateness));
        self.next_close = self.slots.iter().filter_map(closes).min().unwrap_or(i64::MAX);
    }

    /// Closes, per slot, the windows that start before `bound(slot's window length)`.
    fn close_before(&mut self, bound: impl Fn(i64) -> i64) {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let bound = bound(slot.length);
            if slot.windows.oldest().is_none_or(|s| s >= bound) {
                continue;
            }
            let mut closed = slot.windows.close_before(bound, slot.length);
            self.changed = true;
            // A window's groups close together: their rows are made together.
            while let Some(start) = closed.first().map(|g| g.window_start) {
                let n = closed.iter().take_while(|g| g.window_start == start).count();
                let rows = self.slots[index].detection.on_close_window(&mut closed[..n]);
                for (group, mut rows) in closed.drain(..n).zip(rows) {
                    // The last row takes the group; the others (a join's) a copy of it.
                    let Some(last) = rows.pop() else { continue };
                    for row in rows {
                        self.finish(index, group.clone(), Some(row));
                    }
                    self.finish(index, group, Some(last));
                }
            }
        }
    }

    /// Turns a closed group (or, with `row`, an event that is a result of its own) into an alert.
    fn finish(&mut self, index: usize, group: ClosedGroup, row: Option<Map<String, Value>>) {
        let slot = &mut self.slots[index];
        let Some(row) = row.or_else(|| slot.detection.on_close(&group)) else { return };
        if suppressed(&slot.suppress, &row) {
            self.counters.suppressed += 1;
            return;
        }
        let alert = Alert::new(slot.detection.metadata(), &slot.blocks, &group, &row);
        let text = match self.config.alert_format {
            AlertFormat::Splunk => serde_json::value::to_raw_value(&alert),
            format => serde_json::to_value(&alert).and_then(|risk_event| serde_json::value::to_raw_value(&format.write(risk_event))),
        };
        self.counters.alerts += 1;
        match text {
            Ok(alert) => self.queue(alert),
            Err(_) => self.counters.alerts_dropped += 1,
        }
    }

    /// Queues an alert for the host; past either cap the oldest waiting ones are dropped and
    /// counted (the newest is always kept).
    fn queue(&mut self, alert: Box<RawValue>) {
        let limits = self.config.limits;
        self.pending_bytes += alert.get().len();
        self.pending.push_back(alert);
        while self.pending.len() > 1 && (self.pending.len() > limits.max_pending_alerts || self.pending_bytes > limits.max_pending_bytes) {
            if let Some(oldest) = self.pending.pop_front() {
                self.pending_bytes -= oldest.get().len();
                self.counters.alerts_dropped += 1;
            }
        }
    }

    /// Closes windows by the host's wall clock when traffic has stopped: every window that would
    /// have closed had an event stamped `now` arrived.
    pub fn flush(&mut self, now: i64) {
        if self.watermark.is_none_or(|mark| mark < now) {
            self.watermark = Some(now);
        }
        self.close_windows();
    }

    /// Closes every open window (end of a replay).
    pub fn finish_all(&mut self) {
        self.close_before(|_| i64::MAX);
    }

    /// Takes up to `max` waiting alerts, oldest first.
    pub fn take_alerts(&mut self, max: usize) -> Vec<Box<RawValue>> {
        let n = max.min(self.pending.len());
        let taken: Vec<Box<RawValue>> = self.pending.drain(..n).collect();
        self.pending_bytes -= taken.iter().map(|a| a.get().len()).sum::<usize>();
        taken
    }

    pub fn pending_alerts(&self) -> usize {
        self.pending.len()
    }

    /// Puts the engine where a journaled record found it (see `journal.rs`): `records` records
    /// counted before it, and its watermark.
    pub(crate) fn replay_position(&mut self, records: u64, watermark: Option<i64>) {
        self.counters.records = records;
        self.watermark = watermark;
    }

    /// Loads a model document; it names the detection it is for by `detection` (id or key).
    pub fn load_model(&mut self, model: &[u8]) -> Result<(), String> {
        let result = serde_json::from_slice::<Value>(model)
            .map_err(|e| format!("model is not valid JSON: {e}"))
            .and_then(|value| {
                let target = value.get("detection").and_then(Value::as_str).unwrap_or_default().to_string();
                let slot = self
                    .slots
                    .iter_mut()
                    .find(|s| s.key == target || s.detection.metadata().id == target)
                    .ok_or_else(|| format!("model names detection `{target}`, which is not enabled here"))?;
                slot.detection.load_model(&value)
            });
        if result.is_err() {
            self.counters.model_errors += 1;
        }
        result
    }

    /// Counters, per-detection state sizes and any configuration error, as one JSON object.
    pub fn stats(&self) -> Value {
        let mut detections = Map::new();
        for slot in &self.slots {
            let mut d = Map::new();
            d.insert("open_groups".into(), json!(slot.windows.group_count()));
            for (name, value) in slot.detection.counters() {
                d.insert(name.into(), json!(value));
            }
            detections.insert(slot.key.clone(), Value::Object(d));
        }
        json!({
            "counters": self.counters,
            "watermark": self.watermark.map(crate::time::format_rfc3339),
            "pending_alerts": self.pending.len(),
            "detections": detections,
            "config_error": self.config_error.as_ref().map(|e| e.to_string()),
            "rule_errors": self.rule_errors,
            "state_refused": self.state_refused,
        })
    }

    /// The whole mutable state, borrowed, for snapshots: saving copies no window or alert. With
    /// `changes`, learned state is given as its changes where the detection can tell them.
    fn state(&mut self, changes: bool) -> EngineState<'_> {
        EngineState {
            watermark: self.watermark,
            counters: Cow::Borrowed(&self.counters),
            pending: Cow::Borrowed(self.pending.make_contiguous()),
            detections: self
                .slots
                .iter()
                .map(|s| {
                    let learned_changes = if changes { s.detection.state_changes() } else { None };
                    SlotState {
                        key: Cow::Borrowed(&s.key),
                        length: Some(s.length),
                        windows: Cow::Borrowed(&s.windows),
                        learned: if learned_changes.is_some() { Value::Null } else { s.detection.save_state() },
                        learned_changes,
                    }
                })
                .collect(),
        }
    }

    /// The whole state as a snapshot (see `snapshot.rs`). Counted in `snapshot_saves` before
    /// encoding, so the snapshot includes its own save; `snapshot_failures` if it cannot encode.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        self.save(snapshot::encode, false)
    }

    /// What changed since the last snapshot or section of changes (or restore), as a section
    /// to append to the saved state (see `snapshot.rs`): a save whose size follows what changed,
    /// not the size of the learned state. The host must have stored every save since the
    /// restore; after one it could not store, it saves a whole [`Engine::snapshot`] instead.
    pub fn snapshot_changes(&mut self) -> Result<Vec<u8>, String> {
        self.save(snapshot::encode_changes, true)
    }

    fn save(&mut self, encode: fn(&EngineState) -> Result<Vec<u8>, String>, changes: bool) -> Result<Vec<u8>, String> {
        self.counters.snapshot_saves += 1;
        let encoded = encode(&self.state(changes));
        match &encoded {
            Ok(_) => self.slots.iter_mut().for_each(|s| s.detection.state_saved()),
            Err(_) => self.count_snapshot_failure(),
        }
        encoded
    }

    /// Turns the last counted save into a failure (the host could not store the snapshot).
    pub fn count_snapshot_failure(&mut self) {
        self.counters.snapshot_saves = self.counters.snapshot_saves.saturating_sub(1);
        self.counters.snapshot_failures += 1;
    }

    /// Restores a snapshot. A snapshot that cannot be read changes nothing (a fresh start at
    /// first call) and is counted in `restore_failures`. A readable one is restored detection
    /// by detection: where a configuration or rule change since the save invalidates one
    /// detection's state (B's `user_field`, a window length, a rule's search), that state alone
    /// is left out, counted in `state_refused` and listed in [`Engine::state_refused`]; the
    /// other detections, the watermark and the waiting alerts are restored.
    ///
    /// Sections of changes after the snapshot are applied up to the first damaged one, which is
    /// counted in `restore_damaged`: what came before it is restored.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.restore_sections(bytes).map(|_| ())
    }

    /// [`Engine::restore`], telling a host that appends sections of changes what it read.
    pub fn restore_sections(&mut self, bytes: &[u8]) -> Result<Restored, String> {
        match snapshot::decode_sections(bytes) {
            Ok(decoded) => {
                self.set_state(decoded.state);
                self.counters.restores += 1;
                if decoded.damaged.is_some() {
                    self.counters.restore_damaged += 1;
                }
                Ok(Restored { base_bytes: decoded.base_bytes, damaged: decoded.damaged.map(|e| e.to_string()) })
            }
            Err(e) => {
                self.counters.restore_failures += 1;
                Err(e.to_string())
            }
        }
    }

    /// What the last restore left out, one line per detection.
    pub fn state_refused(&self) -> &[String] {
        &self.state_refused
    }

    /// One detection's learned model (for example a baseline), as a model document.
    pub fn model(&self, key: &str) -> Option<Value> {
        self.slots.iter().find(|s| s.key == key).map(|s| s.detection.save_state())
    }

    /// Replaces the mutable state with `state`. Detections absent from this configuration are
    /// ignored; detections absent from the state, or whose state is refused, keep what they have.
    fn set_state(&mut self, state: EngineState<'_>) {
        let mut refused = Vec::new();
        for saved in state.detections {
            let Some(slot) = self.slots.iter_mut().find(|s| s.key == saved.key) else { continue };
            if let Err(e) = slot.detection.restore_state(&saved.learned) {
                refused.push(format!("detection `{}`: saved state left out ({e}); its open windows and learned state start over", slot.key));
                continue;
            }
            // Its learned state is now what the saved state holds: changes count from here.
            slot.detection.state_saved();
            if saved.length.is_some_and(|length| length != slot.length) && saved.windows.group_count() > 0 {
                refused.push(format!(
                    "detection `{}`: saved windows left out (they are {} s long, the configuration says {} s)",
                    slot.key,
                    saved.length.unwrap_or_default(),
                    slot.length
                ));
            } else {
                slot.windows = saved.windows.into_owned();
            }
        }
        self.watermark = state.watermark;
        self.next_close = i64::MIN;
        let (config_errors, rule_errors) = (self.counters.config_errors, self.counters.rule_errors);
        self.counters = state.counters.into_owned();
        self.counters.config_errors = config_errors;
        self.counters.rule_errors = rule_errors;
        self.counters.state_refused += refused.len() as u64;
        self.state_refused = refused;
        self.pending = state.pending.into_owned().into();
        self.pending_bytes = self.pending.iter().map(|a| a.get().len()).sum();
    }
}

/// Cuts every text of a one-event result row to `max` bytes; how many were cut.
fn clip_row(row: &mut Map<String, Value>, max: usize) -> u64 {
    fn clip_value(value: &mut Value, max: usize) -> u64 {
        match value {
            Value::String(text) => u64::from(clip(text, max)),
            Value::Array(items) => items.iter_mut().map(|v| clip_value(v, max)).sum(),
            Value::Object(map) => map.values_mut().map(|v| clip_value(v, max)).sum(),
            _ => 0,
        }
    }
    row.values_mut().map(|v| clip_value(v, max)).sum()
}

/// The "group" of an event that is a result row of its own: its window is its instant.
fn event_group(time: i64) -> ClosedGroup {
    let stats = GroupStats { count: 1, first: time, last: time, values: Vec::new(), ..GroupStats::default() };
    ClosedGroup { window_start: time, window_end: time, key: Vec::new(), stats, partial: None }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timing {
    /// In the watermark's reach; whether it is late depends on each detection's window.
    Timed,
    Future,
    /// No readable `eventTime`: tagged per event, never aggregated.
    Untimed,
}
