//! SPL text to tokens: the pipe split and the two token grammars SPL mixes.
//!
//! A search is split on `|` outside quotes first. Each command's arguments are then read with
//! one of two grammars, as Splunk does: the *search* grammar (the base search, `search`, and the
//! arguments of `stats`, `rename`, `table`, ...), where a word runs up to whitespace or one of
//! `= != < > ( ) , "`, so `requestParameters.x-amz-grant-read{}` or `*.amazonaws.com` is one
//! word; and the *eval* grammar (`eval`, `where`), where a word is only letters, digits and `_`,
//! so `.`, `-`, `*` are operators and `userIdentity.userName` is three tokens. Every token knows
//! whether whitespace came before it, which the linter needs to tell `a.b` from `a . b`.

use std::fmt;

/// One token of either grammar.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An unquoted word (search grammar) or identifier/number (eval grammar).
    Word(String),
    /// A double-quoted string, unescaped (`\"` and `\\`; other backslashes kept).
    Quoted(String),
    /// A single-quoted string: a field name in eval, literal text in search.
    Single(String),
    /// An operator or punctuation: `= == != < <= > >= ( ) , + - * / % .`
    Op(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "{w}"),
            Tok::Quoted(s) => write!(f, "\"{s}\""),
            Tok::Single(s) => write!(f, "'{s}'"),
            Tok::Op(o) => write!(f, "{o}"),
        }
    }
}

/// A token with whether whitespace preceded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub space_before: bool,
}

/// Which word grammar to read a command's arguments with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Search,
    Eval,
}

/// Tracks whether a scan is inside a quoted string (`"..."` with `\\` escapes, or `'...'`).
#[derive(Default)]
struct Quotes {
    quote: Option<char>,
    escaped: bool,
}

impl Quotes {
    /// Takes the next character; true when it is part of a quoted string (quotes included).
    fn inside(&mut self, c: char) -> bool {
        match self.quote {
            Some(q) => {
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' && q == '"' {
                    self.escaped = true;
                } else if c == q {
                    self.quote = None;
                }
                true
            }
            None if c == '"' || c == '\'' => {
                self.quote = Some(c);
                true
            }
            None => false,
        }
    }
}

/// Splits a search into its pipe segments (`|` outside quotes and outside `[...]`, so a
/// subsearch stays inside the segment of the command that has it).
pub fn split_pipes(text: &str) -> Result<Vec<String>, String> {
    let mut segments = vec![String::new()];
    let mut quotes = Quotes::default();
    let mut depth = 0usize;
    for c in text.chars() {
        if !quotes.inside(c) {
            match c {
                '|' if depth == 0 => {
                    segments.push(String::new());
                    continue;
                }
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        segments.last_mut().expect("never empty").push(c);
    }
    if quotes.quote.is_some() {
        return Err("unterminated quoted string".into());
    }
    if depth > 0 {
        return Err("unterminated subsearch `[`".into());
    }
    Ok(segments.into_iter().map(|s| s.trim().to_string()).collect())
}

/// Whether a segment has a subsearch: an unquoted `[`.
pub fn has_subsearch(text: &str) -> bool {
    let mut quotes = Quotes::default();
    text.chars().any(|c| !quotes.inside(c) && c == '[')
}

const SEARCH_BREAK: &[char] = &['=', '<', '>', '(', ')', ',', '"'];

/// Reads a command's argument text into tokens with the given grammar.
pub fn tokenize(text: &str, mode: Mode) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut space_before = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            space_before = true;
            i += 1;
            continue;
        }
        let start = i;
        let tok = if c == '"' || (c == '\'' && mode == Mode::Eval) {
            let (s, next) = read_quoted(&chars, i)?;
            i = next;
            if c == '"' {
                Tok::Quoted(s)
            } else {
                Tok::Single(s)
            }
        } else if let Some((op, len)) = operator(&chars[i..], mode) {
            i += len;
            Tok::Op(op)
        } else {
            let word_char = |ch: char| match mode {
                Mode::Search => !ch.is_whitespace() && !SEARCH_BREAK.contains(&ch),
                Mode::Eval => ch.is_alphanumeric() || ch == '_',
            };
            let mut word = String::new();
            while i < chars.len() && word_char(chars[i]) {
                // `!=` ends a search word: `userAgent!=x`.
                if mode == Mode::Search && chars[i] == '!' && chars.get(i + 1) == Some(&'=') {
                    break;
                }
                word.push(chars[i]);
                i += 1;
            }
            // A number in eval: digits with one decimal point (`1.5`), never `a.b`.
            if mode == Mode::Eval
                && word.chars().all(|ch| ch.is_ascii_digit())
                && !word.is_empty()
                && chars.get(i) == Some(&'.')
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            {
                word.push('.');
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    word.push(chars[i]);
                    i += 1;
                }
            }
            if word.is_empty() {
                return Err(format!("unexpected character `{}`", chars[start]));
            }
            Tok::Word(word)
        };
        out.push(Token { tok, space_before });
        space_before = false;
    }
    Ok(out)
}

