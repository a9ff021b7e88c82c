//! Splunk's regexes (PCRE, in `rex` and `match()`) in the engine's syntax (`regex_lite`).
//!
//! The two agree on most of the syntax; where a pattern means something else to `regex_lite`, it
//! is rewritten so that it matches what PCRE matches, and where `regex_lite` cannot say it at all
//! the pattern is refused with the reason:
//! - `{` and `}` outside a counted repetition (`{n}`, `{n,}`, `{n,m}`) are literal in PCRE and
//!   errors or repetitions to `regex_lite`: escaped. `{,m}`, a repetition only in PCRE2 10.43 and
//!   later, is refused.
//! - `\<` and `\>` are literal in PCRE and word boundaries to `regex_lite`; `\e` is ESC; a
//!   non-ASCII escaped character is itself; `\b` in a class is a backspace.
//! - `(?'name'...)` and `(?P<name>...)` become `(?<name>...)`; `(?#...)` comments go. Group names
//!   are PCRE's: a letter or `_`, then letters, digits and `_`.
//! - In a class, `[` (outside a POSIX class `[:alpha:]`), `&`, `~` and a `-` that is no range
//!   operator are literal in PCRE and may be nesting or set operators (`&&`, `--`, `~~`) to
//!   `regex_lite`: escaped.
//! - `$` (without `(?m)`) also matches before a newline that ends the text in PCRE: as the last
//!   item of the pattern outside any group it becomes `\n?\z` (the same test; only the whole
//!   match's extent differs, which neither `rex` nor `match()` shows); elsewhere it is refused.
//! - Refused: lookaround, atomic groups, possessive quantifiers, backreferences, recursion,
//!   conditionals, `\K \G \Q \R \X \h \v \p ...`, and inline options other than `i`, `s`, `U`.
//!
//! Case-insensitive matching folds ASCII letters only in `regex_lite`, as PCRE does outside UTF
//! mode.

/// The pattern in `regex_lite` syntax, checked to compile there.
pub fn translate(pcre: &str) -> Result<String, String> {
    let chars: Vec<char> = pcre.chars().collect();
    let mut t = Translator { chars: &chars, i: 0, out: String::new(), depth: 0 };
    t.run().map_err(|why| format!("PCRE pattern {pcre:?}: {why}"))?;
    regex_lite::Regex::new(&t.out).map_err(|e| format!("PCRE pattern {pcre:?} does not compile as {:?}: {e}", t.out))?;
    Ok(t.out)
}

/// The named groups of a pattern (in `regex_lite` syntax), in order.
pub fn group_names(pattern: &str) -> Vec<String> {
    regex_lite::Regex::new(pattern).map_or_else(|_| Vec::new(), |re| re.capture_names().flatten().map(str::to_string).collect())
}

struct Translator<'a> {
    chars: &'a [char],
    i: usize,
    out: String,
    depth: usize,
}

