//! The Splunk Add-on for AWS's view of a CloudTrail record, in one place.
//!
//! Detections name fields the way their SPL does (`src_ip`, `aws_account_id`, `errorCode`,
//! `user`, `serviceEventDetails.jobArn`); this module turns such a name into a value read
//! lazily from the raw record, applying the add-on's aliases and calculated fields
//! (`splunk-semantics.md`, "Fields the add-on derives"; `docs/addon-fields.md` has each row's
//! source line in add-on 7.10.0). Names it does not know are raw JSON paths, except those in
//! [`NOT_DERIVED`], which it cannot answer yet.
//!
//! Each calculated field is one EVAL of the add-on, and, as in Splunk, reads only raw fields
//! (EVALs do not see each other), except the action/status lookup, which Splunk runs after the
//! EVALs and so keys on the calculated `errorCode`. A `case()` is taken branch by branch, and the
//! first true branch gives the value even when that value is null.

use std::borrow::Cow;
use std::ops::Range;

use crate::json::{Kind, RawObject, ScanError, ScannedObject};


/// Which `userIdentity` field stands for `user` (add-on 5.x uses `principalId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserSource {
    #[default]
    PrincipalId,
    UserName,
    Arn,
}

impl UserSource {
    fn path(self) -> &'static str {
        match self {
            UserSource::PrincipalId => "userIdentity.principalId",
            UserSource::UserName => "userIdentity.userName",
            UserSource::Arn => "userIdentity.arn",
        }
    }
}

/// The two values [`Event::calculated_error_code`] gives.
const CALCULATED_ERROR_CODES: [&str; 2] = ["failure", "success"];

/// Add-on field names this table does not derive yet: a rule reading one cannot run as Splunk
/// does, so it is not compiled (the coverage table says so). All four come from the CIM data
/// model side of the add-on (`EVAL-dest`, `EVAL-object`, `EVAL-object_id` and the eventName
/// lookup), which no `cloudtrail`-macro detection reads.
pub const NOT_DERIVED: [&str; 4] = ["dest", "object", "object_id", "object_category"];

/// Rows of the action/status lookup: `(errorCode, action, status)`, in file order.
pub type LookupRows = &'static [(&'static str, &'static str, &'static str)];

/// The rows of the add-on's `lookups/aws_cloudtrail_action_status_7100.csv` (Splunk Add-on for
/// AWS 7.10.0; `[aws-cloudtrail-action-status-lookup]`, props.conf l.750), for only these
/// eventNames, grouped by identical rows. Each group's rows are `(errorCode, action, status)` in
/// file order; `*` matches any errorCode (the CSV's only wildcard). The eventNames are those the
/// ESCU detections starting with the `cloudtrail` macro select by name and the CSV has (the
/// explicit `eventName=` and `eventName IN (...)` values; `Assumerolewithsaml` matches
/// `AssumeRoleWithSAML` as Splunk's search does), plus the IAM policy-document calls that can
/// fail with `MalformedPolicyDocumentException`, which `aws_iam_assume_role_policy_brute_force`
/// selects by `status=failure` without naming them, and the eventNames the CIM Change model's
/// compiled detections select by `action` and `status` (`compiler/src/datamodel.rs`,
/// `CHANGE_MAPPED`: the security-group calls and the provisioning calls, every eventName whose
/// rows give `created` or `started` with `success`). Every other
/// eventName gets no `action` and no
/// `status` here, where the full CSV may give it one (`docs/addon-fields.md`, "In tripline").
const ACTION_STATUS: &[(&[&str], LookupRows)] = &[
    (&["AssumeRoleWithSAML", "ConsoleLogin"], &[("success", "success", "success"), ("*", "failure", "failure")]),
    (
        &["AuthorizeSecurityGroupEgress", "CreateAccessKey", "ReplaceNetworkAclEntry"],
        &[("success", "modified", "success"), ("*", "modified", "failure")],
    ),
    (
        &["AuthorizeSecurityGroupIngress"],
        &[("Client.UnauthorizedOperation", "modified", "failure"), ("success", "modified", "success"), ("*", "modified", "failure")],
    ),
    (
        &["CreateSecurityGroup"],
        &[("Client.UnauthorizedOperation", "created", "failure"), ("success", "created", "success"), ("*", "created", "failure")],
    ),
    (
        &["RevokeSecurityGroupIngress"],
        &[("Client.UnauthorizedOperation", "deleted", "failure"), ("success", "deleted", "success"), ("*", "deleted", "failure")],
    ),
    (
        &[
            "CreateLoginProfile",
            "CreateVirtualMFADevice",
            "DeactivateMFADevice",
            "PutGroupPolicy",
            "PutRolePolicy",
            "SetDefaultPolicyVersion",
            "UpdateAccountPasswordPolicy",
            "UpdateAssumeRolePolicy",
            "UpdateLoginProfile",
            "UpdateSAMLProvider",
        ],
        &[("success", "modified", "success"), ("*", "unknown", "failure")],
    ),
    (
        &[
            "AdminCreateUser",
            "CreateAuthorizer",
            "CreateClientVpnEndpoint",
            "CreateConnection",
            "CreateDBClusterSnapshot",
            "CreateDeliveryStream",
            "CreateFunction20150331",
            "CreateKeyspace",
            "CreateLoadBalancer",
            "CreateLogGroup",
            "CreateLogStream",
            "CreateNamespace",
            "CreatePolicy",
            "CreateServiceLinkedRole",
            "CreateSnapshot",
            "CreateTable",
            "CreateVpc",
            "CreateWorkgroup",
            "RunInstances",
        ],
        &[("success", "created", "success"), ("*", "created", "failure")],
    ),
    (
        &[
            "AddClientIDToOpenIDConnectProvider",
            "AddRoleToInstanceProfile",
            "AddUserToGroup",
            "CreateAccountAlias",
            "CreateGroup",
            "CreateInstanceProfile",
            "CreateOpenIDConnectProvider",
            "CreatePlatformEndpoint",
            "CreatePolicyVersion",
            "CreateRole",
            "CreateSAMLProvider",
            "CreateStack",
            "CreateTags",
            "TagUser",
        ],
        &[("success", "created", "success"), ("*", "unknown", "failure")],
    ),
    (
        &["CreateBucket", "CreateNetworkAcl", "CreateVolume"],
        &[("success", "created", "success"), ("AccessDenied", "created", "failure"), ("*", "created", "failure")],
    ),
    (&["CreateUser"], &[("AccessDenied", "created", "failure"), ("success", "created", "success"), ("*", "created", "failure")]),
    // The CSV gives a failing CreateNetworkInterface no row, and a failing CreateQueue `success`.
    (&["CreateNetworkInterface"], &[("success", "created", "success")]),
    (&["CreateQueue"], &[("success", "created", "success"), ("*", "created", "success")]),
    (&["StartInstances"], &[("success", "started", "success"), ("*", "started", "failure")]),
    (
        &["DeleteBucket", "DeleteSecurityGroup", "RevokeSecurityGroupEgress"],
        &[("success", "deleted", "success"), ("*", "deleted", "failure")],
    ),
    (
        &["DeleteAccountPasswordPolicy", "DeleteGroup", "DeletePolicy", "DeleteVirtualMFADevice"],
        &[("success", "deleted", "success"), ("*", "unknown", "failure")],
    ),
    (&["GetAccountPasswordPolicy"], &[("success", "read", "success"), ("*", "read", "failure")]),
    (
        &["CreateNetworkAclEntry", "DeleteNetworkAclEntry"],
        &[("success", "modified", "success"), ("AccessDenied", "modified", "failure"), ("*", "modified", "failure")],
    ),
    (
        &["PutBucketAcl", "PutUserPolicy"],
        &[("AccessDenied", "modified", "failure"), ("success", "modified", "success"), ("*", "modified", "failure")],
    ),
];

