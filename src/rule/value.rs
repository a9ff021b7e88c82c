//! A Splunk field value inside a rule's pipeline, and the two ways Splunk compares values.
//!
//! Fields are text that reads as a number where it can (`"5" > "10"` is false in `where`);
//! `Bool` exists only as the result of a condition, as in eval.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;
use smallvec::{smallvec, SmallVec};

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    /// A multivalue field; never empty (an empty one is `Null`).
    Multi(Vec<String>),
}

impl Val {
    pub fn multi(mut values: Vec<String>) -> Val {
        match values.len() {
            0 => Val::Null,
            1 => Val::Str(values.pop().unwrap_or_default()),
            _ => Val::Multi(values),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// Each value as text: none for null, one for a single value, all of a multivalue.
    pub fn texts(&self) -> Vec<String> {
        match self {
            Val::Null => Vec::new(),
            Val::Multi(items) => items.clone(),
            single => vec![single.text().unwrap_or_default()],
        }
    }

    /// [`Val::texts`], taking the value; a single one is kept in place of a list.
    pub fn into_texts(self) -> SmallVec<[String; 1]> {
        match self {
            Val::Null => SmallVec::new(),
            Val::Multi(items) => SmallVec::from_vec(items),
            Val::Str(s) => smallvec![s],
            single => smallvec![single.text().unwrap_or_default()],
        }
    }

    /// A single value as text (a multivalue's values joined by newlines, as Splunk prints them).
    pub fn text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
            Val::Num(n) => Some(format_number(*n)),
            Val::Str(s) => Some(s.clone()),
            Val::Multi(items) => Some(items.join("\n")),
        }
    }

    /// The value as a number, where it reads as one.
    pub fn number(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => parse_number(s),
            _ => None,
        }
    }

    /// Eval's truth: a condition's result; anything else (null included) is false.
    pub fn truthy(&self) -> bool {
        matches!(self, Val::Bool(true))
    }

    pub fn into_json(self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(b),
            Val::Num(n) => number_json(n),
            Val::Str(s) => Value::String(s),
            Val::Multi(items) => Value::Array(items.into_iter().map(Value::String).collect()),
        }
    }
}

/// Splunk's reading of text as a number: decimal, optionally signed, surrounding blanks allowed.
pub fn parse_number(text: &str) -> Option<f64> {
    // Most texts a rule compares are names, and one that starts with a letter is no number
    // (`inf` and `NaN` are not Splunk's): answered before trimming decodes its ends.
    if text.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let t = text.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'-' || b == b'+') {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Integers print without a fraction, as Splunk prints them.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn number_json(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// One value of a field as a comparison sees it: a number stays a number, the rest is text (a
/// multivalue field gives one item per value). Borrowed: comparing never copies a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item<'v> {
    Num(f64),
    Text(&'v str),
}

impl<'v> Item<'v> {
    fn number(self) -> Option<f64> {
        match self {
            Item::Num(n) => Some(n),
            Item::Text(t) => parse_number(t),
        }
    }

    pub(super) fn text(self) -> Cow<'v, str> {
        match self {
            Item::Num(n) => Cow::Owned(format_number(n)),
            Item::Text(t) => Cow::Borrowed(t),
        }
    }
}

impl Val {
    /// Each value as an [`Item`]: none for null.
    pub fn items(&self) -> impl Iterator<Item = Item<'_>> + Clone {
        let (one, many): (Option<Item<'_>>, &[String]) = match self {
            Val::Null => (None, &[]),
            Val::Bool(b) => (Some(Item::Text(if *b { "true" } else { "false" })), &[]),
            Val::Num(n) => (Some(Item::Num(*n)), &[]),
            Val::Str(s) => (Some(Item::Text(s)), &[]),
            Val::Multi(items) => (None, items),
        };
        one.into_iter().chain(many.iter().map(|s| Item::Text(s)))
    }
}

/// Eval's ordering of two single values: numeric when both read as numbers, else by text.
pub fn compare(left: Item<'_>, right: Item<'_>) -> Option<Ordering> {
    match (left, right) {
        (Item::Text(a), Item::Text(b)) => compare_text(a, b),
        _ => match (left.number(), right.number()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => Some(left.text().cmp(&right.text())),
        },
    }
}

/// [`compare`] for two texts, without allocating.
pub fn compare_text(left: &str, right: &str) -> Option<Ordering> {
    match parse_number(left).and_then(|a| Some((a, parse_number(right)?))) {
        Some((a, b)) => a.partial_cmp(&b),
        None => Some(left.cmp(right)),
    }
}

/// The `search` command's value test: case-insensitive, `*` matching any run of characters.
/// Bytes suffice: the only wildcard is ASCII and it never stands for part of a character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    pattern_match(pattern.as_bytes(), text.as_bytes(), b'*', None, |p, t| p.eq_ignore_ascii_case(&t))
}

/// Wildcard matching with single-star backtracking: linear in practice, never recursive.
/// `many` matches any run, `one` (if any) exactly one item, `same` compares the rest.
pub fn pattern_match<T: Copy + PartialEq>(pattern: &[T], text: &[T], many: T, one: Option<T>, same: impl Fn(T, T) -> bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        if pi < pattern.len() && pattern[pi] == many {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < pattern.len() && (Some(pattern[pi]) == one || same(pattern[pi], text[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[pi..].iter().all(|&c| c == many)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_fold_ascii_case() {
        assert!(wildcard_match("JobCreated", "jobcreated"));
        assert!(wildcard_match("aws-cli*", "AWS-CLI/2.0 Python"));
        assert!(wildcard_match("*AllUsers", "uri=http://acs.amazonaws.com/groups/global/AllUsers"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXbYbc"));
        assert!(!wildcard_match("a*b", "ac"));
        assert!(!wildcard_match("abc", "abcd"));
    }

    #[test]
    fn numbers_compare_as_numbers_and_text_as_text() {
        assert_eq!(compare(Item::Text("5"), Item::Text("10")), Some(Ordering::Less));
        assert_eq!(compare(Item::Text("b"), Item::Text("a")), Some(Ordering::Greater));
        assert_eq!(compare(Item::Num(10.0), Item::Text("9")), Some(Ordering::Greater));
        // A number against text that is no number: the number's text, as Splunk prints it.
        assert_eq!(compare(Item::Num(3.0), Item::Text("3a")), Some(Ordering::Less));
        assert_eq!(compare(Item::Num(f64::NAN), Item::Num(1.0)), None);
        assert_eq!(Val::Null.items().count(), 0);
        let multi = Val::Multi(vec!["a".into(), "7".into()]);
        assert_eq!(multi.items().collect::<Vec<_>>(), [Item::Text("a"), Item::Text("7")]);
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(parse_number(" 12 "), Some(12.0));
        assert_eq!(parse_number("12a"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("e5"), None);
        assert_eq!(parse_number("-1e3"), Some(-1000.0));
        assert_eq!(parse_number(".5"), Some(0.5));
        // A number on either side alone compares as text.
        assert_eq!(compare_text("10", "9x"), Some(Ordering::Less));
        assert_eq!(compare_text("9x", "10"), Some(Ordering::Greater));
    }
}
