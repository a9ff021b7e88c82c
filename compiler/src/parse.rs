//! The SPL subset, tokens to AST: the search grammar, the eval grammar, and each supported
//! command's arguments. Anything outside the subset is an error naming the command or function
//! and its pipe, never a guess.
//!
//! Precedence follows Splunk's documentation ("Boolean expressions", Search Manual): in the
//! search grammar `NOT` binds tightest, then `OR`, then `AND` (implicit or written), so
//! `a b OR c` is `a AND (b OR c)`; `AND`/`OR`/`NOT`/`IN` must be upper case there (a lower-case
//! `or` is a free-text word). In eval/where, `AND` binds tighter than `OR`, keywords are
//! case-insensitive, and the remaining levels are, loosest first: `NOT`; `= == != LIKE`;
//! `< <= > >=`; `+ - .`; `* / %`; unary `-`.

use tripline::rule::{BinaryOp, CompareOp};

use crate::ast::{AggSpec, Command, CommandKind, EvalNode, SearchNode};
use crate::lexer::{tokenize, Mode, Tok, Token};

/// A token cursor.
struct Cursor {
    toks: Vec<Token>,
    pos: usize,
}

impl Cursor {
    fn new(toks: Vec<Token>) -> Self {
        Cursor { toks, pos: 0 }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.tok)
    }

    fn token(&self, n: usize) -> Option<&Token> {
        self.toks.get(self.pos + n)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    /// An upper-case search keyword (`AND`, `OR`, `NOT`).
    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == kw)
    }

    /// A case-insensitive word (eval keywords, `by`, `as`).
    fn is_word_ci(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expect_op(&mut self, op: &str, what: &str) -> Result<(), String> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected `{op}` {what}, found {}", self.describe()))
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            Some(t) => format!("`{t}`"),
            None => "the end".into(),
        }
    }

    /// A name: an unquoted word or a double-quoted string.
    fn name(&mut self, what: &str) -> Result<String, String> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            Some(Tok::Quoted(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(format!("expected {what}, found {}", self.describe())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The search grammar.

/// Parses a search-command expression (the base search or `search ...`).
pub fn parse_search(text: &str) -> Result<SearchNode, String> {
    let mut c = Cursor::new(tokenize(text, Mode::Search)?);
    if c.at_end() {
        return Ok(SearchNode::MatchAll);
    }
    let node = search_and(&mut c)?;
    if !c.at_end() {
        return Err(format!("unexpected {} in search", c.describe()));
    }
    Ok(node)
}

fn search_and(c: &mut Cursor) -> Result<SearchNode, String> {
    let mut items = vec![search_or(c)?];
    loop {
        if c.at_end() || c.is_op(")") {
            break;
        }
        if c.is_keyword("AND") {
            c.next();
        }
        items.push(search_or(c)?);
    }
    Ok(if items.len() == 1 { items.pop().expect("one") } else { SearchNode::And(items) })
}

fn search_or(c: &mut Cursor) -> Result<SearchNode, String> {
    let mut items = vec![search_not(c)?];
    while c.is_keyword("OR") {
        c.next();
        items.push(search_not(c)?);
    }
    Ok(if items.len() == 1 { items.pop().expect("one") } else { SearchNode::Or(items) })
}

fn search_not(c: &mut Cursor) -> Result<SearchNode, String> {
    if c.is_keyword("NOT") {
        c.next();
        return Ok(SearchNode::Not(Box::new(search_not(c)?)));
    }
    search_primary(c)
}

fn search_primary(c: &mut Cursor) -> Result<SearchNode, String> {
    if c.is_op("(") {
        c.next();
        let inner = search_and(c)?;
        c.expect_op(")", "to close `(`")?;
        return Ok(SearchNode::Paren(Box::new(inner)));
    }
    let (field, quoted) = match c.peek() {
        Some(Tok::Word(w)) => (w.clone(), false),
        Some(Tok::Quoted(s)) => (s.clone(), true),
        _ => return Err(format!("unexpected {} in search", c.describe())),
    };
    let op = match c.peek_at(1) {
        Some(Tok::Op("=")) | Some(Tok::Op("==")) => Some(CompareOp::Eq),
        Some(Tok::Op("!=")) => Some(CompareOp::Ne),
        Some(Tok::Op("<")) => Some(CompareOp::Lt),
        Some(Tok::Op("<=")) => Some(CompareOp::Le),
        Some(Tok::Op(">")) => Some(CompareOp::Gt),
        Some(Tok::Op(">=")) => Some(CompareOp::Ge),
        _ => None,
    };
    if let Some(op) = op {
        c.pos += 2;
        let value = match c.next() {
            Some(Tok::Word(w)) if !is_search_keyword(&w) => w,
            Some(Tok::Quoted(s)) => s,
            other => {
                return Err(format!(
                    "`{field}{}` has no value (found {})",
                    crate::ast::compare_spl(op),
                    other.map_or("the end".to_string(), |t| format!("`{t}`"))
                ))
            }
        };
        return Ok(SearchNode::Compare { field, op, value });
    }
    if matches!(c.peek_at(1), Some(Tok::Word(w)) if w == "IN")
        && matches!(c.peek_at(2), Some(Tok::Op("(")))
    {
        c.pos += 3;
        let mut values = Vec::new();
        loop {
            match c.next() {
                Some(Tok::Op(")")) => break,
                Some(Tok::Op(",")) => {}
                Some(Tok::Word(w)) => values.push(w),
                Some(Tok::Quoted(s)) => values.push(s),
                other => {
                    return Err(format!(
                        "unexpected {} in `{field} IN (...)`",
                        other.map_or("end".to_string(), |t| format!("`{t}`"))
                    ))
                }
            }
        }
        if values.is_empty() {
            return Err(format!("`{field} IN ()` lists no value"));
        }
        return Ok(SearchNode::In { field, values });
    }
    if !quoted && field == "*" {
        c.next();
        return Ok(SearchNode::MatchAll);
    }
    Err(format!(
        "free-text term {} is not supported: a rule compares fields, it does not search raw text",
        if quoted { format!("\"{field}\"") } else { format!("`{field}`") }
    ))
}

fn is_search_keyword(w: &str) -> bool {
    matches!(w, "AND" | "OR" | "NOT")
}

// ---------------------------------------------------------------------------------------------
// The eval grammar.

/// Parses an `eval`/`where` expression.
pub fn parse_eval(text: &str) -> Result<EvalNode, String> {
    let mut c = Cursor::new(tokenize(text, Mode::Eval)?);
    let node = eval_or(&mut c)?;
    if !c.at_end() {
        return Err(format!("unexpected {} in expression", c.describe()));
    }
    Ok(node)
}

fn binary(op: BinaryOp, left: EvalNode, right: EvalNode) -> EvalNode {
    EvalNode::Binary { op, left: Box::new(left), right: Box::new(right), dotted: false }
}

fn eval_or(c: &mut Cursor) -> Result<EvalNode, String> {
    let mut left = eval_and(c)?;
    loop {
        if c.is_word_ci("OR") {
            c.next();
            let right = eval_and(c)?;
            left = binary(BinaryOp::Or, left, right);
        } else if c.is_word_ci("XOR") {
            return Err("the eval operator `XOR` is not supported".into());
        } else {
            return Ok(left);
        }
    }
}

fn eval_and(c: &mut Cursor) -> Result<EvalNode, String> {
    let mut left = eval_not(c)?;
    while c.is_word_ci("AND") {
        c.next();
        let right = eval_not(c)?;
        left = binary(BinaryOp::And, left, right);
    }
    Ok(left)
}

fn eval_not(c: &mut Cursor) -> Result<EvalNode, String> {
    if c.is_word_ci("NOT") {
        c.next();
        return Ok(EvalNode::Not(Box::new(eval_not(c)?)));
    }
    eval_equality(c)
}

fn eval_equality(c: &mut Cursor) -> Result<EvalNode, String> {
    let mut left = eval_relational(c)?;
    loop {
        let op = match c.peek() {
            Some(Tok::Op("=")) | Some(Tok::Op("==")) => BinaryOp::Eq,
            Some(Tok::Op("!=")) => BinaryOp::Ne,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIKE") => {
                c.next();
                let right = eval_relational(c)?;
                left = EvalNode::Call { name: "like".into(), args: vec![left, right] };
                continue;
            }
            _ => return Ok(left),
        };
        c.next();
        let right = eval_relational(c)?;
        left = binary(op, left, right);
    }
}

fn eval_relational(c: &mut Cursor) -> Result<EvalNode, String> {
    let mut left = eval_additive(c)?;
    loop {
        let op = match c.peek() {
            Some(Tok::Op("<")) => BinaryOp::Lt,
            Some(Tok::Op("<=")) => BinaryOp::Le,
            Some(Tok::Op(">")) => BinaryOp::Gt,
            Some(Tok::Op(">=")) => BinaryOp::Ge,
            _ => return Ok(left),
        };
        c.next();
        let right = eval_additive(c)?;
        left = binary(op, left, right);
    }
}

fn is_plain_word(t: Option<&Token>) -> bool {
    matches!(t, Some(Token { tok: Tok::Word(w), .. }) if !w.starts_with(|ch: char| ch.is_ascii_digit()))
}

fn eval_additive(c: &mut Cursor) -> Result<EvalNode, String> {
    let mut left = eval_multiplicative(c)?;
    loop {
        let op = match c.peek() {
            Some(Tok::Op("+")) => BinaryOp::Add,
            Some(Tok::Op("-")) => BinaryOp::Sub,
            Some(Tok::Op(".")) => BinaryOp::Concat,
            _ => return Ok(left),
        };
        // `a.b` with no space anywhere and words on both sides: what reads as a dotted field.
        let dotted = op == BinaryOp::Concat
            && c.pos > 0
            && is_plain_word(c.toks.get(c.pos - 1))
            && !c.token(0).expect("peeked").space_before
            && is_plain_word(c.token(1))
            && !c.token(1).expect("plain word").space_before
            && !matches!(c.peek_at(2), Some(Tok::Op("(")));
        c.next();
        let right = eval_multiplicative(c)?;
        left = EvalNode::Binary { op, left: Box::new(left), right: Box::new(right), dotted };
    }
}

fn eval_multiplicative(c: &mut Cursor) -> Result<EvalNode, String> {
    let mut left = eval_unary(c)?;
    loop {
        let op = match c.peek() {
            Some(Tok::Op("*")) => BinaryOp::Mul,
            Some(Tok::Op("/")) => BinaryOp::Div,
            Some(Tok::Op("%")) => BinaryOp::Mod,
            _ => return Ok(left),
        };
        c.next();
        let right = eval_unary(c)?;
        left = binary(op, left, right);
    }
}

fn eval_unary(c: &mut Cursor) -> Result<EvalNode, String> {
    if c.is_op("-") {
        c.next();
        return Ok(match eval_unary(c)? {
            EvalNode::Num(n) => EvalNode::Num(-n),
            other => EvalNode::Neg(Box::new(other)),
        });
    }
    eval_primary(c)
}

fn eval_primary(c: &mut Cursor) -> Result<EvalNode, String> {
    match c.next() {
        Some(Tok::Op("(")) => {
            let inner = eval_or(c)?;
            c.expect_op(")", "to close `(`")?;
            Ok(inner)
        }
        Some(Tok::Quoted(s)) => Ok(EvalNode::Str(s)),
        Some(Tok::Single(s)) => Ok(EvalNode::Field(s)),
        Some(Tok::Word(w)) if w.starts_with(|ch: char| ch.is_ascii_digit()) => {
            w.parse::<f64>().map(EvalNode::Num).map_err(|_| format!("bad number `{w}`"))
        }
        Some(Tok::Word(w)) if ["AND", "OR", "NOT", "XOR", "LIKE"].iter().any(|k| w.eq_ignore_ascii_case(k)) => {
            Err(format!("unexpected keyword `{w}` in expression"))
        }
        Some(Tok::Word(w)) => {
            if c.is_op("(") {
                c.next();
                let mut args = Vec::new();
                if c.is_op(")") {
                    c.next();
                } else {
                    loop {
                        args.push(eval_or(c)?);
                        if c.is_op(",") {
                            c.next();
                            continue;
                        }
                        c.expect_op(")", &format!("to close `{w}(`"))?;
                        break;
                    }
                }
                Ok(EvalNode::Call { name: w.to_ascii_lowercase(), args })
            } else {
                Ok(EvalNode::Field(w))
            }
        }
        Some(t) => Err(format!("unexpected `{t}` in expression")),
        None => Err("expression ends early".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Commands.

/// Why a command outside the subset cannot become a rule.
fn unsupported_command(name: &str) -> String {
    let why = match name {
        "from" | "datamodel" | "pivot" => "data-model searches are not supported (a rule reads raw CloudTrail records)",
        "appendcols" | "appendpipe" | "union" | "multisearch" => {
            "combining searches is not supported: a rule reads one record stream"
        }
        "streamstats" => "statistics over the whole result set are not supported",
        "lookup" | "inputlookup" | "outputlookup" => "lookup tables are not supported",
        "iplocation" => {
            "GeoIP lookups are not supported: `iplocation` reads Splunk's bundled MaxMind GeoLite2 City database, which \
             tripline does not have (and a different database would give different cities, countries and regions)"
        }
        "anomalydetection" | "apply" | "fit" => "model scoring (MLTK/anomaly detection) is not supported",
        "dedup" => "deduplication across results is not supported",
        "sort" | "head" | "tail" => "ordering and truncating results is not supported",
        "makeresults" | "rest" | "summary" => "generating commands are not supported",
        _ => "the command is not supported",
    };
    format!("command `{name}`: {why}")
}

/// Parses one pipe segment (`pipe` 0 is the base search).
pub fn parse_command(pipe: usize, text: &str) -> Result<Command, String> {
    let subsearch = || {
        format!("a subsearch `[...]` (pipe {pipe}) is not supported: a rule reads one record stream")
    };
    let kind = if pipe == 0 {
        if crate::lexer::has_subsearch(text) {
            return Err(subsearch());
        }
        CommandKind::Search(parse_search(text)?)
    } else {
        let (name, rest) = match text.find(|c: char| c.is_whitespace()) {
            Some(i) => (&text[..i], text[i..].trim()),
            None => (text, ""),
        };
        let lower = name.to_ascii_lowercase();
        if lower == "tstats" {
            return Ok(Command { pipe, text: text.to_string(), kind: parse_tstats(rest)? });
        }
        if lower == "append" {
            return Ok(Command { pipe, text: text.to_string(), kind: parse_append(pipe, rest)? });
        }
        if lower == "join" {
            return Ok(Command { pipe, text: text.to_string(), kind: parse_join(pipe, rest)? });
        }
        let supported = [
            "search", "where", "eval", "stats", "bin", "bucket", "rename", "fillnull", "spath", "rex", "mvexpand", "table", "fields",
            "convert", "eventstats",
        ];
        if supported.contains(&lower.as_str()) && crate::lexer::has_subsearch(rest) {
            return Err(subsearch());
        }
        match lower.as_str() {
            "search" => CommandKind::Search(parse_search(rest)?),
            "where" => CommandKind::Where(parse_eval(rest)?),
            "eval" => CommandKind::Eval(parse_eval_assignments(rest)?),
            "stats" => parse_stats(rest)?,
            "bin" | "bucket" => parse_bin(rest)?,
            "rename" => CommandKind::Rename(parse_rename(rest)?),
            "fillnull" => parse_fillnull(rest)?,
            "spath" => parse_spath(rest)?,
            "rex" => parse_rex(rest)?,
            "eventstats" => match parse_stats(rest)? {
                CommandKind::Stats { aggs, by } => CommandKind::Eventstats { aggs, by },
                _ => unreachable!("parse_stats gives stats"),
            },
            "mvexpand" => parse_mvexpand(rest)?,
            "table" => CommandKind::Table(parse_field_list(rest, "table")?),
            "fields" => parse_fields(rest)?,
            "lookup" => parse_lookup(rest)?,
            "convert" => parse_convert(rest)?,
            "" => return Err("empty command".into()),
            _ => return Err(unsupported_command(&lower)),
        }
    };
    Ok(Command { pipe, text: text.to_string(), kind })
}

/// `lookup <table> <field> [as <field>] ... (OUTPUT|OUTPUTNEW) <field> [as <name>] ...`, without
/// options; without OUTPUT (every table field) it is refused, as the table's fields are unknown.
fn parse_lookup(rest: &str) -> Result<CommandKind, String> {
    let words: Vec<&str> = rest.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).collect();
    let (table, words) = words.split_first().ok_or("command `lookup`: no table")?;
    if table.contains('=') {
        return Err("command `lookup`: options are not supported".into());
    }
    let output_at = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("output") || w.eq_ignore_ascii_case("outputnew"))
        .ok_or("command `lookup` without OUTPUT (every field of the table) is not supported")?;
    let pairs = |words: &[&str]| -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let name = words[i].trim_matches('"').to_string();
            if words.get(i + 1).is_some_and(|w| w.eq_ignore_ascii_case("as")) {
                let alias = words.get(i + 2).ok_or_else(|| format!("command `lookup`: `{name} as` without a name"))?;
                out.push((name, alias.trim_matches('"').to_string()));
                i += 3;
            } else {
                out.push((name.clone(), name));
                i += 1;
            }
        }
        Ok(out)
    };
    let inputs = pairs(&words[..output_at])?;
    let outputs = pairs(&words[output_at + 1..])?;
    if inputs.is_empty() || outputs.is_empty() {
        return Err("command `lookup`: needs a field to match and one to output".into());
    }
    Ok(CommandKind::Lookup {
        table: table.to_string(),
        inputs,
        outputs,
        new_only: words[output_at].eq_ignore_ascii_case("outputnew"),
    })
}

/// `tstats <functions> from datamodel=<M> [where <search>] [by <fields>]`, without options.
fn parse_tstats(rest: &str) -> Result<CommandKind, String> {
    let lower = rest.to_ascii_lowercase();
    let from = lower.find(" from ").ok_or("command `tstats`: only `tstats <functions> from datamodel=<model> ...` is supported")?;
    let functions = &rest[..from];
    let after = rest[from + 6..].trim_start();
    let datamodel_text = after
        .strip_prefix("datamodel=")
        .ok_or("command `tstats`: only `from datamodel=<model>` is supported")?;
    let end = datamodel_text.find(char::is_whitespace).unwrap_or(datamodel_text.len());
    let datamodel = datamodel_text[..end].trim_matches('"').to_string();
    crate::datamodel::model(&datamodel).map_err(|m| format!("command `tstats`: {m}"))?;
    let tail = datamodel_text[end..].trim();
    let tail_lower = tail.to_ascii_lowercase();
    let by_at = tail_lower.find(" by ").map(|i| i + 1).or_else(|| tail_lower.starts_with("by ").then_some(0));
    let (filter_text, by_text) = match by_at {
        Some(i) => (&tail[..i], &tail[i + 3..]),
        None => (tail, ""),
    };
    let filter_text = filter_text.trim();
    let filter = if filter_text.is_empty() {
        SearchNode::MatchAll
    } else {
        let body = filter_text
            .strip_prefix("where ")
            .or_else(|| filter_text.strip_prefix("WHERE "))
            .or_else(|| filter_text.strip_prefix("Where "))
            .ok_or_else(|| format!("command `tstats`: unexpected `{filter_text}` after the data model"))?;
        parse_search(body)?
    };
    // `span=S` among the `by` fields bins `_time` (tstats' own option).
    let mut span_seconds = None;
    let mut by_fields = Vec::new();
    for word in by_text.split_whitespace() {
        match word.to_ascii_lowercase().strip_prefix("span=") {
            Some(span) => span_seconds = Some(parse_span(span).map_err(|m| format!("command `tstats`: {m}"))?),
            None => by_fields.push(word),
        }
    }
    let CommandKind::Stats { aggs, by } = parse_stats(&format!("{functions} by {}", by_fields.join(" ")))? else { unreachable!("stats") };
    if by.iter().any(|f| f.contains('=')) {
        return Err("command `tstats`: only `span=` is supported among the `by` fields".into());
    }
    if span_seconds.is_some() != by.iter().any(|f| f == "_time") {
        return Err("command `tstats`: `by _time` needs a `span=` (and `span=` a `_time`)".into());
    }
    Ok(CommandKind::Tstats { aggs, datamodel, filter, by, span_seconds })
}

/// `append [search ...]`: a subsearch over the same records, its own pipeline parsed as a search
/// (macros are expanded already). Options (`maxout=`, `extendtimerange=`...) are refused.
fn parse_append(pipe: usize, rest: &str) -> Result<CommandKind, String> {
    let inner = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| format!("command `append` (pipe {pipe}): only `append [subsearch]` without options is supported"))?;
    Ok(CommandKind::Append(parse_subsearch("append", pipe, inner)?))
}

