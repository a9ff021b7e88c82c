//! Sigma's value tests over one CloudTrail record, as the Sigma specification defines them
//! (SigmaHQ/sigma-specification, `sigma-rules-specification.md` and `appendix_modifier.md`).
//!
//! Sigma rules name raw record fields, so a field here is a dotted JSON path read from the
//! record itself, never one of the Splunk add-on's derived fields (`errorCode` is the record's
//! own or absent). A path that meets an array reads every element, and a field that holds an
//! object or array stands for every scalar below it: a test holds when any of those values
//! passes. Values compare case-insensitively with `*` and `?` wildcards, except `re` (a
//! case-sensitive, unanchored regex) and `cased`. Reading allocates only for a field that holds
//! escapes, an object or an array.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::cloudtrail::{Event, FieldError};
use super::regex::Pattern;
use crate::json::{Kind, ScanError};

/// One Sigma test of a field's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SigmaTest {
    /// A wildcard pattern: `*` any run of characters, `?` exactly one, `\` takes the character
    /// after it literally. Case-insensitive unless `cased`. `""` matches only an empty value.
    Pattern {
        pattern: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cased: bool,
    },
    /// `re`: the regex matches somewhere in the value (flags as `(?i)` etc. in the pattern).
    Regex(SigmaRegex),
    /// `null`: the field is absent or JSON null (or an object or array without a scalar).
    Null,
    /// `fieldref`: the value relates to a value of another field, case-insensitively.
    Field { field: String, relation: Relation },
}

/// How a value relates to another field's value (`fieldref` with `startswith` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    Equals,
    StartsWith,
    EndsWith,
    Contains,
}

/// A regex, compiled when the rule is read: a bad pattern rejects the rule file.
#[derive(Debug, Clone)]
pub struct SigmaRegex(Pattern);

impl SigmaRegex {
    pub fn new(pattern: &str) -> Result<SigmaRegex, String> {
        Pattern::new(pattern).map(SigmaRegex)
    }
}

impl PartialEq for SigmaRegex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Serialize for SigmaRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for SigmaRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(d)?;
        SigmaRegex::new(&pattern).map_err(serde::de::Error::custom)
    }
}

/// Whether `test` holds for `field` of `event`.
pub fn test(event: &Event<'_>, field: &str, test: &SigmaTest) -> Result<bool, FieldError> {
    Ok(match test {
        SigmaTest::Null => any_value(event, field, &mut |_| true)?.is_none(),
        SigmaTest::Pattern { .. } | SigmaTest::Regex(_) => any_value(event, field, &mut |v| holds_for(test, v) == Some(true))?.unwrap_or(false),
        SigmaTest::Field { field: other, relation } => {
            let mut theirs = Vec::new();
            any_value(event, other, &mut |v| {
                theirs.push(v.to_lowercase());
                false
            })?;
            any_value(event, field, &mut |v| {
                let mine = v.to_lowercase();
                theirs.iter().any(|t| match relation {
                    Relation::Equals => mine == *t,
                    Relation::StartsWith => mine.starts_with(t.as_str()),
                    Relation::EndsWith => mine.ends_with(t.as_str()),
                    Relation::Contains => mine.contains(t.as_str()),
                })
            })?
            .unwrap_or(false)
        }
    })
}

/// Whether `test` holds for a field whose one value is `text`; `None` for a test that reads
/// another field.
pub fn holds_for(test: &SigmaTest, text: &str) -> Option<bool> {
    match test {
        SigmaTest::Pattern { pattern, cased } => Some(pattern_match(pattern, text, *cased)),
        SigmaTest::Regex(re) => Some(re.0.is_match(text)),
        SigmaTest::Null => Some(false),
        SigmaTest::Field { .. } => None,
    }
}

/// Calls `visit` with each value of `path` until it returns true, and says whether one did;
/// `None` when the field has no value at all.
pub fn any_value(event: &Event<'_>, path: &str, visit: &mut dyn FnMut(&str) -> bool) -> Result<Option<bool>, FieldError> {
    let record = &event.record;
    if let Some(value) = record.get_path(path)? {
        return match value.kind() {
            Kind::Null => Ok(None),
            Kind::Object | Kind::Array => Ok(visit_all(&leaves(&parse(value.bytes())?, ""), visit)),
            _ => Ok(record.text_of(value)?.map(|text| visit(&text))),
        };
    }
    // A path through an array (`a.list.b`): the longest prefix present decides.
    for (at, _) in path.rmatch_indices('.') {
        let Some(value) = record.get_path(&path[..at])? else { continue };
        if value.kind() != Kind::Array {
            return Ok(None);
        }
        return Ok(visit_all(&leaves(&parse(value.bytes())?, &path[at + 1..]), visit));
    }
    Ok(None)
}

fn parse(bytes: &[u8]) -> Result<Value, FieldError> {
    serde_json::from_slice(bytes).map_err(|_| FieldError::Scan(ScanError::Malformed))
}

fn visit_all(values: &[Cow<'_, str>], visit: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
    (!values.is_empty()).then(|| values.iter().any(|v| visit(v)))
}

/// The scalars at `path` below `value`: arrays are looked through at every step, and what the
/// path ends on gives every scalar below it. Null gives none.
fn leaves<'v>(value: &'v Value, path: &str) -> Vec<Cow<'v, str>> {
    let mut out = Vec::new();
    collect(value, path, &mut out);
    out
}

