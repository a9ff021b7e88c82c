//! A rule's selection and per-event steps settled, once at load, for each eventName it is
//! indexed on.
//!
//! The engine looks at an indexed rule only for records with one of its names, and the data
//! models derive their fields with `case()` chains over that name (the Change model's
//! `object_id` tests forty names for one field, and each data-model field then runs the
//! `if(isnull(x) OR x="", "unknown", x)` default). For one name, every test and branch that the
//! name, and the constants it leads to, decide is worked out here by the evaluator itself. The
//! result computes what the rule computes for a record with that name, reading no field that the
//! rule would not have read first, so it fails where the rule fails. A record whose name is
//! spelled otherwise (Splunk compares names case-insensitively) runs the rule as written.

use std::borrow::Cow;

use super::eval::{eval, test, Locale, Regexes, Row};
use super::value::Val;
use super::{sigma, Assign, BinaryOp, Cond, Expr, Func, Step};
use crate::cloudtrail::NAME_FIELDS;

/// A rule's selection and per-event steps for the records of one eventName.
#[derive(Debug, Clone, PartialEq)]
pub struct Specialized {
    pub selection: Cond,
    pub steps: Vec<Step>,
}

/// What a row holds before a step, where it does not depend on the record beyond its name.
struct Known<'r> {
    values: Vec<(String, Val)>,
    /// The record's own `eventName`, which Sigma's tests read whatever the steps assign.
    name: &'r str,
    regexes: &'r Regexes,
}

/// `selection` and `steps` for records named `name`; `None` where the name settles nothing.
pub fn specialize(selection: &Cond, steps: &[Step], name: &str, regexes: &Regexes) -> Option<Specialized> {
    let values = NAME_FIELDS.map(|field| (field.to_string(), Val::Str(name.to_string()))).to_vec();
    let mut known = Known { values, name, regexes };
    let specialized = Specialized { selection: known.cond(selection), steps: known.steps(steps) };
    (specialized.selection != *selection || specialized.steps != steps).then_some(specialized)
}

/// A condition that always holds (`All` of nothing) or never does (`Any` of nothing).
fn constant(holds: bool) -> Cond {
    if holds {
        Cond::All(Vec::new())
    } else {
        Cond::Any(Vec::new())
    }
}

fn constant_value(cond: &Cond) -> Option<bool> {
    match cond {
        Cond::All(items) if items.is_empty() => Some(true),
        Cond::Any(items) if items.is_empty() => Some(false),
        _ => None,
    }
}

/// A value written as an expression that evaluates to it; truth values and multivalues have
/// none, and keep the expression that gave them.
fn literal(value: Val) -> Option<Expr> {
    match value {
        Val::Str(text) => Some(Expr::Str(text)),
        Val::Num(n) => Some(Expr::Num(n)),
        Val::Null => Some(Expr::Call { func: Func::Null, args: Vec::new() }),
        Val::Bool(_) | Val::Multi(_) => None,
    }
}

