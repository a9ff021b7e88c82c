//! Runs a rule's conditions, expressions and steps over one row.
//!
//! A row is what Splunk's pipeline passes from command to command. Before `stats` it is the
//! event itself plus what the steps set: fields are read from the raw record only when a step
//! asks, so a rule that rejects a record early reads little of it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use smallvec::{smallvec, SmallVec};

use super::value::{compare, compare_text, parse_number, pattern_match, wildcard_match, Item, Val};
use super::regex::Pattern;
use super::{AggFunc, Aggregation, Assign, BinaryOp, CompareOp, Cond, Expr, Func, Step};
use crate::cloudtrail::{collect_values, Event, FieldError, Texts, UserSource};
use crate::time::format_ctime_with;

/// The regexes a rule uses: the literal ones compiled when the rule loads, and those a
/// `match()` computes per event, compiled at first use into a bounded cache.
#[derive(Debug, Default)]
pub struct Regexes {
    literal: HashMap<String, Pattern>,
    computed: RefCell<HashMap<String, Option<Pattern>>>,
}

/// Patterns computed per event are data: at most this many are kept compiled, and a longer one
/// than [`COMPUTED_PATTERN_BYTES`] matches nothing (a regex of attacker-chosen size is work
/// of attacker-chosen size).
const COMPUTED_PATTERNS: usize = 256;
const COMPUTED_PATTERN_BYTES: usize = 1024;

impl Regexes {
    /// Compiles a literal pattern of the rule.
    pub fn add(&mut self, pattern: &str) -> Result<(), String> {
        let re = Pattern::new(pattern)?;
        self.literal.insert(pattern.to_string(), re);
        Ok(())
    }

    /// Runs `f` with the compiled `pattern`, or returns `None` when it does not compile.
    fn with<T>(&self, pattern: &str, f: impl FnOnce(&Pattern) -> T) -> Option<T> {
        if let Some(re) = self.literal.get(pattern) {
            return Some(f(re));
        }
        if pattern.len() > COMPUTED_PATTERN_BYTES {
            return None;
        }
        let mut cache = self.computed.borrow_mut();
        if !cache.contains_key(pattern) {
            if cache.len() >= COMPUTED_PATTERNS {
                cache.clear();
            }
            cache.insert(pattern.to_string(), Pattern::new(pattern).ok());
        }
        cache.get(pattern).and_then(Option::as_ref).map(f)
    }
}

/// How a host reads a rule's fields and times (`detections.<key>.user_field` and
/// `utc_offset_minutes`): which raw field is the add-on 5.x's `user`, and the time zone of the
/// Splunk user the search runs as, which `strftime`, `convert ctime` and `relative_time`'s
/// snapping use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Locale {
    pub user: UserSource,
    pub utc_offset_minutes: i32,
}

/// One row of the pipeline: the event it came from (if any) under the fields steps have set.
pub struct Row<'e, 'a> {
    event: Option<&'e Event<'a>>,
    locale: Locale,
    /// Fields set by steps, in the order they appeared; `None` hides the event's field (rename).
    /// A name is borrowed from the rule where the rule spells it: setting a field copies none.
    fields: Vec<(Cow<'e, str>, Option<Val>)>,
    /// What `now()` gives: after `stats`, the end of the window being closed.
    now: Option<i64>,
}

impl<'e, 'a> Row<'e, 'a> {
    pub fn of_event(event: &'e Event<'a>, locale: Locale) -> Self {
        Row { event: Some(event), locale, fields: Vec::new(), now: None }
    }

    pub fn of_fields(fields: Vec<(Cow<'e, str>, Val)>, locale: Locale) -> Self {
        Row { event: None, locale, fields: fields.into_iter().map(|(k, v)| (k, Some(v))).collect(), now: None }
    }

    /// The row with room for `fields` more fields set by steps.
    pub fn with_room(mut self, fields: usize) -> Self {
        self.fields.reserve(fields);
        self
    }

    /// The row with `now()` at `now`.
    pub fn at(self, now: i64) -> Self {
        Row { now: Some(now), ..self }
    }

    pub fn get(&self, name: &str) -> Result<Val, FieldError> {
        if let Some(value) = self.set_field(name) {
            return Ok(value.clone().unwrap_or(Val::Null));
        }
        if let Some(field) = self.event_scalar(name) {
            return Ok(field?.map_or(Val::Null, |text| Val::Str(text.into_owned())));
        }
        let Some(event) = self.event else { return Ok(Val::Null) };
        if name == "_raw" {
            return Ok(Val::Str(String::from_utf8_lossy(event.record.raw()).into_owned()));
        }
        let values = event.values(name, self.locale.user)?;
        Ok(Val::multi(values.into_iter().map(|v| v.into_owned()).collect()))
    }

    /// Each value of `name` as text ([`Val::texts`]), borrowed from the record where it stands
    /// there: what `stats` groups and collects by.
    pub fn texts(&self, name: &str) -> Result<Texts<'a>, FieldError> {
        match (self.set_field(name), self.event) {
            // Copied once, straight from the row.
            (Some(value), _) => Ok(value.iter().flat_map(Val::items).map(|item| Cow::Owned(item.text().into_owned())).collect()),
            (None, Some(event)) if name != "_raw" => event.values(name, self.locale.user),
            (None, _) => Ok(self.get(name)?.into_texts().into_iter().map(Cow::Owned).collect()),
        }
    }

