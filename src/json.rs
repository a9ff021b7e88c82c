//! Field access over a raw JSON object, without building a DOM.
//!
//! A record is read in one pass ([`ScannedObject::validated`]): it is validated whole while its
//! top-level members are remembered, so every later lookup of a top-level key is a table lookup,
//! and a nested one walks only its parent. Strings, most of a record's bytes, are stepped over
//! eight bytes at a time: under an interpreter (Fluent Bit's WAMR) every instruction per byte
//! shows. Nothing here allocates unless a string the rules read contains an escape sequence.
//! Depth is a counter, never recursion, so a 10,000-deep record costs a scan, not a stack.

use std::borrow::Cow;
use std::fmt;

/// Why a record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// The record is valid-looking JSON but not an object (`[..]`, `"..."`, `42`).
    NotAnObject,
    /// The input ended inside a value.
    Truncated,
    /// A byte that cannot stand where it stands, or a string that is not UTF-8.
    Malformed,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScanError::NotAnObject => "record is not a JSON object",
            ScanError::Truncated => "record ends inside a value",
            ScanError::Malformed => "record is not valid JSON",
        })
    }
}

/// A top-level JSON object held as its raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawObject<'a> {
    bytes: &'a [u8],
}

/// One value inside a [`RawObject`], as the exact bytes it occupies.
#[derive(Debug, Clone, Copy)]
pub struct RawValue<'a> {
    bytes: &'a [u8],
}

impl<'a> RawObject<'a> {
    /// Wraps `bytes` whose first non-blank byte must be `{`.
    pub fn new(bytes: &'a [u8]) -> Result<Self, ScanError> {
        let start = skip_ws(bytes, 0);
        match bytes.get(start) {
            Some(b'{') => Ok(RawObject { bytes: &bytes[start..] }),
            Some(_) => Err(ScanError::NotAnObject),
            None => Err(ScanError::Truncated),
        }
    }

    /// Finds the values of several top-level keys in one pass, stopping as soon as all are found.
    pub fn get_many<const N: usize>(
        &self,
        keys: [&str; N],
    ) -> Result<[Option<RawValue<'a>>; N], ScanError> {
        let mut found: [Option<RawValue<'a>>; N] = [None; N];
        let mut missing = N;
        let mut members = self.members();
        while missing > 0 {
            let Some((key, _, value)) = members.next_member()? else { break };
            for (slot, wanted) in found.iter_mut().zip(keys.iter()) {
                if slot.is_none() && key_equals(key, wanted) {
                    *slot = Some(value);
                    missing -= 1;
                }
            }
        }
        Ok(found)
    }

    /// The value of one top-level key.
    pub fn get(&self, key: &str) -> Result<Option<RawValue<'a>>, ScanError> {
        Ok(self.get_many([key])?[0])
    }

    /// The value at a dotted path (`serviceEventDetails.jobArn`), descending through objects.
    pub fn get_path(&self, path: &str) -> Result<Option<RawValue<'a>>, ScanError> {
        let mut object = *self;
        let mut rest = path;
        loop {
            let (part, more) = split_path(rest);
            let Some(value) = object.get(part)? else { return Ok(None) };
            let Some(more) = more else { return Ok(Some(value)) };
            match value.as_object() {
                Some(inner) => (object, rest) = (inner, more),
                None => return Ok(None),
            }
        }
    }

    /// Every top-level member in order, as its raw key bytes (between the quotes) and value.
    pub fn entries(&self) -> impl Iterator<Item = Result<(&'a [u8], RawValue<'a>), ScanError>> {
        let mut members = self.members();
        std::iter::from_fn(move || members.next_member().map(|m| m.map(|(key, _, value)| (key, value))).transpose())
    }

    /// True when the object has no top-level `key`, or cannot be read as far as one.
    pub fn lacks(&self, key: &str) -> bool {
        matches!(self.get(key), Ok(None) | Err(_))
    }

    fn members(&self) -> Members<'a> {
        Members { bytes: self.bytes, pos: 1, first: true, done: false }
    }
}

/// A [`RawObject`] read at most once however many keys are asked for, in any order: the
/// members the scan passes on its way to one key are remembered for the next. The same holds
/// for the objects inside it that lookups descend into (`userIdentity`, `requestParameters`):
/// rules read many fields of each. Fixed capacity, so reading never allocates; members past it
/// are found by scanning again.
pub struct ScannedObject<'a> {
    object: RawObject<'a>,
    state: std::cell::RefCell<ScanState<'a, REMEMBERED>>,
    nested: std::cell::RefCell<NestedStates<'a>>,
    /// The whole record, blanks around the object included, when [`ScannedObject::validated`]
    /// read it.
    validated: Option<ValidRecord<'a>>,
}

/// A record proved to be one JSON object with only blanks around it: what a host may rewrite
/// without reading it again. Made only by [`ScannedObject::validated`].
#[derive(Debug, Clone, Copy)]
pub struct ValidRecord<'a> {
    bytes: &'a [u8],
}

impl<'a> ValidRecord<'a> {
    pub fn bytes(self) -> &'a [u8] {
        self.bytes
    }
}

/// Top-level members remembered; CloudTrail records have about twenty.
const REMEMBERED: usize = 32;

/// Members remembered of one nested object (`userIdentity` has about six).
const REMEMBERED_NESTED: usize = 8;

/// Nested objects whose scans are kept at once; a further one replaces the oldest.
const NESTED_OBJECTS: usize = 2;

/// How far one object has been read, and what was found on the way.
struct ScanState<'a, const N: usize> {
    members: Members<'a>,
    seen: [Remembered<'a>; N],
    count: usize,
    /// [`tag_bit`] of every key seen: once the object is read to its end, a key whose bit is
    /// not set is not there, answered without a pass over the members (every record is asked
    /// for keys it lacks: `errorCode` by the index, the output field by the hosts).
    tags: u64,
}

