//! The alerts as a readable table: detection, window start, risk object, score, message
//! (the message takes what is left of the terminal width).

use std::io::IsTerminal;

use serde_json::Value;

/// The width to fit: `$COLUMNS`, else 120 on a terminal and 160 otherwise.
pub fn width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok()) {
        return columns.max(60);
    }
    if std::io::stdout().is_terminal() {
        120
    } else {
        160
    }
}

/// One row per alert, at most `max_rows` rows (a final line counts the rest).
pub fn alerts_table(alerts: &[Value], width: usize, max_rows: usize) -> String {
    const HEADERS: [&str; 5] = ["DETECTION", "WINDOW START", "RISK OBJECT", "SCORE", "MESSAGE"];
    const CAPS: [usize; 4] = [44, 20, 28, 5];
    let rows: Vec<[String; 5]> = alerts.iter().take(max_rows).map(row).collect();
    let mut widths = [0usize; 4];
    for (i, w) in widths.iter_mut().enumerate() {
        let longest = rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        *w = longest.max(HEADERS[i].len()).min(CAPS[i]);
    }
    let used: usize = widths.iter().sum::<usize>() + 2 * 4;
    let message_width = width.saturating_sub(used).max(20);
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, w) in widths.iter().enumerate() {
            let cell = truncate(cells[i], *w);
            if i == 3 {
                text.push_str(&format!("{cell:>w$}  "));
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        text.push_str(&truncate(cells[4], message_width));
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(HEADERS);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    if alerts.len() > max_rows {
        out.push_str(&format!("... and {} more (write them all with --alerts FILE)\n", alerts.len() - max_rows));
    }
    out
}

fn row(alert: &Value) -> [String; 5] {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    [
        text(&alert["detection"]["name"]),
        text(&alert["window"]["start"]),
        text(&alert["risk_object"]),
        text(&alert["risk_score"]),
        text(&alert["risk_message"]),
    ]
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fits_the_width() {
        let alert = json!({"detection": {"name": "AWS Exfiltration via Batch Service"}, "window": {"start": "2023-04-24T19:00:00Z"},
            "risk_object": "111111111111", "risk_score": 64, "risk_message": "x".repeat(300)});
        let table = alerts_table(&[alert.clone(), alert], 100, 1);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("DETECTION"));
        assert!(lines[1].contains("111111111111") && lines[1].contains("64") && lines[1].ends_with('…'));
        assert!(lines.iter().take(2).all(|l| l.chars().count() <= 100), "{table}");
        assert!(lines[2].contains("1 more"));
    }
}