    /// [`Row::texts`], moving a value a step set out of the row instead of copying it: for the
    /// field's last read.
    pub fn take_texts(&mut self, name: &str) -> Result<Texts<'a>, FieldError> {
        match self.fields.iter_mut().find(|(k, _)| *k == name) {
            Some((_, value)) => Ok(value.take().map_or_else(Texts::new, |v| v.into_texts().into_iter().map(Cow::Owned).collect())),
            None => self.texts(name),
        }
    }

    /// [`Row::texts`] of a field no step set that the event holds as one value, read in place
    /// without a list; `None` for any other field.
    pub fn event_text(&self, name: &str) -> Option<Result<Option<Cow<'a, str>>, FieldError>> {
        self.set_field(name).is_none().then(|| self.event_scalar(name)).flatten()
    }

    /// `name`, which no step set, read from the event in place when the event holds it as one
    /// value: it is neither `_raw` nor a path through an array. `None` otherwise.
    fn event_scalar(&self, name: &str) -> Option<Result<Option<Cow<'a, str>>, FieldError>> {
        match self.event {
            Some(event) if name != "_raw" && crate::cloudtrail::array_path(name).is_none() => Some(event.field(name, self.locale.user)),
            _ => None,
        }
    }

    /// Whether any value of `name` satisfies `pred`; `None` when the field is null. Reads a
    /// scalar of the event in place: a selection that rejects a record allocates nothing.
    pub fn any_text(&self, name: &str, pred: &dyn Fn(&str) -> bool) -> Result<Option<bool>, FieldError> {
        let any = |value: &Val| {
            let mut items = value.items().peekable();
            items.peek().is_some().then(|| items.any(|item| pred(&item.text())))
        };
        if let Some(value) = self.set_field(name) {
            return Ok(value.as_ref().and_then(any));
        }
        match self.event_scalar(name) {
            Some(field) => Ok(field?.map(|value| pred(&value))),
            None => Ok(any(&self.get(name)?)),
        }
    }

    /// The value a step set for `name` (`Some(None)`: hidden by a rename); `None` when no step
    /// set it.
    fn set_field(&self, name: &str) -> Option<&Option<Val>> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn set(&mut self, name: impl Into<Cow<'e, str>>, value: Option<Val>) {
        let name = name.into();
        match self.fields.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
    }

    fn fork(&self) -> Row<'e, 'a> {
        Row { event: self.event, locale: self.locale, fields: self.fields.clone(), now: self.now }
    }

    /// The fields this row carries, in order, nulls included, hidden ones left out.
    pub fn into_map(self) -> Map<String, Value> {
        self.fields.into_iter().filter_map(|(k, v)| v.map(|v| (k.into_owned(), v.into_json()))).collect()
    }
}

/// `search` semantics (see [`Cond`]).
pub fn test(cond: &Cond, row: &Row<'_, '_>) -> Result<bool, FieldError> {
    Ok(match cond {
        Cond::All(items) => {
            for item in items {
                if !test(item, row)? {
                    return Ok(false);
                }
            }
            true
        }
        Cond::Any(items) => {
            for item in items {
                if test(item, row)? {
                    return Ok(true);
                }
            }
            false
        }
        Cond::Not(inner) => !test(inner, row)?,
        Cond::Compare { field, op, value } => {
            let any = |pred: &dyn Fn(&str) -> bool| row.any_text(field, pred);
            match op {
                CompareOp::Eq => any(&|t| wildcard_match(value, t))?.unwrap_or(false),
                CompareOp::Ne => any(&|t| wildcard_match(value, t))?.is_some_and(|matched| !matched),
                ordered => any(&|t| {
                    compare_text(t, value).is_some_and(|o| match ordered {
                        CompareOp::Lt => o.is_lt(),
                        CompareOp::Le => o.is_le(),
                        CompareOp::Gt => o.is_gt(),
                        _ => o.is_ge(),
                    })
                })?
                .unwrap_or(false),
            }
        }
        Cond::In { field, values } => row.any_text(field, &|t| values.iter().any(|v| wildcard_match(v, t)))?.unwrap_or(false),
        // Sigma tests read the record itself; a row without one (after `stats`) has no such field.
        Cond::Sigma { field, test } => match row.event {
            Some(event) => super::sigma::test(event, field, test)?,
            None => false,
        },
    })
}

/// Eval semantics (see [`Expr`]).
pub fn eval(expr: &Expr, row: &Row<'_, '_>, regexes: &Regexes) -> Result<Val, FieldError> {
    Ok(match expr {
        Expr::Str(s) => Val::Str(s.clone()),
        Expr::Num(n) => Val::Num(*n),
        // Eval sees no field where the record holds an object or array (Splunk flattens those
        // into `a.b` and `a{}` fields); only a selection's or a group's read is strict.
        Expr::Field(name) => match row.get(name) {
            Err(FieldError::WrongType { .. }) => Val::Null,
            other => other?,
        },
        Expr::Not(inner) => match eval(inner, row, regexes)? {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Null,
        },
        Expr::Neg(inner) => eval(inner, row, regexes)?.number().map_or(Val::Null, |n| Val::Num(-n)),
        Expr::Binary { op, left, right } => binary(*op, left, right, row, regexes)?,
        Expr::Call { func, args } => call(*func, args, row, regexes)?,
    })
}

