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
//!
//! The Change model (`All_Changes`) is mapped for the eventNames in [`CHANGE_MAPPED`] only. Its
//! constraint (`tag=change`, CIM `Change.json`) admits the events of seven add-on eventtypes,
//! one of them a raw-text search (`*Delete* OR *Remove* OR *Reboot*`), and its `object`,
//! `object_id`, `object_category` come from `case()`s of 100+ branches and a lookup
//! (`docs/addon-fields.md`, A.6, A.7). A search over it compiles when the eventNames its filter
//! can admit, read from the add-on's lookups (`action`/`status`: [`tripline::cloudtrail::
//! action_status_rows`]; `object_category`: `data/aws_cloudtrail_eventname_lookup_7100.csv`, the
//! add-on 7.10.0's `lookups/` file, complete) are all mapped: for those the branches each field
//! takes were read off the add-on's `props.conf`, and the eventtype that tags each `change`
//! depends on its eventName alone. The selection is then those eventNames (the engine's index).

use tripline::rule::{Assign, BinaryOp, Cond, Expr, Func, Step};

use crate::ast::SearchNode;
use crate::lower::{expr, search_cond};
use crate::narrow::narrow;
use crate::parse::{parse_eval, parse_search};

/// One model as tripline reads it from CloudTrail.
pub struct DataModel {
    pub name: &'static str,
    /// The dataset whose fields a search names (`<root>.<field>`).
    pub root: &'static str,
    /// The raw records the model's constraint admits (the tagged eventtypes); `None` where they
    /// follow from the search's filter ([`change_events`]).
    pub events: Option<&'static str>,
    /// The rest of the model's constraint, over its own fields (unprefixed).
    pub constraint: &'static str,
    /// Each field the model maps, as an eval expression over the record.
    pub field: fn(&str) -> Option<String>,
    /// The fields that then take the model's fill: null or empty is `unknown`.
    pub filled: &'static [&'static str],
    /// Fields mapped for some eventNames only, with those.
    pub partial: &'static [(&'static str, &'static [&'static str])],
}

pub const AUTHENTICATION: DataModel = DataModel {
    name: "Authentication",
    root: "Authentication",
    events: Some("eventName=ConsoleLogin"),
    constraint: "NOT (action=success user=*$)",
    field: |name| AUTHENTICATION_FIELDS.iter().find(|(f, _)| *f == name).map(|(_, d)| d.to_string()),
    filled: &[],
    partial: &[],
};

/// The Authentication model's fields, each with the model's fill where it has one.
const AUTHENTICATION_FIELDS: &[(&str, &str)] = &[
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
];

