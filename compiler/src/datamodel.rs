//! CIM data models over raw CloudTrail: what `| tstats ... from datamodel=M` reads, derived from
//! the record as the Splunk Add-on for AWS 7.10.0 and the CIM model definition make it.
//!
//! A data-model search reads the events its model's constraint admits, with the model's fields:
//! the add-on's field (alias, `EVAL-`, lookup) under the model's calculated default. Sources:
//! - Add-on 7.10.0 (`skykid17/smartlp`, `rag/repos/splunk_repo/Splunk_TA_aws/default/`):
//!   `eventtypes.conf` and `tags.conf` tag CloudTrail events `authentication` only through
//!   `aws_cloudtrail_consolelogin_auth` (`eventName="ConsoleLogin" additionalEventData.LoginTo=*`)
//!   and `aws_cloudtrail_auth_privileged` (`eventName="ConsoleLogin" AND NOT
//!   additionalEventData.LoginTo=*`): every `ConsoleLogin`, nothing else. The fields are those of
//!   `props.conf` `[aws:cloudtrail]` (`docs/addon-fields.md`, with line numbers), restricted to the
//!   branches a `ConsoleLogin` record can take.
//! - CIM `Authentication.json` (Splunk_SA_CIM, as in the public mirror `aplura/splunk-sa-cim`,
//!   `default/data/models/Authentication.json`): the constraint `tag=authentication NOT
//!   (action=success user=*$)` and the calculations `Authentication_fillnull_action` (`unknown`),
//!   `_app` (`sourcetype`), `_src`, `_dest`, `_user` (`unknown`) of a null or empty value.
//!
//! The Change model is not mapped: its constraint (`tag=change`) admits the events of a dozen
//! eventtypes (`Create*`, `*Delete*` anywhere in the raw text, ~90 named eventNames...) and its
//! fields `object`, `object_id`, `object_category` are `case()`s of 100+ branches and a lookup
//! that tripline does not derive.

use tripline::rule::{Assign, Cond, Step};

use crate::ast::SearchNode;
use crate::lower::{expr, search_cond};
use crate::parse::{parse_eval, parse_search};

/// One model as tripline reads it from CloudTrail.
pub struct DataModel {
    pub name: &'static str,
    /// The raw records the model's constraint admits (the tagged eventtypes).
    pub events: &'static str,
    /// The rest of the model's constraint, over its own fields (unprefixed).
    pub constraint: &'static str,
    /// Each field the model maps: its name and its value as an eval expression over the record.
    pub fields: &'static [(&'static str, &'static str)],
}