fn binary(op: BinaryOp, left: &Expr, right: &Expr, row: &Row<'_, '_>, regexes: &Regexes) -> Result<Val, FieldError> {
    // AND and OR read their right side only when it decides the result, as Splunk does.
    match op {
        BinaryOp::And => {
            return Ok(Val::Bool(eval(left, row, regexes)?.truthy() && eval(right, row, regexes)?.truthy()));
        }
        BinaryOp::Or => {
            return Ok(Val::Bool(eval(left, row, regexes)?.truthy() || eval(right, row, regexes)?.truthy()));
        }
        _ => {}
    }
    let test: fn(std::cmp::Ordering) -> bool = match op {
        BinaryOp::Eq => |o| o.is_eq(),
        BinaryOp::Ne => |o| o.is_ne(),
        BinaryOp::Lt => |o| o.is_lt(),
        BinaryOp::Le => |o| o.is_le(),
        BinaryOp::Gt => |o| o.is_gt(),
        BinaryOp::Ge => |o| o.is_ge(),
        _ => return arithmetic(op, eval(left, row, regexes)?, eval(right, row, regexes)?),
    };
    let (l, r) = (operand(left, row, regexes)?, operand(right, row, regexes)?);
    if l.items().next().is_none() || r.items().next().is_none() {
        return Ok(Val::Null);
    }
    Ok(Val::Bool(any_pair(&l, &r, test)))
}

/// Whether a value of `left` and a value of `right` compare as `test` asks: a multivalue side
/// holds when any of its values does.
fn any_pair(left: &Operand<'_>, right: &Operand<'_>, test: impl Fn(std::cmp::Ordering) -> bool) -> bool {
    left.items().any(|a| right.items().any(|b| compare(a, b).is_some_and(&test)))
}

/// A comparison's side, borrowed where the rule or the row holds it: most of a rule's work is
/// comparisons (`eventName="..."` in the data models' `case()`s), and none copies a value.
enum Operand<'v> {
    Literal(Item<'v>),
    Set(&'v Val),
    /// A scalar field of the event, borrowed from the record unless it holds an escape.
    Event(Option<Cow<'v, str>>),
    Computed(Val),
}

impl Operand<'_> {
    fn items(&self) -> impl Iterator<Item = Item<'_>> + Clone {
        let (literal, value) = match self {
            Operand::Literal(item) => (Some(*item), None),
            Operand::Event(text) => (text.as_deref().map(Item::Text), None),
            Operand::Set(v) => (None, Some(*v)),
            Operand::Computed(v) => (None, Some(v)),
        };
        literal.into_iter().chain(value.into_iter().flat_map(Val::items))
    }
}

fn operand<'v>(expr: &'v Expr, row: &'v Row<'_, '_>, regexes: &Regexes) -> Result<Operand<'v>, FieldError> {
    Ok(match expr {
        Expr::Str(s) => Operand::Literal(Item::Text(s)),
        Expr::Num(n) => Operand::Literal(Item::Num(*n)),
        Expr::Field(name) => match row.set_field(name) {
            Some(Some(value)) => Operand::Set(value),
            Some(None) => Operand::Computed(Val::Null),
            None => match row.event_scalar(name) {
                Some(Ok(text)) => Operand::Event(text),
                // As eval reads it: no field where the record holds an object or array.
                Some(Err(FieldError::WrongType { .. })) => Operand::Event(None),
                Some(Err(e)) => return Err(e),
                None => Operand::Computed(eval(expr, row, regexes)?),
            },
        },
        _ => Operand::Computed(eval(expr, row, regexes)?),
    })
}

/// `isnull()`, reading its argument in place: the data models test every field they derive
/// (`isnull(x) OR x=""`).
fn is_null(arg: Option<&Expr>, row: &Row<'_, '_>, regexes: &Regexes) -> Result<bool, FieldError> {
    Ok(match arg {
        Some(expr) => operand(expr, row, regexes)?.items().next().is_none(),
        None => true,
    })
}

/// The operators on two values that are not comparisons.
fn arithmetic(op: BinaryOp, l: Val, r: Val) -> Result<Val, FieldError> {
    if l.is_null() || r.is_null() {
        return Ok(Val::Null);
    }
    let arithmetic = |f: fn(f64, f64) -> Option<f64>| match (l.number(), r.number()) {
        (Some(a), Some(b)) => f(a, b).filter(|n| n.is_finite()).map_or(Val::Null, Val::Num),
        _ => Val::Null,
    };
    Ok(match op {
        // `+` adds numbers and joins text.
        BinaryOp::Add => match (l.number(), r.number()) {
            (Some(a), Some(b)) => Val::Num(a + b),
            _ => Val::Str(format!("{}{}", l.text().unwrap_or_default(), r.text().unwrap_or_default())),
        },
        BinaryOp::Sub => arithmetic(|a, b| Some(a - b)),
        BinaryOp::Mul => arithmetic(|a, b| Some(a * b)),
        BinaryOp::Div => arithmetic(|a, b| (b != 0.0).then(|| a / b)),
        BinaryOp::Mod => arithmetic(|a, b| (b != 0.0).then(|| a % b)),
        BinaryOp::Concat => Val::Str(format!("{}{}", l.text().unwrap_or_default(), r.text().unwrap_or_default())),
        _ => unreachable!("comparisons, AND and OR are handled by `binary`"),
    })
}