/// The scans of the nested objects looked into, each under the offset of its first byte in the
/// record (which tells objects apart), replaced oldest first.
#[derive(Default)]
struct NestedStates<'a> {
    states: [Option<(usize, ScanState<'a, REMEMBERED_NESTED>)>; NESTED_OBJECTS],
    oldest: usize,
}

#[derive(Clone, Copy)]
struct Remembered<'a> {
    /// [`key_tag`] of the key, or [`ESCAPED`] for a raw key holding an escape.
    tag: u32,
    key: &'a [u8],
    value: RawValue<'a>,
}

/// Keys are found by comparing a tag first: most lookups pass twenty members, and under an
/// interpreter a call per member to compare bytes shows. Equal keys have equal tags.
fn key_tag(key: &[u8]) -> u32 {
    let (first, last) = (key.first().copied().unwrap_or(0), key.last().copied().unwrap_or(0));
    (key.len() as u32) << 16 | u32::from(first) << 8 | u32::from(last)
}

/// The tag of a key whose raw bytes hold an escape: compared by decoding.
const ESCAPED: u32 = u32::MAX;

/// One of 64 bits for a key tag (a multiplicative hash's top six bits); every bit for a key
/// with an escape, which any key may equal.
fn tag_bit(tag: u32) -> u64 {
    if tag == ESCAPED {
        u64::MAX
    } else {
        1 << (tag.wrapping_mul(0x9E37_79B9) >> 26)
    }
}

impl<'a> ScannedObject<'a> {
    pub fn new(object: RawObject<'a>) -> Self {
        let state = std::cell::RefCell::new(ScanState::new(object));
        ScannedObject { object, state, nested: Default::default(), validated: None }
    }

    /// The record, if this object was read by [`ScannedObject::validated`].
    pub fn valid_record(&self) -> Option<ValidRecord<'a>> {
        self.validated
    }

    /// Validates `bytes` as one JSON object (as [`validate`] does) and remembers its top-level
    /// members on the way: one pass over the record, after which a top-level key is found in a
    /// table of at most [`REMEMBERED`] members.
    pub fn validated(bytes: &'a [u8]) -> Result<Self, ScanError> {
        let object = RawObject::new(bytes)?;
        let mut scanned = ScannedObject::new(object);
        scanned.validated = Some(ValidRecord { bytes });
        let mut borrowed = scanned.state.borrow_mut();
        let state = &mut *borrowed;
        let mut resume = None;
        validate_noting_members(object.bytes, |key, escaped, value| {
            if state.count < REMEMBERED {
                let tag = if escaped { ESCAPED } else { key_tag(key) };
                state.seen[state.count] = Remembered { tag, key, value: RawValue { bytes: value } };
                state.count += 1;
                state.tags |= tag_bit(tag);
            } else if resume.is_none() {
                // The members not remembered are read again on demand, from the first of them.
                resume = Some(key.as_ptr() as usize - object.bytes.as_ptr() as usize - 1);
            }
        })?;
        match resume {
            Some(pos) => {
                // Positioned at the quote of the first member not remembered, as after a comma.
                state.members = Members { bytes: object.bytes, pos, first: true, done: false };
            }
            None => state.members.done = true,
        }
        drop(borrowed);
        Ok(scanned)
    }

    /// [`RawValue::as_text`] of a value read from this object, without repeating the UTF-8
    /// check where [`ScannedObject::validated`] has made it: every field a rule reads is text,
    /// and checking each again cost a twentieth of the pack's work on the example.
    pub fn text_of(&self, value: RawValue<'a>) -> Result<Option<Cow<'a, str>>, ScanError> {
        let record = self.object.bytes.as_ptr_range();
        let within = record.start <= value.bytes.as_ptr() && value.bytes.as_ptr_range().end <= record.end;
        let checked = self.validated.is_some() && within;
        let text = match value.kind() {
            Kind::String if checked => value.unescaped_string(),
            Kind::Number | Kind::Bool if checked => Some(value.bytes),
            // Escaped strings, null, containers, and values of a record not validated.
            _ => None,
        };
        match text {
            // SAFETY: a `RawValue` is made only by this module's scans, whole tokens (a string's
            // bytes between its quotes, a number, a literal) of the bytes scanned; these lie
            // within this record, which `validated` proved to be JSON, so valid UTF-8, and a
            // token of it starts and ends on a character boundary.
            Some(text) => Ok(Some(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(text) }))),
            None => value.as_text(),
        }
    }

    /// The object's text, from its opening brace (Splunk's `_raw`).
    pub fn raw(&self) -> &'a [u8] {
        self.object.bytes
    }

    /// The value of one top-level key (the first, if the key repeats).
    pub fn get(&self, key: &str) -> Result<Option<RawValue<'a>>, ScanError> {
        self.state.borrow_mut().find(self.object, key)
    }

    /// The value at a dotted path (`userIdentity.principalId`).
    pub fn get_path(&self, path: &str) -> Result<Option<RawValue<'a>>, ScanError> {
        let (first, mut rest) = split_path(path);
        let Some(mut value) = self.get(first)? else { return Ok(None) };
        while let Some(path) = rest {
            let Some(object) = value.as_object() else { return Ok(None) };
            let (part, more) = split_path(path);
            let Some(found) = self.nested_get(object, part)? else { return Ok(None) };
            (value, rest) = (found, more);
        }
        Ok(Some(value))
    }

    /// The value of `key` in `object`, an object inside the record, through its kept scan.
    fn nested_get(&self, object: RawObject<'a>, key: &str) -> Result<Option<RawValue<'a>>, ScanError> {
        let at = object.bytes.as_ptr() as usize - self.object.bytes.as_ptr() as usize;
        let mut nested = self.nested.borrow_mut();
        let nested = &mut *nested;
        let kept = nested.states.iter().position(|s| s.as_ref().is_some_and(|(start, _)| *start == at));
        let slot = match kept {
            Some(slot) => slot,
            None => {
                let slot = nested.oldest;
                nested.oldest = (slot + 1) % NESTED_OBJECTS;
                nested.states[slot] = None;
                slot
            }
        };
        let (_, state) = nested.states[slot].get_or_insert_with(|| (at, ScanState::new(object)));
        state.find(object, key)
    }
}