impl Known<'_> {
    fn get(&self, field: &str) -> Option<&Val> {
        self.values.iter().find(|(name, _)| name == field).map(|(_, value)| value)
    }

    fn set(&mut self, field: &str, value: Option<Val>) {
        self.values.retain(|(name, _)| name != field);
        self.values.extend(value.map(|value| (field.to_string(), value)));
    }

    /// A row of the known fields alone: what the evaluator reads an expression of them from.
    fn row(&self) -> Row<'_, 'static> {
        Row::of_fields(self.values.iter().map(|(name, value)| (Cow::Borrowed(name.as_str()), value.clone())).collect(), Locale::default())
    }

    /// The value of `expr`, where only known fields decide it.
    fn value(&self, expr: &Expr) -> Option<Val> {
        self.decides(expr).then(|| eval(expr, &self.row(), self.regexes).ok()).flatten()
    }

    fn decides(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Str(_) | Expr::Num(_) => true,
            Expr::Field(name) => self.get(name).is_some(),
            Expr::Not(inner) | Expr::Neg(inner) => self.decides(inner),
            Expr::Binary { left, right, .. } => self.decides(left) && self.decides(right),
            // `now()` is the closing window's end, and the time functions read the host's time
            // zone, which is set after load.
            Expr::Call { func: Func::Now | Func::Strftime | Func::RelativeTime, .. } => false,
            Expr::Call { args, .. } => args.iter().all(|arg| self.decides(arg)),
        }
    }

    /// Whether `expr` is true, where the known fields decide it. AND and OR read their left
    /// side first and their right only when it decides, so a left side alone may settle them.
    fn truth(&self, expr: &Expr) -> Option<bool> {
        if let Some(value) = self.value(expr) {
            return Some(value.truthy());
        }
        match expr {
            Expr::Binary { op: BinaryOp::And, left, .. } if self.truth(left) == Some(false) => Some(false),
            Expr::Binary { op: BinaryOp::Or, left, .. } if self.truth(left) == Some(true) => Some(true),
            _ => None,
        }
    }

    fn expr(&self, expr: &Expr) -> Expr {
        if let Some(literal) = self.value(expr).and_then(literal) {
            return literal;
        }
        let each = |args: &[Expr]| args.iter().map(|arg| self.expr(arg)).collect();
        match expr {
            Expr::Call { func: Func::If, args } if args.len() == 3 => match self.truth(&args[0]) {
                Some(true) => self.expr(&args[1]),
                Some(false) => self.expr(&args[2]),
                None => Expr::Call { func: Func::If, args: each(args) },
            },
            Expr::Call { func: Func::Case, args } if args.len() % 2 == 0 => self.case(args),
            Expr::Call { func, args } => Expr::Call { func: *func, args: each(args) },
            Expr::Binary { op, left, right } => Expr::Binary { op: *op, left: Box::new(self.expr(left)), right: Box::new(self.expr(right)) },
            Expr::Not(inner) => Expr::Not(Box::new(self.expr(inner))),
            Expr::Neg(inner) => Expr::Neg(Box::new(self.expr(inner))),
            Expr::Str(_) | Expr::Num(_) | Expr::Field(_) => expr.clone(),
        }
    }

    /// `case()` without the branches that cannot be taken: those whose test is false, and
    /// those after one whose test is true.
    fn case(&self, args: &[Expr]) -> Expr {
        let mut kept = Vec::new();
        for pair in args.chunks(2) {
            match self.truth(&pair[0]) {
                Some(false) => continue,
                Some(true) if kept.is_empty() => return self.expr(&pair[1]),
                truth => {
                    kept.extend([self.expr(&pair[0]), self.expr(&pair[1])]);
                    if truth.is_some() {
                        break;
                    }
                }
            }
        }
        if kept.is_empty() {
            Expr::Call { func: Func::Null, args: Vec::new() }
        } else {
            Expr::Call { func: Func::Case, args: kept }
        }
    }

    /// `cond` with what the known fields decide settled: a test that holds is dropped from an
    /// `All` and ends an `Any` (the tests after it are never read), and the other way round.
    fn cond(&self, cond: &Cond) -> Cond {
        match cond {
            Cond::All(items) | Cond::Any(items) => {
                // The value that decides the list, and the one that leaves it to the others.
                let all = matches!(cond, Cond::All(_));
                let mut kept = Vec::new();
                for item in items {
                    let item = self.cond(item);
                    match constant_value(&item) {
                        Some(holds) if holds == all => continue,
                        Some(_) if kept.is_empty() => return item,
                        decided => {
                            kept.push(item);
                            if decided.is_some() {
                                break;
                            }
                        }
                    }
                }
                match (kept.len(), all) {
                    (0, _) => constant(all),
                    (1, _) => kept.remove(0),
                    (_, true) => Cond::All(kept),
                    (_, false) => Cond::Any(kept),
                }
            }
            Cond::Not(inner) => {
                let inner = self.cond(inner);
                match constant_value(&inner) {
                    Some(holds) => constant(!holds),
                    None => Cond::Not(Box::new(inner)),
                }
            }
            Cond::Compare { field, .. } | Cond::In { field, .. } if self.get(field).is_some() => match test(cond, &self.row()) {
                Ok(holds) => constant(holds),
                Err(_) => cond.clone(),
            },
            Cond::Sigma { field, test } if field == "eventName" => sigma::holds_for(test, self.name).map_or_else(|| cond.clone(), constant),
            Cond::Compare { .. } | Cond::In { .. } | Cond::Sigma { .. } => cond.clone(),
        }
    }

    /// The steps up to the first one that may change fields in a way not followed here
    /// (`rename`, `spath`, `rex`, `mvexpand`, `table`, ...), settled; the rest as written.
    fn steps(&mut self, steps: &[Step]) -> Vec<Step> {
        let mut out = Vec::with_capacity(steps.len());
        let mut rest = steps.iter();
        for step in rest.by_ref() {
            match step {
                Step::Search(cond) => {
                    let cond = self.cond(cond);
                    if constant_value(&cond) != Some(true) {
                        out.push(Step::Search(cond));
                    }
                }
                Step::Where(expr) => {
                    if self.truth(expr) != Some(true) {
                        out.push(Step::Where(self.expr(expr)));
                    }
                }
                Step::Eval(assigns) => {
                    let mut settled = Vec::with_capacity(assigns.len());
                    for Assign { field, expr } in assigns {
                        // Each assignment sees the ones before it.
                        let expr = self.expr(expr);
                        let value = self.value(&expr);
                        self.set(field, value);
                        settled.push(Assign { field: field.clone(), expr });
                    }
                    out.push(Step::Eval(settled));
                }
                other => {
                    out.push(other.clone());
                    break;
                }
            }
        }
        out.extend(rest.cloned());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{CompareOp, Rename};

    fn field(name: &str) -> Expr {
        Expr::Field(name.into())
    }

    fn text(value: &str) -> Expr {
        Expr::Str(value.into())
    }

    fn binary(op: BinaryOp, left: Expr, right: Expr) -> Expr {
        Expr::Binary { op, left: Box::new(left), right: Box::new(right) }
    }

    fn named(name: &str) -> Expr {
        binary(BinaryOp::Eq, field("eventName"), text(name))
    }

    fn call(func: Func, args: Vec<Expr>) -> Expr {
        Expr::Call { func, args }
    }

    fn assign(field: &str, expr: Expr) -> Assign {
        Assign { field: field.into(), expr }
    }

    fn compare(field: &str, value: &str) -> Cond {
        Cond::Compare { field: field.into(), op: CompareOp::Eq, value: value.into() }
    }

    /// The shape of a data-model rule: a category and an object chosen by name, each given the
    /// model's default, and a search over them.
    fn data_model_steps() -> Vec<Step> {
        let blank = |f: &str| binary(BinaryOp::Or, call(Func::Isnull, vec![field(f)]), binary(BinaryOp::Eq, field(f), text("")));
        let default = |f: &str| assign(f, call(Func::If, vec![blank(f), text("unknown"), field(f)]));
        vec![
            Step::Eval(vec![
                assign("category", call(Func::Case, vec![binary(BinaryOp::Or, named("A"), named("B")), text("group"), binary(BinaryOp::Eq, Expr::Num(1.0), Expr::Num(1.0)), text("unknown")])),
                default("category"),
                assign("object", call(Func::Case, vec![named("A"), field("requestParameters.groupId"), named("B"), field("responseElements.groupId")])),
                default("object"),
            ]),
            Step::Search(Cond::All(vec![compare("category", "group"), compare("action", "created")])),
        ]
    }

    #[test]
    fn a_name_settles_the_data_models_chains_and_the_search_over_them() {
        let selection = Cond::In { field: "eventName".into(), values: vec!["A".into(), "B".into(), "C".into()] };
        let regexes = Regexes::default();
        let object_default = data_model_steps().remove(0);
        let Step::Eval(assigns) = object_default else { unreachable!() };
        let a = specialize(&selection, &data_model_steps(), "A", &regexes).unwrap();
        assert_eq!(a.selection, constant(true));
        assert_eq!(
            a.steps,
            [
                Step::Eval(vec![assign("category", text("group")), assign("category", text("group")), assign("object", field("requestParameters.groupId")), assigns[3].clone()]),
                Step::Search(compare("action", "created")),
            ]
        );
        // No branch holds for C: null, then the default, and the search can never hold.
        let c = specialize(&selection, &data_model_steps(), "C", &regexes).unwrap();
        assert_eq!(
            c.steps,
            [
                Step::Eval(vec![assign("category", text("unknown")), assign("category", text("unknown")), assign("object", call(Func::Null, vec![])), assign("object", text("unknown"))]),
                Step::Search(constant(false)),
            ]
        );
    }

    #[test]
    fn what_the_record_decides_first_is_kept_in_order() {
        let regexes = Regexes::default();
        let unknown = binary(BinaryOp::Eq, field("x"), text("1"));
        let chain = call(Func::Case, vec![unknown.clone(), text("a"), named("B"), text("b"), named("A"), text("c"), named("A"), text("d")]);
        let steps = [Step::Eval(vec![assign("y", chain)])];
        let settled = specialize(&constant(true), &steps, "A", &regexes).unwrap();
        // The branch that holds follows the one the record decides; nothing after it is read.
        let holds = binary(BinaryOp::Eq, text("A"), text("A"));
        assert_eq!(settled.steps, [Step::Eval(vec![assign("y", call(Func::Case, vec![unknown.clone(), text("a"), holds, text("c")]))])]);
        // AND and OR are settled by their left side only: the right one is read after it.
        let left_decides = call(Func::If, vec![binary(BinaryOp::And, named("B"), unknown.clone()), text("t"), text("f")]);
        let right_would = call(Func::If, vec![binary(BinaryOp::And, unknown.clone(), named("B")), text("t"), text("f")]);
        let steps = [Step::Eval(vec![assign("p", left_decides), assign("q", right_would.clone())])];
        let settled = specialize(&constant(true), &steps, "A", &regexes).unwrap();
        let right_settled = call(Func::If, vec![binary(BinaryOp::And, unknown.clone(), binary(BinaryOp::Eq, text("A"), text("B"))), text("t"), text("f")]);
        assert_eq!(settled.steps, [Step::Eval(vec![assign("p", text("f")), assign("q", right_settled)])]);
        // Likewise in a search: the record's test stays ahead of the one that ends the list.
        let search = Cond::Any(vec![compare("x", "1"), compare("eventName", "a*"), compare("z", "2")]);
        let settled = specialize(&constant(true), &[Step::Search(search)], "A", &regexes).unwrap();
        assert_eq!(settled.steps, [Step::Search(Cond::Any(vec![compare("x", "1"), constant(true)]))]);
    }

    #[test]
    fn a_step_that_changes_the_name_ends_what_it_settles() {
        let regexes = Regexes::default();
        let search = Step::Search(compare("eventName", "A"));
        let renamed = [Step::Rename(vec![Rename { from: "x".into(), to: "eventName".into() }]), search.clone()];
        assert_eq!(specialize(&constant(true), &renamed, "A", &regexes), None);
        let assigned = [Step::Eval(vec![assign("eventName", field("x"))]), search.clone()];
        assert_eq!(specialize(&constant(true), &assigned, "A", &regexes), None);
        // A name assigned a constant is followed.
        let assigned = [Step::Eval(vec![assign("eventName", text("B"))]), search];
        let settled = specialize(&constant(true), &assigned, "A", &regexes).unwrap();
        assert_eq!(settled.steps, [Step::Eval(vec![assign("eventName", text("B"))]), Step::Search(constant(false))]);
    }

    #[test]
    fn sigma_tests_of_the_name_read_the_records_own_name() {
        let regexes = Regexes::default();
        let sigma = |pattern: &str| Cond::Sigma { field: "eventName".into(), test: sigma::SigmaTest::Pattern { pattern: pattern.into(), cased: false } };
        let source = Cond::Sigma { field: "eventSource".into(), test: sigma::SigmaTest::Null };
        let selection = Cond::All(vec![source.clone(), Cond::Any(vec![sigma("revoke*"), sigma("authorize*")])]);
        let settled = specialize(&selection, &[], "AuthorizeSecurityGroupIngress", &regexes).unwrap();
        assert_eq!(settled.selection, source);
        // The steps' `eventName` is the row's; Sigma's stays the record's.
        let steps = [Step::Eval(vec![assign("eventName", text("Other"))]), Step::Search(sigma("authorize*"))];
        let settled = specialize(&constant(true), &steps, "AuthorizeSecurityGroupIngress", &regexes).unwrap();
        assert_eq!(settled.steps, [steps[0].clone()]);
    }
}