fn call(func: Func, args: &[Expr], row: &Row<'_, '_>, regexes: &Regexes) -> Result<Val, FieldError> {
    let arg = |i: usize| -> Result<Val, FieldError> {
        match args.get(i) {
            Some(e) => eval(e, row, regexes),
            None => Ok(Val::Null),
        }
    };
    let number = |i: usize| -> Result<Option<f64>, FieldError> { Ok(arg(i)?.number()) };
    Ok(match func {
        Func::If => {
            if arg(0)?.truthy() {
                arg(1)?
            } else {
                arg(2)?
            }
        }
        Func::Case => {
            for pair in args.chunks(2) {
                if let [condition, value] = pair {
                    if eval(condition, row, regexes)?.truthy() {
                        return eval(value, row, regexes);
                    }
                }
            }
            Val::Null
        }
        Func::In => {
            let Some((value, candidates)) = args.split_first() else { return Ok(Val::Null) };
            let value = operand(value, row, regexes)?;
            for candidate in candidates {
                if any_pair(&value, &operand(candidate, row, regexes)?, std::cmp::Ordering::is_eq) {
                    return Ok(Val::Bool(true));
                }
            }
            Val::Bool(false)
        }
        Func::Coalesce => {
            for e in args {
                let v = eval(e, row, regexes)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            Val::Null
        }
        Func::Isnull => Val::Bool(is_null(args.first(), row, regexes)?),
        Func::Isnotnull => Val::Bool(!is_null(args.first(), row, regexes)?),
        Func::Match => {
            let (value, pattern) = (arg(0)?, arg(1)?);
            match (value.is_null(), pattern.text()) {
                (false, Some(p)) => regexes.with(&p, |re| Val::Bool(value.texts().iter().any(|t| re.is_match(t)))).unwrap_or(Val::Null),
                _ => Val::Null,
            }
        }
        Func::Like => match (arg(0)?.text(), arg(1)?.text()) {
            (Some(value), Some(pattern)) => Val::Bool(like(&pattern, &value)),
            _ => Val::Null,
        },
        Func::Lower => map_text(arg(0)?, |s| s.to_lowercase()),
        Func::Upper => map_text(arg(0)?, |s| s.to_uppercase()),
        Func::Len => arg(0)?.text().map_or(Val::Null, |s| Val::Num(s.chars().count() as f64)),
        Func::Tostring => arg(0)?.text().map_or(Val::Null, Val::Str),
        Func::Tonumber => arg(0)?.text().and_then(|s| parse_number(&s)).map_or(Val::Null, Val::Num),
        Func::Floor => number(0)?.map_or(Val::Null, |n| Val::Num(n.floor())),
        Func::Min => {
            // eval's min(): numbers compare as numbers and come before texts; nulls are skipped.
            let mut least: Option<Val> = None;
            for e in args {
                for text in eval(e, row, regexes)?.texts() {
                    let candidate = parse_number(&text).map_or(Val::Str(text.clone()), Val::Num);
                    let smaller = match (&least, &candidate) {
                        (None, _) => true,
                        (Some(Val::Num(a)), Val::Num(b)) => b < a,
                        (Some(Val::Num(_)), _) => false,
                        (Some(_), Val::Num(_)) => true,
                        (Some(a), b) => b.text() < a.text(),
                    };
                    if smaller {
                        least = Some(candidate);
                    }
                }
            }
            least.unwrap_or(Val::Null)
        }
        Func::Now => row.now.map_or(Val::Null, |t| Val::Num(t as f64)),
        Func::RelativeTime => match (number(0)?, arg(1)?.text()) {
            (Some(t), Some(spec)) => {
                // Snapped in the local day: shifted there and back.
                let offset = i64::from(row.locale.utc_offset_minutes) * 60;
                crate::time::relative_time((t.floor() as i64).saturating_add(offset), &spec).map_or(Val::Null, |t| Val::Num((t - offset) as f64))
            }
            _ => Val::Null,
        },
        Func::Abs => number(0)?.map_or(Val::Null, |n| Val::Num(n.abs())),
        Func::Round => {
            let digits = number(1)?.unwrap_or(0.0).clamp(0.0, 15.0);
            let scale = 10f64.powi(digits as i32);
            number(0)?.map_or(Val::Null, |n| Val::Num((n * scale).round() / scale))
        }
        Func::Mvcount => match arg(0)? {
            Val::Null => Val::Null,
            v => Val::Num(v.texts().len() as f64),
        },
        Func::Mvindex => {
            let items = arg(0)?.texts();
            let len = items.len() as i64;
            let index = |n: f64| if n < 0.0 { len + n as i64 } else { n as i64 };
            match (number(1)?.map(index), args.get(2).map(|_| number(2)).transpose()?.flatten().map(index)) {
                (Some(start), end) => {
                    let end = end.unwrap_or(start);
                    if start < 0 || start >= len || end < start {
                        Val::Null
                    } else {
                        Val::multi(items[start as usize..=(end.min(len - 1)) as usize].to_vec())
                    }
                }
                _ => Val::Null,
            }
        }
        Func::Mvappend => {
            let mut all = Vec::new();
            for e in args {
                all.extend(eval(e, row, regexes)?.texts());
            }
            Val::multi(all)
        }
        Func::Mvjoin => match (arg(0)?, arg(1)?.text()) {
            (Val::Null, _) | (_, None) => Val::Null,
            (v, Some(delimiter)) => Val::Str(v.texts().join(&delimiter)),
        },
        Func::Split => match (arg(0)?.text(), arg(1)?.text()) {
            (Some(s), Some(d)) if !d.is_empty() => Val::multi(s.split(d.as_str()).map(str::to_string).collect()),
            _ => Val::Null,
        },
        Func::Strftime => match (number(0)?, arg(1)?.text()) {
            (Some(secs), Some(format)) => Val::Str(format_ctime_with(secs.floor() as i64, &format, row.locale.utc_offset_minutes)),
            _ => Val::Null,
        },
        Func::Null => Val::Null,
    })
}

fn map_text(value: Val, f: impl Fn(&str) -> String) -> Val {
    match value {
        Val::Null => Val::Null,
        Val::Multi(items) => Val::Multi(items.iter().map(|s| f(s)).collect()),
        v => Val::Str(f(&v.text().unwrap_or_default())),
    }
}

/// SQL LIKE: `%` any run, `_` one character; case-sensitive, as eval's `like` is.
fn like(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    pattern_match(&p, &t, '%', Some('_'), |a, b| a == b)
}

/// Every value under `value` by its Splunk path (`a.b`, `a{}.b`), as spath without a path
/// extracts them: scalars as text, empty objects and arrays as nothing.
pub(crate) fn flatten(value: &Value, path: String, out: &mut BTreeMap<String, Vec<String>>) {
    match value {
        Value::Object(members) => {
            for (key, inner) in members {
                let name = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                flatten(inner, name, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| flatten(item, format!("{path}{{}}"), out)),
        Value::Null => {}
        Value::String(s) => out.entry(path).or_default().push(s.clone()),
        scalar => out.entry(path).or_default().push(scalar.to_string()),
    }
}

/// `eventstats` over `rows` together (see [`Step::Eventstats`]).
fn eventstats<'e>(functions: &'e [Aggregation], by: &[String], rows: &mut [Row<'e, '_>]) -> Result<(), FieldError> {
    // Each row's group: its `by` values, or none when one is null.
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows.iter() {
        let mut key = Vec::with_capacity(by.len());
        for field in by {
            match row.get(field)?.text() {
                Some(text) => key.push(text),
                None => break,
            }
        }
        keys.push((key.len() == by.len()).then_some(key));
    }
    for agg in functions {
        let mut inputs: BTreeMap<&Vec<String>, Vec<f64>> = BTreeMap::new();
        let mut counts: BTreeMap<&Vec<String>, usize> = BTreeMap::new();
        for (row, key) in rows.iter().zip(&keys) {
            let Some(key) = key else { continue };
            *counts.entry(key).or_default() += 1;
            let numbers = inputs.entry(key).or_default();
            if let Some(field) = &agg.field {
                numbers.extend(row.get(field)?.into_texts().iter().filter_map(|t| parse_number(t)));
            }
        }
        let result = |key: &Vec<String>| -> Option<f64> {
            let xs = inputs.get(key)?;
            let n = xs.len() as f64;
            let mean = || xs.iter().sum::<f64>() / n;
            match agg.func {
                AggFunc::Count if agg.field.is_none() => counts.get(key).map(|c| *c as f64),
                AggFunc::Count => Some(n),
                _ if xs.is_empty() => None,
                AggFunc::Avg => Some(mean()),
                AggFunc::Sum => Some(xs.iter().sum()),
                AggFunc::Min => xs.iter().copied().reduce(f64::min),
                AggFunc::Max => xs.iter().copied().reduce(f64::max),
                AggFunc::Stdev if xs.len() == 1 => Some(0.0),
                AggFunc::Stdev => {
                    let m = mean();
                    Some((xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt())
                }
                _ => None,
            }
        };
        let values: Vec<Option<f64>> = keys.iter().map(|k| k.as_ref().and_then(&result)).collect();
        for (row, value) in rows.iter_mut().zip(values) {
            if let Some(value) = value {
                row.set(&agg.name, Some(Val::Num(value)));
            }
        }
    }
    Ok(())
}

/// What `field = expr` assigns: `None` when the branch taken is the field itself, already set
/// (the data models end every field with `if(isnull(x) OR x="", "unknown", x)`), so the value
/// is neither copied nor replaced. That test itself is read off the value ([`is_blank`]): five
/// such fields for each record of a data-model rule cost, walked node by node, a seventh of it.
fn assigned(field: &str, expr: &Expr, row: &Row<'_, '_>, regexes: &Regexes) -> Result<Option<Val>, FieldError> {
    match expr {
        Expr::Call { func: Func::If, args } if args.len() == 3 => {
            let test = match row.set_field(field) {
                Some(set) if tests_blank(&args[0], field) => is_blank(set.as_ref()),
                _ => eval(&args[0], row, regexes)?.truthy(),
            };
            let branch = if test { &args[1] } else { &args[2] };
            assigned(field, branch, row, regexes)
        }
        Expr::Field(name) if name == field && matches!(row.set_field(name), Some(Some(_))) => Ok(None),
        _ => eval(expr, row, regexes).map(Some),
    }
}

/// Whether `cond` is `isnull(field) OR field=""`, the data models' test before a default.
fn tests_blank(cond: &Expr, field: &str) -> bool {
    let Expr::Binary { op: BinaryOp::Or, left, right } = cond else { return false };
    let (Expr::Call { func: Func::Isnull, args }, Expr::Binary { op: BinaryOp::Eq, left: compared, right: empty }) = (&**left, &**right) else {
        return false;
    };
    matches!(args.as_slice(), [Expr::Field(name)] if name == field)
        && matches!(&**compared, Expr::Field(name) if name == field)
        && matches!(&**empty, Expr::Str(text) if text.is_empty())
}

/// `isnull(x) OR x=""` of a value a step set (`None`: hidden by a rename), as eval answers it
/// and without its walk: null, or a value that is the empty text (`=` compares a number's text,
/// never empty).
fn is_blank(value: Option<&Val>) -> bool {
    value.is_none_or(|v| v.is_null() || v.items().any(|item| matches!(item, Item::Text(""))))
}

/// The rows of a pipeline: most events make one, kept in place of a list, so that a selected
/// event's steps cost no list (an allocation apiece under an interpreter shows).
pub type Rows<'e, 'a> = SmallVec<[Row<'e, 'a>; 1]>;

/// Runs `steps` over `rows`: each row may be kept, dropped or (`mvexpand`) multiplied.
pub fn run_steps<'e, 'a>(steps: &'e [Step], mut rows: Rows<'e, 'a>, regexes: &Regexes) -> Result<Rows<'e, 'a>, FieldError> {
    // Two buffers, swapped after each step: a step costs no allocation of its own.
    let mut next = Rows::with_capacity(rows.len());
    for step in steps {
        if let Step::Eventstats { functions, by } = step {
            eventstats(functions, by, &mut rows)?;
            continue;
        }
        for mut row in rows.drain(..) {
            match step {
                Step::Eventstats { .. } => unreachable!("taken above"),
                Step::Search(cond) => {
                    if test(cond, &row)? {
                        next.push(row);
                    }
                }
                Step::Where(expr) => {
                    if eval(expr, &row, regexes)?.truthy() {
                        next.push(row);
                    }
                }
                Step::Eval(assigns) => {
                    for Assign { field, expr } in assigns {
                        if let Some(value) = assigned(field, expr, &row, regexes)? {
                            row.set(field, Some(value));
                        }
                    }
                    next.push(row);
                }
                Step::Rename(renames) => {
                    for r in renames {
                        // A field a step set keeps its column, as Splunk's rename keeps it.
                        let set_here = row.fields.iter().position(|(k, v)| *k == r.from && v.is_some());
                        if let (Some(at), false) = (set_here, row.fields.iter().any(|(k, _)| *k == r.to)) {
                            row.fields[at].0 = Cow::Borrowed(&r.to);
                            if row.event.is_some() {
                                // The record's own field of that name stays hidden.
                                row.fields.push((Cow::Borrowed(&r.from), None));
                            }
                            continue;
                        }
                        let value = row.get(&r.from)?;
                        row.set(&r.from, None);
                        row.set(&r.to, Some(value));
                    }
                    next.push(row);
                }
                Step::Fillnull { value, fields } => {
                    for field in fields {
                        if row.get(field)?.is_null() {
                            row.set(field, Some(Val::Str(value.clone())));
                        }
                    }
                    next.push(row);
                }
                Step::Spath { input, output, path } => {
                    let mut out = Vec::new();
                    for text in row.get(input)?.texts() {
                        // Text that is not JSON yields nothing, as spath extracts nothing from it.
                        if let Ok(json) = serde_json::from_str::<Value>(&text) {
                            collect_values(&json, path, &mut out);
                        }
                    }
                    row.set(output, Some(Val::multi(out)));
                    next.push(row);
                }
                Step::SpathAll { input } => {
                    let mut fields = BTreeMap::new();
                    for text in row.get(input)?.texts() {
                        if let Ok(json) = serde_json::from_str::<Value>(&text) {
                            flatten(&json, String::new(), &mut fields);
                        }
                    }
                    for (name, values) in fields {
                        row.set(name, Some(Val::multi(values)));
                    }
                    next.push(row);
                }
                Step::Rex { field, regex } => {
                    let text = row.get(field)?.texts().into_iter().next();
                    let captured: Vec<(String, String)> = text
                        .and_then(|text| {
                            regexes.with(regex, |re| {
                                re.captures(&text).map_or_else(Vec::new, |caps| {
                                    re.capture_names()
                                        .flatten()
                                        .filter_map(|name| caps.name(name).map(|m| (name.to_string(), m.as_str().to_string())))
                                        .collect()
                                })
                            })
                        })
                        .unwrap_or_default();
                    for (name, value) in captured {
                        row.set(name, Some(Val::Str(value)));
                    }
                    next.push(row);
                }
                Step::Mvexpand(field) => match row.get(field)? {
                    Val::Multi(items) => {
                        for item in items {
                            let mut copy = row.fork();
                            copy.set(field, Some(Val::Str(item)));
                            next.push(copy);
                        }
                    }
                    // mvexpand drops a row whose field is null.
                    Val::Null => {}
                    _ => next.push(row),
                },
                Step::Ctime { field, format } => {
                    let value = row.get(field)?;
                    if let Some(secs) = value.number() {
                        let local = format_ctime_with(secs.floor() as i64, format, row.locale.utc_offset_minutes);
                        row.set(field, Some(Val::Str(local)));
                    }
                    next.push(row);
                }
                Step::Union(branches) => {
                    for branch in branches {
                        next.extend(run_steps(branch, smallvec![row.fork()], regexes)?);
                    }
                }
                // The rule's detection holds the set and applies the lookup (run.rs); here,
                // where no set is at hand, it would be a lookup that matches nothing.
                Step::FirstSeen { .. } => next.push(row),
                // Likewise the density baseline; without one the inner join keeps no row.
                Step::Density => {}
                Step::Table(fields) => {
                    let mut kept = Vec::with_capacity(fields.len());
                    for field in fields {
                        kept.push((Cow::Borrowed(field.as_str()), Some(row.get(field)?)));
                    }
                    row.fields = kept;
                    row.event = None;
                    next.push(row);
                }
            }
        }
        std::mem::swap(&mut rows, &mut next);
    }
    Ok(rows)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::json::{RawObject, ScannedObject};
    use std::borrow::Cow;

    /// `f` of `json` as an event named `X` at time 0 (the rule modules' tests share it).
    pub(crate) fn with_event<T>(json: &str, f: impl FnOnce(&Event<'_>) -> T) -> T {
        let record = ScannedObject::new(RawObject::new(json.as_bytes()).unwrap());
        let event = Event { record, event_name: Cow::Borrowed("X"), time: 0 };
        f(&event)
    }

    fn cmp(field: &str, op: CompareOp, value: &str) -> Cond {
        Cond::Compare { field: field.into(), op, value: value.into() }
    }

    #[test]
    fn search_terms_follow_splunk() {
        let json = r#"{"userAgent":"aws-cli/2.1","requestParameters":{"items":[{"u":"1"},{"u":"all"}]},"n":"7"}"#;
        with_event(json, |e| {
            let row = Row::of_event(e, Locale::default());
            assert!(test(&cmp("userAgent", CompareOp::Eq, "AWS-CLI*"), &row).unwrap());
            assert!(test(&cmp("requestParameters.items{}.u", CompareOp::Eq, "ALL"), &row).unwrap());
            // `!=` needs the field; NOT does not.
            assert!(!test(&cmp("missing", CompareOp::Ne, "x"), &row).unwrap());
            assert!(test(&Cond::Not(Box::new(cmp("missing", CompareOp::Eq, "x"))), &row).unwrap());
            assert!(test(&cmp("missing", CompareOp::Eq, "*"), &row).is_ok_and(|b| !b));
            assert!(test(&cmp("n", CompareOp::Gt, "10"), &row).is_ok_and(|b| !b));
            assert!(test(&Cond::In { field: "n".into(), values: vec!["3".into(), "7".into()] }, &row).unwrap());
        });
    }

    #[test]
    fn in_compares_as_equality_does() {
        let row = Row::of_fields(
            vec![("n".into(), Val::Str("CreateSecurityGroup".into())), ("m".into(), Val::Multi(vec!["x".into(), "07".into()]))],
            Locale::default(),
        );
        let call = |args: Vec<Expr>| eval(&Expr::Call { func: Func::In, args }, &row, &Regexes::default()).unwrap();
        let (field, text) = (|f: &str| Expr::Field(f.into()), |t: &str| Expr::Str(t.into()));
        assert_eq!(call(vec![field("n"), text("DeleteSecurityGroup"), text("CreateSecurityGroup")]), Val::Bool(true));
        // Case-sensitive, as eval's `=`.
        assert_eq!(call(vec![field("n"), text("createsecuritygroup")]), Val::Bool(false));
        // Any value of a multivalue field; numbers compare as numbers.
        assert_eq!(call(vec![field("m"), Expr::Num(7.0)]), Val::Bool(true));
        assert_eq!(call(vec![field("missing"), text("")]), Val::Bool(false));
    }

    #[test]
    fn eval_concatenates_and_propagates_null() {
        let row = Row::of_fields(vec![("a".into(), Val::Str("x".into())), ("n".into(), Val::Num(2.0))], Locale::default());
        let field = |f: &str| Box::new(Expr::Field(f.into()));
        let concat = Expr::Binary { op: BinaryOp::Concat, left: field("a"), right: field("n") };
        assert_eq!(eval(&concat, &row, &Regexes::default()).unwrap(), Val::Str("x2".into()));
        let with_null = Expr::Binary { op: BinaryOp::Concat, left: field("a"), right: field("missing") };
        assert_eq!(eval(&with_null, &row, &Regexes::default()).unwrap(), Val::Null);
        let test_null = Expr::Call { func: Func::If, args: vec![Expr::Binary { op: BinaryOp::Eq, left: field("missing"), right: field("a") }, Expr::Num(1.0), Expr::Num(0.0)] };
        assert_eq!(eval(&test_null, &row, &Regexes::default()).unwrap(), Val::Num(0.0));
    }

    #[test]
    fn match_uses_the_rules_regexes() {
        let mut regexes = Regexes::default();
        regexes.add("^a.l$").unwrap();
        let row = Row::of_fields(vec![("g".into(), Val::Multi(vec!["x".into(), "all".into()]))], Locale::default());
        let m = Expr::Call { func: Func::Match, args: vec![Expr::Field("g".into()), Expr::Str("^a.l$".into())] };
        assert_eq!(eval(&m, &row, &regexes).unwrap(), Val::Bool(true));
    }

    /// The data models' `isnull(f) OR f=""`.
    fn blank(f: &str) -> Expr {
        Expr::Binary {
            op: BinaryOp::Or,
            left: Box::new(Expr::Call { func: Func::Isnull, args: vec![Expr::Field(f.into())] }),
            right: Box::new(Expr::Binary { op: BinaryOp::Eq, left: Box::new(Expr::Field(f.into())), right: Box::new(Expr::Str(String::new())) }),
        }
    }

    #[test]
    fn the_blank_test_read_off_a_value_answers_as_eval_does() {
        let values = [
            Some(Val::Null),
            Some(Val::Str(String::new())),
            Some(Val::Str(" ".into())),
            Some(Val::Num(0.0)),
            Some(Val::Bool(false)),
            Some(Val::multi(vec!["a".into(), String::new()])),
            Some(Val::multi(vec!["a".into(), "b".into()])),
            // Hidden by a rename.
            None,
        ];
        with_event("{}", |e| {
            for value in values {
                let mut row = Row::of_event(e, Locale::default());
                row.set("x", value.clone());
                let walked = eval(&blank("x"), &row, &Regexes::default()).unwrap().truthy();
                assert_eq!(is_blank(row.set_field("x").unwrap().as_ref()), walked, "{value:?}");
            }
        });
        assert!(tests_blank(&blank("x"), "x"));
        // Only that test of that field.
        assert!(!tests_blank(&blank("y"), "x"));
        let Expr::Binary { left, right, .. } = blank("x") else { unreachable!() };
        assert!(!tests_blank(&Expr::Binary { op: BinaryOp::And, left: left.clone(), right: right.clone() }, "x"));
        assert!(!tests_blank(&Expr::Binary { op: BinaryOp::Or, left: right, right: left }, "x"));
    }

    #[test]
    fn a_field_defaulted_to_itself_keeps_its_value_and_column() {
        // The data models' `eval x=if(isnull(x) OR x="", "unknown", x)`, over an event field, a
        // field a step set, an empty one and one never set.
        let default_of = |f: &str| Assign {
            field: f.into(),
            expr: Expr::Call { func: Func::If, args: vec![blank(f), Expr::Str("unknown".into()), Expr::Field(f.into())] },
        };
        with_event(r#"{"sourceIPAddress":"1.2.3.4"}"#, |e| {
            let steps = vec![
                Step::Eval(vec![Assign { field: "set".into(), expr: Expr::Num(7.0) }, Assign { field: "empty".into(), expr: Expr::Str(String::new()) }]),
                Step::Eval(["sourceIPAddress", "set", "empty", "never"].map(default_of).to_vec()),
            ];
            let rows = run_steps(&steps, smallvec![Row::of_event(e, Locale::default())], &Regexes::default()).unwrap();
            let map = rows.into_iter().next().unwrap().into_map();
            assert_eq!(
                Value::Object(map),
                serde_json::json!({"set": 7, "empty": "unknown", "sourceIPAddress": "1.2.3.4", "never": "unknown"})
            );
        });
    }

    #[test]
    fn steps_rename_spath_and_expand() {
        let json = r#"{"requestParameters":{"policyDocument":"{\"Statement\":[{\"Action\":\"*\"},{\"Action\":\"s3:Get\"}]}"}}"#;
        with_event(json, |e| {
            let steps = vec![
                Step::Spath { input: "requestParameters.policyDocument".into(), output: "s".into(), path: "Statement{}".into() },
                Step::Mvexpand("s".into()),
                Step::Spath { input: "s".into(), output: "action".into(), path: "Action".into() },
                Step::Where(Expr::Binary { op: BinaryOp::Eq, left: Box::new(Expr::Field("action".into())), right: Box::new(Expr::Str("*".into())) }),
                Step::Rename(vec![super::super::Rename { from: "action".into(), to: "act".into() }]),
                Step::Table(vec!["act".into(), "action".into()]),
            ];
            let rows = run_steps(&steps, smallvec![Row::of_event(e, Locale::default())], &Regexes::default()).unwrap();
            assert_eq!(rows.len(), 1);
            let map = rows.into_iter().next().unwrap().into_map();
            assert_eq!(Value::Object(map), serde_json::json!({"act": "*", "action": null}));
        });
    }

    #[test]
    fn rex_spath_without_a_path_and_computed_patterns() {
        let json = r#"{"requestParameters":{"userName":"bob"},"userIdentity":{"userName":"bob"},"responseElements":{"findings":"{\"a\":{\"b\":[1,{\"c\":\"x\"}]},\"n\":null}"}}"#;
        with_event(json, |e| {
            let mut regexes = Regexes::default();
            regexes.add("(?<who>[a-z]+)$").unwrap();
            let steps = vec![
                Step::SpathAll { input: "responseElements.findings".into() },
                Step::Rex { field: "requestParameters.userName".into(), regex: "(?<who>[a-z]+)$".into() },
                // Unquoted dotted names are concatenations of object fields: null, so `if` says 0.
                Step::Eval(vec![Assign {
                    field: "m".into(),
                    expr: Expr::Call {
                        func: Func::If,
                        args: vec![
                            Expr::Call {
                                func: Func::Match,
                                args: vec![
                                    Expr::Field("userIdentity.userName".into()),
                                    Expr::Binary { op: BinaryOp::Concat, left: Box::new(Expr::Field("requestParameters".into())), right: Box::new(Expr::Field("userName".into())) },
                                ],
                            },
                            Expr::Num(1.0),
                            Expr::Num(0.0),
                        ],
                    },
                }]),
                Step::Eval(vec![Assign { field: "same".into(), expr: Expr::Call { func: Func::Match, args: vec![Expr::Field("who".into()), Expr::Field("who".into())] } }]),
                Step::Eval(vec![Assign { field: "gone".into(), expr: Expr::Call { func: Func::Null, args: vec![] } }]),
                Step::Table(["a.b{}", "a.b{}.c", "who", "m", "same", "gone"].map(String::from).to_vec()),
            ];
            let rows = run_steps(&steps, smallvec![Row::of_event(e, Locale::default())], &regexes).unwrap();
            let map = rows.into_iter().next().unwrap().into_map();
            assert_eq!(
                Value::Object(map),
                serde_json::json!({"a.b{}": "1", "a.b{}.c": "x", "who": "bob", "m": 0, "same": true, "gone": null})
            );
        });
    }

    #[test]
    fn like_and_mvindex() {
        assert!(like("a%c_", "abbbcd") && !like("a%c", "abd"));
        let row = Row::of_fields(vec![("m".into(), Val::Multi(vec!["a".into(), "b".into(), "c".into()]))], Locale::default());
        let idx = |i: f64| Expr::Call { func: Func::Mvindex, args: vec![Expr::Field("m".into()), Expr::Num(i)] };
        assert_eq!(eval(&idx(-1.0), &row, &Regexes::default()).unwrap(), Val::Str("c".into()));
        assert_eq!(eval(&idx(5.0), &row, &Regexes::default()).unwrap(), Val::Null);
    }
}
