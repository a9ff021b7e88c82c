//! A rule's regex: `regex-lite` (a fraction of `regex`'s size in the module) behind a literal
//! prefilter. `regex-lite` has no literal optimizations, so an unanchored pattern such as
//! `.+:assumed-role/aws:.+` runs its whole automaton over every value it is asked about, and a
//! rule that reads every record pays that on every record. Most such patterns name a literal
//! that any match must contain; a value without it is answered by a substring search instead.

use regex_lite::{Captures, Regex};

#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
    /// A literal every match contains, when the pattern shows one for certain.
    required: Option<Box<str>>,
}

impl Pattern {
    pub fn new(pattern: &str) -> Result<Pattern, String> {
        let regex = Regex::new(pattern).map_err(|e| format!("regex {pattern:?}: {e}"))?;
        Ok(Pattern { regex, required: required_literal(pattern).map(String::into_boxed_str) })
    }

    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    fn may_match(&self, text: &str) -> bool {
        self.required.as_deref().is_none_or(|literal| text.contains(literal))
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.may_match(text) && self.regex.is_match(text)
    }

    pub fn captures<'t>(&self, text: &'t str) -> Option<Captures<'t>> {
        self.may_match(text).then(|| self.regex.captures(text)).flatten()
    }

    pub fn capture_names(&self) -> impl Iterator<Item = Option<&str>> {
        self.regex.capture_names()
    }
}

/// The longest run of literal characters that stands at the top level of `pattern`, outside any
/// group, class or alternation and not made optional by a quantifier: every match contains it.
/// `None` where that is not certain: an alternation at the top, or inline flags (`(?i)` changes
/// what a literal matches, `(?x)` what a space means).
fn required_literal(pattern: &str) -> Option<String> {
    let mut best = String::new();
    let mut run = String::new();
    let mut end_run = |run: &mut String| {
        if run.chars().count() > best.chars().count() {
            best = std::mem::take(run);
        }
        run.clear();
    };
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) if escaped.is_ascii_punctuation() || escaped == ' ' => run.push(escaped),
                _ => end_run(&mut run),
            },
            '[' => {
                skip_class(&mut chars);
                end_run(&mut run);
            }
            '(' => {
                if chars.peek() == Some(&'?') {
                    let mut ahead = chars.clone();
                    ahead.next();
                    match (ahead.next(), ahead.next()) {
                        (Some(':' | '<'), _) | (Some('P'), Some('<')) => {}
                        _ => return None,
                    }
                }
                skip_group(&mut chars)?;
                end_run(&mut run);
            }
            '|' | ')' => return None,
            '.' | '^' | '$' => end_run(&mut run),
            // A quantifier, or a chain of them (`a+?*` is `(a+?)*`; a `?` right after one makes
            // it lazy): the atom before it is in every match only if each says one or more, and
            // what follows need not be next to it either way.
            '?' | '*' | '{' | '+' => {
                let mut once = true;
                let mut quantifier = Some(c);
                while let Some(q) = quantifier {
                    match q {
                        '+' => {}
                        '{' => {
                            chars.find(|&c| c == '}');
                            once = false;
                        }
                        _ => once = false,
                    }
                    chars.next_if_eq(&'?');
                    quantifier = chars.next_if(|c| matches!(c, '?' | '*' | '{' | '+'));
                }
                if !once {
                    run.pop();
                }
                end_run(&mut run);
            }
            c => run.push(c),
        }
    }
    end_run(&mut run);
    (!best.is_empty()).then_some(best)
}

/// Past a class's closing `]` (the opening one read already).
fn skip_class(chars: &mut impl Iterator<Item = char>) {
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => skip_class(chars),
            // A `]` first in a class (after an optional `^`) is a literal one.
            ']' if !first => return,
            _ => {}
        }
        first = first && c == '^';
    }
}

/// Past a group's closing `)` (the opening one read already); `None` if a group inside sets
/// flags, which this does not follow.
fn skip_group(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<()> {
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => skip_class(chars),
            '(' => skip_group(chars)?,
            ')' => return Some(()),
            _ => {}
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_the_literal_every_match_contains() {
        let required = |p: &str| required_literal(p);
        assert_eq!(required(".+:assumed-role/aws:.+").as_deref(), Some(":assumed-role/aws:"));
        assert_eq!(required(r"^arn:aws:iam::\d+:role/.*").as_deref(), Some("arn:aws:iam::"));
        assert_eq!(required(r"s3\.amazonaws\.com").as_deref(), Some("s3.amazonaws.com"));
        assert_eq!(required("abc?d").as_deref(), Some("ab"));
        assert_eq!(required("ab+cd").as_deref(), Some("ab"));
        assert_eq!(required("ab+cde").as_deref(), Some("cde"));
        assert_eq!(required("x(?<who>[a-z]+)yz$").as_deref(), Some("yz"));
        assert_eq!(required("[]abc]de").as_deref(), Some("de"));
        assert_eq!(required("a{2,3}bc").as_deref(), Some("bc"));
        assert_eq!(required("ab+?c").as_deref(), Some("ab"));
        // A repetition repeated again may be absent: `b+?*` is `(b+?)*`.
        assert_eq!(required("ab+?*c").as_deref(), Some("a"));
        assert_eq!(required("a+?*"), None);
        assert_eq!(required(r"x\.++?*"), Some("x".into()));
        // Alternation and flags: nothing is certain.
        assert_eq!(required("abc|de"), None);
        assert_eq!(required("(?i)abc"), None);
        assert_eq!(required("x(?i:abc)"), None);
        assert_eq!(required(r"\d+"), None);
    }

    #[test]
    fn the_prefilter_answers_without_the_automaton_and_captures_still_work() {
        let p = Pattern::new("(?<who>[a-z]+):assumed-role").unwrap();
        assert!(!p.is_match("arn:aws:iam::1:user/bob"));
        assert!(p.is_match("arn:aws:sts::acct:assumed-role/x"));
        assert_eq!(&p.captures("sts:assumed-role").unwrap()["who"], "sts");
        assert!(p.captures("nothing here").is_none());
    }

    /// Patterns built from the constructs the scan reads, over a small alphabet, so that
    /// matches are common.
    fn pattern() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "a", "b", ":", "/", ".", "*", "+", "?", "|", "(", ")", "[ab]", "[^a]", r"\.", r"\d", "(?:", "(?<n>", "(?i)", "{1,2}", "^", "$",
            "+?", "[]a]",
        ]);
        prop::collection::vec(token, 1..10).prop_map(|t| t.concat())
    }

    proptest! {
        #[test]
        fn the_prefilter_never_changes_an_answer(pattern in pattern(), texts in prop::collection::vec("[ab:/.1A]{0,12}", 1..8)) {
            let Ok(regex) = Regex::new(&pattern) else { return Ok(()) };
            let filtered = Pattern::new(&pattern).unwrap();
            for text in &texts {
                prop_assert_eq!(filtered.is_match(text), regex.is_match(text), "pattern {:?} text {:?}", pattern, text);
            }
        }
    }
}