pub const AUTHENTICATION: DataModel = DataModel {
    name: "Authentication",
    events: "eventName=ConsoleLogin",
    constraint: "NOT (action=success user=*$)",
    fields: &[
        // `action`: the add-on's action/status lookup (tripline's `action`), then the fillnull.
        ("action", r#"if(isnull(action) OR action="", "unknown", action)"#),
        // `app`: FIELDALIAS eventType (props l.201), then `if(isnull(app) OR app="",sourcetype,app)`.
        ("app", r#"if(isnull(eventType) OR eventType="", "aws:cloudtrail", eventType)"#),
        // `signature`: FIELDALIAS eventName (props l.204).
        ("signature", "eventName"),
        // `src`: FIELDALIAS sourceIPAddress (props l.205), then the fillnull.
        ("src", r#"if(isnull(sourceIPAddress) OR sourceIPAddress="", "unknown", sourceIPAddress)"#),
        // `dest`: EVAL-dest branch 11 for ConsoleLogin (props l.290-302), then the fillnull.
        (
            "dest",
            r#"if(isnull(coalesce('additionalEventData.LoginTo', eventSource)) OR coalesce('additionalEventData.LoginTo', eventSource)="", "unknown", coalesce('additionalEventData.LoginTo', eventSource))"#,
        ),
        // `user`: EVAL-user branches 15 and 16 for ConsoleLogin (props l.234-254; every
        // ConsoleLogin is `eventType=AwsConsoleSignIn`), then the fillnull. Not tripline's `user`
        // field, which keeps seed B's documented 5.x meaning (userIdentity.principalId).
        (
            "user",
            r#"if(isnull(if('userIdentity.type'="AssumedRole" AND isnotnull('additionalEventData.LoginTo'), coalesce(mvindex(split('userIdentity.principalId', ":"), 1), 'userIdentity.userName'), coalesce('userIdentity.userName', 'userIdentity.sessionContext.sessionIssuer.userName'))) OR if('userIdentity.type'="AssumedRole" AND isnotnull('additionalEventData.LoginTo'), coalesce(mvindex(split('userIdentity.principalId', ":"), 1), 'userIdentity.userName'), coalesce('userIdentity.userName', 'userIdentity.sessionContext.sessionIssuer.userName'))="", "unknown", if('userIdentity.type'="AssumedRole" AND isnotnull('additionalEventData.LoginTo'), coalesce(mvindex(split('userIdentity.principalId', ":"), 1), 'userIdentity.userName'), coalesce('userIdentity.userName', 'userIdentity.sessionContext.sessionIssuer.userName')))"#,
        ),
        // `user_id`: EVAL-user_id branches 1, 2, 5, 6 as a ConsoleLogin takes them (props
        // l.269-274); the model has no default for it.
        (
            "user_id",
            r#"case('userIdentity.type'="IAMUser", coalesce(mvindex(split('userIdentity.principalId', ":"), 0), 'userIdentity.accountId'), 'userIdentity.type'="AssumedRole", coalesce(mvindex(split('userIdentity.sessionContext.sessionIssuer.principalId', ":"), 0), mvindex(split('userIdentity.principalId', ":"), 0)), eventType="AwsApiCall", mvindex(split('responseElements.assumedRoleUser.assumedRoleId', ":"), 0), 1=1, 'userIdentity.userName')"#,
        ),
    ],
};

/// The data models tripline maps.
pub fn model(name: &str) -> Result<&'static DataModel, String> {
    match name {
        "Authentication" => Ok(&AUTHENTICATION),
        "Change" => Err(
            "the CIM Change data model is not mapped to raw CloudTrail: its constraint (`tag=change`) admits a dozen \
             eventtypes of the add-on and its `object`, `object_id` and `object_category` fields are `case()`s of 100+ \
             branches and a lookup that tripline does not derive"
                .into(),
        ),
        other => Err(format!("the CIM data model `{other}` is not mapped to raw CloudTrail")),
    }
}

/// The selection, its indexed eventNames, and the steps that give the model's fields (as
/// `<Model>.<field>`) and apply its constraint and the search's `where`, for the `<Model>.<field>`
/// names `used` and those the constraint reads.
pub fn lower_model(model: &DataModel, filter: &SearchNode, used: &[String]) -> Result<(Cond, Vec<String>, Vec<Step>), String> {
    let events = parse_search(model.events)?;
    let prefix = format!("{}.", model.name);
    let constraint = prefixed(&parse_search(model.constraint)?, &prefix);
    let mut names: Vec<String> = Vec::new();
    let mut note = |f: &str| {
        if !names.iter().any(|n| n == f) {
            names.push(f.to_string());
        }
    };
    let mut reads = std::collections::BTreeSet::new();
    crate::lower::cond_fields(&search_cond(&constraint), &mut reads);
    crate::lower::cond_fields(&search_cond(filter), &mut reads);
    used.iter().for_each(|f| note(f));
    reads.iter().for_each(|f| note(f));
    let mut assigns = Vec::new();
    for name in names.iter().filter(|n| *n != "_time") {
        let field = name
            .strip_prefix(&prefix)
            .ok_or_else(|| format!("`{name}` is not a field of the `{}` data model (fields are `{prefix}<name>`)", model.name))?;
        let (_, derivation) = model
            .fields
            .iter()
            .find(|(f, _)| *f == field)
            .ok_or_else(|| format!("the `{}` data model field `{field}` is not mapped to raw CloudTrail", model.name))?;
        assigns.push(Assign { field: name.clone(), expr: expr(&parse_eval(derivation)?)? });
    }
    let event_names = match &events {
        SearchNode::Compare { field, value, .. } if field == "eventName" => vec![value.clone()],
        _ => Vec::new(),
    };
    let mut steps = vec![Step::Eval(assigns), Step::Search(search_cond(&constraint))];
    if !matches!(filter, SearchNode::MatchAll) {
        steps.push(Step::Search(search_cond(filter)));
    }
    Ok((search_cond(&events), event_names, steps))
}

/// `node` with every field name prefixed.
fn prefixed(node: &SearchNode, prefix: &str) -> SearchNode {
    match node {
        SearchNode::And(items) => SearchNode::And(items.iter().map(|i| prefixed(i, prefix)).collect()),
        SearchNode::Or(items) => SearchNode::Or(items.iter().map(|i| prefixed(i, prefix)).collect()),
        SearchNode::Not(inner) => SearchNode::Not(Box::new(prefixed(inner, prefix))),
        SearchNode::Paren(inner) => SearchNode::Paren(Box::new(prefixed(inner, prefix))),
        SearchNode::Compare { field, op, value } => SearchNode::Compare { field: format!("{prefix}{field}"), op: *op, value: value.clone() },
        SearchNode::In { field, values } => SearchNode::In { field: format!("{prefix}{field}"), values: values.clone() },
        SearchNode::MatchAll => SearchNode::MatchAll,
    }
}
