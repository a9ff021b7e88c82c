//! Per-host suppression: what each seed's empty `..._filter` macro is for.
//!
//! A suppression is an object of `field: matcher` conditions that must all hold; an alert whose
//! row matches any suppression is dropped (and counted). Records are never touched. Values
//! compare case-insensitively, as Splunk's `search field=value` does; a multivalue field
//! matches when any of its values does.
//!
//! ```json
//! "suppress": [
//!   {"aws_account_id": {"one_of": ["111111111111", "222222222222"]}},
//!   {"src_ip": {"equals": "s3.amazonaws.com"}, "userAgent": {"glob": "*terraform*"}}
//! ]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::rule::value::pattern_match;

/// How one field is compared.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Matcher {
    Equals(String),
    OneOf(Vec<String>),
    /// `*` matches any run of characters, `?` any one character.
    Glob(String),
}

/// All conditions must hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Suppression(pub BTreeMap<String, Matcher>);

impl Matcher {
    fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Equals(v) => v.to_lowercase() == text.to_lowercase(),
            Matcher::OneOf(vs) => vs.iter().any(|v| v.to_lowercase() == text.to_lowercase()),
            Matcher::Glob(pattern) => glob(&pattern.to_lowercase(), &text.to_lowercase()),
        }
    }
}

impl Suppression {
    pub fn matches(&self, row: &Map<String, Value>) -> bool {
        self.0.iter().all(|(field, matcher)| match row.get(field) {
            Some(Value::Array(items)) => items.iter().any(|v| scalar_text(v).is_some_and(|t| matcher.matches(&t))),
            Some(v) => scalar_text(v).is_some_and(|t| matcher.matches(&t)),
            None => false,
        })
    }
}

/// True when any suppression matches `row`.
pub fn suppressed(suppressions: &[Suppression], row: &Map<String, Value>) -> bool {
    suppressions.iter().any(|s| s.matches(row))
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `*` any run, `?` one character, case-sensitive.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    pattern_match(&p, &t, '*', Some('?'), |a, b| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn suppressions(v: Value) -> Vec<Suppression> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn conditions_and_within_or_across() {
        let s = suppressions(json!([
            {"src_ip": {"equals": "S3.amazonaws.com"}, "userAgent": {"glob": "*terraform*"}},
            {"aws_account_id": {"one_of": ["111", "222"]}}
        ]));
        let row = |ip: &str, ua: &str, acct: &str| {
            json!({"src_ip": ip, "userAgent": ua, "aws_account_id": acct}).as_object().unwrap().clone()
        };
        assert!(suppressed(&s, &row("s3.amazonaws.com", "Terraform/1.5", "999")));
        assert!(!suppressed(&s, &row("s3.amazonaws.com", "aws-cli", "999")));
        assert!(suppressed(&s, &row("1.2.3.4", "aws-cli", "222")));
        let mv = json!({"command": ["CreateSecurityGroup", "DeleteSecurityGroup"]}).as_object().unwrap().clone();
        assert!(suppressed(&suppressions(json!([{"command": {"equals": "deletesecuritygroup"}}])), &mv));
    }

    #[test]
    fn glob_handles_stars_and_marks() {
        assert!(glob("a*b?d", "axxxbcd"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acd"));
        assert!(glob("*.amazonaws.com", "s3.amazonaws.com"));
    }

    #[test]
    fn unknown_matcher_is_an_error() {
        let e = serde_json::from_value::<Vec<Suppression>>(json!([{"x": {"regex": "a"}}])).unwrap_err();
        assert!(e.to_string().contains("unknown variant `regex`"));
    }
}
