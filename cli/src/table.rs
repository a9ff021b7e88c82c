//! The alerts as a table (comfy-table): detection, window start, risk object, score, message.

use std::io::IsTerminal;

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Row, Table};
use serde_json::Value;

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

/// One row per alert, at most `max_rows` rows (a final line counts the rest).
pub fn alerts_table(alerts: &[Value], max_rows: usize) -> String {
    let mut table = Table::new();
    table.load_style(presets::UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic);
    match width() {
        0 => {}
        w => {
            table.set_width(w);
        }
    }
    table.set_header(["DETECTION", "WINDOW START", "RISK OBJECT", "SCORE", "MESSAGE"]);
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    for alert in alerts.iter().take(max_rows) {
        let mut row = Row::from(vec![
            Cell::new(text(&alert["detection"]["name"])),
            Cell::new(text(&alert["window"]["start"])),
            Cell::new(text(&alert["risk_object"])),
            Cell::new(text(&alert["risk_score"])).set_alignment(CellAlignment::Right),
            Cell::new(text(&alert["risk_message"])),
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

    #[test]
    fn one_row_per_alert_and_a_count_of_the_rest() {
        let alert = json!({"detection": {"name": "AWS Exfiltration via Batch Service"}, "window": {"start": "2023-04-24T19:00:00Z"},
            "risk_object": "111111111111", "risk_score": 64, "risk_message": "x".repeat(30)});
        let table = super::alerts_table(&[alert.clone(), alert], 1);
        assert!(table.contains("DETECTION") && table.contains("111111111111") && table.contains("64"), "{table}");
        assert!(table.contains("1 more"), "{table}");
    }
}