impl<'a, const N: usize> ScanState<'a, N> {
    fn new(object: RawObject<'a>) -> Self {
        let none = Remembered { tag: 0, key: &[], value: RawValue { bytes: &[] } };
        ScanState { members: object.members(), seen: [none; N], count: 0, tags: 0 }
    }

    /// The value of `key` in `object` (the first, if the key repeats): from the members seen,
    /// else by reading on.
    fn find(&mut self, object: RawObject<'a>, key: &str) -> Result<Option<RawValue<'a>>, ScanError> {
        let tag = key_tag(key.as_bytes());
        let matches = |m: &Remembered<'_>| match m.tag {
            ESCAPED => key_equals(m.key, key),
            t => t == tag && m.key == key.as_bytes(),
        };
        if self.members.done && self.count < N && self.tags & tag_bit(tag) == 0 {
            return Ok(None);
        }
        if let Some(found) = self.seen[..self.count].iter().find(|m| matches(m)) {
            return Ok(Some(found.value));
        }
        while let Some((k, escaped, value)) = self.members.next_member()? {
            let member = Remembered { tag: if escaped { ESCAPED } else { key_tag(k) }, key: k, value };
            if self.count < N {
                self.seen[self.count] = member;
                self.count += 1;
                self.tags |= tag_bit(member.tag);
            } else if matches(&member) {
                // Past capacity the first occurrence may be one not remembered: ask the object.
                return object.get(key);
            }
            if matches(&member) {
                return Ok(Some(value));
            }
        }
        if self.count == N {
            return object.get(key);
        }
        Ok(None)
    }
}

/// A dotted path's first key and the rest, if any. A plain loop, not `split_once`: paths are a
/// few bytes, and every nested lookup of every rule splits one, where `memchr`'s set-up costs
/// more than the search.
fn split_path(path: &str) -> (&str, Option<&str>) {
    match path.bytes().position(|b| b == b'.') {
        Some(dot) => (&path[..dot], Some(&path[dot + 1..])),
        None => (path, None),
    }
}

/// The JSON type of a [`RawValue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl<'a> RawValue<'a> {
    /// The value exactly as it stands in the record.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn kind(&self) -> Kind {
        match self.bytes[0] {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b't' | b'f' => Kind::Bool,
            b'n' => Kind::Null,
            _ => Kind::Number,
        }
    }

    pub fn as_object(&self) -> Option<RawObject<'a>> {
        (self.kind() == Kind::Object).then_some(RawObject { bytes: self.bytes })
    }

    /// The string's text, borrowed unless it holds escapes. `Ok(None)` when not a string.
    pub fn as_str(&self) -> Result<Option<Cow<'a, str>>, ScanError> {
        if self.kind() != Kind::String {
            return Ok(None);
        }
        let inner = &self.bytes[1..self.bytes.len() - 1];
        if !holds_escape(inner) {
            return std::str::from_utf8(inner).map(|s| Some(Cow::Borrowed(s))).map_err(|_| ScanError::Malformed);
        }
        serde_json::from_slice::<String>(self.bytes).map(|s| Some(Cow::Owned(s))).map_err(|_| ScanError::Malformed)
    }

    /// A string's bytes between its quotes, where it holds no escape: its text as it stands,
    /// without the UTF-8 check of [`RawValue::as_str`]. `None` for other values.
    pub fn unescaped_string(&self) -> Option<&'a [u8]> {
        let inner = match self.bytes {
            [b'"', inner @ .., b'"'] => inner,
            _ => return None,
        };
        (!holds_escape(inner)).then_some(inner)
    }

    /// A scalar as Splunk would show it: strings unescaped, numbers and booleans as written.
    /// `Ok(None)` for null, objects and arrays.
    pub fn as_text(&self) -> Result<Option<Cow<'a, str>>, ScanError> {
        match self.kind() {
            Kind::String => self.as_str(),
            Kind::Number | Kind::Bool => {
                std::str::from_utf8(self.bytes).map(|s| Some(Cow::Borrowed(s))).map_err(|_| ScanError::Malformed)
            }
            Kind::Null | Kind::Object | Kind::Array => Ok(None),
        }
    }
}

/// Checks that `bytes` is one complete, valid JSON value with nothing but blanks after it, as
/// serde_json would (`IgnoredAny`: an escaped lone surrogate passes, as there), without its
/// generic machinery: a record a rule selects is validated whole, and under an interpreter the
/// strings, most of its bytes, must be stepped over a word at a time. Depth is a bit stack, not
/// recursion; it allocates only past 64 levels.
pub fn validate(bytes: &[u8]) -> Result<(), ScanError> {
    validate_noting_members(bytes, |_, _, _| {})
}

