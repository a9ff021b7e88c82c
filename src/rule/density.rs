//! A rule's density baseline at run time: the per-key normal fits a `Step::Density` judges rows
//! by, learned from the rows it judged once their window has closed (see [`Density`]).
//!
//! The fits are [`Baselines`] (per-day moments, a horizon and a cap), so a model fitted offline
//! (`tripline fit`) and one learned online are the same document, bit for bit. A key is the
//! row's values of the baseline's `by` fields, each kept with its type (`HourOfDay` stays the
//! number 8), so the document reads as the rows did.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::eval::{Locale, Row};
use super::value::{format_number, Val};
use super::Density;
use crate::aggregate::{ClosedGroup, Partial};
use crate::baseline::{normal_quantile, round4, Baselines, DayStats};
use crate::config::{parse_at, ConfigError};

/// Identifies baseline documents (the state a rule with a density baseline saves, the model
/// `tripline fit` writes).
pub const BASELINE_FORMAT: &str = "tripline-baseline";
const BASELINE_VERSION: u64 = 1;

/// Whether the baseline learns from closed windows, judges them, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Learn,
    Judge,
    LearnAndJudge,
}

/// The host's settings of a density baseline: `detections.<key>.<name>` for each name of
/// [`SETTINGS`], the rule's values by default.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    mode: Mode,
    threshold: f64,
    min_cardinality: u64,
    horizon_days: Option<i64>,
    /// At most this many keys; beyond, the tenth with the least history are forgotten and counted.
    max_baselines: usize,
}

/// The settings' names, which sit beside `enabled` and `suppress` in a rule's section.
pub const SETTINGS: [&str; 5] = ["mode", "threshold", "min_cardinality", "horizon_days", "max_baselines"];

/// About 3 KiB per key with a 90-day horizon: 10,000 keys stay within about 30 MiB.
const DEFAULT_MAX_BASELINES: usize = 10_000;

#[derive(Debug)]
pub struct DensityBaseline {
    spec: Density,
    settings: Settings,
    baselines: Baselines<Vec<String>>,
    /// What the window being closed learns once all its rows are judged: key, day, value.
    pending: Vec<(Vec<String>, i64, f64)>,
}

impl DensityBaseline {
    /// The baseline of `spec`, with the host's `overrides` (names of [`SETTINGS`]) applied.
    pub fn new(spec: &Density, overrides: Map<String, Value>, path: &str) -> Result<DensityBaseline, ConfigError> {
        let defaults = Settings {
            mode: Mode::LearnAndJudge,
            threshold: spec.threshold,
            min_cardinality: spec.min_cardinality,
            horizon_days: spec.horizon_days,
            max_baselines: DEFAULT_MAX_BASELINES,
        };
        let mut merged = serde_json::to_value(defaults).map_err(|e| ConfigError::new(path, e.to_string()))?;
        if let Some(into) = merged.as_object_mut() {
            into.extend(overrides);
        }
        let s: Settings = parse_at(path, merged)?;
        let bad = |name: &str, why: &str| Err(ConfigError::new(format!("{path}.{name}"), why));
        if !(1e-9..=0.5).contains(&s.threshold) {
            return bad("threshold", &format!("{} is outside 0.000000001 to 0.5", s.threshold));
        }
        if s.min_cardinality == 0 {
            return bad("min_cardinality", "must be at least 1");
        }
        if s.horizon_days.is_some_and(|d| !(1..=3650).contains(&d)) {
            return bad("horizon_days", "must be null (no horizon) or 1 to 3650");
        }
        if s.max_baselines == 0 {
            return bad("max_baselines", "must be at least 1");
        }
        let baselines = Baselines::new(s.horizon_days, s.max_baselines);
        Ok(DensityBaseline { spec: spec.clone(), settings: s, baselines, pending: Vec::new() })
    }