fn operator(rest: &[char], mode: Mode) -> Option<(&'static str, usize)> {
    let two: String = rest.iter().take(2).collect();
    let two_ops: &[&'static str] = &["==", "!=", "<=", ">="];
    if let Some(op) = two_ops.iter().find(|op| **op == two) {
        return Some((op, 2));
    }
    let one: &[&'static str] = match mode {
        Mode::Search => &["=", "<", ">", "(", ")", ","],
        Mode::Eval => &["=", "<", ">", "(", ")", ",", "+", "-", "*", "/", "%", "."],
    };
    let first = rest.first()?.to_string();
    one.iter().find(|op| **op == first).map(|op| (*op, 1))
}

/// Reads a quoted string starting at `chars[start]` (the quote); returns it unescaped and the
/// index after the closing quote. Splunk unescapes `\"` and `\\` and keeps other backslashes,
/// so `"\d+"` is the regex `\d+`.
fn read_quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let q = chars[start];
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && q == '"' {
            match chars.get(i + 1) {
                Some(&'"') => {
                    s.push('"');
                    i += 2;
                    continue;
                }
                Some(&'\\') => {
                    s.push('\\');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        if c == q {
            return Ok((s, i + 1));
        }
        s.push(c);
        i += 1;
    }
    Err("unterminated quoted string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str, mode: Mode) -> Vec<Tok> {
        tokenize(text, mode).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn pipes_split_outside_quotes_only() {
        let parts = split_pipes(r#"a="x|y" | stats count | where b="\"|""#).unwrap();
        assert_eq!(parts, vec![r#"a="x|y""#, "stats count", r#"where b="\"|""#]);
    }

    #[test]
    fn a_subsearch_stays_in_its_segment() {
        let parts = split_pipes("a=1 | join x [search b=2 | stats count] | table x").unwrap();
        assert_eq!(parts, vec!["a=1", "join x [search b=2 | stats count]", "table x"]);
        assert!(has_subsearch(&parts[1]));
        assert!(!has_subsearch(r#"userAgent="[aws-cli*""#));
    }

    #[test]
    fn search_words_keep_dots_stars_and_braces() {
        assert_eq!(
            toks("requestParameters.items{}.userId!=*.amazonaws.com x IN (a,\"b c\")", Mode::Search),
            vec![
                Tok::Word("requestParameters.items{}.userId".into()),
                Tok::Op("!="),
                Tok::Word("*.amazonaws.com".into()),
                Tok::Word("x".into()),
                Tok::Word("IN".into()),
                Tok::Op("("),
                Tok::Word("a".into()),
                Tok::Op(","),
                Tok::Quoted("b c".into()),
                Tok::Op(")"),
            ]
        );
    }

    #[test]
    fn eval_words_split_on_dots_but_numbers_keep_theirs() {
        let t = tokenize("userIdentity.userName . 'a.b' + 1.5", Mode::Eval).unwrap();
        let kinds: Vec<_> = t.iter().map(|t| (t.tok.clone(), t.space_before)).collect();
        assert_eq!(
            kinds,
            vec![
                (Tok::Word("userIdentity".into()), false),
                (Tok::Op("."), false),
                (Tok::Word("userName".into()), false),
                (Tok::Op("."), true),
                (Tok::Single("a.b".into()), true),
                (Tok::Op("+"), true),
                (Tok::Word("1.5".into()), true),
            ]
        );
    }

    #[test]
    fn quoted_strings_unescape_quotes_and_backslashes_only() {
        assert_eq!(toks(r#""a\"b\\c\d""#, Mode::Eval), vec![Tok::Quoted(r#"a"b\c\d"#.into())]);
    }
}
