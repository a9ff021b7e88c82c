//! ESCU "Abnormally High Number Of Cloud Security Group API Calls" (Anomaly): a user's hourly
//! count of successful security-group changes, judged against that user's learned normal for the
//! same 4-hour block of a weekday or weekend day.
//!
//! ```spl
//! | tstats count as security_group_api_calls values(All_Changes.command) as command from datamodel=Change
//!     where All_Changes.object_category=firewall AND All_Changes.status=success by All_Changes.user _time span=1h
//! | eval HourOfDay=floor(strftime(_time,"%H")/4)*4, isWeekend=if(DayOfWeek>=1 AND DayOfWeek<=5, 0, 1)
//! | join user HourOfDay isWeekend [summary cloud_excessive_security_group_api_calls_v1] | where cardinality >=16
//! | apply cloud_excessive_security_group_api_calls_v1 threshold=0.005 | where isOutlier=1
//! | eval expected_upper_threshold = <rounded upper bound> | where security_group_api_calls > expected_upper_threshold
//! ```
//!
//! The model is MLTK's normal fit per (`user`, `HourOfDay`, `isWeekend`) over the raw hourly
//! counts: fitted offline from history (the CLI's `fit`, Splunk's weekly baseline search) and/or
//! learned online from every closed hour. The published baseline's `eventstats dc(...)` bug,
//! which trains every group on a constant, is deliberately not reproduced (README, "Deviations").

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::aggregate::{ClosedGroup, Partial};
use crate::baseline::{round4, Baselines, DayStats};
use crate::cloudtrail::{Event, FieldError, UserSource};
use crate::config::{parse_at, ConfigError};
use crate::detection::{values_field, Detection, Selected};
use crate::rule::{Metadata, ObjectField, Technique};
use crate::time::{format_rfc3339, hour_and_weekday};

pub const KEY: &str = "abnormally_high_cloud_security_group_api_calls";

/// The eventNames the Splunk Add-on 5.x maps to `object_category=firewall`.
pub const FIREWALL_COMMANDS: [&str; 6] = [
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
];

/// The `user` of a call whose user field is null or empty: the CIM Change data model's
/// `All_Changes_fillnull_user`, `if(isnull(user) OR user="","unknown",user)`.
const UNKNOWN_USER: &str = "unknown";

/// Identifies baseline documents (fitted models and learned state).
pub const MODEL_FORMAT: &str = "tripline-baseline";
pub const MODEL_VERSION: u64 = 1;

pub fn metadata() -> Metadata {
    let technique = |id: &str, name: &str, tactic: &str| Technique { id: id.into(), name: name.into(), tactic: tactic.into() };
    Metadata {
        id: "d4dfb7f3-7a37-498a-b5df-f19334e871af".into(),
        key: KEY.into(),
        name: "Abnormally High Number Of Cloud Security Group API Calls".into(),
        version: 3,
        analytic_type: "Anomaly".into(),
        status: "experimental".into(),
        impact: 30,
        confidence: 50,
        risk_object: Some(ObjectField { field: "user".into(), kind: "user".into() }),
        threat_object: None,
        message: "user $user$ has made $api_calls$ api calls related to security groups, violating the dynamic \
                  threshold of $expected_upper_threshold$ with the following command $command$."
            .into(),
        // The seed's message names `$api_calls$`, which no field of the search carries; the count
        // it means is `security_group_api_calls`.
        message_aliases: vec![("api_calls".into(), "security_group_api_calls".into())],
        mitre_attack: vec![
            technique("T1078.004", "Cloud Accounts", "Defense Evasion"),
            technique("T1078", "Valid Accounts", "Initial Access"),
        ],
        kill_chain_phases: Vec::new(),
        nist: Vec::new(),
        cis20: Vec::new(),
        threat_actors: Vec::new(),
        analytic_stories: vec!["Suspicious Cloud User Activities".into()],
        sigma: None,
    }
}

/// Whether the detection learns from closed hours, judges them, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Learn,
    Judge,
    LearnAndJudge,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    mode: Mode,
    threshold: f64,
    min_cardinality: u64,
    user_field: UserSource,
    commands: Vec<String>,
    utc_offset_minutes: i32,
    horizon_days: Option<i64>,
    max_baselines: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::LearnAndJudge,
            threshold: 0.005,
            min_cardinality: 16,
            user_field: UserSource::PrincipalId,
            commands: FIREWALL_COMMANDS.iter().map(|c| c.to_string()).collect(),
            utc_offset_minutes: 0,
            horizon_days: Some(90),
            max_baselines: 10_000,
        }
    }
}