/// `EVAL-user_name` branch 12 (props.conf l.255–268; `docs/addon-fields.md` A.2).
const USER_NAME_FROM_SESSION: [&str; 11] = [
    "AttachRolePolicy",
    "CreateAuthorizer",
    "CreateClientVpnEndpoint",
    "CreateConnection",
    "CreateNamespace",
    "CreatePolicy",
    "CreateServiceLinkedRole",
    "CreateWorkgroup",
    "DeleteDBSubnetGroup",
    "DescribeDBEngineVersions",
    "GetSecretValue",
];

/// `EVAL-user_name` branch 13.
const USER_NAME_FROM_ARN: [&str; 39] = [
    "DescribeLogStreams",
    "DescribeLoggingConfiguration",
    "DescribeNotebookInstance",
    "DescribeOrganizationConfiguration",
    "DescribeRepositories",
    "DescribeReservedDBInstances",
    "DescribeReservedInstances",
    "DescribeReservedInstancesListings",
    "DescribeRules",
    "DescribeSecurityGroupRules",
    "DescribeSnapshots",
    "DescribeStacks",
    "DescribeStream",
    "DescribeTable",
    "DescribeTargetGroups",
    "DescribeUserProfiles",
    "DescribeVolumes",
    "DescribeVpcEndpointServicePermissions",
    "DescribeVpnConnections",
    "DescribeWorkspaceDirectories",
    "DescribeWorkspaces",
    "DetachInternetGateway",
    "DescribeNatGateways",
    "DescribeNetworkAcls",
    "DescribeNetworkInterfaces",
    "DescribeRouteTables",
    "DescribeSecurityGroups",
    "DescribeSubnets",
    "DescribeVpcEndpoints",
    "DescribeVpcs",
    "DriverExecute",
    "EnableControl",
    "GenerateCredentialReport",
    "GetAccessPointPolicy",
    "GetAccountPasswordPolicy",
    "GetAccountPublicAccessBlock",
    "GetAdminScope",
    "GetAlternateContact",
    "GetContactInformation",
];

/// A record that passed the `eventName` prefilter, with its event time already read. Fields are
/// read in one pass however many a detection asks for.
pub struct Event<'a> {
    pub record: ScannedObject<'a>,
    pub event_name: Cow<'a, str>,
    pub time: i64,
}

/// A field the add-on would have, but that this record holds with the wrong JSON type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    Scan(ScanError),
    WrongType { field: String },
}

impl From<ScanError> for FieldError {
    fn from(e: ScanError) -> Self {
        FieldError::Scan(e)
    }
}

/// The path to the array a multivalue name such as `resources{}.ARN` reads (`resources`), or
/// `None` for a scalar name. A byte loop: `str`'s substring search builds a searcher per call,
/// which shows under an interpreter on every field a selection reads.
pub fn array_path(name: &str) -> Option<&str> {
    name.as_bytes().windows(2).position(|pair| pair == b"{}").map(|at| &name[..at])
}

/// The fields whose value is the event's name: `eventName`, and the add-on's `command`.
pub const NAME_FIELDS: [&str; 2] = ["eventName", "command"];

/// Every value of a field, as [`Event::values`] reads them: most fields have one, kept in place
/// of a list (every field a selected event's `stats` groups or collects by is read so).
pub type Texts<'a> = smallvec::SmallVec<[Cow<'a, str>; 1]>;

/// A field's value, or `None` where Splunk's field would be null.
type Field<'a> = Result<Option<Cow<'a, str>>, FieldError>;

/// `coalesce(a, b, ...)` over `Option`s, reading each argument only when those before it are null.
macro_rules! coalesce {
    ($value:expr) => { $value };
    ($value:expr, $($rest:expr),+) => {
        match $value {
            Some(value) => Some(value),
            None => coalesce!($($rest),+),
        }
    };
}

