//! Eval expressions narrowed to the eventNames a rule selects. The add-on's field derivations
//! are `case()`s over every eventName CloudTrail has (`case(eventName="CreateUser", ...,
//! eventName="CreateVpc" OR ..., ...)`, 100+ branches); a data-model rule selects a handful, and
//! evaluating every other branch for each of its records was most of its cost. A comparison of
//! `eventName` with a name the selection cannot admit is false for every record the rule sees,
//! so its branch goes. Exact, never approximate: a branch whose name the selection admits in any
//! letter case stays, since eval's `=` compares case-sensitively and the selection does not.

use tripline::rule::{BinaryOp, Expr, Func};

/// What an expression is known to give for every selected record.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Known {
    True,
    False,
    Open,
}

/// `expr` without the branches no record named one of `names` (case-insensitively) can take;
/// for every such record it gives what `expr` gives. No names: `expr` unchanged.
pub fn narrow(expr: Expr, names: &[String]) -> Expr {
    if names.is_empty() {
        return expr;
    }
    fold(expr, names).0
}

fn fold(expr: Expr, names: &[String]) -> (Expr, Known) {
    match expr {
        Expr::Binary { op: op @ (BinaryOp::Eq | BinaryOp::Ne), left, right } => {
            let known = match (&*left, &*right) {
                (Expr::Field(f), Expr::Str(name)) | (Expr::Str(name), Expr::Field(f)) if f == "eventName" => {
                    let admitted = names.iter().any(|n| n.eq_ignore_ascii_case(name));
                    match (admitted, op) {
                        (true, _) => Known::Open,
                        (false, BinaryOp::Eq) => Known::False,
                        (false, _) => Known::True,
                    }
                }
                _ => Known::Open,
            };
            (Expr::Binary { op, left: Box::new(fold(*left, names).0), right: Box::new(fold(*right, names).0) }, known)
        }
        Expr::Binary { op: op @ (BinaryOp::And | BinaryOp::Or), left, right } => {
            let ((l, lk), (r, rk)) = (fold(*left, names), fold(*right, names));
            let (absorbing, neutral) = if op == BinaryOp::And { (Known::False, Known::True) } else { (Known::True, Known::False) };
            match (lk, rk) {
                // The whole is known, but a bare literal is no expression: keep the parts.
                _ if lk == absorbing || rk == absorbing => (Expr::Binary { op, left: Box::new(l), right: Box::new(r) }, absorbing),
                (k, _) if k == neutral => (r, rk),
                (_, k) if k == neutral => (l, lk),
                _ => (Expr::Binary { op, left: Box::new(l), right: Box::new(r) }, Known::Open),
            }
        }
        Expr::Not(inner) => {
            let (e, k) = fold(*inner, names);
            let k = match k {
                Known::True => Known::False,
                Known::False => Known::True,
                Known::Open => Known::Open,
            };
            (Expr::Not(Box::new(e)), k)
        }
        Expr::Call { func: Func::If, args } if args.len() == 3 => {
            let mut args = args.into_iter().map(|a| fold(a, names));
            let (condition, known) = args.next().expect("three arguments");
            let (then, otherwise) = (args.next().expect("three arguments"), args.next().expect("three arguments"));
            match known {
                Known::True => then,
                Known::False => otherwise,
                Known::Open => (Expr::Call { func: Func::If, args: vec![condition, then.0, otherwise.0] }, Known::Open),
            }
        }
        Expr::Call { func: Func::Case, args } if args.len() % 2 == 0 => {
            let mut kept = Vec::new();
            let mut pairs = args.into_iter();
            while let (Some(condition), Some(value)) = (pairs.next(), pairs.next()) {
                let (condition, known) = fold(condition, names);
                match known {
                    Known::False => continue,
                    // The first branch that always holds decides: case() gives its value.
                    Known::True if kept.is_empty() => return fold(value, names),
                    Known::True => {
                        kept.extend([condition, fold(value, names).0]);
                        break;
                    }
                    Known::Open => kept.extend([condition, fold(value, names).0]),
                }
            }
            match kept.is_empty() {
                true => (Expr::Call { func: Func::Null, args: Vec::new() }, Known::Open),
                false => (Expr::Call { func: Func::Case, args: kept }, Known::Open),
            }
        }
        Expr::Binary { op, left, right } => (Expr::Binary { op, left: Box::new(fold(*left, names).0), right: Box::new(fold(*right, names).0) }, Known::Open),
        Expr::Call { func, args } => (Expr::Call { func, args: args.into_iter().map(|a| fold(a, names).0).collect() }, Known::Open),
        Expr::Neg(inner) => (Expr::Neg(Box::new(fold(*inner, names).0)), Known::Open),
        leaf @ (Expr::Str(_) | Expr::Num(_) | Expr::Field(_)) => (leaf, Known::Open),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::expr;
    use crate::parse::parse_eval;

    fn narrowed(text: &str, names: &[&str]) -> Expr {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        narrow(expr(&parse_eval(text).unwrap()).unwrap(), &names)
    }

    fn parsed(text: &str) -> Expr {
        expr(&parse_eval(text).unwrap()).unwrap()
    }

    #[test]
    fn drops_the_branches_of_names_the_selection_cannot_admit() {
        let case = r#"case(eventName="CreateUser", a, eventName="CreateVpc" OR eventName="createsecuritygroup", b, eventName!="DeleteVpc", c, 1=1, d)"#;
        assert_eq!(narrowed(case, &["CreateSecurityGroup"]), parsed(r#"case(eventName="createsecuritygroup", b, eventName!="DeleteVpc", c)"#));
        // The first branch that always holds is the value.
        assert_eq!(narrowed(r#"case(eventName="X", a, eventName!="Y", b, 1=1, c)"#, &["Z"]), parsed("b"));
        assert_eq!(narrowed(r#"if(eventName="X" AND isnull(f), a, b)"#, &["Z"]), parsed("b"));
        assert_eq!(narrowed(r#"if(NOT eventName="X", a, b)"#, &["Z"]), parsed("a"));
        assert_eq!(narrowed(r#"case(eventName="X", a)"#, &["Z"]), parsed("null()"));
        // Nothing known without names, and a name the selection admits stays open.
        assert_eq!(narrowed(r#"if(eventName="X", a, b)"#, &[]), parsed(r#"if(eventName="X", a, b)"#));
        assert_eq!(narrowed(r#"if(eventName="X", a, b)"#, &["x"]), parsed(r#"if(eventName="X", a, b)"#));
        // A condition known false standing alone stays a comparison: there is no false literal.
        assert_eq!(narrowed(r#"eventName="X" OR eventName="Y""#, &["Z"]), parsed(r#"eventName="Y""#));
    }
}