/// A baseline group: (`user`, `HourOfDay`, `isWeekend`).
type GroupKey = (String, u8, u8);

pub struct SecurityGroupSpikes {
    metadata: Metadata,
    settings: Settings,
    baselines: Baselines<GroupKey>,
}

pub fn construct(settings: &Map<String, Value>) -> Result<Box<dyn Detection>, ConfigError> {
    let prefix = format!("detections.{KEY}");
    let s: Settings = parse_at(&prefix, Value::Object(settings.clone()))?;
    if !(1e-9..=0.5).contains(&s.threshold) {
        return Err(ConfigError::new(format!("{prefix}.threshold"), format!("{} is outside 0.000000001 to 0.5", s.threshold)));
    }
    if s.min_cardinality == 0 {
        return Err(ConfigError::new(format!("{prefix}.min_cardinality"), "must be at least 1"));
    }
    if s.commands.is_empty() {
        return Err(ConfigError::new(format!("{prefix}.commands"), "must name at least one eventName"));
    }
    if !(-1440..=1440).contains(&s.utc_offset_minutes) {
        return Err(ConfigError::new(format!("{prefix}.utc_offset_minutes"), "must be -1440 to 1440"));
    }
    if s.horizon_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(ConfigError::new(format!("{prefix}.horizon_days"), "must be null (no horizon) or 1 to 3650"));
    }
    if s.max_baselines == 0 {
        return Err(ConfigError::new(format!("{prefix}.max_baselines"), "must be at least 1"));
    }
    let baselines = Baselines::new(s.horizon_days, s.max_baselines);
    Ok(Box::new(SecurityGroupSpikes { metadata: metadata(), settings: s, baselines }))
}

impl SecurityGroupSpikes {
    fn group_key(&self, user: &str, window_start: i64) -> GroupKey {
        let (hour, weekday) = hour_and_weekday(window_start, self.settings.utc_offset_minutes);
        let is_weekend = u8::from(!(1..=5).contains(&weekday));
        (user.to_string(), (hour / 4 * 4) as u8, is_weekend)
    }

    fn local_day(&self, window_start: i64) -> i64 {
        (window_start + i64::from(self.settings.utc_offset_minutes) * 60).div_euclid(86_400)
    }

    fn judges(&self) -> bool {
        self.settings.mode != Mode::Learn
    }

    fn learns(&self) -> bool {
        self.settings.mode != Mode::Judge
    }

    /// The row Splunk's search would output for this hour, if it fires.
    fn judge(&self, key: &GroupKey, day: i64, group: &ClosedGroup) -> Option<Map<String, Value>> {
        let fit = self.baselines.fit(key, day)?;
        if fit.cardinality < self.settings.min_cardinality {
            return None;
        }
        let count = group.stats.count as f64;
        let exact_upper = fit.mean + crate::baseline::normal_quantile(1.0 - self.settings.threshold / 2.0) * fit.std;
        let expected_upper_threshold = fit.upper_threshold(self.settings.threshold);
        // MLTK flags the outlier against its exact bound; the search then compares with the
        // rounded bound it reports. Both must hold.
        if count <= exact_upper || count <= expected_upper_threshold {
            return None;
        }
        let mut row = Map::new();
        row.insert("_time".into(), json!(format_rfc3339(group.window_start)));
        row.insert("user".into(), json!(key.0));
        row.insert("command".into(), values_field(&group.stats.values[0]));
        row.insert("security_group_api_calls".into(), json!(group.stats.count));
        row.insert("expected_upper_threshold".into(), json!(expected_upper_threshold));
        row.insert("distance_from_threshold".into(), json!(round4(count - expected_upper_threshold)));
        Some(row)
    }