    /// `Step::Density` over a window's rows (`owners[i]` is the index in `groups` of row `i`'s
    /// group): keeps the rows it judges, with MLTK's fields set, and notes what each teaches.
    pub fn judge<'r>(&mut self, owners: &mut Vec<usize>, rows: &mut Vec<Row<'r, 'static>>, groups: &[ClosedGroup], locale: Locale) {
        let tail = self.settings.threshold / 2.0;
        let z = normal_quantile(1.0 - tail);
        let (mut kept_owners, mut kept) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        for (owner, mut row) in owners.drain(..).zip(rows.drain(..)) {
            let group = &groups[owner];
            // One late event is no count: judging it would only mislead, and learning it skew.
            if group.partial == Some(Partial::Late) {
                continue;
            }
            let Some((key, value)) = self.key_and_value(&row) else { continue };
            let day = (group.window_start + i64::from(locale.utc_offset_minutes) * 60).div_euclid(86_400);
            let fit = self.baselines.fit(&key, day);
            // A group the caps closed early counts a lower bound: judged, never learned.
            if self.settings.mode != Mode::Judge && group.partial.is_none() {
                self.pending.push((key, day, value));
            }
            let Some(fit) = fit.filter(|f| self.settings.mode != Mode::Learn && f.cardinality >= self.settings.min_cardinality) else { continue };
            let (lower, upper) = (fit.mean - z * fit.std, fit.mean + z * fit.std);
            let outlier = value < lower || value > upper;
            let bound = |b: f64| format_number(round4(b));
            let ranges = vec![format!("-Infinity:{}:{}", bound(lower), format_number(tail)), format!("{}:Infinity:{}", bound(upper), format_number(tail))];
            row.set("cardinality", Some(Val::Num(fit.cardinality as f64)));
            row.set(format!("IsOutlier({})", self.spec.field), Some(Val::Num(if outlier { 1.0 } else { 0.0 })));
            row.set("BoundaryRanges", Some(Val::Multi(ranges)));
            kept_owners.push(owner);
            kept.push(row);
        }
        (*owners, *rows) = (kept_owners, kept);
    }

    /// A row's key (its `by` values, typed) and value, where it has them all.
    fn key_and_value(&self, row: &Row<'_, '_>) -> Option<(Vec<String>, f64)> {
        let mut key = Vec::with_capacity(self.spec.by.len());
        for field in &self.spec.by {
            match row.get(field).ok()? {
                Val::Null => return None,
                value => key.push(super::run::encode_column(value)),
            }
        }
        Some((key, row.get(&self.spec.field).ok()?.number()?))
    }

    /// Learns what the window's judged rows taught.
    pub fn learn(&mut self) {
        for (key, day, value) in self.pending.drain(..) {
            self.baselines.push(key, day, value);
        }
    }

    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("baseline_groups", self.baselines.len() as u64), ("evicted_baselines", self.baselines.evicted())]
    }

    /// The baseline as a document: every key's fit as of the newest day seen (as a baseline
    /// search run that day would report it) and its days.
    pub fn document(&self, detection: &str, shape: &str, locale: Locale) -> Value {
        let as_of = self.baselines.iter().filter_map(|(_, days)| days.last().map(|d| d.day)).max().unwrap_or(0);
        let groups: Vec<Value> = self
            .baselines
            .iter()
            .map(|(key, days)| {
                let mut group: Map<String, Value> =
                    self.spec.by.iter().cloned().zip(key.iter().map(|part| super::run::decode_column(part))).collect();
                group.insert("fit".into(), json!(self.baselines.fit(key, as_of)));
                group.insert("days".into(), json!(days));
                Value::Object(group)
            })
            .collect();
        json!({
            "format": BASELINE_FORMAT,
            "version": BASELINE_VERSION,
            "detection": detection,
            "shape": shape,
            "model": self.spec.model,
            "user_field": locale.user,
            "utc_offset_minutes": locale.utc_offset_minutes,
            "evicted_groups": self.baselines.evicted(),
            "groups": groups,
        })
    }

    /// Replaces the baseline with a [`DensityBaseline::document`] (a snapshot's, or a fitted
    /// model), which must have been made under the same `locale` (its keys were read under it)
    /// and, where it says, for a rule of the same `shape`. A document refused changes nothing.
    pub fn restore(&mut self, document: &Value, locale: Locale, shape: &str) -> Result<(), String> {
        #[derive(Deserialize)]
        struct Document {
            format: String,
            version: u64,
            user_field: crate::cloudtrail::UserSource,
            utc_offset_minutes: i32,
            /// Absent from the documents of the hand-written detection that came before.
            #[serde(default)]
            shape: Option<String>,
            #[serde(default)]
            evicted_groups: u64,
            groups: Vec<Map<String, Value>>,
        }
        let doc = Document::deserialize(document).map_err(|e| format!("baseline model: {e}"))?;
        if doc.format != BASELINE_FORMAT || doc.version > BASELINE_VERSION {
            return Err(format!("baseline model: format {} version {} is not readable here", doc.format, doc.version));
        }
        if doc.user_field != locale.user || doc.utc_offset_minutes != locale.utc_offset_minutes {
            return Err("baseline model: fitted with another user_field or utc_offset_minutes than configured".into());
        }
        if doc.shape.is_some_and(|s| s != shape) {
            return Err("baseline model: fitted for another form of the rule".into());
        }
        let mut groups = Vec::with_capacity(doc.groups.len());
        for mut group in doc.groups {
            let days: Vec<DayStats> = serde_json::from_value(group.remove("days").unwrap_or_default()).map_err(|e| format!("baseline model: days: {e}"))?;
            let key = self.spec.by.iter().map(|field| match group.remove(field) {
                Some(value @ (Value::String(_) | Value::Number(_) | Value::Array(_))) => Ok(super::run::encode_json(value)),
                _ => Err(format!("baseline model: a group without `{field}`")),
            });
            groups.push((key.collect::<Result<Vec<_>, _>>()?, days));
        }
        self.baselines.clear();
        self.baselines.set_evicted(doc.evicted_groups);
        for (key, days) in groups {
            self.baselines.insert(key, days);
        }
        self.pending.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use crate::aggregate::{ClosedGroup, GroupStats};
    use crate::catalog::builtin_rules;
    use crate::config::ConfigError;
    use crate::detection::{Detection, Selected};
    use crate::rule::RuleDetection;

    const KEY: &str = "abnormally_high_cloud_security_group_api_calls";

    /// Seed B's rule (`rules/seeds/`) under `settings`.
    fn seed_b(settings: serde_json::Value) -> Result<RuleDetection, ConfigError> {
        let rule = builtin_rules().into_iter().find(|r| r.metadata.key == KEY).expect("seed B is built in");
        RuleDetection::configured(rule, settings.as_object().unwrap())
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
        let mut d = seed_b(json!({})).unwrap();
        let counts = [2, 3, 3, 4, 2, 5, 3, 4, 3, 2, 3, 4, 3, 2, 5, 3];
        // Sixteen weekday mornings in the 8-12 block.
        let weekdays: Vec<i64> = (0..30).filter(|d| (d % 7) < 5).take(17).collect();
        for (day, count) in weekdays.iter().zip(counts) {
            assert!(d.on_close(&closed(hour(*day), count)).is_none());
        }
        let judge_day = hour(weekdays[16]);
        let mut judge_only = seed_b(json!({"mode": "judge"})).unwrap();
        judge_only.restore_state(&d.save_state()).unwrap();
        assert!(judge_only.on_close(&closed(judge_day, 5)).is_none());
        let row = judge_only.on_close(&closed(judge_day, 6)).unwrap();
        assert_eq!(
            serde_json::Value::Object(row),
            json!({
                "_time": "2026-10-27T10:00:00Z",
                "user": "AIDAUSER",
                "command": "AuthorizeSecurityGroupIngress",
                "security_group_api_calls": 6,
                "expected_upper_threshold": 5.854,
                "distance_from_threshold": 0.146,
            })
        );
        // Weekend and other hour blocks have no model yet.
        assert!(judge_only.on_close(&closed(hour(5), 60)).is_none());
        assert!(judge_only.on_close(&closed(hour(0) + 6 * 3600, 60)).is_none());
    }

    /// The documents the hand-written detection before this rule saved (no shape, no model name)
    /// restore: a module swapped for this one keeps its baselines.
    #[test]
    fn baselines_saved_before_the_rule_existed_restore() {
        let day = |day: i64, n: u64, mean: f64| json!({"day": day, "n": n, "mean": mean, "m2": 0.0, "min": mean, "max": mean});
        let days: Vec<serde_json::Value> = (0..16).map(|d| day(20_700 + d, 1, 3.0)).collect();
        let old = json!({
            "format": "tripline-baseline", "version": 1, "detection": KEY, "user_field": "principalId",
            "utc_offset_minutes": 0, "evicted_groups": 2,
            "groups": [{"user": "AIDAUSER", "HourOfDay": 8, "isWeekend": 0, "fit": null, "days": days}],
        });
        let mut d = seed_b(json!({"mode": "judge", "horizon_days": null})).unwrap();
        d.restore_state(&old).unwrap();
        assert_eq!(d.counters(), [("baseline_groups", 1), ("evicted_baselines", 2)]);
        // Every count was 3: anything above fires, on a weekday morning.
        assert_eq!(d.on_close(&closed(hour(0), 4)).unwrap()["expected_upper_threshold"], json!(3));
        let saved = d.save_state();
        assert_eq!(saved["groups"][0]["HourOfDay"], json!(8));
        assert_eq!(saved["groups"][0]["user"], json!("AIDAUSER"));
        let mut other_zone = seed_b(json!({"utc_offset_minutes": 60})).unwrap();
        assert!(other_zone.restore_state(&old).unwrap_err().contains("utc_offset_minutes"));
    }

    #[test]
    fn small_groups_never_fire() {
        let mut learner = seed_b(json!({"mode": "learn", "horizon_days": null})).unwrap();
        for day in 0..15 {
            assert!(learner.on_close(&closed(hour(day * 7), 2)).is_none());
        }
        let mut strict = seed_b(json!({"mode": "judge", "horizon_days": null})).unwrap();
        strict.restore_state(&learner.save_state()).unwrap();
        assert!(strict.on_close(&closed(hour(15 * 7), 500)).is_none());
        let mut loose = seed_b(json!({"mode": "judge", "min_cardinality": 15, "horizon_days": null})).unwrap();
        loose.restore_state(&learner.save_state()).unwrap();
        assert!(loose.on_close(&closed(hour(15 * 7), 500)).is_some());
    }

    /// The `user` key seed B's rule gives a security-group call whose `userIdentity` is `identity`.
    fn selected_user(settings: serde_json::Value, identity: &str) -> Option<Vec<String>> {
        let text = format!(r#"{{"eventName":"AuthorizeSecurityGroupIngress","userIdentity":{identity}}}"#);
        let record = crate::json::ScannedObject::new(crate::json::RawObject::new(text.as_bytes()).unwrap());
        let event = crate::cloudtrail::Event { record, event_name: Cow::Borrowed("AuthorizeSecurityGroupIngress"), time: 0 };
        let selected = seed_b(settings).unwrap().select(&event).unwrap();
        match selected.as_slice() {
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

    /// Whether seed B's rule counts a call named `name` with these members besides its name.
    fn selects(name: &str, members: &str) -> bool {
        let text = format!(r#"{{"eventName":"{name}","userIdentity":{{"principalId":"AIDA1"}}{members}}}"#);
        let record = crate::json::ScannedObject::new(crate::json::RawObject::new(text.as_bytes()).unwrap());
        let event = crate::cloudtrail::Event { record, event_name: Cow::Borrowed(name), time: 0 };
        let selected = seed_b(json!({})).unwrap().select(&event).unwrap();
        !selected.is_empty()
    }

    fn counted(members: &str) -> bool {
        selects("CreateSecurityGroup", members)
    }

    #[test]
    fn only_calls_without_a_raw_error_code_count() {
        assert!(counted(""));
        assert!(counted(r#","errorCode":null"#));
        assert!(!counted(r#","errorCode":"Client.UnauthorizedOperation""#));
        // The add-on's calculated errorCode would say `success` here; the raw field decides.
        assert!(!counted(r#","errorCode":"success""#));
        assert!(!counted(r##","errorCode":"""##));
        // eventName compares exactly, as the data model's mapping does.
        assert!(!selects("createsecuritygroup", ""));
    }

    #[test]
    fn settings_are_validated() {
        let err = |v: serde_json::Value| seed_b(v).err().unwrap().to_string();
        assert!(err(json!({"threshold": 0.9})).contains("threshold"));
        assert!(err(json!({"mode": "guess"})).contains("unknown variant `guess`"));
        assert!(err(json!({"user_field": "email"})).contains("user_field"));
        assert!(err(json!({"utc_offset_minutes": 1441})).contains("utc_offset_minutes"));
        assert!(err(json!({"max_baselines": 0})).contains("max_baselines"));
        assert!(err(json!({"commands": ["RunInstances"]})).contains("unknown setting `commands`"));
    }
}
