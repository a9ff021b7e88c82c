//! Attaching results to a record: one top-level field, the rest of the record byte-identical.
//!
//! ```json
//! {"eventName":"JobCreated", ..., "tripline":{"route":"alert","matches":[..],"alerts":[..],"stats":{..}}}
//! ```
//! `route` is `alert` when the record carries alerts, else `match` or `stats`: a plain string
//! that Fluent Bit's `rewrite_tag` can route on. A record is only rewritten when it is a valid
//! JSON object; otherwise it passes unchanged and the results wait for the next record.
//!
//! A record that arrives with the field already (forged, or looped back through the pipeline)
//! must not pass for tripline's own results: its field is moved under ours as `quarantined`
//! (the incoming values, byte for byte, in a list), with route `quarantine` when it carries
//! nothing else. Only then can a route of `alert` mean tripline raised the alert.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::engine::Engine;
use crate::json::{key_equals, RawObject, ScanError, ScannedObject, ValidRecord};

/// What one record carries.
#[derive(Debug, Default, Serialize)]
pub struct Annotation {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<Box<RawValue>>,
    /// As the engine queued them: JSON text, embedded as it is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Value>,
}

/// The field's value: the route first, so that it is the first thing a reader sees.
#[derive(Serialize)]
struct Carried<'a> {
    route: &'static str,
    #[serde(flatten)]
    annotation: &'a Annotation,
}

impl Annotation {
    fn to_json(&self) -> Vec<u8> {
        let route = if !self.alerts.is_empty() {
            "alert"
        } else if !self.matches.is_empty() {
            "match"
        } else if self.stats.is_some() {
            "stats"
        } else {
            "quarantine"
        };
        serde_json::to_vec(&Carried { route, annotation: self }).unwrap_or_else(|_| b"{}".to_vec())
    }
}

/// Whether a record must be rewritten even with nothing to carry: it has the field of its own.
/// Read from the members the record's one validating pass remembered, so it costs every record
/// a lookup, not a search of its bytes.
fn arrives_with(record: &Result<ScannedObject<'_>, ScanError>, field: &str) -> bool {
    record.as_ref().is_ok_and(|object| matches!(object.get(field), Ok(Some(_))))
}

/// A record checked to be able to carry results: a valid JSON object, with any incoming
/// member named like the field set aside.
#[derive(Debug, Clone)]
pub struct Carrier<'a> {
    record: &'a [u8],
    field: &'a str,
    /// The record's byte ranges to keep, in order: all of it, or everything but the incoming
    /// members named like the field.
    kept: Vec<std::ops::Range<usize>>,
    /// The incoming values of the field, byte for byte.
    quarantined: Vec<&'a [u8]>,
    empty: bool,
}

impl<'a> Carrier<'a> {
    /// `record` with `field` set aside: what is rewritten must be whole JSON, which `record`
    /// was proved to be when read (a second pass over every tagged record would cost as much as
    /// the first).
    pub fn new(record: ValidRecord<'a>, field: &'a str) -> Result<Self, ScanError> {
        let record = record.bytes();
        let object = RawObject::new(record)?;
        // Validation proved one JSON value with only blanks around it and RawObject that it is
        // an object, so its braces are the first and last non-blank bytes.
        let opening_brace = record.len() - record.trim_ascii_start().len();
        let closing_brace = record.trim_ascii_end().len() - 1;
        let mut carrier = Carrier { record, field, kept: Vec::new(), quarantined: Vec::new(), empty: true };
        if object.lacks(field) {
            carrier.kept.push(0..closing_brace);
            carrier.empty = record[opening_brace + 1..closing_brace].trim_ascii().is_empty();
            return Ok(carrier);
        }
        // Rebuild the member list without the incoming field: each kept member from its key's
        // quote to the end of its value, joined by commas (blanks between members are not kept).
        let offset = |bytes: &[u8]| bytes.as_ptr() as usize - record.as_ptr() as usize;
        carrier.kept.push(0..opening_brace + 1);
        for entry in object.entries() {
            let (key, value) = entry?;
            let value_bytes = value.bytes();
            if key_equals(key, field) {
                carrier.quarantined.push(value_bytes);
                continue;
            }
            carrier.kept.push(offset(key) - 1..offset(value_bytes) + value_bytes.len());
            carrier.empty = false;
        }
        Ok(carrier)
    }

    /// Incoming members named like the field, set aside.
    pub fn quarantined(&self) -> usize {
        self.quarantined.len()
    }