/// The eventNames the Change model is mapped for: the six security-group calls and every
/// eventName whose action/status rows give `created` or `started` with `success` (the
/// provisioning calls), each with the add-on 7.10.0 eventtype that tags it `change`
/// (`eventtypes.conf`, `tags.conf`) and what that eventtype needs besides the eventName ("":
/// nothing). `Create*` calls are `aws_cloudtrail_change`'s; `RunInstances` and `StartInstances`
/// are `instance` in the eventName lookup, so `aws_cloudtrail_instance`'s; the security-group
/// calls match `aws_cloudtrail_notable_network_events`' `eventName="*security*"`; the IAM and
/// Cognito calls are `aws_cloudtrail_iam_change_acctmgmt`'s, which also wants their
/// eventSource. Every field of [`CHANGE`] is written for exactly these (the branches of each
/// `case()` they take). The raw-text eventtype `aws_cloudtrail_delete_events` (`*Delete* OR
/// *Remove* OR *Reboot*` anywhere in the record) is not read: it could add only an IAM call from
/// another eventSource, which AWS does not write.
pub const CHANGE_MAPPED: &[(&str, &str, &str)] = &[
    ("AddClientIDToOpenIDConnectProvider", "aws_cloudtrail_iam_change_acctmgmt", IAM_OR_COGNITO),
    ("AddRoleToInstanceProfile", "aws_cloudtrail_iam_change_acctmgmt", IAM_OR_COGNITO),
    ("AddUserToGroup", "aws_cloudtrail_iam_change_acctmgmt", IAM_OR_COGNITO),
    ("AdminCreateUser", "aws_cloudtrail_iam_change_acctmgmt", IAM_OR_COGNITO),
    ("AuthorizeSecurityGroupEgress", "aws_cloudtrail_notable_network_events", ""),
    ("AuthorizeSecurityGroupIngress", "aws_cloudtrail_notable_network_events", ""),
    ("CreateAccountAlias", "aws_cloudtrail_change", ""),
    ("CreateAuthorizer", "aws_cloudtrail_change", ""),
    ("CreateBucket", "aws_cloudtrail_change", ""),
    ("CreateClientVpnEndpoint", "aws_cloudtrail_change", ""),
    ("CreateConnection", "aws_cloudtrail_change", ""),
    ("CreateDBClusterSnapshot", "aws_cloudtrail_change", ""),
    ("CreateDeliveryStream", "aws_cloudtrail_change", ""),
    ("CreateFunction20150331", "aws_cloudtrail_change", ""),
    ("CreateGroup", "aws_cloudtrail_change", ""),
    ("CreateInstanceProfile", "aws_cloudtrail_change", ""),
    ("CreateKeyspace", "aws_cloudtrail_change", ""),
    ("CreateLoadBalancer", "aws_cloudtrail_change", ""),
    ("CreateLogGroup", "aws_cloudtrail_change", ""),
    ("CreateLogStream", "aws_cloudtrail_change", ""),
    ("CreateNamespace", "aws_cloudtrail_change", ""),
    ("CreateNetworkAcl", "aws_cloudtrail_change", ""),
    ("CreateNetworkInterface", "aws_cloudtrail_change", ""),
    ("CreateOpenIDConnectProvider", "aws_cloudtrail_change", ""),
    ("CreatePlatformEndpoint", "aws_cloudtrail_change", ""),
    ("CreatePolicy", "aws_cloudtrail_change", ""),
    ("CreatePolicyVersion", "aws_cloudtrail_change", ""),
    ("CreateQueue", "aws_cloudtrail_change", ""),
    ("CreateRole", "aws_cloudtrail_change", ""),
    ("CreateSAMLProvider", "aws_cloudtrail_change", ""),
    ("CreateSecurityGroup", "aws_cloudtrail_change", ""),
    ("CreateServiceLinkedRole", "aws_cloudtrail_change", ""),
    ("CreateSnapshot", "aws_cloudtrail_change", ""),
    ("CreateStack", "aws_cloudtrail_change", ""),
    ("CreateTable", "aws_cloudtrail_change", ""),
    ("CreateTags", "aws_cloudtrail_change", ""),
    ("CreateUser", "aws_cloudtrail_change", ""),
    ("CreateVolume", "aws_cloudtrail_change", ""),
    ("CreateVpc", "aws_cloudtrail_change", ""),
    ("CreateWorkgroup", "aws_cloudtrail_change", ""),
    ("DeleteSecurityGroup", "aws_cloudtrail_notable_network_events", ""),
    ("RevokeSecurityGroupEgress", "aws_cloudtrail_notable_network_events", ""),
    ("RevokeSecurityGroupIngress", "aws_cloudtrail_notable_network_events", ""),
    ("RunInstances", "aws_cloudtrail_instance", ""),
    ("StartInstances", "aws_cloudtrail_instance", ""),
    ("TagUser", "aws_cloudtrail_iam_change_acctmgmt", IAM_OR_COGNITO),
];

/// `aws_cloudtrail_iam_change_acctmgmt`'s eventSource terms (its eventName terms hold for the
/// IAM calls mapped).
const IAM_OR_COGNITO: &str = "eventSource=*iam*.amazonaws.com OR eventSource=*cognito*.amazonaws.com";

/// The security-group calls, for the fields mapped for them only.
const SECURITY_GROUP_CALLS: &[&str] = &[
    "AuthorizeSecurityGroupEgress",
    "AuthorizeSecurityGroupIngress",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "RevokeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
];

/// The CIM Change model's `All_Changes` dataset over the eventNames of [`CHANGE_MAPPED`]. Each
/// field is the add-on 7.10.0's (`props.conf` `[aws:cloudtrail]`, line numbers as in
/// `docs/addon-fields.md`), restricted to the branches the mapped eventNames take, in the
/// add-on's order; those in [`DataModel::filled`] then take the model's
/// `All_Changes_fillnull_<field>` calculation (`if(isnull(f) OR f="","unknown",f)`; CIM
/// `Change.json`).
pub const CHANGE: DataModel = DataModel {
    name: "Change",
    root: "All_Changes",
    events: None,
    constraint: "",
    field: change_field,
    filled: &["action", "command", "object", "object_category", "object_id", "src", "status", "user"],
    partial: &[("object", SECURITY_GROUP_CALLS)],
};

