//! The alerts as a table (comfy-table): detection, window start, risk object, score, message,
//! the same columns whichever `output.alert_format` wrote them: each format keeps these facts in
//! its own fields (src/alert_format.rs, docs/alerts.md), read here through one map per format.

use std::io::IsTerminal;

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Row, Table};
use serde_json::Value;
use tripline::alert_format::AlertFormat;
use tripline::time::format_rfc3339;

/// Where a format keeps each column's fact, as JSON pointers.
struct Columns {
    detection: &'static str,
    window_start: &'static str,
    risk_object: &'static str,
    score: &'static str,
    message: &'static str,
}

impl Columns {
    fn of(format: AlertFormat) -> Columns {
        match format {
            AlertFormat::Splunk => Columns {
                detection: "/detection/name",
                window_start: "/window/start",
                risk_object: "/risk_object",
                score: "/risk_score",
                message: "/risk_message",
            },
            // OCSF: `start_time` in epoch milliseconds; Splunk's risk object under `unmapped`.
            AlertFormat::Ocsf => Columns {
                detection: "/finding_info/title",
                window_start: "/start_time",
                risk_object: "/unmapped/risk_object",
                score: "/risk_score",
                message: "/message",
            },
            // ECS: `event.risk_score` a float; Splunk's risk object under the custom `tripline.*`.
            AlertFormat::Ecs => Columns {
                detection: "/rule/name",
                window_start: "/event/start",
                risk_object: "/tripline/risk_object",
                score: "/event/risk_score",
                message: "/message",
            },
        }
    }
}

/// A value as the table shows it: text as it is, numbers as written but whole floats without
/// their `.0` (ECS's 64.0 is Splunk's 64), nothing as `-`.
fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.as_f64().filter(|_| n.is_f64()).map_or_else(|| n.to_string(), |f| f.to_string()),
        Some(other) => other.to_string(),
    }
}

/// A time as RFC 3339: text as written, a number as OCSF's epoch milliseconds.
fn time(value: Option<&Value>) -> String {
    match value.and_then(Value::as_i64) {
        Some(millis) => format_rfc3339(millis.div_euclid(1000)),
        None => text(value),
    }
}

/// The width to fit: `$COLUMNS`, else the terminal's, else 160.
fn width() -> u16 {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<u16>().ok()) {
        return columns.max(60);
    }
    if std::io::stdout().is_terminal() {
        return 0; // comfy-table measures the terminal
    }
    160
}

/// One row per alert written in `format`, at most `max_rows` rows (a final line counts the rest).
pub fn alerts_table(alerts: &[Value], format: AlertFormat, max_rows: usize) -> String {
    let mut table = Table::new();
    table.load_style(presets::UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic);
    match width() {
        0 => {}
        w => {
            table.set_width(w);
        }
    }
    table.set_header(["DETECTION", "WINDOW START", "RISK OBJECT", "SCORE", "MESSAGE"]);
    let columns = Columns::of(format);
    for alert in alerts.iter().take(max_rows) {
        let mut row = Row::from(vec![
            Cell::new(text(alert.pointer(columns.detection))),
            Cell::new(time(alert.pointer(columns.window_start))),
            Cell::new(text(alert.pointer(columns.risk_object))),
            Cell::new(text(alert.pointer(columns.score))).set_alignment(CellAlignment::Right),
            Cell::new(text(alert.pointer(columns.message))),
        ]);
        // One line an alert: a long message is cut (--alerts FILE keeps it whole).
        row.max_height(1);
        table.add_row(row);
    }
    let mut out = table.to_string();
    out.push('\n');
    if alerts.len() > max_rows {
        out.push_str(&format!("... and {} more (--max-rows N shows more; --alerts FILE writes them all)\n", alerts.len() - max_rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tripline::alert_format::AlertFormat;

    #[test]
    fn one_row_per_alert_and_a_count_of_the_rest() {
        let alert = json!({"detection": {"name": "AWS Exfiltration via Batch Service"}, "window": {"start": "2023-04-24T19:00:00Z"},
            "risk_object": "111111111111", "risk_score": 64, "risk_message": "x".repeat(30)});
        let table = super::alerts_table(&[alert.clone(), alert], AlertFormat::Splunk, 1);
        assert!(table.contains("DETECTION") && table.contains("111111111111") && table.contains("64"), "{table}");
        assert!(table.contains("1 more"), "{table}");
    }

    #[test]
    fn every_format_gives_the_same_row() {
        let alert = json!({"detection": {"id": "04455dd3-ced7-480f-b8e6-5469b99e98e2", "name": "AWS Exfiltration via Batch Service"},
            "risk_score": 64, "risk_message": "AWS Batch Job is created", "risk_object": "111111111111", "risk_object_type": "other",
            "window": {"start": "2023-04-24T19:00:00Z", "end": "2023-04-24T20:00:00Z"}, "result": {}});
        let splunk = super::alerts_table(std::slice::from_ref(&alert), AlertFormat::Splunk, 1);
        for fact in ["AWS Exfiltration via Batch Service", "2023-04-24T19:00:00Z", "111111111111", " 64 ", "AWS Batch Job is created"] {
            assert!(splunk.contains(fact), "{fact} in\n{splunk}");
        }
        for format in [AlertFormat::Ocsf, AlertFormat::Ecs] {
            assert_eq!(super::alerts_table(&[format.write(alert.clone())], format, 1), splunk, "{format:?}");
        }
    }
}