impl<'a> Event<'a> {
    /// The value of a Splunk field name, or `None` where Splunk's field would be null.
    pub fn field(&self, name: &str, user: UserSource) -> Result<Option<Cow<'a, str>>, FieldError> {
        match name {
            "_time" => Ok(Some(Cow::Owned(self.time.to_string()))),
            // Splunk's default datetime fields, from the event's timestamp (UTC in CloudTrail).
            "date_hour" | "date_minute" | "date_second" | "date_mday" | "date_wday" | "date_month" | "date_year" => {
                Ok(crate::time::date_field(self.time, name).map(Cow::Owned))
            }
            name if NAME_FIELDS.contains(&name) => Ok(Some(self.event_name.clone())),
            "src_ip" | "src" => self.scalar("sourceIPAddress"),
            "region" | "vendor_region" => self.scalar("awsRegion"),
            "user_access_key" => self.scalar("userIdentity.accessKeyId"),
            "user_agent" => self.scalar("userAgent"),
            "user_arn" => match self.scalar("userIdentity.arn")? {
                Some(arn) => Ok(Some(arn)),
                None => self.scalar("requestParameters.roleArn"),
            },
            "errorCode" => self.error_code().map(Some),
            "aws_account_id" => {
                let kind = self.scalar("userIdentity.type")?;
                if matches!(kind.as_deref(), Some("AWSAccount") | Some("AWSService")) {
                    self.scalar("recipientAccountId")
                } else {
                    self.scalar("userIdentity.accountId")
                }
            }
            "user" => self.scalar(user.path()),
            "user_name" => self.user_name(),
            // props.conf l.227.
            "userName" => Ok(coalesce!(
                self.scalar("userIdentity.userName")?,
                self.scalar("requestParameters.sourceIdentity")?,
                self.scalar("userIdentity.sessionContext.sessionIssuer.userName")?,
                self.arn_name()?
            )),
            "user_type" => self.user_type(),
            // props.conf l.750: OUTPUTNEW leaves a value the record already has.
            "action" | "status" => match self.scalar(name)? {
                Some(value) => Ok(Some(value)),
                None => {
                    let Some(rows) = action_status_rows(&self.event_name) else { return Ok(None) };
                    let column = |&(_, action, status): &(&str, &'static str, &'static str)| if name == "action" { action } else { status };
                    // Every eventName's rows end in a wildcard, so one always matches: where all
                    // give the same value (the security-group calls' `action` is `modified`
                    // whatever their errorCode), the errorCode, which a record without one
                    // calculates from a look through `responseElements`, is not needed.
                    if rows.iter().all(|row| column(row) == column(&rows[0])) {
                        return Ok(Some(Cow::Borrowed(column(&rows[0]))));
                    }
                    let error_code = self.error_code()?;
                    Ok(rows.iter().find(|&&(code, _, _)| code == "*" || code == error_code).map(|row| Cow::Borrowed(column(row))))
                }
            },
            path => self.scalar(path),
        }
    }

    /// Every value of a Splunk field name, as the add-on's JSON extraction reads them: `a{}.b`
    /// is `b` of each element of the array `a` (nested `{}` flatten further), a scalar is one
    /// value, null or absent none. Names without `{}` read as [`Event::field`] does.
    pub fn values(&self, name: &str, user: UserSource) -> Result<Texts<'a>, FieldError> {
        let Some(array_path) = array_path(name) else {
            return Ok(self.field(name, user)?.into_iter().collect());
        };
        let Some(raw) = self.record.get_path(array_path)? else { return Ok(Texts::new()) };
        if raw.kind() != Kind::Array {
            return Ok(Texts::new());
        }
        let array: serde_json::Value =
            serde_json::from_slice(raw.bytes()).map_err(|_| FieldError::Scan(ScanError::Malformed))?;
        let mut out = Vec::new();
        collect_values(&array, &name[array_path.len()..], &mut out);
        Ok(out.into_iter().map(Cow::Owned).collect())
    }

    /// True when the raw record carries an `errorCode` (the Change data model's `status=failure`).
    pub fn failed(&self) -> Result<bool, FieldError> {
        Ok(self.scalar("errorCode")?.is_some())
    }

    /// [`Event::field`] for the engine's index, which only asks whether the value is one that
    /// `indexed` holds, as bytes: a string without escapes is compared in place, without the
    /// UTF-8 check reading it as text would repeat (the record was validated, and the index
    /// holds ASCII values only). A record without a raw `errorCode` has a calculated one of two
    /// values, and when `indexed` holds neither the calculation (a look into
    /// `responseElements`, for nearly every record) is skipped.
    pub fn indexed_field(&self, name: &str, indexed: impl Fn(&str) -> bool) -> Result<Option<Cow<'a, [u8]>>, FieldError> {
        let raw = self.record.get_path(name)?;
        if let Some(text) = raw.and_then(|value| value.unescaped_string()) {
            return Ok(Some(Cow::Borrowed(text)));
        }
        let text = match raw {
            None if name == "errorCode" && CALCULATED_ERROR_CODES.iter().any(|calculated| indexed(calculated)) => {
                Some(self.calculated_error_code()?)
            }
            None => None,
            Some(_) => self.field(name, UserSource::default())?,
        };
        Ok(text.map(|text| match text {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        }))
    }

    /// The calculated `errorCode` (props.conf l.702): the raw one, else
    /// [`Event::calculated_error_code`].
    fn error_code(&self) -> Result<Cow<'a, str>, FieldError> {
        match self.scalar("errorCode")? {
            Some(code) => Ok(code),
            None => self.calculated_error_code(),
        }
    }

    /// The `errorCode` of a record without one: `failure` for a failed console sign-in (which
    /// carries no errorCode), else `success`.
    fn calculated_error_code(&self) -> Result<Cow<'a, str>, FieldError> {
        let [failure, success] = CALCULATED_ERROR_CODES;
        let failed = self.scalar("responseElements.ConsoleLogin")?.as_deref() == Some("Failure");
        Ok(Cow::Borrowed(if failed { failure } else { success }))
    }

    /// `EVAL-user_name` (props.conf l.255–268, `docs/addon-fields.md` A.2), branch by branch. It
    /// has no default: `AddMemberToGroup` gets no `user_name`.
    fn user_name(&self) -> Field<'a> {
        const PRINCIPAL: &str = "userIdentity.principalId";
        const ISSUER_NAME: &str = "userIdentity.sessionContext.sessionIssuer.userName";
        Ok(match &*self.event_name {
            "ListRoles" => split_part(self.scalar(PRINCIPAL)?, ':', 0),
            "AdminCreateUser" => coalesce!(
                self.scalar("responseElements.user.username")?,
                self.user_attribute("name")?,
                self.scalar("requestParameters.username")?
            ),
            "AdminResetUserPassword" | "AdminGetUser" => self.scalar("requestParameters.username")?,
            "CreateLoginProfile" => self.scalar("responseElements.loginProfile.userName")?,
            "CreateUser" => self.scalar("responseElements.user.userName")?,
            "DeleteUser" | "DeleteLoginProfile" => self.scalar("requestParameters.userName")?,
            "UpdateUser" => self.scalar("requestParameters.newUserName")?,
            "CreateAccessKey" => coalesce!(self.scalar("responseElements.accessKey.userName")?, self.resource_in_error()?),
            "ListSigningCertificates" | "ListAccessKeys" | "GetUser" | "GetAccountSummary" | "ListAccountAliases" => {
                self.resource_in_error()?
            }
            "Decrypt" if self.scalar("errorMessage")?.is_some() => split_part(self.scalar(PRINCIPAL)?, ':', 1),
            "Decrypt" => self.scalar(ISSUER_NAME)?,
            "CreateVirtualMFADevice" => self.scalar("userIdentity.userName")?,
            name if USER_NAME_FROM_SESSION.contains(&name) => coalesce!(
                split_part(self.scalar(PRINCIPAL)?, ':', 1),
                self.scalar(ISSUER_NAME)?,
                self.scalar("userIdentity.userName")?
            ),
            name if USER_NAME_FROM_ARN.contains(&name) => arn_last_part(self.scalar("userIdentity.arn")?),
            "AddMemberToGroup" => None,
            _ => coalesce!(self.scalar("userIdentity.userName")?, self.scalar(ISSUER_NAME)?, self.arn_name()?),
        })
    }

    /// `EVAL-user_type` (props.conf l.275–281, `docs/addon-fields.md` A.3), branch by branch.
    fn user_type(&self) -> Field<'a> {
        const TYPE: &str = "userIdentity.type";
        const ISSUER_TYPE: &str = "userIdentity.sessionContext.sessionIssuer.type";
        let name = &*self.event_name;
        let own_user = matches!(
            name,
            "CreateLoginProfile"
                | "ListSigningCertificates"
                | "CreateAccessKey"
                | "ListAccessKeys"
                | "CreateVirtualMFADevice"
                | "GetAccountSummary"
                | "ListAccountAliases"
        );
        if own_user || name.ends_with("User") {
            return Ok(None);
        }
        if name == "ConsoleLogin"
            && self.scalar(TYPE)?.as_deref() == Some("AssumedRole")
            && self.scalar("additionalEventData.LoginTo")?.is_none()
        {
            return self.scalar(ISSUER_TYPE);
        }
        if self.scalar("eventType")?.as_deref() == Some("AwsConsoleSignIn") {
            return self.scalar(TYPE);
        }
        if name.ends_with("Instances") || name.ends_with("Volume") || name.starts_with("Put") || name.ends_with("Bucket") {
            return self.scalar(TYPE);
        }
        if matches!(name, "ListAliases" | "ListRoles" | "DeleteNetworkInterface") {
            return self.scalar(ISSUER_TYPE);
        }
        if name.starts_with("AssumeRole") {
            return Ok(coalesce!(
                self.joined_values("resources", "type")?,
                split_part(self.scalar("responseElements.assumedRoleUser.arn")?, '/', 1),
                self.scalar(TYPE)?
            ));
        }
        self.scalar(TYPE)
    }

    /// The name at the end of the caller's ARN, else of `requestParameters.roleArn`:
    /// `if(isnull('userIdentity.arn'), <last part of roleArn>, <last part of userIdentity.arn>)`.
    fn arn_name(&self) -> Field<'a> {
        Ok(match self.scalar("userIdentity.arn")? {
            Some(arn) => arn_last_part(Some(arn)),
            None => arn_last_part(self.scalar("requestParameters.roleArn")?),
        })
    }

    /// `replace(errorMessage, ".*resource\s*:\s*(?:user\s*)?(.*)", "\1")`.
    fn resource_in_error(&self) -> Field<'a> {
        Ok(self.scalar("errorMessage")?.map(|message| match message {
            Cow::Borrowed(text) => after_resource(text),
            Cow::Owned(text) => Cow::Owned(after_resource(&text).into_owned()),
        }))
    }

    /// `mvindex('requestParameters.userAttributes{}.Value',
    /// mvfind('requestParameters.userAttributes{}.Name', "^<name>$"))`. The two are separate
    /// multivalue fields, so an attribute without a `Value` shifts the positions, as in Splunk.
    fn user_attribute(&self, name: &str) -> Field<'a> {
        const ATTRIBUTES: &str = "requestParameters.userAttributes";
        let mut position = None;
        let mut index = 0;
        self.each_value(ATTRIBUTES, "Name", |value| {
            // PCRE's `$` also matches before a final newline.
            let text: &str = &value;
            if text.strip_suffix('\n').unwrap_or(text) == name {
                position = Some(index);
                return false;
            }
            index += 1;
            true
        })?;
        let Some(position) = position else { return Ok(None) };
        let (mut found, mut index) = (None, 0);
        self.each_value(ATTRIBUTES, "Value", |value| {
            if index == position {
                found = Some(value);
                return false;
            }
            index += 1;
            true
        })?;
        Ok(found)
    }

    /// `mvjoin('<array>{}.<key>', ",")`: borrowed from the record when there is one value.
    fn joined_values(&self, array: &str, key: &str) -> Field<'a> {
        let mut joined: Option<Cow<'a, str>> = None;
        self.each_value(array, key, |value| {
            match &mut joined {
                None => joined = Some(value),
                Some(text) => {
                    let text = text.to_mut();
                    text.push(',');
                    text.push_str(&value);
                }
            }
            true
        })?;
        Ok(joined)
    }

    /// Calls `f` with each value of `<array>{}.<key>` in order (the scalar `key` of each object
    /// element of the array at `array`; null and absent give none) until it returns false,
    /// without building the array.
    fn each_value(&self, array: &str, key: &str, mut f: impl FnMut(Cow<'a, str>) -> bool) -> Result<(), FieldError> {
        let Some(raw) = self.record.get_path(array)? else { return Ok(()) };
        if raw.kind() != Kind::Array {
            return Ok(());
        }
        each_element(raw.bytes(), |element| {
            let object = match RawObject::new(element) {
                Ok(object) => object,
                Err(ScanError::NotAnObject) => return Ok(true),
                Err(e) => return Err(e.into()),
            };
            let Some(value) = object.get(key)? else { return Ok(true) };
            if matches!(value.kind(), Kind::Object | Kind::Array) {
                return Err(FieldError::WrongType { field: format!("{array}{{}}.{key}") });
            }
            Ok(value.as_text()?.is_none_or(&mut f))
        })
    }

    fn scalar(&self, path: &str) -> Field<'a> {
        let Some(value) = self.record.get_path(path)? else { return Ok(None) };
        match value.kind() {
            Kind::Object | Kind::Array => Err(FieldError::WrongType { field: path.to_string() }),
            _ => Ok(self.record.text_of(value)?),
        }
    }
}

