//! The Splunk Add-on for AWS's view of a CloudTrail record, in one place.
//!
//! Detections name fields the way their SPL does (`src_ip`, `aws_account_id`, `errorCode`,
//! `user`, `serviceEventDetails.jobArn`); this module turns such a name into a value read
//! lazily from the raw record, applying the add-on's aliases and calculated fields
//! (`splunk-semantics.md`, "Fields the add-on derives"; `docs/addon-fields.md` has each row's
//! source line in add-on 7.10.0). Names it does not know are raw JSON paths, except those in
//! [`NOT_DERIVED`], which it cannot answer yet.

use std::borrow::Cow;

use crate::json::{Kind, ScanError, ScannedObject};


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

/// Add-on field names this table does not derive yet: a rule reading one cannot run as Splunk
/// does, so it is not compiled (the coverage table says so).
pub const NOT_DERIVED: [&str; 9] =
    ["user_name", "userName", "user_type", "action", "status", "dest", "object", "object_id", "object_category"];

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

impl<'a> Event<'a> {
    /// The value of a Splunk field name, or `None` where Splunk's field would be null.
    pub fn field(&self, name: &str, user: UserSource) -> Result<Option<Cow<'a, str>>, FieldError> {
        match name {
            "_time" => Ok(Some(Cow::Owned(self.time.to_string()))),
            "eventName" | "command" => Ok(Some(self.event_name.clone())),
            "src_ip" | "src" => self.scalar("sourceIPAddress"),
            "region" | "vendor_region" => self.scalar("awsRegion"),
            "user_access_key" => self.scalar("userIdentity.accessKeyId"),
            "user_agent" => self.scalar("userAgent"),
            "user_arn" => match self.scalar("userIdentity.arn")? {
                Some(arn) => Ok(Some(arn)),
                None => self.scalar("requestParameters.roleArn"),
            },
            // A failed console sign-in carries no errorCode; the add-on says `failure` for it.
            "errorCode" => match self.scalar("errorCode")? {
                Some(code) => Ok(Some(code)),
                None if self.scalar("responseElements.ConsoleLogin")?.as_deref() == Some("Failure") => Ok(Some(Cow::Borrowed("failure"))),
                None => Ok(Some(Cow::Borrowed("success"))),
            },
            "aws_account_id" => {
                let kind = self.scalar("userIdentity.type")?;
                if matches!(kind.as_deref(), Some("AWSAccount") | Some("AWSService")) {
                    self.scalar("recipientAccountId")
                } else {
                    self.scalar("userIdentity.accountId")
                }
            }
            "user" => self.scalar(user.path()),
            path => self.scalar(path),
        }
    }

    /// Every value of a Splunk field name, as the add-on's JSON extraction reads them: `a{}.b`
    /// is `b` of each element of the array `a` (nested `{}` flatten further), a scalar is one
    /// value, null or absent none. Names without `{}` read as [`Event::field`] does.
    pub fn values(&self, name: &str, user: UserSource) -> Result<Vec<Cow<'a, str>>, FieldError> {
        let Some((array_path, _)) = name.split_once("{}") else {
            return Ok(self.field(name, user)?.into_iter().collect());
        };
        let Some(raw) = self.record.get_path(array_path)? else { return Ok(Vec::new()) };
        if raw.kind() != Kind::Array {
            return Ok(Vec::new());
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

    fn scalar(&self, path: &str) -> Result<Option<Cow<'a, str>>, FieldError> {
        let Some(value) = self.record.get_path(path)? else { return Ok(None) };
        match value.kind() {
            Kind::Object | Kind::Array => Err(FieldError::WrongType { field: path.to_string() }),
            _ => Ok(value.as_text()?),
        }
    }
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

    use crate::json::RawObject;

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
}