    fn model_document(&self) -> Value {
        // The model is as of the newest day it has seen, like a baseline search run that day.
        let as_of = self.baselines.iter().filter_map(|(_, days)| days.last().map(|d| d.day)).max().unwrap_or(0);
        let groups: Vec<Value> = self
            .baselines
            .iter()
            .map(|((user, hour, weekend), days)| {
                let fit = self.baselines.fit(&(user.clone(), *hour, *weekend), as_of);
                json!({
                    "user": user,
                    "HourOfDay": hour,
                    "isWeekend": weekend,
                    "fit": fit,
                    "days": days,
                })
            })
            .collect();
        json!({
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "detection": KEY,
            "user_field": self.settings.user_field,
            "utc_offset_minutes": self.settings.utc_offset_minutes,
            "evicted_groups": self.baselines.evicted(),
            "groups": groups,
        })
    }
}

#[derive(Deserialize)]
struct ModelGroup {
    user: String,
    #[serde(rename = "HourOfDay")]
    hour_of_day: u8,
    #[serde(rename = "isWeekend")]
    is_weekend: u8,
    days: Vec<DayStats>,
}

#[derive(Deserialize)]
struct ModelDocument {
    format: String,
    version: u64,
    user_field: UserSource,
    utc_offset_minutes: i32,
    #[serde(default)]
    evicted_groups: u64,
    groups: Vec<ModelGroup>,
}

impl Detection for SecurityGroupSpikes {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn event_names(&self) -> Vec<String> {
        self.settings.commands.clone()
    }