/// The commands of a subsearch `[search ...]` (or `[| search ...]`) of command `name`.
fn parse_subsearch(name: &str, pipe: usize, inner: &str) -> Result<Vec<Command>, String> {
    let inner = inner.trim();
    let inner = inner.strip_prefix('|').map_or(inner, str::trim_start);
    let segments = crate::lexer::split_pipes(inner).map_err(|e| format!("`{name}` subsearch (pipe {pipe}): {e}"))?;
    let mut commands = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let command = if i == 0 {
            let base = segment.strip_prefix("search ").map(str::trim).ok_or_else(|| {
                let first = segment.split_whitespace().next().unwrap_or_default();
                format!(
                    "`{name}` subsearch (pipe {pipe}) does not start with `search`: only a search over the same records is supported ({})",
                    unsupported_command(&first.to_ascii_lowercase())
                )
            })?;
            parse_command(0, base)
        } else {
            parse_command(i, segment)
        };
        commands.push(command.map_err(|e| format!("`{name}` subsearch (pipe {pipe}), its pipe {i}: {e}"))?);
    }
    Ok(commands)
}

/// `join F1 F2 [subsearch]`: Splunk's defaults only (`type=inner`, `max=1`, `overwrite=true`,
/// `usetime=false`), which is what the engine's join does; any option is refused by name.
fn parse_join(pipe: usize, rest: &str) -> Result<CommandKind, String> {
    let open = rest.find('[').ok_or_else(|| format!("command `join` (pipe {pipe}): only `join <fields> [subsearch]` is supported"))?;
    let inner = rest[open..]
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| format!("command `join` (pipe {pipe}): only `join <fields> [subsearch]` is supported"))?;
    let sub = parse_subsearch("join", pipe, inner)?;
    let words: Vec<&str> = rest[..open].split([' ', ',']).filter(|w| !w.is_empty()).collect();
    if let Some(option) = words.iter().find(|w| w.contains('=')) {
        return Err(format!(
            "`join` option `{option}` (pipe {pipe}): only Splunk's defaults (type=inner, max=1, overwrite=true, usetime=false) are supported"
        ));
    }
    if words.is_empty() {
        return Err(format!("`join` without fields (pipe {pipe}) is not supported: it joins on every field the two sides share"));
    }
    Ok(CommandKind::Join { fields: words.iter().map(|w| w.to_string()).collect(), sub })
}