impl Translator<'_> {
    fn peek(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).copied()
    }

    fn rest_starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(n, c)| self.peek(n) == Some(c))
    }

    fn run(&mut self) -> Result<(), String> {
        while let Some(c) = self.peek(0) {
            self.i += 1;
            match c {
                '\\' => {
                    let escaped = self.escape(false)?;
                    self.out.push_str(&escaped);
                }
                '[' => self.class()?,
                '(' => self.group()?,
                ')' => {
                    self.depth = self.depth.checked_sub(1).ok_or("an unopened `)`")?;
                    self.out.push(')');
                }
                '{' => match self.counted() {
                    Some(repetition) => {
                        self.out.push_str(&repetition);
                        self.possessive()?;
                    }
                    None if self.peek(0) == Some(',') => {
                        return Err("`{,m}` is a repetition only in PCRE2 10.43 and later".into())
                    }
                    None => self.out.push_str("\\{"),
                },
                '}' => self.out.push_str("\\}"),
                '*' | '+' | '?' => {
                    self.out.push(c);
                    self.possessive()?;
                }
                '$' if self.i == self.chars.len() && self.depth == 0 => self.out.push_str("\\n?\\z"),
                '$' => {
                    return Err("`$` before the end of the pattern (PCRE's `$` also matches before a final newline, \
                                which the engine can say only at the end)"
                        .into())
                }
                other => self.out.push(other),
            }
        }
        if self.depth > 0 {
            return Err("an unclosed `(`".into());
        }
        Ok(())
    }

    /// `*+`, `++`, `?+`, `{n}+`: possessive, which `regex_lite` has not.
    fn possessive(&mut self) -> Result<(), String> {
        match self.peek(0) {
            Some('+') => Err("possessive quantifiers are not supported".into()),
            Some('?') => {
                self.i += 1;
                self.out.push('?');
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// After `{`: a counted repetition `{n}`, `{n,}` or `{n,m}` (consumed), or `None`.
    fn counted(&mut self) -> Option<String> {
        let mut n = 0;
        let digits = |t: &Self, n: &mut usize| {
            let start = *n;
            while t.peek(*n).is_some_and(|c| c.is_ascii_digit()) {
                *n += 1;
            }
            *n > start
        };
        if !digits(self, &mut n) {
            return None;
        }
        if self.peek(n) == Some(',') {
            n += 1;
            digits(self, &mut n);
        }
        if self.peek(n) != Some('}') {
            return None;
        }
        let text: String = self.chars[self.i - 1..=self.i + n].iter().collect();
        self.i += n + 1;
        Some(text)
    }

    /// After `\`: the escape in `regex_lite` syntax.
    fn escape(&mut self, in_class: bool) -> Result<String, String> {
        let c = self.peek(0).ok_or("a `\\` at the end")?;
        self.i += 1;
        Ok(match c {
            'd' | 'D' | 's' | 'S' | 'w' | 'W' | 'a' | 'f' | 't' | 'n' | 'r' => format!("\\{c}"),
            'b' if in_class => "\\x08".into(),
            'b' | 'B' | 'A' | 'z' if !in_class => format!("\\{c}"),
            'e' => "\\x1B".into(),
            'x' => {
                let hex = if self.peek(0) == Some('{') {
                    let end = self.chars[self.i..].iter().position(|&c| c == '}').ok_or("an unclosed `\\x{`")?;
                    let digits: String = self.chars[self.i + 1..self.i + end].iter().collect();
                    self.i += end + 1;
                    digits
                } else {
                    let digits: String = self.chars[self.i..].iter().take(2).take_while(|c| c.is_ascii_hexdigit()).collect();
                    self.i += digits.len();
                    digits
                };
                if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!("`\\x{hex}` is no hexadecimal escape the engine reads"));
                }
                format!("\\x{{{hex}}}")
            }
            '<' | '>' => c.to_string(),
            c if c.is_ascii_punctuation() || c == ' ' => format!("\\{c}"),
            c if !c.is_ascii() => c.to_string(),
            '0'..='9' => return Err(format!("`\\{c}` (a backreference or octal escape) is not supported")),
            c => return Err(format!("the escape `\\{c}` is not supported")),
        })
    }

    /// After `(`.
    fn group(&mut self) -> Result<(), String> {
        if self.peek(0) != Some('?') {
            if self.peek(0) == Some('*') {
                return Err("PCRE verbs `(*...)` are not supported".into());
            }
            self.depth += 1;
            self.out.push('(');
            return Ok(());
        }
        let refused = [
            ("?=", "lookahead"),
            ("?!", "lookahead"),
            ("?<=", "lookbehind"),
            ("?<!", "lookbehind"),
            ("?>", "an atomic group"),
            ("?|", "a branch reset group"),
            ("?(", "a conditional group"),
            ("?P=", "a backreference"),
            ("?P>", "recursion"),
            ("?&", "recursion"),
            ("?R", "recursion"),
            ("?C", "a callout"),
        ];
        if let Some((_, what)) = refused.iter().find(|(p, _)| self.rest_starts_with(p)) {
            return Err(format!("{what} is not supported"));
        }
        if self.peek(1).is_some_and(|c| c.is_ascii_digit() || c == '+' || c == '-' && self.peek(2).is_some_and(|d| d.is_ascii_digit())) {
            return Err("recursion is not supported".into());
        }
        if self.rest_starts_with("?#") {
            let end = self.chars[self.i..].iter().position(|&c| c == ')').ok_or("an unclosed `(?#`")?;
            self.i += end + 1;
            return Ok(());
        }
        let named = [("?P<", '>'), ("?<", '>'), ("?'", '\'')].into_iter().find(|(p, _)| self.rest_starts_with(p));
        if let Some((prefix, close)) = named {
            self.i += prefix.chars().count();
            let end = self.chars[self.i..].iter().position(|&c| c == close).ok_or("an unclosed group name")?;
            let name: String = self.chars[self.i..self.i + end].iter().collect();
            self.i += end + 1;
            let mut letters = name.chars();
            let valid = letters.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && letters.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("`{name}` is no PCRE group name"));
            }
            self.depth += 1;
            self.out.push_str(&format!("(?<{name}>"));
            return Ok(());
        }
        // `(?:`, and inline options `(?i)`, `(?i:` ..., `(?-s)`.
        let end = self.chars[self.i + 1..].iter().position(|&c| c == ')' || c == ':').ok_or("an unclosed `(?`")?;
        let options: String = self.chars[self.i + 1..self.i + 1 + end].iter().collect();
        if let Some(o) = options.chars().find(|c| !matches!(c, 'i' | 's' | 'U' | '-')) {
            return Err(format!("the inline option `{o}` is not supported"));
        }
        let group = self.chars[self.i + 1 + end] == ':';
        self.i += end + 2;
        if group {
            self.depth += 1;
        }
        self.out.push_str(&format!("(?{options}{}", if group { ':' } else { ')' }));
        Ok(())
    }

    /// After a `[` in a class: the POSIX class it opens (`[:alpha:]`, `[:^digit:]`), if any.
    fn posix_class(&self) -> Option<String> {
        let rest = &self.chars[self.i..];
        let end = rest.iter().position(|&c| c == ']')?;
        let name: String = rest[..end].iter().collect();
        let inner = name.strip_prefix(':')?.strip_suffix(':')?;
        let inner = inner.strip_prefix('^').unwrap_or(inner);
        (!inner.is_empty() && inner.chars().all(|c| c.is_ascii_lowercase())).then(|| format!("[{name}]"))
    }

    /// After `[`: the class up to its `]`. A `-` is a range operator between two single
    /// characters and literal (escaped) anywhere else.
    fn class(&mut self) -> Result<(), String> {
        self.out.push('[');
        if self.peek(0) == Some('^') {
            self.i += 1;
            self.out.push('^');
        }
        let mut first = true;
        // Whether the last item was one character a range may start from, and whether a range
        // operator waits for its end.
        let (mut single, mut ranging) = (false, false);
        loop {
            let c = self.peek(0).ok_or("an unclosed `[`")?;
            self.i += 1;
            let mut one = true;
            match c {
                ']' if !first => break,
                '-' if single && !ranging && self.peek(0) != Some(']') => {
                    self.out.push('-');
                    (single, ranging, first) = (false, true, false);
                    continue;
                }
                '\\' => {
                    let escaped = self.escape(true)?;
                    one = !matches!(escaped.as_str(), "\\d" | "\\D" | "\\s" | "\\S" | "\\w" | "\\W");
                    self.out.push_str(&escaped);
                }
                '[' if self.posix_class().is_some() => {
                    let name = self.posix_class().expect("checked");
                    self.i += name.chars().count() - 1;
                    self.out.push_str(&name);
                    one = false;
                }
                '[' | ']' | '&' | '~' | '-' => {
                    self.out.push('\\');
                    self.out.push(c);
                }
                other => self.out.push(other),
            }
            // A range's end starts no range.
            single = one && !ranging;
            ranging = false;
            first = false;
        }
        self.out.push(']');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_braces_and_named_groups() {
        assert_eq!(translate("(?<json_field>{.+})").unwrap(), r"(?<json_field>\{.+\})");
        let re = regex_lite::Regex::new(&translate("(?<json_field>{.+})").unwrap()).unwrap();
        let caps = re.captures(r#"x {"a":{"b":1}} y"#).unwrap();
        assert_eq!(&caps["json_field"], r#"{"a":{"b":1}}"#);
        assert_eq!(translate(r"a{2}b{1,}c{1,3}?").unwrap(), r"a{2}b{1,}c{1,3}?");
        assert_eq!(translate(r"x{a}").unwrap(), r"x\{a\}");
        assert_eq!(translate("(?'who'[a-z]+)(?P<n>\\d)").unwrap(), r"(?<who>[a-z]+)(?<n>\d)");
        assert_eq!(group_names(&translate("(?<a>x)(y)(?<b>z)").unwrap()), vec!["a", "b"]);
    }

    #[test]
    fn escapes_classes_and_options() {
        assert_eq!(translate(r"\<\/\e\.").unwrap(), r"<\/\x1B\.");
        assert_eq!(translate(r"[[:alpha:][&~\b-]").unwrap(), r"[[:alpha:]\[\&\~\x08\-]");
        assert_eq!(translate(r"[]a-z-]").unwrap(), r"[\]a-z\-]");
        // `+--` is the range from `+` to `-`; `--` would be a set difference to regex_lite.
        assert_eq!(translate(r"[+--x]").unwrap(), r"[+-\-x]");
        assert_eq!(translate(r"[-a\d-z]").unwrap(), r"[\-a\d\-z]");
        assert_eq!(translate(r"(?i)^arn:aws:sts:.*(?#comment)$").unwrap(), r"(?i)^arn:aws:sts:.*\n?\z");
        assert_eq!(translate(r"\x41\x{263A}").unwrap(), r"\x{41}\x{263A}");
        let re = regex_lite::Regex::new(&translate("^all$").unwrap()).unwrap();
        assert!(re.is_match("all") && re.is_match("all\n") && !re.is_match("all\nx"));
    }

    #[test]
    fn what_regex_lite_cannot_say_is_refused() {
        for (pattern, why) in [
            ("a(?=b)", "lookahead"),
            ("(?<!a)b", "lookbehind"),
            ("(a)\\1", "backreference"),
            ("a++", "possessive"),
            ("(?m)^a", "option `m`"),
            ("a$|b", "`$` before the end"),
            ("(a$)", "`$` before the end"),
            ("a{,3}", "PCRE2 10.43"),
            ("\\h", "escape `\\h`"),
            ("(?<1a>x)", "no PCRE group name"),
            ("(?>a)", "atomic"),
        ] {
            let e = translate(pattern).unwrap_err();
            assert!(e.contains(why), "{pattern}: {e}");
        }
    }
}
