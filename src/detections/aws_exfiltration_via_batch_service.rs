//! ESCU "AWS Exfiltration via Batch Service" (TTP): S3 Batch Operations jobs created in an
//! account, which attackers use with bucket replication to copy data out.
//!
//! ```spl
//! `cloudtrail` eventName = JobCreated
//! | stats count min(_time) as firstTime max(_time) as lastTime values(serviceEventDetails.jobArn) as job_arn
//!     values(serviceEventDetails.status) as status by src_ip aws_account_id eventName errorCode userAgent
//! | `security_content_ctime(firstTime)` | `security_content_ctime(lastTime)`
//! | `aws_exfiltration_via_batch_service_filter`
//! ```
//!
//! Each `JobCreated` record is tagged the moment it passes (the real-time path); the `stats` row
//! follows when its hourly window closes.

use serde_json::{json, Map, Value};

use crate::aggregate::ClosedGroup;
use crate::cloudtrail::{Event, FieldError, UserSource};
use crate::config::ConfigError;
use crate::detection::{no_settings, select_fields, values_field, Detection, Selected};
use crate::rule::{Metadata, ObjectField, Technique};
use crate::time::format_ctime;

pub const KEY: &str = "aws_exfiltration_via_batch_service";

const BY: [&str; 5] = ["src_ip", "aws_account_id", "eventName", "errorCode", "userAgent"];
const VALUES: [&str; 2] = ["serviceEventDetails.jobArn", "serviceEventDetails.status"];

pub fn metadata() -> Metadata {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Metadata {
        id: "04455dd3-ced7-480f-b8e6-5469b99e98e2".into(),
        key: KEY.into(),
        name: "AWS Exfiltration via Batch Service".into(),
        version: 3,
        analytic_type: "TTP".into(),
        status: "production".into(),
        impact: 80,
        confidence: 80,
        risk_object: ObjectField { field: "aws_account_id".into(), kind: "other".into() },
        threat_object: Some(ObjectField { field: "src_ip".into(), kind: "ip_address".into() }),
        message: "AWS Batch Job is created on account id - $aws_account_id$ from src_ip $src_ip$".into(),
        message_aliases: Vec::new(),
        mitre_attack: vec![Technique { id: "T1119".into(), name: "Automated Collection".into(), tactic: "Collection".into() }],
        kill_chain_phases: strings(&["Exploitation"]),
        nist: strings(&["DE.CM"]),
        cis20: strings(&["CIS 10"]),
        threat_actors: strings(&[
            "APT1",
            "APT28",
            "Chimera",
            "Confucius",
            "FIN5",
            "FIN6",
            "Gamaredon Group",
            "Ke3chang",
            "Mustang Panda",
            "OilRig",
            "Patchwork",
            "Sidewinder",
            "Threat Group-3390",
            "Tropic Trooper",
            "menuPass",
        ]),
        analytic_stories: strings(&["Data Exfiltration"]),
    }
}

pub struct ExfiltrationViaBatch {
    metadata: Metadata,
}

pub fn construct(settings: &Map<String, Value>) -> Result<Box<dyn Detection>, ConfigError> {
    no_settings(KEY, settings)?;
    Ok(Box::new(ExfiltrationViaBatch { metadata: metadata() }))
}

impl Detection for ExfiltrationViaBatch {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// A Splunk `field=value` term compares values case-insensitively (the engine's index does).
    fn event_names(&self) -> Vec<String> {
        vec!["JobCreated".into()]
    }

    fn select(&self, event: &Event<'_>) -> Result<Vec<Selected>, FieldError> {
        Ok(vec![select_fields(event, &BY, &VALUES, UserSource::default())?])
    }

    fn tags_each_event(&self) -> bool {
        true
    }

    fn on_close(&mut self, group: &ClosedGroup) -> Option<Map<String, Value>> {
        let mut row = Map::new();
        for (field, value) in BY.iter().zip(&group.key) {
            row.insert((*field).into(), json!(value));
        }
        let s = &group.stats;
        row.insert("count".into(), json!(s.count));
        row.insert("firstTime".into(), json!(format_ctime(s.first)));
        row.insert("lastTime".into(), json!(format_ctime(s.last)));
        row.insert("job_arn".into(), values_field(&s.values[0]));
        row.insert("status".into(), values_field(&s.values[1]));
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::GroupStats;
    use crate::json::{RawObject, ScannedObject};
    use std::borrow::Cow;

    const JOB_CREATED: &str = r#"{"userIdentity":{"accountId":"111111111111","invokedBy":"s3.amazonaws.com"},
        "eventTime":"2023-04-24T19:15:26Z","eventName":"JobCreated","sourceIPAddress":"s3.amazonaws.com",
        "userAgent":"s3.amazonaws.com","recipientAccountId":"111111111111",
        "serviceEventDetails":{"jobArn":"arn:aws:s3:us-west-2:111111111111:job/a","status":"New"}}"#;

    #[test]
    fn selects_job_created_into_the_seed_group() {
        let record = ScannedObject::new(RawObject::new(JOB_CREATED.as_bytes()).unwrap());
        let event = Event { record, event_name: Cow::Borrowed("JobCreated"), time: 1 };
        let d = ExfiltrationViaBatch { metadata: metadata() };
        let selected = d.select(&event).unwrap();
        let Some(Selected::Group { key: Some(key), values }) = selected.first() else { panic!("not selected: {selected:?}") };
        assert_eq!(key, &["s3.amazonaws.com", "111111111111", "JobCreated", "success", "s3.amazonaws.com"]);
        assert_eq!(values, &[vec!["arn:aws:s3:us-west-2:111111111111:job/a".to_string()], vec!["New".to_string()]]);
    }

    #[test]
    fn row_has_the_seed_columns_in_order() {
        let mut d = ExfiltrationViaBatch { metadata: metadata() };
        let group = ClosedGroup {
            window_start: 0,
            window_end: 3600,
            key: BY.iter().map(|s| s.to_string()).collect(),
            stats: GroupStats {
                count: 2,
                first: 1_682_363_726,
                last: 1_682_363_800,
                values: vec![["b".to_string(), "a".to_string()].into(), ["New".to_string()].into()],
                values_dropped: 0,
            },
            partial: None,
        };
        let row = d.on_close(&group).unwrap();
        let columns: Vec<_> = row.keys().map(String::as_str).collect();
        assert_eq!(
            columns,
            ["src_ip", "aws_account_id", "eventName", "errorCode", "userAgent", "count", "firstTime", "lastTime", "job_arn", "status"]
        );
        assert_eq!(row["firstTime"], "2023-04-24T19:15:26");
        assert_eq!(row["job_arn"], json!(["a", "b"]));
        assert_eq!(row["status"], json!("New"));
        assert_eq!(metadata().risk_score(), 64);
    }

    #[test]
    fn rejects_unknown_settings() {
        let mut settings = Map::new();
        settings.insert("threshold".into(), json!(1));
        let err = construct(&settings).err().unwrap();
        assert_eq!(err.path, "detections.aws_exfiltration_via_batch_service.threshold");
    }
}