fn parse_eval_assignments(text: &str) -> Result<Vec<(String, EvalNode)>, String> {
    let toks = tokenize(text, Mode::Eval)?;
    // Split on top-level commas, then on the first `=` of each part.
    let mut parts: Vec<Vec<Token>> = vec![Vec::new()];
    let mut depth = 0usize;
    for t in toks {
        match &t.tok {
            Tok::Op("(") => depth += 1,
            Tok::Op(")") => depth = depth.saturating_sub(1),
            Tok::Op(",") if depth == 0 => {
                parts.push(Vec::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().expect("never empty").push(t);
    }
    let mut out = Vec::new();
    for part in parts {
        let mut c = Cursor::new(part);
        let field = match c.next() {
            Some(Tok::Word(w)) | Some(Tok::Single(w)) | Some(Tok::Quoted(w)) => w,
            other => return Err(format!("eval expects `field=expression`, found {other:?}")),
        };
        if !c.is_op("=") {
            return Err(format!("eval expects `=` after `{field}`, found {}", c.describe()));
        }
        c.next();
        let expr = eval_or(&mut c)?;
        if !c.at_end() {
            return Err(format!("unexpected {} in `eval {field}=...`", c.describe()));
        }
        out.push((field, expr));
    }
    Ok(out)
}

fn parse_stats(text: &str) -> Result<CommandKind, String> {
    let mut c = Cursor::new(tokenize(text, Mode::Search)?);
    let mut aggs = Vec::new();
    let mut by = Vec::new();
    while !c.at_end() {
        if c.is_op(",") {
            c.next();
            continue;
        }
        if c.is_word_ci("by") {
            c.next();
            while !c.at_end() {
                if c.is_op(",") {
                    c.next();
                    continue;
                }
                by.push(c.name("a `by` field")?);
            }
            break;
        }
        let func = match c.next() {
            Some(Tok::Word(w)) => w,
            other => return Err(format!("stats expects a function, found {other:?}")),
        };
        if func.contains('=') || matches!(c.peek(), Some(Tok::Op("="))) {
            return Err(format!("stats option `{func}=` is not supported"));
        }
        let mut field = None;
        if c.is_op("(") {
            c.next();
            if !c.is_op(")") {
                field = Some(c.name("a field")?);
            }
            c.expect_op(")", &format!("to close `{func}(`"))?;
        }
        let mut alias = None;
        if c.is_word_ci("as") {
            c.next();
            alias = Some(c.name("a name after `as`")?);
        }
        aggs.push(AggSpec { func, field, alias });
    }
    if aggs.is_empty() {
        return Err("stats has no function".into());
    }
    Ok(CommandKind::Stats { aggs, by })
}

/// `span=5m` style durations: s, m, h, d (Splunk's `m` is minutes).
pub fn parse_span(value: &str) -> Result<i64, String> {
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    let unit = &value[digits.len()..];
    let n: i64 = digits.parse().map_err(|_| format!("bad span `{value}`"))?;
    let scale = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return Err(format!("span unit in `{value}` is not supported")),
    };
    Ok(n * scale)
}

/// A search-grammar command's `key=value` options, in order.
type Options = Vec<(String, String)>;

/// `key=value` options and positional words of a search-grammar command.
fn options_and_words(text: &str, command: &str) -> Result<(Options, Vec<String>), String> {
    let mut c = Cursor::new(tokenize(text, Mode::Search)?);
    let mut options = Vec::new();
    let mut words = Vec::new();
    while !c.at_end() {
        if c.is_op(",") {
            c.next();
            continue;
        }
        let word = c.name(&format!("an argument of `{command}`"))?;
        if c.is_op("=") {
            c.next();
            let value = c.name(&format!("a value for `{command} {word}=`"))?;
            options.push((word.to_ascii_lowercase(), value));
        } else {
            words.push(word);
        }
    }
    Ok((options, words))
}

fn parse_bin(text: &str) -> Result<CommandKind, String> {
    let (options, words) = options_and_words(text, "bin")?;
    let mut span = None;
    for (key, value) in options {
        match key.as_str() {
            "span" => span = Some(parse_span(&value)?),
            _ => return Err(format!("`bin {key}=` is not supported")),
        }
    }
    let span_seconds = span.ok_or("`bin` without `span=` is not supported")?;
    match words.as_slice() {
        [field] => Ok(CommandKind::Bin { field: field.clone(), span_seconds }),
        _ => Err(format!("`bin` expects one field, found {words:?}")),
    }
}

fn parse_rename(text: &str) -> Result<Vec<(String, String)>, String> {
    // SPL reads a quoted part and the characters right after it as one argument: ESCU's
    // `drop_dm_object_name("All_Changes")` expands to `rename "All_Changes".* as *`.
    let mut joined = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        let Some(close) = rest[open + 1..].find('"').map(|c| open + 1 + c) else { break };
        let quoted = &rest[open + 1..close];
        let glued = rest[close + 1..].starts_with(['.', '*']) && !quoted.contains(char::is_whitespace);
        joined.push_str(&rest[..open]);
        if glued {
            joined.push_str(quoted);
        } else {
            joined.push_str(&rest[open..=close]);
        }
        rest = &rest[close + 1..];
    }
    joined.push_str(rest);
    let mut c = Cursor::new(tokenize(&joined, Mode::Search)?);
    let mut out = Vec::new();
    while !c.at_end() {
        if c.is_op(",") {
            c.next();
            continue;
        }
        let from = c.name("a field to rename")?;
        if !c.is_word_ci("as") {
            return Err(format!("rename expects `as` after `{from}`, found {}", c.describe()));
        }
        c.next();
        let to = c.name("a new name")?;
        let prefix_strip = to == "*" && from.ends_with('*') && from.matches('*').count() == 1;
        if (from.contains('*') || to.contains('*')) && !prefix_strip {
            return Err(format!(
                "wildcard `rename {from} as {to}` is not supported (only `prefix* as *`)"
            ));
        }
        out.push((from, to));
    }
    Ok(out)
}

fn parse_fillnull(text: &str) -> Result<CommandKind, String> {
    let (options, fields) = options_and_words(text, "fillnull")?;
    let mut value = "0".to_string();
    for (key, v) in options {
        match key.as_str() {
            "value" => value = v,
            _ => return Err(format!("`fillnull {key}=` is not supported")),
        }
    }
    Ok(CommandKind::Fillnull { value, fields })
}

fn parse_spath(text: &str) -> Result<CommandKind, String> {
    let (options, words) = options_and_words(text, "spath")?;
    let (mut input, mut output, mut path) = (None, None, None);
    for (key, v) in options {
        match key.as_str() {
            "input" => input = Some(v),
            "output" => output = Some(v),
            "path" => path = Some(v),
            _ => return Err(format!("`spath {key}=` is not supported")),
        }
    }
    match words.as_slice() {
        [] => {}
        [p] if path.is_none() => path = Some(p.clone()),
        _ => return Err(format!("unexpected `spath` arguments {words:?}")),
    }
    // Without `input=`, spath reads the raw record.
    let input = input.unwrap_or_else(|| "_raw".to_string());
    match (path, output) {
        (Some(path), output) => Ok(CommandKind::Spath { input, output: output.unwrap_or_else(|| path.clone()), path }),
        (None, None) => Ok(CommandKind::SpathAll { input }),
        (None, Some(output)) => Err(format!("`spath output={output}` without a path is not supported")),
    }
}

/// `rex [field=F] "pattern"` (`field` defaults to `_raw`); `max_match`, `mode=sed` and
/// `offset_field` are not supported.
fn parse_rex(text: &str) -> Result<CommandKind, String> {
    let mut c = Cursor::new(tokenize(text, Mode::Search)?);
    let mut field = "_raw".to_string();
    let mut pattern = None;
    while !c.at_end() {
        match c.next() {
            Some(Tok::Word(key)) if c.is_op("=") => {
                c.next();
                let value = c.name(&format!("a value for `rex {key}=`"))?;
                match key.to_ascii_lowercase().as_str() {
                    "field" => field = value,
                    "max_match" if value == "1" => {}
                    other => return Err(format!("`rex {other}={value}` is not supported")),
                }
            }
            Some(Tok::Quoted(p)) if pattern.is_none() => pattern = Some(p),
            other => return Err(format!("unexpected `rex` argument {}", other.map_or("end".to_string(), |t| format!("`{t}`")))),
        }
    }
    let pattern = pattern.ok_or("`rex` without a pattern")?;
    Ok(CommandKind::Rex { field, pattern })
}

fn parse_mvexpand(text: &str) -> Result<CommandKind, String> {
    let (options, words) = options_and_words(text, "mvexpand")?;
    if let Some((key, _)) = options.first() {
        return Err(format!("`mvexpand {key}=` is not supported"));
    }
    match words.as_slice() {
        [field] => Ok(CommandKind::Mvexpand(field.clone())),
        _ => Err(format!("`mvexpand` expects one field, found {words:?}")),
    }
}

fn parse_field_list(text: &str, command: &str) -> Result<Vec<String>, String> {
    let (options, words) = options_and_words(text, command)?;
    if let Some((key, _)) = options.first() {
        return Err(format!("`{command} {key}=` is not supported"));
    }
    if let Some(w) = words.iter().find(|w| w.contains('*')) {
        return Err(format!("wildcard field `{w}` in `{command}` is not supported"));
    }
    if words.is_empty() {
        return Err(format!("`{command}` lists no field"));
    }
    Ok(words)
}

fn parse_fields(text: &str) -> Result<CommandKind, String> {
    let rest = text.trim();
    if let Some(removed) = rest.strip_prefix('-') {
        return Err(format!(
            "`fields - {}` (removing fields) is not supported: the rule form keeps a list",
            removed.trim()
        ));
    }
    let rest = rest.strip_prefix('+').unwrap_or(rest);
    Ok(CommandKind::Table(parse_field_list(rest, "fields")?))
}

/// Splunk's default `convert` time format.
const CONVERT_DEFAULT_FORMAT: &str = "%m/%d/%Y %H:%M:%S";

fn parse_convert(text: &str) -> Result<CommandKind, String> {
    let mut c = Cursor::new(tokenize(text, Mode::Search)?);
    let mut format = CONVERT_DEFAULT_FORMAT.to_string();
    let mut fields = Vec::new();
    while !c.at_end() {
        if c.is_op(",") {
            c.next();
            continue;
        }
        let word = c.name("a `convert` argument")?;
        if c.is_op("=") {
            c.next();
            let value = c.name("a value")?;
            if word.eq_ignore_ascii_case("timeformat") {
                format = value;
                continue;
            }
            return Err(format!("`convert {word}=` is not supported"));
        }
        if !word.eq_ignore_ascii_case("ctime") {
            return Err(format!("`convert {word}(...)` is not supported (only `ctime`)"));
        }
        c.expect_op("(", "after `ctime`")?;
        let field = c.name("a field")?;
        c.expect_op(")", "to close `ctime(`")?;
        if c.is_word_ci("as") {
            return Err("`convert ctime(...) as ...` is not supported".into());
        }
        fields.push(field);
    }
    if fields.is_empty() {
        return Err("`convert` converts no field".into());
    }
    Ok(CommandKind::Ctime { fields, format })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: &str, op: CompareOp, value: &str) -> SearchNode {
        SearchNode::Compare { field: field.into(), op, value: value.into() }
    }

    fn field(name: &str) -> EvalNode {
        EvalNode::Field(name.into())
    }

    #[test]
    fn or_binds_tighter_than_implicit_and() {
        assert_eq!(
            parse_search("a=1 b=2 OR c=3").unwrap(),
            SearchNode::And(vec![
                cmp("a", CompareOp::Eq, "1"),
                SearchNode::Or(vec![cmp("b", CompareOp::Eq, "2"), cmp("c", CompareOp::Eq, "3")]),
            ])
        );
        assert_eq!(
            parse_search("a=1 AND b=2 OR c=3").unwrap(),
            parse_search("a=1 b=2 OR c=3").unwrap(),
            "explicit AND is AND too"
        );
    }

    #[test]
    fn not_binds_to_the_next_term_and_parens_group() {
        assert_eq!(
            parse_search("NOT a=1 OR b!=2").unwrap(),
            SearchNode::Or(vec![SearchNode::Not(Box::new(cmp("a", CompareOp::Eq, "1"))), cmp("b", CompareOp::Ne, "2")])
        );
        assert_eq!(
            parse_search("(a=1 OR b=2) c>=3").unwrap(),
            SearchNode::And(vec![
                SearchNode::Paren(Box::new(SearchNode::Or(vec![cmp("a", CompareOp::Eq, "1"), cmp("b", CompareOp::Eq, "2")]))),
                cmp("c", CompareOp::Ge, "3"),
            ])
        );
    }

    #[test]
    fn quoting_spaces_and_wildcards() {
        assert_eq!(
            parse_search(r#""additionalEventData.MFAUsed"=Yes eventName = ConsoleLogin src_ip !="AWS Internal" userAgent!=*.amazonaws.com"#)
                .unwrap(),
            SearchNode::And(vec![
                cmp("additionalEventData.MFAUsed", CompareOp::Eq, "Yes"),
                cmp("eventName", CompareOp::Eq, "ConsoleLogin"),
                cmp("src_ip", CompareOp::Ne, "AWS Internal"),
                cmp("userAgent", CompareOp::Ne, "*.amazonaws.com"),
            ])
        );
    }

    #[test]
    fn in_lists_take_commas_spaces_and_quotes() {
        assert_eq!(
            parse_search(r#"errorCode IN (NoSuch,Conflict, "Access Denied")"#).unwrap(),
            SearchNode::In { field: "errorCode".into(), values: vec!["NoSuch".into(), "Conflict".into(), "Access Denied".into()] }
        );
    }

    #[test]
    fn free_text_and_lower_case_keywords_are_refused() {
        assert!(parse_search("eventName in (A, B)").unwrap_err().contains("free-text term `eventName`"));
        assert!(parse_search("eventName=X failed").unwrap_err().contains("free-text term `failed`"));
        assert!(parse_search("a=1 or b=2").unwrap_err().contains("free-text term `or`"));
        assert!(parse_search(r#"a=1 "some phrase""#).unwrap_err().contains("free-text"));
    }

    #[test]
    fn match_all() {
        assert_eq!(parse_search("*").unwrap(), SearchNode::MatchAll);
        assert_eq!(parse_search("").unwrap(), SearchNode::MatchAll);
    }

    #[test]
    fn eval_unquoted_dots_concatenate() {
        let e = parse_eval("match(userIdentity.userName, 'requestParameters.userName')").unwrap();
        assert_eq!(
            e,
            EvalNode::Call {
                name: "match".into(),
                args: vec![
                    EvalNode::Binary {
                        op: BinaryOp::Concat,
                        left: Box::new(field("userIdentity")),
                        right: Box::new(field("userName")),
                        dotted: true
                    },
                    field("requestParameters.userName"),
                ]
            }
        );
        let spaced = parse_eval(r#"a.", ".b"#).unwrap();
        let mut dotted = Vec::new();
        spaced.walk(&mut |n| {
            if let EvalNode::Binary { dotted: d, .. } = n {
                dotted.push(*d)
            }
        });
        assert_eq!(dotted, vec![false, false], "a string operand is no dotted name");
    }

    #[test]
    fn eval_precedence_and_case_insensitive_keywords() {
        let e = parse_eval("a >= 1 and b = 2 OR not c < 3 + 4 * 5").unwrap();
        assert_eq!(e.to_spl(), "a >= 1 AND b = 2 OR NOT c < 3 + 4 * 5");
        let EvalNode::Binary { op: BinaryOp::Or, left, right, .. } = e else { panic!() };
        assert!(matches!(*left, EvalNode::Binary { op: BinaryOp::And, .. }));
        let EvalNode::Not(inner) = *right else { panic!() };
        let EvalNode::Binary { op: BinaryOp::Lt, right: sum, .. } = *inner else { panic!() };
        let EvalNode::Binary { op: BinaryOp::Add, right: product, .. } = *sum else { panic!() };
        assert!(matches!(*product, EvalNode::Binary { op: BinaryOp::Mul, .. }));
    }

    #[test]
    fn where_bare_words_are_fields() {
        assert_eq!(
            parse_eval("weekday=Saturday").unwrap(),
            EvalNode::Binary { op: BinaryOp::Eq, left: Box::new(field("weekday")), right: Box::new(field("Saturday")), dotted: false }
        );
    }

    #[test]
    fn stats_functions_names_and_by_lists() {
        let CommandKind::Stats { aggs, by } =
            parse_stats("count min(_time) as firstTime, values(userAgent) dc(src_ip) AS n by _time, user_arn src").unwrap()
        else {
            panic!()
        };
        assert_eq!(by, vec!["_time", "user_arn", "src"]);
        assert_eq!(aggs.len(), 4);
        assert_eq!(aggs[1], AggSpec { func: "min".into(), field: Some("_time".into()), alias: Some("firstTime".into()) });
        assert_eq!(aggs[2], AggSpec { func: "values".into(), field: Some("userAgent".into()), alias: None });
        assert_eq!(aggs[3].alias.as_deref(), Some("n"));
    }

    #[test]
    fn commands_with_options() {
        assert_eq!(parse_bin("span=5m _time").unwrap(), CommandKind::Bin { field: "_time".into(), span_seconds: 300 });
        assert_eq!(parse_rename(r#""All_Changes".* as *"#).unwrap(), vec![("All_Changes.*".to_string(), "*".to_string())]);
        assert_eq!(parse_rename(r#""a b" as c"#).unwrap(), vec![("a b".to_string(), "c".to_string())]);
        let CommandKind::Tstats { by, span_seconds, .. } =
            parse_tstats("count from datamodel=Change by All_Changes.user _time span=30m").unwrap()
        else {
            panic!("tstats")
        };
        assert_eq!((by, span_seconds), (vec!["All_Changes.user".to_string(), "_time".to_string()], Some(1800)));
        assert!(parse_tstats("count from datamodel=Change by _time").unwrap_err().contains("needs a `span=`"));
        assert_eq!(parse_bin("_time span=1h").unwrap(), CommandKind::Bin { field: "_time".into(), span_seconds: 3600 });
        assert_eq!(
            parse_spath("input=a output=b path=Statement{}").unwrap(),
            CommandKind::Spath { input: "a".into(), output: "b".into(), path: "Statement{}".into() }
        );
        assert_eq!(
            parse_spath("path=a{}.b output=b").unwrap(),
            CommandKind::Spath { input: "_raw".into(), output: "b".into(), path: "a{}.b".into() }
        );
        assert_eq!(parse_spath("input=findings").unwrap(), CommandKind::SpathAll { input: "findings".into() });
        assert_eq!(parse_spath("").unwrap(), CommandKind::SpathAll { input: "_raw".into() });
        assert!(parse_spath("output=x").unwrap_err().contains("without a path"));
        assert_eq!(
            parse_rex(r#"field=_raw "(?<json_field>{.+})""#).unwrap(),
            CommandKind::Rex { field: "_raw".into(), pattern: "(?<json_field>{.+})".into() }
        );
        assert_eq!(parse_rex(r#""(?<a>\d+)" max_match=1"#).unwrap(), CommandKind::Rex { field: "_raw".into(), pattern: r"(?<a>\d+)".into() });
        assert!(parse_rex(r#"mode=sed "s/a/b/""#).unwrap_err().contains("`rex mode=sed` is not supported"));
        assert!(parse_rex("field=x").unwrap_err().contains("without a pattern"));
        assert_eq!(
            parse_convert(r#"timeformat="%Y-%m-%dT%H:%M:%S" ctime(firstTime)"#).unwrap(),
            CommandKind::Ctime { fields: vec!["firstTime".into()], format: "%Y-%m-%dT%H:%M:%S".into() }
        );
        assert_eq!(parse_fillnull("").unwrap(), CommandKind::Fillnull { value: "0".into(), fields: vec![] });
        assert_eq!(
            parse_rename("a as b, c AS d").unwrap(),
            vec![("a".into(), "b".into()), ("c".into(), "d".into())]
        );
        assert_eq!(parse_rename("requestParameters.* as *").unwrap(), vec![("requestParameters.*".into(), "*".into())]);
        assert!(parse_rename("* as x_*").unwrap_err().contains("wildcard"));
        assert!(parse_fields("- x").unwrap_err().contains("removing"));
        assert!(parse_command(1, "tstats count from datamodel=Network_Traffic").unwrap_err().contains("command `tstats`"));
    }
}