/// A field of [`CHANGE`] as an eval expression over the record (before the fill).
fn change_field(name: &str) -> Option<String> {
    Some(match name {
        // The add-on's action/status lookup (props l.750), tripline's `action` and `status`.
        "action" | "status" => name.to_string(),
        // FIELDALIAS eventName (tripline's `command`); FIELDALIAS sourceIPAddress (l.205).
        "command" => "command".into(),
        "src" => "sourceIPAddress".into(),
        // EVAL-object (l.307-427) branch 12, `like(eventName, "%SecurityGroup%")`, for the
        // security-group calls (branches 1-11 name other eventNames); mapped for those only.
        "object" => "coalesce('responseElements.groupId', 'requestParameters.groupId')".into(),
        // The eventName lookup (l.753, `default_match = unknown`), its rows for the mapped names.
        "object_category" => {
            let mut by_category: Vec<(&str, Vec<&str>)> = Vec::new();
            for (event, ..) in CHANGE_MAPPED {
                let category = object_category(event);
                match by_category.iter_mut().find(|(c, _)| *c == category) {
                    Some((_, events)) => events.push(event),
                    None => by_category.push((category, vec![event])),
                }
            }
            let branches: Vec<String> = by_category
                .iter()
                .map(|(category, events)| {
                    let test: Vec<String> = events.iter().map(|e| format!("eventName=\"{e}\"")).collect();
                    format!("{}, \"{category}\"", test.join(" OR "))
                })
                .collect();
            format!("case({}, 1=1, \"unknown\")", branches.join(", "))
        }
        // EVAL-object_id (l.432-536): the branches the mapped eventNames take, in order (3,
        // 11-16, 24, 25, 28-33, 38-48, 73), a `like()` branch as the names it takes (11
        // `%Instances`: StartInstances; 12 `%SecurityGroup%`; 13 `%Volume`: CreateVolume, whose
        // `if` takes `responseElements.volumeId`; 14 `%NetworkAcl%`; 15 `%Bucket%`); the rest
        // (CreateGroup, CreateRole, TagUser...) take none and are null.
        "object_id" => concat!(
            "case(",
            r#"eventName="RunInstances", 'responseElements.instancesSet.items{}.instanceId', "#,
            r#"eventName="StartInstances", coalesce('requestParameters.instancesSet.items{}.instanceId','eventSource'), "#,
            r#"eventName="AuthorizeSecurityGroupEgress" OR eventName="AuthorizeSecurityGroupIngress" OR eventName="CreateSecurityGroup" OR eventName="DeleteSecurityGroup" OR eventName="RevokeSecurityGroupEgress" OR eventName="RevokeSecurityGroupIngress", coalesce('responseElements.groupId', 'requestParameters.groupId'), "#,
            r#"eventName="CreateVolume", 'responseElements.volumeId', "#,
            r#"eventName="CreateNetworkAcl", coalesce('requestParameters.networkAclId', 'responseElements.networkAcl.networkAclId'), "#,
            r#"eventName="CreateBucket", 'requestParameters.bucketName', "#,
            r#"eventName="CreateUser", 'responseElements.user.userId', "#,
            r#"eventName="CreateDeliveryStream", 'requestParameters.deliveryStreamName', "#,
            r#"eventName="CreateKeyspace", 'requestParameters.keyspaceName', "#,
            r#"eventName="CreateQueue", 'requestParameters.queueName', "#,
            r#"eventName="CreateTable", 'requestParameters.tableName', "#,
            r#"eventName="CreateFunction20150331", 'requestParameters.functionName', "#,
            r#"eventName="CreateLogGroup", 'requestParameters.logGroupName', "#,
            r#"eventName="CreateLogStream", 'requestParameters.logStreamName', "#,
            r#"eventName="CreateNetworkInterface", 'responseElements.networkInterface.networkInterfaceId', "#,
            r#"eventName="CreateAuthorizer", 'requestParameters.createAuthorizerInput.name', "#,
            r#"eventName="CreateClientVpnEndpoint", 'requestParameters.CreateClientVpnEndpointRequest.TagSpecification.Tag.Value', "#,
            r#"eventName="CreateConnection", 'requestParameters.name', "#,
            r#"eventName="CreateDBClusterSnapshot", coalesce('responseElements.dBClusterSnapshotArn','requestParameters.dBClusterSnapshotIdentifier'), "#,
            r#"eventName="CreateLoadBalancer", coalesce('responseElements.loadBalancers{}.loadBalancerArn','requestParameters.name'), "#,
            r#"eventName="CreateNamespace", coalesce('responseElements.namespace.namespaceId','requestParameters.namespaceName'), "#,
            r#"eventName="CreatePolicy", coalesce('responseElements.policy.policyId','requestParameters.policyName'), "#,
            r#"eventName="CreateServiceLinkedRole", 'responseElements.role.roleId', "#,
            r#"eventName="CreateSnapshot", 'responseElements.snapshotId', "#,
            r#"eventName="CreateVpc", 'responseElements.vpc.vpcId', "#,
            r#"eventName="CreateWorkgroup", 'responseElements.workgroup.workgroupId', "#,
            r#"eventName="AdminCreateUser", coalesce('responseElements.user.username','requestParameters.username'))"#,
        )
        .into(),
        // EVAL-user (l.234-254): branches 3, 4, 6, 12, 16, 18 (its `like()`s as the names they
        // take), 20 and the default 21, as the mapped eventNames take them (the others name other
        // eventNames). Not tripline's `user`
        // field, which keeps seed B's documented 5.x meaning.
        "user" => concat!(
            "case(",
            r#"eventName="AdminCreateUser", coalesce('responseElements.user.username','requestParameters.username'), "#,
            r#"eventName="CreateLogGroup" OR eventName="CreateLogStream" OR eventName="CreateSnapshot" OR eventName="CreateVpc", coalesce('userIdentity.sessionContext.sessionIssuer.userName','userIdentity.userName'), "#,
            r#"eventName="CreateUser", 'responseElements.user.userName', "#,
            r#"eventName="CreateNetworkInterface", 'userIdentity.sessionContext.sessionIssuer.userName', "#,
            r#"eventType="AwsConsoleSignIn", coalesce('userIdentity.userName','userIdentity.sessionContext.sessionIssuer.userName'), "#,
            r#"eventName="RunInstances" OR eventName="StartInstances" OR eventName="CreateVolume" OR eventName="CreateBucket", coalesce('userIdentity.userName','userIdentity.sessionContext.sessionIssuer.userName'), "#,
            r#"eventName="CreateAuthorizer" OR eventName="CreateClientVpnEndpoint" OR eventName="CreateConnection" OR eventName="CreateNamespace" OR eventName="CreatePolicy" OR eventName="CreateServiceLinkedRole" OR eventName="CreateWorkgroup", coalesce(mvindex(split('userIdentity.principalId', ":"), 1),'userIdentity.sessionContext.sessionIssuer.userName','userIdentity.userName'), "#,
            r#"1=1, 'userIdentity.userName')"#,
        )
        .into(),
        // EVAL-user_type (l.275-281) and EVAL-user_agent (l.282) as tripline derives them; the
        // model has no calculation for either.
        "user_type" | "user_agent" => name.to_string(),
        _ => return None,
    })
}