/// [`validate`], calling `member` with each member of the outermost object, in order: its raw
/// key, whether the key holds an escape, and its value.
fn validate_noting_members<'a>(bytes: &'a [u8], mut member: impl FnMut(&'a [u8], bool, &'a [u8])) -> Result<(), ScanError> {
    let mut nesting = Nesting::default();
    // The outermost object's member being read: its key, the key's escape flag, where its value starts.
    let mut pending: Option<(&'a [u8], bool, usize)> = None;
    let mut i = skip_ws(bytes, 0);
    'value: loop {
        // At the first byte of a value.
        match bytes.get(i) {
            None => return Err(ScanError::Truncated),
            Some(b'{') => {
                i = skip_ws(bytes, i + 1);
                if bytes.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    nesting.push(true);
                    i = enter_member(bytes, i, &nesting, &mut pending)?;
                    continue 'value;
                }
            }
            Some(b'[') => {
                i = skip_ws(bytes, i + 1);
                if bytes.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    nesting.push(false);
                    continue 'value;
                }
            }
            Some(b'"') => i = scan_string::<true>(bytes, i)?.0,
            Some(b't') => i = validate_literal(bytes, i, b"true")?,
            Some(b'f') => i = validate_literal(bytes, i, b"false")?,
            Some(b'n') => i = validate_literal(bytes, i, b"null")?,
            Some(b'-' | b'0'..=b'9') => i = validate_number(bytes, i)?,
            Some(_) => return Err(ScanError::Malformed),
        }
        // Just past a value: close what it ends, then expect the next member or element.
        loop {
            if nesting.depth == 1 {
                if let Some((key, escaped, start)) = pending.take() {
                    member(key, escaped, &bytes[start..i]);
                }
            }
            i = skip_ws(bytes, i);
            let Some(in_object) = nesting.top() else {
                return if i == bytes.len() { Ok(()) } else { Err(ScanError::Malformed) };
            };
            match (bytes.get(i), in_object) {
                (None, _) => return Err(ScanError::Truncated),
                (Some(b','), true) => {
                    i = enter_member(bytes, skip_ws(bytes, i + 1), &nesting, &mut pending)?;
                    continue 'value;
                }
                (Some(b','), false) => {
                    i = skip_ws(bytes, i + 1);
                    continue 'value;
                }
                (Some(b'}'), true) | (Some(b']'), false) => {
                    nesting.pop();
                    i += 1;
                }
                (Some(_), _) => return Err(ScanError::Malformed),
            }
        }
    }
}

/// Which containers enclose the validator's position: one bit each, set for an object.
#[derive(Default)]
struct Nesting {
    depth: usize,
    /// The innermost 64 levels.
    low: u64,
    /// Every further 64, outermost first.
    high: Vec<u64>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.high.push(self.low);
            self.low = 0;
        }
        self.low = (self.low << 1) | u64::from(object);
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth -= 1;
        self.low >>= 1;
        if self.depth > 0 && self.depth.is_multiple_of(64) {
            self.low = self.high.pop().expect("a word per 64 levels");
        }
    }

    /// Whether the innermost container is an object; `None` at the top level.
    fn top(&self) -> Option<bool> {
        (self.depth > 0).then_some(self.low & 1 == 1)
    }
}

/// `pos` is at a member's key (blanks before it skipped), in an object `nesting` deep; returns
/// the position of its value. A member of the outermost object becomes `pending`: its raw key,
/// whether the key holds an escape, and where its value starts. Inlined: out of line, the call
/// cost about a fifth of the validation under Fluent Bit's interpreter.
#[inline(always)]
fn enter_member<'a>(b: &'a [u8], pos: usize, nesting: &Nesting, pending: &mut Option<(&'a [u8], bool, usize)>) -> Result<usize, ScanError> {
    match b.get(pos) {
        None => return Err(ScanError::Truncated),
        Some(b'"') => {}
        Some(_) => return Err(ScanError::Malformed),
    }
    let (end, escaped) = scan_string::<true>(b, pos)?;
    let i = skip_ws(b, end);
    match b.get(i) {
        None => return Err(ScanError::Truncated),
        Some(b':') => {}
        Some(_) => return Err(ScanError::Malformed),
    }
    let value = skip_ws(b, i + 1);
    if nesting.depth == 1 {
        *pending = Some((&b[pos + 1..end - 1], escaped, value));
    }
    Ok(value)
}

fn validate_literal(b: &[u8], pos: usize, literal: &[u8]) -> Result<usize, ScanError> {
    let end = pos + literal.len();
    match b.get(pos..end.min(b.len())) {
        Some(have) if have == literal => Ok(end),
        Some(have) if literal.starts_with(have) => Err(ScanError::Truncated),
        _ => Err(ScanError::Malformed),
    }
}

/// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`. A number cut
/// short is malformed, not truncated, as serde_json has it.
fn validate_number(b: &[u8], pos: usize) -> Result<usize, ScanError> {
    let digits = |from: usize| -> Result<usize, ScanError> {
        match b.get(from..).map_or(0, |rest| rest.iter().take_while(|c| c.is_ascii_digit()).count()) {
            0 => Err(ScanError::Malformed),
            n => Ok(from + n),
        }
    };
    let mut i = pos + usize::from(b[pos] == b'-');
    i = match b.get(i) {
        // A leading zero stands alone.
        Some(b'0') if b.get(i + 1).is_some_and(u8::is_ascii_digit) => return Err(ScanError::Malformed),
        Some(b'0') => i + 1,
        _ => digits(i)?,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    Ok(i)
}

/// A member as [`Members::next_member`] reads it: raw key bytes, whether they hold an escape,
/// and the value.
type Member<'a> = (&'a [u8], bool, RawValue<'a>);

struct Members<'a> {
    bytes: &'a [u8],
    pos: usize,
    first: bool,
    done: bool,
}