/// The lookup rows `(errorCode, action, status)` of `event_name`, in file order, if
/// [`ACTION_STATUS`] has the eventName: what the compiler reads to know which eventNames a data
/// model search on `action`/`status` can select.
pub fn action_status_rows(event_name: &str) -> Option<LookupRows> {
    ACTION_STATUS.iter().find(|(names, _)| names.contains(&event_name)).map(|&(_, rows)| rows)
}

/// Calls `f` with the text of each element of the JSON array `array` until it returns false.
/// serde_json lends each element's text from the record; it allocates only to step over an element
/// that holds objects or arrays of its own (CloudTrail's `resources` entries hold none).
fn each_element<'a>(
    array: &'a [u8],
    f: impl FnMut(&'a [u8]) -> Result<bool, FieldError>,
) -> Result<(), FieldError> {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    struct Elements<F>(F);
    impl<'de, F: FnMut(&'de [u8]) -> Result<bool, FieldError>> Visitor<'de> for Elements<F> {
        type Value = Result<(), FieldError>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut outcome = Ok(());
            while let Some(element) = seq.next_element::<&'de serde_json::value::RawValue>()? {
                match (self.0)(element.get().as_bytes()) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            // serde_json reports elements left unread, so step over the rest.
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(outcome)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(array);
    de.deserialize_seq(Elements(f)).map_err(|_| FieldError::Scan(ScanError::Malformed))?
}

/// `mvindex(split(text, sep), index)`, a negative index counting from the end; borrowed when
/// `text` is.
fn split_part(text: Option<Cow<'_, str>>, sep: char, index: isize) -> Option<Cow<'_, str>> {
    let text = text?;
    let part = match usize::try_from(index) {
        Ok(index) => text.split(sep).nth(index),
        Err(_) => text.rsplit(sep).nth(index.unsigned_abs() - 1),
    }?;
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    let range = start..start + part.len();
    Some(slice(text, range))
}

/// `mvindex(split(mvindex(split(arn, ":"), -1), "/"), -1)`: the name at the end of an ARN.
fn arn_last_part(arn: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    split_part(split_part(arn, ':', -1), '/', -1)
}

/// Part of a text, without copying when it is borrowed and without a new buffer when it is not.
fn slice(text: Cow<'_, str>, range: Range<usize>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(&text[range]),
        Cow::Owned(mut text) => {
            text.truncate(range.end);
            text.drain(..range.start);
            Cow::Owned(text)
        }
    }
}