/// The add-on 7.10.0's `lookups/aws_cloudtrail_eventname_lookup_7100.csv` (`eventName`,
/// `object_category`), complete.
const EVENTNAME_LOOKUP: &str = include_str!("../data/aws_cloudtrail_eventname_lookup_7100.csv");

/// The add-on's `object_category` of `event_name`: the first CSV row (`max_matches = 1`), or
/// `unknown` (`default_match`).
fn object_category(event_name: &str) -> &'static str {
    EVENTNAME_LOOKUP
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .find(|(name, _)| *name == event_name)
        .map_or("unknown", |(_, category)| category)
}

/// The eventNames a Change search with `filter` can select: those whose lookup rows can satisfy
/// it. An eventName the lookups do not list has `action`, `status` and `object_category`
/// `unknown`; a filter such an event can pass is refused (it would admit eventNames beyond the
/// mapped ones). Every eventName found must be mapped.
pub fn change_events(filter: &SearchNode) -> Result<Vec<String>, String> {
    let root = format!("{}.", CHANGE.root);
    let holds = |values: &[(&str, &'static str)]| -> bool {
        let known = |field: &str| field.strip_prefix(root.as_str()).and_then(|f| values.iter().find(|(k, _)| *k == f)).map(|(_, v)| *v);
        decides(filter, &known, true)
    };
    if holds(&[("action", "unknown"), ("status", "unknown"), ("object_category", "unknown")]) {
        return Err("its filter admits events the add-on's lookups do not name (`action`, `status` and `object_category` \
                    `unknown`), which the mapping of the Change model does not cover"
            .into());
    }
    let mut names: Vec<String> = Vec::new();
    let candidates = CHANGE_MAPPED.iter().map(|(n, ..)| *n).chain(EVENTNAME_LOOKUP.lines().skip(1).filter_map(|l| l.split(',').next()));
    for name in candidates {
        if names.iter().any(|n| n == name) {
            continue;
        }
        let category = object_category(name);
        let rows = tripline::cloudtrail::action_status_rows(name).unwrap_or(&[("*", "unknown", "unknown")]);
        if rows.iter().any(|&(_, action, status)| holds(&[("action", action), ("status", status), ("object_category", category)])) {
            names.push(name.to_string());
        }
    }
    if let Some(name) = names.iter().find(|n| !CHANGE_MAPPED.iter().any(|(m, ..)| m == n)) {
        return Err(format!("its filter admits `{name}`, for which the Change model's fields are not mapped"));
    }
    if names.is_empty() {
        return Err("its filter admits no eventName the add-on's lookups name".into());
    }
    Ok(names)
}

/// Whether `node` holds for an event whose fields known to `known` have those values (exact,
/// case-insensitive, as `search` compares). A comparison of a field it does not know may go either
/// way: it is taken as `open` (true: whether the node *can* hold; false: whether it *must*).
fn decides(node: &SearchNode, known: &dyn Fn(&str) -> Option<&'static str>, open: bool) -> bool {
    let literal = |v: &str| !v.contains('*');
    match node {
        SearchNode::And(items) => items.iter().all(|i| decides(i, known, open)),
        SearchNode::Or(items) => items.iter().any(|i| decides(i, known, open)),
        SearchNode::Paren(inner) => decides(inner, known, open),
        SearchNode::Not(inner) => !decides(inner, known, !open),
        SearchNode::Compare { field, op, value } => match (known(field), op) {
            (Some(v), tripline::rule::CompareOp::Eq) if literal(value) => v.eq_ignore_ascii_case(value),
            (Some(v), tripline::rule::CompareOp::Ne) if literal(value) => !v.eq_ignore_ascii_case(value),
            _ => open,
        },
        SearchNode::In { field, values } => match known(field) {
            Some(v) if values.iter().all(|x| literal(x)) => values.iter().any(|x| v.eq_ignore_ascii_case(x)),
            _ => open,
        },
        SearchNode::MatchAll => true,
    }
}

/// The data models tripline maps.
pub fn model(name: &str) -> Result<&'static DataModel, String> {
    match name {
        "Authentication" => Ok(&AUTHENTICATION),
        "Change" => Ok(&CHANGE),
        other => Err(format!("the CIM data model `{other}` is not mapped to raw CloudTrail")),
    }
}