impl<'a> Members<'a> {
    /// The next `(raw key bytes, whether they hold an escape, value)`, or `None` after the
    /// closing brace.
    fn next_member(&mut self) -> Result<Option<Member<'a>>, ScanError> {
        if self.done {
            return Ok(None);
        }
        let b = self.bytes;
        let mut pos = skip_ws(b, self.pos);
        match b.get(pos) {
            None => return Err(ScanError::Truncated),
            Some(b'}') => {
                self.done = true;
                return Ok(None);
            }
            Some(b',') if !self.first => pos = skip_ws(b, pos + 1),
            Some(_) if self.first => {}
            Some(_) => return Err(ScanError::Malformed),
        }
        self.first = false;
        if b.get(pos) != Some(&b'"') {
            return Err(if pos >= b.len() { ScanError::Truncated } else { ScanError::Malformed });
        }
        let (key_end, escaped) = scan_string::<false>(b, pos)?;
        let key = &b[pos + 1..key_end - 1];
        pos = skip_ws(b, key_end);
        match b.get(pos) {
            Some(b':') => {}
            None => return Err(ScanError::Truncated),
            Some(_) => return Err(ScanError::Malformed),
        }
        let value_start = skip_ws(b, pos + 1);
        let value_end = skip_value(b, value_start)?;
        self.pos = value_end;
        Ok(Some((key, escaped, RawValue { bytes: &b[value_start..value_end] })))
    }
}

/// Whether a raw key (the bytes between its quotes, escapes undecoded) spells `wanted`.
pub fn key_equals(raw: &[u8], wanted: &str) -> bool {
    // An escape spells a character in more bytes than it decodes to: only a raw key longer
    // than the wanted one can need decoding, and most keys differ in length, which costs nothing.
    match raw.len().cmp(&wanted.len()) {
        std::cmp::Ordering::Less => return false,
        std::cmp::Ordering::Equal => return raw == wanted.as_bytes() && !holds_escape(raw),
        std::cmp::Ordering::Greater if !holds_escape(raw) => return false,
        std::cmp::Ordering::Greater => {}
    }
    // An escaped key is rare enough to pay for a decode.
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice::<String>(&quoted).is_ok_and(|k| k == wanted)
}

#[inline(always)]
fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while let Some(c) = b.get(pos) {
        if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            break;
        }
        pos += 1;
    }
    pos
}

/// `pos` is at an opening quote; returns the index just past the closing quote.
///
/// Most of a record's bytes are inside strings, and under an interpreter (Fluent Bit's WAMR)
/// every instruction per byte shows, so plain stretches are stepped over eight bytes at a time.
fn skip_string(b: &[u8], pos: usize) -> Result<usize, ScanError> {
    scan_string::<false>(b, pos).map(|(end, _)| end)
}

/// `pos` is at an opening quote; returns the index just past the closing quote and whether the
/// string holds an escape. `VALIDATE` also checks each escape and, where a byte is not ASCII,
/// UTF-8; without it an escape is stepped over unread.
#[inline(always)]
fn scan_string<const VALIDATE: bool>(b: &[u8], pos: usize) -> Result<(usize, bool), ScanError> {
    let flags = |word: u64| string_specials(word) | if VALIDATE { word & HIGHS } else { 0 };
    let mut ascii = true;
    let mut escaped = false;
    let mut i = pos + 1;
    loop {
        i = skip_unflagged(b, i, flags);
        match b.get(i) {
            None => return Err(ScanError::Truncated),
            Some(b'"') => break,
            Some(b'\\') if !VALIDATE => {
                escaped = true;
                i += 2;
            }
            Some(b'\\') => {
                escaped = true;
                match b.get(i + 1) {
                    None => return Err(ScanError::Truncated),
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => match b.get(i + 2..i + 6) {
                        None => return Err(ScanError::Truncated),
                        Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i += 6,
                        Some(_) => return Err(ScanError::Malformed),
                    },
                    Some(_) => return Err(ScanError::Malformed),
                }
            }
            Some(c) if *c < 0x20 => return Err(ScanError::Malformed),
            Some(_) => {
                ascii = false;
                i += 1;
            }
        }
    }
    if VALIDATE && !ascii && std::str::from_utf8(&b[pos + 1..i]).is_err() {
        return Err(ScanError::Malformed);
    }
    Ok((i + 1, escaped))
}