fn collect<'v>(value: &'v Value, path: &str, out: &mut Vec<Cow<'v, str>>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect(item, path, out)),
        Value::Object(members) if path.is_empty() => members.values().for_each(|v| collect(v, path, out)),
        Value::Object(members) => {
            let (key, rest) = path.split_once('.').unwrap_or((path, ""));
            if let Some(inner) = members.get(key) {
                collect(inner, rest, out);
            }
        }
        _ if !path.is_empty() => {}
        Value::Null => {}
        Value::String(s) => out.push(Cow::Borrowed(s)),
        other => out.push(Cow::Owned(other.to_string())),
    }
}

/// One element of a pattern.
#[derive(Clone, Copy)]
enum Token {
    Many,
    One,
    Char(char),
}

/// The token at byte `at` of `pattern` and where the next one starts.
fn token(pattern: &str, at: usize) -> Option<(Token, usize)> {
    let mut chars = pattern[at..].chars();
    let c = chars.next()?;
    Some(match c {
        '*' => (Token::Many, at + 1),
        '?' => (Token::One, at + 1),
        '\\' => match chars.next() {
            Some(escaped) => (Token::Char(escaped), at + 1 + escaped.len_utf8()),
            None => (Token::Char('\\'), at + 1),
        },
        c => (Token::Char(c), at + c.len_utf8()),
    })
}

fn same(a: char, b: char, cased: bool) -> bool {
    a == b || (!cased && (a.eq_ignore_ascii_case(&b) || (!a.is_ascii() && a.to_lowercase().eq(b.to_lowercase()))))
}

/// Sigma's wildcard match ([`SigmaTest::Pattern`]) over characters, with single-star
/// backtracking: linear in practice, never recursive, no allocation.
pub fn pattern_match(pattern: &str, text: &str, cased: bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // After the last `*`: where its pattern continues and the text it has taken up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        let c = text[ti..].chars().next().unwrap_or_default();
        match token(pattern, pi) {
            Some((Token::Many, next)) => {
                star = Some((next, ti));
                pi = next;
                continue;
            }
            Some((Token::One, next)) => {
                (pi, ti) = (next, ti + c.len_utf8());
                continue;
            }
            Some((Token::Char(p), next)) if same(p, c, cased) => {
                (pi, ti) = (next, ti + c.len_utf8());
                continue;
            }
            _ => {}
        }
        let Some((after_star, taken)) = star else { return false };
        let taken = taken + text[taken..].chars().next().map_or(1, char::len_utf8);
        star = Some((after_star, taken));
        (pi, ti) = (after_star, taken);
    }
    while let Some((Token::Many, next)) = token(pattern, pi) {
        pi = next;
    }
    pi == pattern.len()
}

/// A literal value as a pattern that matches exactly it: `*`, `?` and `\` escaped.
pub fn escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::eval::tests::with_event;

    fn pattern(p: &str) -> SigmaTest {
        SigmaTest::Pattern { pattern: p.into(), cased: false }
    }

    #[test]
    fn patterns_follow_the_specification() {
        assert!(pattern_match("prog?.exe", "PROGA.exe", false));
        assert!(!pattern_match("prog?.exe", "prog.exe", false));
        assert!(pattern_match("antivirus_V*.exe", "antivirus_V21.2.1.exe", false));
        assert!(pattern_match("*", "", false));
        assert!(pattern_match("", "", false) && !pattern_match("", "a", false));
        // The compiled form escapes every literal `*`, `?` and `\` (the compiler reads Sigma's
        // looser escaping): `\*` a star, `\\*` a backslash then any run.
        assert!(pattern_match(r"a\*b", "a*b", false) && !pattern_match(r"a\*b", "axb", false));
        assert!(pattern_match(r"a\\*", r"a\bc", false));
        assert!(pattern_match(r"C:\\Windows", r"c:\windows", false));
        assert!(pattern_match("ÄB?", "äbc", false));
        assert!(!pattern_match("Ab", "ab", true));
        assert!(pattern_match("*a*b", "xxaxxab", false));
        assert_eq!(escape(r"a*b?c\"), r"a\*b\?c\\");
        assert!(pattern_match(&format!("{}*", escape(r"x\")), r"x\yz", false));
    }

    #[test]
    fn fields_are_raw_paths_through_objects_and_arrays() {
        let json = r#"{"errorCode":null,"status":"","requestParameters":{"VersioningConfiguration":{"Status":"Suspended"},"containerDefinitions":[{"command":["sh","-c","curl $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]}],"n":7},"userIdentity":{"arn":"arn:aws:iam::1:user/Bob","userName":"bob"}}"#;
        with_event(json, |e| {
            let t = |field: &str, how: &SigmaTest| test(e, field, how).unwrap();
            assert!(t("errorCode", &SigmaTest::Null) && t("errorMessage", &SigmaTest::Null));
            assert!(!t("status", &SigmaTest::Null) && t("status", &pattern("")));
            assert!(t("requestParameters", &pattern("*suspended*")));
            assert!(t("requestParameters.n", &pattern("7")));
            assert!(t("requestParameters.containerDefinitions.command", &pattern("*$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI*")));
            assert!(!t("requestParameters.containerDefinitions.image", &pattern("*")));
            assert!(t("requestParameters.containerDefinitions.image", &SigmaTest::Null));
            let re = |p: &str| SigmaTest::Regex(SigmaRegex::new(p).unwrap());
            assert!(t("userIdentity.arn", &re(":user/B")) && !t("userIdentity.arn", &re(":user/b")));
            let field = |relation| SigmaTest::Field { field: "userIdentity.userName".into(), relation };
            assert!(t("userIdentity.arn", &field(Relation::EndsWith)) && !t("userIdentity.arn", &field(Relation::Equals)));
            assert!(!t("missing", &field(Relation::Contains)));
        });
    }
}