/// The selection, its indexed eventNames, and the steps that give the model's fields (as
/// `<Model>.<field>`) and apply its constraint and the search's `where`, for the `<Model>.<field>`
/// names `used` and those the constraint reads.
pub fn lower_model(model: &DataModel, filter: &SearchNode, used: &[String]) -> Result<(Cond, Vec<String>, Vec<Step>), String> {
    let events = match model.events {
        Some(events) => parse_search(events)?,
        None => SearchNode::In { field: "eventName".into(), values: change_events(filter)? },
    };
    let prefix = format!("{}.", model.root);
    let constraint = if model.constraint.is_empty() { SearchNode::MatchAll } else { prefixed(&parse_search(model.constraint)?, &prefix) };
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
    let event_names = match &events {
        SearchNode::Compare { field, value, .. } if field == "eventName" => vec![value.clone()],
        SearchNode::In { field, values } if field == "eventName" => values.clone(),
        _ => Vec::new(),
    };
    let mut assigns = Vec::new();
    for name in names.iter().filter(|n| *n != "_time") {
        let field = name
            .strip_prefix(&prefix)
            .ok_or_else(|| format!("`{name}` is not a field of the `{}` data model (fields are `{prefix}<name>`)", model.name))?;
        let derivation = (model.field)(field)
            .ok_or_else(|| format!("the `{}` data model field `{field}` is not mapped to raw CloudTrail", model.name))?;
        if let Some((_, covered)) = model.partial.iter().find(|(f, _)| *f == field) {
            if let Some(other) = event_names.iter().find(|n| !covered.contains(&n.as_str())) {
                return Err(format!("the `{}` data model field `{field}` is not mapped for `{other}`", model.name));
            }
        }
        assigns.push(Assign { field: name.clone(), expr: narrow(expr(&parse_eval(&derivation)?)?, &event_names) });
        if model.filled.contains(&field) {
            assigns.push(Assign { field: name.clone(), expr: unknown_if_empty(name) });
        }
    }
    let mut steps = vec![Step::Eval(assigns)];
    // The eventtypes that tag a mapped eventName `change` on more than its name.
    if model.events.is_none() {
        let conditioned: Vec<String> = CHANGE_MAPPED
            .iter()
            .filter(|(n, _, admission)| !admission.is_empty() && event_names.iter().any(|e| e == n))
            .map(|(n, ..)| n.to_string())
            .collect();
        if !conditioned.is_empty() {
            let not_these = Cond::Not(Box::new(Cond::In { field: "eventName".into(), values: conditioned }));
            let admitted = search_cond(&parse_search(IAM_OR_COGNITO)?);
            steps.push(Step::Search(Cond::Any(vec![not_these, admitted])));
        }
    }
    if !matches!(constraint, SearchNode::MatchAll) {
        steps.push(Step::Search(search_cond(&constraint)));
    }
    if !matches!(filter, SearchNode::MatchAll) {
        steps.push(Step::Search(search_cond(filter)));
    }
    Ok((search_cond(&events), event_names, steps))
}