/// Splunk's `replace(text, ".*resource\s*:\s*(?:user\s*)?(.*)", "\1")` (PCRE): every match is
/// replaced by what follows `resource:` (and a `user` right after it) to the end of its line.
/// `.` stops at `\n` and the greedy `.*` makes the last `resource:` of a line the one matched;
/// `\s` is ASCII whitespace and may cross lines. Text without a match comes back whole.
/// Borrowed when the result is one piece of `text`, as for any one-line message.
fn after_resource(text: &str) -> Cow<'_, str> {
    fn push<'t>(out: &mut Cow<'t, str>, piece: &'t str) {
        if out.is_empty() {
            *out = Cow::Borrowed(piece);
        } else if !piece.is_empty() {
            out.to_mut().push_str(piece);
        }
    }
    let b = text.as_bytes();
    let skip_space = |mut i: usize| {
        while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')) {
            i += 1;
        }
        i
    };
    let line_end = |from: usize| b[from..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| from + n);
    let mut out = Cow::Borrowed("");
    // `text[..kept]` is in `out`; a match may start at `from`, at the earliest.
    let (mut kept, mut from) = (0, 0);
    while from <= b.len() {
        let end = line_end(from);
        let colon = (from..end).rev().find_map(|at| {
            if !b[at..].starts_with(b"resource") {
                return None;
            }
            let after = skip_space(at + b"resource".len());
            (b.get(after) == Some(&b':')).then_some(after)
        });
        let Some(colon) = colon else {
            from = end + 1;
            continue;
        };
        let mut start = skip_space(colon + 1);
        if b[start..].starts_with(b"user") {
            start = skip_space(start + b"user".len());
        }
        let matched_end = line_end(start);
        push(&mut out, &text[kept..from]);
        push(&mut out, &text[start..matched_end]);
        (kept, from) = (matched_end, matched_end);
    }
    push(&mut out, &text[kept..]);
    out
}