    /// `status=success` in the Change data model: the raw record has no `errorCode`. The
    /// commands compare exactly, as the data model's own mapping does. A call with no user
    /// counts under `unknown`, as the data model fills a null or empty `user`.
    fn select<'a>(&self, event: &Event<'a>) -> Result<Vec<Selected<'a>>, FieldError> {
        if !self.settings.commands.iter().any(|c| *c == event.event_name) || event.failed()? {
            return Ok(Vec::new());
        }
        let user = match event.field("user", self.settings.user_field)? {
            Some(user) if !user.is_empty() => user,
            _ => Cow::Borrowed(UNKNOWN_USER),
        };
        let commands = vec![event.event_name.clone()];
        Ok(vec![Selected::Group { key: Some(vec![user]), values: vec![commands] }])
    }

    fn on_close(&mut self, group: &ClosedGroup) -> Option<Map<String, Value>> {
        // One late event is no hourly count; judging it would only mislead.
        if group.partial == Some(Partial::Late) {
            return None;
        }
        let key = self.group_key(&group.key[0], group.window_start);
        let day = self.local_day(group.window_start);
        let row = if self.judges() { self.judge(&key, day, group) } else { None };
        // An evicted group's count is a lower bound: judged (it may already be over), never learned.
        if self.learns() && group.partial.is_none() {
            self.baselines.push(key, day, group.stats.count as f64);
        }
        row
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("baseline_groups", self.baselines.len() as u64), ("evicted_baselines", self.baselines.evicted())]
    }

    fn save_state(&self) -> Value {
        self.model_document()
    }

    fn restore_state(&mut self, state: &Value) -> Result<(), String> {
        self.load_model(state)
    }

    fn load_model(&mut self, model: &Value) -> Result<(), String> {
        let doc: ModelDocument = serde_json::from_value(model.clone()).map_err(|e| format!("baseline model: {e}"))?;
        if doc.format != MODEL_FORMAT || doc.version > MODEL_VERSION {
            return Err(format!("baseline model: format {} version {} is not readable here", doc.format, doc.version));
        }
        if doc.user_field != self.settings.user_field || doc.utc_offset_minutes != self.settings.utc_offset_minutes {
            return Err("baseline model: fitted with another user_field or utc_offset_minutes than configured".into());
        }
        self.baselines.clear();
        self.baselines.set_evicted(doc.evicted_groups);
        for g in doc.groups {
            self.baselines.insert((g.user, g.hour_of_day, g.is_weekend), g.days);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::GroupStats;
    use crate::json::{RawObject, ScannedObject};

    fn detection(settings: Value) -> SecurityGroupSpikes {
        let s: Settings = parse_at("", settings).unwrap();
        SecurityGroupSpikes { metadata: metadata(), baselines: Baselines::new(s.horizon_days, s.max_baselines), settings: s }
    }

    /// Monday 2026-10-05 10:00 UTC plus `days`.
    fn hour(days: i64) -> i64 {
        1_791_194_400 + days * 86_400
    }

    fn closed(start: i64, count: u64) -> ClosedGroup {
        ClosedGroup {
            window_start: start,
            window_end: start + 3600,
            key: vec!["AIDAUSER".into()],
            stats: GroupStats {
                count,
                first: start,
                last: start,
                values: vec![["AuthorizeSecurityGroupIngress".to_string()].into()],
                ..GroupStats::default()
            },
            partial: None,
        }
    }

    #[test]
    fn worked_example_fires_at_six_not_five() {
        let mut d = detection(json!({}));
        let counts = [2, 3, 3, 4, 2, 5, 3, 4, 3, 2, 3, 4, 3, 2, 5, 3];
        // Sixteen weekday mornings in the 8-12 block.
        let weekdays: Vec<i64> = (0..30).filter(|d| (d % 7) < 5).take(17).collect();
        for (day, count) in weekdays.iter().zip(counts) {
            assert!(d.on_close(&closed(hour(*day), count)).is_none());
        }
        let judge_day = hour(weekdays[16]);
        let mut judge_only = detection(json!({"mode": "judge"}));
        judge_only.restore_state(&d.save_state()).unwrap();
        assert!(judge_only.on_close(&closed(judge_day, 5)).is_none());
        let row = judge_only.on_close(&closed(judge_day, 6)).unwrap();
        assert_eq!(row["expected_upper_threshold"], json!(5.854));
        assert_eq!(row["distance_from_threshold"], json!(0.146));
        assert_eq!(row["security_group_api_calls"], json!(6));
        assert_eq!(row["command"], json!("AuthorizeSecurityGroupIngress"));
        // Weekend and other hour blocks have no model yet.
        assert!(judge_only.on_close(&closed(hour(5), 60)).is_none());
        assert!(judge_only.on_close(&closed(hour(0) + 6 * 3600, 60)).is_none());
    }

    #[test]
    fn small_groups_never_fire() {
        let mut learner = detection(json!({"mode": "learn", "horizon_days": null}));
        for day in 0..15 {
            assert!(learner.on_close(&closed(hour(day * 7), 2)).is_none());
        }
        let mut strict = detection(json!({"mode": "judge", "horizon_days": null}));
        strict.restore_state(&learner.save_state()).unwrap();
        assert!(strict.on_close(&closed(hour(15 * 7), 500)).is_none());
        let mut loose = detection(json!({"mode": "judge", "min_cardinality": 15, "horizon_days": null}));
        loose.restore_state(&learner.save_state()).unwrap();
        assert!(loose.on_close(&closed(hour(15 * 7), 500)).is_some());
    }

    /// The `user` key `select` gives a security-group call whose `userIdentity` is `identity`.
    fn selected_user(settings: Value, identity: &str) -> Option<Vec<String>> {
        let text = format!(r#"{{"eventName":"AuthorizeSecurityGroupIngress","userIdentity":{identity}}}"#);
        let record = ScannedObject::new(RawObject::new(text.as_bytes()).unwrap());
        let event = Event { record, event_name: "AuthorizeSecurityGroupIngress".into(), time: 0 };
        match detection(settings).select(&event).unwrap().as_slice() {
            [Selected::Group { key, .. }] => key.as_ref().map(|k| k.iter().map(|t| t.to_string()).collect()),
            other => panic!("one group member expected, got {other:?}"),
        }
    }

    #[test]
    fn calls_without_a_user_count_under_unknown() {
        let unknown = Some(vec!["unknown".to_string()]);
        let role = r#"{"type":"AssumedRole","principalId":"AROAROLE:session","arn":"arn:aws:sts::1:assumed-role/R/session"}"#;
        assert_eq!(selected_user(json!({}), role), Some(vec!["AROAROLE:session".to_string()]));
        // An assumed-role session has no userName.
        assert_eq!(selected_user(json!({"user_field": "userName"}), role), unknown);
        assert_eq!(selected_user(json!({}), r#"{"type":"AssumedRole"}"#), unknown);
        assert_eq!(selected_user(json!({}), r#"{"principalId":null}"#), unknown);
        assert_eq!(selected_user(json!({}), r#"{"principalId":""}"#), unknown);
    }

    #[test]
    fn settings_are_validated() {
        let err = |v: Value| construct(v.as_object().unwrap()).err().unwrap().to_string();
        assert!(err(json!({"threshold": 0.9})).contains("threshold"));
        assert!(err(json!({"mode": "guess"})).contains("unknown variant `guess`"));
        assert!(err(json!({"user_field": "email"})).contains("user_field"));
        assert!(err(json!({"commands": []})).contains("commands"));
    }
}