/// The CIM model's fill of `field`: `if(isnull(f) OR f="","unknown",f)`.
fn unknown_if_empty(field: &str) -> Expr {
    let value = || Box::new(Expr::Field(field.to_string()));
    let empty = Expr::Binary { op: BinaryOp::Eq, left: value(), right: Box::new(Expr::Str(String::new())) };
    let null = Expr::Call { func: Func::Isnull, args: vec![Expr::Field(field.to_string())] };
    Expr::Call {
        func: Func::If,
        args: vec![Expr::Binary { op: BinaryOp::Or, left: Box::new(null), right: Box::new(empty) }, Expr::Str("unknown".into()), *value()],
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_events_follow_the_lookups_or_refuse() {
        let filter = parse_search(
            r#"All_Changes.object_category = "security_group" (All_Changes.action = modified OR All_Changes.action = deleted)"#,
        )
        .unwrap();
        let names = change_events(&filter).unwrap();
        assert_eq!(names.len(), 5, "{names:?}");
        assert!(!names.iter().any(|n| n == "CreateSecurityGroup"), "CreateSecurityGroup is `created`");
        // `unknown` is what every event the lookups do not name has.
        let wide = parse_search("All_Changes.action!=created").unwrap();
        assert!(change_events(&wide).unwrap_err().contains("do not name"));
        // A call the lookups name but the mapping does not cover.
        let deleted = parse_search("All_Changes.action=deleted All_Changes.status=success").unwrap();
        assert!(change_events(&deleted).unwrap_err().contains("not mapped"));
        let started = parse_search("All_Changes.action=started All_Changes.status=success").unwrap();
        assert_eq!(change_events(&started).unwrap(), ["StartInstances"]);
        assert_eq!(object_category("RunInstances"), "instance");
        assert_eq!(object_category("NoSuchCall"), "unknown");
    }

    #[test]
    fn every_mapped_event_is_in_the_lookups_and_its_fields_parse() {
        for (name, ..) in CHANGE_MAPPED {
            assert!(tripline::cloudtrail::action_status_rows(name).is_some(), "{name} has no action/status rows");
        }
        assert_eq!(object_category("CreateSecurityGroup"), "security_group");
        for field in ["action", "status", "command", "src", "object", "object_category", "object_id", "user", "user_type", "user_agent"] {
            let text = change_field(field).unwrap();
            expr(&parse_eval(&text).unwrap()).unwrap_or_else(|e| panic!("{field}: {e}"));
        }
        assert!(change_field("object_category").unwrap().contains(r#"eventName="RunInstances" OR eventName="StartInstances", "instance""#));
    }
}