/// The values at `path` (`{}.a.b`, `.a{}.b`, or empty) below `value`, Splunk's `{}` flattening.
pub fn collect_values(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    if let Some(rest) = path.strip_prefix("{}") {
        if let Value::Array(items) = value {
            items.iter().for_each(|item| collect_values(item, rest, out));
        }
        return;
    }
    let path = path.strip_prefix('.').unwrap_or(path);
    if path.is_empty() {
        match value {
            Value::Null => {}
            Value::String(s) => out.push(s.clone()),
            // An array reached without `{}` and an object are no Splunk value: their text is
            // what `spath` gives for such a path.
            Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => out.push(value.to_string()),
        }
        return;
    }
    let end = path.find(['.', '{']).unwrap_or(path.len());
    if let Some(inner) = value.get(&path[..end]) {
        collect_values(inner, &path[end..], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event<'_> {
        let record = ScannedObject::new(RawObject::new(json.as_bytes()).unwrap());
        Event { record, event_name: Cow::Borrowed("JobCreated"), time: 0 }
    }

    #[test]
    fn account_comes_from_recipient_for_service_identities() {
        let e = event(r#"{"userIdentity":{"type":"AWSService","accountId":"1"},"recipientAccountId":"2"}"#);
        assert_eq!(e.field("aws_account_id", UserSource::PrincipalId).unwrap().unwrap(), "2");
        let e = event(r#"{"userIdentity":{"accountId":"1","invokedBy":"s3.amazonaws.com"},"recipientAccountId":"2"}"#);
        assert_eq!(e.field("aws_account_id", UserSource::PrincipalId).unwrap().unwrap(), "1");
    }

    #[test]
    fn error_code_defaults_to_success() {
        let e = event(r#"{"sourceIPAddress":"s3.amazonaws.com"}"#);
        assert_eq!(e.field("errorCode", UserSource::PrincipalId).unwrap().unwrap(), "success");
        assert!(!e.failed().unwrap());
        let e = event(r#"{"errorCode":"AccessDenied"}"#);
        assert_eq!(e.field("errorCode", UserSource::PrincipalId).unwrap().unwrap(), "AccessDenied");
        assert!(e.failed().unwrap());
    }

    #[test]
    fn aliases_and_a_failed_console_login() {
        let e = event(r#"{"sourceIPAddress":"1.2.3.4","awsRegion":"us-east-1","requestParameters":{"roleArn":"arn:r"},"responseElements":{"ConsoleLogin":"Failure"}}"#);
        let f = |name| e.field(name, UserSource::PrincipalId).unwrap().map(|v| v.into_owned());
        assert_eq!((f("src"), f("region"), f("user_arn")), (Some("1.2.3.4".into()), Some("us-east-1".into()), Some("arn:r".into())));
        assert_eq!(f("errorCode").as_deref(), Some("failure"));
    }

    #[test]
    fn user_source_is_configurable() {
        let e = event(r#"{"userIdentity":{"principalId":"AROA1:s","arn":"arn:aws:sts::1:assumed-role/R/s"}}"#);
        assert_eq!(e.field("user", UserSource::PrincipalId).unwrap().unwrap(), "AROA1:s");
        assert_eq!(e.field("user", UserSource::Arn).unwrap().unwrap(), "arn:aws:sts::1:assumed-role/R/s");
        assert!(e.field("user", UserSource::UserName).unwrap().is_none());
    }

    #[test]
    fn wrong_types_are_errors_not_values() {
        let e = event(r#"{"sourceIPAddress":{"ip":"1.2.3.4"},"userAgent":null}"#);
        assert!(matches!(e.field("src_ip", UserSource::PrincipalId), Err(FieldError::WrongType { .. })));
        assert!(e.field("userAgent", UserSource::PrincipalId).unwrap().is_none());
    }

    /// A record read with its own eventName.
    fn named(json: &str) -> Event<'_> {
        let object = RawObject::new(json.as_bytes()).unwrap();
        let event_name = object.get("eventName").unwrap().and_then(|v| v.as_str().unwrap()).unwrap();
        Event { record: ScannedObject::new(object), event_name, time: 0 }
    }

    /// The value of a field of a record, owned for comparing.
    fn get(json: &str, name: &str) -> Option<String> {
        named(json).field(name, UserSource::PrincipalId).unwrap().map(Cow::into_owned)
    }

    /// The first record of `../shared/data/<file>` (one per line; Panther's wrap it in `log`)
    /// with this eventName that `pick` accepts (given the line), as JSON text.
    fn shared(file: &str, event_name: &str, pick: impl Fn(&serde_json::Value) -> bool) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (tests read ../shared/data beside the project)", path.display()));
        let line = text
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .find(|line| line.get("log").unwrap_or(line)["eventName"] == event_name && pick(line))
            .unwrap_or_else(|| panic!("no {event_name} record in {file}"));
        line.get("log").unwrap_or(&line).to_string()
    }

    /// ESCU's example record of a data source (`data_sources/aws_cloudtrail_*.yml`).
    fn escu(event_name: &str) -> String {
        shared("security_content_data_sources_cloudtrail_examples.jsonl", event_name, |_| true)
    }

    /// The record of a named Panther rule test.
    fn panther(event_name: &str, test_name: &str) -> String {
        shared("panther_analysis_cloudtrail_test_events.jsonl", event_name, |line| line["test_name"] == test_name)
    }

    #[test]
    fn user_name_of_iam_user_management_calls() {
        assert_eq!(get(&escu("CreateLoginProfile"), "user_name").as_deref(), Some("AtomicRedTeam"));
        assert_eq!(get(&escu("UpdateLoginProfile"), "user_name").as_deref(), Some("bhavin_cli"));
        // Branch 5 is taken and gives null, though requestParameters and the session name a user.
        assert_eq!(get(&panther("CreateUser", "IAM User Created"), "user_name"), None);
        let created = r#"{"eventName":"CreateUser","userIdentity":{"type":"IAMUser","userName":"admin"},"requestParameters":{"userName":"carol"},"responseElements":{"user":{"userName":"carol","userId":"AIDA1"}}}"#;
        assert_eq!(get(created, "user_name").as_deref(), Some("carol"));
        let deleted = r#"{"eventName":"DeleteLoginProfile","userIdentity":{"type":"IAMUser","userName":"admin"},"requestParameters":{"userName":"dave"}}"#;
        assert_eq!(get(deleted, "user_name").as_deref(), Some("dave"));
        let renamed = r#"{"eventName":"UpdateUser","userIdentity":{"type":"IAMUser","userName":"admin"},"requestParameters":{"userName":"erin","newUserName":"erin2"}}"#;
        assert_eq!(get(renamed, "user_name").as_deref(), Some("erin2"));
        let cognito = r#"{"eventName":"AdminGetUser","userIdentity":{"type":"IAMUser","userName":"admin"},"requestParameters":{"userPoolId":"us-east-1_x","username":"frank"}}"#;
        assert_eq!(get(cognito, "user_name").as_deref(), Some("frank"));
        // The root user has no userName, and branch 11 reads nothing else.
        assert_eq!(get(&escu("CreateVirtualMFADevice"), "user_name"), None);
        let mfa = r#"{"eventName":"CreateVirtualMFADevice","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/gina","userName":"gina"}}"#;
        assert_eq!(get(mfa, "user_name").as_deref(), Some("gina"));
        let roles = r#"{"eventName":"ListRoles","userIdentity":{"type":"AssumedRole","principalId":"AROA5ZXAKGI3:henry","userName":"x"}}"#;
        assert_eq!(get(roles, "user_name").as_deref(), Some("AROA5ZXAKGI3"));
        // No branch for AddMemberToGroup (its member is `user`), so no user_name; userName has one.
        let member = r#"{"eventName":"AddMemberToGroup","userIdentity":{"type":"IAMUser","userName":"admin"},"requestParameters":{"member":{"memberId":"m-1"}}}"#;
        assert_eq!((get(member, "user_name"), get(member, "userName").as_deref()), (None, Some("admin")));
    }

    #[test]
    fn user_name_of_cognito_admin_create_user() {
        let with = |request: &str, response: &str| {
            format!(r#"{{"eventName":"AdminCreateUser","requestParameters":{request},"responseElements":{response}}}"#)
        };
        let attributes = r#"{"username":"u-1","userAttributes":[{"Name":"email","Value":"ida@example.com"},{"Name":"name","Value":"Ida"},{"Name":"locale","Value":"en"}]}"#;
        assert_eq!(get(&with(attributes, r#"{"user":{"username":"u-2"}}"#), "user_name").as_deref(), Some("u-2"));
        assert_eq!(get(&with(attributes, "null"), "user_name").as_deref(), Some("Ida"));
        // Name and Value are separate multivalue fields: with one Value missing, `name` (second
        // Name) points past the only Value, so the coalesce goes on to `username`.
        let shifted = r#"{"username":"u-1","userAttributes":[{"Name":"email"},{"Name":"name","Value":"Ida"}]}"#;
        assert_eq!(get(&with(shifted, "null"), "user_name").as_deref(), Some("u-1"));
        let unnamed = r#"{"username":"u-1","userAttributes":[{"Name":"email","Value":"ida@example.com"}]}"#;
        assert_eq!(get(&with(unnamed, "null"), "user_name").as_deref(), Some("u-1"));
    }

    #[test]
    fn user_name_from_error_messages() {
        assert_eq!(get(&escu("CreateAccessKey"), "user_name").as_deref(), Some("AtomicRedTeam"));
        // No accessKey.userName: replace() on the errorMessage, which gives it whole when it names
        // no resource, and null when there is none.
        let limit = panther("CreateAccessKey", "CreateKey returns error code");
        assert_eq!(get(&limit, "user_name").as_deref(), Some("Cannot exceed quota for AccessKeysPerUser: 2"));
        assert_eq!(get(&panther("CreateAccessKey", "Root Access Key Created"), "user_name"), None);
        let denied = r#"{"eventName":"CreateAccessKey","errorCode":"AccessDenied","errorMessage":"User: arn:aws:iam::123456789012:user/bob is not authorized to perform: iam:CreateAccessKey on resource: user alice because no identity-based policy allows the iam:CreateAccessKey action","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/bob","userName":"bob"},"requestParameters":{"userName":"alice"},"responseElements":null}"#;
        let expected = "alice because no identity-based policy allows the iam:CreateAccessKey action";
        assert_eq!(get(denied, "user_name").as_deref(), Some(expected));
        // Branch 9 reads the errorMessage only: a successful call has no user_name.
        assert_eq!(get(&panther("ListAccessKeys", "Non Target Event"), "user_name"), None);
        let denied = denied.replace("CreateAccessKey", "GetUser");
        assert_eq!(get(&denied, "user_name").as_deref(), Some(expected.replace("CreateAccessKey", "GetUser").as_str()));
    }

    #[test]
    fn user_name_of_sessions_and_arns() {
        // Decrypt: the session issuer, or the session name when the call failed.
        assert_eq!(get(&panther("Decrypt", "KMS Decrypt Event"), "user_name").as_deref(), Some("tester"));
        let failed = r#"{"eventName":"Decrypt","errorCode":"AccessDeniedException","errorMessage":"User is not authorized to perform: kms:Decrypt","userIdentity":{"type":"AssumedRole","principalId":"AROA1:ops-session","sessionContext":{"sessionIssuer":{"type":"Role","userName":"ops"}}}}"#;
        assert_eq!(get(failed, "user_name").as_deref(), Some("ops-session"));
        // Branch 12: the session name, else the issuer, else userName.
        assert_eq!(get(&panther("GetSecretValue", "GetSecretValue Denied"), "user_name").as_deref(), Some("evil.genius"));
        assert_eq!(get(&panther("CreateServiceLinkedRole", "Authorized API Call"), "user_name").as_deref(), Some("tester"));
        // Branch 13: the end of userIdentity.arn and nothing else.
        assert_eq!(get(&escu("GetAccountPasswordPolicy"), "user_name").as_deref(), Some("strt_fonder"));
        assert_eq!(get(&panther("DescribeTable", "Non-Login Event"), "user_name").as_deref(), Some("tester"));
        let no_arn = r#"{"eventName":"DescribeVpcs","userIdentity":{"type":"IAMUser","userName":"ivan"}}"#;
        assert_eq!(get(no_arn, "user_name"), None);
        // Branch 14: userName, else the session issuer, else the end of the ARN or of roleArn.
        assert_eq!(get(&panther("ConsoleLogin", "Successful Login w/ MFA"), "user_name").as_deref(), Some("anaya"));
        let sso = panther("ConsoleLogin", "Console Login");
        assert_eq!(get(&sso, "user_name").as_deref(), Some("AWSReservedSSO_DevAdmin_635426549a280cc6"));
        assert_eq!(get(&panther("ConsoleLogin", "No MFA Login - Root User"), "user_name").as_deref(), Some("root"));
        assert_eq!(get(&escu("DeactivateMFADevice"), "user_name").as_deref(), Some("root"));
        assert_eq!(get(&escu("DeleteVirtualMFADevice"), "user_name").as_deref(), Some("root"));
        let saml = escu("AssumeRoleWithSAML");
        assert_eq!(get(&saml, "user_name").as_deref(), Some("rodsoto@rodsoto.onmicrosoft.com"));
        let service = panther("AssumeRole", "Role Assumed by AWS Service");
        assert_eq!(get(&service, "user_name").as_deref(), Some("my_role_arn"));
        assert_eq!(get(&escu("PutBucketAcl"), "user_name").as_deref(), Some("patrick_cli"));
        assert_eq!(get(r#"{"eventName":"GetObject","userIdentity":{"type":"AWSAccount"}}"#, "user_name"), None);
    }

    #[test]
    fn user_name_coalesces_request_source_identity() {
        // userName: userIdentity.userName, requestParameters.sourceIdentity, the issuer, the ARN.
        let assume = |identity: &str| {
            format!(r#"{{"eventName":"AssumeRole","userIdentity":{identity},"requestParameters":{{"roleArn":"arn:aws:iam::1:role/Deploy","roleSessionName":"s","sourceIdentity":"jane"}}}}"#)
        };
        let role = r#"{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/Ci/run-7","sessionContext":{"sessionIssuer":{"type":"Role","userName":"Ci"}}}"#;
        assert_eq!(get(&assume(role), "userName").as_deref(), Some("jane"));
        assert_eq!(get(&assume(role), "user_name").as_deref(), Some("Ci"));
        assert_eq!(get(&assume(r#"{"type":"IAMUser","userName":"kim"}"#), "userName").as_deref(), Some("kim"));
        let service = panther("AssumeRole", "Role Assumed by AWS Service");
        assert_eq!(get(&service, "userName").as_deref(), Some("my_role_arn"));
        assert_eq!(get(&panther("ConsoleLogin", "Console Login"), "userName").as_deref(), Some("AWSReservedSSO_DevAdmin_635426549a280cc6"));
        assert_eq!(get(&panther("ConsoleLogin", "No MFA Login - Root User"), "userName").as_deref(), Some("root"));
        assert_eq!(get(&escu("PutImage"), "userName"), get(&escu("PutImage"), "userIdentity.userName"));
        assert_eq!(get(r#"{"eventName":"JobCreated","userIdentity":{"type":"AWSService"}}"#, "userName"), None);
    }

    #[test]
    fn user_type_follows_each_case_branch_in_order() {
        // (1) calls about a user have none, whoever calls.
        assert_eq!(get(&escu("CreateAccessKey"), "user_type"), None);
        assert_eq!(get(&panther("ListAccessKeys", "Non Target Event"), "user_type"), None);
        let denied = r#"{"eventName":"GetUser","eventType":"AwsApiCall","errorCode":"AccessDenied","userIdentity":{"type":"IAMUser","userName":"bob"}}"#;
        assert_eq!(get(denied, "user_type"), None);
        // (2) a console sign-in of an assumed role without LoginTo: the issuer's type.
        assert_eq!(get(&panther("ConsoleLogin", "Console Login"), "user_type").as_deref(), Some("Role"));
        // (3) other console sign-ins, even of AssumeRole: the identity type.
        let with_login_to = panther("ConsoleLogin", "No MFA - IAM Role and External IDP");
        assert_eq!(get(&with_login_to, "user_type").as_deref(), Some("AssumedRole"));
        assert_eq!(get(&panther("ConsoleLogin", "Successful Login w/ MFA"), "user_type").as_deref(), Some("IAMUser"));
        assert_eq!(get(&panther("AssumeRole", "No Access Key"), "user_type").as_deref(), Some("AssumedRole"));
        // (4) %Instances, %Volume, Put%, %Bucket: the identity type.
        assert_eq!(get(&escu("PutBucketAcl"), "user_type").as_deref(), Some("IAMUser"));
        assert_eq!(get(&escu("PutKeyPolicy"), "user_type").as_deref(), Some("AssumedRole"));
        // (5) the issuer's type.
        let roles = r#"{"eventName":"ListRoles","eventType":"AwsApiCall","userIdentity":{"type":"AssumedRole","sessionContext":{"sessionIssuer":{"type":"Role"}}}}"#;
        assert_eq!(get(roles, "user_type").as_deref(), Some("Role"));
        // (6) AssumeRole%: the resource types, else the role in assumedRoleUser.arn, else the identity type.
        let saml = escu("AssumeRoleWithSAML");
        assert_eq!(get(&saml, "user_type").as_deref(), Some("AWS::IAM::Role,AWS::IAM::SAMLProvider"));
        let assume = panther("AssumeRole", "IAM Blocklisted Role Assumed");
        assert_eq!(get(&assume, "user_type").as_deref(), Some("AWS::IAM::Role"));
        // Panther's test has resources as strings: no resources{}.type.
        assert_eq!(get(&panther("AssumeRole", "Unrelated Event"), "user_type").as_deref(), Some("SampleRole"));
        let bare = panther("AssumeRole", "Different STS Event with TruffleHog Agent");
        assert_eq!(get(&bare, "user_type").as_deref(), Some("IAMUser"));
        // (7) the identity type.
        assert_eq!(get(&escu("DeleteGroup"), "user_type").as_deref(), Some("IAMUser"));
        assert_eq!(get(&escu("DeactivateMFADevice"), "user_type").as_deref(), Some("Root"));
        assert_eq!(get(&escu("JobCreated"), "user_type"), None);
    }

    #[test]
    fn action_and_status_follow_the_lookup_rows() {
        let outcome = |json: &str| (get(json, "action"), get(json, "status"));
        let pair = |action: &str, status: &str| (Some(action.to_string()), Some(status.to_string()));
        // ConsoleLogin keys on the calculated errorCode: a failed sign-in is `failure`.
        assert_eq!(outcome(&panther("ConsoleLogin", "Successful Login w/ MFA")), pair("success", "success"));
        assert_eq!(outcome(&panther("ConsoleLogin", "Unsuccessful Login w/ MFA")), pair("failure", "failure"));
        assert_eq!(outcome(&escu("ConsoleLogin")), pair("failure", "failure"));
        assert_eq!(outcome(&escu("AssumeRoleWithSAML")), pair("success", "success"));
        assert_eq!(outcome(&escu("CreateAccessKey")), pair("modified", "success"));
        assert_eq!(outcome(&panther("CreateAccessKey", "CreateKey returns error code")), pair("modified", "failure"));
        assert_eq!(outcome(&escu("DeleteGroup")), pair("unknown", "failure"));
        assert_eq!(outcome(&escu("DeletePolicy")), pair("unknown", "failure"));
        assert_eq!(outcome(&escu("GetAccountPasswordPolicy")), pair("read", "success"));
        // A specific errorCode row before the wildcard one.
        assert_eq!(outcome(&panther("PutBucketAcl", "S3 Bucket Policy Modified Error Response")), pair("modified", "failure"));
        assert_eq!(outcome(&escu("PutBucketAcl")), pair("modified", "success"));
        assert_eq!(outcome(&panther("CreateNetworkAclEntry", "Error Modifying Network ACL")), pair("modified", "failure"));
        // The policy-document calls aws_iam_assume_role_policy_brute_force finds by status=failure.
        let malformed = panther("UpdateAssumeRolePolicy", "IAM Role Policy Updated With No Policy Document")
            .replacen('{', r#"{"errorCode":"MalformedPolicyDocumentException","#, 1);
        assert_eq!(outcome(&malformed), pair("unknown", "failure"));
        assert_eq!(outcome(&panther("UpdateAssumeRolePolicy", "IAM Role Policy Updated With No Policy Document")), pair("modified", "success"));
        // eventNames the CSV lacks, and those it has but this table leaves out, get neither.
        assert_eq!(outcome(&escu("PutBucketVersioning")), (None, None));
        assert_eq!(outcome(&panther("AssumeRole", "IAM Blocklisted Role Assumed")), (None, None));
        // OUTPUTNEW: a value the record has is kept.
        assert_eq!(outcome(r#"{"eventName":"ConsoleLogin","status":"pending"}"#), (Some("success".into()), Some("pending".into())));
    }

    #[test]
    fn an_action_every_row_agrees_on_reads_no_error_code() {
        // A security-group call is `modified` whatever its errorCode: the calculation, which
        // reads `responseElements`, is skipped, so a `responseElements.ConsoleLogin` that is an
        // object (no field at all to the add-on's JSON extraction) leaves `action` to the
        // lookup, while `status`, which the code decides, still fails on it.
        let odd = named(r#"{"eventName":"AuthorizeSecurityGroupEgress","responseElements":{"ConsoleLogin":{"a":1}}}"#);
        assert_eq!(odd.field("action", UserSource::PrincipalId).unwrap().as_deref(), Some("modified"));
        assert!(matches!(odd.field("status", UserSource::PrincipalId), Err(FieldError::WrongType { .. })));
        // ConsoleLogin's rows differ, so its action still reads the calculated code.
        let login = named(r#"{"eventName":"ConsoleLogin","responseElements":{"ConsoleLogin":{"a":1}}}"#);
        assert!(matches!(login.field("action", UserSource::PrincipalId), Err(FieldError::WrongType { .. })));
    }

    #[test]
    fn action_status_table_names_each_event_once_and_ends_in_a_wildcard() {
        let mut names: Vec<&str> = ACTION_STATUS.iter().flat_map(|(names, _)| names.iter().copied()).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert_eq!(count, 70);
        assert!(ACTION_STATUS.iter().all(|(_, rows)| rows.iter().filter(|row| row.0 == "success").count() == 1));
        let without_wildcard: Vec<&str> =
            ACTION_STATUS.iter().filter(|(_, rows)| rows.last().unwrap().0 != "*").flat_map(|(names, _)| names.iter().copied()).collect();
        assert_eq!(without_wildcard, ["CreateNetworkInterface"]);
    }

    #[test]
    fn after_resource_is_the_add_on_replace() {
        let regex = regex_lite::Regex::new(r".*resource\s*:\s*(?:user\s*)?(.*)").unwrap();
        let messages = [
            "",
            "no match here",
            "Cannot exceed quota for AccessKeysPerUser: 2",
            "User: arn:aws:iam::1:user/bob is not authorized to perform: iam:GetUser on resource: user alice",
            "on resource: username",
            "on resource : user\tx and resource: y",
            "resource:",
            "resource\n:\n user\n\nz",
            "first line\nresource: a\nresource: b\ntail",
            "resources: a",
            "a resource:b\nresource\nc",
            "résumé resource: ünïcode\n",
        ];
        for message in messages {
            assert_eq!(after_resource(message), regex.replace_all(message, "$1"), "{message:?}");
        }
        let one_line = "x on resource: user alice";
        assert!(matches!(after_resource(one_line), Cow::Borrowed("alice")));
    }

    proptest::proptest! {
        /// Any text made of the pieces the regex cares about replaces as the regex does.
        #[test]
        fn after_resource_replaces_as_the_regex_does(pieces in proptest::collection::vec(
            proptest::sample::select(vec!["resource", "resource:", "user", ":", " ", "\n", "\t", "x", "é"]), 0..16)) {
            let regex = regex_lite::Regex::new(r".*resource\s*:\s*(?:user\s*)?(.*)").unwrap();
            let message = pieces.concat();
            proptest::prop_assert_eq!(after_resource(&message), regex.replace_all(&message, "$1"));
        }
    }

    #[test]
    fn derived_fields_borrow_from_the_record() {
        let borrowed = |json: &str, name: &str| {
            matches!(named(json).field(name, UserSource::PrincipalId).unwrap(), Some(Cow::Borrowed(_)))
        };
        let sso = panther("ConsoleLogin", "Console Login");
        for name in ["user_name", "userName", "user_type", "action", "status"] {
            assert!(borrowed(&sso, name), "{name}");
        }
        assert!(borrowed(&panther("AssumeRole", "IAM Blocklisted Role Assumed"), "user_type"));
        assert!(borrowed(&escu("GetAccountPasswordPolicy"), "user_name"));
        assert!(borrowed(&panther("GetSecretValue", "GetSecretValue Denied"), "user_name"));
        // An escaped string is decoded, so its parts are owned, and still right.
        let escaped = r#"{"eventName":"DescribeVpcs","userIdentity":{"arn":"arn:aws:iam::1:user\/lee"}}"#;
        assert_eq!(named(escaped).field("user_name", UserSource::PrincipalId).unwrap(), Some(Cow::Owned("lee".into())));
    }

    #[test]
    fn derived_fields_of_the_wrong_type_are_errors() {
        let e = named(r#"{"eventName":"AssumeRole","resources":[{"type":{"a":1}},{"type":"AWS::IAM::Role"}]}"#);
        assert!(matches!(e.field("user_type", UserSource::PrincipalId), Err(FieldError::WrongType { .. })));
        let e = named(r#"{"eventName":"DescribeVpcs","userIdentity":{"arn":["a"]}}"#);
        assert!(matches!(e.field("user_name", UserSource::PrincipalId), Err(FieldError::WrongType { .. })));
    }
}
