//! Attaching results to a record: one top-level field, the rest of the record byte-identical.
//!
//! ```json
//! {"eventName":"JobCreated", ..., "tripline":{"route":"alert","matches":[..],"alerts":[..],"stats":{..}}}
//! ```
//! `route` is `alert` when the record carries alerts, else `match` or `stats`: a plain string
//! that Fluent Bit's `rewrite_tag` can route on. A record is only rewritten when it is a valid
//! JSON object that does not already have the field; otherwise it passes unchanged and the
//! results wait for the next record.

use serde_json::{Map, Value};

use crate::json::{validate, RawObject, ScanError};

/// What one record carries.
#[derive(Debug, Default)]
pub struct Annotation {
    pub matches: Vec<Value>,
    pub alerts: Vec<Value>,
    pub stats: Option<Value>,
}

impl Annotation {
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty() && self.alerts.is_empty() && self.stats.is_none()
    }

    fn to_value(&self) -> Value {
        let route = if !self.alerts.is_empty() {
            "alert"
        } else if !self.matches.is_empty() {
            "match"
        } else {
            "stats"
        };
        let mut m = Map::new();
        m.insert("route".into(), Value::String(route.into()));
        if !self.matches.is_empty() {
            m.insert("matches".into(), Value::Array(self.matches.clone()));
        }
        if !self.alerts.is_empty() {
            m.insert("alerts".into(), Value::Array(self.alerts.clone()));
        }
        if let Some(stats) = &self.stats {
            m.insert("stats".into(), stats.clone());
        }
        Value::Object(m)
    }
}

/// Why a record cannot carry results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierError {
    Invalid(ScanError),
    FieldExists,
}

/// A record checked to be able to carry results: a valid JSON object without the field.
#[derive(Debug, Clone, Copy)]
pub struct Carrier<'a> {
    record: &'a [u8],
    field: &'a str,
    closing_brace: usize,
    empty: bool,
}

impl<'a> Carrier<'a> {
    /// Checks `record` in full (the only full validation tripline does, and only for records
    /// that have something to carry).
    pub fn new(record: &'a [u8], field: &'a str) -> Result<Self, CarrierError> {
        // serde skips ignored strings without checking their UTF-8, so check it here.
        std::str::from_utf8(record).map_err(|_| CarrierError::Invalid(ScanError::Malformed))?;
        validate(record).map_err(CarrierError::Invalid)?;
        let object = RawObject::new(record).map_err(CarrierError::Invalid)?;
        if object.get(field).map_err(CarrierError::Invalid)?.is_some() {
            return Err(CarrierError::FieldExists);
        }
        // `validate` proved one JSON value with only blanks around it and RawObject that it is
        // an object, so its braces are the first and last non-blank bytes: no second scan.
        let opening_brace = record.len() - record.trim_ascii_start().len();
        let closing_brace = record.trim_ascii_end().len() - 1;
        let empty = record[opening_brace + 1..closing_brace].trim_ascii().is_empty();
        Ok(Carrier { record, field, closing_brace, empty })
    }

    /// The record with the field added as its last member; every other byte unchanged.
    pub fn attach(&self, annotation: &Annotation) -> Vec<u8> {
        let value = serde_json::to_vec(&annotation.to_value()).unwrap_or_else(|_| b"{}".to_vec());
        let mut out = Vec::with_capacity(self.record.len() + self.field.len() + value.len() + 8);
        out.extend_from_slice(&self.record[..self.closing_brace]);
        if !self.empty {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(self.field.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(&value);
        out.extend_from_slice(&self.record[self.closing_brace..]);
        out
    }
}

/// `record` with `field` added, or why it cannot carry it.
pub fn annotate(record: &[u8], field: &str, annotation: &Annotation) -> Result<Vec<u8>, CarrierError> {
    Ok(Carrier::new(record, field)?.attach(annotation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_alert() -> Annotation {
        Annotation { alerts: vec![json!({"risk_score": 64})], ..Annotation::default() }
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
        assert_eq!(annotate(br#"{"tripline":1}"#, "tripline", &with_alert()), Err(CarrierError::FieldExists));
        assert!(matches!(annotate(br#"{"a":1"#, "t", &with_alert()), Err(CarrierError::Invalid(_))));
        assert!(matches!(annotate(b"[1]", "t", &with_alert()), Err(CarrierError::Invalid(_))));
        assert!(matches!(annotate(b"{\"a\":\"\xff\"}", "t", &with_alert()), Err(CarrierError::Invalid(_))));
    }
}