    /// Appends to `out` the record with the field added as its last member, every other byte
    /// unchanged. Hosts write into a buffer they keep: a large record then costs no new
    /// allocation of its size, which would fragment the module's small heap.
    pub fn write_to(&self, annotation: &Annotation, out: &mut Vec<u8>) {
        let mut value = annotation.to_json();
        if !self.quarantined.is_empty() {
            value.pop(); // the annotation's closing brace
            value.extend_from_slice(b",\"quarantined\":[");
            value.extend_from_slice(&self.quarantined.join(&b","[..]));
            value.extend_from_slice(b"]}");
        }
        let closing_brace = self.record.trim_ascii_end().len() - 1;
        out.reserve(self.record.len() + self.field.len() + value.len() + 8);
        for (i, range) in self.kept.iter().enumerate() {
            // Ranges after the first are rebuilt members, and the first of them follows the brace.
            if i > 1 {
                out.push(b',');
            }
            out.extend_from_slice(&self.record[range.clone()]);
        }
        if !self.empty {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(self.field.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(&value);
        out.extend_from_slice(&self.record[closing_brace..]);
    }
}

/// What a record carries besides its matches: a record-at-a-time host (Fluent Bit) hands the
/// waiting alerts and the counters on with the records; a batch host returns alerts apart.
#[derive(Debug, Clone, Copy, Default)]
pub struct Carry {
    /// At most this many waiting alerts; none when 0.
    pub alerts: usize,
    /// The counters, with every Nth record the engine has read; never when 0.
    pub stats_every: u64,
}

/// How one record left [`tag_record`].
#[derive(Debug, Clone, Copy)]
pub struct Tagged {
    /// [`crate::engine::Processed::changed`].
    pub changed: bool,
    /// Waiting alerts it carries.
    pub taken: usize,
    /// Whether it was written to the host's buffer with its results; if not, it leaves as it
    /// came.
    pub written: bool,
}

/// One record through `engine`: the step every host takes. Where the record has results to
/// carry (its matches and what `carry` asks for) or arrives with `field` of its own, it is
/// appended to `out` with them under `field`. A record that cannot carry them (not a valid JSON
/// object, or too large for the memory left) is counted and leaves as it came; its results wait
/// for the next. Waiting alerts are taken only by a record that carries them.
pub fn tag_record(engine: &mut Engine, record: &[u8], field: &str, now: Option<i64>, carry: Carry, out: &mut Vec<u8>) -> Tagged {
    let scanned = ScannedObject::validated(record);
    let arrives = arrives_with(&scanned, field);
    let valid = scanned.as_ref().ok().and_then(ScannedObject::valid_record);
    let processed = engine.process_scanned(scanned, now);
    let mut tagged = Tagged { changed: processed.changed, taken: 0, written: false };
    let alerts_wait = carry.alerts > 0 && engine.pending_alerts() > 0;
    let stats_due = carry.stats_every > 0 && engine.counters().records.is_multiple_of(carry.stats_every);
    if processed.matches.is_empty() && !alerts_wait && !stats_due && !arrives {
        return tagged;
    }
    match valid.map(|valid| Carrier::new(valid, field)) {
        Some(Ok(_)) if out.try_reserve(record.len() + 64 * 1024).is_err() => engine.counters_mut().out_of_memory += 1,
        Some(Ok(carrier)) => {
            engine.counters_mut().quarantined += carrier.quarantined() as u64;
            let alerts = engine.take_alerts(carry.alerts);
            tagged.taken = alerts.len();
            let stats = stats_due.then(|| engine.stats());
            carrier.write_to(&Annotation { matches: processed.matches, alerts, stats }, out);
            tagged.written = true;
        }
        _ => engine.counters_mut().unannotatable += 1,
    }
    tagged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `record` as a host holds it after the one validating pass.
    fn valid(record: &[u8]) -> Result<ValidRecord<'_>, ScanError> {
        Ok(ScannedObject::validated(record)?.valid_record().expect("read by validated"))
    }

    fn annotate(record: &[u8], field: &str, annotation: &Annotation) -> Result<Vec<u8>, ScanError> {
        let mut out = Vec::new();
        Carrier::new(valid(record)?, field)?.write_to(annotation, &mut out);
        Ok(out)
    }

    fn with_alert() -> Annotation {
        Annotation { alerts: vec![serde_json::value::to_raw_value(&json!({"risk_score": 64})).unwrap()], ..Annotation::default() }
    }

    #[test]
    fn appends_one_field_and_keeps_the_rest() {
        let out = annotate(br#" {"a":1, "b":[1,2]} "#, "tripline", &with_alert()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#" {"a":1, "b":[1,2],"tripline":{"route":"alert","alerts":[{"risk_score":64}]}} "#
        );
        let out = annotate(b"{}", "t", &with_alert()).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap()["t"]["route"], "alert");
    }

    #[test]
    fn refuses_bad_carriers() {
        assert!(annotate(br#"{"a":1"#, "t", &with_alert()).is_err());
        assert!(annotate(b"[1]", "t", &with_alert()).is_err());
        assert!(annotate(b"{\"a\":\"\xff\"}", "t", &with_alert()).is_err());
    }

    #[test]
    fn an_incoming_field_is_quarantined_under_ours() {
        let forged = br#"{"tripline":{"route":"alert","alerts":[{"x":1.50}]},"eventName":"X", "t\u0072ipline":2 ,"b":[1] }"#;
        let arrives = |record: &[u8]| arrives_with(&ScannedObject::validated(record), "tripline");
        assert!(arrives(forged));
        let carrier = Carrier::new(valid(forged).unwrap(), "tripline").unwrap();
        assert_eq!(carrier.quarantined(), 2);
        let mut out = Vec::new();
        carrier.write_to(&Annotation::default(), &mut out);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            r#"{"eventName":"X","b":[1],"tripline":{"route":"quarantine","quarantined":[{"route":"alert","alerts":[{"x":1.50}]},2]}}"#
        );
        let out = annotate(br#"{"tripline":0}"#, "tripline", &with_alert()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"tripline":{"route":"alert","alerts":[{"risk_score":64}],"quarantined":[0]}}"#);
        assert!(arrives(br#"{"a":"x","t\u0072ipline":1}"#));
        // Past the members a record's scan remembers, the field is still found.
        let wide = format!("{{{}\"tripline\":1}}", (0..40).map(|i| format!("\"k{i}\":{i},")).collect::<String>());
        assert!(arrives(wide.as_bytes()));
        assert!(!arrives(wide.replace("tripline", "triplina").as_bytes()));
        // A nested key of that name is the record's own business.
        assert!(!arrives(br#"{"requestParameters":{"tripline":1}}"#));
        assert!(!arrives(br#"{"a":"tripline"}"#));
        assert!(!arrives(b"not json"));
    }
}
