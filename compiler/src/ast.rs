//! The parsed search, before it becomes a rule: what was written, with the details the linter
//! needs (parentheses, quoting, unquoted dotted names) that the rule form drops.

use tripline::rule::{BinaryOp, CompareOp};

/// A search-command expression (the base search, `search`, and `where`-less filters).
#[derive(Debug, Clone, PartialEq)]
pub enum SearchNode {
    /// Terms joined by implicit or explicit `AND` (two or more).
    And(Vec<SearchNode>),
    Or(Vec<SearchNode>),
    Not(Box<SearchNode>),
    /// A parenthesized group, kept so the linter can tell `a (b OR c)` from `a b OR c`.
    Paren(Box<SearchNode>),
    Compare { field: String, op: CompareOp, value: String },
    In { field: String, values: Vec<String> },
    /// `*` alone: every record (what the `<name>_filter` macros expand to).
    MatchAll,
}

/// An `eval`/`where` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalNode {
    Str(String),
    Num(f64),
    /// A field: an unquoted word, or a `'single quoted'` name (which may contain dots).
    Field(String),
    Not(Box<EvalNode>),
    Neg(Box<EvalNode>),
    /// `dotted` marks a `.` written with no space on either side between two unquoted words,
    /// as in `userIdentity.userName`: concatenation to Splunk, a field name to its author.
    Binary { op: BinaryOp, left: Box<EvalNode>, right: Box<EvalNode>, dotted: bool },
    /// A function call by its SPL name (lower case).
    Call { name: String, args: Vec<EvalNode> },
}

/// One aggregation of a `stats` command, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct AggSpec {
    pub func: String,
    pub field: Option<String>,
    pub alias: Option<String>,
}

/// One command after a pipe (or the base search), with its pipe number (0 for the base search).
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub pipe: usize,
    /// The command as written (after macro expansion), for messages.
    pub text: String,
    pub kind: CommandKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandKind {
    Search(SearchNode),
    Where(EvalNode),
    Eval(Vec<(String, EvalNode)>),
    Stats { aggs: Vec<AggSpec>, by: Vec<String> },
    Bin { field: String, span_seconds: i64 },
    Rename(Vec<(String, String)>),
    Fillnull { value: String, fields: Vec<String> },
    Spath { input: String, output: String, path: String },
    /// `spath` without a path: every value of the JSON in `input`, by its path.
    SpathAll { input: String },
    /// `rex field=F "..."`: the pattern as written (PCRE).
    Rex { field: String, pattern: String },
    /// `eventstats`, parsed to say precisely why it does not compile.
    Eventstats { aggs: Vec<AggSpec>, by: Vec<String> },
    Mvexpand(String),
    Table(Vec<String>),
    /// `| tstats F(x) as y ... from datamodel=M where <search> by a b`: a data-model search.
    /// `tstats ... by ... _time span=S`: `span_seconds` is `S`.
    Tstats { aggs: Vec<AggSpec>, datamodel: String, filter: SearchNode, by: Vec<String>, span_seconds: Option<i64> },
    /// `append [search ...]`: the subsearch's commands, its base search first (pipe 0 of its
    /// own pipeline).
    Append(Vec<Command>),
    /// `join F1 F2 [search ...]` with Splunk's defaults: the join fields and the subsearch's
    /// commands, its base search first.
    Join { fields: Vec<String>, sub: Vec<Command> },
    Ctime { fields: Vec<String>, format: String },
    /// `lookup <table> <field> [as <event field>] ... OUTPUT|OUTPUTNEW <field> [as <name>], ...`:
    /// the matched fields as (table field, event field), the outputs as (table field, name).
    Lookup { table: String, inputs: Vec<(String, String)>, outputs: Vec<(String, String)>, new_only: bool },
}

impl EvalNode {
    /// Every node of the expression, depth first.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a EvalNode)) {
        f(self);
        match self {
            EvalNode::Not(e) | EvalNode::Neg(e) => e.walk(f),
            EvalNode::Binary { left, right, .. } => {
                left.walk(f);
                right.walk(f);
            }
            EvalNode::Call { args, .. } => args.iter().for_each(|a| a.walk(f)),
            EvalNode::Str(_) | EvalNode::Num(_) | EvalNode::Field(_) => {}
        }
    }

    /// The expression written back as SPL (for messages).
    pub fn to_spl(&self) -> String {
        match self {
            EvalNode::Str(s) => format!("{s:?}"),
            EvalNode::Num(n) => format_num(*n),
            EvalNode::Field(f) if f.chars().all(|c| c.is_alphanumeric() || c == '_') => f.clone(),
            EvalNode::Field(f) => format!("'{f}'"),
            EvalNode::Not(e) => format!("NOT {}", e.to_spl()),
            EvalNode::Neg(e) => format!("-{}", e.to_spl()),
            EvalNode::Binary { op, left, right, dotted } => {
                if *dotted {
                    format!("{}.{}", left.to_spl(), right.to_spl())
                } else {
                    format!("{} {} {}", left.to_spl(), binary_spl(*op), right.to_spl())
                }
            }
            EvalNode::Call { name, args } => {
                format!("{name}({})", args.iter().map(EvalNode::to_spl).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

pub fn format_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

pub fn binary_spl(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::And => "AND",
        BinaryOp::Or => "OR",
        BinaryOp::Eq => "=",
        BinaryOp::Ne => "!=",
        BinaryOp::Lt => "<",
        BinaryOp::Le => "<=",
        BinaryOp::Gt => ">",
        BinaryOp::Ge => ">=",
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Mod => "%",
        BinaryOp::Concat => ".",
    }
}

pub fn compare_spl(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "!=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
    }
}

impl SearchNode {
    /// The expression written back as SPL with every grouping explicit (for messages).
    pub fn to_spl(&self) -> String {
        match self {
            SearchNode::And(items) => items.iter().map(|i| i.to_spl_grouped()).collect::<Vec<_>>().join(" AND "),
            SearchNode::Or(items) => items.iter().map(|i| i.to_spl_grouped()).collect::<Vec<_>>().join(" OR "),
            SearchNode::Not(inner) => format!("NOT {}", inner.to_spl_grouped()),
            SearchNode::Paren(inner) => format!("({})", inner.to_spl()),
            SearchNode::Compare { field, op, value } => format!("{}{}{}", quote_word(field), compare_spl(*op), quote_word(value)),
            SearchNode::In { field, values } => {
                format!("{} IN ({})", quote_word(field), values.iter().map(|v| quote_word(v)).collect::<Vec<_>>().join(", "))
            }
            SearchNode::MatchAll => "*".into(),
        }
    }

    fn to_spl_grouped(&self) -> String {
        match self {
            SearchNode::And(_) | SearchNode::Or(_) => format!("({})", self.to_spl()),
            _ => self.to_spl(),
        }
    }
}

fn quote_word(s: &str) -> String {
    if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || "=<>(),\"|".contains(c)) {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}