/// From `i`, steps eight bytes at a time over words in which `flags` marks no byte; returns the
/// index of the lowest marked byte, or of the first byte of a tail shorter than a word.
fn skip_unflagged(b: &[u8], mut i: usize, flags: impl Fn(u64) -> u64) -> usize {
    while let Some(word) = b.get(i..i + 8) {
        let found = flags(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        if found != 0 {
            // The lowest flagged byte is exact (borrows only run towards higher bytes).
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each zero byte of `word`; exact for the lowest.
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// The high bit of each byte of `word` that is `byte`; exact for the lowest.
fn bytes_of(word: u64, byte: u8) -> u64 {
    zero_bytes(word ^ (ONES * u64::from(byte)))
}

/// The high bit of each byte of `word` that ends or escapes a string (`"`, `\\`) or cannot
/// stand in one (a control byte); exact for the lowest such byte.
fn string_specials(word: u64) -> u64 {
    bytes_of(word, b'"') | bytes_of(word, b'\\') | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
}

/// Whether a string's bytes between its quotes (or a raw key) hold a backslash: a word at a
/// time, as the scans step over strings. Every field a rule reads asks, and the slice search of
/// the standard library costs more in set-up than these few words.
#[allow(clippy::manual_contains)] // the tail is a few bytes: `contains` is that slice search
fn holds_escape(inner: &[u8]) -> bool {
    let i = skip_unflagged(inner, 0, |word| bytes_of(word, b'\\'));
    inner[i..].iter().any(|&b| b == b'\\')
}

/// `pos` is at the first byte of a value; returns the index just past it.
fn skip_value(b: &[u8], pos: usize) -> Result<usize, ScanError> {
    match b.get(pos) {
        None => Err(ScanError::Truncated),
        Some(b'"') => skip_string(b, pos),
        Some(b'{') | Some(b'[') => skip_container(b, pos),
        Some(c) if c.is_ascii_digit() || matches!(c, b'-' | b't' | b'f' | b'n') => {
            let mut i = pos;
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                i += 1;
            }
            if i == b.len() {
                return Err(ScanError::Truncated);
            }
            let token = &b[pos..i];
            let plausible = match c {
                b't' => token == b"true",
                b'f' => token == b"false",
                b'n' => token == b"null",
                _ => token.iter().all(|d| matches!(d, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')),
            };
            if plausible {
                Ok(i)
            } else {
                Err(ScanError::Malformed)
            }
        }
        Some(_) => Err(ScanError::Malformed),
    }
}

/// Steps over an object or array by tracking nesting depth; strings are skipped whole so their
/// brackets do not count. Byte by byte between strings: in JSON the stretch from one string to
/// the next is a byte or two (`":"`), too short for a word-at-a-time step to pay.
fn skip_container(b: &[u8], pos: usize) -> Result<usize, ScanError> {
    let mut stack_depth: usize = 0;
    let mut i = pos;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = skip_string(b, i)?;
                continue;
            }
            b'{' | b'[' => stack_depth += 1,
            b'}' | b']' => {
                stack_depth -= 1;
                if stack_depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(ScanError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"userIdentity":{"type":"AWSService","note":"}{\"x"},"eventName":"JobCreated",
        "n":12.5,"ok":true,"list":[1,[2,{"a":"]"}]],"serviceEventDetails":{"jobArn":"arn:x","status":"New"}}"#;

    #[test]
    fn holds_escape_finds_a_backslash_anywhere() {
        for len in 0..24 {
            let plain = vec![b'a'; len];
            assert!(!holds_escape(&plain));
            for at in 0..len {
                let mut escaped = plain.clone();
                escaped[at] = b'\\';
                assert!(holds_escape(&escaped), "{len} {at}");
                // Bytes that differ from a backslash by one bit are not one.
                escaped[at] = b'\\' ^ 1;
                assert!(!holds_escape(&escaped), "{len} {at}");
            }
        }
    }

    #[test]
    fn text_of_a_validated_record_reads_as_as_text_does() {
        let record = r#"{"a":"caf\u00e9","b":"plain é","n":-1.5e3,"t":true,"z":null,"o":{"k":"v"}}"#.as_bytes();
        let other = ScannedObject::validated(br#"{"a":"elsewhere"}"#).unwrap();
        for scanned in [ScannedObject::new(RawObject::new(record).unwrap()), ScannedObject::validated(record).unwrap()] {
            for path in ["a", "b", "n", "t", "z", "o", "o.k"] {
                let value = scanned.get_path(path).unwrap().unwrap();
                assert_eq!(scanned.text_of(value).unwrap(), value.as_text().unwrap(), "{path}");
                // A value of another record is read as `as_text` reads it.
                assert_eq!(other.text_of(value).unwrap(), value.as_text().unwrap(), "{path}");
            }
        }
        let unchecked = ScannedObject::new(RawObject::new(b"{\"a\":\"\xff\"}").unwrap());
        assert_eq!(unchecked.text_of(unchecked.get("a").unwrap().unwrap()), Err(ScanError::Malformed));
    }

    #[test]
    fn finds_top_level_and_nested_values() {
        let obj = RawObject::new(RECORD.as_bytes()).unwrap();
        let [name, missing] = obj.get_many(["eventName", "nope"]).unwrap();
        assert_eq!(name.unwrap().as_str().unwrap().unwrap(), "JobCreated");
        assert!(missing.is_none());
        let arn = obj.get_path("serviceEventDetails.jobArn").unwrap().unwrap();
        assert_eq!(arn.as_str().unwrap().unwrap(), "arn:x");
        assert_eq!(obj.get("n").unwrap().unwrap().as_text().unwrap().unwrap(), "12.5");
        assert_eq!(obj.get("ok").unwrap().unwrap().as_text().unwrap().unwrap(), "true");
        assert!(obj.get_path("eventName.deeper").unwrap().is_none());
    }

    #[test]
    fn a_scanned_object_answers_like_the_record_in_any_order() {
        let obj = RawObject::new(RECORD.as_bytes()).unwrap();
        for scanned in [ScannedObject::new(obj), ScannedObject::validated(RECORD.as_bytes()).unwrap()] {
            for key in ["list", "eventName", "userIdentity", "nope", "n", "eventName"] {
                assert_eq!(scanned.get(key).unwrap().map(|v| v.bytes()), obj.get(key).unwrap().map(|v| v.bytes()), "{key}");
            }
        }
        let scanned = ScannedObject::new(obj);
        assert_eq!(scanned.get_path("serviceEventDetails.status").unwrap().unwrap().bytes(), b"\"New\"");
        // Past its capacity it still answers (by scanning again), first occurrence first.
        let mut wide = String::from("{");
        for i in 0..40 {
            wide.push_str(&format!("\"k{i}\":{i},"));
        }
        wide.push_str("\"k39\":\"again\",\"last\":true}");
        let wide_obj = RawObject::new(wide.as_bytes()).unwrap();
        for scanned in [ScannedObject::new(wide_obj), ScannedObject::validated(wide.as_bytes()).unwrap()] {
            for key in ["k35", "k2", "last", "k39", "missing"] {
                assert_eq!(scanned.get(key).unwrap().map(|v| v.bytes()), wide_obj.get(key).unwrap().map(|v| v.bytes()), "{key}");
            }
        }
        // Validated means the whole record: a broken tail is found before any lookup.
        assert_eq!(ScannedObject::validated(br#"{"eventName":"X","a":[1,}"#).err(), Some(ScanError::Malformed));
        assert_eq!(ScannedObject::validated(b"[1]").err(), Some(ScanError::NotAnObject));
    }

    #[test]
    fn nested_paths_answer_like_the_record_past_every_kept_scan() {
        // More nested objects than scans are kept, one wider than a kept scan remembers, a
        // repeated key (the first answers), an escaped key, and a path through a non-object.
        let mut record = String::from(r#"{"top":1"#);
        for o in 0..NESTED_OBJECTS + 2 {
            record.push_str(&format!(r#","o{o}":{{"inner":{{"leaf":"v{o}"}},"#));
            for k in 0..REMEMBERED_NESTED + 3 {
                record.push_str(&format!(r#""k{k}":{k},"#));
            }
            record.push_str(r#""k2":"again","t\u0079pe":"Root","s":"x"}"#);
        }
        record.push('}');
        let plain = RawObject::new(record.as_bytes()).unwrap();
        let mut paths = Vec::new();
        for o in 0..NESTED_OBJECTS + 2 {
            for key in ["inner.leaf", "k2", "type", "k0", "missing", "s.deeper", "inner.nope"] {
                paths.push(format!("o{o}.{key}"));
            }
            paths.push(format!("o{o}.k{}", REMEMBERED_NESTED + 2));
        }
        let scanned = ScannedObject::validated(record.as_bytes()).unwrap();
        // Every path twice, in an order that cycles the kept scans.
        for path in paths.iter().chain(paths.iter().rev()) {
            assert_eq!(scanned.get_path(path).unwrap().map(|v| v.bytes()), plain.get_path(path).unwrap().map(|v| v.bytes()), "{path}");
        }
        assert_eq!(scanned.get_path("o1.k2").unwrap().map(|v| v.bytes()), Some(&b"2"[..]));
        assert_eq!(scanned.get_path("o1.type").unwrap().map(|v| v.bytes()), Some(&b"\"Root\""[..]));
    }

    #[test]
    fn a_scanned_object_finds_escaped_keys_and_reads_no_further_than_it_must() {
        let escaped = br#"{"a":1,"error\u0043ode":"AccessDenied","eventName":"X"}"#;
        let o = ScannedObject::new(RawObject::new(escaped).unwrap());
        assert_eq!(o.get("errorCode").unwrap().map(|v| v.bytes()), Some(&b"\"AccessDenied\""[..]));
        assert_eq!(o.get("error\\u0043ode").unwrap().map(|v| v.bytes()), None);
        // Read to its end, an object answers a key it lacks from the tags of the keys it has;
        // one with an escape may equal any key, and keeps it from answering so.
        let o = ScannedObject::validated(br#"{"a":1,"error\u0043ode":"AccessDenied","z":2}"#).unwrap();
        for _ in 0..2 {
            assert_eq!(o.get("errorCode").unwrap().map(|v| v.bytes()), Some(&b"\"AccessDenied\""[..]));
            assert_eq!(o.get("z").unwrap().map(|v| v.bytes()), Some(&b"2"[..]));
            assert_eq!(o.get("errorMessage").unwrap().map(|v| v.bytes()), None);
        }
        // Keys before the one asked for are read; a broken tail after it is not (the engine
        // validates a record in full before any detection's state takes it).
        let cut = br#"{"eventName":"Decrypt","requestParameters":{"keyId":"k"#;
        let o = ScannedObject::new(RawObject::new(cut).unwrap());
        assert!(o.get("eventName").unwrap().is_some());
        assert_eq!(o.get("errorCode").err(), Some(ScanError::Truncated));
    }

    #[test]
    fn escapes_are_decoded() {
        let obj = RawObject::new(br#"{"event\u004eame":"Job\u0043reated"}"#).unwrap();
        let v = obj.get("eventName").unwrap().unwrap();
        assert_eq!(v.as_str().unwrap().unwrap(), "JobCreated");
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert_eq!(RawObject::new(b"[1,2]").unwrap_err(), ScanError::NotAnObject);
        assert_eq!(RawObject::new(b"  ").unwrap_err(), ScanError::Truncated);
        let truncated = RawObject::new(br#"{"a":{"b":[1,2"#).unwrap();
        assert_eq!(truncated.get("z").unwrap_err(), ScanError::Truncated);
        let bad = RawObject::new(br#"{"a" 1}"#).unwrap();
        assert_eq!(bad.get("z").unwrap_err(), ScanError::Malformed);
        let bad_utf8 = RawObject::new(b"{\"eventName\":\"\xff\"}").unwrap();
        assert_eq!(bad_utf8.get("eventName").unwrap().unwrap().as_str().unwrap_err(), ScanError::Malformed);
    }

    #[test]
    fn strings_are_skipped_word_by_word_exactly() {
        // Every special byte at every offset of a word, with plain bytes around it.
        for len in 0..20 {
            for (special, expected) in [(b'"', Ok(len + 2)), (b'\n', Err(ScanError::Malformed)), (0x1f, Err(ScanError::Malformed))] {
                let mut s = vec![b'"'];
                s.extend(std::iter::repeat_n(b'a', len));
                s.push(special);
                s.extend_from_slice(b"bbbbbbbbb\"");
                assert_eq!(skip_string(&s, 0), expected, "len {len}, byte {special:#x}");
            }
            let mut escaped = vec![b'"'];
            escaped.extend(std::iter::repeat_n(b'a', len));
            escaped.extend_from_slice(b"\\\"cc\"");
            assert_eq!(skip_string(&escaped, 0), Ok(escaped.len()), "escaped quote after {len}");
            let mut high = vec![b'"'];
            high.extend(std::iter::repeat_n(0xc3u8, len));
            high.extend_from_slice(b"\xa9\xff\x80\"");
            assert_eq!(skip_string(&high, 0), Ok(high.len()), "bytes >= 0x80 after {len}");
            let truncated = [b"\"".as_slice(), &vec![b'x'; len]].concat();
            assert_eq!(skip_string(&truncated, 0), Err(ScanError::Truncated));
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        // Strings full of what a scanner can trip on: quotes, backslashes, controls, brackets,
        // non-ASCII, at every length around the eight-byte word.
        let text = || proptest::string::string_regex("[a-z\"\\\\{}\\[\\]:,\\x00-\\x1f\u{e9}\u{1f600} ]{0,40}").unwrap();
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(text(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Every top-level member reads back as exactly the value serde_json wrote.
        #[test]
        fn reads_what_serde_json_writes(members in proptest::collection::btree_map("[a-zA-Z\"\\\\]{1,12}", json_value(), 1..8)) {
            let text = serde_json::to_vec(&members).unwrap();
            let object = RawObject::new(&text).unwrap();
            for (key, value) in &members {
                let raw = object.get(key).unwrap().unwrap_or_else(|| panic!("{key} not found"));
                let parsed: serde_json::Value = serde_json::from_slice(raw.bytes()).unwrap();
                proptest::prop_assert_eq!(&parsed, value);
            }
            proptest::prop_assert!(object.get("no such key").unwrap().is_none());
        }
    }

    /// serde_json's verdict, which [`validate`] must give. One deliberate difference: serde_json
    /// skips strings without checking UTF-8, and `validate` holds a record to JSON's UTF-8.
    fn serde_verdict(bytes: &[u8]) -> Result<(), ScanError> {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map(|_| ())
            .map_err(|e| if e.is_eof() { ScanError::Truncated } else { ScanError::Malformed })
    }

    fn expected_verdict(bytes: &[u8], verdict: Result<(), ScanError>) -> bool {
        match std::str::from_utf8(bytes) {
            Ok(_) => verdict == serde_verdict(bytes),
            Err(_) => verdict.is_err(),
        }
    }

    proptest::proptest! {
        /// Valid JSON, and the same cut short or with a byte changed, inserted or dropped
        /// anywhere: the verdict is serde_json's, malformed and truncated alike.
        #[test]
        fn validates_as_serde_json_does(
            value in json_value(),
            edit in 0usize..4,
            at in proptest::num::usize::ANY,
            byte in proptest::prop_oneof![
                proptest::sample::select(b"{}[]:,\"\\/ ubfnrt0123456789eE+-.xlsa\t\n\x01\x7f".to_vec()),
                proptest::num::u8::ANY,
            ],
        ) {
            let mut text = serde_json::to_vec(&value).unwrap();
            let at = at % (text.len() + 1);
            match edit {
                0 => {}
                1 => text.truncate(at),
                2 => text.insert(at, byte),
                _ if at < text.len() => text[at] = byte,
                _ => {}
            }
            proptest::prop_assert!(expected_verdict(&text, validate(&text)), "{} gave {:?}", String::from_utf8_lossy(&text), validate(&text));
        }
    }

    #[test]
    fn validates_numbers_literals_escapes_and_blanks_as_serde_json_does() {
        let cases: &[&[u8]] = &[
            b"0", b"-0", b"01", b"-", b"1.", b"1.5e", b"1e+", b"1E-7", b"-12.25e+3", b".5", b"+1", b"1.x",
            b"tru", b"true", b"truex", b"nul", b"nulll", b"f", b"falsey",
            br#""\u12""#, br#""\u12g4""#, br#""\ud800""#, br#""\q""#, br#""\"#, b"\"\xff\"", b"\"\xc3\xa9\"", b"\"\xed\xa0\x80\"",
            b" {\"a\" : [ 1 , 2 ] } ", b"{\"a\":1,}", b"[1,]", b"{,}", b"[", b"{\"a\"", b"{\"a\":", b"{}x", b"[]]", b"{\"a\":1 \"b\":2}",
            b"", b"  ", b"{\"a\":\"b\"}\x00",
        ];
        for case in cases {
            assert!(expected_verdict(case, validate(case)), "{} gave {:?}", String::from_utf8_lossy(case), validate(case));
        }
        assert_eq!(validate(b"\"\xff\""), Err(ScanError::Malformed));
        let deep = [b"[".repeat(200), b"{\"a\":".repeat(200)].concat();
        assert_eq!(validate(&deep), serde_verdict(&deep));
        let closed = [b"[".repeat(130), b"]".repeat(130)].concat();
        assert_eq!(validate(&closed), Ok(()));
        let mismatched = [b"[".repeat(70), b"{}".to_vec(), b"]".repeat(69), b"}".to_vec()].concat();
        assert_eq!(validate(&mismatched), Err(ScanError::Malformed));
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        let depth = 100_000;
        let mut s = String::from("{\"deep\":");
        s.push_str(&"[".repeat(depth));
        s.push_str(&"]".repeat(depth));
        s.push_str(",\"eventName\":\"X\"}");
        let obj = RawObject::new(s.as_bytes()).unwrap();
        assert_eq!(obj.get("eventName").unwrap().unwrap().as_str().unwrap().unwrap(), "X");
        assert_eq!(validate(s.as_bytes()), Ok(()));
        assert_eq!(validate(&s.as_bytes()[..s.len() - 1]), Err(ScanError::Truncated));
    }
}
